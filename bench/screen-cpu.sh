#!/usr/bin/env bash
# How much CPU the live screen costs while a run trains: runs `kiln train` with its live screen
# in a 120x40 tmux pane, and over a window of training reads each thread's CPU time from /proc.
# The screen is the main thread (draws) plus kiln-input (keys); the trainer is the reference
# (its name also covers the CPU backend's worker threads, which it starts).
#
#   bench/screen-cpu.sh [SECONDS] [EXPERIMENT]     (default: 10 s of experiments/digits.toml)
#
# digits is the harshest case for the screen: hundreds of batch events a second to absorb.
# KILN=/path/to/kiln uses that binary; otherwise it is built with cargo. Needs tmux.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
seconds="${1:-10}"
experiment="${2:-$here/../experiments/digits.toml}"
if [ -z "${KILN:-}" ]; then
  (cd "$here/.." && cargo build --release --quiet)
  KILN="${CARGO_TARGET_DIR:-$here/../target}/release/kiln"
fi

runs=$(mktemp -d)
session="kiln-screen-cpu-$$"
socket="$runs/tmux.sock"
cleanup() { tmux -S "$socket" kill-server 2>/dev/null || true; rm -rf "$runs"; }
trap cleanup EXIT
tmux -S "$socket" new-session -d -s "$session" -x 120 -y 40 \
  "$KILN" train "$experiment" --set train.epochs=100000 --backend cpu --runs-dir "$runs"

pid=""
for _ in $(seq 100); do
  pid=$(pgrep -f -n "train $experiment --set train.epochs=100000" || true)
  [ -n "$pid" ] && [ -d "/proc/$pid/task" ] && break
  sleep 0.1
done
[ -n "$pid" ] || { echo "kiln did not start" >&2; exit 1; }
sleep 3 # past the start-up: dataset, model, first epoch

# utime + stime (clock ticks) per thread name, summed over threads of that name.
ticks() {
  for stat in /proc/"$pid"/task/*/stat; do
    # The name is in parentheses and may hold spaces; fields after it are space-separated.
    line=$(cat "$stat" 2>/dev/null) || continue
    name=${line#*(}; name=${name%%)*}
    # Unnamed threads inherit their creator's name; the main thread is the one with the pid.
    [ "${stat#/proc/$pid/task/$pid/}" = stat ] && name="main"
    rest=${line##*) }
    read -r -a fields <<<"$rest"
    echo "$name ${fields[11]} ${fields[12]}"
  done | awk '{t[$1] += $2 + $3} END {for (n in t) print n, t[n]}'
}
before=$(ticks)
start=$(date +%s.%N)
sleep "$seconds"
after=$(ticks)
end=$(date +%s.%N)
tmux -S "$socket" send-keys -t "$session" s 2>/dev/null || true

hz=$(getconf CLK_TCK)
python3 - "$hz" "$start" "$end" <<PY
import sys
hz, start, end = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
def parse(text):
    return {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line}
before, after = parse("""$before"""), parse("""$after""")
wall = end - start
share = {name: (after[name] - before.get(name, 0)) / hz / wall * 100 for name in after}
screen = share.get("main", 0.0) + share.get("kiln-input", 0.0)
print(f"over {wall:.1f} s of training, share of one core:")
for name in sorted(share, key=share.get, reverse=True):
    print(f"  {name:<16} {share[name]:6.1f}%")
print(f"live screen (main thread + kiln-input): {screen:.1f}% of a core")
PY
