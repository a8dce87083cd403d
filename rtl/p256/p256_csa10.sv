// Ten-operand carry-save adder tree: (s + c) mod 2^W = (r0 + ... + r9) mod 2^W.
//
// Five levels of 3:2 compressors (10 -> 7 -> 5 -> 4 -> 3 -> 2), no carry chain: every output
// bit depends on a bounded cone of input bits, so the tree maps onto a few LUT levels whatever
// W is. Combinational; the caller registers s and c and resolves them with p256_csel_add.
`default_nettype none

module p256_csa10 #(
  parameter int unsigned W = 320
) (
  input  wire logic [10*W-1:0] rows_i,  // row k in [k*W +: W]
  output      logic [W-1:0]    s_o,
  output      logic [W-1:0]    c_o
);
  function automatic logic [W-1:0] fa_s(input logic [W-1:0] x, input logic [W-1:0] y,
                                        input logic [W-1:0] z);
    fa_s = x ^ y ^ z;
  endfunction

  // the carries move one place up; the one out of bit W - 1 is dropped (mod 2^W)
  function automatic logic [W-1:0] fa_c(input logic [W-1:0] x, input logic [W-1:0] y,
                                        input logic [W-1:0] z);
    fa_c = ((x & y) | (x & z) | (y & z)) << 1;
  endfunction

  logic [W-1:0] r0, r1, r2, r3, r4, r5, r6, r7, r8, r9;
  logic [W-1:0] a0, a1, a2, a3, a4, a5, b0, b1, b2, b3, e0, e1, f0, f1;
  always_comb begin
    r0 = rows_i[0*W+:W];
    r1 = rows_i[1*W+:W];
    r2 = rows_i[2*W+:W];
    r3 = rows_i[3*W+:W];
    r4 = rows_i[4*W+:W];
    r5 = rows_i[5*W+:W];
    r6 = rows_i[6*W+:W];
    r7 = rows_i[7*W+:W];
    r8 = rows_i[8*W+:W];
    r9 = rows_i[9*W+:W];
    // 10 -> 7
    a0 = fa_s(r0, r1, r2);
    a1 = fa_c(r0, r1, r2);
    a2 = fa_s(r3, r4, r5);
    a3 = fa_c(r3, r4, r5);
    a4 = fa_s(r6, r7, r8);
    a5 = fa_c(r6, r7, r8);
    // 7 -> 5 (r9 waits)
    b0 = fa_s(a0, a1, a2);
    b1 = fa_c(a0, a1, a2);
    b2 = fa_s(a3, a4, a5);
    b3 = fa_c(a3, a4, a5);
    // 5 -> 4 -> 3 -> 2
    e0 = fa_s(b0, b1, b2);
    e1 = fa_c(b0, b1, b2);
    f0 = fa_s(e0, e1, b3);
    f1 = fa_c(e0, e1, b3);
    s_o = fa_s(f0, f1, r9);
    c_o = fa_c(f0, f1, r9);
  end
endmodule

`default_nettype wire
