// Modular addition and subtraction over the P-256 field prime in two pipeline stages, built for
// a 4 ns cycle: both candidates (a + b and a + b - p, or a - b and a - b + p) are formed at
// once, the second through one carry-save level, each with a two-stage carry-select adder
// (p256_csel_add, 32-bit carry chains), and the sign of the right one selects the result.
// The operands are sampled at one edge; r_o holds their result during the next cycle (the
// caller registers it). Both operands must be fully reduced (< p); the result is fully
// reduced. The correction is a select, never a branch, so the delay is the same for every
// operand.
`default_nettype none

module p256_addsub (
  input  wire logic         clk_i,
  input  wire logic         clr_i,  // synchronous clear (reset or zeroize)
  input  wire logic [255:0] a_i,
  input  wire logic [255:0] b_i,
  input  wire logic         sub_i,  // 1: a - b, 0: a + b
  output      logic [255:0] r_o,
  output      logic         nz_o    // some register is non-zero (zeroize check)
);
  localparam logic [256:0] P = {1'b0, p256_pkg::P};
  localparam logic [256:0] MinusP = ~P + 257'd1;  // 2^257 - p

  // x = a + b' + sub with b' = b or ~b: a + b, or a - b (mod 2^257).
  // y = x + kc with kc = -p (addition) or +p (subtraction), as a carry-save row pair.
  logic [256:0] a, bx, kc, ys, yc, x, y;
  logic         x_co, y_co, x_nz, y_nz, sub_q;
  always_comb begin
    a  = {1'b0, a_i};
    bx = sub_i ? ~{1'b0, b_i} : {1'b0, b_i};
    kc = sub_i ? P : MinusP;
    ys = a ^ bx ^ kc;
    yc = ((a & bx) | (a & kc) | (bx & kc)) << 1;
  end

  p256_csel_add #(.W(257)) u_x (
    .clk_i, .clr_i, .a_i(a), .b_i(bx), .cin_i(sub_i), .s_o(x), .cout_o(x_co), .nz_o(x_nz));
  p256_csel_add #(.W(257)) u_y (
    .clk_i, .clr_i, .a_i(ys), .b_i(yc), .cin_i(sub_i), .s_o(y), .cout_o(y_co), .nz_o(y_nz));

  always_ff @(posedge clk_i) begin
    if (clr_i) sub_q <= 1'b0;
    else sub_q <= sub_i;
  end

  // addition: a + b - p unless that is negative; subtraction: a - b, plus p if that is negative
  // (bit 256 is the sign: every candidate lies in (-2^256, 2^256))
  logic use_y;
  assign use_y = sub_q ? x[256] : ~y[256];
  assign r_o   = use_y ? y[255:0] : x[255:0];
  assign nz_o  = x_nz | y_nz;

  logic unused;
  assign unused = x_co ^ y_co;
endmodule

`default_nettype wire
