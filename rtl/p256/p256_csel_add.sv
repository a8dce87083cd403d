// Carry-select adder: s = (a + b + cin) mod 2^W with no carry chain longer than SegW bits.
//
// Every SegW-bit segment is added twice, for a carry in of 0 and of 1 (two short carry
// chains side by side); the segment carries then resolve through a small select network
// (c[k+1] = g[k] | p[k] & c[k], which synthesis flattens into a few LUT levels) and pick one
// sum per segment. This is how the engine keeps its 256- to 320-bit additions inside one
// 4 ns cycle: a 257-bit ripple carry alone would take ~6.5 ns on UltraScale+.
// Combinational; the caller registers the result.
`default_nettype none

module p256_csel_add #(
  parameter int unsigned W    = 257,
  parameter int unsigned SegW = 32
) (
  input  wire logic [W-1:0] a_i,
  input  wire logic [W-1:0] b_i,
  input  wire logic         cin_i,
  output      logic [W-1:0] s_o,
  output      logic         cout_o
);
  localparam int unsigned NSeg = (W + SegW - 1) / SegW;

  logic [NSeg:0] c  /* verilator split_var */;
  assign c[0] = cin_i;

  for (genvar k = 0; k < NSeg; k++) begin : g_seg
    localparam int unsigned Lo = k * SegW;
    localparam int unsigned Wk = (Lo + SegW > W) ? W - Lo : SegW;
    logic [Wk:0]   s0;   // carry in 0, carry out in the top bit
    logic [Wk+1:0] s1x;  // carry in 1 as a forced carry out of an extra low bit
    assign s0  = {1'b0, a_i[Lo+:Wk]} + {1'b0, b_i[Lo+:Wk]};
    assign s1x = {1'b0, a_i[Lo+:Wk], 1'b1} + {1'b0, b_i[Lo+:Wk], 1'b1};
    assign c[k+1] = s0[Wk] | (s1x[Wk+1] & c[k]);
    assign s_o[Lo+:Wk] = c[k] ? s1x[Wk:1] : s0[Wk-1:0];
  end

  assign cout_o = c[NSeg];
endmodule

`default_nettype wire
