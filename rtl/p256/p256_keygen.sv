// P-256 key generator: Q = d * G, constant time, built for 250 MHz on UltraScale+ (-2).
//
// A fixed-window (4-bit) fixed-base multiplication: Q = sum_{w=0}^{63} T_w[d_w] with
// T_w[j] = j * 16^w * G held in a 1024-entry ROM (p256_rom). For every window a scan engine
// reads all 16 entries of T_w and keeps the one whose index equals the digit with a mask (the
// ROM address never depends on d); the scan starts at a fresh offset per window, taken from a
// 16-bit LFSR seeded on scan_seed_i with every scalar, so the cycle in which the entry is
// selected says nothing about the digit (see "Side channels" in docs/rtl-p256.md). It scans
// window w + 1 while the sequencer adds window w. The sequencer runs the complete projective
// addition of Renes-Costello-Batina (no exceptional cases: the accumulator starts at infinity
// and entry 0 is infinity too) from the micro-code ROM on a 16 x 256-bit register file
// (entry 15 reads as b), a pipelined modular multiplier (p256_mul: a new operation every 4
// cycles, the result readable 15 cycles after issue) and a modular adder (p256_addsub: 3
// cycles). An inversion by Fermat (fixed addition chain) and two multiplications give the
// affine result.
//
// Pipeline: pc -> micro-instruction register -> operand registers (register-file read, with
// the two results about to be written forwarded) -> multiplier / adder -> register file. The
// schedule is static: every micro-instruction carries the number of cycles to wait before the
// next issue, chosen by the generator (testbench/p256/p256_gen.py) so that every operand has
// landed; there are no interlocks, so the timing cannot depend on data.
//
// Interface: the scalar on d_i (big-endian: byte 0 in [255:248]) and the scan seed on
// scan_seed_i with valid/ready; the result as affine X, Y (same convention) with valid/ready,
// or q_err_o = 1 (X = Y = 0) for d = 0 or d >= n. The range check is the only data-dependent
// timing: an invalid scalar is answered two cycles after it is taken, which reveals only that
// it was invalid (public). zeroize_i clears the scalar, the LFSR, the register file, the
// operand, adder, table staging and multiplier registers at the next edge and aborts any
// operation; the same wipe runs from a register in the cycle after a result is taken (no
// scalar is taken in that cycle). dbg_secret_nz_o is 1 while any of those registers
// is non-zero (for the bench's zeroize check); dbg_scan_off_o and dbg_scan_sel_o show the
// current window's scan offset and the cycle in which the scan selects the entry (bench only:
// together they give the digit away, so a product leaves them unconnected).
`default_nettype none

module p256_keygen #(
  parameter RomFile = "p256_base_table.mem",
  // 1: the table is outside (rom_addr_o / rom_data_i, one cycle of read latency like
  // p256_rom), so that two engines can share one block-RAM table through its two ports
  // (p256_rom with TwoPorts); 0: the engine has its own p256_rom and rom_data_i is unused.
  parameter bit ExtRom = 1'b0
) (
  input  wire logic         clk_i,
  input  wire logic         rst_ni,      // synchronous, active low
  input  wire logic         zeroize_i,
  // scalar in
  input  wire logic         d_valid_i,
  output      logic         d_ready_o,
  input  wire logic [255:0] d_i,
  input  wire logic [15:0]  scan_seed_i, // fresh random bits with every scalar
  // public key out
  output      logic         q_valid_o,
  input  wire logic         q_ready_i,
  output      logic [255:0] q_x_o,
  output      logic [255:0] q_y_o,
  output      logic         q_err_o,
  // visibility
  output      logic         busy_o,
  output      logic         dbg_secret_nz_o,
  output      logic [3:0]   dbg_scan_off_o,
  output      logic         dbg_scan_sel_o,
  // the table of multiples of G when ExtRom (public: a counter, never d)
  output      logic [9:0]   rom_addr_o,
  input  wire logic [511:0] rom_data_i
);
  localparam logic [255:0] N = p256_pkg::N;
  localparam logic [255:0] B = p256_pkg::B;
  localparam logic [6:0] InvEntry = 7'd64;
  localparam logic [1:0] OpEnd = 2'd0, OpMul = 2'd1, OpAdd = 2'd2, OpSub = 2'd3;
  localparam int unsigned NReg = 15;  // register 15 is not stored: it reads as b

  typedef enum logic [2:0] {
    StIdle, StCheck, StDecide, StFirst, StExec, StOut
  } state_e;

  // ---------------- registers ----------------
  state_e           state_q, state_d;
  logic             err_q, err_d;
  logic             chk_zero_q, chk_zero_d, chk_ge_q, chk_ge_d;
  logic [5:0]       win_q, win_d;          // window being added (public)
  logic             in_inv_q, in_inv_d;
  logic [6:0]       pc_q, pc_d;
  logic [26:0]      instr_q, instr_d;
  logic [7:0]       rep_q, rep_d;
  logic [4:0]       cnt_q, cnt_d;
  logic [255:0]     opa_q, opa_d, opb_q, opb_d;
  logic             ex_mul_q, ex_mul_d, ex_as_q, ex_as_d, ex_sub_q, ex_sub_d;
  logic [3:0]       ex_dst_q, ex_dst_d;
  logic [255:0]     as_q, as_d;
  logic             as_v1_q, as_v1_d, as_v_q, as_v_d;
  logic [3:0]       as_dst1_q, as_dst1_d, as_dst_q, as_dst_d;
  logic [NReg*256-1:0] rf_q, rf_d;
  // scan engine
  logic [255:0]     d_q, d_d;              // scalar; shifts right one digit per scanned window
  logic [15:0]      lfsr_q, lfsr_d;
  logic [3:0]       off_q, off_d;          // scan offset of the window being scanned
  logic [3:0]       rd_idx_q, rd_idx_d;    // index of the entry on rom_data
  logic [5:0]       scan_win_q, scan_win_d;
  logic [4:0]       scan_j_q, scan_j_d;    // 0..16 (public)
  logic             scan_busy_q, scan_busy_d, scan_done_q, scan_done_d;
  logic [255:0]     stage_x_q, stage_x_d, stage_y_q, stage_y_d;
  logic             stage_z_q, stage_z_d;

  // The wipe after a result is taken runs from a register one cycle later (no scalar is taken
  // in that cycle), so the clear that fans out to every register starts at a flip-flop, not at
  // the state decoding; zeroize_i clears in the cycle it is raised.
  logic wipe_q, wipe, clr;
  assign wipe = zeroize_i | wipe_q;
  assign clr  = !rst_ni | wipe;

  // ---------------- micro-code and decode ----------------
  // The word after the current one is read from pc_q + 1 (a registered address), so the
  // issue decision only selects between it, the current word and the two routine entry words
  // (constants), rather than addressing the ROM itself.
  logic [26:0] ucode_next, ucode_add, ucode_inv;
  logic [1:0]  op;
  logic [3:0]  dst, sa, sb;
  logic [7:0]  rep;
  logic [4:0]  wait_n;
  p256_ucode u_ucode (
    .addr_i (pc_q + 7'd1),
    .instr_o(ucode_next)
  );
  p256_ucode u_ucode_add (
    .addr_i (7'd0),
    .instr_o(ucode_add)
  );
  p256_ucode u_ucode_inv (
    .addr_i (InvEntry),
    .instr_o(ucode_inv)
  );
  assign op     = instr_q[26:25];
  assign dst    = instr_q[24:21];
  assign sa     = instr_q[20:17];
  assign sb     = instr_q[16:13];
  assign rep    = instr_q[12:5];
  assign wait_n = instr_q[4:0];

  // ---------------- execution units ----------------
  logic         mul_done, mul_nz, as_nz;
  logic [3:0]   mul_dst;
  logic [255:0] mul_r, as_r;

  p256_mul u_mul (
    .clk_i,
    .rst_ni,
    .clear_i(wipe),
    .start_i(ex_mul_q),
    .dst_i  (ex_dst_q),
    .a_i    (opa_q),
    .b_i    (opb_q),
    .done_o (mul_done),
    .dst_o  (mul_dst),
    .r_o    (mul_r),
    .nz_o   (mul_nz)
  );

  p256_addsub u_addsub (
    .clk_i,
    .clr_i(clr),
    .a_i  (opa_q),
    .b_i  (opb_q),
    .sub_i(ex_sub_q),
    .r_o  (as_r),
    .nz_o (as_nz)
  );

  // Operand read: b, or a result being written this cycle (forwarded), or the register file.
  function automatic logic [255:0] read_reg(input logic [3:0] sel, input logic [NReg*256-1:0] rf,
                                            input logic as_v, input logic [3:0] as_dst,
                                            input logic [255:0] as_val, input logic m_v,
                                            input logic [3:0] m_dst, input logic [255:0] m_val);
    if (sel == 4'd15) read_reg = B;
    else if (as_v && as_dst == sel) read_reg = as_val;
    else if (m_v && m_dst == sel) read_reg = m_val;
    else begin
      read_reg = '0;
      for (int i = 0; i < NReg; i++) begin
        if (sel == 4'(i)) read_reg = rf[i*256+:256];
      end
    end
  endfunction

  // ---------------- scan engine ----------------
  logic [511:0] rom_data;
  logic [3:0]   digit;
  logic         hit;
  logic [255:0] hit_mask;
  logic         scan_start;   // start scanning the next window (set by the sequencer below)
  logic         start_first;  // start scanning window 0

  assign rom_addr_o = {scan_win_q, off_q + scan_j_q[3:0]};
  if (ExtRom) begin : g_ext_rom
    assign rom_data = rom_data_i;
  end else begin : g_rom
    logic [511:0] unused_b;
    logic         unused_rom;
    assign unused_rom = ^{rom_data_i, unused_b};
    p256_rom #(.RomFile(RomFile)) u_rom (
      .clk_i,
      .addr_i   (rom_addr_o),
      .data_o   (rom_data),
      .addr_b_i (10'd0),
      .data_b_o (unused_b)
    );
  end
  assign digit    = d_q[3:0];
  // one entry per window; a data select, never an address or a branch
  assign hit      = scan_busy_q & (scan_j_q != 5'd0) & (rd_idx_q == digit);
  assign hit_mask = {256{hit}};

  // 16-bit Fibonacci LFSR x^16 + x^14 + x^13 + x^11 + 1 (maximal length), 4 steps per window
  function automatic logic [15:0] lfsr_step4(input logic [15:0] s);
    lfsr_step4 = s;
    for (int i = 0; i < 4; i++) begin
      lfsr_step4 = {lfsr_step4[14:0],
                    lfsr_step4[15] ^ lfsr_step4[13] ^ lfsr_step4[12] ^ lfsr_step4[10]};
    end
  endfunction

  always_comb begin
    d_d         = d_q;
    lfsr_d      = lfsr_q;
    off_d       = off_q;
    rd_idx_d    = off_q + scan_j_q[3:0];
    scan_win_d  = scan_win_q;
    scan_j_d    = scan_j_q;
    scan_busy_d = scan_busy_q;
    scan_done_d = scan_done_q;
    stage_x_d   = (rom_data[511:256] & hit_mask) | (stage_x_q & ~hit_mask);
    stage_y_d   = (rom_data[255:0] & hit_mask) | (stage_y_q & ~hit_mask);
    stage_z_d   = stage_z_q;
    if (state_q == StIdle) begin
      if (d_valid_i) begin
        d_d    = d_i;
        lfsr_d = (scan_seed_i == '0) ? 16'h0001 : scan_seed_i;  // the LFSR never sits at 0
      end
    end else if (state_q == StDecide && (chk_zero_q || chk_ge_q)) begin
      d_d    = '0;
      lfsr_d = '0;
    end else begin
      if (scan_busy_q) begin
        if (scan_j_q == 5'd16) begin
          stage_z_d   = |digit;  // Z2 = 0 turns entry 0 into infinity
          d_d         = d_q >> 4;
          scan_j_d    = '0;
          scan_busy_d = 1'b0;
          scan_done_d = 1'b1;
          if (scan_win_q == 6'd63) begin
            off_d  = '0;  // every window scanned: the LFSR has nothing more to hide
            lfsr_d = '0;
          end
        end else begin
          scan_j_d = scan_j_q + 5'd1;
        end
      end
      if (start_first) begin
        scan_win_d  = '0;
        scan_j_d    = '0;
        scan_busy_d = 1'b1;
        off_d       = lfsr_q[3:0];
        lfsr_d      = lfsr_step4(lfsr_q);
      end
      if (scan_start) begin
        scan_done_d = 1'b0;
        if (scan_win_q != 6'd63) begin
          scan_win_d  = scan_win_q + 6'd1;
          scan_busy_d = 1'b1;
          off_d       = lfsr_q[3:0];
          lfsr_d      = lfsr_step4(lfsr_q);
        end
      end
    end
  end

  // ---------------- range check: 0 < d < n over 32-bit segments ----------------
  // d >= n from per-segment comparisons (32-bit carry chains), combined most significant first
  logic ge_n;
  always_comb begin
    ge_n = 1'b1;  // all segments equal: d == n
    for (int k = 0; k < 8; k++) begin
      if (d_q[32*k+:32] != N[32*k+:32]) ge_n = d_q[32*k+:32] > N[32*k+:32];
    end
  end

  // ---------------- sequencer ----------------
  logic go, issue, at_end, adv, next_window;
  always_comb begin
    go          = (state_q == StExec) & (cnt_q == 5'd0);
    issue       = go & (op != OpEnd);
    at_end      = go & (op == OpEnd);
    adv         = issue & (rep_q == rep);
    // the next window's table point is ready (the scan is far shorter than an addition)
    next_window = at_end & ~in_inv_q & (win_q != 6'd63) & scan_done_q;
    start_first = (state_q == StDecide) & ~chk_zero_q & ~chk_ge_q;
    scan_start  = ((state_q == StFirst) & scan_done_q) | next_window;

    state_d    = state_q;
    err_d      = err_q;
    chk_zero_d = chk_zero_q;
    chk_ge_d   = chk_ge_q;
    win_d      = win_q;
    in_inv_d   = in_inv_q;
    pc_d       = pc_q;
    rep_d      = rep_q;
    cnt_d      = (cnt_q != 5'd0) ? cnt_q - 5'd1 : 5'd0;

    if (issue) begin
      cnt_d = wait_n;
      if (adv) begin
        rep_d = '0;
        pc_d  = pc_q + 7'd1;
      end else begin
        rep_d = rep_q + 8'd1;
      end
    end

    unique case (state_q)
      StIdle: begin
        if (d_valid_i) state_d = StCheck;
      end
      StCheck: begin
        chk_zero_d = (d_q == '0);
        chk_ge_d   = ge_n;
        state_d    = StDecide;
      end
      StDecide: begin
        // The only data-dependent step: 0 < d < n. An invalid scalar is answered at once.
        if (chk_zero_q || chk_ge_q) begin
          err_d   = 1'b1;
          state_d = StOut;
        end else begin
          win_d   = '0;
          state_d = StFirst;
        end
      end
      StFirst: begin  // wait for window 0's table point
        if (scan_done_q) begin
          pc_d    = '0;
          state_d = StExec;
        end
      end
      StExec: begin
        if (at_end) begin
          if (in_inv_q) begin
            state_d = StOut;
          end else if (win_q == 6'd63) begin
            in_inv_d = 1'b1;
            pc_d     = InvEntry;
          end else if (next_window) begin
            win_d = win_q + 6'd1;
            pc_d  = '0;
          end
        end
      end
      StOut: begin  // held until q_ready_i; the wipe follows in the next cycle
        if (q_ready_i) state_d = StIdle;
      end
      default: state_d = StIdle;
    endcase

    if ((state_q == StFirst && scan_done_q) || next_window) instr_d = ucode_add;
    else if (at_end && !in_inv_q && win_q == 6'd63) instr_d = ucode_inv;
    else if (adv) instr_d = ucode_next;
    else instr_d = instr_q;
    // operand stage
    opa_d    = read_reg(sa, rf_q, as_v_q, as_dst_q, as_q, mul_done, mul_dst, mul_r);
    opb_d    = read_reg(sb, rf_q, as_v_q, as_dst_q, as_q, mul_done, mul_dst, mul_r);
    ex_mul_d = issue & (op == OpMul);
    ex_as_d  = issue & (op == OpAdd | op == OpSub);
    ex_sub_d = (op == OpSub);
    ex_dst_d = dst;
    // adder result register (the adder's first stage is inside p256_addsub)
    as_d      = as_r;
    as_v1_d   = ex_as_q;
    as_dst1_d = ex_dst_q;
    as_v_d    = as_v1_q;
    as_dst_d  = as_dst1_q;

    // register file: the adder's and the multiplier's results (never the same register in one
    // cycle: the generator checks it), the table point and the accumulator's initial value
    rf_d = rf_q;
    for (int i = 0; i < NReg; i++) begin
      if (as_v_q && as_dst_q == 4'(i)) rf_d[i*256+:256] = as_q;
      if (mul_done && mul_dst == 4'(i)) rf_d[i*256+:256] = mul_r;
    end
    if ((state_q == StFirst && scan_done_q) || next_window) begin
      rf_d[3*256+:256] = stage_x_q;
      rf_d[4*256+:256] = stage_y_q;
      rf_d[5*256+:256] = {255'd0, stage_z_q};
    end
    if (state_q == StFirst && scan_done_q) begin
      rf_d[0*256+:256] = '0;  // accumulator = (0 : 1 : 0), the point at infinity
      rf_d[1*256+:256] = 256'd1;
      rf_d[2*256+:256] = '0;
    end
  end

  // ---------------- flip-flops (synchronous reset and wipe) ----------------
  always_ff @(posedge clk_i) begin
    if (clr) begin
      state_q     <= StIdle;
      err_q       <= 1'b0;
      chk_zero_q  <= 1'b0;
      chk_ge_q    <= 1'b0;
      win_q       <= '0;
      in_inv_q    <= 1'b0;
      pc_q        <= '0;
      instr_q     <= '0;
      rep_q       <= '0;
      cnt_q       <= '0;
      opa_q       <= '0;
      opb_q       <= '0;
      ex_mul_q    <= 1'b0;
      ex_as_q     <= 1'b0;
      ex_sub_q    <= 1'b0;
      ex_dst_q    <= '0;
      as_q        <= '0;
      as_v1_q     <= 1'b0;
      as_v_q      <= 1'b0;
      as_dst1_q   <= '0;
      as_dst_q    <= '0;
      rf_q        <= '0;
      d_q         <= '0;
      lfsr_q      <= '0;
      off_q       <= '0;
      rd_idx_q    <= '0;
      scan_win_q  <= '0;
      scan_j_q    <= '0;
      scan_busy_q <= 1'b0;
      scan_done_q <= 1'b0;
      stage_x_q   <= '0;
      stage_y_q   <= '0;
      stage_z_q   <= 1'b0;
    end else begin
      state_q     <= state_d;
      err_q       <= err_d;
      chk_zero_q  <= chk_zero_d;
      chk_ge_q    <= chk_ge_d;
      win_q       <= win_d;
      in_inv_q    <= in_inv_d;
      pc_q        <= pc_d;
      instr_q     <= instr_d;
      rep_q       <= rep_d;
      cnt_q       <= cnt_d;
      opa_q       <= opa_d;
      opb_q       <= opb_d;
      ex_mul_q    <= ex_mul_d;
      ex_as_q     <= ex_as_d;
      ex_sub_q    <= ex_sub_d;
      ex_dst_q    <= ex_dst_d;
      as_q        <= as_d;
      as_v1_q     <= as_v1_d;
      as_v_q      <= as_v_d;
      as_dst1_q   <= as_dst1_d;
      as_dst_q    <= as_dst_d;
      rf_q        <= rf_d;
      d_q         <= d_d;
      lfsr_q      <= lfsr_d;
      off_q       <= off_d;
      rd_idx_q    <= rd_idx_d;
      scan_win_q  <= scan_win_d;
      scan_j_q    <= scan_j_d;
      scan_busy_q <= scan_busy_d;
      scan_done_q <= scan_done_d;
      stage_x_q   <= stage_x_d;
      stage_y_q   <= stage_y_d;
      stage_z_q   <= stage_z_d;
    end
  end

  // the wipe after a result: cleared by reset and zeroize, set when the result is taken
  always_ff @(posedge clk_i) begin
    if (!rst_ni || zeroize_i) wipe_q <= 1'b0;
    else wipe_q <= (state_q == StOut) & q_ready_i;
  end

  assign d_ready_o = (state_q == StIdle) & ~zeroize_i & ~wipe_q;
  assign q_valid_o = (state_q == StOut);
  assign q_err_o   = err_q;
  assign q_x_o     = (state_q == StOut && !err_q) ? rf_q[0*256+:256] : '0;
  assign q_y_o     = (state_q == StOut && !err_q) ? rf_q[1*256+:256] : '0;
  assign busy_o    = (state_q != StIdle);

  assign dbg_secret_nz_o = (|d_q) | (|rf_q) | mul_nz | (|stage_x_q) | (|stage_y_q) | stage_z_q |
                           (|opa_q) | (|opb_q) | (|as_q) | as_nz | (|lfsr_q) | (|off_q) |
                           (|rd_idx_q);
  assign dbg_scan_off_o  = off_q;
  assign dbg_scan_sel_o  = hit;
endmodule

`default_nettype wire
