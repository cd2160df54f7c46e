# Sourced by ab-endtoend.sh and ab-instructions.sh: builds the end-to-end harness at two commits into two folders.
# ab_build REPO WORK BEFORE AFTER — for each side (before, after): `git archive` of the commit into WORK/src-SIDE (the
# repository's checkouts are untouched), `dotnet build` of benchmarks/MailPipe.EndToEnd into WORK/bin-SIDE, the short
# sha in WORK/SIDE.sha. Exits the calling script with the build log when a build fails.
ab_build() {
  local repo=$1 work=$2 before=$3 after=$4 side rev sha
  for side in before after; do
    rev=$([ "$side" = before ] && echo "$before" || echo "$after")
    sha=$(git -C "$repo" rev-parse --short "$rev")
    echo "$sha" > "$work/$side.sha"
    mkdir -p "$work/src-$side"
    git -C "$repo" archive "$rev" | tar -x -C "$work/src-$side"
    # The same warm-up at both commits (the harness's instrument, not the library under test): Warmup.cs of this
    # checkout, called where the harness warmed up with 50 messages (MAILPIPE_BENCH_WARMUP=jit: until the JIT is quiet).
    cp "$repo/benchmarks/MailPipe.EndToEnd/Warmup.cs" "$work/src-$side/benchmarks/MailPipe.EndToEnd/Warmup.cs"
    sed -i 's/await RunAsync(result, Math.Min(workload.Messages, 50), record: false);/await Warmup.RunAsync(count => RunAsync(result, count, record: false), workload.Messages, () => result.Failure is not null);/' \
      "$work/src-$side/benchmarks/MailPipe.EndToEnd/Program.cs"
    grep -q 'await Warmup.RunAsync' "$work/src-$side/benchmarks/MailPipe.EndToEnd/Program.cs" || { echo "the harness at $sha has no warm-up line to replace" >&2; exit 1; }
    echo "building $side ($sha)…"
    dotnet build "$work/src-$side/benchmarks/MailPipe.EndToEnd" -c Release -o "$work/bin-$side" -p:ContinuousIntegrationBuild=false \
      -nologo -v quiet > "$work/build-$side.log" 2>&1 || { cat "$work/build-$side.log"; exit 1; }
  done
}
