#!/usr/bin/env bash
# Timing evidence for one RTL block: Yosys 0.23 synth_xilinx for UltraScale+ (-family xcup
# -flatten -noiopad), then tools/synth/timing.py walks the netlist and reports the resources,
# the DSP48E2/RAMB register use and, for the worst register-to-register paths, the LUT levels,
# carry length, DSP stages and an Fmax estimate from a stated UltraScale+ -2 delay model
# (see timing.py and docs/rtl.md "Timing evidence").
#   tools/synth/timing.sh [-o out-dir] [-n paths] <block> [NAME=VALUE...]
# <block> names a file list rtl/<half>/<block>.f ("sym_die", "p256/p256_keygen", or the path);
# NAME=VALUE settings are applied to the top with chparam. The netlist, the Yosys log and the
# report go to out-dir (default build-synth/<block>); the report is also printed.
# Takes from seconds to many minutes per block (one core, several GB for the big ones).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/common.sh"

out="" paths=10
while getopts "o:n:h" opt; do
  case $opt in
    o) out=$OPTARG ;;
    n) paths=$OPTARG ;;
    *) sed -n '2,11p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -lt 1 ]; then
  sed -n '2,11p' "$0" >&2
  exit 2
fi
block=$1
shift
list=$(synth_list "$block")
top=$(basename "$list" .f)
out=${out:-$synth_root/build-synth/$top}
mkdir -p "$out"
json=$out/$top.json
script=$out/$top.ys
synth_script "$top" "$list" "$json" "$@" > "$script"

echo "timing: $top (${list#$synth_root/}${*:+, $*}), log $out/$top.log" >&2
(cd "$synth_root" && yosys -q -l "$out/$top.log" -s "$script" > /dev/null) || {
  echo "timing: yosys failed on $top, see $out/$top.log" >&2
  tail -n 20 "$out/$top.log" >&2
  exit 1
}
{
  echo "block $top (${list#$synth_root/})${*:+ with $*}"
  echo "Yosys: $(yosys -V), synth_xilinx -family xcup -top $top -flatten -noiopad"
  python3 "$here/timing.py" "$json" --paths "$paths" --json "$out/$top.timing.json"
} | tee "$out/$top.timing.txt"
