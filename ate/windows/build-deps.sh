#!/usr/bin/env bash
# Builds libsodium and libzmq (CURVE through libsodium) as static libraries for
# x86_64-w64-mingw32 from Debian's own source packages, into a cache under the build directory:
#
#   ate/windows/build-deps.sh CACHE_DIR
#
# CACHE_DIR/prefix receives include/ and lib/ (libsodium.a, libzmq.a). A finished build leaves
# CACHE_DIR/prefix/stamp (the package versions and this script's hash); the next run with the
# same script finds it and does nothing, so only a clean build directory pays for the build.
#
# The sources come through a private apt configuration under CACHE_DIR/apt (a deb-src list, its
# own lists and cache directories): the machine's apt sources are not changed. Integrity:
# `apt-get update` checks InRelease with gpgv against debian-archive-keyring; the Sources index
# is checked against the SHA256 in InRelease; `apt-get source` checks each downloaded file (the
# .dsc, the upstream and the Debian tarballs) against the SHA256 in that Sources index, and
# dpkg-source checks the tarballs against the .dsc again when it unpacks. This script then
# repeats the last two checks itself (the .dsc against the index, the tarballs against the .dsc's
# Checksums-Sha256) so that a failure is reported here, naming the file.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 CACHE_DIR" >&2
  exit 1
fi
CACHE=$(mkdir -p "$1" && cd "$1" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HOST=x86_64-w64-mingw32
PACKAGES=(libsodium zeromq3)
SUITES=(bookworm bookworm-updates)
SECURITY_SUITE=bookworm-security
JOBS=${WAFERPROV_CROSS_JOBS:-2}
NICE=(nice -n 5)  # the machine is shared: the cross libraries yield to everyone else
SELF_HASH=$(sha256sum "$HERE/$(basename "${BASH_SOURCE[0]}")" | cut -d' ' -f1)
PREFIX=$CACHE/prefix
STAMP=$PREFIX/stamp

# One run at a time per cache (a build and a test may both ask for it).
exec 9>"$CACHE/lock"
flock 9

if [ -f "$STAMP" ] && grep -qx "script $SELF_HASH" "$STAMP"; then
  echo "build-deps: cached in $PREFIX ($(grep -v '^script' "$STAMP" | tr '\n' ' '))"
  exit 0
fi

for tool in "$HOST-gcc-posix" "$HOST-g++-posix" dpkg-source autoreconf libtoolize cmake; do
  command -v "$tool" >/dev/null || {
    echo "build-deps: $tool not found (tools/install-deps.sh installs it)" >&2
    exit 1
  }
done

# ---- 1. Sources, through a private apt configuration ----------------------------------------
APT=$CACHE/apt
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/sources.list.d"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
{
  for s in "${SUITES[@]}"; do
    echo "deb-src [signed-by=$KEYRING] http://deb.debian.org/debian $s main"
  done
  echo "deb-src [signed-by=$KEYRING] http://deb.debian.org/debian-security $SECURITY_SUITE main"
} >"$APT/sources.list"
APT_OPTS=(
  -o "Dir::Etc::sourcelist=$APT/sources.list"
  -o "Dir::Etc::sourceparts=$APT/sources.list.d"
  -o "Dir::State::Lists=$APT/lists"
  -o "Dir::Cache=$APT/cache"
  -o "APT::Sandbox::User=root"
  -o "Debug::NoLocking=1"
)
echo "build-deps: apt-get update (private configuration in $APT)"
apt-get "${APT_OPTS[@]}" -qq update

SRC=$CACHE/src
rm -rf "$SRC"
mkdir -p "$SRC"
versions=()
for pkg in "${PACKAGES[@]}"; do
  (cd "$SRC" && apt-get "${APT_OPTS[@]}" -qq source "$pkg" >/dev/null 2>"$SRC/$pkg.apt.log") || {
    cat "$SRC/$pkg.apt.log" >&2
    echo "build-deps: apt-get source $pkg failed" >&2
    exit 1
  }
  dsc=$(ls "$SRC"/"${pkg}"_*.dsc)
  version=$(sed -n 's/^Version: //p' "$dsc")
  # The .dsc against the (signed) Sources index apt downloaded.
  want=$(/usr/lib/apt/apt-helper cat-file "$APT"/lists/*_source_Sources* |
    awk -v p="$pkg" -v v="$version" -v f="$(basename "$dsc")" '
      /^Package: / { inpkg = ($2 == p) } /^Version: / { inver = ($2 == v) }
      /^Checksums-Sha256:/ { insum = 1; next } /^[^ ]/ { insum = 0 }
      insum && inpkg && inver && $3 == f && !found { found = $1 } END { print found }')
  got=$(sha256sum "$dsc" | cut -d' ' -f1)
  if [ -z "$want" ] || [ "$want" != "$got" ]; then
    echo "build-deps: $(basename "$dsc"): SHA256 $got is not the Sources index's (${want:-none})" >&2
    exit 1
  fi
  # Every file the .dsc names, against its Checksums-Sha256.
  awk '/^Checksums-Sha256:/ { s = 1; next } /^[^ ]/ { s = 0 } s { print $1 "  " $3 }' "$dsc" |
    (cd "$SRC" && sha256sum --quiet -c -) || {
    echo "build-deps: a file of $(basename "$dsc") does not match its SHA256" >&2
    exit 1
  }
  versions+=("$pkg $version")
  echo "build-deps: $pkg $version verified (.dsc $got)"
done

# ---- 2. Static builds with the posix-threads flavour of mingw-w64 ---------------------------
# Each library has its own stamp (its Debian version and the exact build flags), so a change to
# this script that does not touch a library's inputs does not rebuild it.
mkdir -p "$PREFIX"
rm -f "$STAMP"
export CC=$HOST-gcc-posix CXX=$HOST-g++-posix AR=$HOST-ar RANLIB=$HOST-ranlib
# pkg-config must find the libsodium built here, never the machine's (Linux) one.
export PKG_CONFIG_LIBDIR=$PREFIX/lib/pkgconfig PKG_CONFIG_PATH=

# run LOG COMMAND...: runs COMMAND with its output in $SRC/LOG; on failure shows the log's end
# and stops the script.
run() {
  local log=$SRC/$1
  shift
  if ! "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "build-deps: failed: $* (log: $log)" >&2
    exit 1
  fi
}

# built NAME INPUTS: true if NAME was built from exactly INPUTS (its stamp says so).
built() { [ -f "$PREFIX/stamp.$1" ] && [ "$(cat "$PREFIX/stamp.$1")" = "$2" ]; }

SODIUM_FLAGS=(--host=$HOST --prefix="$PREFIX" --enable-static --disable-shared
  --disable-dependency-tracking --with-pic)
sodium_inputs="${versions[0]} $CC ${SODIUM_FLAGS[*]}"
if built libsodium "$sodium_inputs"; then
  echo "build-deps: libsodium cached"
else
  sodium_dir=$(find "$SRC" -maxdepth 1 -type d -name 'libsodium-*' | head -1)
  echo "build-deps: building libsodium in $sodium_dir"
  cd "$sodium_dir"
  # Debian's upstream tarball is a git export without a generated configure: autoreconf first,
  # as Debian's own build does (dh_autoreconf).
  run libsodium.autoreconf.log "${NICE[@]}" autoreconf -fi
  run libsodium.configure.log "${NICE[@]}" ./configure "${SODIUM_FLAGS[@]}"
  run libsodium.make.log "${NICE[@]}" make -j"$JOBS"
  run libsodium.install.log make install
  cd "$CACHE"
  echo "$sodium_inputs" >"$PREFIX/stamp.libsodium"
fi

ZMQ_FLAGS=(-G Ninja -DCMAKE_TOOLCHAIN_FILE="$HERE/cross/toolchain-$HOST.cmake"
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_PREFIX_PATH="$PREFIX"
  -DBUILD_SHARED=OFF -DBUILD_STATIC=ON -DBUILD_TESTS=OFF -DWITH_DOCS=OFF -DWITH_PERF_TOOL=OFF
  -DENABLE_CURVE=ON -DWITH_LIBSODIUM=ON -DWITH_LIBSODIUM_STATIC=ON
  -DENABLE_DRAFTS=OFF -DENABLE_PRECOMPILED=OFF -DENABLE_CPACK=OFF
  # No ipc:// on Windows: 4.3.4 finds mingw-w64's afunix.h but then includes <sys/socket.h>
  # (only MSVC gets afunix.h); the tester link is tcp:// only.
  -DZMQ_HAVE_IPC=OFF)
zmq_inputs="${versions[1]} ${versions[0]} $CXX ${ZMQ_FLAGS[*]} $(sha256sum "$HERE/cross/toolchain-$HOST.cmake")"
if built libzmq "$zmq_inputs" && [ -f "$PREFIX/lib/libzmq.a" ]; then
  echo "build-deps: libzmq cached"
else
  zmq_dir=$(find "$SRC" -maxdepth 1 -type d -name 'zeromq*' | head -1)
  echo "build-deps: building libzmq in $zmq_dir"
  rm -rf "$SRC/zmq-build"
  run libzmq.configure.log "${NICE[@]}" cmake -S "$zmq_dir" -B "$SRC/zmq-build" "${ZMQ_FLAGS[@]}"
  platform=$SRC/zmq-build/platform.hpp
  if ! grep -q '^#define ZMQ_HAVE_CURVE' "$platform" ||
    ! grep -q '^#define ZMQ_USE_LIBSODIUM' "$platform"; then
    echo "build-deps: libzmq was configured without CURVE through libsodium ($platform)" >&2
    exit 1
  fi
  run libzmq.make.log "${NICE[@]}" cmake --build "$SRC/zmq-build" -j"$JOBS"
  run libzmq.install.log cmake --install "$SRC/zmq-build"
  if [ ! -f "$PREFIX/lib/libzmq.a" ]; then
    echo "build-deps: no static libzmq ($PREFIX/lib/libzmq.a) after the install" >&2
    exit 1
  fi
  rm -rf "$SRC/zmq-build"
  echo "$zmq_inputs" >"$PREFIX/stamp.libzmq"
fi

{
  echo "script $SELF_HASH"
  printf '%s\n' "${versions[@]}"
} >"$STAMP"
echo "build-deps: done, $PREFIX"
