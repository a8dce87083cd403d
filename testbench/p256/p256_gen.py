#!/usr/bin/env python3
"""Generator for the P-256 key-generation engine's ROMs (python3, standard library only).

Writes two files that are committed under rtl/p256/ and read by rtl/p256/p256_keygen.sv:

  p256_base_table.mem  1024 lines of 128 hex digits, {X, Y} of the fixed-window table:
                     line 16*w + j holds j * 16^w * G (w = 0..63, j = 1..15); j = 0 holds
                     (0, 1), which the engine pairs with Z = 0 to form the point at infinity.
  p256_ucode.sv      the micro-code ROM: the complete point addition (Renes-Costello-Batina
                     2016, Algorithm 4, a = -3) at address 0 and the Fermat inversion plus the
                     affine conversion at address 64, list-scheduled for the engine's
                     latencies, register-allocated for the 16-entry file, each instruction
                     with the wait that the static schedule gives it.

Before writing anything the script runs the micro-code in a timed Python model of the engine
(same register file, same operation semantics, operands read at the issue edge see only the
results that have landed) and checks point additions, including the exceptional cases, and
whole key generations against a reference double-and-add.

  p256_gen.py [--outdir DIR]   write both files (default: <repo>/rtl/p256)
  p256_gen.py --check          exit 1 if the committed files differ from what would be written
"""

import argparse
import os
import random
import sys

P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5

WINDOWS = 64          # 4-bit windows over the 256-bit scalar
ENTRIES = 16          # entries per window (entry 0 = infinity)
INV_ENTRY = 64        # micro-code address of the inversion routine
# Timing of the engine (p256_keygen.sv, p256_mul.sv, p256_addsub.sv), counted from the clock edge
# at which an instruction issues (its operands are latched into the operand registers):
MUL_LAT = 15   # a multiplication's result can be read by an instruction issuing 15 edges later
AS_LAT = 3     # an addition's or subtraction's result, 3 edges later
MUL_II = 4     # the multiplier takes a new operation every 4 cycles (4 digits of 64 bits)
WAIT_MAX = 31  # 5-bit wait field
TABLE_REGS = (3, 4, 5)  # loaded with the next table point at the `end` edge

# Register file: 0..2 accumulator (X1, Y1, Z1), 3..5 table point (X2, Y2, Z2), 6..14 scratch,
# 15 reads as the curve constant b (read-only).
REG_B = 15
OPS = {"end": 0, "mul": 1, "add": 2, "sub": 3}


# --- reference affine arithmetic (None = point at infinity) --------------------------------
def aff_add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2:
        if (y1 + y2) % P == 0:
            return None
        lam = (3 * x1 * x1 - 3) * pow(2 * y1, -1, P) % P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (lam * lam - x1 - x2) % P
    return (x3, (lam * (x1 - x3) - y1) % P)


def aff_mul(k, pt):
    acc = None
    for bit in bin(k)[2:]:
        acc = aff_add(acc, acc)
        if bit == "1":
            acc = aff_add(acc, pt)
    return acc


# --- micro-code assembly with register allocation ------------------------------------------
def allocate(prog, pinned_in, pinned_out, free_regs):
    """prog: list of (op, dst, a, b[, rep]) over symbolic names. Values are renamed to SSA,
    inputs sit in pinned_in registers, the final definition of each name in pinned_out lands
    in its register, everything else is allocated from free_regs as values die."""
    loc = dict(pinned_in)  # name -> register currently holding its live value
    # last use index of each (name, definition) pair
    defs_at = {}
    version = {n: 0 for n in pinned_in}
    uses = []
    for i, ins in enumerate(prog):
        op, dst, a, b = ins[:4]
        uses.append([(x, version[x]) for x in (a, b) if x not in ("B",)])
        version[dst] = version.get(dst, 0) + 1
        defs_at[(dst, version[dst])] = i
    last_def = {n: v for n, v in version.items()}
    last_use = {}
    for i, us in enumerate(uses):
        for u in us:
            last_use[u] = i
    version = {n: 0 for n in pinned_in}
    free = list(free_regs)
    reserved = {r for n, r in pinned_out.items() if n not in pinned_in or pinned_in[n] != r}
    free = [r for r in free if r not in reserved and r not in pinned_in.values()]
    out = []
    for i, ins in enumerate(prog):
        op, dst, a, b = ins[:4]
        rep = ins[4] if len(ins) > 4 else 0
        ra = REG_B if a == "B" else loc[a]
        rb = REG_B if b == "B" else loc[b]
        # operands whose value dies here free their register (the engine reads before writing)
        for u in uses[i]:
            if last_use.get(u) == i and not (u[0] in pinned_out and u[1] == last_def.get(u[0])):
                r = loc[u[0]]
                if r not in reserved and r not in free:
                    free.append(r)
        version[dst] = version.get(dst, 0) + 1
        if rep:
            # a repeated instruction squares in place: it must overwrite its own operand
            assert a == b == dst and last_use.get((a, version[dst] - 1)) == i
            rd = ra
            free.remove(rd)
        elif dst in pinned_out and version[dst] == last_def[dst]:
            rd = pinned_out[dst]
        else:
            if not free:
                raise RuntimeError("out of registers at %d" % i)
            rd = free.pop(0)
        # a value never used again that is not an output still needs a register briefly
        if (dst, version[dst]) not in last_use and not (dst in pinned_out and
                                                          version[dst] == last_def[dst]):
            free.append(rd)
        loc[dst] = rd
        out.append((op, rd, ra, rb, rep))
    for n, r in pinned_out.items():
        assert loc[n] == r, (n, loc[n], r)
    return out


def add_routine():
    """RCB 2016 Algorithm 4 (complete addition, a = -3): 12M + 2m_b + 29a."""
    s = [
        ("mul", "t0", "X1", "X2"), ("mul", "t1", "Y1", "Y2"), ("mul", "t2", "Z1", "Z2"),
        ("add", "t3", "X1", "Y1"), ("add", "t4", "X2", "Y2"), ("mul", "t3", "t3", "t4"),
        ("add", "t4", "t0", "t1"), ("sub", "t3", "t3", "t4"), ("add", "t4", "Y1", "Z1"),
        ("add", "X3", "Y2", "Z2"), ("mul", "t4", "t4", "X3"), ("add", "X3", "t1", "t2"),
        ("sub", "t4", "t4", "X3"), ("add", "X3", "X1", "Z1"), ("add", "Y3", "X2", "Z2"),
        ("mul", "X3", "X3", "Y3"), ("add", "Y3", "t0", "t2"), ("sub", "Y3", "X3", "Y3"),
        ("mul", "Z3", "B", "t2"), ("sub", "X3", "Y3", "Z3"), ("add", "Z3", "X3", "X3"),
        ("add", "X3", "X3", "Z3"), ("sub", "Z3", "t1", "X3"), ("add", "X3", "t1", "X3"),
        ("mul", "Y3", "B", "Y3"), ("add", "t1", "t2", "t2"), ("add", "t2", "t1", "t2"),
        ("sub", "Y3", "Y3", "t2"), ("sub", "Y3", "Y3", "t0"), ("add", "t1", "Y3", "Y3"),
        ("add", "Y3", "t1", "Y3"), ("add", "t1", "t0", "t0"), ("add", "t0", "t1", "t0"),
        ("sub", "t0", "t0", "t2"), ("mul", "t1", "t4", "Y3"), ("mul", "t2", "t0", "Y3"),
        ("mul", "Y3", "X3", "Z3"), ("add", "Y3", "Y3", "t2"), ("mul", "X3", "X3", "t3"),
        ("sub", "X3", "X3", "t1"), ("mul", "Z3", "Z3", "t4"), ("mul", "t1", "t3", "t0"),
        ("add", "Z3", "Z3", "t1"),
    ]
    ssa, final = to_ssa(s, ["X1", "Y1", "Z1", "X2", "Y2", "Z2"])
    ssa = [ins for ins, _t in schedule(ssa)]
    return assign_waits(allocate(ssa, {"X1": 0, "Y1": 1, "Z1": 2, "X2": 3, "Y2": 4, "Z2": 5},
                                 {final["X3"]: 0, final["Y3"]: 1, final["Z3"]: 2},
                                 range(3, 15)))


def to_ssa(prog, inputs):
    """Renames every definition to a fresh name so that only true dependencies remain."""
    cur = {n: n for n in inputs}
    cur["B"] = "B"
    out = []
    for k, (op, dst, a, b) in enumerate(prog):
        name = "%s_%d" % (dst, k)
        out.append((op, name, cur[a], cur[b]))
        cur[dst] = name
    return out, cur


def schedule(prog):
    """List scheduling for the engine's in-order, statically timed issue: at most one
    instruction per cycle, one multiplier that takes a new operation every MUL_II cycles,
    results readable MUL_LAT (multiplication) or AS_LAT (addition) cycles after issue. Priority:
    the longest latency-weighted path to the end of the routine. Returns (instruction, issue
    cycle) pairs in issue order."""
    def cost(op):
        return MUL_LAT if op == "mul" else AS_LAT
    users = {ins[1]: [] for ins in prog}
    for ins in prog:
        for x in ins[2:4]:
            if x in users:
                users[x].append(ins)
    prio = {}
    for ins in reversed(prog):
        prio[ins[1]] = cost(ins[0]) + max((prio[u[1]] for u in users[ins[1]]), default=0)
    avail = {}   # name -> first cycle it can be read
    todo = list(prog)
    out = []
    t, mul_free = 0, 0
    while todo:
        ready = [ins for ins in todo
                 if all(avail.get(x, 0) <= t for x in ins[2:4])
                 and all(x in avail or x not in users for x in ins[2:4])]
        muls = [i for i in ready if i[0] == "mul" and mul_free <= t]
        adds = [i for i in ready if i[0] != "mul"]
        pick = max(muls + adds, key=lambda i: prio[i[1]], default=None)
        if pick is not None:
            todo.remove(pick)
            out.append((pick, t))
            avail[pick[1]] = t + cost(pick[0])
            if pick[0] == "mul":
                mul_free = t + MUL_II
        t += 1
    return out


def timed_routine(code):
    """Issue cycles of a routine (list of (op, dst, a, b, rep, wait), ending with 'end'),
    starting at cycle 0: returns (issues, end_edge) where issues lists (cycle, instruction)
    for every execution, repeats included."""
    t, issues = 0, []
    for ins in code:
        op, rep, wait = ins[0], ins[4], ins[5]
        if op == "end":
            return issues, t
        for _ in range(rep + 1):
            issues.append((t, ins))
            t += 1 + wait
    raise AssertionError("routine without end")


def assign_waits(code):
    """code: allocated (op, dst, a, b, rep) in issue order. Issues every execution as early as
    the engine allows (operands readable, multiplier free, a write never overtaking an older
    write to the same register; repeated squarings chain at MUL_LAT), sets each instruction's
    wait field (cycles between one execution's issue and the next issue, minus one) and appends
    the end, placed at the first edge at which every write has landed (the table registers
    strictly before it: the end edge loads the next table point into them)."""
    avail = [0] * 16    # first issue cycle that reads the register's newest value
    landed = [-1] * 16  # edge of the newest pending write
    t, mul_free, times = 0, 0, []
    for op, d, a, b, rep in code:
        lat = MUL_LAT if op == "mul" else AS_LAT
        first = None
        for _ in range(rep + 1):
            t = max(t, avail[a], avail[b], landed[d] - lat + 1)
            if op == "mul":
                t = max(t, mul_free)
                mul_free = t + MUL_II
            first = t if first is None else first
            avail[d] = t + lat
            landed[d] = t + lat
            last = t
            t += 1
        if rep:
            assert MUL_LAT >= MUL_II and op == "mul" and a == b == d
            t = last + MUL_LAT  # the wait field repeats: the next issue comes as late
        times.append(first)
    end = max([t] + [landed[r] + (1 if r in TABLE_REGS else 0) for r in range(16)])
    out = []
    for k, (op, d, a, b, rep) in enumerate(code):
        if rep:
            wait = MUL_LAT - 1
            nxt = times[k + 1] if k + 1 < len(code) else end
            assert nxt == times[k] + (rep + 1) * MUL_LAT, (k, nxt, times[k])
        else:
            nxt = times[k + 1] if k + 1 < len(code) else end
            wait = nxt - times[k] - 1
        assert 0 <= wait <= WAIT_MAX, (k, wait)
        out.append((op, d, a, b, rep, wait))
    return out + [("end", 0, 0, 0, 0, 0)]


def routine_cycles(code):
    """Cycles a routine occupies: from its first issue to the edge after its end."""
    _, end = timed_routine(code)
    return end + 1


def inv_routine():
    """z^(p-2) with the usual 255 S + 12 M chain, then x = X/Z, y = Y/Z.
    Each block 'x_k = x_j^(2^s) * x_i' is one out-of-place squaring, one in-place squaring
    repeated s-1 times (rep field) and one multiplication."""
    s = []

    def block(dst, src, sq, by):
        s.append(("mul", dst, src, src))
        if sq > 1:
            s.append(("mul", dst, dst, dst, sq - 2))  # rep = extra executions
        s.append(("mul", dst, dst, by))

    block("x2", "Z", 1, "Z")
    block("x3", "x2", 1, "Z")
    block("x6", "x3", 3, "x3")
    block("x12", "x6", 6, "x6")
    block("x15", "x12", 3, "x3")
    block("x30", "x15", 15, "x15")
    block("x32", "x30", 2, "x2")
    block("t", "x32", 32, "Z")
    block("t", "t", 128, "x32")
    block("t", "t", 32, "x32")
    block("t", "t", 30, "x30")
    block("t", "t", 2, "Z")
    s.append(("mul", "x", "X", "t"))
    s.append(("mul", "y", "Y", "t"))
    return assign_waits(allocate(s, {"X": 0, "Y": 1, "Z": 2}, {"x": 0, "y": 1}, range(3, 15)))


# --- Python model of the engine ------------------------------------------------------------
def run_ucode(code, pc, rf):
    """Runs one routine from pc with the engine's timing: an instruction reads its operands at
    its issue edge and sees only the writes that have landed by then (a result lands MUL_LAT
    or AS_LAT edges after its issue). Checks the schedule's rules: the multiplier's initiation
    interval, no two writes to one register in one edge, every write landed by the end edge
    (the table registers before it). Returns the cycles the routine took (issue of its first
    instruction to the edge after its end)."""
    pending = []  # (edge, register, value)
    t, mul_free = 0, 0

    def land(upto):
        for w, r, v in sorted(p for p in pending if p[0] <= upto):
            rf[r] = v
        pending[:] = [p for p in pending if p[0] > upto]

    while True:
        op, d, a, b, rep, wait = code[pc]
        if op == "end":
            for w, r, _v in pending:
                assert w <= t and (r not in TABLE_REGS or w < t), (pc, w, r, t)
            land(t)
            return t + 1
        for _ in range(rep + 1):
            land(t)
            va = B if a == REG_B else rf[a]
            vb = B if b == REG_B else rf[b]
            if op == "mul":
                assert t >= mul_free, ("multiplier busy", pc, t)
                mul_free = t + MUL_II
                v, lat = va * vb % P, MUL_LAT
            elif op == "add":
                v, lat = (va + vb) % P, AS_LAT
            else:
                v, lat = (va - vb) % P, AS_LAT
            assert all(not (w == t + lat and r == d) for w, r, _v in pending), (pc, t)
            pending.append((t + lat, d, v))
            t += 1 + wait
        pc += 1


def build_ucode():
    add = add_routine()
    inv = inv_routine()
    assert len(add) <= INV_ENTRY, len(add)
    code = add + [("end", 0, 0, 0, 0, 0)] * (INV_ENTRY - len(add)) + inv
    return code, add, inv


def build_rom():
    rom = []
    base = (GX, GY)
    for _w in range(WINDOWS):
        acc = None
        for j in range(ENTRIES):
            rom.append((0, 1) if acc is None else acc)
            acc = aff_add(acc, base)
        base = aff_mul(16, base)
    return rom


def model_keygen(code, rom, d):
    rf = [0] * 16
    rf[0], rf[1], rf[2] = 0, 1, 0
    for w in range(WINDOWS):
        j = (d >> (4 * w)) & 15
        rf[3], rf[4] = rom[ENTRIES * w + j]
        rf[5] = 1 if j else 0
        run_ucode(code, 0, rf)
    run_ucode(code, INV_ENTRY, rf)
    return rf[0], rf[1]


def self_test(code, rom):
    rng = random.Random(1)
    # point additions, including P + P, P + (-P), O + P, P + O, O + O
    def proj(pt, z=None):
        if pt is None:
            return (0, 1, 0)
        z = z or rng.randrange(1, P)
        return (pt[0] * z % P, pt[1] * z % P, z)

    def aff(q):
        if q[2] == 0:
            return None
        zi = pow(q[2], -1, P)
        return (q[0] * zi % P, q[1] * zi % P)

    g = (GX, GY)
    pts = [None, g, aff_mul(2, g), aff_mul(12345, g), aff_mul(N - 1, g)]
    for p1 in pts:
        for p2 in pts:
            rf = [0] * 16
            rf[0:3] = proj(p1)
            q2 = (0, 1, 0) if p2 is None else (p2[0], p2[1], 1)
            rf[3:6] = q2
            run_ucode(code, 0, rf)
            assert aff(tuple(rf[0:3])) == aff_add(p1, p2), (p1, p2)
    for k in range(WINDOWS * ENTRIES):
        w, j = divmod(k, ENTRIES)
        if j and k % 97 == 1:
            assert rom[k] == aff_mul(j << (4 * w), g)
    for d in [1, 2, 3, N - 1, N - 2, (N - 1) // 2, 1 << 255] + [rng.randrange(1, N)
                                                                 for _ in range(8)]:
        assert model_keygen(code, rom, d) == aff_mul(d, g), hex(d)


# --- writers -------------------------------------------------------------------------------
def rom_text(rom):
    return "".join("%064x%064x\n" % xy for xy in rom)


def ucode_text(code, add, inv):
    nmul = sum(1 + c[4] for c in inv if c[0] == "mul")
    lines = [
        "// Generated by testbench/p256/p256_gen.py -- do not edit; rerun the script instead.",
        "//",
        "// Micro-code ROM of the P-256 key-generation engine. Word layout:",
        "//   [26:25] op (0 end, 1 mul, 2 add, 3 sub)  [24:21] dst  [20:17] src a  [16:13] src b",
        "//   [12:5] rep (the instruction runs rep + 1 times; used for squarings)",
        "//   [4:0] wait (cycles between an execution's issue and the next issue, minus one)",
        "// The schedule is static: the engine issues exactly as the wait fields say, with no",
        "// interlocks; the generator placed every instruction so that its operands have landed",
        "// (multiplication %d cycles, addition %d cycles after issue; multiplier initiation"
        % (MUL_LAT, AS_LAT),
        "// interval %d) and checked that in a timed model of the engine." % MUL_II,
        "// Register 15 reads as the curve constant b. Address 0: complete point addition",
        "// (RCB 2016 Alg. 4, %d instructions, %d multiplications, %d cycles). Address %d:"
        % (len(add) - 1, sum(1 for c in add if c[0] == "mul"), routine_cycles(add), INV_ENTRY),
        "// inversion by Fermat plus affine conversion (%d instructions, %d multiplications,"
        % (len(inv) - 1, nmul),
        "// %d cycles)." % routine_cycles(inv),
        "`default_nettype none",
        "",
        "module p256_ucode (",
        "  input  wire logic [6:0]  addr_i,",
        "  output      logic [26:0] instr_o",
        ");",
        "  always_comb begin",
        "    unique case (addr_i)",
    ]
    for i, (op, d, a, b, rep, wait) in enumerate(code):
        if op == "end":
            continue
        lines.append("      7'd%d: instr_o = {2'd%d, 4'd%d, 4'd%d, 4'd%d, 8'd%d, 5'd%d};"
                     % (i, OPS[op], d, a, b, rep, wait))
    lines += [
        "      default: instr_o = '0;",
        "    endcase",
        "  end",
        "endmodule",
        "",
        "`default_nettype wire",
        "",
    ]
    return "\n".join(lines)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outdir", default=os.path.join(here, "..", "..", "rtl", "p256"))
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    code, add, inv = build_ucode()
    rom = build_rom()
    self_test(code, rom)
    files = {"p256_base_table.mem": rom_text(rom), "p256_ucode.sv": ucode_text(code, add, inv)}
    stale = []
    for name, text in files.items():
        path = os.path.join(args.outdir, name)
        if args.check:
            try:
                with open(path, encoding="ascii") as f:
                    if f.read() != text:
                        stale.append(name)
            except FileNotFoundError:
                stale.append(name)
        else:
            with open(path, "w", encoding="ascii") as f:
                f.write(text)
    if stale:
        print("stale generated files (rerun p256_gen.py):", ", ".join(stale))
        return 1
    print("p256_gen: self-test passed; %s %s" % ("checked" if args.check else "wrote",
                                                 ", ".join(files)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
