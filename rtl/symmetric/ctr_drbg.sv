// ctr_drbg: NIST SP 800-90A r1 CTR_DRBG with AES-256, no derivation function (seedlen = 384
// bits), no additional input, no prediction resistance; plus the WPID-1 scalar generator.
//
// Commands (req_cmd_i, sampled with req_entropy_i/req_pers_i/req_beats_i on the accepting edge):
//   CmdInstantiate  seed_material = entropy ^ personalization (zero-padded to 48 bytes);
//                   Key = 0, V = 0; (Key, V) = Update(seed_material); reseed_counter = 1.
//   CmdReseed       (Key, V) = Update(entropy); reseed_counter = 1.
//   CmdGenerate     req_beats_i + 1 beats of 32 bytes (1..4; 2 beats = the 512-bit CAVP
//                   requests): V = V + 1 and out ||= AES(Key, V) per 16 bytes, then
//                   (Key, V) = Update(0^384); reseed_counter += 1. Beats before the last are
//                   presented with rsp_last_o = 0 and generation pauses until each is taken.
//   CmdGenScalar    WPID-1 key rejection: repeated Generate(32 bytes), each output read as a
//                   big-endian integer d, until 1 <= d < SCALAR_LIMIT (the P-256 order n by
//                   default); rsp_rejects_o reports how many candidates were discarded.
// A Generate (or a scalar candidate) is refused with rsp_err_o = ErrReseed, no output and no
// state change when reseed_counter > reseed_interval_i; commands other than CmdInstantiate
// before instantiation return ErrNotInst. Every command ends with one response beat with
// rsp_last_o = 1 (data zero for instantiate, reseed and errors).
//
// Byte order: entropy/personalization byte 0 in [383:376], output byte 0 in [255:248].
// Cycles (15 per AES block, chained): Update = 3 blocks, Generate(32) = 5 blocks.
//
// Timing (250 MHz, docs/rtl.md): V + 1, a 128-bit carry chain (~3.2 ns by the timing model)
// when computed in one go in front of the AES core, is split: vlo_q = V[63:0] + 1 (with its
// carry) and vhi_q = V[127:64] are registered one cycle after V changes, and the request adds
// the carry into the upper half (a 64-bit chain). V is never used within one cycle of
// changing, except right after Instantiate sets V = 0, where vlo_q/vhi_q are loaded directly.
// scalar_check is pipelined (2 cycles) and read at the end of the Update that follows the
// candidate (45 cycles later).
// SCALAR_LIMIT is a parameter so that a bench can instantiate the same RTL with a limit at
// which rejection is frequent (the comparator itself is scalar_check.sv).
//
// zeroize_i clears Key, V, the seed/temp and output registers and the reseed counter in one
// cycle and returns the block to the uninstantiated state.
`default_nettype none

module ctr_drbg #(
  parameter logic [255:0] SCALAR_LIMIT = p256_pkg::N
) (
  input  logic         clk_i,
  input  logic         rst_ni,
  input  logic         zeroize_i,

  input  logic [47:0]  reseed_interval_i,   // static configuration, at most 2^48

  input  logic         req_valid_i,
  output logic         req_ready_o,
  input  logic [1:0]   req_cmd_i,
  input  logic [383:0] req_entropy_i,
  input  logic [383:0] req_pers_i,
  input  logic [1:0]   req_beats_i,

  output logic         rsp_valid_o,
  input  logic         rsp_ready_i,
  output logic [255:0] rsp_data_o,
  output logic         rsp_last_o,
  output logic [1:0]   rsp_err_o,
  output logic [15:0]  rsp_rejects_o,

  // AES master port (encryption only).
  output logic         aes_req_valid_o,
  input  logic         aes_req_ready_i,
  output logic         aes_req_dec_o,
  output logic [255:0] aes_req_key_o,
  output logic [127:0] aes_req_data_o,
  input  logic         aes_rsp_valid_i,
  output logic         aes_rsp_ready_o,
  input  logic [127:0] aes_rsp_data_i
);

  localparam logic [1:0] CmdInstantiate = 2'd0;
  localparam logic [1:0] CmdReseed      = 2'd1;
  localparam logic [1:0] CmdGenerate    = 2'd2;
  localparam logic [1:0] CmdGenScalar   = 2'd3;

  localparam logic [1:0] ErrNone    = 2'd0;
  localparam logic [1:0] ErrReseed  = 2'd1;
  localparam logic [1:0] ErrNotInst = 2'd2;

  typedef enum logic [2:0] {
    StIdle  = 3'd0,
    StStart = 3'd1,   // checks before a Generate / scalar candidate
    StIssue = 3'd2,   // AES request pending
    StWait  = 3'd3,   // AES response pending
    StPart  = 3'd4,   // a non-final Generate beat is being presented
    StDone  = 3'd5    // final response beat
  } state_e;

  state_e       fsm_q, fsm_d;
  logic [1:0]   cmd_q, cmd_d;
  logic [255:0] key_q, key_d;
  logic [127:0] v_q, v_d;
  logic [64:0]  vlo_q, vlo_d;      // V[63:0] + 1 with its carry, one cycle behind v_q
  logic [63:0]  vhi_q, vhi_d;      // V[127:64], one cycle behind v_q
  logic [127:0] vinc;              // V + 1
  logic [383:0] pd_q, pd_d;        // Update's provided data, XORed in place into temp
  logic [255:0] out_q, out_d;
  logic [48:0]  rc_q, rc_d;        // reseed_counter (can reach 2^48 + 1 before refusal)
  logic         inst_q, inst_d;
  logic         upd_q, upd_d;      // 0: output blocks, 1: Update blocks
  logic [1:0]   blk_q, blk_d;      // block within the phase
  logic [1:0]   beats_q, beats_d;  // Generate beats still to produce after this one
  logic [1:0]   err_q, err_d;
  logic [15:0]  rej_q, rej_d;

  // ---------------------------------------------------------------------------------------
  // Datapath helpers.
  // ---------------------------------------------------------------------------------------
  logic         scalar_ok, reseed_due, last_in_phase, gen_more_beats, has_next;

  assign reseed_due = rc_q > {1'b0, reseed_interval_i};

  scalar_check #(.LIMIT(SCALAR_LIMIT)) u_check (
    .clk_i,
    .rst_ni,
    .zeroize_i,
    .d_i  (out_q),
    .ok_o (scalar_ok)
  );

  // Phase flags of the block in flight, registered (computed from the next upd/blk/beats) so
  // that the wide Key/V/temp/output updates they select start from a flop.
  logic last_q, last_d, more_q, more_d, next_q, next_d;
  assign last_in_phase  = last_q;
  assign gen_more_beats = more_q;
  assign has_next       = next_q;
  // After this response, is there another AES block to chain (same phase or into Update)?

  // ---------------------------------------------------------------------------------------
  // Handshakes. The next request (data V+1, already known) is presented in the same cycle as
  // the previous response is taken.
  // ---------------------------------------------------------------------------------------
  logic take_rsp;

  assign req_ready_o     = !zeroize_i && (fsm_q == StIdle);
  assign aes_req_dec_o   = aes_pkg::OP_ENC;
  assign aes_req_key_o   = key_q;
  assign vinc            = {vhi_q + {63'h0, vlo_q[64]}, vlo_q[63:0]};
  assign aes_req_data_o  = vinc;
  assign aes_req_valid_o = !zeroize_i &&
                           ((fsm_q == StIssue) || ((fsm_q == StWait) && aes_rsp_valid_i && has_next));
  assign aes_rsp_ready_o = !zeroize_i && (fsm_q == StWait);
  assign take_rsp        = aes_rsp_valid_i && aes_rsp_ready_o;

  assign rsp_valid_o   = (fsm_q == StPart) || (fsm_q == StDone);
  assign rsp_last_o    = (fsm_q == StDone);
  assign rsp_err_o     = rsp_valid_o ? err_q : ErrNone;
  assign rsp_rejects_o = rsp_valid_o ? rej_q : 16'h0;
  assign rsp_data_o    = (rsp_valid_o && err_q == ErrNone &&
                          (cmd_q == CmdGenerate || cmd_q == CmdGenScalar)) ? out_q : 256'h0;

  always_comb begin
    fsm_d   = fsm_q;
    cmd_d   = cmd_q;
    key_d   = key_q;
    v_d     = v_q;
    pd_d    = pd_q;
    out_d   = out_q;
    rc_d    = rc_q;
    inst_d  = inst_q;
    upd_d   = upd_q;
    blk_d   = blk_q;
    beats_d = beats_q;
    err_d   = err_q;
    rej_d   = rej_q;

    // Each accepted AES request consumes V + 1.
    vlo_d   = {1'b0, v_q[63:0]} + 65'd1;
    vhi_d   = v_q[127:64];

    if (aes_req_valid_o && aes_req_ready_i) v_d = vinc;

    unique case (fsm_q)
      StIdle: begin
        if (req_valid_i && req_ready_o) begin
          cmd_d   = req_cmd_i;
          err_d   = ErrNone;
          rej_d   = 16'h0;
          beats_d = 2'd0;
          blk_d   = 2'd0;
          unique case (req_cmd_i)
            CmdInstantiate: begin
              key_d  = 256'h0;
              v_d    = 128'h0;
              vlo_d  = 65'h1;
              vhi_d  = 64'h0;
              pd_d  = req_entropy_i ^ req_pers_i;
              upd_d = 1'b1;
              fsm_d = StIssue;
            end
            CmdReseed: begin
              upd_d = 1'b1;
              if (inst_q) begin
                pd_d  = req_entropy_i;
                fsm_d = StIssue;
              end else begin
                err_d = ErrNotInst;
                fsm_d = StDone;
              end
            end
            default: begin   // CmdGenerate, CmdGenScalar
              beats_d = (req_cmd_i == CmdGenerate) ? req_beats_i : 2'd0;
              fsm_d   = StStart;
            end
          endcase
        end
      end

      StStart: begin
        upd_d = 1'b0;
        blk_d = 2'd0;
        pd_d  = 384'h0;
        if (!inst_q) begin
          err_d = ErrNotInst;
          fsm_d = StDone;
        end else if (reseed_due) begin
          err_d = ErrReseed;
          fsm_d = StDone;
        end else begin
          fsm_d = StIssue;
        end
      end

      StIssue: if (aes_req_valid_o && aes_req_ready_i) fsm_d = StWait;

      StWait: begin
        if (take_rsp) begin
          blk_d = blk_q + 2'd1;
          // Fixed slices per block (variable part-selects become barrel shifters in Yosys).
          if (!upd_q) begin
            if (!blk_q[0]) out_d[255:128] = aes_rsp_data_i;
            else           out_d[127:0]   = aes_rsp_data_i;
          end else begin
            unique case (blk_q)
              2'd0:    pd_d[383:256] = pd_q[383:256] ^ aes_rsp_data_i;
              2'd1:    pd_d[255:128] = pd_q[255:128] ^ aes_rsp_data_i;
              default: pd_d[127:0]   = pd_q[127:0]   ^ aes_rsp_data_i;
            endcase
          end
          if (last_in_phase) begin
            blk_d = 2'd0;
            if (!upd_q) begin
              if (gen_more_beats) begin
                beats_d = beats_q - 2'd1;
                fsm_d   = StPart;
              end else begin
                upd_d = 1'b1;
              end
            end else begin
              // Update done: Key = temp[0:32], V = temp[32:48].
              key_d = pd_q[383:128];
              v_d   = pd_q[127:0] ^ aes_rsp_data_i;
              pd_d  = 384'h0;
              upd_d = 1'b0;
              unique case (cmd_q)
                CmdInstantiate, CmdReseed: begin
                  rc_d   = 49'd1;
                  inst_d = 1'b1;
                  fsm_d  = StDone;
                end
                CmdGenerate: begin
                  rc_d  = rc_q + 49'd1;
                  fsm_d = StDone;
                end
                default: begin   // CmdGenScalar
                  rc_d = rc_q + 49'd1;
                  if (scalar_ok) begin
                    fsm_d = StDone;
                  end else begin
                    rej_d = (rej_q == 16'hffff) ? rej_q : rej_q + 16'd1;
                    out_d = 256'h0;
                    fsm_d = StStart;
                  end
                end
              endcase
            end
          end
          // The chained request was not accepted (shared AES core busy): issue it next.
          if (has_next && !aes_req_ready_i) fsm_d = StIssue;
        end
      end

      StPart: begin
        if (rsp_ready_i) begin
          out_d = 256'h0;
          fsm_d = StIssue;
        end
      end

      StDone: begin
        if (rsp_ready_i) begin
          out_d = 256'h0;
          fsm_d = StIdle;
        end
      end

      default: fsm_d = StIdle;
    endcase

    if (zeroize_i) begin
      fsm_d   = StIdle;
      cmd_d   = CmdInstantiate;
      key_d   = 256'h0;
      v_d     = 128'h0;
      vlo_d   = 65'h0;
      vhi_d   = 64'h0;
      pd_d    = 384'h0;
      out_d   = 256'h0;
      rc_d    = 49'd0;
      inst_d  = 1'b0;
      upd_d   = 1'b0;
      blk_d   = 2'd0;
      beats_d = 2'd0;
      err_d   = ErrNone;
      rej_d   = 16'h0;
    end

    last_d = upd_d ? (blk_d == 2'd2) : (blk_d == 2'd1);
    more_d = !upd_d && (beats_d != 2'd0);
    next_d = !(upd_d && last_d) && !(last_d && more_d);
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      fsm_q   <= StIdle;
      cmd_q   <= CmdInstantiate;
      key_q   <= 256'h0;
      v_q     <= 128'h0;
      vlo_q   <= 65'h0;
      vhi_q   <= 64'h0;
      pd_q    <= 384'h0;
      out_q   <= 256'h0;
      rc_q    <= 49'd0;
      inst_q  <= 1'b0;
      upd_q   <= 1'b0;
      blk_q   <= 2'd0;
      beats_q <= 2'd0;
      err_q   <= ErrNone;
      rej_q   <= 16'h0;
      last_q  <= 1'b0;
      more_q  <= 1'b0;
      next_q  <= 1'b1;
    end else begin
      fsm_q   <= fsm_d;
      cmd_q   <= cmd_d;
      key_q   <= key_d;
      v_q     <= v_d;
      vlo_q   <= vlo_d;
      vhi_q   <= vhi_d;
      pd_q    <= pd_d;
      out_q   <= out_d;
      rc_q    <= rc_d;
      inst_q  <= inst_d;
      upd_q   <= upd_d;
      blk_q   <= blk_d;
      beats_q <= beats_d;
      err_q   <= err_d;
      rej_q   <= rej_d;
      last_q  <= last_d;
      more_q  <= more_d;
      next_q  <= next_d;
    end
  end

endmodule

`default_nettype wire
