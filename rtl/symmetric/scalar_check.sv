// scalar_check: the WPID-1 key-rejection test, ok_o = (1 <= d_i < LIMIT), d_i read as a
// big-endian 256-bit integer (byte 0 in [255:248]). LIMIT defaults to the P-256 group order n;
// ctr_drbg passes its SCALAR_LIMIT through so that a bench can make rejection frequent.
//
// Pipelined for 250 MHz: a 256-bit magnitude compare is a 256-bit carry chain (~6.4 ns by the
// timing model). Stage 1 compares eight 32-bit chunks against the limit's chunks (lt, eq, and a
// nonzero flag per chunk: a 32-bit carry chain each); stage 2 combines the 8 x 3 flags
// (lexicographic from the most significant chunk). ok_o is valid 2 cycles after d_i settles
// (latency 2, one result per cycle); ctr_drbg reads it 45 or more cycles after d is complete.
// The flags are derived from the secret d, so zeroize_i clears them.
`default_nettype none

module scalar_check #(
  parameter logic [255:0] LIMIT = p256_pkg::N
) (
  input  logic         clk_i,
  input  logic         rst_ni,
  input  logic         zeroize_i,
  input  logic [255:0] d_i,
  output logic         ok_o
);

  logic [7:0] lt_q, lt_d, eq_q, eq_d, nz_q, nz_d;
  logic       ok_q, ok_d;

  always_comb begin
    for (int k = 0; k < 8; k++) begin
      lt_d[k] = d_i[32*k +: 32] < LIMIT[32*k +: 32];
      eq_d[k] = d_i[32*k +: 32] == LIMIT[32*k +: 32];
      nz_d[k] = d_i[32*k +: 32] != 32'h0;
    end
  end

  // d < LIMIT: the most significant chunk that differs decides.
  logic lt_all;
  always_comb begin
    lt_all = 1'b0;
    for (int k = 0; k < 8; k++) lt_all = lt_q[k] || (eq_q[k] && lt_all);
    ok_d = lt_all && (nz_q != 8'h0);
  end

  assign ok_o = ok_q;

  always_ff @(posedge clk_i) begin
    if (!rst_ni || zeroize_i) begin
      lt_q <= 8'h0;
      eq_q <= 8'h0;
      nz_q <= 8'h0;
      ok_q <= 1'b0;
    end else begin
      lt_q <= lt_d;
      eq_q <= eq_d;
      nz_q <= nz_d;
      ok_q <= ok_d;
    end
  end

endmodule

`default_nettype wire
