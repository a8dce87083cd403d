// aes256 behind a request register: the interface of aes256 (req_*/rsp_*), with the request
// taken into flops before the core sees it. While empty the register follows the request bus
// (a multiplexer of several owners, zero when none owns the core), so its data flops are
// selected by its own valid and not by the owner's; it holds from the cycle the request is
// taken until the core has it. That cuts the path from an owner's state through its chaining
// logic and the owner multiplexer into the core's load multiplexers, at one cycle per AES
// operation. sym_die (three engines on one core) and the card's management core (the KIK
// unwrap and the self-test) use it. One request at a time is all their owners issue: each
// waits for the response before the next request.
//
// req_ready_o = the register is empty (and no zeroize). zeroize_i clears the register in the
// cycle it is raised, and the core as aes256 does.
`default_nettype none

module aes256_rq (
  input  wire logic         clk_i,
  input  wire logic         rst_ni,      // synchronous, active low
  input  wire logic         zeroize_i,
  input  wire logic         req_valid_i,
  output      logic         req_ready_o,
  input  wire logic         req_dec_i,
  input  wire logic [255:0] req_key_i,
  input  wire logic [127:0] req_data_i,
  output      logic         rsp_valid_o,
  input  wire logic         rsp_ready_i,
  output      logic [127:0] rsp_data_o
);
  logic         rq_valid_q, rq_dec_q, core_req_ready;
  logic [255:0] rq_key_q;
  logic [127:0] rq_data_q;

  assign req_ready_o = !zeroize_i && !rq_valid_q;

  always_ff @(posedge clk_i) begin
    if (!rst_ni || zeroize_i) begin
      rq_valid_q <= 1'b0;
      rq_dec_q   <= 1'b0;
      rq_key_q   <= 256'h0;
      rq_data_q  <= 128'h0;
    end else if (!rq_valid_q) begin
      rq_valid_q <= req_valid_i;
      rq_dec_q   <= req_dec_i;
      rq_key_q   <= req_key_i;
      rq_data_q  <= req_data_i;
    end else if (core_req_ready) begin
      rq_valid_q <= 1'b0;
    end
  end

  aes256 u_core (
    .clk_i, .rst_ni, .zeroize_i,
    .req_valid_i (rq_valid_q),
    .req_ready_o (core_req_ready),
    .req_dec_i   (rq_dec_q),
    .req_key_i   (rq_key_q),
    .req_data_i  (rq_data_q),
    .rsp_valid_o,
    .rsp_ready_i,
    .rsp_data_o
  );
endmodule

`default_nettype wire
