// p256_pkg: the NIST P-256 (secp256r1) constants, defined once for every block that needs them
// (the key generator, its field arithmetic, and the symmetric chain's scalar range check).
// Referenced as p256_pkg::NAME (Yosys 0.23 cannot parse `import`).
`default_nettype none

package p256_pkg;

  // Not every user of the package needs every constant.
  /* verilator lint_off UNUSEDPARAM */

  // Field prime p = 2^256 - 2^224 + 2^192 + 2^96 - 1.
  localparam logic [255:0] P =
      256'hffffffff00000001000000000000000000000000ffffffffffffffffffffffff;

  // Group order n (a WPID-1 scalar d must satisfy 1 <= d < n).
  localparam logic [255:0] N =
      256'hffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551;

  // Curve coefficient b (y^2 = x^3 - 3x + b).
  localparam logic [255:0] B =
      256'h5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b;

  /* verilator lint_on UNUSEDPARAM */

endpackage

`default_nettype wire
