#!/usr/bin/env python3
"""Register-to-register path analysis of a Yosys `write_json` netlist (synth_xilinx -family xcup).

Yosys 0.23 has no timing engine for Xilinx cells, so this walks the mapped netlist itself: a
cell graph from every register output (FD*E Q, DSP48E2/RAMB output registers) through LUTs,
MUXF7/8/9, CARRY4/8 and unregistered DSP48E2 stages to every register input, and estimates each
path's delay with the per-element model below. Python standard library only.

    timing.py NETLIST.json [--top NAME] [--paths N] [--json OUT]

The delay model (UltraScale+, speed grade -2). The LUT, net, carry and unregistered-DSP
figures are the ones the review in issue #13 used; Xilinx DS925 (Zynq UltraScale+ MPSoC DC and
AC switching characteristics, -2 columns) is the public source for this class of figure. The
flip-flop, MUXF, BRAM and DSP-segment figures are assumptions of the same order, not read off a
datasheet in this tree. Routing is not known before place-and-route, so the estimate is good to
about +/-30 %: use it to compare designs and to find the deep paths, not as a signed-off Fmax.
"""

import argparse
import json
import math
import re
import sys
from collections import defaultdict

# ---------------------------------------------------------------------------------------------
# Delay model, ns. Every number used below is in this table (printed with each report).
# ---------------------------------------------------------------------------------------------
MODEL = {
    "lut": 0.10,  # one LUT1..LUT6 (or INV, LUTRAM/SRL read): review / DS925
    "net_base": 0.25,  # one routed net with fanout <= 4: review
    "net_per_doubling": 0.10,  # + per doubling of fanout above 4 (assumed, "more with fanout")
    "carry_bit": 0.025,  # per carry bit traversed in CARRY4/CARRY8: review / DS925
    "muxf": 0.05,  # MUXF7/8/9, fed by dedicated wires from the LUTs (assumed)
    "ff_clk_to_q": 0.10,  # FD*E clock to Q (assumed, DS925 order)
    "ff_setup": 0.05,  # FD*E D/CE/R/S setup (assumed, DS925 order)
    "dsp_in_to_m": 1.10,  # DSP48E2 A/B/D inputs through pre-adder and multiplier (assumed split)
    "dsp_m_to_p": 0.80,  # DSP48E2 multiplier output through the ALU to P (assumed split)
    #                      in_to_m + m_to_p = 1.9 ns, the review's unregistered DSP48E2
    "dsp_clk_to_out": 0.30,  # DSP48E2 internal register clock to next stage/output (assumed)
    "dsp_setup": 0.25,  # DSP48E2 input register setup (assumed)
    "bram_clk_to_out": 1.60,  # RAMB18E2/36E2 read without output register (assumed)
    "bram_clk_to_out_reg": 0.50,  # RAMB with DOA_REG/DOB_REG = 1 (assumed)
    "bram_setup": 0.40,  # RAMB address/data/enable setup (assumed)
}

LUT_TYPES = {"LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "LUT6_2", "INV"}
MUXF_TYPES = {"MUXF7", "MUXF8", "MUXF9"}
CARRY_TYPES = {"CARRY4": 4, "CARRY8": 8}
FF_TYPES = {"FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1"}
ASYNC_FF_TYPES = {"FDCE", "FDPE", "FDCE_1", "FDPE_1"}
FF_ASYNC_PORTS = {"CLR", "PRE"}
CLOCK_PORTS = {"C", "CLK", "CLKARDCLK", "CLKBWRCLK", "WCLK", "CLKA", "CLKB"}
IGNORED_TYPES = {"GND", "VCC", "BUFG", "BUFGCE", "IBUF", "OBUF", "IOBUF", "OBUFT"}
LUTRAM_RE = re.compile(r"^RAM(32|64|128|256|512)(M|M16|M8|X\d[SD])$")
SRL_TYPES = {"SRL16E", "SRLC16E", "SRLC32E"}
BRAM_RE = re.compile(r"^RAMB(18|36)E2$")
DSP_TYPES = {"DSP48E2"}
DSP_REG_PARAMS = ("AREG", "BREG", "CREG", "DREG", "ADREG", "MREG", "PREG", "ACASCREG",
                  "BCASCREG", "INMODEREG", "OPMODEREG", "ALUMODEREG", "CARRYINREG")
OUT_PORT_FALLBACK = re.compile(
    r"^(O|O5|O6|Q|CO|P|PCOUT|ACOUT|BCOUT|CARRYCASCOUT|CARRYOUT|MULTSIGNOUT|PATTERNDETECT|"
    r"PATTERNBDETECT|OVERFLOW|UNDERFLOW|XOROUT|DO.*|DOUT.*|CASDOUT.*|SPO|DPO|Q31)$")


def net_delay(fanout):
    """Routed net delay for a net with `fanout` sinks."""
    extra = MODEL["net_per_doubling"] * math.log2(fanout / 4.0) if fanout > 4 else 0.0
    return MODEL["net_base"] + extra


def param_int(value):
    """Yosys JSON parameter (int, or a binary string of 32 digits) as an int."""
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text and set(text) <= {"0", "1", "x", "z"}:
        return int(text.replace("x", "0").replace("z", "0"), 2)
    try:
        return int(text, 0)
    except ValueError:
        return 0


class Netlist:
    """The flattened top module of a Yosys JSON netlist as a bit-level cell graph."""

    def __init__(self, doc, top=None):
        modules = doc.get("modules", {})
        if top is None:
            tops = [n for n, m in modules.items() if param_int(m.get("attributes", {}).get(
                "top", 0)) == 1]
            if len(tops) != 1:
                raise ValueError("netlist: give --top, the JSON marks %d modules as top (%s)" %
                                 (len(tops), ", ".join(tops) or "none"))
            top = tops[0]
        if top not in modules:
            raise ValueError("netlist: no module '%s' (have: %s)" % (top, ", ".join(modules)))
        self.top = top
        mod = modules[top]
        self.cells = mod.get("cells", {})
        self.ports = mod.get("ports", {})
        self.names = {}
        # A readable name per net bit: prefer names the user wrote (hide_name 0), then the
        # shortest one.
        for name, info in mod.get("netnames", {}).items():
            hidden = info.get("hide_name", 0)
            bits = info.get("bits", [])
            for i, b in enumerate(bits):
                if not isinstance(b, int):
                    continue
                label = name if len(bits) == 1 else "%s[%d]" % (name, i)
                # Project convention: registers are *_q; prefer that name for a flop's output.
                key = (hidden, 0 if re.search(r"_q$", name) else 1, len(label))
                if b not in self.names or key < self.names[b][0]:
                    self.names[b] = (key, label)
        self.sinks = defaultdict(list)  # net bit -> [(cell, port, index)]
        self.driver = {}  # net bit -> (cell, port, index)
        self.unknown = defaultdict(int)
        for cname, cell in self.cells.items():
            dirs = cell.get("port_directions", {})
            for port, bits in cell.get("connections", {}).items():
                d = dirs.get(port)
                if d is None:
                    d = "output" if OUT_PORT_FALLBACK.match(port) else "input"
                for i, b in enumerate(bits):
                    if not isinstance(b, int):
                        continue
                    if d == "output":
                        self.driver[b] = (cname, port, i)
                    else:
                        self.sinks[b].append((cname, port, i))

    def name(self, bit):
        return self.names.get(bit, ((0, 0, 0), "$net%d" % bit))[1]

    def fanout(self, bit):
        return max(1, len(self.sinks.get(bit, ())))


def cell_reg_params(cell):
    p = cell.get("parameters", {})
    return {k: param_int(p[k]) for k in DSP_REG_PARAMS if k in p}


class Analysis:
    """Longest register-to-register paths under MODEL.

    Nodes are net bits plus three virtual nodes per DSP48E2 (its input stage, multiplier output
    and ALU output). Each edge carries its delay and the element it crosses."""

    def __init__(self, netlist):
        self.nl = netlist
        self.edges = defaultdict(list)  # node -> [(dst node, delay, element, cell)]
        self.starts = {}  # node -> (arrival ns, description)
        self.ends = []  # (node, extra delay after the node (net + setup), endpoint label)
        self.counts = defaultdict(int)
        self.dsp_configs = defaultdict(int)
        self.bram_configs = defaultdict(int)
        self.port_bits = {}
        for pname, port in netlist.ports.items():
            for i, b in enumerate(port.get("bits", [])):
                if isinstance(b, int):
                    self.port_bits[b] = (pname, port.get("direction"), i)
        self._build()

    # Net delay from `bit` to a particular sink; dedicated wires (carry cascade, LUT -> MUXF,
    # MUXF -> MUXF) cost nothing.
    def _wire(self, bit, sink_cell_type, sink_port):
        drv = self.nl.driver.get(bit)
        if drv is not None:
            dtype = self.nl.cells[drv[0]]["type"]
            if dtype in CARRY_TYPES and drv[1] == "CO" and sink_cell_type in CARRY_TYPES and \
                    sink_port == "CI":
                return 0.0
            if sink_cell_type in MUXF_TYPES and sink_port in ("I0", "I1") and \
                    (dtype in LUT_TYPES or dtype in MUXF_TYPES):
                return 0.0
            if dtype in DSP_TYPES and sink_cell_type in DSP_TYPES and \
                    drv[1] in ("PCOUT", "ACOUT", "BCOUT", "CARRYCASCOUT"):
                return 0.0
        return net_delay(self.nl.fanout(bit))

    def _inputs(self, cell):
        dirs = cell.get("port_directions", {})
        for port, bits in cell.get("connections", {}).items():
            d = dirs.get(port) or ("output" if OUT_PORT_FALLBACK.match(port) else "input")
            if d != "output":
                for i, b in enumerate(bits):
                    if isinstance(b, int):
                        yield port, i, b

    def _outputs(self, cell):
        dirs = cell.get("port_directions", {})
        for port, bits in cell.get("connections", {}).items():
            d = dirs.get(port) or ("output" if OUT_PORT_FALLBACK.match(port) else "input")
            if d == "output":
                for i, b in enumerate(bits):
                    if isinstance(b, int):
                        yield port, i, b

    def _end(self, node, extra, label):
        self.ends.append((node, extra, label))

    def _build(self):
        nl = self.nl
        for bit, (pname, direction, i) in self.port_bits.items():
            label = pname if len(nl.ports[pname]["bits"]) == 1 else "%s[%d]" % (pname, i)
            if direction == "input":
                self.starts[bit] = (0.0, "in:" + label)
            elif direction == "output":
                self._end(bit, 0.0, "out:" + label)
        for cname, cell in nl.cells.items():
            ctype = cell["type"]
            self.counts[ctype] += 1
            if ctype in IGNORED_TYPES:
                continue
            if ctype in FF_TYPES:
                for port, i, b in self._inputs(cell):
                    if port in CLOCK_PORTS or port in FF_ASYNC_PORTS:
                        continue
                    self._end(b, self._wire(b, ctype, port) + MODEL["ff_setup"],
                              "ff:%s" % nl.name(cell["connections"]["Q"][0]))
                for port, i, b in self._outputs(cell):
                    self.starts[b] = (MODEL["ff_clk_to_q"], "ff:" + nl.name(b))
            elif ctype in LUT_TYPES or LUTRAM_RE.match(ctype) or ctype in SRL_TYPES:
                outs = list(self._outputs(cell))
                ram = not (ctype in LUT_TYPES)
                for port, i, b in self._inputs(cell):
                    if port in CLOCK_PORTS:
                        continue
                    if ram:
                        # Writes are synchronous: every input is a register input.
                        self._end(b, self._wire(b, ctype, port) + MODEL["ff_setup"],
                                  "ram:%s" % cname)
                        if not re.match(r"^(A\d*|ADDR[A-H]?|DPRA\d*|A\[?\d*)$", port):
                            continue
                    for _, _, o in outs:
                        self.edges[b].append((o, self._wire(b, ctype, port) + MODEL["lut"],
                                              "LUT", cname))
                if ram:
                    for _, _, o in outs:
                        self.starts[o] = (MODEL["ff_clk_to_q"] + MODEL["lut"], "ram:" + cname)
            elif ctype in MUXF_TYPES:
                outs = list(self._outputs(cell))
                for port, i, b in self._inputs(cell):
                    for _, _, o in outs:
                        self.edges[b].append((o, self._wire(b, ctype, port) + MODEL["muxf"],
                                              "MUXF", cname))
            elif ctype in CARRY_TYPES:
                self._carry(cname, cell, CARRY_TYPES[ctype])
            elif ctype in DSP_TYPES:
                self._dsp(cname, cell)
            elif BRAM_RE.match(ctype):
                self._bram(cname, cell)
            else:
                self.unknown_cell(cname, cell)

    def unknown_cell(self, cname, cell):
        # Not modelled: treated as a register boundary and reported, never silently dropped.
        self.nl.unknown[cell["type"]] += 1
        for port, i, b in self._inputs(cell):
            if port not in CLOCK_PORTS:
                self._end(b, self._wire(b, cell["type"], port), "unknown:%s" % cname)
        for port, i, b in self._outputs(cell):
            self.starts[b] = (0.0, "unknown:" + cname)

    def _carry(self, cname, cell, width):
        conn = cell["connections"]
        ctype = cell["type"]

        def bit_of(port, k):
            bits = conn.get(port, [])
            return bits[k] if k < len(bits) and isinstance(bits[k], int) else None

        outs = []  # (output bit, position)
        for k in range(width):
            for port in ("O", "CO"):
                b = bit_of(port, k)
                if b is not None:
                    outs.append((b, k))
        ins = []  # (input bit, port, first position it affects)
        for port in ("CI", "CYINIT", "CI_TOP"):
            b = bit_of(port, 0)
            if b is not None:
                ins.append((b, port, 0 if port != "CI_TOP" else 4))
        for port in ("S", "DI"):
            for k in range(width):
                b = bit_of(port, k)
                if b is not None:
                    ins.append((b, port, k))
        for b, port, k0 in ins:
            w = self._wire(b, ctype, port)
            for o, k in outs:
                if k >= k0:
                    self.edges[b].append((o, w + MODEL["carry_bit"] * (k - k0 + 1),
                                          "CARRY:%d" % (k - k0 + 1), cname))

    def _dsp(self, cname, cell):
        regs = cell_reg_params(cell)
        self.dsp_configs[tuple(sorted(regs.items()))] += 1
        n_in, n_m, n_p = ("dsp_in", cname), ("dsp_m", cname), ("dsp_p", cname)
        ctype = cell["type"]
        for port, i, b in self._inputs(cell):
            if port in CLOCK_PORTS or port.startswith("CE") or port.startswith("RST"):
                if port.startswith("CE") or port.startswith("RST"):
                    self._end(b, self._wire(b, ctype, port) + MODEL["dsp_setup"],
                              "dsp:%s.%s" % (cname, port))
                continue
            w = self._wire(b, ctype, port)
            group = port.rstrip("0123456789")
            reg = {"A": "AREG", "ACIN": "AREG", "B": "BREG", "BCIN": "BREG", "C": "CREG",
                   "D": "DREG"}.get(group)
            if group in ("PCIN", "C", "CARRYCASCIN", "CARRYIN") and not (
                    group == "C" and regs.get("CREG", 0)):
                # Straight into the ALU stage.
                self.edges[b].append((n_p, w + MODEL["dsp_m_to_p"], "DSP", cname))
            elif reg is not None and regs.get(reg, 0) == 0:
                self.edges[b].append((n_in, w, "DSPIN", cname))
            else:
                # Registered input (or control: OPMODE/ALUMODE/INMODE, assumed registered only
                # if its *REG parameter says so; treated as a register input here).
                self._end(b, w + MODEL["dsp_setup"], "dsp:%s.%s" % (cname, group))
        in_reg = regs.get("AREG", 0) or regs.get("BREG", 0)
        if in_reg:
            self.starts[n_in] = (MODEL["dsp_clk_to_out"], "dsp:%s.AREG/BREG" % cname)
        if regs.get("MREG", 0):
            self._end(n_in, MODEL["dsp_in_to_m"], "dsp:%s.MREG" % cname)
            self.starts[n_m] = (MODEL["dsp_clk_to_out"], "dsp:%s.MREG" % cname)
        else:
            self.edges[n_in].append((n_m, MODEL["dsp_in_to_m"], "DSP", cname))
        if regs.get("PREG", 0):
            self._end(n_m, MODEL["dsp_m_to_p"], "dsp:%s.PREG" % cname)
            self._end(n_p, 0.0, "dsp:%s.PREG" % cname)
            p_start = True
        else:
            self.edges[n_m].append((n_p, MODEL["dsp_m_to_p"], "DSP", cname))
            p_start = False
        for port, i, b in self._outputs(cell):
            if p_start:
                self.starts[b] = (MODEL["dsp_clk_to_out"], "dsp:%s.PREG" % cname)
            else:
                self.edges[n_p].append((b, 0.0, "DSPOUT", cname))

    def _bram(self, cname, cell):
        p = cell.get("parameters", {})
        doa, dob = param_int(p.get("DOA_REG", 0)), param_int(p.get("DOB_REG", 0))
        self.bram_configs[(cell["type"], doa, dob)] += 1
        ctype = cell["type"]
        for port, i, b in self._inputs(cell):
            if port in CLOCK_PORTS:
                continue
            self._end(b, self._wire(b, ctype, port) + MODEL["bram_setup"],
                      "bram:%s.%s" % (cname, port))
        for port, i, b in self._outputs(cell):
            reg = dob if ("B" in port[-4:] or port.startswith("DOUTB") or
                          port.startswith("DOB")) else doa
            t = MODEL["bram_clk_to_out_reg"] if reg else MODEL["bram_clk_to_out"]
            self.starts[b] = (t, "bram:%s.%s%s" % (cname, port, "(reg)" if reg else ""))

    # -----------------------------------------------------------------------------------------
    def run(self):
        """Arrival time (latest) at every node, with the predecessor edge that set it."""
        indeg = defaultdict(int)
        for src, lst in self.edges.items():
            for dst, _, _, _ in lst:
                indeg[dst] += 1
        nodes = set(self.edges) | set(indeg) | set(self.starts)
        self.arr = {}
        self.pred = {}
        for n in nodes:
            if n in self.starts:
                self.arr[n] = self.starts[n][0]
        # A start node that is also driven combinationally (cannot happen for FF Q) keeps the
        # later of the two arrivals.
        ready = [n for n in nodes if indeg[n] == 0]
        seen = 0
        while ready:
            n = ready.pop()
            seen += 1
            a = self.arr.get(n)
            for dst, d, elem, cname in self.edges.get(n, ()):
                if a is not None:
                    t = a + d
                    if t > self.arr.get(dst, -1.0):
                        self.arr[dst] = t
                        self.pred[dst] = (n, d, elem, cname)
                indeg[dst] -= 1
                if indeg[dst] == 0:
                    ready.append(dst)
        if seen != len(nodes):
            raise ValueError("netlist has a combinational loop (%d nodes never settled)" %
                             (len(nodes) - seen))

    def path(self, node):
        """The critical path into `node`: list of (node, delay of the edge into it, element,
        cell), start first."""
        out = []
        while node in self.pred:
            src, d, elem, cname = self.pred[node]
            out.append((node, d, elem, cname))
            node = src
        out.append((node, self.arr.get(node, 0.0), "START", None))
        out.reverse()
        return out

    def start_label(self, node):
        s = self.starts.get(node)
        return s[1] if s else "?"

    def summarize(self, node, extra, label):
        p = self.path(node)
        luts = sum(1 for _, _, e, _ in p if e == "LUT")
        muxf = sum(1 for _, _, e, _ in p if e == "MUXF")
        carry_bits = sum(int(e.split(":")[1]) for _, _, e, _ in p if e.startswith("CARRY:"))
        carry_cells = len({c for _, _, e, c in p if e.startswith("CARRY:")})
        dsp = len({c for _, _, e, c in p if e == "DSP"})
        fan = [self.nl.fanout(n) for n, _, _, _ in p if isinstance(n, int)]
        return {
            "delay_ns": self.arr[node] + extra,
            "from": self.start_label(p[0][0]),
            "to": label,
            "lut_levels": luts,
            "muxf": muxf,
            "carry_bits": carry_bits,
            "carry_cells": carry_cells,
            "dsp_stages": dsp,
            "max_fanout": max(fan) if fan else 0,
            "elements": [(self.nl.name(n) if isinstance(n, int) else "%s.%s" % n,
                          round(d, 3), e, c) for n, d, e, c in p],
        }

    def worst(self, kind="reg", count=10):
        """Worst path per endpoint register group (name without bit index), by delay.
        kind: 'reg' register to register, 'in' input port to register, 'out' register to
        output port, 'through' input port to output port (combinational)."""
        best = {}
        for node, extra, label in self.ends:
            if node not in self.arr:
                continue
            to_port = label.startswith("out:")
            src = self.path(node)[0][0]
            from_port = self.start_label(src).startswith("in:")
            if (from_port, to_port) != {"reg": (False, False), "in": (True, False),
                                        "out": (False, True), "through": (True, True)}[kind]:
                continue
            group = re.sub(r"\[\d+\]$", "", label)
            t = self.arr[node] + extra
            if group not in best or t > best[group][0]:
                best[group] = (t, node, extra, label)
        ranked = sorted(best.values(), key=lambda v: -v[0])[:count]
        return [self.summarize(n, e, l) for _, n, e, l in ranked]


def resources(counts):
    lut = sum(v for k, v in counts.items() if k in LUT_TYPES)
    ff = sum(v for k, v in counts.items() if k in FF_TYPES)
    return {
        "LUT": lut,
        "LUTRAM": sum(v for k, v in counts.items() if LUTRAM_RE.match(k)),
        "SRL": sum(v for k, v in counts.items() if k in SRL_TYPES),
        "FF": ff,
        "FF_async": sum(v for k, v in counts.items() if k in ASYNC_FF_TYPES),
        "CARRY4": counts.get("CARRY4", 0),
        "CARRY8": counts.get("CARRY8", 0),
        "MUXF7/8/9": sum(counts.get(k, 0) for k in ("MUXF7", "MUXF8", "MUXF9")),
        "DSP48E2": counts.get("DSP48E2", 0),
        "RAMB18E2": counts.get("RAMB18E2", 0),
        "RAMB36E2": counts.get("RAMB36E2", 0),
    }


def short(label, width=44):
    return label if len(label) <= width else "..." + label[-(width - 3):]


def report(an, paths, detail=True, out=sys.stdout):
    w = out.write
    res = resources(an.counts)
    w("resources: " + ", ".join("%s %d" % kv for kv in res.items()) + "\n")
    if an.nl.unknown:
        w("NOT MODELLED (treated as register boundaries): %s\n" %
          ", ".join("%s x%d" % kv for kv in sorted(an.nl.unknown.items())))
    if an.dsp_configs:
        w("DSP48E2 register use:\n")
        for cfg, n in sorted(an.dsp_configs.items(), key=lambda kv: -kv[1]):
            w("  %4d x %s\n" % (n, " ".join("%s=%d" % kv for kv in cfg)))
    if an.bram_configs:
        w("RAMB register use:\n")
        for (t, a, b), n in sorted(an.bram_configs.items()):
            w("  %4d x %s DOA_REG=%d DOB_REG=%d\n" % (n, t, a, b))
    regs = an.worst("reg", paths)

    def table(title, rows):
        w("\n%s\n" % title)
        if not rows:
            w("  none\n")
            return
        w("  %7s %7s %4s %4s %11s %3s %6s  %s\n" % ("ns", "MHz", "LUT", "MUXF", "carry bits",
                                                     "DSP", "fanout", "from -> to"))
        for r in rows:
            w("  %7.2f %7.0f %4d %4d %5d (%3d) %3d %6d  %s -> %s\n" % (
                r["delay_ns"], 1000.0 / r["delay_ns"], r["lut_levels"], r["muxf"],
                r["carry_bits"], r["carry_cells"], r["dsp_stages"], r["max_fanout"],
                short(r["from"]), short(r["to"])))

    table("worst register-to-register paths (one per endpoint register; carry cells in "
          "parentheses):", regs)
    if regs:
        top = regs[0]
        w("\nestimated Fmax %.0f MHz (worst path %.2f ns; model good to about +/-30 %%, i.e. "
          "%.0f-%.0f MHz)\n" % (1000.0 / top["delay_ns"], top["delay_ns"],
                                1000.0 / (top["delay_ns"] * 1.3),
                                1000.0 / (top["delay_ns"] * 0.7)))
        deepest = max(an.worst("reg", 10 ** 9), key=lambda r: r["lut_levels"])
        w("deepest register-to-register path: %d LUT levels, %.2f ns (%s -> %s)\n" % (
            deepest["lut_levels"], deepest["delay_ns"], short(deepest["from"]),
            short(deepest["to"])))
        if detail:
            w("\ncritical path:\n")
            for name, d, e, c in top["elements"]:
                w("  %+6.3f  %-8s %s\n" % (d, e, short(name, 70)))
    table("worst input-port-to-register paths (add the driving block's clock-to-out):",
          an.worst("in", min(paths, 3)))
    table("worst register-to-output-port paths:", an.worst("out", min(paths, 3)))
    table("worst input-port-to-output-port (combinational) paths:",
          an.worst("through", min(paths, 3)))
    w("\nmodel (ns): " + ", ".join("%s %.3f" % kv for kv in MODEL.items()) + "\n")
    w("net delay = net_base + net_per_doubling * log2(fanout / 4) above fanout 4; "
      "carry-cascade, LUT->MUXF and DSP-cascade wires cost nothing\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("netlist", help="Yosys write_json output")
    ap.add_argument("--top", help="top module (default: the one marked top)")
    ap.add_argument("--paths", type=int, default=10, help="paths to list (default 10)")
    ap.add_argument("--json", help="also write the figures as JSON to this file")
    ap.add_argument("--no-detail", action="store_true", help="omit the critical path listing")
    args = ap.parse_args(argv)
    try:
        with open(args.netlist) as f:
            doc = json.load(f)
        an = Analysis(Netlist(doc, args.top))
        an.run()
    except (OSError, ValueError) as e:
        sys.stderr.write("timing.py: %s: %s\n" % (args.netlist, e))
        return 2
    report(an, args.paths, detail=not args.no_detail)
    if args.json:
        regs = an.worst("reg", args.paths)
        with open(args.json, "w") as f:
            json.dump({"top": an.nl.top, "resources": resources(an.counts), "model": MODEL,
                       "paths": regs,
                       "fmax_mhz": 1000.0 / regs[0]["delay_ns"] if regs else None}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
