#!/usr/bin/env python3
"""Checks waferprov_ate.dll against libwaferprov_ate.so: the DLL's export table holds exactly
the wp_ate_* functions the Linux library exports (its version script's WAFERPROV_ATE_1 node),
the import library and the .def file name the same functions, and the DLL imports only
Windows' own DLLs (libstdc++, libgcc, winpthread, libzmq and libsodium are inside it).

  check_dll_exports.py --objdump OBJDUMP --nm NM --mingw-nm MINGW_NM --dll DLL
                       --import-lib LIB --def DEF --linux-so SO

Exit status 0 when everything holds; 1 with one line per finding otherwise."""
import argparse
import os
import re
import subprocess
import sys

# What a stock Windows 10/11 (and Wine) provides; anything else would have to ship beside the DLL.
SYSTEM_DLLS = {"kernel32.dll", "msvcrt.dll", "ws2_32.dll", "iphlpapi.dll", "advapi32.dll",
               "user32.dll", "bcrypt.dll", "ntdll.dll", "shell32.dll", "ole32.dll"}


def run(argv):
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


def linux_exports(nm, so):
    names = set()
    for line in run([nm, "-D", "--defined-only", so]).splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] != "A":  # "A": the version node itself
            names.add(parts[2].split("@")[0])
    return names


def dll_table(objdump, dll):
    text = run([objdump, "-p", dll])
    exports, imports, dll_name = set(), set(), None
    in_names = False
    for line in text.splitlines():
        m = re.match(r"^\s*Name\s+[0-9a-fA-F]+\s+(\S+)$", line)
        if m and dll_name is None:
            dll_name = m.group(1)
        if "[Ordinal/Name Pointer] Table" in line:
            in_names = True
            continue
        if in_names:
            m = re.match(r"^\s*\[\s*\d+\]\s+(\S+)", line)
            if m:
                exports.add(m.group(1))
                continue
            in_names = False
        m = re.match(r"^\s*DLL Name:\s*(\S+)", line)
        if m:
            imports.add(m.group(1))
    return exports, imports, dll_name


def import_lib_names(mingw_nm, lib):
    names = set()
    for line in run([mingw_nm, lib]).splitlines():
        m = re.match(r"^[0-9a-fA-F]+\s+I\s+__imp_(\S+)$", line)
        if m:
            names.add(m.group(1))
    return names


def def_names(path):
    names, in_exports = set(), False
    with open(path, encoding="ascii") as f:
        for line in f:
            if line.strip().upper() == "EXPORTS":
                in_exports = True
            elif in_exports and line.strip():
                names.add(line.split()[0].split("@")[0])
    return names


def compare(what, got, want, problems):
    if got != want:
        missing, extra = sorted(want - got), sorted(got - want)
        problems.append(f"{what}: missing {missing or 'nothing'}, extra {extra or 'nothing'}")


def main():
    ap = argparse.ArgumentParser()
    for opt in ("objdump", "nm", "mingw-nm", "dll", "import-lib", "linux-so"):
        ap.add_argument("--" + opt, required=True)
    ap.add_argument("--def", dest="def_file", required=True)
    a = ap.parse_args()
    problems = []
    want = linux_exports(a.nm, a.linux_so)
    if not want or any(not n.startswith("wp_ate_") for n in want):
        problems.append(f"{a.linux_so} exports {sorted(want)}: expected wp_ate_* only")
    exports, imports, dll_name = dll_table(a.objdump, a.dll)
    compare(f"{a.dll} export table", exports, want, problems)
    if dll_name != "waferprov_ate.dll":
        problems.append(f"{a.dll}: export directory names {dll_name!r}, not waferprov_ate.dll")
    foreign = sorted(i for i in imports if i.lower() not in SYSTEM_DLLS)
    if foreign:
        problems.append(f"{a.dll} imports {foreign}: not Windows' own DLLs")
    if not os.path.isfile(a.import_lib):
        problems.append(f"import library {a.import_lib} does not exist")
    else:
        compare(f"import library {a.import_lib}", import_lib_names(a.mingw_nm, a.import_lib),
                want, problems)
    if not os.path.isfile(a.def_file):
        problems.append(f"{a.def_file} does not exist")
    else:
        compare(f"{a.def_file}", def_names(a.def_file), want, problems)
    for p in problems:
        print("FAIL:", p)
    if not problems:
        print(f"{a.dll}: exports the {len(want)} wp_ate_* functions of {a.linux_so} and nothing "
              f"else; imports {sorted(imports)}; import library and .def agree")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
