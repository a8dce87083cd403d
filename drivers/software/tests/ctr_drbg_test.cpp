// CTR_DRBG (AES-256, no df) against NIST CAVP vectors and OpenSSL's EVP_RAND CTR-DRBG.
#include <filesystem>

#include <gtest/gtest.h>

#include "waferprov/reference.hpp"
#include "waferprov/software/ctr_drbg.hpp"
#include "waferprov/test_vectors.hpp"

using namespace waferprov;
using namespace waferprov::software;
namespace ref = waferprov::reference;

namespace {
Bytes hex(const std::string& h) { return from_hex(h, "test vector").value(); }

std::vector<ref::CavpCase> nodf_cases() {
    const auto path = std::filesystem::path(WAFERPROV_VECTOR_DIR) / "cavp/ctr_drbg_aes256_nodf.rsp";
    std::vector<ref::CavpCase> out;
    for (auto& c : ref::read_cavp(path))
        if (c.has_section("AES-256 no df")) out.push_back(std::move(c));
    return out;
}

bool all_empty(const std::vector<std::string>& v) {
    for (const auto& s : v)
        if (!s.empty()) return false;
    return true;
}
}  // namespace

// CAVP flow: instantiate, [reseed,] generate (discard), generate (compare). Our DRBG has no
// additional input, so only the cases without additional input apply to it; all of them are
// run on the OpenSSL reference to prove the reader and the flow right.
TEST(CtrDrbg, NistCavpAes256NoDf) {
    int ours = 0, reference_only = 0;
    for (const auto& tc : nodf_cases()) {
        Bytes entropy = hex(tc.get("EntropyInput")), pers = hex(tc.get("PersonalizationString"));
        Bytes expected = hex(tc.get("ReturnedBits"));
        const bool has_reseed = !tc.get("EntropyInputReseed").empty();
        auto adds = tc.all("AdditionalInput");
        ASSERT_TRUE(tc.get("Nonce").empty()) << "no-df cases have no nonce";

        ref::Drbg r(entropy, pers);
        if (has_reseed)
            r.reseed(hex(tc.get("EntropyInputReseed")), hex(tc.get("AdditionalInputReseed")));
        r.generate(expected.size(), adds.size() > 0 ? hex(adds[0]) : Bytes{});
        EXPECT_EQ(to_hex(r.generate(expected.size(), adds.size() > 1 ? hex(adds[1]) : Bytes{})),
                  to_hex(expected))
            << "reference, COUNT " << tc.get("COUNT");
        ++reference_only;

        if (!all_empty(adds) || !tc.get("AdditionalInputReseed").empty()) continue;
        auto d = CtrDrbg::instantiate(entropy, pers, 1000);
        ASSERT_TRUE(d.ok());
        if (has_reseed) {
            ASSERT_TRUE(d->reseed(hex(tc.get("EntropyInputReseed"))).ok());
        }
        Bytes out(expected.size());
        ASSERT_TRUE(d->generate(out.data(), out.size()).ok());
        ASSERT_TRUE(d->generate(out.data(), out.size()).ok());
        EXPECT_EQ(to_hex(out), to_hex(expected)) << "COUNT " << tc.get("COUNT");
        ++ours;
    }
    EXPECT_GE(ours, 15);
    EXPECT_GE(reference_only, ours);
}

TEST(CtrDrbg, MatchesOpenSslEvpRandOverLongStreamsWithReseeds) {
    for (size_t pers_len : {0, 1, 17, 48}) {
        Bytes entropy = ref::random_bytes(48), pers = ref::random_bytes(pers_len);
        ref::Drbg r(entropy, pers);
        auto d = CtrDrbg::instantiate(entropy, pers, 1000);
        ASSERT_TRUE(d.ok());
        for (int i = 0; i < 300; ++i) {
            if (i % 100 == 99) {
                Bytes e = ref::random_bytes(48);
                r.reseed(e);
                ASSERT_TRUE(d->reseed(e).ok());
            }
            Bytes out(32);
            ASSERT_TRUE(d->generate(out.data(), 32).ok());
            ASSERT_EQ(to_hex(out), to_hex(r.generate(32))) << "pers " << pers_len << " i " << i;
        }
    }
}

TEST(CtrDrbg, RefusesToGeneratePastReseedIntervalUntilReseeded) {
    auto d = CtrDrbg::instantiate(ref::random_bytes(48), {}, 3);
    ASSERT_TRUE(d.ok());
    uint8_t out[32];
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(d->generate(out, 32).ok());
    auto refused = d->generate(out, 32);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, ErrorCode::kReseedRequired);
    ASSERT_TRUE(d->reseed(ref::random_bytes(48)).ok());
    EXPECT_TRUE(d->generate(out, 32).ok());
}

TEST(CtrDrbg, RejectsBadSeedLengthsAndIntervals) {
    EXPECT_EQ(CtrDrbg::instantiate(Bytes(47), {}, 10).error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(CtrDrbg::instantiate(Bytes(48), Bytes(49), 10).error().code,
              ErrorCode::kInvalidArgument);
    EXPECT_EQ(CtrDrbg::instantiate(Bytes(48), {}, 0).error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(CtrDrbg::instantiate(Bytes(48), {}, (uint64_t{1} << 48) + 1).error().code,
              ErrorCode::kInvalidArgument);
    auto d = CtrDrbg::instantiate(Bytes(48), {}, 10);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->reseed(Bytes(32)).error().code, ErrorCode::kInvalidArgument);
}
