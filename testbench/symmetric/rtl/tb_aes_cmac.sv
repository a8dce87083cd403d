// Bench top: aes_cmac with its own aes256 core on the AES master port.
`default_nettype none

module tb_aes_cmac (
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
  output logic [127:0] tag_o
);

  logic         aes_req_valid, aes_req_ready, aes_req_dec;
  logic [255:0] aes_req_key;
  logic [127:0] aes_req_data, aes_rsp_data;
  logic         aes_rsp_valid, aes_rsp_ready;

  aes_cmac u_cmac (
    .clk_i, .rst_ni, .zeroize_i, .key_i,
    .init_valid_i, .init_ready_o, .keyed_o,
    .msg_valid_i, .msg_ready_o, .msg_data_i, .msg_last_i, .msg_bytes_i,
    .tag_valid_o, .tag_ready_i, .tag_o,
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
