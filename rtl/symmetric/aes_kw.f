# aes_kw: source files in dependency order, one per line, relative to rtl/.
# Read by CMake (benches, lint, models) and tools/synth (Yosys).
symmetric/aes_pkg.sv
symmetric/aes_kw.sv
