// Verilator bench for rtl/symmetric/aes_kw.sv (with an aes256 core): RFC 3394 4.6, the Wycheproof
// AES-256 key-wrap vectors that wrap a 32-byte key, and random keys against OpenSSL's
// id-aes256-wrap, including corrupted inputs; wrap/unwrap cycle counts must not depend on data.
#include <cstdio>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "Vtb_aes_kw.h"
#include "Vtb_aes_kw___024root.h"
#include "bench/harness.hpp"
#include "bits.hpp"
#include "ossl_ref.hpp"

namespace {

using symbench::Bytes;
using symbench::from_hex;
using symbench::to_hex;

constexpr uint64_t kTimeout = 2000;

class KwDut {
public:
    KwDut() { h_.reset(); }

    struct Result {
        Bytes wrapped;  // 40 bytes (wrap)
        Bytes key;      // 32 bytes (unwrap)
        bool err;
        uint64_t cycles;  // from the accepting cycle up to the cycle rsp_valid_o is seen
    };

    Result run(bool unwrap, std::span<const uint8_t> kek, std::span<const uint8_t> in) {
        h_->req_valid_i = 1;
        h_->req_unwrap_i = unwrap ? 1 : 0;
        symbench::put(h_->req_kek_i, kek);
        if (unwrap) {
            symbench::put(h_->req_wrapped_i, in);
            symbench::put(h_->req_key_i, Bytes(32, 0));
        } else {
            symbench::put(h_->req_key_i, in);
            symbench::put(h_->req_wrapped_i, Bytes(40, 0));
        }
        h_->rsp_ready_i = 0;
        h_.dut().eval();
        h_.run_until([&] { return h_->req_ready_o != 0; }, kTimeout);
        h_.tick();
        h_->req_valid_i = 0;
        const uint64_t spent = h_.run_until([&] { return h_->rsp_valid_o != 0; }, kTimeout);
        Result r{symbench::get(h_->rsp_wrapped_o, 40), symbench::get(h_->rsp_key_o, 32),
                 h_->rsp_err_o != 0, spent + 1};
        h_->rsp_ready_i = 1;
        h_.tick();
        h_->rsp_ready_i = 0;
        h_.dut().eval();
        return r;
    }

    bench::Harness<Vtb_aes_kw>& h() { return h_; }

private:
    bench::Harness<Vtb_aes_kw> h_;
};

// Wrap: 1 accept cycle, 1 cycle to issue the first AES request, then 24 chained AES operations
// at 15 cycles each.
constexpr uint64_t kWrapCycles = 2 + 24 * 15;
// Unwrap: every decryption expands the key first (13 cycles; aes256 keeps no decryption-key
// cache), so 28 cycles per AES operation whatever KEK came before.
constexpr uint64_t kUnwrapCycles = 2 + 24 * 28;

TEST(AesKw, Rfc3394Section46Wrap256BitKeyUnder256BitKek) {
    const Bytes kek = from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    const Bytes key = from_hex("00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f");
    const Bytes ct = from_hex(
        "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21");
    KwDut dut;
    auto w = dut.run(false, kek, key);
    EXPECT_EQ(to_hex(w.wrapped), to_hex(ct));
    EXPECT_FALSE(w.err);
    EXPECT_EQ(to_hex(w.key), std::string(64, '0'));
    auto u = dut.run(true, kek, ct);
    EXPECT_EQ(to_hex(u.key), to_hex(key));
    EXPECT_FALSE(u.err);
    EXPECT_EQ(to_hex(u.wrapped), std::string(80, '0'));
    auto u2 = dut.run(true, kek, ct);
    std::printf("[cycles] aes_kw wrap %llu, unwrap (new KEK) %llu, unwrap (same KEK) %llu\n",
                static_cast<unsigned long long>(w.cycles),
                static_cast<unsigned long long>(u.cycles),
                static_cast<unsigned long long>(u2.cycles));
    EXPECT_EQ(w.cycles, kWrapCycles);
    EXPECT_EQ(u.cycles, kUnwrapCycles);
    EXPECT_EQ(u2.cycles, kUnwrapCycles);
}

// The published vector files, when present: RFC 3394 (section 4.6 is the only case with a
// 256-bit KEK and a 256-bit key) and Wycheproof's AES-256 groups restricted to 32-byte keys.
TEST(AesKw, PublishedVectorFiles) {
    size_t run = 0;
    for (const char* file : {"/rfc3394.json", "/wycheproof/aes_wrap_test.json"}) {
        std::ifstream in(std::string(WAFERPROV_VECTOR_DIR) + file);
        if (!in) {
            std::printf("[vectors] %s absent, skipped\n", file);
            continue;
        }
        const auto doc = nlohmann::json::parse(in);
        KwDut dut;
        for (const auto& g : doc.at("testGroups")) {
            if (g.at("keySize").get<int>() != 256) continue;
            for (const auto& t : g.at("tests")) {
                const Bytes kek = from_hex(t.at("key").get<std::string>());
                const Bytes msg = from_hex(t.at("msg").get<std::string>());
                const Bytes ct = from_hex(t.at("ct").get<std::string>());
                if (msg.size() != 32 || ct.size() != 40) continue;  // the block wraps 32 bytes
                const bool valid = t.at("result").get<std::string>() == "valid";
                const int id = t.at("tcId").get<int>();
                if (valid) {
                    EXPECT_EQ(to_hex(dut.run(false, kek, msg).wrapped), to_hex(ct))
                        << file << " tcId " << id;
                }
                auto u = dut.run(true, kek, ct);
                EXPECT_EQ(u.err, !valid) << file << " tcId " << id;
                EXPECT_EQ(to_hex(u.key), valid ? to_hex(msg) : std::string(64, '0'))
                    << file << " tcId " << id;
                ++run;
            }
        }
    }
    std::printf("[vectors] aes_kw: %zu published vectors\n", run);
}

// Random KEKs and keys against OpenSSL: wrap, unwrap of the result, and unwrap of a copy with
// one bit flipped (must fail in both). Each KEK is used twice so the AES core's decryption-key
// cache is hit and missed. Cycle counts must be the same for every key, pass or fail.
TEST(AesKw, RandomWrapUnwrapMatchOpenSslInConstantTime) {
    KwDut dut;
    symbench::Rng rng;
    const size_t n = symbench::vector_count(1000);
    std::set<uint64_t> wrap_c, unwrap_new_c, unwrap_same_c;
    for (size_t i = 0; i < n; ++i) {
        const Bytes kek = rng.bytes(32);
        const Bytes key = rng.bytes(32);
        const Bytes ref = symbench::ossl::kw_wrap(kek, key);
        auto w = dut.run(false, kek, key);
        ASSERT_EQ(to_hex(w.wrapped), to_hex(ref)) << "vector " << i;
        wrap_c.insert(w.cycles);

        auto u = dut.run(true, kek, ref);
        ASSERT_FALSE(u.err) << "vector " << i;
        ASSERT_EQ(to_hex(u.key), to_hex(key)) << "vector " << i;
        unwrap_new_c.insert(u.cycles);

        Bytes bad = ref;
        const uint64_t bit = rng.next() % (bad.size() * 8);
        bad[bit / 8] ^= static_cast<uint8_t>(1U << (bit % 8));
        ASSERT_FALSE(symbench::ossl::kw_unwrap(kek, bad).has_value());
        auto f = dut.run(true, kek, bad);
        ASSERT_TRUE(f.err) << "vector " << i;
        ASSERT_EQ(to_hex(f.key), std::string(64, '0'));
        unwrap_same_c.insert(f.cycles);
    }
    EXPECT_EQ(wrap_c, std::set<uint64_t>{kWrapCycles});
    EXPECT_EQ(unwrap_new_c, std::set<uint64_t>{kUnwrapCycles});
    EXPECT_EQ(unwrap_same_c, std::set<uint64_t>{kUnwrapCycles});
    std::printf("[vectors] aes_kw: %zu wraps, %zu unwraps, %zu corrupted unwraps matched OpenSSL\n",
                n, n, n);
}

// zeroize_i in the middle of an unwrap: no response, KEK/A/R cleared in one cycle, and the
// block then works normally.
TEST(AesKw, ZeroizeMidOperationClearsSecrets) {
    KwDut dut;
    auto& h = dut.h();
    symbench::Rng rng;
    const Bytes kek = rng.bytes(32);
    const Bytes key = rng.bytes(32);
    const Bytes ct = symbench::ossl::kw_wrap(kek, key);
    h->req_valid_i = 1;
    h->req_unwrap_i = 1;
    symbench::put(h->req_kek_i, kek);
    symbench::put(h->req_wrapped_i, ct);
    h.tick();
    h->req_valid_i = 0;
    for (int i = 0; i < 100; ++i) h.tick();
    h->zeroize_i = 1;
    h.tick();
    h->zeroize_i = 0;
    h.dut().eval();
    const auto* root = h.dut().rootp;
    EXPECT_TRUE(symbench::all_zero(root->tb_aes_kw__DOT__u_kw__DOT__kek_q));
    EXPECT_TRUE(symbench::all_zero(root->tb_aes_kw__DOT__u_kw__DOT__r_q));
    EXPECT_EQ(root->tb_aes_kw__DOT__u_kw__DOT__a_q, 0U);
    EXPECT_TRUE(symbench::all_zero(root->tb_aes_kw__DOT__u_aes__DOT__kreg_q));
    EXPECT_TRUE(symbench::all_zero(root->tb_aes_kw__DOT__u_aes__DOT__state_q));
    for (int i = 0; i < 500; ++i) {
        h.tick();
        ASSERT_EQ(h->rsp_valid_o, 0);
    }
    auto u = dut.run(true, kek, ct);
    EXPECT_FALSE(u.err);
    EXPECT_EQ(to_hex(u.key), to_hex(key));
}

}  // namespace
