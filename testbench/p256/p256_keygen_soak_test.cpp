// Soak bench of the P-256 key generator (CTest label `soak`): thousands of random scalars
// against OpenSSL, every one in the same number of cycles.
#include <gtest/gtest.h>

#include <cstdint>
#include <iostream>
#include <random>

#include "p256_bench_util.hpp"

namespace p256bench {
namespace {

TEST(P256KeygenSoak, ThousandsOfRandomScalarsMatchOpenSslInConstantTime) {
    constexpr int kScalars = 5000;
    Ref ref;
    Dut dut;
    std::mt19937_64 rng(std::random_device{}());
    const uint64_t seed = rng();
    std::cout << "[p256] soak seed " << seed << '\n';
    rng.seed(seed);
    const uint64_t cycles = expect_keygen_matches(dut, ref, pow2(0));
    for (int i = 0; i < kScalars; ++i) {
        const Bytes32 d = ref.random_scalar(rng);
        ASSERT_EQ(expect_keygen_matches(dut, ref, d), cycles) << "d = " << to_hex(d);
        if (HasFailure()) break;
    }
    std::cout << "[p256] " << kScalars << " random scalars, " << cycles << " cycles each\n";
}

}  // namespace
}  // namespace p256bench
