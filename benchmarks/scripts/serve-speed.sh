#!/usr/bin/env bash
# Issue #16: the CLI's batch of 1,000 1 KiB messages, side by side in interleaved rounds, to
#   embedded  mailpipe send DIR --save-dir ...          (the embedded server in the same process)
#   serve     mailpipe send --server 127.0.0.1:PORT DIR (mailpipe serve --listen 127.0.0.1:0, another process)
#   sink      mailpipe send --server 127.0.0.1:2528 DIR (Postfix's smtp-sink of build/servers)
# and prints each rate from the CLI's summary line (messages/s), then the median of the rounds and serve/sink.
#
# Usage: bash benchmarks/scripts/serve-speed.sh [ROUNDS] [SINK_PORT]     (defaults: 5, 2528)
# Env:   SAVE_ROOT=DIR  where the servers save (default: a temporary folder under $TMPDIR or /tmp; /dev/shm
#        takes the file system out of the figure), MESSAGES=N (default 1000), SIZE=BYTES (default 1024),
#        MAILPIPE_CLI=PATH  run that build of the tool (e.g. a precompiled publish's MailPipe.Cli) instead of building.
set -euo pipefail

ROUNDS=${1:-5}
SINK_PORT=${2:-2528}
MESSAGES=${MESSAGES:-1000}
SIZE=${SIZE:-1024}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

if [[ -n "${MAILPIPE_CLI:-}" ]]; then
    CLI=("$MAILPIPE_CLI")    # another build of the tool, e.g. the precompiled publish (benchmarks/README.md, issue #15)
else
    dotnet build "$ROOT/src/MailPipe.Cli" -c Release -v quiet -nologo >/dev/null
    CLI=(dotnet "$ROOT/src/MailPipe.Cli/bin/Release/net10.0/MailPipe.Cli.dll")
fi

WORK=$(mktemp -d "${SAVE_ROOT:-${TMPDIR:-/tmp}}/mailpipe-serve-speed.XXXXXX")
SERVE_PID=
cleanup() {
    if [[ -n "$SERVE_PID" ]]; then kill -TERM "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# The messages: SIZE bytes each, CRLF line ends, one recipient.
mkdir -p "$WORK/messages"
python3 - "$WORK/messages" "$MESSAGES" "$SIZE" <<'PY'
import sys
folder, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(count):
    head = f"From: sender@example.test\r\nTo: rcpt{i}@example.test\r\nSubject: message {i:05d}\r\n\r\n"
    body = ""
    while len(head) + len(body) < size - 74:
        body += "x" * 70 + "\r\n"
    body += "y" * max(0, size - len(head) - len(body) - 2) + "\r\n"
    with open(f"{folder}/m{i:05d}.eml", "w", newline="") as f:
        f.write(head + body)
PY

"${CLI[@]}" serve --listen 127.0.0.1:0 --save-dir "$WORK/serve-inbox" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 100); do
    PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$WORK/serve.log" | sed 's/.*://' || true)
    [[ -n "$PORT" ]] && break
    sleep 0.1
done
[[ -n "${PORT:-}" ]] || { echo "serve did not start: $(cat "$WORK/serve.log")" >&2; exit 1; }

rate() { grep -o '[0-9.]* messages/s' | head -1 | cut -d' ' -f1; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

: >"$WORK/embedded"; : >"$WORK/serve"; : >"$WORK/sink"
echo "round  embedded  serve  sink   (messages/s, CLI summary clock; $MESSAGES x $SIZE bytes)"
for round in $(seq "$ROUNDS"); do
    rm -rf "$WORK/embedded-outbox" "$WORK/serve-inbox"/*
    e=$("${CLI[@]}" send "$WORK/messages" --save-dir "$WORK/embedded-outbox" 2>/dev/null | rate)
    s=$("${CLI[@]}" send --server "127.0.0.1:$PORT" "$WORK/messages" | rate)
    k=$("${CLI[@]}" send --server "127.0.0.1:$SINK_PORT" "$WORK/messages" | rate)
    echo "$e" >>"$WORK/embedded"; echo "$s" >>"$WORK/serve"; echo "$k" >>"$WORK/sink"
    printf '%5s  %8s  %5s  %5s\n' "$round" "$e" "$s" "$k"
done

E=$(median <"$WORK/embedded"); S=$(median <"$WORK/serve"); K=$(median <"$WORK/sink")
printf 'median  embedded %s  serve %s  sink %s  serve/sink %.2f\n' "$E" "$S" "$K" "$(echo "$S $K" | awk '{ print $1 / $2 }')"
