#!/usr/bin/env python3
"""Tests of tools/synth/timing.py on hand-written netlists whose depth and delay are worked out
by hand from the model's numbers (run by CTest as synth_timing_model)."""

import io
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timing  # noqa: E402

M = timing.MODEL
OUT = {"O", "Q", "CO", "P"}


def cell(ctype, params=None, **conn):
    dirs = {p: ("output" if p in OUT else "input") for p in conn}
    return {"type": ctype, "parameters": params or {}, "port_directions": dirs,
            "connections": {p: (b if isinstance(b, list) else [b]) for p, b in conn.items()}}


def ff(name, d, q):
    return (name, cell("FDRE", C=[1], CE=["1"], R=["0"], D=d, Q=q))


def netlist(cells, ports=None, names=None):
    netnames = {n: {"hide_name": 0, "bits": [b]} for n, b in (names or {}).items()}
    return {"modules": {"t": {"attributes": {"top": "00000000000000000000000000000001"},
                              "ports": ports or {"clk": {"direction": "input", "bits": [1]}},
                              "cells": dict(cells), "netnames": netnames}}}


def analyse(doc):
    an = timing.Analysis(timing.Netlist(doc))
    an.run()
    return an


class PathDepth(unittest.TestCase):
    def test_luts_then_two_carry_cells(self):
        # a.Q(2), b.Q(3) -> LUT2 (4) -> LUT6 (5) -> CARRY4 S[0] .. CO[3] (6) -> CARRY4 CI ..
        # CO[3] (7) -> c.D. Every routed net has fanout 1.
        cells = [ff("a", 20, 2), ff("b", 21, 3), ff("c", 7, 30),
                 ("l1", cell("LUT2", I0=2, I1=3, O=4)),
                 ("l2", cell("LUT6", I0=4, I1="0", I2="0", I3="0", I4="0", I5="0", O=5)),
                 ("c1", cell("CARRY4", CI="0", CYINIT="0", S=[5, "0", "0", "0"],
                             DI=["0", "0", "0", "0"], O=[40, 41, 42, 43], CO=[44, 45, 46, 6])),
                 ("c2", cell("CARRY4", CI=6, CYINIT="0", S=["1", "1", "1", "1"],
                             DI=["0", "0", "0", "0"], O=[50, 51, 52, 53], CO=[54, 55, 56, 7]))]
        an = analyse(netlist(cells, names={"a_q": 2, "b_q": 3, "c_q": 30}))
        worst = an.worst("reg", 5)
        self.assertEqual(len(worst), 1)
        p = worst[0]
        self.assertEqual(p["to"], "ff:c_q")
        self.assertIn(p["from"], ("ff:a_q", "ff:b_q"))
        self.assertEqual(p["lut_levels"], 2)
        self.assertEqual(p["carry_cells"], 2)
        self.assertEqual(p["carry_bits"], 8)
        self.assertEqual(p["dsp_stages"], 0)
        net = M["net_base"]
        want = (M["ff_clk_to_q"] + (net + M["lut"]) * 2 + net + 4 * M["carry_bit"] +
                4 * M["carry_bit"] + net + M["ff_setup"])
        self.assertAlmostEqual(p["delay_ns"], want)
        self.assertAlmostEqual(want, 1.55)

    def test_longest_of_two_branches_wins(self):
        # a -> LUT -> c directly, and a -> LUT -> LUT -> LUT -> c: the deeper branch counts.
        cells = [ff("a", 20, 2), ff("c", 9, 30),
                 ("s", cell("LUT1", I0=2, O=3)),
                 ("d1", cell("LUT1", I0=2, O=4)), ("d2", cell("LUT1", I0=4, O=5)),
                 ("d3", cell("LUT1", I0=5, O=6)),
                 ("j", cell("LUT2", I0=3, I1=6, O=9))]
        p = analyse(netlist(cells, names={"a_q": 2, "c_q": 30})).worst("reg", 1)[0]
        self.assertEqual(p["lut_levels"], 4)
        # Net 2 has fanout 2 (s and d1): still the base delay.
        self.assertAlmostEqual(p["delay_ns"], 0.1 + 4 * 0.35 + 0.25 + 0.05)

    def test_fanout_raises_net_delay(self):
        cells = [ff("a", 20, 2)] + [("l%d" % i, cell("LUT1", I0=2, O=100 + i))
                                    for i in range(16)] + [ff("c", 100, 30)]
        p = analyse(netlist(cells, names={"a_q": 2, "c_q": 30})).worst("reg", 1)[0]
        self.assertEqual(p["max_fanout"], 16)
        # 16 sinks: two doublings above 4.
        self.assertAlmostEqual(timing.net_delay(16), M["net_base"] + 2 * M["net_per_doubling"])
        self.assertAlmostEqual(p["delay_ns"], 0.1 + timing.net_delay(16) + 0.1 + 0.25 + 0.05)

    def test_muxf_fed_by_dedicated_wires(self):
        cells = [ff("a", 20, 2), ff("c", 6, 30),
                 ("l0", cell("LUT1", I0=2, O=3)), ("l1", cell("LUT1", I0=2, O=4)),
                 ("m", cell("MUXF7", I0=3, I1=4, S="0", O=6))]
        p = analyse(netlist(cells, names={"a_q": 2, "c_q": 30})).worst("reg", 1)[0]
        self.assertEqual((p["lut_levels"], p["muxf"]), (1, 1))
        self.assertAlmostEqual(p["delay_ns"], 0.1 + 0.35 + M["muxf"] + 0.25 + 0.05)


class Dsp(unittest.TestCase):
    REGS = ("AREG", "BREG", "MREG", "PREG")

    def dsp(self, regs):
        params = {k: ("%032d" % 0 if v == 0 else "0" * 31 + "1") for k, v in zip(self.REGS,
                                                                                 regs)}
        return [ff("a", 20, 2), ff("c", 9, 30),
                ("m", cell("DSP48E2", params, A=[2], B=[2], P=[9]))]

    def test_unregistered_dsp_is_one_combinational_stage(self):
        an = analyse(netlist(self.dsp((0, 0, 0, 0)), names={"a_q": 2, "c_q": 30}))
        p = an.worst("reg", 1)[0]
        self.assertEqual(p["dsp_stages"], 1)
        self.assertAlmostEqual(p["delay_ns"], 0.1 + 0.25 + 1.9 + 0.25 + 0.05)
        self.assertEqual(list(an.dsp_configs.values()), [1])
        self.assertIn(("AREG", 0), next(iter(an.dsp_configs)))

    def test_fully_registered_dsp_breaks_the_path(self):
        an = analyse(netlist(self.dsp((1, 1, 1, 1)), names={"a_q": 2, "c_q": 30}))
        paths = an.worst("reg", 10)
        self.assertTrue(all(p["dsp_stages"] == 0 for p in paths))
        worst = max(p["delay_ns"] for p in paths)
        self.assertAlmostEqual(worst, M["dsp_clk_to_out"] + M["dsp_in_to_m"])

    def test_ab_registered_only_leaves_multiplier_and_alu(self):
        an = analyse(netlist(self.dsp((1, 1, 0, 0)), names={"a_q": 2, "c_q": 30}))
        p = an.worst("reg", 1)[0]
        self.assertEqual(p["to"], "ff:c_q")
        self.assertAlmostEqual(p["delay_ns"], 0.3 + 1.9 + 0.25 + 0.05)


class Errors(unittest.TestCase):
    def test_combinational_loop_is_an_error(self):
        cells = [("x", cell("LUT1", I0=3, O=4)), ("y", cell("LUT1", I0=4, O=3))]
        with self.assertRaisesRegex(ValueError, "combinational loop"):
            analyse(netlist(cells))

    def test_unknown_cell_is_named_in_the_report(self):
        cells = [ff("a", 20, 2), ("w", cell("WEIRD", I=2, O=3))]
        an = analyse(netlist(cells))
        buf = io.StringIO()
        timing.report(an, 3, out=buf)
        self.assertIn("NOT MODELLED", buf.getvalue())
        self.assertIn("WEIRD x1", buf.getvalue())

    def test_missing_top_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "no module 'nope'"):
            timing.Netlist(netlist([]), "nope")

    def test_async_reset_flops_are_counted(self):
        cells = [("a", cell("FDCE", C=[1], CE=["1"], CLR=[5], D=[20], Q=[2]))]
        self.assertEqual(timing.resources(analyse(netlist(cells)).counts)["FF_async"], 1)


if __name__ == "__main__":
    unittest.main()
