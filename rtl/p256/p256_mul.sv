// Pipelined modular multiplier over the P-256 field prime: r = a * b mod p.
//
// Built for a 4 ns cycle on UltraScale+ (-2): no register-to-register path holds a carry chain
// longer than 66 bits or more than a handful of LUT levels. A multiplication is accepted every
// 4 cycles (start_i; the caller keeps that spacing) and its result is on r_o, with done_o and
// its tag dst_o, from edge 14 on, counting the edge that takes start_i as edge 1 (the
// operation's operands were latched one edge before that: results are readable 15 edges after
// an instruction issues). Stages, by edge:
//
//   1  A/B  a -> 10 x 26-bit chunks (held for the 4 digits), b -> one 64-bit digit per cycle
//           as 4 x 16-bit chunks, least significant digit first
//   2  M    40 products of 26 x 16 bits, one DSP48E2 each (a * b of the registered chunks)
//   3  P    the products registered again (the DSP48E2 P register)
//   4..7 X  per digit: the 40 products as 8 rows of non-overlapping tiles (tiles i and i + 2
//           are 52 bits apart, a product is 42 bits wide) plus the running sum's two
//           carry-save rows -> a 10:2 carry-save tree (p256_csa10), no carry chain; the low 64
//           bits leave, the rest, shifted down by 64, is the new running sum
//   5..8 L  per digit: the 64 low bits resolved (one 64-bit carry chain) with the carry of the
//           previous digit, shifted into the product's low half; at the last digit the
//           running sum and that carry enter the high half's adder
//   9  H    the high half resolved (256-bit two-stage carry-select adder, p256_csel_add)
//   10 S    Solinas stage 1 (FIPS 186-4 D.2.3): s1 + 2 s2 + 2 s3 + s4 + s5 - s6 - s7 - s8 - s9
//           + 5p as a 10:2 carry-save tree (negations as complements, the +1s in the bias)
//   12 R1   the 260-bit sum resolved (two-stage carry-select), in (0, 12 * 2^256)
//   14 R2   Solinas stage 2: the top nibble q folded back as q * (2^224 - 2^192 - 2^96 + 1)
//           (a constant per q) and p subtracted unless that borrows, both sums formed at once
//           (two-stage carry-select), the sign of the second picks the result
//
// The DSP48E2 A/B, M and P registers are written the way a vendor tool packs them: plain
// registers directly before and after the multiplication, synchronous reset, the A register's
// enable the only one. (Yosys 0.23 keeps them as fabric flip-flops; see docs/rtl-p256.md.)
// Every stage runs for every operand; the latency never depends on data.
`default_nettype none

module p256_mul (
  input  wire logic         clk_i,
  input  wire logic         rst_ni,
  input  wire logic         clear_i,   // zeroize: clear every register, drop everything in flight
  input  wire logic         start_i,   // at most once every 4 cycles
  input  wire logic [3:0]   dst_i,     // tag carried along with the operation
  input  wire logic [255:0] a_i,
  input  wire logic [255:0] b_i,
  output      logic         done_o,    // one-cycle pulse; r_o, dst_o valid only then
  output      logic [3:0]   dst_o,
  output      logic [255:0] r_o,
  output      logic         nz_o       // some data register is non-zero (zeroize check)
);
  localparam int unsigned NA = 10;   // a chunks of 26 bits (260 >= 256)
  localparam int unsigned NB = 4;    // digit chunks of 16 bits
  localparam int unsigned AW = 26;
  localparam int unsigned BW = 16;
  localparam int unsigned TW = AW + BW;  // product tile width
  localparam int unsigned NT = NA * NB;
  localparam int unsigned RW = 320;      // a row: 256 + 64 bits
  localparam logic [259:0] P5 = 260'd5 * {4'b0, p256_pkg::P};
  localparam logic [256:0] P  = {1'b0, p256_pkg::P};
  // 2^256 mod p = 2^224 - 2^192 - 2^96 + 1
  localparam logic [256:0] F  = (257'd1 << 224) - (257'd1 << 192) - (257'd1 << 96) + 257'd1;

  logic clr;
  assign clr = !rst_ni || clear_i;

  // ---------------- A/B: operand chunks, digit sequencing ----------------
  logic [NA*AW-1:0] a_ab_q, a_ab_d;
  logic [63:0]      b_ab_q, b_ab_d;
  logic [191:0]     bh_q, bh_d;       // digits still to come
  logic [1:0]       rem_q, rem_d;     // digits still to come after the one in b_ab_q
  logic             v_ab_q, v_ab_d, first_ab_q, first_ab_d, last_ab_q, last_ab_d;
  logic [3:0]       dst_ab_q, dst_ab_d;

  always_comb begin
    a_ab_d     = start_i ? {4'b0, a_i} : a_ab_q;
    b_ab_d     = start_i ? b_i[63:0] : bh_q[63:0];
    bh_d       = start_i ? b_i[255:64] : {64'b0, bh_q[191:64]};
    rem_d      = start_i ? 2'd3 : (rem_q != 2'd0 ? rem_q - 2'd1 : 2'd0);
    v_ab_d     = start_i | (rem_q != 2'd0);
    first_ab_d = start_i;
    last_ab_d  = ~start_i & (rem_q == 2'd1);
    dst_ab_d   = start_i ? dst_i : dst_ab_q;
  end

  always_ff @(posedge clk_i) begin
    if (clr) begin
      a_ab_q     <= '0;
      b_ab_q     <= '0;
      bh_q       <= '0;
      rem_q      <= '0;
      v_ab_q     <= 1'b0;
      first_ab_q <= 1'b0;
      last_ab_q  <= 1'b0;
      dst_ab_q   <= '0;
    end else begin
      a_ab_q     <= a_ab_d;
      b_ab_q     <= b_ab_d;
      bh_q       <= bh_d;
      rem_q      <= rem_d;
      v_ab_q     <= v_ab_d;
      first_ab_q <= first_ab_d;
      last_ab_q  <= last_ab_d;
      dst_ab_q   <= dst_ab_d;
    end
  end

  // ---------------- M and P: 40 DSP48E2 tiles ----------------
  logic [NT*TW-1:0] m_q, m_d, p_q;
  always_comb begin
    for (int i = 0; i < NA; i++) begin
      for (int k = 0; k < NB; k++) begin
        m_d[(i*NB+k)*TW+:TW] = TW'(a_ab_q[i*AW+:AW]) * TW'(b_ab_q[k*BW+:BW]);
      end
    end
  end

  logic       v_m_q, first_m_q, last_m_q, v_p_q, first_p_q, last_p_q;
  logic [3:0] dst_m_q, dst_p_q;
  always_ff @(posedge clk_i) begin
    if (clr) begin
      m_q       <= '0;
      p_q       <= '0;
      v_m_q     <= 1'b0;
      first_m_q <= 1'b0;
      last_m_q  <= 1'b0;
      dst_m_q   <= '0;
      v_p_q     <= 1'b0;
      first_p_q <= 1'b0;
      last_p_q  <= 1'b0;
      dst_p_q   <= '0;
    end else begin
      m_q       <= m_d;
      p_q       <= m_q;
      v_m_q     <= v_ab_q;
      first_m_q <= first_ab_q;
      last_m_q  <= last_ab_q;
      dst_m_q   <= dst_ab_q;
      v_p_q     <= v_m_q;
      first_p_q <= first_m_q;
      last_p_q  <= last_m_q;
      dst_p_q   <= dst_m_q;
    end
  end

  // ---------------- X: rows + running sum -> carry-save ----------------
  logic [10*RW-1:0] x_rows;
  logic [RW-1:0]    x_s, x_c;
  logic [255:0]     acc_s_q, acc_c_q;
  logic [63:0]      lo_s_q, lo_c_q;
  always_comb begin
    x_rows = '0;
    for (int i = 0; i < NA; i++) begin
      for (int k = 0; k < NB; k++) begin
        // row 2k + (i mod 2): tiles of one digit chunk and one parity never overlap
        x_rows[(2*k+(i%2))*RW+:RW] = x_rows[(2*k+(i%2))*RW+:RW] |
            (RW'(p_q[(i*NB+k)*TW+:TW]) << (AW * i + BW * k));
      end
    end
    // the running sum starts from zero on a multiplication's first digit
    x_rows[8*RW+:RW] = first_p_q ? '0 : {64'b0, acc_s_q};
    x_rows[9*RW+:RW] = first_p_q ? '0 : {64'b0, acc_c_q};
  end

  p256_csa10 #(.W(RW)) u_xtree (.rows_i(x_rows), .s_o(x_s), .c_o(x_c));

  logic       v_x_q, first_x_q, last_x_q;
  logic [3:0] dst_x_q;
  always_ff @(posedge clk_i) begin
    if (clr) begin
      acc_s_q   <= '0;
      acc_c_q   <= '0;
      lo_s_q    <= '0;
      lo_c_q    <= '0;
      v_x_q     <= 1'b0;
      first_x_q <= 1'b0;
      last_x_q  <= 1'b0;
      dst_x_q   <= '0;
    end else begin
      acc_s_q   <= x_s[RW-1:64];
      acc_c_q   <= x_c[RW-1:64];
      lo_s_q    <= x_s[63:0];
      lo_c_q    <= x_c[63:0];
      v_x_q     <= v_p_q;
      first_x_q <= first_p_q;
      last_x_q  <= last_p_q;
      dst_x_q   <= dst_p_q;
    end
  end

  // ---------------- L: low digit resolved ----------------
  // The carry out of digit j's 64 bits belongs to bit 0 of digit j + 1's, which is where
  // the next digit's low rows start: it enters that digit's adder as its carry in. One 64-bit
  // carry chain (the carry in rides on an extra low bit: (2x + 1) + (2y + cin) = 2(x + y + cin)
  // + 1).
  logic [65:0]  lo_wide;
  logic [63:0]  lo_sum;
  logic         lo_cout, cy_q;
  logic [255:0] lo_q;
  logic         v_l_q;
  logic [3:0]   dst_l_q;
  assign lo_wide = {1'b0, lo_s_q, 1'b1} + {1'b0, lo_c_q, cy_q & ~first_x_q};
  assign lo_sum  = lo_wide[64:1];
  assign lo_cout = lo_wide[65];

  always_ff @(posedge clk_i) begin
    if (clr) begin
      lo_q    <= '0;
      cy_q    <= 1'b0;
      v_l_q   <= 1'b0;
      dst_l_q <= '0;
    end else begin
      if (v_x_q) begin
        lo_q <= {lo_sum, lo_q[255:64]};
        cy_q <= lo_cout;
      end
      v_l_q   <= v_x_q & last_x_q;
      dst_l_q <= dst_x_q;
    end
  end

  // ---------------- H: high half resolved ----------------
  // After the last digit's X stage the running sum's rows plus the last low carry are the
  // product's high half; its true value is below 2^256, so their sum mod 2^256 is exact. The
  // adder samples them at the L edge (its first stage), the sum is registered at the H edge.
  logic [255:0] hi_sum, hi_q, lo_fin_q;
  logic         hi_cout, hi_nz;
  logic         v_h_q;
  logic [3:0]   dst_h_q;

  p256_csel_add #(.W(256)) u_hi (
    .clk_i,
    .clr_i (clr),
    .a_i   (acc_s_q),
    .b_i   (acc_c_q),
    .cin_i (lo_cout),
    .s_o   (hi_sum),
    .cout_o(hi_cout),
    .nz_o  (hi_nz)
  );

  always_ff @(posedge clk_i) begin
    if (clr) begin
      hi_q     <= '0;
      lo_fin_q <= '0;
      v_h_q    <= 1'b0;
      dst_h_q  <= '0;
    end else begin
      hi_q     <= hi_sum;
      lo_fin_q <= lo_q;  // complete since the L edge; the next product's digits come after
      v_h_q    <= v_l_q;
      dst_h_q  <= dst_l_q;
    end
  end

  // ---------------- S: Solinas stage 1 as a carry-save tree ----------------
  logic [31:0]     c [16];
  logic [10*260-1:0] s_rows;
  logic [259:0]    s_s, s_c;
  always_comb begin
    for (int k = 0; k < 8; k++) begin
      c[k]     = lo_fin_q[32*k+:32];
      c[k+8]   = hi_q[32*k+:32];
    end
    s_rows[0*260+:260] = {4'd0, c[7], c[6], c[5], c[4], c[3], c[2], c[1], c[0]};
    s_rows[1*260+:260] = {3'd0, c[15], c[14], c[13], c[12], c[11], 32'd0, 32'd0, 32'd0, 1'b0};
    s_rows[2*260+:260] = {3'd0, 32'd0, c[15], c[14], c[13], c[12], 32'd0, 32'd0, 32'd0, 1'b0};
    s_rows[3*260+:260] = {4'd0, c[15], c[14], 32'd0, 32'd0, 32'd0, c[10], c[9], c[8]};
    s_rows[4*260+:260] = {4'd0, c[8], c[13], c[15], c[14], c[13], c[11], c[10], c[9]};
    // -x = ~x + 1 (mod 2^260); the four +1s are in the bias row
    s_rows[5*260+:260] = ~{4'd0, c[10], c[8], 32'd0, 32'd0, 32'd0, c[13], c[12], c[11]};
    s_rows[6*260+:260] = ~{4'd0, c[11], c[9], 32'd0, 32'd0, c[15], c[14], c[13], c[12]};
    s_rows[7*260+:260] = ~{4'd0, c[12], 32'd0, c[10], c[9], c[8], c[15], c[14], c[13]};
    s_rows[8*260+:260] = ~{4'd0, c[13], 32'd0, c[11], c[10], c[9], 32'd0, c[15], c[14]};
    // 5p keeps the sum positive: it lies in (0, 12 * 2^256)
    s_rows[9*260+:260] = P5 + 260'd4;
  end

  p256_csa10 #(.W(260)) u_stree (.rows_i(s_rows), .s_o(s_s), .c_o(s_c));

  logic [259:0] s_s_q, s_c_q;
  logic         v_s_q;
  logic [3:0]   dst_s_q;
  always_ff @(posedge clk_i) begin
    if (clr) begin
      s_s_q   <= '0;
      s_c_q   <= '0;
      v_s_q   <= 1'b0;
      dst_s_q <= '0;
    end else begin
      s_s_q   <= s_s;
      s_c_q   <= s_c;
      v_s_q   <= v_h_q;
      dst_s_q <= dst_h_q;
    end
  end

  // ---------------- R1: stage 1 resolved (two edges) ----------------
  logic [259:0] red1, red_q;
  logic         red1_cout, red1_nz;
  logic         v_r1a_q, v_r1_q;
  logic [3:0]   dst_r1a_q, dst_r1_q;
  p256_csel_add #(.W(260)) u_red1 (
    .clk_i,
    .clr_i (clr),
    .a_i   (s_s_q),
    .b_i   (s_c_q),
    .cin_i (1'b0),
    .s_o   (red1),
    .cout_o(red1_cout),
    .nz_o  (red1_nz)
  );

  always_ff @(posedge clk_i) begin
    if (clr) begin
      red_q     <= '0;
      v_r1a_q   <= 1'b0;
      v_r1_q    <= 1'b0;
      dst_r1a_q <= '0;
      dst_r1_q  <= '0;
    end else begin
      red_q     <= red1;
      v_r1a_q   <= v_s_q;
      v_r1_q    <= v_r1a_q;
      dst_r1a_q <= dst_s_q;
      dst_r1_q  <= dst_r1a_q;
    end
  end

  // ---------------- R2: stage 2, fold and conditional subtraction ----------------
  // r + q * F < 2p for every q < 16; x = r + q F and y = r + q F - p are formed side by side
  // from two constants chosen by q (each bit a function of the 4 bits of q: one LUT level).
  logic [3:0]   q;
  logic [256:0] kq, kqp, fx, fy;
  logic         fx_co, fy_co;
  always_comb begin
    q   = red_q[259:256];
    kq  = '0;
    kqp = '0;
    for (int v = 0; v < 16; v++) begin
      if (q == 4'(v)) begin
        kq  = 257'(v) * F;
        kqp = 257'(v) * F - P;
      end
    end
  end

  logic fx_nz, fy_nz;
  // 64-bit segments here: 5 segments make the sign (the last segment's carry) two LUT levels
  // deep, which is what the 256-wide select after it needs to fit the cycle.
  p256_csel_add #(.W(257), .SegW(64)) u_fx (
    .clk_i, .clr_i(clr), .a_i({1'b0, red_q[255:0]}), .b_i(kq), .cin_i(1'b0), .s_o(fx),
    .cout_o(fx_co), .nz_o(fx_nz));
  p256_csel_add #(.W(257), .SegW(64)) u_fy (
    .clk_i, .clr_i(clr), .a_i({1'b0, red_q[255:0]}), .b_i(kqp), .cin_i(1'b0), .s_o(fy),
    .cout_o(fy_co), .nz_o(fy_nz));

  logic [255:0] r_q;
  logic         v_r2a_q, v_r2_q;
  logic [3:0]   dst_r2a_q, dst_r2_q;
  always_ff @(posedge clk_i) begin
    if (clr) begin
      r_q       <= '0;
      v_r2a_q   <= 1'b0;
      v_r2_q    <= 1'b0;
      dst_r2a_q <= '0;
      dst_r2_q  <= '0;
    end else begin
      r_q       <= fy[256] ? fx[255:0] : fy[255:0];  // fy < 0: r + q F is already < p
      v_r2a_q   <= v_r1_q;
      v_r2_q    <= v_r2a_q;
      dst_r2a_q <= dst_r1_q;
      dst_r2_q  <= dst_r2a_q;
    end
  end

  assign done_o = v_r2_q;
  assign dst_o  = dst_r2_q;
  assign r_o    = r_q;
  assign nz_o   = |{a_ab_q, b_ab_q, bh_q, m_q, p_q, acc_s_q, acc_c_q, lo_s_q, lo_c_q, lo_q, cy_q,
                    hi_q, lo_fin_q, s_s_q, s_c_q, red_q, r_q, hi_nz, red1_nz, fx_nz, fy_nz};

  logic unused;
  assign unused = hi_cout ^ red1_cout ^ fx_co ^ fy_co ^ fx[256] ^ lo_wide[0];
endmodule

`default_nettype wire
