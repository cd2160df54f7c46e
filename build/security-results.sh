#!/usr/bin/env bash
# Regenerates the results table of SECURITY.md from the robustness suites of issue #17 (their TRX output).
# Unit suites always; the integration suites too when MAILPIPE_INTEGRATION=1 (the test servers must be up: see
# build/servers/README.md). Usage: bash build/security-results.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
dotnet test "$root/test/MailPipe.Tests" -c Release --filter "FullyQualifiedName~MailPipe.Tests.Robustness" \
  --logger "trx;LogFileName=unit.trx" --results-directory "$out" >/dev/null || true
if [ "${MAILPIPE_INTEGRATION:-}" = "1" ]; then
  dotnet test "$root/test/MailPipe.IntegrationTests" -c Release --filter "FullyQualifiedName~MailPipe.IntegrationTests.Robustness" \
    --logger "trx;LogFileName=integration.trx" --results-directory "$out" >/dev/null || true
fi
python3 "$root/build/security-results.py" "$root/SECURITY.md" "$out"/*.trx
