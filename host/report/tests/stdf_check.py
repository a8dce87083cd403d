#!/usr/bin/env python3
"""Cross-checks waferprov's STDF against its summary.json with a reader independent of both the
library and the C++ test reader: python3's struct module, no extra packages.
usage: stdf_check.py REPORT_SAMPLE_EXE WORK_DIR"""
import json
import os
import shutil
import struct
import subprocess
import sys

exe, work = sys.argv[1], sys.argv[2]
shutil.rmtree(work, ignore_errors=True)
subprocess.run([exe, work], check=True)
wdir = os.path.join(work, "LOTPY1", "11")
summary = json.load(open(os.path.join(wdir, "summary.json")))
data = open(os.path.join(wdir, "LOTPY1_11.stdf"), "rb").read()

def cn(b, i):
    n = b[i]
    return b[i + 1:i + 1 + n].decode("latin-1"), i + 1 + n

names = {(0, 10): "FAR", (1, 10): "MIR", (1, 20): "MRR", (1, 30): "PCR", (1, 40): "HBR",
         (1, 50): "SBR", (1, 80): "SDR", (2, 10): "WIR", (2, 20): "WRR", (2, 30): "WCR",
         (5, 10): "PIR", (5, 20): "PRR", (50, 30): "DTR"}
off, recs = 0, []
while off < len(data):
    ln, typ, sub = struct.unpack_from("<HBB", data, off)
    assert off + 4 + ln <= len(data), "REC_LEN past end at %d" % off
    assert (typ, sub) in names, "unknown record %d,%d" % (typ, sub)
    recs.append((names[(typ, sub)], data[off + 4:off + 4 + ln]))
    off += 4 + ln
assert off == len(data)
assert recs[0] == ("FAR", bytes([2, 4])), recs[0]
assert recs[-1][0] == "MRR"

soft, hard, good, prr, dtr = {}, {}, 0, 0, 0
sbr, hbr, wrr = {}, {}, None
for name, b in recs:
    if name == "PRR":
        head, site, flg, ntest, hb, sb, x, y, tt = struct.unpack_from("<BBBHHHhhI", b, 0)
        pid, i = cn(b, 17)
        txt, i = cn(b, i)
        assert b[i] == 0 and i + 1 == len(b), "PRR length"
        assert head == 1 and 1 <= site <= 4
        assert (flg & 0x08 != 0) == (hb != 1)
        soft[sb] = soft.get(sb, 0) + 1
        hard[hb] = hard.get(hb, 0) + 1
        good += hb == 1
        prr += 1
    elif name == "DTR":
        text, i = cn(b, 0)
        assert i == len(b) and text.startswith("WPID ")
        dtr += 1
    elif name in ("SBR", "HBR"):
        h, s, num, cnt, pf = struct.unpack_from("<BBHIc", b, 0)
        assert h == 255
        (sbr if name == "SBR" else hbr)[num] = cnt
    elif name == "WRR":
        wrr = struct.unpack_from("<BBIIIIII", b, 0)

o = summary["tally"]["outcomes"]
want_soft = {1: o["provisioned"], 2: o["reissued"], 10: o["refused-conflict"],
             11: o["refused-quota"], 12: o["failed-check"]}
assert prr == dtr == summary["tally"]["selected"], (prr, dtr)
assert {k: v for k, v in want_soft.items() if v} == soft, (soft, want_soft)
assert sbr == want_soft, sbr
assert hbr.get(1) == good == o["provisioned"] + o["reissued"]
assert wrr[3] == prr and wrr[6] == good, wrr
print("stdf_check: %d records, %d parts, %d good, soft bins %s: OK" % (len(recs), prr, good, soft))
