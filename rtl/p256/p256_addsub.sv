// Modular addition and subtraction over the P-256 field prime, one combinational stage.
// Both operands must be fully reduced (< p); the result is fully reduced. The correction is a
// select on the borrow, never a branch, so the delay is the same for every operand.
`default_nettype none

module p256_addsub (
  input  wire logic [255:0] a_i,
  input  wire logic [255:0] b_i,
  input  wire logic         sub_i,  // 1: a - b, 0: a + b
  output      logic [255:0] r_o
);
  localparam logic [256:0] P = {1'b0, p256_pkg::P};

  logic [256:0] sum, sum_m_p, diff;
  logic [255:0] diff_p_p;

  always_comb begin
    // a + b < 2p: subtract p unless that borrows.
    sum      = {1'b0, a_i} + {1'b0, b_i};
    sum_m_p  = sum - P;
    // a - b > -p: add p back if it borrowed (bit 256 of the 257-bit difference).
    diff     = {1'b0, a_i} - {1'b0, b_i};
    diff_p_p = diff[255:0] + P[255:0];  // wraps mod 2^256 to a - b + p
    if (sub_i) begin
      r_o = diff[256] ? diff_p_p : diff[255:0];
    end else begin
      r_o = sum_m_p[256] ? sum[255:0] : sum_m_p[255:0];
    end
  end
endmodule

`default_nettype wire
