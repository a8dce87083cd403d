#!/bin/sh
# Resource estimate of the P-256 key generator with Yosys (0.23 or later):
#   tools/synth/p256.sh [log-file]      (default: ${TMPDIR:-/tmp}/p256_synth.log)
# Prints the cell counts of the flattened design (LUT*, FD*, DSP48E2, RAMB*). Takes a while
# (4-13 minutes on one core): the 256 x 64 multiplier and the 512-bit datapaths are wide.
set -eu
root="$(cd "$(dirname "$0")/../.." && pwd)"
log="${1:-${TMPDIR:-/tmp}/p256_synth.log}"
cd "$root"
yosys -q -l "$log" -s tools/synth/p256.ys >/dev/null
# The last 'stat' block is the flattened top.
awk '/Printing statistics/ {buf=""} {buf = buf $0 "\n"} END {printf "%s", buf}' "$log" |
  grep -E 'Number of cells|LUT[1-6]|CARRY|FD[CPRS]E|DSP48E2|RAMB|SRL|MUXF|LUTRAM|RAM[0-9]' || true
echo "full log: $log"
