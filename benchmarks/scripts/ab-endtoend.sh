#!/usr/bin/env bash
# A/B comparison of the end-to-end harness (benchmarks/MailPipe.EndToEnd) at two commits, for issue #9's "no
# performance regression" check: builds the harness at BEFORE and at AFTER into two folders (from `git archive`, so the
# repository's checkouts are untouched), then runs them alternately — A B, B A, A B … — ROUNDS times each, against the
# same server, for 1 KiB and 64 KiB messages with mailpipe-send and mailpipe-sendbatch (one recipient). Prints, per
# case, the median and min–max over the rounds of msgs/s, client CPU µs/msg and allocated B/msg for both sides, and
# the verdict: pass when the median msgs/s after is at most 5 % below before (or the min–max ranges overlap), the
# median CPU µs/msg at most 5 % higher, and the median B/msg at most 16 B higher.
#
# Usage: benchmarks/scripts/ab-endtoend.sh [BEFORE=main] [AFTER=HEAD] [ROUNDS=7] [PORT=own]
#   PORT: `own` (default) starts a smtp-sink of this script's own (Postfix's, no per-message files) on a free port;
#         a number sends to a server already listening on 127.0.0.1 (e.g. 2528, build/servers/smtp-sink-up.sh's,
#         which writes every message to a file: server-bound and noisier).
# Environment:
#   AB_MESSAGES_1K (default 20000), AB_MESSAGES_64K (default 6000): messages per run, so that each measured run lasts
#       about 2 s (a 2,000-message run at 64 KiB lasted ≈ 0.7 s and its CPU column spread by ± 20 % between rounds;
#       a 2,000-message run at 1 KiB ≈ 0.2 s).
#   AB_PIN (default 1 when taskset exists and there are ≥ 2 CPUs): the harness runs on CPU 0 and the script's own sink
#       on CPU 1, on both sides alike. Unpinned, whether the client's threads and the sink share a core changes
#       from one run to the next and with it the thread pool's spinning, which is most of a one-at-a-time send's CPU
#       (benchmarks/README.md, issue #9 section of session 3). AB_PIN=0: no pinning.
#   AB_ENV (default `MAILPIPE_BENCH_WARMUP=jit DOTNET_TC_CallCountingDelayMs=0`): environment of both sides' runs,
#       space-separated NAME=VALUE words.
#       MAILPIPE_BENCH_WARMUP=jit: each client warms up until the JIT is quiet (benchmarks/MailPipe.EndToEnd/Warmup.cs,
#       put into both commits' harness by ab-build.sh). With the harness's old 50-message warm-up, the tiered JIT's
#       background promotions (seconds of them) landed in the measured runs: up to +40 µs/msg of one-at-a-time
#       sending's CPU, more for the commit with more methods (benchmarks/README.md, issue #9 in session 4).
#       DOTNET_TC_CallCountingDelayMs=0: the runtime counts calls at once instead of after a pause in new tier-0
#       compilations (100 ms, ×10 on one CPU), so the promotions happen in the warm-up. AB_ENV= (empty): the old
#       warm-up. Add e.g. DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 to take the thread pool's hops (and its
#       spinning) out of the CPU column.
#   AB_INNER (default 5): measured runs per process, after its one warm-up; the process reports their median, and the
#       verdict takes the median over the rounds of those medians. A process's runs spread as widely as separate
#       processes do (one process, 8 runs of 20,000 1 KiB messages: `SendAsync` 87–118 CPU µs/msg, batch 47–63), so
#       the noise is per run, not per process, and a run costs ≈ 2 s against a process's ≈ 15–40 s of warm-up.
#       AB_INNER=1: one measured run per process (sessions 3 and 4).
# Every round is a fresh process per side and size; its own warm-up runs first.
set -euo pipefail

before=${1:-main}
after=${2:-HEAD}
rounds=${3:-7}
port=${4:-own}
messages_1k=${AB_MESSAGES_1K:-20000}
messages_64k=${AB_MESSAGES_64K:-6000}
inner=${AB_INNER:-5}
pin=${AB_PIN:-}
read -r -a runtime_env <<< "${AB_ENV-MAILPIPE_BENCH_WARMUP=jit DOTNET_TC_CallCountingDelayMs=0}"
if [[ -z $pin ]]; then
  if command -v taskset >/dev/null && (( $(nproc) >= 2 )); then pin=1; else pin=0; fi
fi
repo=$(git rev-parse --show-toplevel)
work=$(mktemp -d /tmp/mailpipe-ab.XXXXXX)
echo "work folder: $work"

. "$(dirname "${BASH_SOURCE[0]}")/ab-build.sh"
ab_build "$repo" "$work" "$before" "$after"

sink_pid=
stop_sink() { [[ -n $sink_pid ]] && kill "$sink_pid" 2>/dev/null; true; }
trap stop_sink EXIT
if [[ $port == own ]]; then
  sink=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
  [[ -x $sink ]] || { echo "smtp-sink not found (Debian package postfix); give a PORT instead" >&2; exit 1; }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  sink_cmd=("$sink" -u nobody "127.0.0.1:$port" 1024)
  if [[ $pin == 1 ]]; then sink_cmd=(taskset -c 1 "${sink_cmd[@]}"); fi
  "${sink_cmd[@]}" </dev/null >"$work/sink.log" 2>&1 &
  sink_pid=$!
  for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  echo "sink: smtp-sink pid $sink_pid on 127.0.0.1:$port$([[ $pin == 1 ]] && echo ', CPU 1')"
fi
client=(env "${runtime_env[@]}" dotnet)
if [[ $pin == 1 ]]; then client=(env "${runtime_env[@]}" taskset -c 0 dotnet); fi
echo "messages per run: 1 KiB $messages_1k, 64 KiB $messages_64k; measured runs per process: $inner; pinned: $pin; rounds: $rounds; runtime environment: ${runtime_env[*]}"

run() { # side round
  local size messages
  for size in 1k 64k; do
    messages=$([[ $size == 1k ]] && echo "$messages_1k" || echo "$messages_64k")
    "${client[@]}" "$work/bin-$1/MailPipe.EndToEnd.dll" --server-port "$port" --sizes "$size" --recipients 1 \
      --clients mailpipe-send,mailpipe-sendbatch --rounds "$inner" --messages "$messages" --time-limit 120 \
      --output "$work/$1-$2-$size.md" > /dev/null
  done
}

for r in $(seq 1 "$rounds"); do
  if (( r % 2 )); then order="before after"; else order="after before"; fi
  for side in $order; do
    echo "round $r: $side"
    run "$side" "$r"
  done
done

python3 - "$work" "$rounds" "$inner" <<'PY'
import re, statistics, sys, pathlib
work, rounds, inner = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def num(cell):
    m = re.match(r"\s*([0-9][0-9,]*(?:\.[0-9]+)?)", cell)
    return float(m.group(1).replace(",", "")) if m else float("nan")
data = {}
for side in ("before", "after"):
    for r in range(1, rounds + 1):
        for line in "\n".join(f.read_text() for f in sorted(work.glob(f"{side}-{r}-*.md"))).splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 9 and cells[2].startswith("mailpipe-"):
                key = (cells[0], cells[2])
                d = data.setdefault(key, {}).setdefault(side, {"rate": [], "bytes": [], "cpu": []})
                d["rate"].append(num(cells[3])); d["bytes"].append(num(cells[6])); d["cpu"].append(num(cells[7]))
sha = {s: (work / f"{s}.sha").read_text().strip() for s in ("before", "after")}
def fmt(values, spec):
    return f"{format(statistics.median(values), spec)} ({format(min(values), spec)}–{format(max(values), spec)})"
print(f"\n| message | client | msgs/s before ({sha['before']}) | msgs/s after ({sha['after']}) | CPU µs/msg before | CPU µs/msg after | B/msg before | B/msg after | verdict |")
print("|---|---|---:|---:|---:|---:|---:|---:|---|")
ok_all = True
for (size, client), sides in sorted(data.items()):
    b, a = sides["before"], sides["after"]
    rate_ok = statistics.median(a["rate"]) >= 0.95 * statistics.median(b["rate"]) or (min(a["rate"]) <= max(b["rate"]) and min(b["rate"]) <= max(a["rate"]))
    cpu_ok = statistics.median(a["cpu"]) <= 1.05 * statistics.median(b["cpu"])
    bytes_ok = statistics.median(a["bytes"]) <= statistics.median(b["bytes"]) + 16
    verdict = "pass" if rate_ok and cpu_ok and bytes_ok else "FAIL (" + ", ".join(n for n, ok in (("msgs/s", rate_ok), ("CPU", cpu_ok), ("B/msg", bytes_ok)) if not ok) + ")"
    ok_all &= verdict == "pass"
    print(f"| {size} | {client} | {fmt(b['rate'], ',.0f')} | {fmt(a['rate'], ',.0f')} | {fmt(b['cpu'], '.0f')} | {fmt(a['cpu'], '.0f')} | {fmt(b['bytes'], '.0f')} | {fmt(a['bytes'], '.0f')} | {verdict} |")
print(f"\n{rounds} rounds, alternating, {inner} measured run(s) per process; medians over the rounds of each process's median (min–max). Overall: {'pass' if ok_all else 'FAIL'}")
PY
