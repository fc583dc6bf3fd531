#!/usr/bin/env bash
# The 7B memory benchmark of docs/performance.md: a random-init Llama-2-7B-shape pair in bf16
# (13.5 GB each, made by bench/make_llama_pair.py, never committed) is scored with
# `irm score --model tuned --reference base` on 32 short samples. Prints peak RSS, the peak of
# anonymous (non-file-backed) memory, load time and tokens/s. Not a test; asserts nothing.
#
#   bench/memory_7b.sh [--irm .build/release/irm] [--out bench/out/llama-7b] [--threads N] [--python .venv/bin/python]
#   (extra arguments after -- go to make_llama_pair.py, e.g. -- --layers 4 for a quick run)
set -euo pipefail
cd "$(dirname "$0")/.."
irm=.build/release/irm
out=bench/out/llama-7b
threads=$(nproc)
python=.venv/bin/python
while (($#)); do
    case "$1" in
        --irm) irm=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --python) python=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "memory_7b.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"
if [[ ! -f $out/base.h5 || ! -f $out/tuned.h5 ]]; then
    free_gb=$(df --output=avail -BG "$out" | tail -1 | tr -dc 0-9)
    if ((free_gb < 45)); then
        echo "memory_7b.sh: $free_gb GB free under $out; making the pair needs about 45 GB" >&2
        exit 1
    fi
    "$python" bench/make_llama_pair.py --irm "$irm" --out "$out" "$@"
fi

echo "== machine"
grep -m1 'model name' /proc/cpuinfo
echo "memory: $(free -g | awk '/Mem:/ {print $2}') GB; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$irm" doctor | grep -E '^blas' || true
ls -l "$out"/base.h5 "$out"/tuned.h5

# Samples /proc/PID/status every 0.2 s for the largest RssAnon and RssFile; VmHWM is the peak RSS.
log=$(mktemp)
"$irm" score --model "$out/tuned.h5" --reference "$out/base.h5" --data "$out/data.jsonl" --out "$out/scores.jsonl" \
    --threads "$threads" --profile 2>"$log" &
pid=$!
peak_anon=0 peak_file=0 hwm=0
while kill -0 "$pid" 2>/dev/null; do
    if [[ -r /proc/$pid/status ]]; then
        anon=$(awk '/RssAnon/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
        file=$(awk '/RssFile/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
        mark=$(awk '/VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
        ((${anon:-0} > peak_anon)) && peak_anon=$anon
        ((${file:-0} > peak_file)) && peak_file=$file
        ((${mark:-0} > hwm)) && hwm=$mark
    fi
    sleep 0.2
done
status=0
wait "$pid" || status=$?
cat "$log"
echo "== result (exit status $status)"
printf 'peak RSS %.2f GB; peak anonymous RSS %.2f GB; peak file-backed RSS %.2f GB\n' \
    "$(echo "$hwm / 1048576" | bc -l)" "$(echo "$peak_anon / 1048576" | bc -l)" "$(echo "$peak_file / 1048576" | bc -l)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -f "$log"
exit "$status"
