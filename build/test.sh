#!/usr/bin/env bash
# build/test.sh - THE test command. Run as root: installs and starts the loopback test SMTP servers
# (build/servers/up-all.sh), runs every test (dotnet test MailPipe.sln -c Release -m:1), stops the
# servers again (build/servers/down-all.sh, also on failure or Ctrl-C) and ends with the line
#   N passed, N failed            (", N skipped" is appended when tests were skipped)
# summed over the per-assembly summaries of dotnet test. Exit status: non-zero if the servers did
# not start, dotnet test failed, or no test ran.
#
# Env:
#   MAILPIPE_TEST_ARGS   extra arguments for dotnet test (shell words), e.g.
#                        MAILPIPE_TEST_ARGS='--filter "Category!=Slow" --no-restore'
#   MAILPIPE_TEST_NO_SERVERS=1  neither start nor stop the servers (they are already running)
#   MAILPIPE_TEST_LOG    where the dotnet test output is kept (default: a new /tmp/mailpipe-test.*.log)
#   MAILPIPE_TEST_SOLUTION  solution to test (default MailPipe.sln; MailPipe.slnx if only that exists)
# Exported to the tests: MAILPIPE_INTEGRATION=1, the server ports, the cert and mail locations
# (see below; the defaults are the ones build/servers/*-up.sh use, overrides apply to both).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
SERVERS=$ROOT/build/servers

export MAILPIPE_INTEGRATION=1
export MAILPIPE_POSTFIX_PORT=${MAILPIPE_POSTFIX_PORT:-2525}
export MAILPIPE_POSTFIX_TLS_PORT=${MAILPIPE_POSTFIX_TLS_PORT:-4650}
export MAILPIPE_POSTFIX_SUBMISSION_PORT=${MAILPIPE_POSTFIX_SUBMISSION_PORT:-5870}
export MAILPIPE_POSTFIX_IDLE_PORT=${MAILPIPE_POSTFIX_IDLE_PORT:-2540}
export MAILPIPE_POSTFIX_LIMIT8_PORT=${MAILPIPE_POSTFIX_LIMIT8_PORT:-2541}
export MAILPIPE_POSTFIX_LIMIT4_PORT=${MAILPIPE_POSTFIX_LIMIT4_PORT:-2542}
export MAILPIPE_POSTFIX_NO8BITMIME_PORT=${MAILPIPE_POSTFIX_NO8BITMIME_PORT:-2543}
export MAILPIPE_POSTFIX_NOSMTPUTF8_PORT=${MAILPIPE_POSTFIX_NOSMTPUTF8_PORT:-2544}
export MAILPIPE_POSTFIX_STRICTNL_PORT=${MAILPIPE_POSTFIX_STRICTNL_PORT:-2545}
export MAILPIPE_EXIM_PORT=${MAILPIPE_EXIM_PORT:-2526}
export MAILPIPE_AIOSMTPD_PORT=${MAILPIPE_AIOSMTPD_PORT:-2527}
export MAILPIPE_SINK_PORT=${MAILPIPE_SINK_PORT:-2528}
export MAILPIPE_TLS_DIR=${MAILPIPE_TLS_DIR:-/tmp/mailpipe-tls}
export MAILPIPE_TLS_CERT=${MAILPIPE_TLS_CERT:-$MAILPIPE_TLS_DIR/cert.pem}
export MAILPIPE_MAILDIR=${MAILPIPE_MAILDIR:-/tmp/mailpipe-maildir}
# Also handy for tests (not required): the other servers' mail folders and the credentials.
export MAILPIPE_EXIM_MAILDIR=${MAILPIPE_EXIM_MAILDIR:-${MAILPIPE_EXIM_STATE:-/tmp/mailpipe-exim}/maildir}
export MAILPIPE_AIOSMTPD_MESSAGES=${MAILPIPE_AIOSMTPD_MESSAGES:-${MAILPIPE_AIOSMTPD_STATE:-/tmp/mailpipe-aiosmtpd}/messages}
export MAILPIPE_SINK_DUMP_DIR=${MAILPIPE_SINK_DUMP_DIR:-${MAILPIPE_SINK_STATE:-/tmp/mailpipe-sink}/dump}
export MAILPIPE_USER=${MAILPIPE_USER:-testuser}
export MAILPIPE_PASS=${MAILPIPE_PASS:-Test-Pass-123}
# Plain, parseable dotnet output (no terminal logger, no first-run banner, no telemetry).
export MSBUILDTERMINALLOGGER=off DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 \
  DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

servers_started=0
stop_servers() { # once; before the closing line, and from the EXIT trap on any early exit
  if ((servers_started)); then servers_started=0; bash "$SERVERS/down-all.sh" || true; fi
}
trap stop_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ ${MAILPIPE_TEST_NO_SERVERS:-0} != 1 ]]; then
  if [[ $(id -u) != 0 ]]; then
    echo "test.sh: run as root (it installs and starts the test SMTP servers)," \
      "or set MAILPIPE_TEST_NO_SERVERS=1 when they are already running" >&2
    exit 1
  fi
  servers_started=1
  if ! bash "$SERVERS/up-all.sh"; then
    echo "test.sh: starting the test servers failed" >&2
    stop_servers
    echo "0 passed, 0 failed"
    exit 1
  fi
fi

SLN=${MAILPIPE_TEST_SOLUTION:-MailPipe.sln}
if [[ -z ${MAILPIPE_TEST_SOLUTION:-} && ! -e $SLN && -e MailPipe.slnx ]]; then SLN=MailPipe.slnx; fi

LOG=${MAILPIPE_TEST_LOG:-$(mktemp /tmp/mailpipe-test.XXXXXX.log)}
extra=()
eval "extra=(${MAILPIPE_TEST_ARGS:-})" || { echo "test.sh: cannot parse MAILPIPE_TEST_ARGS" >&2; exit 2; }

# -m:1: one test project at a time. The projects share the loopback servers (Postfix listeners, Maildirs, connection
# limits) and a 2-core machine; run side by side, each one's timing depends on what the others do (more load, more
# chance of a slow step). MAILPIPE_TEST_ARGS may override it (a later -m wins).
echo "test.sh: dotnet test $SLN -c Release -m:1 ${extra[*]} (output also in $LOG)"
dotnet test "$SLN" -c Release -m:1 "${extra[@]}" </dev/null 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}

# Sum the per-assembly summary lines of the VSTest console logger, e.g.
#   Passed!  - Failed:     0, Passed:    42, Skipped:     0, Total:    42, Duration: 1 s - X.dll (net10.0)
#   Failed!  - Failed:     1, Passed:    41, Skipped:     0, Total:    42, Duration: ...
# (colour codes stripped). If there are none, fall back to the terminal logger's
#   Test summary: total: 42, failed: 0, succeeded: 42, skipped: 0, duration: 1.2s
read -r passed failed skipped found < <(sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$LOG" | awk '
  match($0, /(Passed|Failed|Skipped)! +- +Failed: *[0-9]+, *Passed: *[0-9]+, *Skipped: *[0-9]+/) {
    s = substr($0, RSTART, RLENGTH); gsub(/[^0-9,]/, "", s); split(s, n, ",")
    f += n[1]; p += n[2]; k += n[3]; a++; next
  }
  match($0, /Test summary: total: *[0-9]+, *failed: *[0-9]+, *succeeded: *[0-9]+, *skipped: *[0-9]+/) {
    s = substr($0, RSTART, RLENGTH); gsub(/[^0-9,]/, "", s); split(s, n, ",")
    tf += n[2]; tp += n[3]; tk += n[4]; t++
  }
  END {
    if (a) print p + 0, f + 0, k + 0, a
    else if (t) print tp + 0, tf + 0, tk + 0, t
    else print 0, 0, 0, 0
  }')

status=0
if ((rc != 0)); then
  echo "test.sh: dotnet test exited with $rc" >&2; status=$rc
elif ((found == 0 || passed + failed == 0)); then
  echo "test.sh: no test ran (no result summary in $LOG)" >&2; status=1
elif ((failed > 0)); then
  status=1
fi
stop_servers
line="$passed passed, $failed failed"
((skipped > 0)) && line+=", $skipped skipped"
echo "$line"
exit "$status"
