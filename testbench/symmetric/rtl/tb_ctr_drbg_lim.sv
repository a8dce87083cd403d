// Bench top: tb_ctr_drbg with SCALAR_LIMIT = 2^255, so that about half of all scalar
// candidates are rejected and the rejection loop of the same RTL is exercised on every run.
`default_nettype none

module tb_ctr_drbg_lim (
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

  tb_ctr_drbg #(.SCALAR_LIMIT({1'b1, 255'h0})) u_tb (.*);

endmodule

`default_nettype wire
