#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install the dependencies, build, and provision a
# synthesized 300 mm wafer end to end through the tester link, then a 200 mm wafer with the
# manufacturer CA key inside a SoftHSM2 token:
#   waferprov kat -> job init -> wafer synth -> run (pre-generate) -> serve + the 16-site tester
#   simulator over loopback with CurveZMQ (every payload checked as the die would) -> ledger
#   verify -> report -> ledger export -> ledger verify --export (as the customer) -> openssl
#   verify of a device certificate. Then a 100 mm wafer through the card driver over the xdma
#   transport on waferprov-cardsim, the emulated XDMA card (a FUSE mount, unmounted on exit).
# Everything goes to ./demo (set WAFERPROV_DEMO_DIR to put it elsewhere); it is recreated.
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target waferprov waferprov-tester waferprov-cardsim

W="$PWD/build/host/cli/waferprov"
T="$PWD/build/ate/tester/waferprov-tester"
C="$PWD/build/sim/cardsim/waferprov-cardsim"
DEMO="${WAFERPROV_DEMO_DIR:-$PWD/demo}"
rm -rf "$DEMO"
mkdir -p "$DEMO"
step() { printf '\n== %s\n' "$*"; }

step "known-answer tests on every backend"
"$W" kat

step "a synthesized 300 mm wafer of 2 x 2 mm dies"
"$W" wafer synth --diameter 300 --die 2x2 --lot DEMO0001 --wafer 1 --out "$DEMO/DEMO0001-01.xml"

step "PEM CA: job init (with a tester admitted), run pre-generates every identity"
"$W" job init --out "$DEMO/job-pem" --id DEMO-PEM --product WPDEMO --customer "Demo customer" \
  --tester SIM-01
"$W" run --job "$DEMO/job-pem/job.toml" --map "$DEMO/DEMO0001-01.xml"

step "the tester link: serve, and a 16-site tester simulator probing the wafer over CurveZMQ"
JOB="$DEMO/job-pem"
"$W" serve --job "$JOB/job.toml" --map "$DEMO/DEMO0001-01.xml" --bind tcp://127.0.0.1:0 \
  >"$DEMO/serve.out" 2>"$DEMO/serve.log" &
SERVE=$!
trap 'kill "$SERVE" 2>/dev/null || true' EXIT
for _ in $(seq 300); do
  grep -q '^listening on ' "$DEMO/serve.out" && break
  kill -0 "$SERVE" 2>/dev/null || { cat "$DEMO/serve.log"; exit 1; }
  sleep 0.1
done
ENDPOINT="$(sed -n 's/^listening on //p' "$DEMO/serve.out")"
echo "serve is listening on $ENDPOINT (log: $DEMO/serve.log)"
"$T" --map "$DEMO/DEMO0001-01.xml" --sites 16 --endpoint "$ENDPOINT" --job-id DEMO-PEM \
  --tester-id SIM-01 --key "$JOB/tester-SIM-01.key" --server-key "$JOB/server.pub" \
  --kik "$JOB/kik.hex" --ca "$JOB/ca.pem" --root "$JOB/root.pem" \
  --fail-rate 0.002 --retest-rate 1 --seed 1 --json "$DEMO/tester-summary.json"
kill -TERM "$SERVE"
wait "$SERVE"
trap - EXIT
tail -n 1 "$DEMO/serve.log"

step "PEM CA: verify the ledger, write the reports, export, verify the export as the customer"
"$W" ledger verify --job "$JOB/job.toml"
"$W" report --job "$JOB/job.toml" --map "$DEMO/DEMO0001-01.xml"
"$W" ledger export --job "$DEMO/job-pem/job.toml" --out "$DEMO/export-pem"
"$W" ledger verify --export "$DEMO/export-pem" --ca "$DEMO/job-pem/ca.pem"

step "SoftHSM2 CA: the manufacturer CA key is generated inside a token and stays there"
export SOFTHSM2_CONF="$DEMO/softhsm2.conf"
mkdir -p "$DEMO/softhsm-tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
  "$DEMO/softhsm-tokens" > "$SOFTHSM2_CONF"
export WAFERPROV_HSM_PIN=demo-user-pin
softhsm2-util --init-token --free --label waferprov-demo --pin "$WAFERPROV_HSM_PIN" \
  --so-pin demo-so-pin >/dev/null
"$W" wafer synth --diameter 200 --die 2x2 --lot DEMO0002 --wafer 1 --out "$DEMO/DEMO0002-01.xml"
"$W" job init --out "$DEMO/job-hsm" --id DEMO-HSM --product WPDEMO --customer "Demo customer" \
  --hsm --module /usr/lib/softhsm/libsofthsm2.so --token-label waferprov-demo \
  --key-label manufacturer-ca
"$W" run --job "$DEMO/job-hsm/job.toml" --map "$DEMO/DEMO0002-01.xml"
"$W" ledger verify --job "$DEMO/job-hsm/job.toml"
"$W" ledger export --job "$DEMO/job-hsm/job.toml" --out "$DEMO/export-hsm"
"$W" ledger verify --export "$DEMO/export-hsm" --ca "$DEMO/job-hsm/ca.pem"

step "the card over PCIe, emulated: a 100 mm wafer through --backend xdma on waferprov-cardsim"
KINDS="pem hsm"
if [ -r /dev/fuse ] && [ -w /dev/fuse ]; then
  mkdir -p "$DEMO/card"
  "$C" "$DEMO/card" >"$DEMO/cardsim.log" 2>&1 &
  CARDSIM=$!
  # Unmount however the demo ends: the emulator unmounts itself on SIGTERM; a lazy unmount
  # catches the rest.
  stop_cardsim() {
    kill -TERM "$CARDSIM" 2>/dev/null && wait "$CARDSIM" 2>/dev/null
    fusermount3 -u -z "$DEMO/card" 2>/dev/null || true
  }
  trap stop_cardsim EXIT
  for _ in $(seq 600); do
    [ -e "$DEMO/card/xdma0_events_0" ] && break
    kill -0 "$CARDSIM" 2>/dev/null || { cat "$DEMO/cardsim.log"; exit 1; }
    sleep 0.1
  done
  head -n 1 "$DEMO/cardsim.log"
  # The emulated card makes ~100 dies/s: a deadline per die to match (docs/drivers.md).
  XDMA="xdma:device=$DEMO/card/xdma0,per_die_us=50000"
  "$W" wafer synth --diameter 100 --die 8x8 --lot DEMO0003 --wafer 1 \
    --out "$DEMO/DEMO0003-01.xml"
  "$W" job init --out "$DEMO/job-xdma" --id DEMO-XDMA --product WPDEMO \
    --customer "Demo customer" --backend "$XDMA"
  "$W" run --job "$DEMO/job-xdma/job.toml" --map "$DEMO/DEMO0003-01.xml" --batch 64
  stop_cardsim
  trap - EXIT
  "$W" ledger verify --job "$DEMO/job-xdma/job.toml"
  "$W" ledger export --job "$DEMO/job-xdma/job.toml" --out "$DEMO/export-xdma"
  "$W" ledger verify --export "$DEMO/export-xdma" --ca "$DEMO/job-xdma/ca.pem"
  KINDS="pem hsm xdma"
else
  echo "skipped: /dev/fuse is absent or not accessible (the emulated card needs FUSE)"
fi

step "one device certificate from each export, checked by openssl against its chain"
for kind in $KINDS; do
  head -n 1 "$DEMO/export-$kind/records.jsonl" \
    | sed -e 's/.*"certificate":"\([^"]*\)".*/\1/' | base64 -d \
    | openssl x509 -inform DER -out "$DEMO/device-$kind.pem"
  openssl verify -CAfile "$DEMO/job-$kind/root.pem" -untrusted "$DEMO/job-$kind/ca.pem" \
    "$DEMO/device-$kind.pem"
done
openssl x509 -in "$DEMO/device-pem.pem" -noout -subject -issuer -enddate

step "done"
echo "reports (summary, reconciliation, wafer map SVG/PNG, STDF): $DEMO/job-pem/reports, $DEMO/job-hsm/reports${CARDSIM:+, $DEMO/job-xdma/reports}"
