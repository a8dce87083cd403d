// The table of p256_rom (1024 x 512 bits, synchronous read) with two read ports, for two
// engines (p256_keygen with ExtRom = 1). A block RAM has two ports; one engine used only one of
// them, so a pair of engines sharing a table halves the card's table RAMs (issue 14). Both
// addresses are public counters, as in p256_rom.
`default_nettype none

module p256_rom2 #(
  parameter RomFile = "p256_base_table.mem"
) (
  input  wire logic         clk_i,
  input  wire logic [9:0]   addr_a_i,
  output      logic [511:0] data_a_o,
  input  wire logic [9:0]   addr_b_i,
  output      logic [511:0] data_b_o
);
  logic [511:0] mem [1024];

  initial begin
    $readmemh(RomFile, mem);
  end

  always_ff @(posedge clk_i) begin
    data_a_o <= mem[addr_a_i];
    data_b_o <= mem[addr_b_i];
  end
endmodule

`default_nettype wire
