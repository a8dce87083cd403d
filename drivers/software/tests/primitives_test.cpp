// The software engine's primitives against published vectors and OpenSSL's independent
// implementations (EVP_MAC CMAC, EVP_KDF KBKDF, the AES-WRAP ciphers, generic-curve EC math).
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "waferprov/ossl.hpp"
#include "waferprov/p256_check.hpp"
#include "waferprov/reference.hpp"
#include "waferprov/software/aes.hpp"
#include "waferprov/software/p256.hpp"
#include "waferprov/test_vectors.hpp"

using namespace waferprov;
using namespace waferprov::software;
namespace ref = waferprov::reference;

namespace {
Bytes hex(std::string_view h) { return from_hex(h, "test vector").value(); }
}  // namespace

TEST(Aes, Fips197AppendixC3Aes256) {
    auto aes =
        AesBlock::create(hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"));
    ASSERT_TRUE(aes.ok());
    Bytes pt = hex("00112233445566778899aabbccddeeff"), ct(16);
    ASSERT_TRUE(aes->apply(pt.data(), ct.data()).ok());
    EXPECT_EQ(to_hex(ct), "8ea2b7ca516745bfeafc49904b496089");
}

TEST(Aes, RejectsBadKeySizeWithClearError) {
    auto aes = AesBlock::create(Bytes(20));
    ASSERT_FALSE(aes.ok());
    EXPECT_NE(aes.error().message.find("16, 24 or 32"), std::string::npos);
}

TEST(Cmac, Sp80038bAes256Examples) {
    // SP 800-38B appendix D.3 (AES-256), examples 1 (empty) and 2 (one block).
    auto c = Cmac::create(hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"));
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(to_hex(*c->compute({})), "028962f61b7bf89efc6b551f4667d983");
    EXPECT_EQ(to_hex(*c->compute(hex("6bc1bee22e409f96e93d7e117393172a"))),
              "28a7023f452e8f82bd4bf28d8c37c35c");
}

TEST(Cmac, MatchesOpenSslEvpMacForAllKeySizesAndLengths) {
    for (size_t klen : {16, 24, 32}) {
        for (size_t mlen = 0; mlen <= 80; ++mlen) {
            Bytes key = ref::random_bytes(klen), msg = ref::random_bytes(mlen);
            auto c = Cmac::create(key);
            ASSERT_TRUE(c.ok());
            EXPECT_EQ(to_hex(*c->compute(msg)), to_hex(ref::cmac(key, msg)))
                << "key " << klen << " msg " << mlen;
        }
    }
}

TEST(Kdf, WpidKekMatchesOpenSslKbkdf) {
    for (int i = 0; i < 200; ++i) {
        Bytes kik = ref::random_bytes(32);
        wpid1::Uid uid;
        Bytes u = ref::random_bytes(16);
        std::copy(u.begin(), u.end(), uid.begin());
        auto c = Cmac::create(kik);
        ASSERT_TRUE(c.ok());
        auto kek = derive_kek(*c, uid);
        ASSERT_TRUE(kek.ok());
        EXPECT_EQ(to_hex(kek->span()), to_hex(ref::kek(kik, u)));
    }
}

TEST(Kdf, CavpKbkdfCounterCmacAes256Vectors) {
    const auto path =
        std::filesystem::path(WAFERPROV_VECTOR_DIR) / "cavp/kbkdf_ctr_cmac_aes256.rsp";
    if (!std::filesystem::exists(path)) GTEST_FAIL() << "missing " << path;
    int checked = 0;
    for (const auto& tc : ref::read_cavp(path)) {
        if (!tc.has_section("PRF=CMAC_AES256") || !tc.has_section("CTRLOCATION=BEFORE_FIXED") ||
            !tc.has_section("RLEN=32_BITS"))
            continue;
        Bytes ki = hex(tc.get("KI")), fixed = hex(tc.get("FixedInputData"));
        const size_t out_len = std::stoul(tc.get("L")) / 8;
        auto c = Cmac::create(ki);
        ASSERT_TRUE(c.ok());
        Bytes out;
        for (uint32_t i = 1; out.size() < out_len; ++i) {
            Bytes m(4);
            store_be32(m.data(), i);
            m.insert(m.end(), fixed.begin(), fixed.end());
            auto k = c->compute(m);
            out.insert(out.end(), k->begin(), k->end());
        }
        out.resize(out_len);
        EXPECT_EQ(to_hex(out), tc.get("KO")) << "COUNT " << tc.get("COUNT");
        ++checked;
    }
    EXPECT_GE(checked, 5);
}

TEST(KeyWrap, Rfc3394Section46) {
    auto w = kw_wrap(hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
                     hex("00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f"));
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(to_hex(*w),
              "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21");
}

TEST(KeyWrap, MatchesOpenSslAesWrapAndRoundTrips) {
    for (size_t klen : {16, 24, 32}) {
        for (size_t plen = 16; plen <= 64; plen += 8) {
            Bytes kek = ref::random_bytes(klen), p = ref::random_bytes(plen);
            auto w = kw_wrap(kek, p);
            ASSERT_TRUE(w.ok());
            EXPECT_EQ(to_hex(*w), to_hex(ref::kw_wrap(kek, p)));
            auto u = kw_unwrap(kek, *w);
            ASSERT_TRUE(u.ok());
            EXPECT_EQ(to_hex(u->span()), to_hex(p));
        }
    }
}

TEST(KeyWrap, UnwrapRejectsEveryFlippedBitAndWrongKey) {
    Bytes kek = ref::random_bytes(32), p = ref::random_bytes(32);
    Bytes w = *kw_wrap(kek, p);
    for (size_t bit = 0; bit < w.size() * 8; ++bit) {
        Bytes t = w;
        t[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
        auto u = kw_unwrap(kek, t);
        ASSERT_FALSE(u.ok()) << "bit " << bit;
        EXPECT_EQ(u.error().code, ErrorCode::kIntegrityFailure);
    }
    auto wrong = kw_unwrap(ref::random_bytes(32), w);
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.error().code, ErrorCode::kIntegrityFailure);
}

TEST(KeyWrap, RejectsBadLengths) {
    Bytes kek = ref::random_bytes(32);
    EXPECT_EQ(kw_wrap(kek, Bytes(8)).error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(kw_wrap(kek, Bytes(20)).error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(kw_unwrap(kek, Bytes(16)).error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(kw_unwrap(kek, Bytes(41)).error().code, ErrorCode::kInvalidArgument);
}

TEST(P256, Rfc6979A25PublishedKeyPair) {
    auto q = p256_base_mul(hex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721"));
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(to_hex(q->x), "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6");
    EXPECT_EQ(to_hex(q->y), "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299");
}

TEST(P256, MatchesGenericCurveArithmeticOnRandomAndEdgeScalars) {
    std::vector<Bytes> scalars;
    Bytes n(wpid1::kP256Order.begin(), wpid1::kP256Order.end());
    Bytes one(32, 0), nm1 = n;
    one[31] = 1;
    nm1[31] -= 1;
    scalars.push_back(one);
    scalars.push_back(nm1);
    for (int i = 0; i < 100; ++i) scalars.push_back(ref::random_bytes(32));
    for (const auto& d : scalars) {
        if (!wpid1::scalar_in_range(d)) continue;
        auto q = p256_base_mul(d);
        ASSERT_TRUE(q.ok());
        EXPECT_TRUE(ref::point_matches(d, q->x, q->y)) << to_hex(d);
        EXPECT_TRUE(p256_check_point(q->x, q->y).ok());
    }
}

TEST(P256, RejectsZeroOrderAndAbove) {
    Bytes zero(32, 0), n(wpid1::kP256Order.begin(), wpid1::kP256Order.end()), ones(32, 0xff);
    for (const auto& d : {zero, n, ones}) {
        auto q = p256_base_mul(d);
        ASSERT_FALSE(q.ok());
        EXPECT_EQ(q.error().code, ErrorCode::kInvalidScalar);
    }
    EXPECT_EQ(p256_base_mul(Bytes(31, 1)).error().code, ErrorCode::kInvalidArgument);
}

TEST(P256, CheckPointRejectsOffCurveAndOutOfRangeCoordinates) {
    Bytes seven(32, 0);
    seven[31] = 7;
    auto q = *p256_base_mul(seven);
    auto bad = q;
    bad.y[31] ^= 1;
    EXPECT_FALSE(p256_check_point(bad.x, bad.y).ok());
    wpid1::Coord p;
    p.fill(0xff);  // >= p
    EXPECT_FALSE(p256_check_point(p, q.y).ok());
    EXPECT_TRUE(p256_check_point(q.x, q.y).ok());
    // (0, 0) stands for no point (b != 0), and a refusal leaves nothing behind for the next
    // check on the same thread (the check reuses its numbers per thread).
    const wpid1::Coord zero{};
    EXPECT_FALSE(p256_check_point(zero, zero).ok());
    EXPECT_TRUE(p256_check_point(q.x, q.y).ok());
    EXPECT_FALSE(p256_check_point(bad.x, bad.y).ok());
}

// Every key checked from several threads at once agrees with OpenSSL's own verdict on it.
TEST(P256, CheckPointFromSeveralThreadsAgreesWithOpenSsl) {
    // OpenSSL's verdict: decoding 04 || x || y checks the point, in a group of its own.
    const auto openssl_on_curve = [](const wpid1::Coord& x, const wpid1::Coord& y) {
        ossl::EcGroup g(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
        ossl::EcPoint pt(EC_POINT_new(g.get()));
        Bytes oct{0x04};
        oct.insert(oct.end(), x.begin(), x.end());
        oct.insert(oct.end(), y.begin(), y.end());
        const bool on = EC_POINT_oct2point(g.get(), pt.get(), oct.data(), oct.size(), nullptr) == 1;
        ERR_clear_error();
        return on;
    };
    std::vector<wpid1::Coord> xs, ys;
    std::vector<bool> on;
    while (xs.size() < 64) {
        const Bytes d = ref::random_bytes(32);
        if (!wpid1::scalar_in_range(d)) continue;
        auto q = *p256_base_mul(d);
        if (xs.size() % 2 == 1) q.y[xs.size() % 32] ^= 0x10;  // off the curve
        on.push_back(openssl_on_curve(q.x, q.y));
        xs.push_back(q.x);
        ys.push_back(q.y);
    }
    EXPECT_EQ(std::count(on.begin(), on.end(), true), 32);
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int round = 0; round < 50; ++round)
                for (size_t i = 0; i < xs.size(); ++i)
                    if (p256_check_point(xs[i], ys[i]).ok() != on[i]) ++wrong;
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(wrong.load(), 0);
}
