# ctr_drbg: source files in dependency order, one per line, relative to rtl/.
# Read by CMake (benches, lint, models) and tools/synth (Yosys).
p256/p256_pkg.sv
symmetric/aes_pkg.sv
symmetric/scalar_check.sv
symmetric/ctr_drbg.sv
