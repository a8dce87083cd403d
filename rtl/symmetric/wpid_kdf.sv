// wpid_kdf: the WPID-1 KEK derivation, SP 800-108 KDF in counter mode with AES-256-CMAC:
//   KEK = K(1) || K(2),
//   K(i) = AES-256-CMAC(KIK, [i]32 || "WPID-1 KEK" || 0x00 || UID || [256]32)
// (counter and L big-endian; 4 + 10 + 1 + 16 + 4 = 35 bytes = 3 CMAC blocks, the last one
// 3 bytes long, padded and masked with K2).
//
// Request:  req_valid_i/req_ready_o with req_uid_i (16 bytes), req_new_kik_i and req_kik_i.
//           The KIK is sampled and the CMAC subkeys derived (one extra AES block) only when
//           req_new_kik_i is set, or for the first request after reset or zeroize; otherwise the
//           KIK held from an earlier request is used and req_kik_i is ignored.
// Response: rsp_valid_o/rsp_ready_i with rsp_kek_o (32 bytes, K(1) in [255:128]).
// Cycles (see docs/rtl.md): 6 CMAC blocks, plus the subkey block for a new KIK.
//
// zeroize_i clears the KIK, the KEK, the CMAC state and subkey in one cycle. kik_clear_i does
// the same for a KIK that is no longer valid (the card's failed LOAD_KIK); it must only be
// raised while the block is idle (req_ready_o high, no response pending). kik_held_o is 1 while
// a KIK is held (public: bench visibility of the clear, never the key).
`default_nettype none

module wpid_kdf (
  input  logic         clk_i,
  input  logic         rst_ni,
  input  logic         zeroize_i,
  input  logic         kik_clear_i,
  output logic         kik_held_o,

  input  logic         req_valid_i,
  output logic         req_ready_o,
  input  logic         req_new_kik_i,
  input  logic [255:0] req_kik_i,
  input  logic [127:0] req_uid_i,

  output logic         rsp_valid_o,
  input  logic         rsp_ready_i,
  output logic [255:0] rsp_kek_o,

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

  // "WPID-1 KEK" in ASCII.
  localparam logic [79:0] Label = 80'h5750_4944_2d31_204b_454b;

  typedef enum logic [2:0] {
    StIdle    = 3'd0,
    StInit    = 3'd1,   // CMAC subkey derivation requested
    StInitRun = 3'd2,   // waiting for keyed
    StMsg     = 3'd3,   // feeding the three blocks of K(i)'s message
    StTag     = 3'd4,   // waiting for K(i)
    StDone    = 3'd5
  } state_e;

  state_e       fsm_q, fsm_d;
  logic [255:0] kik_q, kik_d;
  logic         have_kik_q, have_kik_d;
  logic [127:0] uid_q, uid_d;
  logic         ctr_q, ctr_d;       // 0: K(1), 1: K(2)
  logic [1:0]   blk_q, blk_d;       // block of the message being fed
  logic [255:0] kek_q, kek_d;

  // CMAC instance.
  logic         cm_init_valid, cm_init_ready, cm_keyed;
  logic         cm_msg_valid, cm_msg_ready, cm_msg_last;
  logic [127:0] cm_msg_data;
  logic [4:0]   cm_msg_bytes;
  logic         cm_tag_valid, cm_tag_ready;
  logic [127:0] cm_tag;

  logic wipe;
  assign wipe       = zeroize_i || kik_clear_i;
  assign kik_held_o = |kik_q;

  aes_cmac u_cmac (
    .clk_i, .rst_ni,
    .zeroize_i       (wipe),
    .key_i           (kik_q),
    .init_valid_i    (cm_init_valid),
    .init_ready_o    (cm_init_ready),
    .keyed_o         (cm_keyed),
    .msg_valid_i     (cm_msg_valid),
    .msg_ready_o     (cm_msg_ready),
    .msg_data_i      (cm_msg_data),
    .msg_last_i      (cm_msg_last),
    .msg_bytes_i     (cm_msg_bytes),
    .tag_valid_o     (cm_tag_valid),
    .tag_ready_i     (cm_tag_ready),
    .tag_o           (cm_tag),
    .aes_req_valid_o,
    .aes_req_ready_i,
    .aes_req_dec_o,
    .aes_req_key_o,
    .aes_req_data_o,
    .aes_rsp_valid_i,
    .aes_rsp_ready_o,
    .aes_rsp_data_i
  );

  // Message blocks of K(ctr+1): [i]32 || Label || 0x00 || UID || [256]32.
  always_comb begin
    unique case (blk_q)
      2'd0:    cm_msg_data = {30'h0, ctr_q, !ctr_q, Label, 8'h00, uid_q[127:120]};
      2'd1:    cm_msg_data = {uid_q[119:0], 8'h00};
      default: cm_msg_data = {24'h000100, 104'h0};
    endcase
  end
  assign cm_msg_last  = (blk_q == 2'd2);
  assign cm_msg_bytes = cm_msg_last ? 5'd3 : 5'd16;
  assign cm_msg_valid = (fsm_q == StMsg);
  assign cm_init_valid = (fsm_q == StInit);
  assign cm_tag_ready = (fsm_q == StTag);

  assign req_ready_o = !zeroize_i && (fsm_q == StIdle);
  assign rsp_valid_o = (fsm_q == StDone);
  assign rsp_kek_o   = rsp_valid_o ? kek_q : 256'h0;

  always_comb begin
    fsm_d      = fsm_q;
    kik_d      = kik_q;
    have_kik_d = have_kik_q;
    uid_d      = uid_q;
    ctr_d      = ctr_q;
    blk_d      = blk_q;
    kek_d      = kek_q;

    unique case (fsm_q)
      StIdle: begin
        if (req_valid_i && req_ready_o) begin
          uid_d = req_uid_i;
          ctr_d = 1'b0;
          blk_d = 2'd0;
          if (req_new_kik_i || !have_kik_q) begin
            kik_d      = req_kik_i;
            have_kik_d = 1'b1;
            fsm_d      = StInit;
          end else begin
            fsm_d = StMsg;
          end
        end
      end
      StInit:    if (cm_init_ready) fsm_d = StInitRun;
      StInitRun: if (cm_keyed) fsm_d = StMsg;
      StMsg: begin
        if (cm_msg_ready) begin
          blk_d = blk_q + 2'd1;
          if (cm_msg_last) fsm_d = StTag;
        end
      end
      StTag: begin
        if (cm_tag_valid) begin
          if (!ctr_q) begin
            kek_d[255:128] = cm_tag;
            ctr_d          = 1'b1;
            blk_d          = 2'd0;
            fsm_d          = StMsg;
          end else begin
            kek_d[127:0] = cm_tag;
            fsm_d        = StDone;
          end
        end
      end
      StDone: begin
        if (rsp_ready_i) begin
          fsm_d = StIdle;
          kek_d = 256'h0;
        end
      end
      default: fsm_d = StIdle;
    endcase

    if (wipe) begin
      fsm_d      = StIdle;
      kik_d      = 256'h0;
      have_kik_d = 1'b0;
      uid_d      = 128'h0;
      ctr_d      = 1'b0;
      blk_d      = 2'd0;
      kek_d      = 256'h0;
    end
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      fsm_q      <= StIdle;
      kik_q      <= 256'h0;
      have_kik_q <= 1'b0;
      uid_q      <= 128'h0;
      ctr_q      <= 1'b0;
      blk_q      <= 2'd0;
      kek_q      <= 256'h0;
    end else begin
      fsm_q      <= fsm_d;
      kik_q      <= kik_d;
      have_kik_q <= have_kik_d;
      uid_q      <= uid_d;
      ctr_q      <= ctr_d;
      blk_q      <= blk_d;
      kek_q      <= kek_d;
    end
  end

endmodule

`default_nettype wire
