#!/usr/bin/env bash
# Synthesis estimate of RTL blocks with Yosys (0.23 on Debian 12): synth_xilinx for
# UltraScale+ (-family xcup -flatten -noiopad), one run per block, each block read from its file
# list rtl/<half>/<block>.f; prints LUT, FF, BRAM and DSP counts per block and writes them to
# <out>/summary.md. For the timing estimate of a block use tools/synth/timing.sh.
# Not part of the test suite: the full set takes several minutes.
#   tools/synth/synth.sh [out-dir] [block...]     (default out-dir: build-synth; default blocks:
#                                                  the symmetric half)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/common.sh"
root=$synth_root
out=${1:-$root/build-synth}
shift || true
blocks=("$@")
if [ ${#blocks[@]} -eq 0 ]; then
  blocks=(aes256 aes_cmac wpid_kdf scalar_check ctr_drbg aes_kw sym_die)
fi
mkdir -p "$out"

summary="$out/summary.md"
{
  echo "| block | LUT | FF | BRAM (RAMB36/18) | DSP | CARRY4/8 | MUXF7/8/9 |"
  echo "|---|---|---|---|---|---|---|"
} > "$summary"

for block in "${blocks[@]}"; do
  list=$(synth_list "$block")
  top=$(basename "$list" .f)
  log="$out/$top.log"
  echo "synth: $top (log: $log)" >&2
  synth_script "$top" "$list" "" > "$out/$top.ys"
  (cd "$root" && yosys -q -l "$log" -s "$out/$top.ys" >/dev/null)
  # Cell counts from the last `stat` in the log (the design after synth_xilinx).
  awk -v top="$top" '
    /Number of cells:/ { delete n; in_stat = 1; next }
    in_stat && /^[ \t]+[A-Za-z0-9_]+[ \t]+[0-9]+$/ { n[$1] = $2; next }
    END {
      lut = ff = bram = dsp = carry = muxf = 0
      for (c in n) {
        if (c ~ /^(LUT[1-6]|INV)$/) lut += n[c]
        else if (c ~ /^FD[RSCP]E$/) ff += n[c]
        else if (c ~ /^RAMB(18|36)/) bram += n[c]
        else if (c ~ /^DSP/) dsp += n[c]
        else if (c ~ /^CARRY/) carry += n[c]
        else if (c ~ /^MUXF[789]$/) muxf += n[c]
      }
      printf "| %s | %d | %d | %d | %d | %d | %d |\n", top, lut, ff, bram, dsp, carry, muxf
    }' "$log" >> "$summary"
done

cat "$summary"
