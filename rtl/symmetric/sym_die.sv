// sym_die: the symmetric work for one die, chained over a single shared aes256 core:
//   KEK = wpid_kdf(KIK, UID); d = ctr_drbg generate-scalar; wrapped = aes_kw wrap(KEK, d).
//
// DRBG management: drbg_req_*/drbg_rsp_* instantiate (drbg_req_reseed_i = 0, with entropy and
//           personalization) or reseed (drbg_req_reseed_i = 1) the DRBG; accepted only while no
//           die is in progress.
// Die:      die_req_valid_i/die_req_ready_o with die_uid_i, die_new_kik_i and die_kik_i (see
//           wpid_kdf: the KIK is loaded and its CMAC subkeys derived only when die_new_kik_i).
//           die_rsp_valid_o/die_rsp_ready_i with die_wrapped_o (RFC 3394 wrap of d under the
//           KEK, 40 bytes), die_scalar_o (d, for the P-256 engine), die_rejects_o, die_err_o (the
//           DRBG's error: reseed required or not instantiated; no outputs then) and
//           die_cycles_o (cycles from the accepting cycle to the response).
// The blocks hand their results on without copies: the KEK stays in wpid_kdf's response until
// aes_kw has taken it, and d stays in ctr_drbg's response until the die response is taken.
//
// Timing (250 MHz by tools/synth/timing.sh, docs/rtl.md): the AES requests of the three engines
// pass through one request register (aes256_rq) on their way to the core. Without it the
// response -> next-request handshake ran combinationally from aes256's output register through
// the ownership gates, an engine's chaining logic and the request multiplexer into aes256's load
// multiplexers: 12 LUT levels, ~7.9 ns by the timing model. It costs one cycle per AES
// operation (35 or 36 per die). The owner of the core is a registered one-hot (own_q), so the
// multiplexer and the gates start from flops.
//
// zeroize_i is forwarded to every block (one cycle clears every secret, the request register
// included) and abandons the die. kik_clear_i clears only the KIK held in wpid_kdf and its CMAC
// subkeys (after a failed KIK load); raise it only while no die is in progress. kik_held_o is 1
// while wpid_kdf holds a KIK (public, for the bench).
`default_nettype none

module sym_die #(
  parameter logic [255:0] SCALAR_LIMIT = p256_pkg::N
) (
  input  logic         clk_i,
  input  logic         rst_ni,
  input  logic         zeroize_i,
  input  logic         kik_clear_i,
  output logic         kik_held_o,
  input  logic [47:0]  reseed_interval_i,

  input  logic         drbg_req_valid_i,
  output logic         drbg_req_ready_o,
  input  logic         drbg_req_reseed_i,
  input  logic [383:0] drbg_entropy_i,
  input  logic [383:0] drbg_pers_i,
  output logic         drbg_rsp_valid_o,
  input  logic         drbg_rsp_ready_i,
  output logic [1:0]   drbg_rsp_err_o,

  input  logic         die_req_valid_i,
  output logic         die_req_ready_o,
  input  logic         die_new_kik_i,
  input  logic [255:0] die_kik_i,
  input  logic [127:0] die_uid_i,
  output logic         die_rsp_valid_o,
  input  logic         die_rsp_ready_i,
  output logic [319:0] die_wrapped_o,
  output logic [255:0] die_scalar_o,
  output logic [15:0]  die_rejects_o,
  output logic [1:0]   die_err_o,
  output logic [15:0]  die_cycles_o
);

  typedef enum logic [2:0] {
    StIdle    = 3'd0,
    StMgmt    = 3'd1,   // DRBG instantiate/reseed
    StKdf     = 3'd2,   // KEK derivation
    StDrbgReq = 3'd3,   // issuing generate-scalar
    StDrbg    = 3'd4,   // scalar generation
    StKwReq   = 3'd5,   // handing KEK and d to aes_kw
    StKw      = 3'd6,   // wrapping
    StDone    = 3'd7    // die response (or DRBG error)
  } state_e;

  state_e      fsm_q, fsm_d;
  logic [15:0] cyc_q, cyc_d;
  // Owner of the shared AES core, one-hot (kdf, drbg, kw), registered from the next state so
  // that the 256/128-bit request multiplexer and the handshake gates start from a flop instead
  // of a state decode (timing, issue #13).
  logic [2:0]  own_q, own_d;

  // ---------------------------------------------------------------------------------------
  // Blocks.
  // ---------------------------------------------------------------------------------------
  // AES master ports: index 0 kdf, 1 drbg, 2 kw (separate vectors: Yosys 0.23 cannot parse
  // packed arrays of vectors).
  logic [2:0]   m_req_valid, m_req_dec, m_rsp_ready;
  logic [255:0] m0_req_key, m1_req_key, m2_req_key;
  logic [127:0] m0_req_data, m1_req_data, m2_req_data;

  logic         kdf_req_valid, kdf_req_ready, kdf_rsp_valid, kdf_rsp_ready;
  logic [255:0] kdf_rsp_kek;
  logic         drbg_req_valid, drbg_req_ready, drbg_rsp_valid, drbg_rsp_ready, drbg_rsp_last;
  logic [1:0]   drbg_req_cmd, drbg_rsp_err;
  logic [255:0] drbg_rsp_data;
  logic [15:0]  drbg_rsp_rejects;
  logic         kw_req_valid, kw_req_ready, kw_rsp_valid, kw_rsp_ready, kw_rsp_err;
  logic [319:0] kw_rsp_wrapped;
  logic [255:0] kw_rsp_key;

  // The engines' side of the core's request register (multiplexed by owner).
  logic         aes_req_valid, aes_req_ready, aes_req_dec, aes_rsp_valid, aes_rsp_ready;
  logic [255:0] aes_req_key;
  logic [127:0] aes_req_data, aes_rsp_data;

  wpid_kdf u_kdf (
    .clk_i, .rst_ni, .zeroize_i, .kik_clear_i, .kik_held_o,
    .req_valid_i     (kdf_req_valid),
    .req_ready_o     (kdf_req_ready),
    .req_new_kik_i   (die_new_kik_i),
    .req_kik_i       (die_kik_i),
    .req_uid_i       (die_uid_i),
    .rsp_valid_o     (kdf_rsp_valid),
    .rsp_ready_i     (kdf_rsp_ready),
    .rsp_kek_o       (kdf_rsp_kek),
    .aes_req_valid_o (m_req_valid[0]),
    .aes_req_ready_i (aes_req_ready && own_q[0]),
    .aes_req_dec_o   (m_req_dec[0]),
    .aes_req_key_o   (m0_req_key),
    .aes_req_data_o  (m0_req_data),
    .aes_rsp_valid_i (aes_rsp_valid && own_q[0]),
    .aes_rsp_ready_o (m_rsp_ready[0]),
    .aes_rsp_data_i  (aes_rsp_data)
  );

  ctr_drbg #(.SCALAR_LIMIT(SCALAR_LIMIT)) u_drbg (
    .clk_i, .rst_ni, .zeroize_i, .reseed_interval_i,
    .req_valid_i     (drbg_req_valid),
    .req_ready_o     (drbg_req_ready),
    .req_cmd_i       (drbg_req_cmd),
    .req_entropy_i   (drbg_entropy_i),
    .req_pers_i      (drbg_pers_i),
    .req_beats_i     (2'd0),
    .rsp_valid_o     (drbg_rsp_valid),
    .rsp_ready_i     (drbg_rsp_ready),
    .rsp_data_o      (drbg_rsp_data),
    .rsp_last_o      (drbg_rsp_last),
    .rsp_err_o       (drbg_rsp_err),
    .rsp_rejects_o   (drbg_rsp_rejects),
    .aes_req_valid_o (m_req_valid[1]),
    .aes_req_ready_i (aes_req_ready && own_q[1]),
    .aes_req_dec_o   (m_req_dec[1]),
    .aes_req_key_o   (m1_req_key),
    .aes_req_data_o  (m1_req_data),
    .aes_rsp_valid_i (aes_rsp_valid && own_q[1]),
    .aes_rsp_ready_o (m_rsp_ready[1]),
    .aes_rsp_data_i  (aes_rsp_data)
  );

  aes_kw u_kw (
    .clk_i, .rst_ni, .zeroize_i,
    .req_valid_i     (kw_req_valid),
    .req_ready_o     (kw_req_ready),
    .req_unwrap_i    (1'b0),
    .req_n_i         (6'd4),
    .req_kek_i       (kdf_rsp_kek),
    .req_key_i       (drbg_rsp_data),
    .req_wrapped_i   (320'h0),
    .rsp_valid_o     (kw_rsp_valid),
    .rsp_ready_i     (kw_rsp_ready),
    .rsp_wrapped_o   (kw_rsp_wrapped),
    .rsp_key_o       (kw_rsp_key),
    .rsp_err_o       (kw_rsp_err),
    .aes_req_valid_o (m_req_valid[2]),
    .aes_req_ready_i (aes_req_ready && own_q[2]),
    .aes_req_dec_o   (m_req_dec[2]),
    .aes_req_key_o   (m2_req_key),
    .aes_req_data_o  (m2_req_data),
    .aes_rsp_valid_i (aes_rsp_valid && own_q[2]),
    .aes_rsp_ready_o (m_rsp_ready[2]),
    .aes_rsp_data_i  (aes_rsp_data)
  );

  // Wrap-only use of aes_kw and one-beat DRBG responses: these outputs carry nothing here.
  logic unused;
  assign unused = ^{kw_rsp_key, kw_rsp_err, drbg_rsp_last};

  // The shared AES core; the stage that owns it follows from the die state, and a stage only
  // ever starts after the previous one has taken its last AES response.
  // One-hot AND-OR multiplexer: one LUT level from the owner flops.
  always_comb begin
    aes_req_valid = |(own_q & m_req_valid);
    aes_req_dec   = |(own_q & m_req_dec);
    aes_rsp_ready = |(own_q & m_rsp_ready);
    aes_req_key   = ({256{own_q[0]}} & m0_req_key) | ({256{own_q[1]}} & m1_req_key) |
                    ({256{own_q[2]}} & m2_req_key);
    aes_req_data  = ({128{own_q[0]}} & m0_req_data) | ({128{own_q[1]}} & m1_req_data) |
                    ({128{own_q[2]}} & m2_req_data);
  end

  // The core behind its request register (aes256_rq): the register is selected by its own
  // valid and not by the engine's (a 771-fanout enable four LUT levels deep, 4.5 ns by the
  // timing model).
  aes256_rq u_aes (
    .clk_i, .rst_ni, .zeroize_i,
    .req_valid_i (aes_req_valid),
    .req_ready_o (aes_req_ready),
    .req_dec_i   (aes_req_dec),
    .req_key_i   (aes_req_key),
    .req_data_i  (aes_req_data),
    .rsp_valid_o (aes_rsp_valid),
    .rsp_ready_i (aes_rsp_ready),
    .rsp_data_o  (aes_rsp_data)
  );

  // ---------------------------------------------------------------------------------------
  // Sequencing.
  // ---------------------------------------------------------------------------------------
  logic die_err;
  assign die_err = (drbg_rsp_err != 2'd0);

  assign die_req_ready_o  = !zeroize_i && (fsm_q == StIdle) && kdf_req_ready;
  assign kdf_req_valid    = !zeroize_i && (fsm_q == StIdle) && die_req_valid_i;
  assign drbg_req_ready_o = !zeroize_i && (fsm_q == StIdle) && !die_req_valid_i && drbg_req_ready;

  always_comb begin
    drbg_req_valid = 1'b0;
    drbg_req_cmd   = 2'd3;   // generate-scalar
    if (!zeroize_i && fsm_q == StIdle && !die_req_valid_i && drbg_req_valid_i) begin
      drbg_req_valid = 1'b1;
      drbg_req_cmd   = drbg_req_reseed_i ? 2'd1 : 2'd0;
    end else if (!zeroize_i && fsm_q == StDrbgReq) begin
      drbg_req_valid = 1'b1;
    end
  end

  assign drbg_rsp_valid_o = (fsm_q == StMgmt) && drbg_rsp_valid;
  assign drbg_rsp_err_o   = drbg_rsp_valid_o ? drbg_rsp_err : 2'd0;

  assign kw_req_valid = !zeroize_i && (fsm_q == StKwReq);

  // The die's error is latched as the DRBG answers (done_err_q), so the response and the
  // readies of StDone start from flops: decoded from the DRBG's state, the error ran through
  // the card's hand-off and back into aes_kw's load in 6 LUT levels (5.2 ns by the model).
  logic [1:0] done_err_q;
  always_ff @(posedge clk_i) begin
    if (!rst_ni || zeroize_i) done_err_q <= 2'd0;
    else if (fsm_q != StDone) done_err_q <= (fsm_q == StDrbg) ? drbg_rsp_err : 2'd0;
  end

  assign die_rsp_valid_o = (fsm_q == StDone);
  assign die_err_o       = die_rsp_valid_o ? done_err_q : 2'd0;
  assign die_rejects_o   = die_rsp_valid_o ? drbg_rsp_rejects : 16'h0;
  assign die_wrapped_o   = (die_rsp_valid_o && done_err_q == 2'd0) ? kw_rsp_wrapped : 320'h0;
  assign die_scalar_o    = (die_rsp_valid_o && done_err_q == 2'd0) ? drbg_rsp_data : 256'h0;
  assign die_cycles_o    = die_rsp_valid_o ? cyc_q : 16'h0;

  always_comb begin
    kdf_rsp_ready  = 1'b0;
    drbg_rsp_ready = 1'b0;
    kw_rsp_ready   = 1'b0;
    unique case (fsm_q)
      StMgmt:  drbg_rsp_ready = drbg_rsp_ready_i;
      StKwReq: kdf_rsp_ready  = kw_req_ready;   // aes_kw has its own copy of the KEK
      StDone: begin
        kdf_rsp_ready  = die_rsp_ready_i && (done_err_q != 2'd0);
        drbg_rsp_ready = die_rsp_ready_i;
        kw_rsp_ready   = die_rsp_ready_i && (done_err_q == 2'd0);
      end
      default: ;
    endcase
  end

  always_comb begin
    fsm_d = fsm_q;
    cyc_d = cyc_q;
    if (fsm_q != StIdle && fsm_q != StDone && fsm_q != StMgmt) cyc_d = cyc_q + 16'd1;

    unique case (fsm_q)
      StIdle: begin
        if (kdf_req_valid && kdf_req_ready) begin
          fsm_d = StKdf;
          cyc_d = 16'd1;
        end else if (drbg_req_valid && drbg_req_ready) begin
          fsm_d = StMgmt;
        end
      end
      StMgmt:    if (drbg_rsp_valid && drbg_rsp_ready_i) fsm_d = StIdle;
      StKdf:     if (kdf_rsp_valid) fsm_d = StDrbgReq;
      StDrbgReq: if (drbg_req_ready) fsm_d = StDrbg;
      StDrbg:    if (drbg_rsp_valid) fsm_d = die_err ? StDone : StKwReq;
      StKwReq:   if (kw_req_ready) fsm_d = StKw;
      StKw:      if (kw_rsp_valid) fsm_d = StDone;
      StDone:    if (die_rsp_ready_i) fsm_d = StIdle;
      default:   fsm_d = StIdle;
    endcase

    if (zeroize_i) begin
      fsm_d = StIdle;
      cyc_d = 16'd0;
    end

    own_d = {fsm_d == StKw, fsm_d == StMgmt || fsm_d == StDrbg, fsm_d == StKdf};
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      fsm_q <= StIdle;
      cyc_q <= 16'd0;
      own_q <= 3'b000;
    end else begin
      fsm_q <= fsm_d;
      cyc_q <= cyc_d;
      own_q <= own_d;
    end
  end

endmodule

`default_nettype wire
