#!/usr/bin/env bash
# Issue #16: the CLI's batch of 1,000 1 KiB messages, side by side in interleaved rounds, to
#   embedded  mailpipe send DIR --save-dir ...          (the embedded server in the same process)
#   serve     mailpipe send --server 127.0.0.1:PORT DIR (mailpipe serve --listen 127.0.0.1:0, another process)
#   sink      mailpipe send --server 127.0.0.1:2528 DIR (Postfix's smtp-sink of build/servers)
# and prints each rate from the CLI's summary line (messages/s), then the median of the rounds and serve/sink.
#
# Usage: bash benchmarks/scripts/serve-speed.sh [ROUNDS] [SINK_PORT]     (defaults: 5, 2528)
# Env:   MAILPIPE_CLI=PATH  run that build of the tool (e.g. the precompiled publish's MailPipe.Cli) instead of building.
#        MAILPIPE_CLI_B=PATH  a second build, run in the same rounds (embedded and serve only, after the first build's):
#          an A/B comparison on a shared machine, where only figures of the same minutes compare.
#        SAVE_ROOT=DIR  where the messages and everything the servers save go (default: $HOME; /dev/shm takes the
#          file system out of the figure). MESSAGES=N (default 1000), SIZE=BYTES (default 1024).
#
# Where it saves, and why: every message becomes a file of its own (the servers' job), so the rate depends on how fast
# the file system creates files. ext4 skips inodes freed in the last seconds when it allocates one (find_inode_bit /
# recently_deleted): in a directory whose block group sees many deletions (/tmp, churned by test suites) creating a
# file costs several times more. So this script deletes nothing between rounds (each round saves into fresh folders;
# serve keeps one folder), removes everything at the end, and by default works under $HOME rather than /tmp.
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
CLI_B=()
[[ -n "${MAILPIPE_CLI_B:-}" ]] && CLI_B=("$MAILPIPE_CLI_B")

WORK=$(mktemp -d "${SAVE_ROOT:-$HOME}/mailpipe-serve-speed.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
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

# start_serve NAME CLI...: starts `mailpipe serve` saving to $WORK/NAME-inbox; sets PORT.
start_serve() {
    local name=$1; shift
    "$@" serve --listen 127.0.0.1:0 --save-dir "$WORK/$name-inbox" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    PORT=
    for _ in $(seq 100); do
        PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$WORK/$name.log" | sed 's/.*://' || true)
        [[ -n "$PORT" ]] && break
        sleep 0.1
    done
    [[ -n "$PORT" ]] || { echo "serve did not start: $(cat "$WORK/$name.log")" >&2; exit 1; }
}
start_serve serve "${CLI[@]}"; SERVE_PORT=$PORT
if [[ ${#CLI_B[@]} -gt 0 ]]; then start_serve serve-b "${CLI_B[@]}"; SERVE_B_PORT=$PORT; fi

rate() { grep -o '[0-9.]* messages/s' | head -1 | cut -d' ' -f1; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

: >"$WORK/embedded"; : >"$WORK/serve"; : >"$WORK/sink"; : >"$WORK/embedded-b"; : >"$WORK/serve-b"
if [[ ${#CLI_B[@]} -gt 0 ]]; then
    echo "round  embedded  serve  sink  embedded-B  serve-B   (messages/s, CLI summary clock; $MESSAGES x $SIZE bytes; saving under $WORK)"
else
    echo "round  embedded  serve  sink   (messages/s, CLI summary clock; $MESSAGES x $SIZE bytes; saving under $WORK)"
fi
for round in $(seq "$ROUNDS"); do
    e=$("${CLI[@]}" send "$WORK/messages" --save-dir "$WORK/embedded-$round" 2>/dev/null | rate)
    s=$("${CLI[@]}" send --server "127.0.0.1:$SERVE_PORT" "$WORK/messages" | rate)
    k=$("${CLI[@]}" send --server "127.0.0.1:$SINK_PORT" "$WORK/messages" | rate)
    echo "$e" >>"$WORK/embedded"; echo "$s" >>"$WORK/serve"; echo "$k" >>"$WORK/sink"
    if [[ ${#CLI_B[@]} -gt 0 ]]; then
        eb=$("${CLI_B[@]}" send "$WORK/messages" --save-dir "$WORK/embedded-b-$round" 2>/dev/null | rate)
        sb=$("${CLI_B[@]}" send --server "127.0.0.1:$SERVE_B_PORT" "$WORK/messages" | rate)
        echo "$eb" >>"$WORK/embedded-b"; echo "$sb" >>"$WORK/serve-b"
        printf '%5s  %8s  %5s  %5s  %10s  %7s\n' "$round" "$e" "$s" "$k" "$eb" "$sb"
    else
        printf '%5s  %8s  %5s  %5s\n' "$round" "$e" "$s" "$k"
    fi
done

E=$(median <"$WORK/embedded"); S=$(median <"$WORK/serve"); K=$(median <"$WORK/sink")
printf 'median  embedded %s  serve %s  sink %s  serve/sink %.2f\n' "$E" "$S" "$K" "$(echo "$S $K" | awk '{ print $1 / $2 }')"
if [[ ${#CLI_B[@]} -gt 0 ]]; then
    printf 'median  B: embedded %s  serve %s\n' "$(median <"$WORK/embedded-b")" "$(median <"$WORK/serve-b")"
fi
for f in "$WORK"/embedded-1 "$WORK"/serve-inbox; do
    n=$(find "$f" -name '*.eml' | wc -l)
    echo "saved: $f: $n files" >&2
done
