#!/usr/bin/env python3
"""Register-map generator: one TOML description -> SystemVerilog package, C++ header, Markdown.

    tools/regmap.py rtl/card/card_regs.toml            write the generated files
    tools/regmap.py --check rtl/card/card_regs.toml    exit 1 naming every stale file

The description is validated first (alignment, overlaps, field ranges, names, access kinds);
any problem is reported as "<file>: <register>[.<field>]: <what is wrong>" and nothing is
written. Python 3.11 standard library only (tomllib).
"""
from __future__ import annotations

import argparse
import re
import textwrap
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ACCESS = {
    "ro": "read only",
    "rw": "read/write",
    "wo": "write only (reads return 0)",
    "w1s": "write 1 to trigger (reads return 0)",
    "rw1c": "read, write 1 to clear",
}
NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


class MapError(Exception):
    pass


@dataclass
class Field:
    name: str
    msb: int
    lsb: int
    desc: str

    @property
    def width(self) -> int:
        return self.msb - self.lsb + 1

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb


@dataclass
class Reg:
    name: str
    offset: int
    access: str
    desc: str
    count: int = 1
    reset: int = 0
    secret: bool = False
    fields: list[Field] = field(default_factory=list)

    @property
    def end(self) -> int:  # one past the last byte
        return self.offset + 4 * self.count


@dataclass
class RegMap:
    name: str
    title: str
    addr_width: int
    data_width: int
    ident: int
    version_major: int
    version_minor: int
    outputs: dict[str, str]
    regs: list[Reg]


def _bits(spec: str, where: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*(?::\s*(\d+)\s*)?", str(spec))
    if not m:
        raise MapError(f"{where}: bits '{spec}' is not 'N' or 'MSB:LSB'")
    msb = int(m.group(1))
    lsb = int(m.group(2)) if m.group(2) is not None else msb
    if lsb > msb:
        raise MapError(f"{where}: bits '{spec}' has LSB above MSB")
    if msb > 31:
        raise MapError(f"{where}: bits '{spec}' reach past bit 31 of a 32-bit register")
    return msb, lsb


def _require(table: dict, key: str, kind: type, where: str):
    if key not in table:
        raise MapError(f"{where}: missing '{key}'")
    value = table[key]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise MapError(f"{where}: '{key}' must be {kind.__name__}, not {type(value).__name__}")
    return value


def parse(text: str, source: str) -> RegMap:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise MapError(f"{source}: not valid TOML: {e}") from None
    card = doc.get("card")
    if not isinstance(card, dict):
        raise MapError(f"{source}: missing the [card] table")
    where = f"{source}: [card]"
    rm = RegMap(
        name=_require(card, "name", str, where),
        title=_require(card, "title", str, where),
        addr_width=_require(card, "addr_width", int, where),
        data_width=_require(card, "data_width", int, where),
        ident=_require(card, "id", int, where),
        version_major=_require(card, "version_major", int, where),
        version_minor=_require(card, "version_minor", int, where),
        outputs={},
        regs=[],
    )
    if rm.data_width != 32:
        raise MapError(f"{where}: data_width {rm.data_width} unsupported (32 only)")
    if not 4 <= rm.addr_width <= 20:
        raise MapError(f"{where}: addr_width {rm.addr_width} outside 4..20")
    outputs = doc.get("outputs")
    if not isinstance(outputs, dict):
        raise MapError(f"{source}: missing the [outputs] table")
    for key in ("sv_package", "cpp_header", "doc"):
        rm.outputs[key] = _require(outputs, key, str, f"{source}: [outputs]")
    regs = doc.get("reg")
    if not isinstance(regs, list) or not regs:
        raise MapError(f"{source}: no [[reg]] entries")
    names: set[str] = set()
    for i, r in enumerate(regs):
        where = f"{source}: reg #{i + 1}"
        name = _require(r, "name", str, where)
        where = f"{source}: {name}"
        if not NAME.match(name):
            raise MapError(f"{where}: name must be UPPER_CASE letters, digits and '_'")
        if name in names:
            raise MapError(f"{where}: defined twice")
        names.add(name)
        unknown = set(r) - {"name", "offset", "access", "desc", "count", "reset", "secret",
                            "fields"}
        if unknown:
            raise MapError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        reg = Reg(name=name, offset=_require(r, "offset", int, where),
                  access=_require(r, "access", str, where), desc=_require(r, "desc", str, where),
                  count=r.get("count", 1), reset=r.get("reset", 0), secret=r.get("secret", False))
        if reg.access not in ACCESS:
            raise MapError(f"{where}: access '{reg.access}' is not one of {', '.join(ACCESS)}")
        if reg.offset % 4:
            raise MapError(f"{where}: offset 0x{reg.offset:03X} is not 32-bit aligned")
        if not isinstance(reg.count, int) or isinstance(reg.count, bool) or reg.count < 1:
            raise MapError(f"{where}: count must be a positive integer")
        if reg.end > (1 << rm.addr_width):
            raise MapError(f"{where}: ends at 0x{reg.end:X}, past the "
                           f"{1 << rm.addr_width}-byte window")
        if not 0 <= reg.reset < (1 << 32):
            raise MapError(f"{where}: reset value does not fit 32 bits")
        if reg.secret and reg.access != "wo":
            raise MapError(f"{where}: a secret register must be write only (wo)")
        used = 0
        for j, f in enumerate(r.get("fields", [])):
            fname = _require(f, "name", str, f"{where}: field #{j + 1}")
            fwhere = f"{where}.{fname}"
            if not NAME.match(fname):
                raise MapError(f"{fwhere}: name must be UPPER_CASE letters, digits and '_'")
            if any(x.name == fname for x in reg.fields):
                raise MapError(f"{fwhere}: defined twice")
            msb, lsb = _bits(_require(f, "bits", str, fwhere), fwhere)
            fld = Field(fname, msb, lsb, _require(f, "desc", str, fwhere))
            if used & fld.mask:
                raise MapError(f"{fwhere}: bits {msb}:{lsb} overlap another field")
            used |= fld.mask
            reg.fields.append(fld)
        if reg.fields and reg.count != 1:
            raise MapError(f"{where}: an array register cannot have fields")
        rm.regs.append(reg)
    ordered = sorted(rm.regs, key=lambda x: x.offset)
    for a, b in zip(ordered, ordered[1:]):
        if b.offset < a.end:
            raise MapError(f"{source}: {b.name} at 0x{b.offset:03X} overlaps {a.name} "
                           f"(0x{a.offset:03X}..0x{a.end - 1:03X})")
    rm.regs = ordered
    return rm


def _hex(v: int, digits: int) -> str:
    return f"{v:0{digits}X}"


def gen_sv(rm: RegMap, source: str) -> str:
    aw = rm.addr_width
    d = (aw + 3) // 4
    out = [
        f"// card_regs_pkg: register offsets and fields of the {rm.title} ({rm.name}).",
        f"// GENERATED by tools/regmap.py from {source}: do not edit; regenerate.",
        "// Referenced as card_regs_pkg::NAME (Yosys 0.23 cannot parse `import`).",
        "`default_nettype none",
        "",
        "package card_regs_pkg;",
        "",
        "  /* verilator lint_off UNUSEDPARAM */",
        f"  localparam int unsigned AddrW = {aw};",
        f"  localparam logic [31:0] CardId = 32'h{_hex(rm.ident, 8)};",
        f"  localparam logic [15:0] VersionMajor = 16'd{rm.version_major};",
        f"  localparam logic [15:0] VersionMinor = 16'd{rm.version_minor};",
        "",
    ]
    for r in rm.regs:
        out.append(f"  // {r.name} ({r.access}{', secret' if r.secret else ''}"
                   f"{f', {r.count} words' if r.count > 1 else ''})")
        out.append(f"  localparam logic [{aw - 1}:0] {r.name} = {aw}'h{_hex(r.offset, d)};")
        if r.count > 1:
            out.append(f"  localparam int unsigned {r.name}_WORDS = {r.count};")
        if r.reset:
            out.append(f"  localparam logic [31:0] {r.name}_RESET = 32'h{_hex(r.reset, 8)};")
        for f in r.fields:
            out.append(f"  localparam int unsigned {r.name}_{f.name}_LSB = {f.lsb};")
            out.append(f"  localparam int unsigned {r.name}_{f.name}_W = {f.width};")
    out += ["  /* verilator lint_on UNUSEDPARAM */", "", "endpackage", "", "`default_nettype wire",
            ""]
    return "\n".join(out)


_CPP_ACCESS = {"ro": "kRo", "rw": "kRw", "wo": "kWo", "w1s": "kW1s", "rw1c": "kRw1c"}


def _camel(name: str) -> str:
    return "".join(p.capitalize() for p in name.lower().split("_"))


def gen_cpp(rm: RegMap, source: str) -> str:
    out = [
        f"// Register map of the {rm.title} ({rm.name}), for the drivers.",
        f"// GENERATED by tools/regmap.py from {source}: do not edit; regenerate.",
        "#pragma once",
        "",
        "#include <array>",
        "#include <cstdint>",
        "#include <string_view>",
        "",
        "namespace waferprov::card::regs {",
        "",
        f"inline constexpr uint32_t kCardId = 0x{_hex(rm.ident, 8)};",
        f"inline constexpr uint16_t kMapVersionMajor = {rm.version_major};",
        f"inline constexpr uint16_t kMapVersionMinor = {rm.version_minor};",
        f"inline constexpr uint32_t kWindowBytes = {1 << rm.addr_width};",
        "",
        "enum class Access { kRo, kRw, kWo, kW1s, kRw1c };",
        "",
        "// A bit field: (value >> lsb) & mask.",
        "struct Field {",
        "    uint32_t lsb;",
        "    uint32_t width;",
        "    constexpr uint32_t mask() const { return width >= 32 ? ~0u : (1u << width) - 1u; }",
        "    constexpr uint32_t get(uint32_t reg) const { return (reg >> lsb) & mask(); }",
        "    constexpr uint32_t put(uint32_t v) const { return (v & mask()) << lsb; }",
        "};",
        "",
    ]
    for r in rm.regs:
        c = "k" + _camel(r.name)
        out += textwrap.wrap(f"{r.name}: {r.desc}", width=97, initial_indent="// ",
                             subsequent_indent="// ")
        out.append(f"inline constexpr uint32_t {c} = 0x{_hex(r.offset, 3)};")
        if r.count > 1:
            out.append(f"inline constexpr uint32_t {c}Words = {r.count};")
        for f in r.fields:
            out.append(f"inline constexpr Field {c}{_camel(f.name)}{{{f.lsb}, {f.width}}};")
    out += [
        "",
        "// Every register, for checks that walk the whole map.",
        "struct Register {",
        "    std::string_view name;",
        "    uint32_t offset;",
        "    uint32_t words;",
        "    Access access;",
        "    bool secret;",
        "    uint32_t reset;",
        "};",
        f"inline constexpr std::array<Register, {len(rm.regs)}> kRegisters{{{{",
    ]
    for r in rm.regs:
        out.append(f"    {{\"{r.name}\", 0x{_hex(r.offset, 3)}, {r.count}, "
                   f"Access::{_CPP_ACCESS[r.access]}, {'true' if r.secret else 'false'}, "
                   f"0x{_hex(r.reset, 8)}}},")
    out += ["}};", "", "}  // namespace waferprov::card::regs", ""]
    return "\n".join(out)


def gen_doc(rm: RegMap, source: str) -> str:
    out = [
        f"# Register map: {rm.title}",
        "",
        f"<!-- GENERATED by tools/regmap.py from {source}: do not edit; regenerate. -->",
        "",
        f"AXI4-Lite, {rm.data_width}-bit data, byte addresses, a {1 << rm.addr_width}-byte "
        f"window. ID = `0x{_hex(rm.ident, 8)}`, map version "
        f"{rm.version_major}.{rm.version_minor}. The source is `{source}`; the SystemVerilog "
        f"package (`{rm.outputs['sv_package']}`), the drivers' header "
        f"(`{rm.outputs['cpp_header']}`) and this page are generated from it, and the test "
        "`card_regmap_up_to_date` fails when one is stale.",
        "",
        "Access: " + "; ".join(f"`{k}` {v}" for k, v in ACCESS.items()) + ". "
        "An unmapped address reads 0 with an OKAY response and sets `ERR.BUS`. Multi-word "
        "values are byte strings: word k holds bytes 4k..4k+3, byte 4k in bits [31:24].",
        "",
        "Reset `-`: the value comes from the design (state, capabilities) or reads 0.",
        "",
        "| offset | name | access | words | reset | description |",
        "|---|---|---|---|---|---|",
    ]
    for r in rm.regs:
        acc = r.access + (", secret" if r.secret else "")
        rng = f"0x{_hex(r.offset, 3)}" + (f"..0x{_hex(r.end - 1, 3)}" if r.count > 1 else "")
        reset = f"0x{_hex(r.reset, 8)}" if r.reset or r.access in ("rw", "rw1c") else "-"
        out.append(f"| {rng} | `{r.name}` | {acc} | {r.count} | {reset} | {r.desc} |")
    for r in rm.regs:
        if not r.fields:
            continue
        out += ["", f"## {r.name} (0x{_hex(r.offset, 3)}, {r.access})", "", r.desc, "",
                "| bits | field | description |", "|---|---|---|"]
        for f in r.fields:
            bits = f"{f.msb}" if f.msb == f.lsb else f"{f.msb}:{f.lsb}"
            out.append(f"| {bits} | `{f.name}` | {f.desc} |")
    out.append("")
    return "\n".join(out)


def outputs(rm: RegMap, source: str) -> dict[str, str]:
    return {
        rm.outputs["sv_package"]: gen_sv(rm, source),
        rm.outputs["cpp_header"]: gen_cpp(rm, source),
        rm.outputs["doc"]: gen_doc(rm, source),
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("map", type=Path, help="the TOML register map")
    ap.add_argument("--check", action="store_true", help="report stale files, write nothing")
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                    help="repository root the output paths are relative to")
    args = ap.parse_args(argv)
    try:
        text = args.map.read_text()
    except OSError as e:
        print(f"regmap: cannot read {args.map}: {e.strerror}", file=sys.stderr)
        return 2
    source = args.map.resolve().relative_to(args.root.resolve()).as_posix() \
        if args.map.resolve().is_relative_to(args.root.resolve()) else args.map.name
    try:
        rm = parse(text, source)
    except MapError as e:
        print(f"regmap: {e}", file=sys.stderr)
        return 2
    stale = []
    for rel, content in outputs(rm, source).items():
        path = args.root / rel
        current = path.read_text() if path.exists() else None
        if current == content:
            continue
        if args.check:
            stale.append(rel)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            print(f"regmap: wrote {rel}")
    if stale:
        for rel in stale:
            print(f"regmap: {rel} is stale: run tools/regmap.py {source}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
