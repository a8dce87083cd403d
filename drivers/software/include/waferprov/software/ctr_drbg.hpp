// SP 800-90A r1 CTR_DRBG with AES-256 and no derivation function, exactly as WPID-1 uses it:
// instantiate from entropy XOR personalization (zero-padded to seedlen = 48 bytes), reseed
// without additional input, Generate without additional input, and a hard reseed interval.
// Not thread-safe: the engine serializes access. The state wipes itself on destruction.
#pragma once

#include <cstdint>

#include "waferprov/bytes.hpp"
#include "waferprov/result.hpp"

namespace waferprov::software {

class CtrDrbg {
public:
    static constexpr size_t kSeedLen = 48;

    // reseed_interval: Generate calls allowed after each (re)seed, 1 .. 2^48.
    static Result<CtrDrbg> instantiate(ByteSpan entropy, ByteSpan personalization,
                                       uint64_t reseed_interval);
    Status reseed(ByteSpan entropy);
    // Generate(out.size()) with no additional input; kReseedRequired once the interval is spent
    // (state untouched then).
    Status generate(uint8_t* out, size_t len);

    // SP 800-90A's reseed_counter: 1 after (re)seeding, +1 per Generate.
    uint64_t reseed_counter() const { return reseed_counter_; }
    uint64_t reseed_interval() const { return reseed_interval_; }

private:
    CtrDrbg() = default;
    Status update(const uint8_t* provided);  // provided: kSeedLen bytes
    void increment_v();

    SecretArray<32> key_;
    SecretArray<16> v_;
    uint64_t reseed_counter_ = 0;
    uint64_t reseed_interval_ = 0;
};

}  // namespace waferprov::software
