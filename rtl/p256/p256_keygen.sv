// P-256 key generator: Q = d * G, constant time.
//
// A fixed-window (4-bit) fixed-base multiplication: Q = sum_{w=0}^{63} T_w[d_w] with
// T_w[j] = j * 16^w * G held in a 1024-entry ROM (p256_rom). For every window a scan engine
// reads all 16 entries of T_w in order and keeps the one whose index equals the digit with a
// mask (the ROM address never depends on d); it scans window w + 1 while the sequencer adds
// window w. The sequencer runs the complete projective addition of Renes-Costello-Batina (no
// exceptional cases: the accumulator starts at infinity and entry 0 is infinity too) from the
// micro-code ROM on a 15 x 256-bit register file, one fixed-latency modular multiplier and a
// one-cycle adder. It issues in order, one instruction per cycle, and lets additions run
// while a multiplication is in flight (a one-entry scoreboard stalls on the multiplication's
// destination; the micro-code generator schedules around it). An inversion by Fermat (fixed
// addition chain) and two multiplications give the affine result. Stalls depend only on the
// micro-code and the fixed latencies, so the schedule is the same for every valid scalar.
//
// Interface: the scalar on d_i (big-endian: byte 0 in [255:248]) with valid/ready; the result
// as affine X, Y (same convention) with valid/ready, or q_err_o = 1 (X = Y = 0) for d = 0 or
// d >= n. The range check is the only data-dependent timing: an invalid scalar is answered
// one cycle after it is taken, which reveals only that it was invalid (public). zeroize_i
// clears the scalar, the register file, the table staging registers and the multiplier in one
// cycle and aborts any operation; the same wipe runs after every result is accepted. dbg_secret_nz_o is 1 while any register that can hold
// the scalar or an intermediate point is non-zero (for the bench's zeroize check).
`default_nettype none

module p256_keygen #(
  parameter RomFile = "p256_base_table.mem",
  parameter int unsigned DigitW = 64  // must divide 256; the micro-code is scheduled for 64
) (
  input  wire logic         clk_i,
  input  wire logic         rst_ni,
  input  wire logic         zeroize_i,
  // scalar in
  input  wire logic         d_valid_i,
  output      logic         d_ready_o,
  input  wire logic [255:0] d_i,
  // public key out
  output      logic         q_valid_o,
  input  wire logic         q_ready_i,
  output      logic [255:0] q_x_o,
  output      logic [255:0] q_y_o,
  output      logic         q_err_o,
  // visibility
  output      logic         busy_o,
  output      logic         dbg_secret_nz_o
);
  localparam logic [255:0] N = p256_pkg::N;
  localparam logic [255:0] B = p256_pkg::B;
  localparam logic [6:0] InvEntry = 7'd64;
  localparam logic [1:0] OpEnd = 2'd0, OpMul = 2'd1, OpAdd = 2'd2, OpSub = 2'd3;
  // register file: 0..2 accumulator X1 Y1 Z1, 3..5 table point X2 Y2 Z2, 15 reads as b
  localparam logic [3:0] RegX1 = 4'd0, RegY1 = 4'd1, RegZ1 = 4'd2;
  localparam logic [3:0] RegX2 = 4'd3, RegY2 = 4'd4, RegZ2 = 4'd5, RegB = 4'd15;

  typedef enum logic [2:0] {
    StIdle, StCheck, StFirst, StExec, StOut
  } state_e;

  state_e       state_q;
  logic         err_q;
  logic [5:0]   win_q;        // window being added (public)
  logic [6:0]   pc_q;
  logic [7:0]   rep_q;
  logic         in_inv_q;
  logic         pend_q;       // a multiplication is in flight ...
  logic [3:0]   pend_dst_q;   // ... and will write this register
  logic [255:0] rf_q [16];    // entry 15 is never written (reads return b)
  // scan engine
  logic [255:0] d_q;          // scalar; shifts right one digit per scanned window
  logic [5:0]   scan_win_q;   // window being scanned (public)
  logic [4:0]   scan_j_q;     // entry counter 0..16 (public)
  logic         scan_busy_q, scan_done_q;
  logic [255:0] stage_x_q, stage_y_q;
  logic         stage_z_q;

  // ---- datapath ----
  logic [21:0]  instr;
  logic [1:0]   op;
  logic [3:0]   dst, sa, sb;
  logic [7:0]   rep;
  logic [255:0] opa, opb, as_r, mul_r;
  logic         mul_done, mul_nz, wipe;
  logic [511:0] rom_data;
  logic [255:0] hit_mask;
  logic [3:0]   digit;

  p256_ucode u_ucode (
    .addr_i (pc_q),
    .instr_o(instr)
  );
  assign op  = instr[21:20];
  assign dst = instr[19:16];
  assign sa  = instr[15:12];
  assign sb  = instr[11:8];
  assign rep = instr[7:0];

  assign opa = (sa == RegB) ? B : rf_q[sa];
  assign opb = (sb == RegB) ? B : rf_q[sb];

  p256_addsub u_addsub (
    .a_i  (opa),
    .b_i  (opb),
    .sub_i(op == OpSub),
    .r_o  (as_r)
  );

  // ---- issue logic: in order, one instruction per cycle ----
  logic exec, raw, waw, issue_mul, issue_as, at_end, end_ok, next_window;
  assign exec      = (state_q == StExec);
  // read-after-write on the multiplication in flight: wait until it is in the register file
  assign raw       = pend_q & (sa == pend_dst_q | sb == pend_dst_q);
  assign waw       = pend_q & (dst == pend_dst_q);
  assign issue_mul = exec & (op == OpMul) & ~raw & (~pend_q | mul_done);
  assign issue_as  = exec & (op == OpAdd | op == OpSub) & ~raw & ~waw;
  assign at_end    = exec & (op == OpEnd);
  assign end_ok    = at_end & ~pend_q;
  // the next window's table point is ready (the scan is far shorter than an addition)
  assign next_window = end_ok & ~in_inv_q & (win_q != 6'd63) & scan_done_q;

  assign wipe = zeroize_i | (state_q == StOut & q_ready_i);

  p256_mul #(.DigitW(DigitW)) u_mul (
    .clk_i,
    .rst_ni,
    .clear_i(wipe),
    .start_i(issue_mul),
    .a_i    (opa),
    .b_i    (opb),
    .done_o (mul_done),
    .r_o    (mul_r),
    .nz_o   (mul_nz)
  );

  // ---- scan engine: entry scan_j_q is addressed, entry scan_j_q - 1 is on rom_data ----
  p256_rom #(.RomFile(RomFile)) u_rom (
    .clk_i,
    .addr_i({scan_win_q, scan_j_q[3:0]}),
    .data_o(rom_data)
  );
  assign digit    = d_q[3:0];
  // all-ones for exactly one entry per window; a data select, never an address or a branch
  assign hit_mask = {256{(scan_j_q != 5'd0) & (scan_j_q[3:0] - 4'd1 == digit)}};

  logic scan_start;  // start scanning window scan_win_q + 1 (or 0 from StCheck)
  assign scan_start = (state_q == StFirst & scan_done_q) | next_window;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      d_q         <= '0;
      scan_win_q  <= '0;
      scan_j_q    <= '0;
      scan_busy_q <= 1'b0;
      scan_done_q <= 1'b0;
      stage_x_q   <= '0;
      stage_y_q   <= '0;
      stage_z_q   <= 1'b0;
    end else if (wipe) begin
      d_q         <= '0;
      scan_win_q  <= '0;
      scan_j_q    <= '0;
      scan_busy_q <= 1'b0;
      scan_done_q <= 1'b0;
      stage_x_q   <= '0;
      stage_y_q   <= '0;
      stage_z_q   <= 1'b0;
    end else if (state_q == StIdle) begin
      if (d_valid_i) d_q <= d_i;
    end else if (state_q == StCheck) begin
      if (d_q == '0 || d_q >= N) begin
        d_q <= '0;
      end else begin
        scan_win_q  <= '0;
        scan_j_q    <= '0;
        scan_busy_q <= 1'b1;
      end
    end else begin
      if (scan_busy_q) begin
        stage_x_q <= (rom_data[511:256] & hit_mask) | (stage_x_q & ~hit_mask);
        stage_y_q <= (rom_data[255:0] & hit_mask) | (stage_y_q & ~hit_mask);
        if (scan_j_q == 5'd16) begin
          stage_z_q   <= |digit;  // Z2 = 0 turns entry 0 into infinity
          d_q         <= d_q >> 4;
          scan_j_q    <= '0;
          scan_busy_q <= 1'b0;
          scan_done_q <= 1'b1;
        end else begin
          scan_j_q <= scan_j_q + 5'd1;
        end
      end
      if (scan_start) begin
        scan_done_q <= 1'b0;
        if (scan_win_q != 6'd63) begin
          scan_win_q  <= scan_win_q + 6'd1;
          scan_busy_q <= 1'b1;
        end
      end
    end
  end

  // ---- sequencer and register file ----
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q    <= StIdle;
      err_q      <= 1'b0;
      win_q      <= '0;
      pc_q       <= '0;
      rep_q      <= '0;
      in_inv_q   <= 1'b0;
      pend_q     <= 1'b0;
      pend_dst_q <= '0;
      for (int i = 0; i < 16; i++) rf_q[i] <= '0;
    end else if (wipe) begin
      state_q    <= StIdle;
      err_q      <= 1'b0;
      win_q      <= '0;
      pc_q       <= '0;
      rep_q      <= '0;
      in_inv_q   <= 1'b0;
      pend_q     <= 1'b0;
      pend_dst_q <= '0;
      for (int i = 0; i < 16; i++) rf_q[i] <= '0;
    end else begin
      // multiplication write-back (never the same register as an addition issued now: waw)
      if (pend_q && mul_done) rf_q[pend_dst_q] <= mul_r;
      if (issue_mul) begin
        pend_q     <= 1'b1;
        pend_dst_q <= dst;
        if (rep_q == rep) begin
          rep_q <= '0;
          pc_q  <= pc_q + 7'd1;
        end else begin
          rep_q <= rep_q + 8'd1;
        end
      end else if (mul_done) begin
        pend_q <= 1'b0;
      end
      if (issue_as) begin
        rf_q[dst] <= as_r;
        pc_q      <= pc_q + 7'd1;
      end
      unique case (state_q)
        StIdle: begin
          if (d_valid_i) state_q <= StCheck;
        end
        StCheck: begin
          // The only data-dependent step: 0 < d < n. An invalid scalar is answered at once.
          if (d_q == '0 || d_q >= N) begin
            err_q   <= 1'b1;
            state_q <= StOut;
          end else begin
            rf_q[RegX1] <= '0;        // accumulator = (0 : 1 : 0), the point at infinity
            rf_q[RegY1] <= 256'd1;
            rf_q[RegZ1] <= '0;
            win_q       <= '0;
            state_q     <= StFirst;
          end
        end
        StFirst: begin  // wait for window 0's table point
          if (scan_done_q) begin
            rf_q[RegX2] <= stage_x_q;
            rf_q[RegY2] <= stage_y_q;
            rf_q[RegZ2] <= {255'd0, stage_z_q};
            pc_q        <= '0;
            state_q     <= StExec;
          end
        end
        StExec: begin
          if (end_ok) begin
            if (in_inv_q) begin
              state_q <= StOut;
            end else if (win_q == 6'd63) begin
              in_inv_q <= 1'b1;
              pc_q     <= InvEntry;
            end else if (next_window) begin
              rf_q[RegX2] <= stage_x_q;
              rf_q[RegY2] <= stage_y_q;
              rf_q[RegZ2] <= {255'd0, stage_z_q};
              win_q       <= win_q + 6'd1;
              pc_q        <= '0;
            end
          end
        end
        StOut: ;  // held until q_ready_i, which wipes the engine
        default: state_q <= StIdle;
      endcase
    end
  end

  assign d_ready_o = (state_q == StIdle) & ~zeroize_i;
  assign q_valid_o = (state_q == StOut);
  assign q_err_o   = err_q;
  assign q_x_o     = (state_q == StOut && !err_q) ? rf_q[RegX1] : '0;
  assign q_y_o     = (state_q == StOut && !err_q) ? rf_q[RegY1] : '0;
  assign busy_o    = (state_q != StIdle);

  logic rf_nz;
  always_comb begin
    rf_nz = 1'b0;
    for (int i = 0; i < 16; i++) rf_nz = rf_nz | (|rf_q[i]);
  end
  assign dbg_secret_nz_o = (|d_q) | rf_nz | mul_nz | (|stage_x_q) | (|stage_y_q) | stage_z_q;
endmodule

`default_nettype wire
