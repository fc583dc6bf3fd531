#!/usr/bin/env bash
# Runs the libFuzzer targets for a bounded time each and summarises what they found
# (see scripts/fuzz/README.md). Not part of CI.
#
#   scripts/fuzz/run.sh [SECONDS] [TARGET...]     (defaults: 60 seconds, every target)
#
# Each target fuzzes a working corpus in .fuzz/corpus/<target>/ (git-ignored), which starts as a
# copy of the committed seeds in scripts/fuzz/corpus/<target>/ and keeps what earlier runs found;
# the committed seeds are never written. Crashing, hanging and out-of-memory inputs go to
# .fuzz/artifacts/<target>/, libFuzzer's output to .fuzz/logs/<target>.log.
# Exits 1 when any target found a crash, timeout or OOM in this run.
#
# Environment: FUZZ_REBUILD=1 forces a rebuild; FUZZ_FLAGS adds libFuzzer flags (e.g. -jobs=2).
set -uo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
fuzz_dir="$root/scripts/fuzz"
bin="$root/.build-fuzz/fuzzers"
work="$root/.fuzz"

seconds="${1:-60}"
[ $# -gt 0 ] && shift
case "$seconds" in ''|*[!0-9]*) echo "run.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;; esac

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in "$fuzz_dir"/targets/*.swift; do
        name="$(basename "$f" .swift)"
        [ "$name" = FuzzSupport ] || targets+=("$name")
    done
fi

# Build when a binary is missing or older than the library sources or the fuzz targets.
need_build="${FUZZ_REBUILD:-0}"
for t in "${targets[@]}"; do
    if [ ! -x "$bin/$t" ] || [ -n "$(find Sources Package.swift "$fuzz_dir/targets" -newer "$bin/$t" -type f -print -quit)" ]; then
        need_build=1
    fi
done
if [ "$need_build" != 0 ]; then
    "$fuzz_dir/build.sh" "${targets[@]}" || { echo "run.sh: build failed" >&2; exit 2; }
fi

count_files() { find "$1" -maxdepth 1 -type f 2>/dev/null | wc -l; }
# The sum, or the largest, of libFuzzer's final "stat::NAME: N" lines in a log, or nothing when it
# has none. Each fuzzing process prints them once; with -jobs=N the log holds every job's log.
stat_sum() { grep -o "stat::$1: *[0-9]*" "$2" | grep -o '[0-9]*$' | awk '{ s += $1; n++ } END { if (n) print s }'; }
stat_max() { grep -o "stat::$1: *[0-9]*" "$2" | grep -o '[0-9]*$' | awk '$1 > m { m = $1 } { n++ } END { if (n) print m + 0 }'; }

declare -a rows
found_any=0
for t in "${targets[@]}"; do
    corpus="$work/corpus/$t"
    artifacts="$work/artifacts/$t"
    log="$work/logs/$t.log"
    jobs="$work/jobs/$t"
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")" "$jobs"
    cp -n "$fuzz_dir/corpus/$t"/* "$corpus"/ 2>/dev/null || true
    before="$(count_files "$corpus")"
    stamp="$(mktemp)"
    dict=()
    [ -f "$fuzz_dir/dict/$t.dict" ] && dict=(-dict="$fuzz_dir/dict/$t.dict")

    echo "== $t: ${seconds}s from $before corpus entries (log: ${log#$root/})"
    started=$SECONDS
    # -detect_leaks=0: Foundation and the Swift runtime hold allocations that LeakSanitizer
    # reports as leaks (Data(contentsOf:) of an empty file leaks 4 KB, for one).
    # allocator_may_return_null=1: a huge malloc returns NULL, as it does outside ASan, so that
    # libhdf5's "memory allocation failed" error path is exercised instead of reported as a crash.
    # SWIFT_BACKTRACE=enable=no: the Swift backtracer trips ASan on a trap and hides the stack.
    # It runs in .fuzz/jobs/<target>/, where -jobs=N writes each job's log (fuzz-<job>.log); every
    # path it is given is absolute.
    # shellcheck disable=SC2086
    (cd "$jobs" && SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}" \
        "$bin/$t" "$corpus" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -detect_leaks=0 -artifact_prefix="$artifacts/" "${dict[@]}" ${FUZZ_FLAGS:-} >"$log" 2>&1)
    status=$?
    elapsed=$((SECONDS - started))

    after="$(count_files "$corpus")"
    executions="$(stat_sum number_of_executed_units "$log")"
    # With -fork=N libFuzzer prints no final stats (and no memory use); its last status line
    # "#N: cov: ..." counts the executions of all its processes.
    [ -n "$executions" ] || executions="$(grep -oE '^#[0-9]+:? ' "$log" | tail -1 | tr -dc '0-9')"
    rss="$(stat_max peak_rss_mb "$log")"
    rate=""
    [ -n "$executions" ] && rate=$((executions / (elapsed > 0 ? elapsed : 1)))
    found="$(find "$artifacts" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) -newer "$stamp" | wc -l)"
    rm -f "$stamp"
    [ "$found" -gt 0 ] && found_any=1
    note=""
    if [ "$status" -ne 0 ] && [ "$found" -eq 0 ]; then note="exit $status, see log"; found_any=1; fi
    rows+=("$(printf '%-14s %6ss %12s %8s %8s %8s %12s  %s' "$t" "$elapsed" "${executions:-?}" "${rate:-?}" \
        "${rss:-?}" "$found" "$((after - before))" "$note")")
done

echo
printf '%-14s %7s %12s %8s %8s %8s %12s\n' target time executions exec/s rss-mb crashes new-entries
for row in "${rows[@]}"; do echo "$row"; done
if [ "$found_any" != 0 ]; then
    echo
    echo "Findings are in .fuzz/artifacts/<target>/; reproduce one with:"
    echo "  SWIFT_BACKTRACE=enable=no .build-fuzz/fuzzers/<target> FILE"
    exit 1
fi
