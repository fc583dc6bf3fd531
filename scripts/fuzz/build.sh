#!/usr/bin/env bash
# Builds the libFuzzer targets in scripts/fuzz/targets/ (see scripts/fuzz/README.md).
#
#   scripts/fuzz/build.sh [TARGET...]      (default: every target)
#
# 1. SwiftPM builds IRMKit and its dependencies (ChatTemplate, Yams, CSV, the C modules) into a
#    separate scratch path, .build-fuzz/, with the Swift code compiled under
#    `-sanitize=fuzzer,address`: coverage instrumentation (edges and comparisons) for libFuzzer
#    and AddressSanitizer checks. No executable is linked there.
# 2. Each target is compiled with swiftc against the modules of that build and linked with its
#    object files, libFuzzer and the ASan runtime, into .build-fuzz/fuzzers/<target>.
#
# The C code compiled by SwiftPM (libyaml inside Yams, CAtomicOutput) and the system libraries
# (libhdf5, OpenBLAS, LAPACKE, zlib) are not instrumented.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
scratch="$root/.build-fuzz"
targets_dir="$root/scripts/fuzz/targets"
out="$scratch/fuzzers"

all_targets=()
for f in "$targets_dir"/*.swift; do
    name="$(basename "$f" .swift)"
    [ "$name" = FuzzSupport ] || all_targets+=("$name")
done
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
    [ -f "$targets_dir/$t.swift" ] || { echo "build.sh: no target $t (have: ${all_targets[*]})" >&2; exit 2; }
done

echo "== swift build (IRMKit, -sanitize=fuzzer,address) into $scratch"
swift build -c debug --scratch-path "$scratch" --target IRMKit -Xswiftc -sanitize=fuzzer,address
bin="$(swift build -c debug --scratch-path "$scratch" --show-bin-path)"

# The object files of IRMKit and everything it depends on (no executables, no tests).
objects=()
for module in IRMKit ChatTemplate Yams CYaml CSV CAtomicOutput; do
    dir="$bin/$module.build"
    [ -d "$dir" ] || { echo "build.sh: $dir is missing; did the swift build succeed?" >&2; exit 1; }
    while IFS= read -r -d '' o; do objects+=("$o"); done < <(find "$dir" -name '*.o' -print0)
done

# Module search paths: the built Swift modules, and the module maps of the C modules that
# IRMKit's interface imports.
yams_cyaml="$(dirname "$(find "$scratch/checkouts/Yams" -path '*CYaml/include/module.modulemap' | head -1)")"
includes=(-I "$bin/Modules" -I "$bin")
for dir in Sources/CHDF5 Sources/CZlib Sources/CBLAS Sources/CLapack "$yams_cyaml"; do
    includes+=(-I "$dir" -Xcc -fmodule-map-file="$dir/module.modulemap")
done
# SwiftPM writes the module map of a C target without one of its own into its build folder.
includes+=(-I Sources/CAtomicOutput/include)
for map in "$bin/CAtomicOutput.build/module.modulemap" Sources/CAtomicOutput/include/module.modulemap; do
    [ -f "$map" ] && includes+=(-Xcc -fmodule-map-file="$map")
done
for flag in $(pkg-config --cflags hdf5 zlib openblas lapacke); do includes+=(-Xcc "$flag"); done
read -r -a libs <<<"$(pkg-config --libs hdf5 zlib openblas lapacke)"

mkdir -p "$out"
for t in "${targets[@]}"; do
    echo "== linking $out/$t"
    # ld.gold warns "Cannot export local symbol __asan_*" for every target; the warning is harmless.
    swiftc -sanitize=fuzzer,address -parse-as-library -swift-version 6 -g \
        "${includes[@]}" \
        "$targets_dir/$t.swift" "$targets_dir/FuzzSupport.swift" \
        "${objects[@]}" "${libs[@]}" \
        -o "$out/$t" 2> >(grep -v 'Cannot export local symbol' >&2)
done
echo "== built: ${targets[*]}"
