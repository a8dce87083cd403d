#!/usr/bin/env bash
# The whole default test suite on a fresh Debian 12 machine: install the dependencies, build
# everything with warnings as errors, and run CTest (long soaks and fuzz runs carry the `soak`
# label and are left out; run them with `ctest --test-dir build -L soak`).
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWAFERPROV_WERROR=ON
cmake --build build -j"$(nproc)"
ctest --test-dir build -j"$(nproc)" --label-exclude soak --output-on-failure --timeout 900
