using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using MailPipe.Extensions.Tests.Support;

namespace MailPipe.Extensions.Tests;

/// <summary>breaker16: bodies a client may send that are not a mail request at all, on both endpoints: 400 with a problem document (README), never 500.</summary>
public sealed class SampleBodyProbeTests
{
    [Theory]
    [InlineData("/mail", "null")]
    [InlineData("/mail", "")]
    [InlineData("/mail", "[]")]
    [InlineData("/mail", """{"from":"alice@example.test","to":"bob@example.test","subject":"s","body":"b"}""")]
    [InlineData("/mail", """{"from":"alice@example.test","to":[null],"subject":"s","body":"b"}""")]
    [InlineData("/mail/queue", "null")]
    [InlineData("/mail/queue", """{"from":"alice@example.test","to":[null],"subject":"s","body":"b"}""")]
    public async Task A_body_that_is_not_a_mail_request_is_a_400_problem(string path, string body)
    {
        await using var app = SampleApp.ForPostfix(TestServers.UnusedPort(), ("Smtp:TlsMode", "None"));
        using var client = app.CreateClient();

        var response = await client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest, await response.Content.ReadAsStringAsync());
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
    }
    [Fact]
    public async Task A_body_with_a_NUL_character_is_delivered_as_text_not_refused()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var app = SampleApp.ForPostfix(TestServers.PostfixPort);
        using var client = app.CreateClient();
        var recipient = TestServers.UniqueRecipient("probe16-nul");

        var response = await client.PostAsJsonAsync("/mail", new { from = "alice@example.test", to = new[] { recipient }, subject = "nul", body = "before\0after\n" });

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var json = await response.Content.ReadFromJsonAsync<JsonElement>();
        json.GetProperty("outcome").GetString().Should().Be("Accepted", json.ToString());
        var stored = await File.ReadAllTextAsync((await TestServers.WaitForMaildirAsync(recipient)).Single());
        stored.Should().NotContain("\0").And.Contain("Content-Transfer-Encoding: base64").And.Contain(Convert.ToBase64String(Encoding.UTF8.GetBytes("before\0after\n")));
    }
}
