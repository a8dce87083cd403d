#!/usr/bin/env bash
# The Debian packages as a floor installs them: build them with CPack from the build tree,
# lintian finds no errors, dpkg installs all three into a throwaway root, and from that root
# `waferprov --version`, `waferprov kat` and `waferprov plan` (on the shipped card calibration) run, the C example builds against the installed -dev
# package with pkg-config, and it provisions dies through the installed `waferprov serve`.
#   tools/tests/package_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/waferprov-pkg-XXXXXX")
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "package_test: $*" >&2; exit 1; }

version=$(sed -n 's/^project(waferprov VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[ -n "$version" ] || fail "cannot read the project version"

# 1. Packages.
cpack --config "$build/CPackConfig.cmake" -B "$work/pkg" > "$work/cpack.log" 2>&1 ||
    { cat "$work/cpack.log"; fail "cpack failed"; }
debs=("$work"/pkg/*.deb)
[ ${#debs[@]} -eq 3 ] || fail "expected 3 packages, got ${#debs[@]}: ${debs[*]}"
for p in waferprov libwaferprov-ate1 libwaferprov-ate-dev; do
    [ -f "$work/pkg/${p}_${version}_amd64.deb" ] || fail "no package $p"
done

# 2. lintian: no errors (warnings are listed, with reasons, in docs/operations.md).
lintian --fail-on error --tag-display-limit 0 "${debs[@]}" > "$work/lintian.log" 2>&1 ||
    { cat "$work/lintian.log"; fail "lintian reports errors"; }
grep -E '^[EW]: ' "$work/lintian.log" || true

# 3. Install into a throwaway root with dpkg --root (maintainer scripts run outside a chroot,
#    with DPKG_ROOT set, as dpkg does for --force-script-chrootless).
root="$work/root"
mkdir -p "$root/etc" "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
dpkg --root="$root" --log=/dev/null --force-depends --force-script-chrootless --force-not-root \
    -i "${debs[@]}" > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i failed"; }
dpkg --root="$root" -s waferprov libwaferprov-ate1 libwaferprov-ate-dev | grep -q "^Status: install ok installed" ||
    fail "dpkg does not list the packages as installed"
grep -q '^waferprov:' "$root/etc/passwd" || fail "the postinst did not create the waferprov user"

# 4. The unit template, as installed, for an instance: systemd-analyze verify says nothing
#    (ExecStart pointed at the installed binary, which is not under /usr/bin here), and the
#    offline security review rates its exposure.
unit="$root/usr/lib/systemd/system/waferprov-serve@.service"
[ -f "$unit" ] || fail "the unit template is not installed"
mkdir -p "$work/units"
sed "s|/usr/bin/waferprov|$root/usr/bin/waferprov|" "$unit" > "$work/units/waferprov-serve@LOT-A.service"
if ! out=$(systemd-analyze verify "$work/units/waferprov-serve@LOT-A.service" 2>&1) || [ -n "$out" ]; then
    echo "$out"; fail "systemd-analyze verify complains about the unit"
fi
exposure=$(systemd-analyze security --offline=yes "$work/units/waferprov-serve@LOT-A.service" 2>&1 |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "systemd-analyze security gave no exposure level"
echo "package_test: unit exposure level $exposure (systemd-analyze security --offline)"

# 5. From the root.
libdir=$(dirname "$(find "$root/usr/lib" -name 'libwaferprov_ate.so.1' | head -1)")
[ -n "$libdir" ] || fail "libwaferprov_ate.so.1 is not installed"
export LD_LIBRARY_PATH="$libdir"
wp="$root/usr/bin/waferprov"
[ "$("$wp" --version)" = "waferprov $version" ] || fail "waferprov --version: $("$wp" --version)"
"$wp" kat > "$work/kat.log" 2>&1 || { cat "$work/kat.log"; fail "kat from the installed vectors failed"; }
grep -q "$root/usr/share/waferprov/vectors" "$work/kat.log" ||
    { cat "$work/kat.log"; fail "kat did not use the installed vectors"; }

# `plan` from the root reads the card calibration the package ships, not the build tree's.
cat > "$work/floor.toml" <<'FLOOR'
[floor]
testers = 1
sites = 16
wafers_per_tester = 1
index_time_s = 0.5
program_time_s = 0.1
wafer_change_s = 10

[wafer]
diameter_mm = 50
die_mm = [5.0, 5.0]

[hosts]
count = 1

[cards]
per_host = 1
FLOOR
"$wp" plan "$work/floor.toml" > "$work/plan.log" 2>&1 || { cat "$work/plan.log"; fail "plan from the root failed"; }
grep -q "card calibration $root/usr/share/waferprov/card_calibration.toml" "$work/plan.log" ||
    { cat "$work/plan.log"; fail "plan did not use the installed card calibration"; }

pc="$libdir/pkgconfig"
flags=$(PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_LIBDIR="$pc" pkg-config --cflags --libs waferprov-ate) ||
    fail "pkg-config waferprov-ate"
# A sanitizer build (tools/test.sh --sanitize) ships a library that needs the ASan runtime
# loaded first, so the example is built with the same sanitizers.
sanitize=()
if readelf -d "$libdir/libwaferprov_ate.so.1" | grep -q 'libasan'; then
    sanitize=(-fsanitize=address,undefined)
fi
cc -std=c11 -Wall -Werror "${sanitize[@]}" "$src/ate/examples/example_test_program.c" $flags -o "$work/example" ||
    fail "the example does not build against the installed -dev package"

"$wp" job init --out "$work/job" --id PKG --tester ATE-1 > "$work/job.log" 2>&1 ||
    { cat "$work/job.log"; fail "job init"; }
# The output files exist before the loop reads them: the background job opens them itself, and
# a sed on a file not there yet would end the script (set -e, pipefail).
: > "$work/serve.out"
: > "$work/serve.err"
"$wp" serve --job "$work/job/job.toml" --bind tcp://127.0.0.1:0 > "$work/serve.out" 2> "$work/serve.err" &
server_pid=$!
endpoint=""
for _ in $(seq 1 300); do
    endpoint=$(sed -n 's/.*listening on \(tcp:[^ ]*\).*/\1/p' "$work/serve.out" | head -1)
    [ -n "$endpoint" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.err"; fail "serve exited"; }
    sleep 0.1
done
[ -n "$endpoint" ] || fail "serve did not start listening"
"$work/example" "$endpoint" "$work/job/server.pub" "$work/job/tester-ATE-1.key" PKG ATE-1 \
    LOT-PKG 1 > "$work/example.log" 2>&1 || { cat "$work/example.log" "$work/serve.err"; fail "the example failed"; }
grep -q "done: 3 touchdowns, 0 refusals" "$work/example.log" || { cat "$work/example.log"; fail "example output"; }
kill -TERM "$server_pid"
wait "$server_pid" || fail "serve did not exit 0 on SIGTERM"
server_pid=""
echo "package_test: ok (waferprov $version; $(grep -c '^W: ' "$work/lintian.log" || true) lintian warnings)"
