#!/usr/bin/env bash
# Installs every build, test and demo dependency of waferprov from Debian 12's archive.
# Idempotent: packages already present are left alone, so re-running costs one dpkg query.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  # readelf: the package test checks whether the shipped library needs the sanitizer runtime
  binutils
  libssl-dev openssl
  libtbb-dev
  libzmq3-dev cppzmq-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  verilator
  libsystemc-dev
  libsqlite3-dev sqlite3
  softhsm2 opensc libp11-kit-dev
  nlohmann-json3-dev libtomlplusplus-dev
  libexpat1-dev
  librsvg2-bin
  yosys python3
  clang-format
  lintian dpkg-dev systemd
  # waferprov_ate.dll (ate/windows): mingw-w64 (POSIX threads flavour), dpkg-dev and autotools
  # for `apt-get source` of libsodium/libzmq and their build, wine64 to run the DLL's tests.
  g++-mingw-w64-x86-64-posix gcc-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64
  autoconf automake libtool
  wine64
  # the emulated XDMA card (sim/cardsim): a FUSE filesystem; fusermount3 unmounts it
  libfuse3-dev fuse3
  # serve/run --metrics: the Prometheus client (its civetweb exposer); curl scrapes it in the
  # tests, promtool (prometheus) checks the example alert rules in docs/operations.md
  prometheus-cpp-dev curl prometheus
  # the ledger's PostgreSQL store: libpq (libpq-dev); the server its tests start (postgresql)
  postgresql libpq-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
