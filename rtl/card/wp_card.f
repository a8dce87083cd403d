# wp_card: source files in dependency order, one per line, relative to rtl/.
# Read by CMake (benches, lint, models) and tools/synth (Yosys).
p256/p256_pkg.sv
card/card_regs_pkg.sv
symmetric/aes_pkg.sv
symmetric/aes256.sv
symmetric/aes256_rq.sv
symmetric/aes_cmac.sv
symmetric/wpid_kdf.sv
symmetric/scalar_check.sv
symmetric/ctr_drbg.sv
symmetric/aes_kw.sv
symmetric/sym_die.sv
p256/p256_ucode.sv
p256/p256_csel_add.sv
p256/p256_csa10.sv
p256/p256_addsub.sv
p256/p256_mul.sv
p256/p256_rom.sv
p256/p256_keygen.sv
card/wp_card.sv
