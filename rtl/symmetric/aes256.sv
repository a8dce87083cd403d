// aes256: iterative AES-256 (FIPS-197), one round per cycle, encrypt and decrypt.
//
// Request:  req_valid_i/req_ready_o with req_dec_i (aes_pkg::OP_ENC/OP_DEC), req_key_i and
//           req_data_i, all sampled on the accepting edge; the caller need not hold them after.
// Response: rsp_valid_o/rsp_ready_i with rsp_data_o (forced to zero while rsp_valid_o is low,
//           so intermediate states never appear on the bus).
// Byte 0 of a block or key is in the most significant bits (see aes_pkg).
//
// Round keys are computed on the fly from a 256-bit sliding window {rk[r-1], rk[r]}, so a new
// key costs nothing for encryption. Decryption walks the schedule backwards from {rk13, rk14},
// which every decryption obtains by running the schedule forwards for 13 cycles first. (An
// earlier version cached {rk13, rk14} with the key it belongs to; its 256-bit key compare sat in
// front of every register of the core, 3.9 ns by the timing model, and made the decryption time
// depend on whether the key was the previous one. Nothing in the per-die chain decrypts.)
//
// Latency, counted in cycles from the one in which the request is accepted up to (excluding)
// the one in which rsp_valid_o is first high, i.e. 1 load cycle + 1 cycle per round:
//   encrypt  15 cycles (the initial AddRoundKey is folded into the load)
//   decrypt  28 cycles (13 forward key-schedule steps, then 14 rounds)
// The count never depends on key or data values, nor on earlier requests. A new request may be
// accepted in the same cycle as the response handshake, so back-to-back blocks cost 15 (28)
// cycles each.
//
// Timing (250 MHz by tools/synth/timing.sh, docs/rtl.md): one round per cycle with the S-boxes
// as explicit LUT tables (aes_pkg); the forward and reverse key-schedule steps have their own
// four S-boxes each, so no direction multiplexer sits in front of them.
//
// zeroize_i clears every register that holds key or state material in one cycle and abandons
// any operation in flight (no response is produced for it).
`default_nettype none

module aes256 (
  input  logic         clk_i,
  input  logic         rst_ni,
  input  logic         zeroize_i,

  input  logic         req_valid_i,
  output logic         req_ready_o,
  input  logic         req_dec_i,
  input  logic [255:0] req_key_i,
  input  logic [127:0] req_data_i,

  output logic         rsp_valid_o,
  input  logic         rsp_ready_i,
  output logic [127:0] rsp_data_o
);

  typedef enum logic [1:0] {
    StIdle   = 2'd0,
    StEnc    = 2'd1,
    StDec    = 2'd2,
    StKeyExp = 2'd3
  } state_e;

  state_e         fsm_q, fsm_d;
  logic [3:0]     round_q, round_d;
  logic [127:0]   state_q, state_d;
  logic [255:0]   kreg_q, kreg_d;     // round-key window
  logic           out_valid_q, out_valid_d;

  // ---------------------------------------------------------------------------------------
  // Key schedule step. Forward (encrypt, key expansion): window {rk[r-1], rk[r]} -> {rk[r],
  // rk[r+1]}. Reverse (decrypt): window {rk[r], rk[r+1]} -> {rk[r-1], rk[r]}. Both use the
  // nonlinear term f(w[4(r+1)-1]) with the same word index 4(r+1), fed from k_lo forwards
  // and from k_hi backwards; each direction has its own four S-boxes.
  // ---------------------------------------------------------------------------------------
  logic [127:0] k_hi, k_lo;
  logic [4:0]   kidx;               // r + 1: even -> RotWord/SubWord/Rcon, odd -> SubWord
  logic [31:0]  f_sub_fwd, f_sub_rev, f_fwd, f_rev;
  logic [127:0] k_fwd, k_rev;

  function automatic logic [31:0] kfun(input logic [31:0] sub, input logic [4:0] idx);
    kfun = idx[0] ? sub : ({sub[23:0], sub[31:24]} ^ {aes_pkg::rcon(idx[4:1]), 24'h0});
  endfunction

  assign k_hi      = kreg_q[255:128];
  assign k_lo      = kreg_q[127:0];
  assign kidx      = {1'b0, round_q} + 5'd1;
  assign f_sub_fwd = aes_pkg::sub_word(k_lo[31:0]);
  assign f_sub_rev = aes_pkg::sub_word(k_hi[31:0]);
  assign f_fwd     = kfun(f_sub_fwd, kidx);
  assign f_rev     = kfun(f_sub_rev, kidx);

  logic [31:0] n0, n1, n2, n3;
  always_comb begin
    n0 = k_hi[127:96] ^ f_fwd;
    n1 = k_hi[95:64]  ^ n0;
    n2 = k_hi[63:32]  ^ n1;
    n3 = k_hi[31:0]   ^ n2;
    k_fwd = {n0, n1, n2, n3};
    k_rev = {k_lo[127:96] ^ f_rev,
             k_lo[95:64]  ^ k_lo[127:96],
             k_lo[63:32]  ^ k_lo[95:64],
             k_lo[31:0]   ^ k_lo[63:32]};
  end

  // ---------------------------------------------------------------------------------------
  // Round datapaths.
  // ---------------------------------------------------------------------------------------
  logic [127:0] enc_sr, enc_next, dec_ark, dec_next;
  logic         enc_last, dec_last;

  assign enc_last = (round_q == 4'd14);
  assign dec_last = (round_q == 4'd0);
  assign enc_sr   = aes_pkg::shift_rows(aes_pkg::sub_bytes(state_q));
  assign enc_next = (enc_last ? enc_sr : aes_pkg::mix_columns(enc_sr)) ^ k_lo;
  assign dec_ark  = aes_pkg::inv_sub_bytes(aes_pkg::inv_shift_rows(state_q)) ^ k_hi;
  assign dec_next = dec_last ? dec_ark : aes_pkg::inv_mix_columns(dec_ark);

  // ---------------------------------------------------------------------------------------
  // Control.
  // ---------------------------------------------------------------------------------------
  logic accept;

  assign req_ready_o = !zeroize_i && (fsm_q == StIdle) && (!out_valid_q || rsp_ready_i);
  assign accept      = req_valid_i && req_ready_o;
  assign rsp_valid_o = out_valid_q;
  assign rsp_data_o  = out_valid_q ? state_q : 128'h0;

  always_comb begin
    fsm_d       = fsm_q;
    round_d     = round_q;
    state_d     = state_q;
    kreg_d      = kreg_q;
    out_valid_d = out_valid_q;

    if (out_valid_q && rsp_ready_i) begin
      out_valid_d = 1'b0;
      state_d     = 128'h0;   // the result leaves the core once it has been taken
    end

    unique case (fsm_q)
      StIdle: begin
        if (accept) begin
          if (!req_dec_i) begin
            fsm_d   = StEnc;
            round_d = 4'd1;
            state_d = req_data_i ^ req_key_i[255:128];
            kreg_d  = req_key_i;
          end else begin
            fsm_d   = StKeyExp;
            round_d = 4'd1;
            state_d = req_data_i;
            kreg_d  = req_key_i;
          end
        end
      end
      StKeyExp: begin
        kreg_d  = {k_lo, k_fwd};
        round_d = round_q + 4'd1;
        if (round_q == 4'd13) begin
          fsm_d   = StDec;
          round_d = 4'd13;
          state_d = state_q ^ k_fwd;
        end
      end
      StEnc: begin
        state_d = enc_next;
        kreg_d  = {k_lo, k_fwd};
        round_d = round_q + 4'd1;
        if (enc_last) begin
          fsm_d       = StIdle;
          kreg_d      = 256'h0;
          round_d     = 4'd0;
          out_valid_d = 1'b1;
        end
      end
      StDec: begin
        state_d = dec_next;
        kreg_d  = {k_rev, k_hi};
        round_d = round_q - 4'd1;
        if (dec_last) begin
          fsm_d       = StIdle;
          kreg_d      = 256'h0;
          round_d     = 4'd0;
          out_valid_d = 1'b1;
        end
      end
      default: fsm_d = StIdle;
    endcase

    if (zeroize_i) begin
      fsm_d       = StIdle;
      round_d     = 4'd0;
      state_d     = 128'h0;
      kreg_d      = 256'h0;
      out_valid_d = 1'b0;
    end
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      fsm_q       <= StIdle;
      round_q     <= 4'd0;
      state_q     <= 128'h0;
      kreg_q      <= 256'h0;
      out_valid_q <= 1'b0;
    end else begin
      fsm_q       <= fsm_d;
      round_q     <= round_d;
      state_q     <= state_d;
      kreg_q      <= kreg_d;
      out_valid_q <= out_valid_d;
    end
  end

endmodule

`default_nettype wire
