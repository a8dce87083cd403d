// Bench of the P-256 key generator (rtl/p256/p256_keygen.sv) against OpenSSL: edge, power-of-two,
// patterned and random scalars give OpenSSL's d * G in the same number of cycles; invalid
// scalars are rejected; zeroize clears every secret-bearing register.
#include <gtest/gtest.h>

#include <cstdint>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "p256_bench_util.hpp"

namespace p256bench {
namespace {

TEST(P256Keygen, EdgeScalarsMatchOpenSslInConstantTime) {
    Ref ref;
    Dut dut;
    const Bytes32 one = pow2(0);
    const Bytes32& n = ref.n();
    BnPtr half = to_bn(n);
    if (!BN_rshift1(half.get(), half.get())) ossl_fail("BN_rshift1");
    const Bytes32 n_minus_1_half = from_bn(half.get());  // (n - 1) / 2, n odd
    const std::vector<Bytes32> scalars = {one,
                                          add_small(one, 1),
                                          add_small(one, 2),
                                          add_small(n, -1),
                                          add_small(n, -2),
                                          add_small(n, -3),
                                          n_minus_1_half,
                                          add_small(n_minus_1_half, 1),
                                          add_small(n, -16),
                                          add_small(n, -15),
                                          from_hex("10"),
                                          from_hex("F"),
                                          from_hex("11")};
    const uint64_t cycles = expect_keygen_matches(dut, ref, one);
    std::cout << "[p256] cycles per key generation: " << cycles << '\n';
    EXPECT_LE(cycles, 60'000u) << "issue 6 target";
    for (const auto& d : scalars) EXPECT_EQ(expect_keygen_matches(dut, ref, d), cycles);
}

TEST(P256Keygen, PowersOfTwoMatchOpenSsl) {
    Ref ref;
    Dut dut;
    const uint64_t cycles = expect_keygen_matches(dut, ref, pow2(0));
    for (unsigned k = 1; k < 256; k += 7)
        EXPECT_EQ(expect_keygen_matches(dut, ref, pow2(k)), cycles);
    EXPECT_EQ(expect_keygen_matches(dut, ref, pow2(255)), cycles);  // 2^255 < n
}

TEST(P256Keygen, RunsOfOnesAndZerosMatchOpenSsl) {
    Ref ref;
    Dut dut;
    const uint64_t cycles = expect_keygen_matches(dut, ref, pow2(0));
    for (const auto& d : patterned_scalars()) EXPECT_EQ(expect_keygen_matches(dut, ref, d), cycles);
}

TEST(P256Keygen, RandomScalarsMatchOpenSsl) {
    Ref ref;
    Dut dut;
    std::mt19937_64 rng(0x9256'0006);
    const uint64_t cycles = expect_keygen_matches(dut, ref, pow2(0));
    for (int i = 0; i < 300; ++i) {
        const Bytes32 d = ref.random_scalar(rng);
        ASSERT_EQ(expect_keygen_matches(dut, ref, d), cycles) << "d = " << to_hex(d);
    }
    std::cout << "[p256] 300 random scalars, " << cycles << " cycles each\n";
}

TEST(P256Keygen, InvalidScalarsAreRejected) {
    Ref ref;
    Dut dut;
    const Bytes32 all_ones = add_small(Bytes32{}, -1);
    const std::vector<Bytes32> invalid = {
        Bytes32{}, ref.n(), add_small(ref.n(), 1), add_small(ref.n(), 2), ref.p(), all_ones};
    for (const auto& d : invalid) {
        const KeygenResult r = dut.keygen(d);
        EXPECT_TRUE(r.err) << to_hex(d);
        EXPECT_EQ(r.x, Bytes32{});
        EXPECT_EQ(r.y, Bytes32{});
        EXPECT_EQ(dut->dbg_secret_nz_o, 0) << "engine not wiped after a rejection";
    }
    // The engine still works afterwards.
    expect_keygen_matches(dut, ref, add_small(ref.n(), -1));
}

TEST(P256Keygen, OutputHeldUnderBackpressureAndStateWipedAfterwards) {
    Ref ref;
    Dut dut;
    const Bytes32 d = from_hex("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721");
    dut.push(d);
    dut.harness().run_until([&] { return dut->q_valid_o != 0; }, Dut::kTimeout);
    EXPECT_EQ(dut->d_ready_o, 0) << "a second scalar must wait for the result";
    const KeygenResult r = dut.pop(/*stall=*/100);
    const auto want = ref.mul_g(d);
    ASSERT_TRUE(want.has_value());
    EXPECT_FALSE(r.err);
    EXPECT_EQ(to_hex(r.x), to_hex(want->first));
    EXPECT_EQ(to_hex(r.y), to_hex(want->second));
    EXPECT_EQ(dut->dbg_secret_nz_o, 0) << "register file or multiplier not wiped after result";
    EXPECT_EQ(dut->busy_o, 0);
}

TEST(P256Keygen, ZeroizeClearsSecretStateAndAborts) {
    Ref ref;
    Dut dut;
    std::mt19937_64 rng(6);
    const uint64_t cycles = expect_keygen_matches(dut, ref, pow2(0));
    // Abort at several points: right after the scalar is taken, in the first window's scan,
    // mid multiplication, mid table additions, during the inversion (the last ~1900 cycles),
    // one cycle before the end.
    for (uint64_t at :
         {uint64_t{0}, uint64_t{3}, uint64_t{40}, cycles / 2, cycles - 1000, cycles - 1}) {
        dut.push(ref.random_scalar(rng));
        for (uint64_t i = 0; i < at; ++i) dut.harness().tick();
        ASSERT_EQ(dut->q_valid_o, 0);
        EXPECT_EQ(dut->dbg_secret_nz_o, 1) << "expected live secret state at cycle " << at;
        dut->zeroize_i = 1;
        EXPECT_EQ(dut->d_ready_o, 0) << "no scalar is taken while zeroizing";
        dut.harness().tick();
        dut->zeroize_i = 0;
        dut->eval();
        EXPECT_EQ(dut->dbg_secret_nz_o, 0) << "secret state survived zeroize at cycle " << at;
        EXPECT_EQ(dut->busy_o, 0);
        EXPECT_EQ(dut->q_valid_o, 0);
        for (int i = 0; i < 50; ++i) {
            dut.harness().tick();
            ASSERT_EQ(dut->q_valid_o, 0) << "an aborted operation produced a result";
        }
        EXPECT_EQ(expect_keygen_matches(dut, ref, ref.random_scalar(rng)), cycles);
    }
}

}  // namespace
}  // namespace p256bench
