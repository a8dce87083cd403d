// Bench top: ctr_drbg with its own aes256 core on the AES master port. SCALAR_LIMIT is passed
// through (tb_ctr_drbg_lim instantiates this top with a limit at which rejection is frequent).
`default_nettype none

module tb_ctr_drbg #(
  parameter logic [255:0] SCALAR_LIMIT = p256_pkg::N
) (
  input  logic         clk_i,
  input  logic         rst_ni,
  input  logic         zeroize_i,
  input  logic [47:0]  reseed_interval_i,
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
  output logic [15:0]  rsp_rejects_o
);

  logic         aes_req_valid, aes_req_ready, aes_req_dec;
  logic [255:0] aes_req_key;
  logic [127:0] aes_req_data, aes_rsp_data;
  logic         aes_rsp_valid, aes_rsp_ready;

  ctr_drbg #(.SCALAR_LIMIT(SCALAR_LIMIT)) u_drbg (
    .clk_i, .rst_ni, .zeroize_i, .reseed_interval_i,
    .req_valid_i, .req_ready_o, .req_cmd_i, .req_entropy_i, .req_pers_i, .req_beats_i,
    .rsp_valid_o, .rsp_ready_i, .rsp_data_o, .rsp_last_o, .rsp_err_o, .rsp_rejects_o,
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
