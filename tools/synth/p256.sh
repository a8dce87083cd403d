#!/usr/bin/env bash
# Resources and timing evidence of the P-256 key generator: tools/synth/timing.sh on its file
# list rtl/p256/p256_keygen.f with the table ROM's contents file set, i.e. Yosys 0.23
# synth_xilinx -family xcup -flatten -noiopad, then tools/synth/timing.py on the netlist
# (cell counts, DSP48E2/RAMB register use, the worst register-to-register paths with LUT levels,
# carry length and DSP stages, and the Fmax estimate). Figures: docs/rtl-p256.md.
#   tools/synth/p256.sh [out-dir]       (default: build-synth/p256_keygen)
# Takes 10-20 minutes and ~4 GB on one core; run it with nice on a shared machine.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
exec "$here/timing.sh" -o "${1:-$root/build-synth/p256_keygen}" -n 12 p256/p256_keygen \
  'RomFile="rtl/p256/p256_base_table.mem"'
