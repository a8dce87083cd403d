// WPID-1 types and constants shared by every backend, the host and the tests.
// The normative text is docs/identity-spec.md.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "waferprov/bytes.hpp"
#include "waferprov/result.hpp"

namespace waferprov::wpid1 {

inline constexpr size_t kKikSize = 32;
inline constexpr size_t kWrappedKikSize = 40;  // AES-KW(DK, KIK)
inline constexpr size_t kDeviceKeySize = 32;
inline constexpr size_t kUidSize = 16;
inline constexpr size_t kScalarSize = 32;
inline constexpr size_t kCoordSize = 32;
inline constexpr size_t kWrappedKeySize = 40;  // AES-KW(KEK, d)
inline constexpr size_t kEntropySize = 48;
inline constexpr size_t kMaxPersonalizationSize = 48;
inline constexpr size_t kRecordSize = 128;
// The SP 800-90A limit for CTR_DRBG reseed_interval is 2^48.
inline constexpr uint64_t kMaxReseedInterval = uint64_t{1} << 48;
inline constexpr std::string_view kKekLabel = "WPID-1 KEK";  // 10 ASCII bytes

using Uid = std::array<uint8_t, kUidSize>;
using Coord = std::array<uint8_t, kCoordSize>;
using WrappedKey = std::array<uint8_t, kWrappedKeySize>;
using Scalar = SecretArray<kScalarSize>;
using Kek = SecretArray<32>;

// P-256 group order n, big-endian.
extern const std::array<uint8_t, 32> kP256Order;

// True iff 0 < d < n, computed without data-dependent branches on d.
bool scalar_in_range(ByteSpan d32) noexcept;

// The 128-byte result record: seq (8, BE) || UID (16) || X (32) || Y (32) || wrapped (40).
struct IdentityRecord {
    uint64_t sequence = 0;
    Uid uid{};
    Coord x{};
    Coord y{};
    WrappedKey wrapped{};

    std::array<uint8_t, kRecordSize> serialize() const;
    static Result<IdentityRecord> parse(ByteSpan record);
    // 65-byte uncompressed SEC1 point 04 || X || Y.
    std::array<uint8_t, 65> public_key_sec1() const;
    bool operator==(const IdentityRecord&) const = default;
};

// The SP 800-108 fixed input for block i: [i]32 || "WPID-1 KEK" || 0x00 || UID || [256]32.
std::array<uint8_t, 4 + 10 + 1 + kUidSize + 4> kdf_fixed_input(uint32_t i, const Uid& uid);

}  // namespace waferprov::wpid1
