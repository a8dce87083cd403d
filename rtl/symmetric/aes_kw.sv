// aes_kw: RFC 3394 AES key wrap and unwrap of n = 2..MaxN semiblocks (8-byte units) under an
// AES-256 KEK with the default IV A6A6A6A6A6A6A6A6. 6 x n AES operations per request, issued
// through the AES master port (connect it to an aes256 instance, possibly shared). The per-die
// chain uses MaxN = 4 with n = 4 (one 256-bit key: 24 operations); the card's management
// instance uses MaxN = 31 for the self-test (wrap of 16..248 bytes, unwrap of 24..256) and
// n = 4 for the KIK.
//
// Request:  req_valid_i/req_ready_o; req_unwrap_i selects unwrap; req_n_i = n (2..MaxN, the
//           number of key-data semiblocks, not counting A); req_kek_i; req_key_i (wrap input,
//           8n bytes, left-aligned: bytes past 8n are ignored); req_wrapped_i (unwrap input,
//           8(n + 1) bytes, left-aligned). All are sampled on the accepting edge (the KEK is
//           kept in kek_q for the 6n operations).
// Response: rsp_valid_o/rsp_ready_i with
//           rsp_wrapped_o  wrap result, 8(n + 1) bytes left-aligned, zero after (zero for unwrap),
//           rsp_key_o      unwrap result, 8n bytes left-aligned, zero after (zero for wrap and
//                          on an integrity failure),
//           rsp_err_o      unwrap integrity failure (the recovered A is not the default IV).
// Byte 0 of every field is in its most significant bits.
//
// Unwrap always runs all 6n operations before checking A, so its duration does not depend on
// whether the check passes. The next AES request is issued in the same cycle as the previous
// response is taken, so each operation costs one AES latency (15 cycles; a decryption 28
// cycles, as the AES core walks the key schedule forwards first). The cycle count depends on n
// only; with n = 4 it is the one of the fixed 4-semiblock version this module generalizes.
//
// zeroize_i clears the KEK, A, R and the output in one cycle and abandons any request in flight.
`default_nettype none

module aes_kw #(
  parameter int unsigned MaxN = 4   // largest n (2..63)
) (
  input  logic         clk_i,
  input  logic         rst_ni,
  input  logic         zeroize_i,

  input  logic         req_valid_i,
  output logic         req_ready_o,
  input  logic         req_unwrap_i,
  input  logic [5:0]   req_n_i,
  input  logic [255:0] req_kek_i,
  input  logic [64*MaxN-1:0] req_key_i,
  input  logic [64*MaxN+63:0] req_wrapped_i,

  output logic         rsp_valid_o,
  input  logic         rsp_ready_i,
  output logic [64*MaxN+63:0] rsp_wrapped_o,
  output logic [64*MaxN-1:0] rsp_key_o,
  output logic         rsp_err_o,

  // AES master port.
  output logic         aes_req_valid_o,
  input  logic         aes_req_ready_i,
  output logic         aes_req_dec_o,
  output logic [255:0] aes_req_key_o,
  output logic [127:0] aes_req_data_o,
  input  logic         aes_rsp_valid_i,
  output logic         aes_rsp_ready_o,
  input  logic [127:0] aes_rsp_data_i
);

  typedef enum logic [1:0] {
    StIdle = 2'd0,
    StRun  = 2'd1,
    StDone = 2'd2
  } state_e;

  // MaxN as a signed int for the loops below (Yosys 0.23 cannot parse a cast to int).
  localparam int MaxNInt = MaxN;
  localparam int unsigned RW = 64 * MaxN;

  state_e         fsm_q, fsm_d;
  logic           unwrap_q, unwrap_d;
  logic           issue_q, issue_d;     // the request for step t_q has not been issued yet
  logic [7:0]     t_q, t_d;             // RFC 3394 step counter t = n*j + i, 1..6n
  logic [5:0]     n_q, n_d;             // semiblocks of key data
  logic [5:0]     idx_q, idx_d;         // R index (0-based) of step t_q: i - 1
  logic [255:0]   kek_q, kek_d;
  logic [63:0]    a_q, a_d;
  logic [RW-1:0]  r_q, r_d;             // R[1] in the top 64 bits ... R[MaxN] in [63:0]
  logic           err_q, err_d;

  // ---------------------------------------------------------------------------------------
  // Step arithmetic.
  // ---------------------------------------------------------------------------------------
  logic [5:0]     idx_next;             // R index of the next step
  logic [7:0]     t_next, t_max;
  logic           last;
  logic [63:0]    a_new;                // A after this step's response
  logic [RW-1:0]  r_new;                // R after this step's response
  logic [63:0]    r_cur_next;           // R[idx_next], the other half of the next request

  assign t_max    = 8'(n_q) * 8'd6;
  assign t_next   = unwrap_q ? t_q - 8'd1 : t_q + 8'd1;
  // i runs 1..n upwards for a wrap and n..1 downwards for an unwrap, wrapping around
  assign idx_next = unwrap_q ? ((idx_q == 6'd0) ? n_q - 6'd1 : idx_q - 6'd1)
                             : ((idx_q == n_q - 6'd1) ? 6'd0 : idx_q + 6'd1);
  assign last     = unwrap_q ? (t_q == 8'd1) : (t_q == t_max);

  // Wrap: A = MSB(B) ^ t. Unwrap: A = MSB(B) (t was applied before decrypting).
  assign a_new = aes_rsp_data_i[127:64] ^ (unwrap_q ? 64'h0 : {56'h0, t_q});

  // R[i] read and written through one-hot selects: Yosys turns variable part-selects into
  // barrel shifters several times larger.
  function automatic logic [63:0] r_get(input logic [RW-1:0] r, input logic [5:0] i);
    r_get = 64'h0;
    for (int k = 0; k < MaxNInt; k++)
      if (i == 6'(k)) r_get = r[RW-1-64*k -: 64];
  endfunction

  always_comb begin
    r_new = r_q;
    for (int k = 0; k < MaxNInt; k++)
      if (idx_q == 6'(k)) r_new[RW-1-64*k -: 64] = aes_rsp_data_i[63:0];
  end

  // idx_next != idx_q always (n >= 2), so the next request's R half is still in r_q.
  assign r_cur_next = r_get(r_q, idx_next);

  // R as loaded: the n semiblocks kept, the rest zero (so no caller data past 8n bytes
  // reaches the output).
  function automatic logic [RW-1:0] r_load(input logic [RW-1:0] r, input logic [5:0] n);
    for (int k = 0; k < MaxNInt; k++)
      r_load[RW-1-64*k -: 64] = (6'(k) < n) ? r[RW-1-64*k -: 64] : 64'h0;
  endfunction

  // Request for a step whose A and R[idx] are given.
  function automatic logic [127:0] step_in(input logic unwrap, input logic [63:0] a,
                                           input logic [7:0] t, input logic [63:0] r);
    step_in = {a ^ (unwrap ? {56'h0, t} : 64'h0), r};
  endfunction

  // ---------------------------------------------------------------------------------------
  // Handshakes.
  // ---------------------------------------------------------------------------------------
  logic accept, take_rsp, chain;

  assign req_ready_o     = !zeroize_i && (fsm_q == StIdle);
  assign accept          = req_valid_i && req_ready_o;
  assign aes_req_dec_o   = unwrap_q;
  assign aes_req_key_o   = kek_q;
  assign aes_rsp_ready_o = !zeroize_i && (fsm_q == StRun) && !issue_q;
  assign take_rsp        = aes_rsp_valid_i && aes_rsp_ready_o;
  // Chain the next request onto the response of the previous one.
  assign chain           = take_rsp && !last;

  always_comb begin
    aes_req_valid_o = 1'b0;
    aes_req_data_o  = 128'h0;
    if (!zeroize_i && fsm_q == StRun) begin
      if (issue_q) begin
        aes_req_valid_o = 1'b1;
        aes_req_data_o  = step_in(unwrap_q, a_q, t_q, r_get(r_q, idx_q));
      end else if (chain) begin
        aes_req_valid_o = 1'b1;
        aes_req_data_o  = step_in(unwrap_q, a_new, t_next, r_cur_next);
      end
    end
  end

  assign rsp_valid_o   = (fsm_q == StDone);
  assign rsp_err_o     = (fsm_q == StDone) && err_q;
  assign rsp_wrapped_o = (fsm_q == StDone && !unwrap_q) ? {a_q, r_q} : '0;
  assign rsp_key_o     = (fsm_q == StDone && unwrap_q) ? r_q : '0;

  always_comb begin
    fsm_d    = fsm_q;
    unwrap_d = unwrap_q;
    issue_d  = issue_q;
    t_d      = t_q;
    n_d      = n_q;
    idx_d    = idx_q;
    kek_d    = kek_q;
    a_d      = a_q;
    r_d      = r_q;
    err_d    = err_q;

    unique case (fsm_q)
      StIdle: begin
        if (accept) begin
          fsm_d    = StRun;
          unwrap_d = req_unwrap_i;
          issue_d  = 1'b1;
          kek_d    = req_kek_i;
          err_d    = 1'b0;
          n_d      = req_n_i;
          if (req_unwrap_i) begin
            t_d   = 8'(req_n_i) * 8'd6;
            idx_d = req_n_i - 6'd1;
            a_d   = req_wrapped_i[RW+63:RW];
            r_d   = r_load(req_wrapped_i[RW-1:0], req_n_i);
          end else begin
            t_d   = 8'd1;
            idx_d = 6'd0;
            a_d   = aes_pkg::KW_IV;
            r_d   = r_load(req_key_i, req_n_i);
          end
        end
      end
      StRun: begin
        if (issue_q && aes_req_ready_i) issue_d = 1'b0;
        if (take_rsp) begin
          a_d = a_new;
          r_d   = r_new;
          t_d   = t_next;
          idx_d = idx_next;
          if (last) begin
            fsm_d = StDone;
            kek_d = 256'h0;
            t_d   = 8'd0;
            idx_d = 6'd0;
            if (unwrap_q && a_new != aes_pkg::KW_IV) begin
              err_d = 1'b1;
              r_d   = '0;   // no key material leaves a failed unwrap
            end
          end else begin
            // Normally accepted in this same cycle; if the AES port is busy, retry.
            issue_d = !aes_req_ready_i;
          end
        end
      end
      StDone: begin
        if (rsp_ready_i) begin
          fsm_d = StIdle;
          a_d   = 64'h0;
          r_d   = '0;
          err_d = 1'b0;
        end
      end
      default: fsm_d = StIdle;
    endcase

    if (zeroize_i) begin
      fsm_d    = StIdle;
      unwrap_d = 1'b0;
      issue_d  = 1'b0;
      t_d      = 8'd0;
      n_d      = 6'd0;
      idx_d    = 6'd0;
      kek_d    = 256'h0;
      a_d      = 64'h0;
      r_d      = '0;
      err_d    = 1'b0;
    end
  end

  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      fsm_q    <= StIdle;
      unwrap_q <= 1'b0;
      issue_q  <= 1'b0;
      t_q      <= 8'd0;
      n_q      <= 6'd0;
      idx_q    <= 6'd0;
      kek_q    <= 256'h0;
      a_q      <= 64'h0;
      r_q      <= '0;
      err_q    <= 1'b0;
    end else begin
      fsm_q    <= fsm_d;
      unwrap_q <= unwrap_d;
      issue_q  <= issue_d;
      t_q      <= t_d;
      n_q      <= n_d;
      idx_q    <= idx_d;
      kek_q    <= kek_d;
      a_q      <= a_d;
      r_q      <= r_d;
      err_q    <= err_d;
    end
  end

endmodule

`default_nettype wire
