// aes_pkg: shared constants and pure functions for the AES-256 core and its users.
//
// Byte order (used by every symmetric block): a multi-byte value travels on a bus with its
// byte 0 in the most significant bits, e.g. a 128-bit block has byte 0 in [127:120] and a
// 256-bit key has byte 0 in [255:248]. A hex literal therefore reads like the FIPS-197 and
// RFC test vectors. The AES state is column-major: byte i is row i%4, column i/4.
//
// Written for Verilator 5 and Yosys 0.23: the package is referenced as aes_pkg::name (Yosys
// 0.23 cannot parse `import`), and functions assign their name instead of using `return`.
`default_nettype none

package aes_pkg;

  // Not every user of the package needs every constant.
  /* verilator lint_off UNUSEDPARAM */

  // Request opcodes of the AES core.
  localparam logic OP_ENC = 1'b0;
  localparam logic OP_DEC = 1'b1;

  // RFC 3394 default initial value.
  localparam logic [63:0] KW_IV = 64'hA6A6A6A6A6A6A6A6;

  /* verilator lint_on UNUSEDPARAM */

  // FIPS-197 S-box and its inverse as an explicit LUT structure, one 256-bit truth table per
  // output bit (bit x of SBOX_Bk is bit k of S(x)). Each output bit is four 64-entry tables
  // indexed by x[5:0], i.e. four LUT6, selected by x[7:6] (MUXF7/MUXF8): the same structure in
  // simulation and synthesis, with no ROM for Yosys to infer and retime registers into.
  // Generated from the definition (GF(2^8) inverse, then the affine map) and checked against
  // FIPS-197's table by rtl/symmetric/aes_sbox_gen.py; the benches check every result against
  // OpenSSL.
  localparam logic [255:0] SBOX_B0 =
      256'h4f1ead396f247a04_10bdb210c006eab5_68ab4bfa8acb7a13_b14ede67096c6eed;
  localparam logic [255:0] SBOX_B1 =
      256'hc870974094ead8a9_6a450b2ef33486b4_e61a4c5e97816f7a_7bae007d4c53fc7d;
  localparam logic [255:0] SBOX_B2 =
      256'hac39b6c0d6ce2efc_577d64e03b0c3ffb_23a869a2a428c424_a16387fb3b48b4c6;
  localparam logic [255:0] SBOX_B3 =
      256'h4e9ddb76c892fb1b_e9da849cf6ac6c1b_2568ea2effa8527d_109020a2193d586a;
  localparam logic [255:0] SBOX_B4 =
      256'hf210a3aece472e53_2624b286bc48ecb4_f7f17a494ce30f58_c2b0f97752b8b11e;
  localparam logic [255:0] SBOX_B5 =
      256'h54b248130b4f256f_7d8dcc4706319e08_6bc2aa4e0d787aa4_f8045f7b6d98dd7f;
  localparam logic [255:0] SBOX_B6 =
      256'h21e0b83325591782_3f6bcb91b30db559_e4851b3bf3ab2560_980a3cc2c2fdb4ff;
  localparam logic [255:0] SBOX_B7 =
      256'h52379de7b844e3e1_4cb3770196ca0329_e7bac28f866aac82_5caa2ec7bf977090;
  localparam logic [255:0] INV_SBOX_B0 =
      256'hbb23f64cbbbe99eb_224883fb66f0853e_bf6869447a703000_fa244cc2c4f6f54a;
  localparam logic [255:0] INV_SBOX_B1 =
      256'h08fb36349c449269_4b3edf05c519cfb1_eafca1c41d80c095_278af97aa6faed25;
  localparam logic [255:0] INV_SBOX_B2 =
      256'hd4ed0858cba4d063_a8174b51f4f76d70_066ecb30ff317f9c_914a87953be14968;
  localparam logic [255:0] INV_SBOX_B3 =
      256'hc21a4f3ceddcc817_7b4df9b4da220cd1_c67e14b661f51c62_3a33ab82e2758986;
  localparam logic [255:0] INV_SBOX_B4 =
      256'h94796cc45c368f8b_db67e21e7645b347_242535634bdad5c7_43a0248f2155e9b9;
  localparam logic [255:0] INV_SBOX_B5 =
      256'habba8ef7872d518c_98c5572aaf7ef2a1_862233241073622f_95de21da4167a5f4;
  localparam logic [255:0] INV_SBOX_B6 =
      256'h9b68a34aa647c842_fe7b054beb14def8_811147420dbf3d2f_5b28f323fc43e20d;
  localparam logic [255:0] INV_SBOX_B7 =
      256'h015057d3fa286156_af3152c24bb37fc2_47193377f0f0cb56_64a46534f2dafd48;

  // One output bit: four LUT6 (64-entry tables) and a 4:1 select on x[7:6].
  function automatic logic lut8(input logic [255:0] t, input logic [7:0] x);
    logic l0, l1, l2, l3;
    l0   = t[{2'd0, x[5:0]}];
    l1   = t[{2'd1, x[5:0]}];
    l2   = t[{2'd2, x[5:0]}];
    l3   = t[{2'd3, x[5:0]}];
    lut8 = x[7] ? (x[6] ? l3 : l2) : (x[6] ? l1 : l0);
  endfunction

  function automatic logic [7:0] sbox(input logic [7:0] x);
    sbox = {lut8(SBOX_B7, x), lut8(SBOX_B6, x), lut8(SBOX_B5, x), lut8(SBOX_B4, x),
            lut8(SBOX_B3, x), lut8(SBOX_B2, x), lut8(SBOX_B1, x), lut8(SBOX_B0, x)};
  endfunction

  function automatic logic [7:0] inv_sbox(input logic [7:0] x);
    inv_sbox = {lut8(INV_SBOX_B7, x), lut8(INV_SBOX_B6, x), lut8(INV_SBOX_B5, x),
                lut8(INV_SBOX_B4, x), lut8(INV_SBOX_B3, x), lut8(INV_SBOX_B2, x),
                lut8(INV_SBOX_B1, x), lut8(INV_SBOX_B0, x)};
  endfunction

  // Multiplication by x in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1.
  function automatic logic [7:0] xtime(input logic [7:0] b);
    xtime = {b[6:0], 1'b0} ^ (b[7] ? 8'h1b : 8'h00);
  endfunction

  // SubBytes on all 16 bytes.
  function automatic logic [127:0] sub_bytes(input logic [127:0] s);
    logic [127:0] r;
    for (int i = 0; i < 16; i++) r[127-8*i -: 8] = sbox(s[127-8*i -: 8]);
    sub_bytes = r;
  endfunction

  function automatic logic [127:0] inv_sub_bytes(input logic [127:0] s);
    logic [127:0] r;
    for (int i = 0; i < 16; i++) r[127-8*i -: 8] = inv_sbox(s[127-8*i -: 8]);
    inv_sub_bytes = r;
  endfunction

  // ShiftRows: row r rotates left by r columns, out[r,c] = in[r,(c+r)%4].
  function automatic logic [127:0] shift_rows(input logic [127:0] s);
    logic [127:0] r;
    for (int c = 0; c < 4; c++) begin
      for (int w = 0; w < 4; w++) begin
        r[127-8*(w+4*c) -: 8] = s[127-8*(w+4*((c+w)%4)) -: 8];
      end
    end
    shift_rows = r;
  endfunction

  // InvShiftRows: out[r,c] = in[r,(c-r)%4].
  function automatic logic [127:0] inv_shift_rows(input logic [127:0] s);
    logic [127:0] r;
    for (int c = 0; c < 4; c++) begin
      for (int w = 0; w < 4; w++) begin
        r[127-8*(w+4*c) -: 8] = s[127-8*(w+4*((c+4-w)%4)) -: 8];
      end
    end
    inv_shift_rows = r;
  endfunction

  // MixColumns on one column {a0,a1,a2,a3} (a0 in [31:24]).
  function automatic logic [31:0] mix_column(input logic [31:0] col);
    logic [7:0] a0, a1, a2, a3;
    a0 = col[31:24];
    a1 = col[23:16];
    a2 = col[15:8];
    a3 = col[7:0];
    mix_column = {xtime(a0) ^ xtime(a1) ^ a1 ^ a2 ^ a3,
                  a0 ^ xtime(a1) ^ xtime(a2) ^ a2 ^ a3,
                  a0 ^ a1 ^ xtime(a2) ^ xtime(a3) ^ a3,
                  xtime(a0) ^ a0 ^ a1 ^ a2 ^ xtime(a3)};
  endfunction

  // InvMixColumns via the factorisation InvMix = Mix * {05,00,04,00}: a cheap pre-multiply
  // followed by the forward MixColumns, so both directions share the xtime network shape.
  function automatic logic [31:0] inv_mix_column(input logic [31:0] col);
    logic [7:0] a0, a1, a2, a3, u, v;
    a0 = col[31:24];
    a1 = col[23:16];
    a2 = col[15:8];
    a3 = col[7:0];
    u = xtime(xtime(a0 ^ a2));
    v = xtime(xtime(a1 ^ a3));
    inv_mix_column = mix_column({a0 ^ u, a1 ^ v, a2 ^ u, a3 ^ v});
  endfunction

  function automatic logic [127:0] mix_columns(input logic [127:0] s);
    logic [127:0] r;
    for (int c = 0; c < 4; c++) r[127-32*c -: 32] = mix_column(s[127-32*c -: 32]);
    mix_columns = r;
  endfunction

  function automatic logic [127:0] inv_mix_columns(input logic [127:0] s);
    logic [127:0] r;
    for (int c = 0; c < 4; c++) r[127-32*c -: 32] = inv_mix_column(s[127-32*c -: 32]);
    inv_mix_columns = r;
  endfunction

  // SubWord on a key-schedule word.
  function automatic logic [31:0] sub_word(input logic [31:0] w);
    sub_word = {sbox(w[31:24]), sbox(w[23:16]), sbox(w[15:8]), sbox(w[7:0])};
  endfunction

  // Rcon[i] for the AES-256 key schedule (i = 1..7 are used).
  function automatic logic [7:0] rcon(input logic [3:0] i);
    case (i)
      4'd1: rcon = 8'h01;
      4'd2: rcon = 8'h02;
      4'd3: rcon = 8'h04;
      4'd4: rcon = 8'h08;
      4'd5: rcon = 8'h10;
      4'd6: rcon = 8'h20;
      4'd7: rcon = 8'h40;
      default: rcon = 8'h00;
    endcase
  endfunction

  // CMAC subkey doubling: shift left by one bit, XOR 0x87 when the top bit falls out.
  function automatic logic [127:0] gf128_dbl(input logic [127:0] x);
    gf128_dbl = {x[126:0], 1'b0} ^ (x[127] ? 128'h87 : 128'h0);
  endfunction

endpackage

`default_nettype wire
