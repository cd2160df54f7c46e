#!/usr/bin/env bash
# A/B comparison of the end-to-end harness (benchmarks/MailPipe.EndToEnd) at two commits, for issue #9's "no
# performance regression" check: builds the harness at BEFORE and at AFTER into two folders (from `git archive`, so the
# repository's checkouts are untouched), then runs them alternately — A B, B A, A B … — ROUNDS times each, against the
# same server, for 1 KiB and 64 KiB messages with mailpipe-send and mailpipe-sendbatch (one recipient). Prints, per
# case, the median and min–max over the rounds of msgs/s, client CPU µs/msg and allocated B/msg for both sides, and
# the verdict: pass when the median msgs/s after is at most 5 % below before (or the min–max ranges overlap), the
# median CPU µs/msg at most 5 % higher, and the median B/msg at most 16 B higher.
#
# Usage: benchmarks/scripts/ab-endtoend.sh [BEFORE=main] [AFTER=HEAD] [ROUNDS=5] [PORT=2528]
#   PORT: a server already listening on 127.0.0.1 (smtp-sink from build/servers/smtp-sink-up.sh listens on 2528).
# Each run is the harness with --rounds 1, so every round is a fresh process; its own warm-up (50 messages) runs first.
set -euo pipefail

before=${1:-main}
after=${2:-HEAD}
rounds=${3:-5}
port=${4:-2528}
repo=$(git rev-parse --show-toplevel)
work=$(mktemp -d /tmp/mailpipe-ab.XXXXXX)
echo "work folder: $work"

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

run() { # side round
  dotnet "$work/bin-$1/MailPipe.EndToEnd.dll" --server-port "$port" --sizes 1k,64k --recipients 1 \
    --clients mailpipe-send,mailpipe-sendbatch --rounds 1 --output "$work/$1-$2.md" > /dev/null
}

for r in $(seq 1 "$rounds"); do
  if (( r % 2 )); then order="before after"; else order="after before"; fi
  for side in $order; do
    echo "round $r: $side"
    run "$side" "$r"
  done
done

python3 - "$work" "$rounds" <<'PY'
import re, statistics, sys, pathlib
work, rounds = pathlib.Path(sys.argv[1]), int(sys.argv[2])
def num(cell):
    m = re.match(r"\s*([0-9][0-9,]*(?:\.[0-9]+)?)", cell)
    return float(m.group(1).replace(",", "")) if m else float("nan")
data = {}
for side in ("before", "after"):
    for r in range(1, rounds + 1):
        for line in (work / f"{side}-{r}.md").read_text().splitlines():
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
print(f"\n{rounds} rounds, alternating; medians (min–max). Overall: {'pass' if ok_all else 'FAIL'}")
PY
