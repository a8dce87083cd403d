#include "waferprov/software/ctr_drbg.hpp"

#include <cstring>

#include "waferprov/software/aes.hpp"
#include "waferprov/wpid1.hpp"

namespace waferprov::software {

Result<CtrDrbg> CtrDrbg::instantiate(ByteSpan entropy, ByteSpan personalization,
                                     uint64_t reseed_interval) {
    if (entropy.size() != kSeedLen)
        return make_error(ErrorCode::kInvalidArgument,
                          "DRBG entropy must be 48 bytes, got " + std::to_string(entropy.size()));
    if (personalization.size() > kSeedLen)
        return make_error(ErrorCode::kInvalidArgument,
                          "DRBG personalization string must be at most 48 bytes, got " +
                              std::to_string(personalization.size()));
    if (reseed_interval == 0 || reseed_interval > wpid1::kMaxReseedInterval)
        return make_error(
            ErrorCode::kInvalidArgument,
            "DRBG reseed interval must be 1 .. 2^48, got " + std::to_string(reseed_interval));
    SecretArray<kSeedLen> seed;
    std::memcpy(seed.data(), entropy.data(), kSeedLen);
    for (size_t i = 0; i < personalization.size(); ++i) seed.bytes[i] ^= personalization[i];
    CtrDrbg d;  // Key = 0^256, V = 0^128
    WP_RETURN_IF_ERROR(d.update(seed.data()));
    d.reseed_counter_ = 1;
    d.reseed_interval_ = reseed_interval;
    return d;
}

Status CtrDrbg::reseed(ByteSpan entropy) {
    if (entropy.size() != kSeedLen)
        return make_error(
            ErrorCode::kInvalidArgument,
            "DRBG reseed entropy must be 48 bytes, got " + std::to_string(entropy.size()));
    WP_RETURN_IF_ERROR(update(entropy.data()));
    reseed_counter_ = 1;
    return ok_status();
}

void CtrDrbg::increment_v() {
    for (size_t i = 16; i-- > 0;)
        if (++v_.bytes[i] != 0) break;
}

Status CtrDrbg::update(const uint8_t* provided) {
    WP_ASSIGN_OR_RETURN(AesBlock aes, AesBlock::create(key_.span()));
    SecretArray<kSeedLen> temp;
    for (size_t b = 0; b < 3; ++b) {
        increment_v();
        WP_RETURN_IF_ERROR(aes.apply(v_.data(), temp.data() + 16 * b));
    }
    for (size_t i = 0; i < kSeedLen; ++i) temp.bytes[i] ^= provided[i];
    std::memcpy(key_.data(), temp.data(), 32);
    std::memcpy(v_.data(), temp.data() + 32, 16);
    return ok_status();
}

Status CtrDrbg::generate(uint8_t* out, size_t len) {
    if (reseed_counter_ == 0)
        return make_error(ErrorCode::kNotInstantiated, "DRBG is not instantiated");
    if (reseed_counter_ > reseed_interval_)
        return make_error(ErrorCode::kReseedRequired, "DRBG reached its reseed interval of " +
                                                          std::to_string(reseed_interval_) +
                                                          " generate calls");
    WP_ASSIGN_OR_RETURN(AesBlock aes, AesBlock::create(key_.span()));
    SecretArray<16> block;
    for (size_t off = 0; off < len; off += 16) {
        increment_v();
        WP_RETURN_IF_ERROR(aes.apply(v_.data(), block.data()));
        std::memcpy(out + off, block.data(), std::min<size_t>(16, len - off));
    }
    static constexpr uint8_t kZeros[kSeedLen] = {};
    WP_RETURN_IF_ERROR(update(kZeros));
    ++reseed_counter_;
    return ok_status();
}

}  // namespace waferprov::software
