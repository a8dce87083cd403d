// The card driver: waferprov's Accelerator over one identity card (rtl/card/wp_card.sv), written
// once over the narrow card::Transport (register space, request stream, record stream, event).
// The Verilator transport (drivers/verilator) and the XDMA transport (drivers/xdma) are
// siblings under it. docs/drivers.md describes its state machine and checks.
//
// What it guarantees:
//   - it refuses a card that is not a wp_card (ID), speaks another major register-map version
//     (VERSION), or produces another record format (CAPS), naming what it found;
//   - it never returns a record it has not checked against what was submitted: the sequence
//     number, the UID and that Q is a point on P-256 (waferprov::p256_check_point, OpenSSL);
//     a record that fails is kDeviceFault and the card is zeroized;
//   - every wait has a deadline (CardOptions): kTimeout, never a hang;
//   - the records are byte-identical to the software engine's for the same KIK, entropy,
//     UIDs and batches (the driver drains the card before RESEED, so a reseed falls between
//     two batches as in the software engine);
//   - on a device error (sticky ERR) it reads ERR and ERR_SEQ, zeroizes the card, reloads the
//     wrapped KIK it was given, and reports kDeviceFault naming the error bits; the DRBG is
//     then uninstantiated (the driver never keeps entropy), so the caller instantiates again.
//
// Thread-safe: every Accelerator method may be called from many threads; one mutex serializes
// them over the transport (which is not thread-safe).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "waferprov/accelerator.hpp"
#include "waferprov/card/transport.hpp"

namespace waferprov::card {

struct CardOptions {
    // The backend's name for Accelerator::name() and messages ("verilator", "xdma").
    std::string backend_name = "card";
    // Register commands (LOAD_KIK, INSTANTIATE, RESEED, ZEROIZE) must finish within this.
    std::chrono::milliseconds command_timeout{5000};
    // A batch's records must arrive within base + per_die * batch size (a simulated card is
    // some thousand times slower than a real one: its transport sets larger values).
    std::chrono::milliseconds records_timeout_base{2000};
    std::chrono::microseconds records_timeout_per_die{100};
    // Request packets written to the card whose records have not been read yet. More keeps
    // the engines busy across batch boundaries; the card's own request buffer is small, so a
    // transport whose H2C write blocks until the card has taken the bytes may want 1.
    size_t max_batches_in_flight = 2;
    // Batches submitted and not yet collected (bounded memory, as the software engine).
    size_t max_pending_batches = 1024;
    // UIDs per batch.
    size_t max_batch_size = 65536;
};

// What the driver read from the card when it opened it.
struct CardInfo {
    uint16_t version_major = 0;
    uint16_t version_minor = 0;
    uint32_t engines = 0;
    uint32_t stream_bytes = 0;
    bool selftest = false;
    bool scan_randomized = false;
};

// Opens the card behind `transport`: checks ID, VERSION and CAPS, the register path (SCRATCH),
// zeroizes the card (whatever a previous user left in it) and enables the error interrupt.
// kUnavailable for a card that is not there or not a wp_card, kUnsupported for a register-map
// major version or record format this driver does not speak.
Result<std::unique_ptr<Accelerator>> make_card_accelerator(std::unique_ptr<Transport> transport,
                                                           const CardOptions& options);

// The card's parameters as the driver opened it (`accelerator` must come from
// make_card_accelerator; kInvalidArgument otherwise).
Result<CardInfo> card_info(const Accelerator& accelerator);

// The card's self-test operations (ST_OP, docs/card.md "Self-test").
enum class SelfTestOp : uint32_t {
    kAesEncrypt = 1,   // one 16-byte block under a 32-byte key
    kAesDecrypt = 2,   // one 16-byte block
    kAesCmac = 3,      // AES-256-CMAC of 0..256 bytes: the 16-byte tag
    kAesKwWrap = 4,    // RFC 3394 wrap of 16..248 bytes (a multiple of 8): 8 bytes more
    kAesKwUnwrap = 5,  // RFC 3394 unwrap of 24..256 bytes (a multiple of 8): 8 bytes fewer
    kP256BaseMul = 6,  // d*G for a 32-byte d (no key): X then Y, 64 bytes
};

// Runs one self-test operation on the card's own datapath with the caller's key and data
// (never the card's KIK or DRBG) and returns its result. Batches on the card are read off it
// first (they stay for collect()), so that the operation, and a refusal, meet an idle card.
// Errors: kUnsupported naming the card when it has no self-test (CAPS.SELFTEST = 0);
// kInvalidArgument for a key that is not 32 bytes (none for kP256BaseMul) or a length outside
// the operation's range; kIntegrityFailure when an unwrap fails its check; kInvalidScalar for
// d = 0 or d >= n; kTimeout; kDeviceFault for anything else the card reports.
// `accelerator` must come from make_card_accelerator (kInvalidArgument otherwise).
// Thread-safe as every driver call.
Result<Bytes> self_test(Accelerator& accelerator, SelfTestOp op, ByteSpan key, ByteSpan data);

// ERR bits by name, "KIK_UNWRAP|BUS" (for messages and tests).
std::string describe_err_bits(uint32_t err);

}  // namespace waferprov::card
