#!/usr/bin/env python3
"""tools/regmap.py refuses bad register maps by name and writes what the map says."""
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import regmap  # noqa: E402

HEAD = """
[card]
name = "t"
title = "test card"
addr_width = 8
data_width = 32
id = 0x12345678
version_major = 2
version_minor = 3
[outputs]
sv_package = "out/t_pkg.sv"
cpp_header = "out/t.hpp"
doc = "out/t.md"
"""


def parse(body: str):
    return regmap.parse(HEAD + body, "t.toml")


class Refuses(unittest.TestCase):
    def refused(self, body: str, *words: str):
        with self.assertRaises(regmap.MapError) as ctx:
            parse(body)
        for w in words:
            self.assertIn(w, str(ctx.exception))

    def test_misaligned_offset(self):
        self.refused('[[reg]]\nname="A"\noffset=0x2\naccess="rw"\ndesc="a"\n', "A", "aligned")

    def test_overlapping_registers_and_arrays(self):
        self.refused('[[reg]]\nname="A"\noffset=0x0\ncount=4\naccess="wo"\ndesc="a"\n'
                     '[[reg]]\nname="B"\noffset=0xC\naccess="rw"\ndesc="b"\n', "B", "overlaps A")

    def test_past_the_window(self):
        self.refused('[[reg]]\nname="A"\noffset=0xFC\ncount=2\naccess="wo"\ndesc="a"\n',
                     "A", "window")

    def test_overlapping_fields(self):
        self.refused('[[reg]]\nname="A"\noffset=0x0\naccess="rw"\ndesc="a"\nfields = ['
                     '{name="X", bits="3:0", desc="x"}, {name="Y", bits="4:3", desc="y"}]\n',
                     "A.Y", "overlap")

    def test_field_past_bit_31(self):
        self.refused('[[reg]]\nname="A"\noffset=0x0\naccess="rw"\ndesc="a"\nfields = ['
                     '{name="X", bits="32:30", desc="x"}]\n', "A.X", "bit 31")

    def test_readable_secret(self):
        self.refused('[[reg]]\nname="K"\noffset=0x0\naccess="rw"\nsecret=true\ndesc="k"\n',
                     "K", "secret")

    def test_unknown_access_duplicate_name_and_bad_name(self):
        self.refused('[[reg]]\nname="A"\noffset=0x0\naccess="rx"\ndesc="a"\n', "A", "access")
        self.refused('[[reg]]\nname="A"\noffset=0x0\naccess="rw"\ndesc="a"\n'
                     '[[reg]]\nname="A"\noffset=0x4\naccess="rw"\ndesc="a"\n', "A", "twice")
        self.refused('[[reg]]\nname="a-b"\noffset=0x0\naccess="rw"\ndesc="a"\n', "UPPER")

    def test_unknown_key(self):
        self.refused('[[reg]]\nname="A"\noffset=0x0\naccess="rw"\ndesc="a"\nofset=4\n',
                     "A", "ofset")


class Generates(unittest.TestCase):
    BODY = ('[[reg]]\nname="CTRL"\noffset=0x10\naccess="w1s"\ndesc="c"\nfields = ['
            '{name="GO", bits="0", desc="g"}, {name="MODE", bits="7:4", desc="m"}]\n'
            '[[reg]]\nname="KEY"\noffset=0x20\ncount=8\naccess="wo"\nsecret=true\ndesc="k"\n')

    def test_values_in_every_output(self):
        rm = parse(self.BODY)
        out = regmap.outputs(rm, "t.toml")
        sv, cpp, doc = out["out/t_pkg.sv"], out["out/t.hpp"], out["out/t.md"]
        self.assertIn("localparam logic [7:0] CTRL = 8'h10;", sv)
        self.assertIn("localparam int unsigned CTRL_MODE_LSB = 4;", sv)
        self.assertIn("localparam int unsigned CTRL_MODE_W = 4;", sv)
        self.assertIn("localparam int unsigned KEY_WORDS = 8;", sv)
        self.assertIn("inline constexpr uint32_t kCtrl = 0x010;", cpp)
        self.assertIn("inline constexpr Field kCtrlMode{4, 4};", cpp)
        self.assertIn('{"KEY", 0x020, 8, Access::kWo, true, 0x00000000},', cpp)
        self.assertIn("| 0x020..0x03F | `KEY` | wo, secret | 8 |", doc)

    def test_check_mode_names_a_stale_file_and_writes_nothing(self):
        with tempfile.TemporaryDirectory() as d:
            root = Path(d)
            (root / "t.toml").write_text(HEAD + self.BODY)
            tool = Path(regmap.__file__)
            run = lambda *a: subprocess.run([sys.executable, str(tool), "--root", d, *a,
                                             str(root / "t.toml")], capture_output=True, text=True)
            first = run("--check")
            self.assertEqual(first.returncode, 1)
            self.assertIn("out/t.hpp is stale", first.stderr)
            self.assertFalse((root / "out").exists())
            self.assertEqual(run().returncode, 0)
            self.assertEqual(run("--check").returncode, 0)
            (root / "out/t.md").write_text("edited by hand\n")
            again = run("--check")
            self.assertEqual(again.returncode, 1)
            self.assertIn("out/t.md is stale", again.stderr)


if __name__ == "__main__":
    unittest.main()
