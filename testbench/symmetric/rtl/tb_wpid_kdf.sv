// Bench top: wpid_kdf with its own aes256 core on the AES master port.
`default_nettype none

module tb_wpid_kdf (
  input  logic         clk_i,
  input  logic         rst_ni,
  input  logic         zeroize_i,
  input  logic         req_valid_i,
  output logic         req_ready_o,
  input  logic         req_new_kik_i,
  input  logic [255:0] req_kik_i,
  input  logic [127:0] req_uid_i,
  output logic         rsp_valid_o,
  input  logic         rsp_ready_i,
  output logic [255:0] rsp_kek_o
);

  logic         aes_req_valid, aes_req_ready, aes_req_dec;
  logic [255:0] aes_req_key;
  logic [127:0] aes_req_data, aes_rsp_data;
  logic         aes_rsp_valid, aes_rsp_ready;

  logic unused_kik_held;

  wpid_kdf u_kdf (
    .clk_i, .rst_ni, .zeroize_i,
    .kik_clear_i (1'b0),
    .kik_held_o  (unused_kik_held),
    .req_valid_i, .req_ready_o, .req_new_kik_i, .req_kik_i, .req_uid_i,
    .rsp_valid_o, .rsp_ready_i, .rsp_kek_o,
    .aes_req_valid_o (aes_req_valid),
    .aes_req_ready_i (aes_req_ready),
    .aes_req_dec_o   (aes_req_dec),
    .aes_req_key_o   (aes_req_key),
    .aes_req_data_o  (aes_req_data),
    .aes_rsp_valid_i (aes_rsp_valid),
    .aes_rsp_ready_o (aes_rsp_ready),
    .aes_rsp_data_i  (aes_rsp_data)
  );

  aes256 u_aes (
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

endmodule

`default_nettype wire
