#!/usr/bin/env python3
# Prints the S-box truth tables of aes_pkg.sv (SBOX_B0..7, INV_SBOX_B0..7) and checks that the
# ones in aes_pkg.sv are exactly these:  python3 rtl/symmetric/aes_sbox_gen.py
#
# FIPS-197 S-box from its definition: multiplicative inverse in GF(2^8) mod x^8+x^4+x^3+x+1,
# then the affine map b ^ rotl(b,1..4) ^ 0x63.
def mul(a, b):
    r = 0
    while b:
        if b & 1: r ^= a
        a = ((a << 1) ^ (0x11b if a & 0x80 else 0)) & 0x1ff
        b >>= 1
    return r & 0xff
inv = [0] * 256
for a in range(1, 256):
    for b in range(1, 256):
        if mul(a, b) == 1: inv[a] = b; break
rotl = lambda b, n: ((b << n) | (b >> (8 - n))) & 0xff
S = [inv[a] ^ rotl(inv[a],1) ^ rotl(inv[a],2) ^ rotl(inv[a],3) ^ rotl(inv[a],4) ^ 0x63 for a in range(256)]
IS = [0]*256
for a, s in enumerate(S): IS[s] = a
assert S[0] == 0x63 and S[0x53] == 0xed and IS[0x63] == 0
def tables(T, name):
    out = []
    for bit in range(8):
        v = sum(((T[x] >> bit) & 1) << x for x in range(256))
        h = "%064x" % v
        out.append("  localparam logic [255:0] %s_B%d =\n      256'h%s_%s_%s_%s;" % (name, bit, h[0:16], h[16:32], h[32:48], h[48:64]))
    return "\n".join(out)
# FIPS-197 Figure 7 spot checks (S-box rows 0 and 15) and the package's tables.
import os, re, sys
assert S[:8] == [0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5]
assert S[0xf8:] == [0x41, 0x99, 0x2d, 0x0f, 0xb0, 0x54, 0xbb, 0x16]
pkg = os.path.join(os.path.dirname(os.path.abspath(__file__)), "aes_pkg.sv")
src = re.sub(r"[\s_]", "", open(pkg).read())
want = re.sub(r"[\s_]", "", tables(S, "SBOX") + tables(IS, "INV_SBOX"))
if want not in src:
    sys.exit("aes_sbox_gen: the tables in %s differ from the generated ones" % pkg)
sys.stderr.write("aes_sbox_gen: the tables in aes_pkg.sv match\n")
print(tables(S, "SBOX"))
print(tables(IS, "INV_SBOX"))
