// Verilator bench for rtl/symmetric/aes_cmac.sv (with an aes256 core): the SP 800-38B AES-256 CMAC
// examples, Wycheproof's 256-bit-key CMAC vectors, the CAVP SP 800-108 counter-mode CMAC-AES256
// KDF vectors (computed with the DUT as K(i) = CMAC(KI, [i]32 || FixedInputData)), and random
// keys and messages against OpenSSL EVP_MAC CMAC.
#include <cstdio>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "Vtb_aes_cmac.h"
#include "Vtb_aes_cmac___024root.h"
#include "bench/harness.hpp"
#include "bits.hpp"
#include "ossl_ref.hpp"
#include "rsp.hpp"

namespace {

using symbench::Bytes;
using symbench::from_hex;
using symbench::to_hex;

constexpr uint64_t kTimeout = 5000;

class CmacDut {
public:
    CmacDut() { h_.reset(); }

    // Derives the subkeys for `key`; returns the cycles spent.
    uint64_t init(std::span<const uint8_t> key) {
        symbench::put(h_->key_i, key);
        h_->init_valid_i = 1;
        h_.dut().eval();
        const uint64_t start = h_.cycles();
        h_.run_until([&] { return h_->init_ready_o != 0; }, kTimeout);
        h_.tick();
        h_->init_valid_i = 0;
        h_.dut().eval();
        h_.run_until([&] { return h_->keyed_o != 0; }, kTimeout);
        return h_.cycles() - start;
    }

    struct Result {
        Bytes tag;
        uint64_t cycles;  // first block offered up to the cycle the tag is seen
    };

    // MAC of `msg` under the key given to init().
    Result mac(std::span<const uint8_t> msg) {
        const size_t nblk = msg.empty() ? 1 : (msg.size() + 15) / 16;
        const uint64_t start = h_.cycles();
        for (size_t b = 0; b < nblk; ++b) {
            const size_t off = b * 16;
            const size_t len = std::min<size_t>(16, msg.size() - off);
            Bytes blk(16, 0);
            std::copy_n(msg.begin() + static_cast<std::ptrdiff_t>(off), len, blk.begin());
            symbench::put(h_->msg_data_i, blk);
            h_->msg_last_i = (b + 1 == nblk) ? 1 : 0;
            h_->msg_bytes_i = static_cast<uint8_t>(len);
            h_->msg_valid_i = 1;
            h_.dut().eval();
            h_.run_until([&] { return h_->msg_ready_o != 0; }, kTimeout);
            h_.tick();
        }
        h_->msg_valid_i = 0;
        h_.dut().eval();
        h_.run_until([&] { return h_->tag_valid_o != 0; }, kTimeout);
        Result r{symbench::get(h_->tag_o, 16), h_.cycles() - start};
        h_->tag_ready_i = 1;
        h_.tick();
        h_->tag_ready_i = 0;
        h_.dut().eval();
        return r;
    }

    bench::Harness<Vtb_aes_cmac>& h() { return h_; }

private:
    bench::Harness<Vtb_aes_cmac> h_;
};

// NIST SP 800-38B / "CMAC examples" (AES-256): the four messages of RFC 4493's examples.
TEST(AesCmac, Sp800_38bAes256Examples) {
    const Bytes key = from_hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
    const Bytes m64 = from_hex(
        "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
        "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710");
    struct Case {
        size_t len;
        const char* tag;
    };
    const Case cases[] = {{0, "028962f61b7bf89efc6b551f4667d983"},
                          {16, "28a7023f452e8f82bd4bf28d8c37c35c"},
                          {40, "aaf3d8f1de5640c232f5b169b9c911e6"},
                          {64, "e1992190549f6ed5696a2c056c315410"}};
    CmacDut dut;
    const uint64_t init_cycles = dut.init(key);
    for (const auto& c : cases) {
        auto r = dut.mac(std::span(m64).first(c.len));
        EXPECT_EQ(to_hex(r.tag), c.tag) << "length " << c.len;
        std::printf("[cycles] aes_cmac %2zu-byte message: %llu cycles\n", c.len,
                    static_cast<unsigned long long>(r.cycles));
    }
    std::printf("[cycles] aes_cmac subkey derivation: %llu cycles\n",
                static_cast<unsigned long long>(init_cycles));
}

TEST(AesCmac, WycheproofAes256Vectors) {
    std::ifstream in(std::string(WAFERPROV_VECTOR_DIR) + "/wycheproof/aes_cmac_test.json");
    if (!in) GTEST_SKIP() << "wycheproof/aes_cmac_test.json absent";
    const auto doc = nlohmann::json::parse(in);
    CmacDut dut;
    size_t run = 0;
    for (const auto& g : doc.at("testGroups")) {
        if (g.at("keySize").get<int>() != 256 || g.at("tagSize").get<int>() != 128) continue;
        for (const auto& t : g.at("tests")) {
            const Bytes key = from_hex(t.at("key").get<std::string>());
            const Bytes msg = from_hex(t.at("msg").get<std::string>());
            const std::string tag = t.at("tag").get<std::string>();
            const bool valid = t.at("result").get<std::string>() == "valid";
            dut.init(key);
            const std::string got = to_hex(dut.mac(msg).tag);
            EXPECT_EQ(got == tag, valid) << "tcId " << t.at("tcId").get<int>();
            ++run;
        }
    }
    std::printf("[vectors] aes_cmac: %zu Wycheproof vectors\n", run);
    EXPECT_GT(run, 0U);
}

// CAVP KDFCTR [PRF=CMAC_AES256][CTRLOCATION=BEFORE_FIXED][RLEN=32_BITS]: every KO is the
// concatenation of CMAC(KI, [i]32 || FixedInputData), i = 1.., truncated to L bits. The CMAC
// runs on the DUT; the WPID-1 KDF block (wpid_kdf_test) uses the same construction.
TEST(AesCmac, CavpKbkdfCounterModeVectors) {
    const auto recs =
        symbench::read_rsp(std::string(WAFERPROV_VECTOR_DIR) + "/cavp/kbkdf_ctr_cmac_aes256.rsp");
    if (!recs) GTEST_SKIP() << "cavp/kbkdf_ctr_cmac_aes256.rsp absent";
    CmacDut dut;
    size_t run = 0;
    for (const auto& r : *recs) {
        if (!r.has("KO")) continue;
        const Bytes ki = from_hex(r.at("KI"));
        const Bytes fixed = from_hex(r.at("FixedInputData"));
        const Bytes ko = from_hex(r.at("KO"));
        const size_t lbits = std::stoul(r.at("L"));
        ASSERT_EQ(ko.size() * 8, lbits);
        dut.init(ki);
        Bytes out;
        for (uint32_t i = 1; out.size() < ko.size(); ++i) {
            Bytes msg = {static_cast<uint8_t>(i >> 24), static_cast<uint8_t>(i >> 16),
                         static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
            msg.insert(msg.end(), fixed.begin(), fixed.end());
            const Bytes k = dut.mac(msg).tag;
            out.insert(out.end(), k.begin(), k.end());
        }
        out.resize(ko.size());
        EXPECT_EQ(to_hex(out), to_hex(ko)) << "COUNT " << r.at("COUNT");
        ++run;
    }
    std::printf("[vectors] aes_cmac: %zu CAVP KBKDF counter-mode vectors\n", run);
    EXPECT_GT(run, 0U);
}

// Random keys and messages of 0..80 bytes against OpenSSL; several messages per key (subkeys
// are derived once per key). The cycle count depends only on the number of blocks.
TEST(AesCmac, RandomMessagesMatchOpenSsl) {
    CmacDut dut;
    symbench::Rng rng;
    const size_t n = symbench::vector_count(2000);
    std::set<std::pair<size_t, uint64_t>> cycles_by_blocks;
    Bytes key;
    for (size_t i = 0; i < n; ++i) {
        if (i % 4 == 0) {
            key = rng.bytes(32);
            dut.init(key);
        }
        const Bytes msg = rng.bytes(rng.next() % 81);
        const Bytes ref = symbench::ossl::aes256_cmac(key, msg);
        auto r = dut.mac(msg);
        ASSERT_EQ(to_hex(r.tag), to_hex(ref)) << "vector " << i << " length " << msg.size();
        cycles_by_blocks.insert({msg.empty() ? 1 : (msg.size() + 15) / 16, r.cycles});
    }
    for (const auto& [blocks, cycles] : cycles_by_blocks)
        EXPECT_EQ(cycles, 15 * blocks) << blocks << " blocks";
    std::printf("[vectors] aes_cmac: %zu random messages matched OpenSSL\n", n);
}

TEST(AesCmac, ZeroizeClearsSubkeyAndChainingValue) {
    CmacDut dut;
    auto& h = dut.h();
    symbench::Rng rng;
    const Bytes key = rng.bytes(32);
    dut.init(key);
    EXPECT_FALSE(symbench::all_zero(h.dut().rootp->tb_aes_cmac__DOT__u_cmac__DOT__k1_q));
    h->zeroize_i = 1;
    h.tick();
    h->zeroize_i = 0;
    h.dut().eval();
    EXPECT_TRUE(symbench::all_zero(h.dut().rootp->tb_aes_cmac__DOT__u_cmac__DOT__k1_q));
    EXPECT_TRUE(symbench::all_zero(h.dut().rootp->tb_aes_cmac__DOT__u_cmac__DOT__x_q));
    EXPECT_EQ(h->keyed_o, 0);
    EXPECT_EQ(h->msg_ready_o, 0) << "no message accepted without subkeys";
    dut.init(key);
    const Bytes msg = rng.bytes(33);
    EXPECT_EQ(to_hex(dut.mac(msg).tag), to_hex(symbench::ossl::aes256_cmac(key, msg)));
}

}  // namespace
