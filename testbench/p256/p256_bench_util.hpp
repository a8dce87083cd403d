// Checks shared by the default and the soak bench of the P-256 key generator.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "p256_dut.hpp"
#include "p256_ref.hpp"

namespace p256bench {

// Runs one key generation and expects OpenSSL's result; returns the cycle count.
inline uint64_t expect_keygen_matches(Dut& dut, const Ref& ref, const Bytes32& d) {
    const KeygenResult r = dut.keygen(d);
    const auto want = ref.mul_g(d);
    EXPECT_TRUE(want.has_value()) << "bench bug: invalid scalar " << to_hex(d);
    if (!want) return r.cycles;
    EXPECT_FALSE(r.err) << "d = " << to_hex(d);
    EXPECT_EQ(to_hex(r.x), to_hex(want->first)) << "x for d = " << to_hex(d);
    EXPECT_EQ(to_hex(r.y), to_hex(want->second)) << "y for d = " << to_hex(d);
    return r.cycles;
}

// Long runs of ones and zeros, all below n: low and high runs of ones, alternating bytes,
// nibbles and words, single zero digits in a field of ones and single ones in zeros.
inline std::vector<Bytes32> patterned_scalars() {
    std::vector<Bytes32> out;
    for (unsigned ones : {4u, 31u, 64u, 127u, 128u, 200u, 255u}) {
        Bytes32 d{};
        for (unsigned k = 0; k < ones; ++k) d[31 - k / 8] |= static_cast<uint8_t>(1u << (k % 8));
        out.push_back(d);
    }
    // ones in bits [255-k, 255) with the top bit 0 stays below n
    for (unsigned ones : {8u, 31u}) {
        Bytes32 d{};
        for (unsigned k = 0; k < ones; ++k) {
            const unsigned bit = 254 - k;
            d[31 - bit / 8] |= static_cast<uint8_t>(1u << (bit % 8));
        }
        d[31] |= 1;
        out.push_back(d);
    }
    for (uint8_t fill : {uint8_t{0x55}, uint8_t{0xAA}, uint8_t{0x0F}, uint8_t{0xF0}}) {
        Bytes32 d{};
        d.fill(fill);
        d[0] = static_cast<uint8_t>(fill & 0x7F);
        out.push_back(d);
    }
    {
        Bytes32 d{};  // 0x00ff00ff... and 0x0000ffff...
        for (unsigned i = 0; i < 32; ++i) d[i] = (i % 2) ? 0xFF : 0x00;
        out.push_back(d);
        for (unsigned i = 0; i < 32; ++i) d[i] = (i % 4 >= 2) ? 0xFF : 0x00;
        out.push_back(d);
    }
    for (unsigned digit : {0u, 1u, 31u, 62u}) {  // one zero nibble among ones (below 2^255)
        Bytes32 d{};
        d.fill(0xFF);
        d[0] = 0x7F;
        d[31 - digit / 2] &= static_cast<uint8_t>((digit % 2) ? 0x0F : 0xF0);
        out.push_back(d);
    }
    for (unsigned digit : {0u, 17u, 63u}) {  // a single 0xF nibble among zeros
        Bytes32 d{};
        d[31 - digit / 2] = (digit % 2) ? 0xF0 : 0x0F;
        out.push_back(d);
    }
    return out;
}

}  // namespace p256bench
