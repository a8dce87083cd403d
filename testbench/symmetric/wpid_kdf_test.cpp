// Verilator bench for rtl/symmetric/wpid_kdf.sv (with an aes256 core): the WPID-1 KEK against
// OpenSSL's KBKDF (counter mode, CMAC, AES-256-CBC, salt "WPID-1 KEK", info UID, 32 bytes), with
// new and reused KIKs, cycle counts and zeroize.
#include <cstdio>
#include <set>

#include <gtest/gtest.h>

#include "Vtb_wpid_kdf.h"
#include "Vtb_wpid_kdf___024root.h"
#include "bench/harness.hpp"
#include "bits.hpp"
#include "ossl_ref.hpp"

namespace {

using symbench::Bytes;
using symbench::from_hex;
using symbench::to_hex;

constexpr uint64_t kTimeout = 2000;

class KdfDut {
public:
    KdfDut() { h_.reset(); }

    struct Result {
        Bytes kek;
        uint64_t cycles;  // from the accepting cycle up to the cycle rsp_valid_o is seen
    };

    Result run(std::span<const uint8_t> kik, bool new_kik, std::span<const uint8_t> uid) {
        h_->req_valid_i = 1;
        h_->req_new_kik_i = new_kik ? 1 : 0;
        symbench::put(h_->req_kik_i, kik);
        symbench::put(h_->req_uid_i, uid);
        h_.dut().eval();
        h_.run_until([&] { return h_->req_ready_o != 0; }, kTimeout);
        h_.tick();
        h_->req_valid_i = 0;
        symbench::put(h_->req_kik_i, Bytes(32, 0));  // the block must have kept its own copy
        const uint64_t spent = h_.run_until([&] { return h_->rsp_valid_o != 0; }, kTimeout);
        Result r{symbench::get(h_->rsp_kek_o, 32), spent + 1};
        h_->rsp_ready_i = 1;
        h_.tick();
        h_->rsp_ready_i = 0;
        h_.dut().eval();
        return r;
    }

    bench::Harness<Vtb_wpid_kdf>& h() { return h_; }

private:
    bench::Harness<Vtb_wpid_kdf> h_;
};

// The KBKDF message layout, checked once by hand against OpenSSL so that a misconfigured
// reference cannot hide a wrong layout in both.
TEST(WpidKdf, OpenSslKbkdfEqualsExplicitCmacLayout) {
    symbench::Rng rng;
    const Bytes kik = rng.bytes(32);
    const Bytes uid = rng.bytes(16);
    Bytes kek;
    for (uint8_t i = 1; i <= 2; ++i) {
        // [i]32 || "WPID-1 KEK" || 0x00 || UID || [256]32
        Bytes msg(35, 0);
        msg[3] = i;
        const std::string label = "WPID-1 KEK";
        std::copy(label.begin(), label.end(), msg.begin() + 4);
        std::copy(uid.begin(), uid.end(), msg.begin() + 15);
        msg[33] = 0x01;
        ASSERT_EQ(msg.size(), 35U);
        const Bytes k = symbench::ossl::aes256_cmac(kik, msg);
        kek.insert(kek.end(), k.begin(), k.end());
    }
    EXPECT_EQ(to_hex(kek), to_hex(symbench::ossl::wpid_kek(kik, uid)));
}

// Random KIKs and UIDs against OpenSSL; each KIK serves four UIDs (subkeys derived once).
// Cycle counts are fixed: one value for a new KIK, one for a reused KIK.
TEST(WpidKdf, RandomKeksMatchOpenSslKbkdf) {
    KdfDut dut;
    symbench::Rng rng;
    const size_t n = symbench::vector_count(2000);
    std::set<uint64_t> new_c, reuse_c;
    Bytes kik;
    for (size_t i = 0; i < n; ++i) {
        const bool new_kik = (i % 4) == 0;
        if (new_kik) kik = rng.bytes(32);
        const Bytes uid = rng.bytes(16);
        auto r = dut.run(kik, new_kik, uid);
        ASSERT_EQ(to_hex(r.kek), to_hex(symbench::ossl::wpid_kek(kik, uid))) << "vector " << i;
        (new_kik ? new_c : reuse_c).insert(r.cycles);
    }
    ASSERT_EQ(new_c.size(), 1U);
    ASSERT_EQ(reuse_c.size(), 1U);
    std::printf("[cycles] wpid_kdf KEK: %llu cycles with a new KIK, %llu with the KIK kept\n",
                static_cast<unsigned long long>(*new_c.begin()),
                static_cast<unsigned long long>(*reuse_c.begin()));
    std::printf("[vectors] wpid_kdf: %zu KEKs matched OpenSSL KBKDF\n", n);
    EXPECT_EQ(*reuse_c.begin(), 3 + 6 * 15U);
    EXPECT_EQ(*new_c.begin(), *reuse_c.begin() + 15 + 3);
}

// The first request after reset or zeroize loads the KIK even without req_new_kik_i.
TEST(WpidKdf, ZeroizeForgetsKikAndKek) {
    KdfDut dut;
    auto& h = dut.h();
    symbench::Rng rng;
    const Bytes kik = rng.bytes(32);
    const Bytes uid = rng.bytes(16);
    const Bytes ref = symbench::ossl::wpid_kek(kik, uid);
    EXPECT_EQ(to_hex(dut.run(kik, false, uid).kek), to_hex(ref));
    h->zeroize_i = 1;
    h.tick();
    h->zeroize_i = 0;
    h.dut().eval();
    const auto* root = h.dut().rootp;
    EXPECT_TRUE(symbench::all_zero(root->tb_wpid_kdf__DOT__u_kdf__DOT__kik_q));
    EXPECT_TRUE(symbench::all_zero(root->tb_wpid_kdf__DOT__u_kdf__DOT__kek_q));
    EXPECT_TRUE(symbench::all_zero(root->tb_wpid_kdf__DOT__u_kdf__DOT__u_cmac__DOT__k1_q));
    const Bytes kik2 = rng.bytes(32);
    EXPECT_EQ(to_hex(dut.run(kik2, false, uid).kek), to_hex(symbench::ossl::wpid_kek(kik2, uid)));
}

}  // namespace
