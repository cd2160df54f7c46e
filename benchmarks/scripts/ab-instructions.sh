#!/usr/bin/env bash
# Instructions per message of the end-to-end harness's client process at two commits, counted by valgrind's callgrind:
# a figure that, unlike CPU time, does not move with the machine's load, the thread pool's spinning or where the
# scheduler puts the threads (benchmarks/README.md, issue #9, session 3). User-space instructions only (the kernel's
# share of a send, the socket system calls, is not counted; it is the same for both commits as long as they make the
# same system calls, which `strace -f -c` shows).
#
# Each commit's harness (built as ab-endtoend.sh builds it) sends N1 and then N2 messages in two processes under
# callgrind, against one smtp-sink of this script's own; instructions per message = (I(N2) − I(N1)) / (N2 − N1), which
# takes out the start-up, the JIT and the warm-up. The JIT compiles every method once, fully optimised
# (DOTNET_TieredCompilation=0: tiering under valgrind is too slow to reach tier 1), and the thread pool does not spin
# (DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0). Expect ± 2,000 instructions per message from run to run (which
# replies arrive together with others changes the path a little).
#
# Usage: benchmarks/scripts/ab-instructions.sh [BEFORE=main] [AFTER=HEAD] [N1=1000] [N2=9000] [CLIENTS=mailpipe-send,mailpipe-sendbatch] [SIZE=1k]
# Needs valgrind (Debian package valgrind) and smtp-sink (package postfix). A run of 9,000 messages takes 1–2 minutes.
set -euo pipefail

before=${1:-main}
after=${2:-HEAD}
n1=${3:-1000}
n2=${4:-9000}
clients=${5:-mailpipe-send,mailpipe-sendbatch}
size=${6:-1k}
repo=$(git rev-parse --show-toplevel)
command -v valgrind >/dev/null || { echo "valgrind not found (apt-get install valgrind)" >&2; exit 1; }
sink=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
[[ -x $sink ]] || { echo "smtp-sink not found (Debian package postfix)" >&2; exit 1; }
work=$(mktemp -d /tmp/mailpipe-abi.XXXXXX)
echo "work folder: $work"

. "$(dirname "${BASH_SOURCE[0]}")/ab-build.sh"
ab_build "$repo" "$work" "$before" "$after"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$sink" -u nobody "127.0.0.1:$port" 1024 </dev/null >"$work/sink.log" 2>&1 &
sink_pid=$!
trap 'kill $sink_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

count() { # side client messages -> instructions
  DOTNET_TieredCompilation=0 DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0 \
    valgrind --tool=callgrind --callgrind-out-file="$work/$1-$2-$3.out" \
    dotnet "$work/bin-$1/MailPipe.EndToEnd.dll" --server-port "$port" --sizes "$size" --recipients 1 --clients "$2" \
      --rounds 1 --messages "$3" --time-limit 3600 > "$work/$1-$2-$3.log" 2>&1
  grep -o 'Collected : [0-9]*' "$work/$1-$2-$3.log" | grep -o '[0-9]*$'
}

printf '\n| client (%s, 1 recipient) | instructions/msg before (%s) | after (%s) | change |\n|---|---:|---:|---:|\n' \
  "$size" "$(cat "$work/before.sha")" "$(cat "$work/after.sha")"
for client in ${clients//,/ }; do
  declare -A per
  for side in before after; do
    i1=$(count "$side" "$client" "$n1")
    i2=$(count "$side" "$client" "$n2")
    per[$side]=$(( (i2 - i1) / (n2 - n1) ))
  done
  printf '| %s | %s | %s | %+.1f %% |\n' "$client" "${per[before]}" "${per[after]}" \
    "$(python3 -c "print((${per[after]} / ${per[before]} - 1) * 100)")"
done
echo
echo "callgrind, DOTNET_TieredCompilation=0, DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0; (I($n2) − I($n1)) / $((n2 - n1)) messages"
