// aes_cmac: AES-256-CMAC (NIST SP 800-38B, RFC 4493 with a 256-bit key) over a stream of
// 16-byte blocks, using an AES core through the AES master port.
//
// Key:      key_i is used for every AES request; it must stay stable from init until the last
//           tag computed under it (the owner, e.g. wpid_kdf, keeps it in a register).
// Init:     init_valid_i/init_ready_o derives L = AES(K, 0^128) and stores K1 = dbl(L) (K2 =
//           dbl(K1) is computed when needed). keyed_o rises when done; subkeys are derived once
//           per key, and init must be repeated after the key changes or after zeroize.
// Message:  msg_valid_i/msg_ready_o (only while keyed_o) with msg_data_i (byte 0 in [127:120]),
//           msg_last_i and msg_bytes_i = number of valid bytes in the last block (1..16, or 0
//           for the empty message; must be 16 for other blocks). Bytes past msg_bytes_i are
//           ignored.
// Tag:      tag_valid_o/tag_ready_i with tag_o (passed straight from the AES response).
//
// A non-final block's AES response is chained into the next block's request in the same cycle
// when that block is waiting, so a message of m blocks costs m AES latencies (15 cycles each).
// zeroize_i clears the chaining value and the subkey in one cycle and abandons any operation.
`default_nettype none

module aes_cmac (
  input  logic         clk_i,
  input  logic         rst_ni,
  input  logic         zeroize_i,

  input  logic [255:0] key_i,

  input  logic         init_valid_i,
  output logic         init_ready_o,
  output logic         keyed_o,

  input  logic         msg_valid_i,
  output logic         msg_ready_o,
  input  logic [127:0] msg_data_i,
  input  logic         msg_last_i,
  input  logic [4:0]   msg_bytes_i,

  output logic         tag_valid_o,
  input  logic         tag_ready_i,
  output logic [127:0] tag_o,

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

  typedef enum logic [2:0] {
    StIdle     = 3'd0,   // waiting for init or a message block
    StInitReq  = 3'd1,   // issuing AES(K, 0)
    StInitWait = 3'd2,   // waiting for L
    StBlkWait  = 3'd3,   // waiting for the AES response of a non-final block
    StTagWait  = 3'd4    // waiting for the AES response of the final block (the tag)
  } state_e;

  state_e       fsm_q, fsm_d;
  logic [127:0] x_q, x_d;        // CBC-MAC chaining value
  logic [127:0] k1_q, k1_d;      // subkey K1
  logic         keyed_q, keyed_d;

  // Final-block preparation: M ^ K1 when complete, pad(M) ^ K2 otherwise.
  logic [127:0] k2, padded, blk_in;
  assign k2 = aes_pkg::gf128_dbl(k1_q);
  always_comb begin
    for (int i = 0; i < 16; i++) begin
      if (5'(i) < msg_bytes_i)       padded[127-8*i -: 8] = msg_data_i[127-8*i -: 8];
      else if (5'(i) == msg_bytes_i) padded[127-8*i -: 8] = 8'h80;
      else                           padded[127-8*i -: 8] = 8'h00;
    end
  end
  assign blk_in = !msg_last_i            ? msg_data_i
                : (msg_bytes_i == 5'd16) ? msg_data_i ^ k1_q
                :                          padded ^ k2;

  // A block can be sent in Idle (from x_q) or chained onto a non-final block's response.
  logic chain, send, blk_fire;
  assign chain    = (fsm_q == StBlkWait) && aes_rsp_valid_i;
  assign send     = !zeroize_i && keyed_q && (((fsm_q == StIdle) && !init_valid_i) || chain);
  assign blk_fire = send && msg_valid_i && aes_req_ready_i;

  assign init_ready_o = !zeroize_i && (fsm_q == StIdle);
  assign keyed_o      = keyed_q;
  assign msg_ready_o  = send && aes_req_ready_i;

  assign aes_req_dec_o = aes_pkg::OP_ENC;
  assign aes_req_key_o = key_i;
  always_comb begin
    aes_req_valid_o = 1'b0;
    aes_req_data_o  = 128'h0;
    if (!zeroize_i && fsm_q == StInitReq) begin
      aes_req_valid_o = 1'b1;
    end else if (send && msg_valid_i) begin
      aes_req_valid_o = 1'b1;
      aes_req_data_o  = (chain ? aes_rsp_data_i : x_q) ^ blk_in;
    end
  end

  // The tag goes straight from the AES response to the tag port.
  assign tag_valid_o     = !zeroize_i && (fsm_q == StTagWait) && aes_rsp_valid_i;
  assign tag_o           = tag_valid_o ? aes_rsp_data_i : 128'h0;
  assign aes_rsp_ready_o = !zeroize_i &&
                           ((fsm_q == StInitWait) || (fsm_q == StBlkWait) ||
                            ((fsm_q == StTagWait) && tag_ready_i));

  always_comb begin
    fsm_d   = fsm_q;
    x_d     = x_q;
    k1_d    = k1_q;
    keyed_d = keyed_q;

    unique case (fsm_q)
      StIdle: begin
        if (init_valid_i) begin
          fsm_d   = StInitReq;
          keyed_d = 1'b0;
          k1_d    = 128'h0;
        end else if (blk_fire) begin
          fsm_d = msg_last_i ? StTagWait : StBlkWait;
        end
      end
      StInitReq:  if (aes_req_ready_i) fsm_d = StInitWait;
      StInitWait: begin
        if (aes_rsp_valid_i) begin
          fsm_d   = StIdle;
          k1_d    = aes_pkg::gf128_dbl(aes_rsp_data_i);
          keyed_d = 1'b1;
        end
      end
      StBlkWait: begin
        if (aes_rsp_valid_i) begin
          if (blk_fire) begin
            fsm_d = msg_last_i ? StTagWait : StBlkWait;
            x_d   = 128'h0;   // the chaining value lives in the AES core until the tag
          end else begin
            fsm_d = StIdle;
            x_d   = aes_rsp_data_i;
          end
        end
      end
      StTagWait: begin
        if (aes_rsp_valid_i && tag_ready_i) begin
          fsm_d = StIdle;
          x_d   = 128'h0;
        end
      end
      default: fsm_d = StIdle;
    endcase

    if (zeroize_i) begin
      fsm_d   = StIdle;
      x_d     = 128'h0;
      k1_d    = 128'h0;
      keyed_d = 1'b0;
    end
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      fsm_q   <= StIdle;
      x_q     <= 128'h0;
      k1_q    <= 128'h0;
      keyed_q <= 1'b0;
    end else begin
      fsm_q   <= fsm_d;
      x_q     <= x_d;
      k1_q    <= k1_d;
      keyed_q <= keyed_d;
    end
  end

endmodule

`default_nettype wire
