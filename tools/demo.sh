#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install the dependencies, build, and run the demo.
# Today the demo is `waferprov kat` on the built-in vectors, on every backend of the build.
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)" --target waferprov
./build/host/cli/waferprov kat
