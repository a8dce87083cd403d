// Modular multiplier over the P-256 field prime: r = a * b mod p, fixed latency.
//
// Digit-serial, least significant digit of b first: each cycle forms one 256 x DigitW partial
// product (DigitW = 64 maps onto 10 x 4 DSP48E2 tiles of 26 x 17 bits), registers it, and adds
// it into a 256-bit high accumulator whose low DigitW bits shift out into the low half of the
// product. The 512-bit product is reduced with P-256's Solinas form (FIPS 186-4 D.2.3): nine
// 256-bit words added or subtracted with a bias of 5p (stage 1), then the carry word folded
// back with 2^256 = 2^224 - 2^192 - 2^96 + 1 (mod p) and one conditional subtraction
// (stage 2). Every step runs for every operand: the result is on r_o, with done_o, exactly
// NDig + 2 cycles after the start edge, and a new start is taken in that same cycle, so
// back-to-back multiplications cost NDig + 2 cycles each (6 for DigitW = 64, 10 for 32).
`default_nettype none

module p256_mul #(
  parameter int unsigned DigitW = 64  // must divide 256
) (
  input  wire logic         clk_i,
  input  wire logic         rst_ni,
  input  wire logic         clear_i,   // zeroize: clear every register, abort
  input  wire logic         start_i,   // taken when idle or in the done_o cycle
  input  wire logic [255:0] a_i,
  input  wire logic [255:0] b_i,
  output      logic         done_o,    // one-cycle pulse; r_o valid only in that cycle
  output      logic [255:0] r_o,
  output      logic         nz_o       // some register holds a non-zero value (zeroize check)
);
  localparam int unsigned NDig = 256 / DigitW;
  localparam int unsigned PpW  = 256 + DigitW;
  localparam int unsigned StepW = $clog2(NDig + 4);
  // start edge: partial product 0; step 1..NDig: accumulate (and the next partial product);
  // step NDig + 1: reduction stage 1; step NDig + 2: stage 2, combinational to r_o.
  localparam logic [StepW-1:0] StepRed1 = StepW'(NDig + 1);
  localparam logic [StepW-1:0] StepRed2 = StepW'(NDig + 2);

  localparam logic [259:0] P5 = 260'd5 * {4'b0, p256_pkg::P};
  localparam logic [256:0] P = {1'b0, p256_pkg::P};

  logic [StepW-1:0] step_q;
  logic [255:0]     a_q, b_q;
  logic [PpW-1:0]   pp_q;
  logic [255:0]     acc_q, lo_q;
  logic [259:0]     red_q;

  // ---- stage 1 of the reduction: Solinas sum over the 32-bit words c15..c0 ----
  logic [31:0]  c [16];
  logic [259:0] s1, s2, s3, s4, s5, s6, s7, s8, s9, red1;
  always_comb begin
    for (int k = 0; k < 8; k++) begin
      c[k]     = lo_q[32*k +: 32];
      c[k + 8] = acc_q[32*k +: 32];
    end
    s1 = {4'd0, c[7],  c[6],  c[5],  c[4],  c[3],  c[2],  c[1],  c[0]};
    s2 = {4'd0, c[15], c[14], c[13], c[12], c[11], 32'd0, 32'd0, 32'd0};
    s3 = {4'd0, 32'd0, c[15], c[14], c[13], c[12], 32'd0, 32'd0, 32'd0};
    s4 = {4'd0, c[15], c[14], 32'd0, 32'd0, 32'd0, c[10], c[9],  c[8]};
    s5 = {4'd0, c[8],  c[13], c[15], c[14], c[13], c[11], c[10], c[9]};
    s6 = {4'd0, c[10], c[8],  32'd0, 32'd0, 32'd0, c[13], c[12], c[11]};
    s7 = {4'd0, c[11], c[9],  32'd0, 32'd0, c[15], c[14], c[13], c[12]};
    s8 = {4'd0, c[12], 32'd0, c[10], c[9],  c[8],  c[15], c[14], c[13]};
    s9 = {4'd0, c[13], 32'd0, c[11], c[10], c[9],  32'd0, c[15], c[14]};
    // in (0, 12 * 2^256): the positive terms are < 7 * 2^256, the negative ones < 4 * 2^256
    red1 = s1 + (s2 << 1) + (s3 << 1) + s4 + s5 + P5 - s6 - s7 - s8 - s9;
  end

  // ---- stage 2: fold the top nibble back, then one conditional subtraction ----
  logic [256:0] folded, folded_m_p;
  logic [255:0] red2;
  always_comb begin
    // red_q[255:0] + q * (2^256 - p) with q <= 11 stays below 2p
    // q * (2^224 - 2^192 - 2^96 + 1) as shifts and adds (no multiplier for a 4-bit factor)
    folded     = {1'b0, red_q[255:0]} + (257'(red_q[259:256]) << 224) -
                 (257'(red_q[259:256]) << 192) - (257'(red_q[259:256]) << 96) +
                 257'(red_q[259:256]);
    folded_m_p = folded - P;
    red2       = folded_m_p[256] ? folded[255:0] : folded_m_p[255:0];
  end

  logic [PpW-1:0] acc_sum;
  assign acc_sum = {{DigitW{1'b0}}, acc_q} + pp_q;

  logic idle, start;
  assign idle  = (step_q == '0) | (step_q == StepRed2);
  assign start = start_i & idle;

  // One 256 x DigitW multiplier, fed from the inputs on the start edge, else from the
  // registered operands.
  logic [255:0]      mul_a;
  logic [DigitW-1:0] mul_b;
  logic [PpW-1:0]    pp;
  assign mul_a = start ? a_i : a_q;
  assign mul_b = start ? b_i[DigitW-1:0] : b_q[DigitW-1:0];
  assign pp    = PpW'(mul_a) * PpW'(mul_b);

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      step_q <= '0;
      a_q    <= '0;
      b_q    <= '0;
      pp_q   <= '0;
      acc_q  <= '0;
      lo_q   <= '0;
      red_q  <= '0;
    end else if (clear_i) begin
      step_q <= '0;
      a_q    <= '0;
      b_q    <= '0;
      pp_q   <= '0;
      acc_q  <= '0;
      lo_q   <= '0;
      red_q  <= '0;
    end else if (start) begin
      a_q    <= a_i;
      b_q    <= b_i >> DigitW;
      pp_q   <= pp;
      acc_q  <= '0;
      lo_q   <= '0;
      step_q <= StepW'(1);
    end else if (step_q != '0) begin
      if (step_q <= StepW'(NDig)) begin
        pp_q  <= pp;
        b_q   <= b_q >> DigitW;
        lo_q  <= {acc_sum[DigitW-1:0], lo_q[255:DigitW]};
        acc_q <= acc_sum[PpW-1:DigitW];
      end
      if (step_q == StepRed1) begin
        red_q <= red1;
      end
      step_q <= (step_q == StepRed2) ? '0 : step_q + StepW'(1);
    end
  end

  assign done_o = (step_q == StepRed2);
  assign r_o    = red2;
  assign nz_o   = |{a_q, b_q, pp_q, acc_q, lo_q, red_q};
endmodule

`default_nettype wire
