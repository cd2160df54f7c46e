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
    echo "building $side ($sha)…"
    dotnet build "$work/src-$side/benchmarks/MailPipe.EndToEnd" -c Release -o "$work/bin-$side" -p:ContinuousIntegrationBuild=false \
      -nologo -v quiet > "$work/build-$side.log" 2>&1 || { cat "$work/build-$side.log"; exit 1; }
  done
}
