// Carry-select adder in two pipeline stages: s = (a + b + cin) mod 2^W, no carry chain longer
// than SegW bits and no more than a few LUT levels in either stage.
//
// Stage 1 (registered here): every SegW-bit segment is added twice, for a carry in of 0 and
// of 1 (two short carry chains side by side), and both sums and carry outs are registered.
// Stage 2 (combinational, on s_o): the segment carries resolve through a small lookahead
// network (each carry a flat sum of products of the registered segment carries) and pick one
// sum per segment; the caller registers s_o. The result therefore appears one clock after the
// operands (a_i, b_i, cin_i are sampled at that edge). A 257-bit ripple carry would take
// ~6.5 ns on UltraScale+ -2; the one-stage version of this adder ~5-7 ns (the select network
// and its fanout after a 32-bit chain), which is why both halves are kept apart.
`default_nettype none

module p256_csel_add #(
  parameter int unsigned W    = 257,
  parameter int unsigned SegW = 32
) (
  input  wire logic         clk_i,
  input  wire logic         clr_i,   // synchronous clear (reset or zeroize)
  input  wire logic [W-1:0] a_i,
  input  wire logic [W-1:0] b_i,
  input  wire logic         cin_i,
  output      logic [W-1:0] s_o,     // of the operands sampled at the last edge
  output      logic         cout_o,
  output      logic         nz_o     // some register is non-zero (zeroize check)
);
  localparam int unsigned NSeg = (W + SegW - 1) / SegW;

  logic [W-1:0]    s0_d, s0_q, s1_d, s1_q;  // segment sums for a carry in of 0 / 1
  logic [NSeg-1:0] g_d, g_q, p_d, p_q;      // segment carry outs for a carry in of 0 / 1
  logic            cin_q;

  for (genvar k = 0; k < NSeg; k++) begin : g_seg
    localparam int unsigned Lo = k * SegW;
    localparam int unsigned Wk = (Lo + SegW > W) ? W - Lo : SegW;
    logic [Wk:0]   s0;   // carry in 0, carry out in the top bit
    logic [Wk+1:0] s1x;  // carry in 1 as a forced carry out of an extra low bit
    assign s0             = {1'b0, a_i[Lo+:Wk]} + {1'b0, b_i[Lo+:Wk]};
    assign s1x            = {1'b0, a_i[Lo+:Wk], 1'b1} + {1'b0, b_i[Lo+:Wk], 1'b1};
    assign s0_d[Lo+:Wk]   = s0[Wk-1:0];
    assign s1_d[Lo+:Wk]   = s1x[Wk:1];
    assign g_d[k]         = s0[Wk];
    assign p_d[k]         = s1x[Wk+1];
  end

  always_ff @(posedge clk_i) begin
    if (clr_i) begin
      s0_q  <= '0;
      s1_q  <= '0;
      g_q   <= '0;
      p_q   <= '0;
      cin_q <= 1'b0;
    end else begin
      s0_q  <= s0_d;
      s1_q  <= s1_d;
      g_q   <= g_d;
      p_q   <= p_d;
      cin_q <= cin_i;
    end
  end

  // Carry into segment k, written as a flat sum of products (generate at j, propagated through
  // j + 1 .. k - 1; or the carry in, propagated through 0 .. k - 1) rather than as the ripple
  // c[k+1] = g[k] | p[k] & c[k]: the flat form gives synthesis a logarithmic-depth network
  // (two to three LUT levels for 9 segments), the ripple form a chain it does not rebalance.
  // Constant part-selects in generate blocks only: Yosys 0.23 elaborated an equivalent
  // always_comb loop with computed masks to a constant 0 carry.
  logic [NSeg:0] c;
  assign c[0] = cin_q;
  for (genvar k = 1; k <= NSeg; k++) begin : g_carry
    logic [k:0] t;  // t[0]: the carry in; t[j + 1]: the generate of segment j
    assign t[0] = cin_q & (&p_q[k-1:0]);
    for (genvar j = 0; j < k; j++) begin : g_term
      if (j == k - 1) begin : g_adjacent
        assign t[j+1] = g_q[j];
      end else begin : g_propagated
        assign t[j+1] = g_q[j] & (&p_q[k-1:j+1]);
      end
    end
    assign c[k] = |t;
  end
  for (genvar k = 0; k < NSeg; k++) begin : g_sel
    localparam int unsigned Lo = k * SegW;
    localparam int unsigned Wk = (Lo + SegW > W) ? W - Lo : SegW;
    assign s_o[Lo+:Wk] = c[k] ? s1_q[Lo+:Wk] : s0_q[Lo+:Wk];
  end

  assign cout_o = c[NSeg];
  assign nz_o   = |{s0_q, s1_q, g_q, p_q, cin_q};
endmodule

`default_nettype wire
