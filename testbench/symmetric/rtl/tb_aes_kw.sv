// Bench top: aes_kw with its own aes256 core on the AES master port.
`default_nettype none

module tb_aes_kw (
  input  logic         clk_i,
  input  logic         rst_ni,
  input  logic         zeroize_i,
  input  logic         req_valid_i,
  output logic         req_ready_o,
  input  logic         req_unwrap_i,
  input  logic [255:0] req_kek_i,
  input  logic [255:0] req_key_i,
  input  logic [319:0] req_wrapped_i,
  output logic         rsp_valid_o,
  input  logic         rsp_ready_i,
  output logic [319:0] rsp_wrapped_o,
  output logic [255:0] rsp_key_o,
  output logic         rsp_err_o
);

  logic         aes_req_valid, aes_req_ready, aes_req_dec;
  logic [255:0] aes_req_key;
  logic [127:0] aes_req_data, aes_rsp_data;
  logic         aes_rsp_valid, aes_rsp_ready;

  aes_kw u_kw (
    .clk_i, .rst_ni, .zeroize_i,
    .req_valid_i, .req_ready_o, .req_unwrap_i, .req_n_i (6'd4), .req_kek_i, .req_key_i, .req_wrapped_i,
    .rsp_valid_o, .rsp_ready_i, .rsp_wrapped_o, .rsp_key_o, .rsp_err_o,
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
