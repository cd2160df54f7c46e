using System.Reflection;
using System.Reflection.Emit;
using MailPipe.Transport;

namespace MailPipe.Tests;

/// <summary>
/// The layers of the core depend strictly downward (issue #9, ../shared/STYLE.md): Protocol → nothing; Transport → the
/// public root types only; Transmission (the channel: RFC 5321's transmission channel) → Transport, Protocol,
/// Diagnostics; Authentication and Sending → Transmission, Protocol, Diagnostics; Session → all of these; Pooling → Session and below. An edge between internal types that is not in
/// this list fails. Public types (the root <c>MailPipe</c> namespace: replies, exceptions, envelopes, options) may be
/// used by every layer; the façade <see cref="AsyncSmtpSession"/> counts as Session.
/// </summary>
/// <remarks>
/// An internal type's layer is its namespace (<c>MailPipe.Transmission</c>, <c>MailPipe.Pooling</c>, …) or, for the
/// internal types still in the root namespace, the table <see cref="RootTypeLayers"/> (by the folder they live in);
/// an internal root type missing from the table fails the test, so that every new type gets a layer. Dependencies
/// are read from signatures and from the IL of every method, nested (compiler-generated) types counting as their
/// outermost declaring type.
/// </remarks>
public class LayeringTests
{
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["Protocol"] = [],
        ["Transport"] = [],
        ["Diagnostics"] = [],
        ["Transmission"] = ["Transport", "Protocol", "Diagnostics"],
        ["Authentication"] = ["Transmission", "Protocol", "Diagnostics"],
        ["Sending"] = ["Transmission", "Protocol", "Diagnostics"],
        ["Session"] = ["Transmission", "Transport", "Protocol", "Diagnostics", "Authentication", "Sending"],
        ["Pooling"] = ["Session", "Transmission", "Transport", "Protocol", "Diagnostics", "Authentication", "Sending"],
    };

    /// <summary>Internal types still in the root namespace, by the folder (layer) they live in.</summary>
    private static readonly Dictionary<string, string> RootTypeLayers = new()
    {
        ["SmtpReplyParser"] = "Protocol",
        ["SmtpCommandWriter"] = "Protocol",
        ["SmtpDataEncoder"] = "Protocol",
        ["VectorWidth"] = "Protocol",
        ["Xtext"] = "Protocol",
        ["Log"] = "Diagnostics",
        ["MailTransaction"] = "Sending",
        ["BatchResults"] = "Sending",
        ["ContentSourceException"] = "Sending",
        ["AsyncSmtpSession"] = "Session",
        ["SmtpAddressRules"] = "Protocol",
        ["SmtpContentGuard"] = "Protocol",
        ["SmtpContentRules"] = "Protocol",
        ["WireSizeCounter"] = "Protocol",
        ["SmtpContentPlan"] = "Protocol",
        ["SmtpGreetingRules"] = "Protocol",
        ["SmtpHelloName"] = "Protocol",
        ["WriterContent"] = "Sending",
        ["PooledConnection"] = "Pooling",
        ["ReadTrackingStream"] = "Pooling",
        ["RequestQueue"] = "Pooling",
        ["SendRequest"] = "Pooling",
        ["SmtpSenderMetrics"] = "Pooling",
        ["MailPipeTelemetry"] = "Diagnostics",
        ["MailPipeMetrics"] = "Diagnostics",
        ["ConnectionTelemetry"] = "Diagnostics",
        ["TransactionTelemetry"] = "Diagnostics",
        ["IRoundTripCounter"] = "Diagnostics",
        ["IObservedPool"] = "Diagnostics",
        ["OperationKind"] = "Diagnostics",
        ["SessionTelemetry"] = "Session",
        ["SubmissionStart"] = "Session",
        ["TelemetryScope"] = "Session",
        ["SmtpSenderCheck"] = "Pooling",
    };

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(static f => (OpCode)f.GetValue(null)!)
        .ToDictionary(static o => o.Value);

    [Fact]
    public void Internal_types_depend_only_on_the_layers_below_them()
    {
        FindViolations(Allowed).Should().BeEmpty("each internal type may only use the layers below its own");
    }

    [Fact]
    public void A_forbidden_edge_is_reported()
    {
        // With Session allowed nothing, its use of the transport and the protocol must show up.
        var strict = new Dictionary<string, string[]>(Allowed) { ["Session"] = [] };
        FindViolations(strict).Should().Contain(v => v.StartsWith("Session → Transport", StringComparison.Ordinal))
            .And.Contain(v => v.StartsWith("Session → Protocol", StringComparison.Ordinal));
    }

    private static SortedSet<string> FindViolations(IReadOnlyDictionary<string, string[]> allowed)
    {
        var assembly = typeof(AsyncSmtpSession).Assembly;
        var violations = new SortedSet<string>();
        foreach (var type in assembly.GetTypes())
        {
            var outer = Outermost(type);
            if (LayerOf(outer, violations) is not { } layer)
            {
                continue;
            }

            foreach (var used in DependenciesOf(type))
            {
                var usedOuter = Outermost(used);
                if (usedOuter == outer || usedOuter.Assembly != assembly || LayerOf(usedOuter, violations) is not { } usedLayer || usedLayer == layer)
                {
                    continue;
                }

                if (!allowed[layer].Contains(usedLayer))
                {
                    violations.Add($"{layer} → {usedLayer}: {outer.FullName} uses {usedOuter.FullName}");
                }
            }
        }

        return violations;
    }

    [Fact]
    public void The_check_sees_edges_in_method_bodies()
    {
        // SmtpConnection (Transport) is used inside AsyncSmtpSession's methods, never in Protocol: the scan must find the first.
        DependenciesOf(typeof(AsyncSmtpSession)).Select(Outermost).Should().Contain(typeof(SmtpConnection));
        DependenciesOf(typeof(SmtpReplyParser)).Select(Outermost).Should().NotContain(typeof(AsyncSmtpSession));
    }

    private static Type Outermost(Type type)
    {
        while (type.DeclaringType is { } declaring)
        {
            type = declaring;
        }

        return type.IsGenericType && !type.IsGenericTypeDefinition ? type.GetGenericTypeDefinition() : type;
    }

    /// <summary>The layer of an internal type of MailPipe; null for public root types and for types outside MailPipe's namespaces.</summary>
    private static string? LayerOf(Type type, ISet<string> problems)
    {
        var ns = type.Namespace ?? string.Empty;
        if (ns.StartsWith("MailPipe.", StringComparison.Ordinal))
        {
            var layer = ns["MailPipe.".Length..].Split('.')[0];
            if (!Allowed.ContainsKey(layer))
            {
                problems.Add($"{type.FullName}: namespace {ns} is no layer");
                return null;
            }

            return layer;
        }

        if (ns != "MailPipe" || type.Name.StartsWith('<') || type.Name.StartsWith("__", StringComparison.Ordinal))
        {
            return null;
        }

        if (RootTypeLayers.TryGetValue(type.Name.Split('`')[0], out var rootLayer))
        {
            return rootLayer;
        }

        if (!type.IsPublic)
        {
            problems.Add($"{type.FullName}: an internal type in the root namespace without a layer (move it to its layer's namespace, or list it in RootTypeLayers)");
        }

        return null;
    }

    private static IEnumerable<Type> DependenciesOf(Type type)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var found = new HashSet<Type>();
        void Add(Type? t)
        {
            if (t is null)
            {
                return;
            }

            if (t.HasElementType)
            {
                Add(t.GetElementType());
                return;
            }

            if (t.IsGenericType)
            {
                foreach (var argument in t.GetGenericArguments())
                {
                    if (!argument.IsGenericParameter)
                    {
                        Add(argument);
                    }
                }
            }

            if (!t.IsGenericParameter)
            {
                found.Add(t);
            }
        }

        Add(type.BaseType);
        foreach (var i in type.GetInterfaces())
        {
            Add(i);
        }

        foreach (var field in type.GetFields(all))
        {
            Add(field.FieldType);
        }

        foreach (var method in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all)))
        {
            if (method is MethodInfo info)
            {
                Add(info.ReturnType);
            }

            foreach (var parameter in method.GetParameters())
            {
                Add(parameter.ParameterType);
            }

            foreach (var member in MembersUsedBy(method))
            {
                Add(member as Type ?? member.DeclaringType);
                if (member is FieldInfo usedField)
                {
                    Add(usedField.FieldType);
                }
            }
        }

        return found;
    }

    /// <summary>The types, methods and fields named by the IL of <paramref name="method"/>.</summary>
    private static IEnumerable<MemberInfo> MembersUsedBy(MethodBase method)
    {
        var il = method.GetMethodBody()?.GetILAsByteArray();
        if (il is null)
        {
            yield break;
        }

        var typeArguments = method.DeclaringType is { IsGenericType: true } declaring ? declaring.GetGenericArguments() : null;
        var methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : null;
        var position = 0;
        while (position < il.Length)
        {
            short value = il[position++];
            if (value == 0xFE)
            {
                value = (short)(0xFE00 | il[position++]);
            }

            var opCode = OpCodesByValue[value];
            var operandSize = opCode.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + (4 * BitConverter.ToInt32(il, position)),
                _ => 4,
            };
            if (opCode.OperandType is OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineType or OperandType.InlineTok)
            {
                MemberInfo? member = null;
                try
                {
                    member = method.Module.ResolveMember(BitConverter.ToInt32(il, position), typeArguments, methodArguments);
                }
                catch (ArgumentException)
                {
                    // A generic context the scan cannot supply: its declaring type is seen elsewhere.
                }

                if (member is not null)
                {
                    yield return member;
                }
            }

            position += operandSize;
        }
    }
}
