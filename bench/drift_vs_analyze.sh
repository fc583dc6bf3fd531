#!/usr/bin/env bash
# irm drift over the demo's series (steps 50, 100, 150, 200 against the base) against the same
# work done as four separate `irm analyze` runs, both without a score store; then a second drift
# with a warm store. Prints wall times and the ratios. Not part of `swift test`; asserts nothing.
#
#   swift build -c release --product irm && bench/drift_vs_analyze.sh [--bootstrap N]
set -euo pipefail
cd "$(dirname "$0")/.."
irm=.build/release/irm
bootstrap=${2:-200}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
demo=checkpoints/demo
steps=(rlhf-step-0050 rlhf-step-0100 rlhf-step-0150 rlhf)
common=(--data $demo/prompts.jsonl --reward-model $demo/rm.h5 --convention separate --bootstrap "$bootstrap" --quiet)
now() { date +%s.%N; }

start=$(now)
for step in "${steps[@]}"; do
    $irm analyze --before $demo/base.h5 --after $demo/$step.h5 "${common[@]}" --no-store --out "$out/analyze-$step"
done
analyze=$(echo "$(now) - $start" | bc)

args=(--base $demo/base.h5)
for step in "${steps[@]}"; do args+=(--checkpoint $demo/$step.h5); done
start=$(now)
$irm drift "${args[@]}" "${common[@]}" --no-store --out "$out/drift"
drift=$(echo "$(now) - $start" | bc)

start=$(now)
$irm drift "${args[@]}" "${common[@]}" --store "$out/store" --out "$out/cold"
cold=$(echo "$(now) - $start" | bc)
start=$(now)
$irm drift "${args[@]}" "${common[@]}" --store "$out/store" --out "$out/warm"
warm=$(echo "$(now) - $start" | bc)

printf 'bootstrap %s, %s\n' "$bootstrap" "$(nproc) cores"
printf '4 x irm analyze (no store)  %6.1f s\n' "$analyze"
printf 'irm drift (no store)        %6.1f s   %.2fx faster than 4 analyze runs\n' "$drift" "$(echo "$analyze / $drift" | bc -l)"
printf 'irm drift, cold store       %6.1f s\n' "$cold"
printf 'irm drift, warm store       %6.1f s   %.0f%% of the cold run (fits and bootstrap remain)\n' "$warm" "$(echo "100 * $warm / $cold" | bc -l)"
