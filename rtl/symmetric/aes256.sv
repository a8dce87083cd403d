// aes256: iterative AES-256 (FIPS-197), one round per cycle, encrypt and decrypt.
//
// Request:  req_valid_i/req_ready_o with req_dec_i (aes_pkg::OP_ENC/OP_DEC), req_key_i and
//           req_data_i, all sampled on the accepting edge; the caller need not hold them after.
// Response: rsp_valid_o/rsp_ready_i with rsp_data_o (forced to zero while rsp_valid_o is low,
//           so intermediate states never appear on the bus).
// Byte 0 of a block or key is in the most significant bits (see aes_pkg).
//
// Round keys are computed on the fly from a 256-bit sliding window {rk[r-1], rk[r]}, so a new
// key costs nothing for encryption. Decryption walks the schedule backwards from {rk13, rk14};
// that pair is obtained by running the schedule forwards for 13 cycles the first time a key is
// used for decryption and is then cached (tagged with the key it belongs to) until a different
// key is used for decryption or zeroize_i is raised.
//
// Latency, counted in cycles from the one in which the request is accepted up to (excluding)
// the one in which rsp_valid_o is first high, i.e. 1 load cycle + 1 cycle per round:
//   encrypt                      15 cycles (the initial AddRoundKey is folded into the load)
//   decrypt, cached key          15 cycles
//   decrypt, first use of a key  28 cycles (13 forward key-schedule steps, then 14 rounds)
// The count never depends on key or data values. A new request may be accepted in the same
// cycle as the response handshake, so back-to-back blocks cost 15 cycles each.
//
// zeroize_i clears every register that holds key, state or cached round-key material in one
// cycle and abandons any operation in flight (no response is produced for it).
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
  logic [255:0]   dk_q, dk_d;         // cached {rk13, rk14} for decryption
  logic [255:0]   ck_q, ck_d;         // key that dk_q belongs to
  logic           dk_valid_q, dk_valid_d;
  logic           out_valid_q, out_valid_d;

  // ---------------------------------------------------------------------------------------
  // Key schedule step. Forward (encrypt, key expansion): window {rk[r-1], rk[r]} -> {rk[r],
  // rk[r+1]}. Reverse (decrypt): window {rk[r], rk[r+1]} -> {rk[r-1], rk[r]}. Both use the
  // same nonlinear term f(w[4(r+1)-1]) with the same word index 4(r+1), so the four key
  // S-boxes are shared; only the word that feeds them differs.
  // ---------------------------------------------------------------------------------------
  logic         reverse;
  logic [127:0] k_hi, k_lo;
  logic [4:0]   kidx;               // r + 1: even -> RotWord/SubWord/Rcon, odd -> SubWord
  logic [31:0]  f_in, f_sub, f_out;
  logic [127:0] k_fwd, k_rev;

  assign reverse = (fsm_q == StDec);
  assign k_hi    = kreg_q[255:128];
  assign k_lo    = kreg_q[127:0];
  assign kidx    = {1'b0, round_q} + 5'd1;
  assign f_in    = reverse ? k_hi[31:0] : k_lo[31:0];
  assign f_sub   = aes_pkg::sub_word(f_in);
  assign f_out   = kidx[0] ? f_sub
                           : ({f_sub[23:0], f_sub[31:24]} ^ {aes_pkg::rcon(kidx[4:1]), 24'h0});

  logic [31:0] n0, n1, n2, n3;
  always_comb begin
    n0 = k_hi[127:96] ^ f_out;
    n1 = k_hi[95:64]  ^ n0;
    n2 = k_hi[63:32]  ^ n1;
    n3 = k_hi[31:0]   ^ n2;
    k_fwd = {n0, n1, n2, n3};
    k_rev = {k_lo[127:96] ^ f_out,
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
  logic accept, dk_hit;

  assign req_ready_o = !zeroize_i && (fsm_q == StIdle) && (!out_valid_q || rsp_ready_i);
  assign accept      = req_valid_i && req_ready_o;
  assign dk_hit      = dk_valid_q && (ck_q == req_key_i);
  assign rsp_valid_o = out_valid_q;
  assign rsp_data_o  = out_valid_q ? state_q : 128'h0;

  always_comb begin
    fsm_d       = fsm_q;
    round_d     = round_q;
    state_d     = state_q;
    kreg_d      = kreg_q;
    dk_d        = dk_q;
    ck_d        = ck_q;
    dk_valid_d  = dk_valid_q;
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
          end else if (dk_hit) begin
            fsm_d   = StDec;
            round_d = 4'd13;
            state_d = req_data_i ^ dk_q[127:0];
            kreg_d  = dk_q;
          end else begin
            fsm_d      = StKeyExp;
            round_d    = 4'd1;
            state_d    = req_data_i;
            kreg_d     = req_key_i;
            ck_d       = req_key_i;
            dk_valid_d = 1'b0;
          end
        end
      end
      StKeyExp: begin
        kreg_d  = {k_lo, k_fwd};
        round_d = round_q + 4'd1;
        if (round_q == 4'd13) begin
          fsm_d      = StDec;
          round_d    = 4'd13;
          dk_d       = {k_lo, k_fwd};
          dk_valid_d = 1'b1;
          state_d    = state_q ^ k_fwd;
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
      dk_d        = 256'h0;
      ck_d        = 256'h0;
      dk_valid_d  = 1'b0;
      out_valid_d = 1'b0;
    end
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      fsm_q       <= StIdle;
      round_q     <= 4'd0;
      state_q     <= 128'h0;
      kreg_q      <= 256'h0;
      dk_q        <= 256'h0;
      ck_q        <= 256'h0;
      dk_valid_q  <= 1'b0;
      out_valid_q <= 1'b0;
    end else begin
      fsm_q       <= fsm_d;
      round_q     <= round_d;
      state_q     <= state_d;
      kreg_q      <= kreg_d;
      dk_q        <= dk_d;
      ck_q        <= ck_d;
      dk_valid_q  <= dk_valid_d;
      out_valid_q <= out_valid_d;
    end
  end

endmodule

`default_nettype wire
