// scalar_check: the WPID-1 key-rejection test, ok_o = (1 <= d_i < LIMIT), d_i read as a
// big-endian 256-bit integer (byte 0 in [255:248]). LIMIT defaults to the P-256 group order n;
// ctr_drbg passes its SCALAR_LIMIT through so that a bench can make rejection frequent.
// Purely combinational: one 256-bit magnitude comparator and a zero detector.
`default_nettype none

module scalar_check #(
  parameter logic [255:0] LIMIT = p256_pkg::N
) (
  input  logic [255:0] d_i,
  output logic         ok_o
);

  assign ok_o = (d_i != 256'h0) && (d_i < LIMIT);

endmodule

`default_nettype wire
