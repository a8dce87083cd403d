#!/usr/bin/env bash
# The whole default test suite on a fresh Debian 12 machine: install the dependencies, build
# everything with warnings as errors, and run CTest (long soaks and fuzz runs carry the `soak`
# label and are left out; run them with `ctest --test-dir build -L soak`), then the Windows
# tester library (label `windows`: cross-build, export table, the example under Wine).
#   tools/test.sh              the default suite in build/
#   tools/test.sh --sanitize   the same suite, Verilator benches included, built with
#                              AddressSanitizer and UndefinedBehaviorSanitizer in build-sanitize/
#                              (about twice the build time; any finding fails the run). The
#                              Windows label is left out: it is a mingw cross-build run under
#                              Wine, which the sanitizers cannot instrument; so is the soak's
#                              8-engine card model, which only the soak label uses.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build
extra=()
windows=1
case "${1:-}" in
    "") ;;
    --sanitize)
        build=build-sanitize
        extra=(-DWAFERPROV_SANITIZE=ON)
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
        export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
        windows=0
        ;;
    *)
        echo "usage: tools/test.sh [--sanitize]" >&2
        exit 2
        ;;
esac

./tools/install-deps.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWAFERPROV_WERROR=ON "${extra[@]}"
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" -j"$(nproc)" --label-exclude 'soak|windows' --output-on-failure --timeout 900
# waferprov_ate.dll (ate/windows): behind its own label because its first run builds libsodium
# and libzmq for Windows (minutes, benchmarks/README.md); then under Wine against a real serve.
if [ "$windows" = 1 ]; then
    ctest --test-dir "$build" -L windows --output-on-failure --timeout 3600
fi
