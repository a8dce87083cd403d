# p256_keygen: source files in dependency order, one per line, relative to rtl/.
# Read by CMake (benches, lint, models) and tools/synth (Yosys).
p256/p256_pkg.sv
p256/p256_ucode.sv
p256/p256_csel_add.sv
p256/p256_csa10.sv
p256/p256_addsub.sv
p256/p256_mul.sv
p256/p256_rom.sv
p256/p256_keygen.sv
