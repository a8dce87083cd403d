#!/usr/bin/env bash
# Resources and timing evidence of the P-256 key generator, and a check of what Yosys builds.
#
#   tools/synth/p256.sh [out-dir]
#       tools/synth/timing.sh on the file list rtl/p256/p256_keygen.f with the table ROM's
#       contents file set: Yosys 0.23 synth_xilinx -family xcup -flatten -noiopad, then
#       tools/synth/timing.py on the netlist (cell counts, DSP48E2/RAMB register use, the worst
#       register-to-register paths with LUT levels, carry length and DSP stages, and the Fmax
#       estimate). Takes 5-15 minutes and ~4 GB on one core; run it with nice on a shared
#       machine. Figures: docs/rtl-p256.md. (default out-dir: build-synth/p256_keygen)
#
#   tools/synth/p256.sh --netlist-bench [out-dir]
#       Elaborates the same sources with Yosys (prep -flatten: Yosys's own reading of the RTL,
#       before technology mapping), writes that netlist as Verilog, builds the Verilator bench
#       testbench/p256/p256_keygen_test.cpp against it and runs it. The benches check the RTL as
#       Verilator reads it; this checks that Yosys reads it the same way (it once did not: a
#       loop form of the carry lookahead elaborated to a constant). A few minutes.
#       (default out-dir: build-synth/p256_netlist)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/common.sh"
cd "$root"
rom='"rtl/p256/p256_base_table.mem"'

if [ "${1:-}" != "--netlist-bench" ]; then
  exec "$here/timing.sh" -o "${1:-$root/build-synth/p256_keygen}" -n 12 p256/p256_keygen \
    "RomFile=$rom"
fi

out=${2:-$root/build-synth/p256_netlist}
mkdir -p "$out"
list=$(synth_list p256/p256_keygen)
{
  echo "read_verilog -sv $(synth_sources "$list" | tr '\n' ' ')"
  echo "chparam -set RomFile $rom p256_keygen"
  echo "prep -top p256_keygen -flatten"
  echo "write_verilog -noattr $out/p256_keygen_yosys.v"
} > "$out/prep.ys"
echo "p256 netlist bench: yosys prep (log $out/prep.log)" >&2
yosys -q -l "$out/prep.log" -s "$out/prep.ys" > /dev/null
echo "p256 netlist bench: verilator (log $out/verilator.log)" >&2
tb=$root/testbench/p256
verilator --cc "$out/p256_keygen_yosys.v" --top-module p256_keygen --prefix Vp256_keygen \
  -Wno-fatal -Wno-lint -Wno-style --exe "$tb/p256_keygen_test.cpp" \
  -CFLAGS "-I$tb -I$root/testbench/common/include -std=c++17 -O1" \
  -LDFLAGS "-lgtest -lgtest_main -lcrypto -pthread" --build -j 2 -Mdir "$out/obj" \
  > "$out/verilator.log" 2>&1 || { tail -n 20 "$out/verilator.log" >&2; exit 1; }
"$out/obj/Vp256_keygen"
