// The one interface every accelerator backend implements (software now; Verilator co-simulation
// and PCIe later), in the manner of opentitanlib's Transport: narrow capabilities, and an
// unsupported operation is an ErrorCode::kUnsupported value, never a crash.
//
// Identity generation follows WPID-1 (docs/identity-spec.md):
//   load_kik(AES-KW(DK, KIK)) -> instantiate(entropy, personalization, interval)
//   -> submit(UIDs) ... collect(ticket) -> 128-byte records, in submission order.
// Identities consume DRBG output strictly in the order their batches were submitted, whatever
// the number of engines or collecting threads.
//
// Primitive operations exist for known-answer tests (a card's self-test path). They are
// optional: capabilities() says which ones a backend has, and the default implementations
// return kUnsupported naming the backend and the operation. They take caller-supplied keys
// only: nothing combines caller-chosen data with the loaded KIK.
//
// Thread safety: every method may be called from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "waferprov/bytes.hpp"
#include "waferprov/result.hpp"
#include "waferprov/wpid1.hpp"

namespace waferprov {

// Identifies one submitted batch until it is collected.
struct BatchTicket {
    uint64_t id = 0;
};

struct P256Point {
    wpid1::Coord x{};
    wpid1::Coord y{};
};

// The self-test primitives a backend can run (identity generation is always there).
struct Capabilities {
    bool aes_block = false;      // aes_encrypt_block / aes_decrypt_block
    bool aes_cmac = false;       // aes_cmac
    bool aes_kw = false;         // aes_kw_wrap / aes_kw_unwrap
    bool p256_base_mul = false;  // p256_base_mul

    static Capabilities all() { return {true, true, true, true}; }
    static Capabilities none() { return {}; }
};

class Accelerator {
public:
    virtual ~Accelerator() = default;

    // Short backend name as used by --backend ("software", "verilator", ...).
    virtual std::string name() const = 0;

    // --- Identity generation -------------------------------------------------------------

    // Unwraps the 40-byte AES-KW(DK, KIK) under the engine's device key and keeps the KIK.
    // A failed unwrap is kIntegrityFailure and leaves the engine with no KIK loaded (any KIK
    // loaded before is discarded too).
    virtual Status load_kik(ByteSpan wrapped_kik) = 0;

    // Instantiates CTR_DRBG (AES-256, no df) from 48 bytes of entropy and an optional
    // personalization string of at most 48 bytes. Generation is refused once `reseed_interval`
    // Generate calls (1 .. 2^48) have been made since the last (re)seed. Resets the sequence
    // number to 0 and discards batches that were submitted but not collected.
    virtual Status instantiate(ByteSpan entropy, ByteSpan personalization,
                               uint64_t reseed_interval) = 0;

    // Reseeds with 48 fresh bytes of entropy (no additional input).
    virtual Status reseed(ByteSpan entropy) = 0;

    // Draws the scalars for `uids` in order and queues the batch. Either the whole batch is
    // accepted or none of it is: on kReseedRequired the DRBG state is unchanged.
    virtual Result<BatchTicket> submit(std::span<const wpid1::Uid> uids) = 0;

    // Returns the batch's records (one per UID, in order, sequence numbers consecutive).
    // Each ticket can be collected once.
    virtual Result<std::vector<wpid1::IdentityRecord>> collect(BatchTicket ticket) = 0;

    // After collect(ticket) failed because the backend refused one of the batch's records (a
    // card driver's check of its UID, sequence number or point): that record's index in the
    // batch, so that the host can name the die (an ALARM in the ledger). nullopt when no record
    // of that batch was refused (a timeout, a batch lost to a fault elsewhere) or the backend
    // refuses nothing itself. Answers once per ticket.
    virtual std::optional<size_t> take_refused_index(BatchTicket /*ticket*/) {
        return std::nullopt;
    }

    // --- Primitives for known-answer tests (caller-supplied keys only) --------------------

    // Which primitives below this backend runs; the others return kUnsupported.
    virtual Capabilities capabilities() const { return Capabilities::none(); }

    // One AES block with a 16/24/32-byte key. Backends may support only some key sizes.
    virtual Result<std::array<uint8_t, 16>> aes_encrypt_block(ByteSpan key, ByteSpan block);
    virtual Result<std::array<uint8_t, 16>> aes_decrypt_block(ByteSpan key, ByteSpan block);
    // AES-CMAC (SP 800-38B) with the full 16-byte tag.
    virtual Result<std::array<uint8_t, 16>> aes_cmac(ByteSpan key, ByteSpan message);
    // RFC 3394 key wrap with the default IV, and unwrap with its integrity check.
    virtual Result<Bytes> aes_kw_wrap(ByteSpan kek, ByteSpan plaintext);
    virtual Result<SecureBytes> aes_kw_unwrap(ByteSpan kek, ByteSpan wrapped);
    // Q = d*G on P-256; kInvalidScalar for d = 0 or d >= n.
    virtual Result<P256Point> p256_base_mul(ByteSpan scalar);

protected:
    // kUnsupported: "backend <name> has no <operation> (not in its capabilities)".
    Error unsupported(const std::string& operation) const;
};

}  // namespace waferprov
