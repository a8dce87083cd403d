// Test fixtures for the ledger: a throwaway P-256 CA with a Signer over it, minimal device
// certificates it signs, identities (fake ones for storage tests, real keys + certificates for
// export tests) and a temporary directory.
#pragma once

#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "store_support.hpp"
#include "waferprov/host/ledger.hpp"
#include "waferprov/ossl.hpp"
#include "waferprov/testing/temp_dir.hpp"

namespace waferprov::host::testing {

namespace fs = std::filesystem;
using ossl::Bio;

using waferprov::testing::TempDir;

inline ossl::Pkey p256_key() {
    ossl::Pkey k(EVP_EC_gen("P-256"));
    EXPECT_TRUE(k);
    return k;
}

inline std::array<uint8_t, 65> public_point(EVP_PKEY* k) {
    std::array<uint8_t, 65> p{};
    size_t n = 0;
    EXPECT_EQ(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, p.data(), p.size(), &n),
              1);
    EXPECT_EQ(n, 65u);
    return p;
}

inline Bytes der_of(const X509* c) {
    auto der = ossl::der_of(c);
    EXPECT_TRUE(der.ok()) << der.error().describe();
    return der.ok() ? std::move(der).value() : Bytes{};
}

inline std::string pem_of(X509* c) {
    Bio bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(bio.get(), c);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(n));
}

// A self-signed P-256 CA and a Signer over its key.
class TestCa final : public Signer {
public:
    explicit TestCa(const std::string& cn = "waferprov test CA") : key_(p256_key()) {
        cert_.reset(X509_new());
        X509_set_version(cert_.get(), X509_VERSION_3);
        ASN1_INTEGER_set(X509_get_serialNumber(cert_.get()), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert_.get()), 0);
        X509_gmtime_adj(X509_getm_notAfter(cert_.get()), 3600L * 24 * 365);
        X509_NAME* name = X509_get_subject_name(cert_.get());
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
        X509_set_issuer_name(cert_.get(), name);
        X509_set_pubkey(cert_.get(), key_.get());
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, cert_.get(), cert_.get(), nullptr, nullptr, 0);
        using Ext = ossl::Ptr<X509_EXTENSION, X509_EXTENSION_free>;
        for (const auto& [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                                         std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                                         std::pair{NID_subject_key_identifier, "hash"}}) {
            Ext ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
            EXPECT_TRUE(ext && X509_add_ext(cert_.get(), ext.get(), -1) == 1);
        }
        EXPECT_GT(X509_sign(cert_.get(), key_.get(), EVP_sha256()), 0);
        der_ = der_of(cert_.get());
    }

    Result<Bytes> sign_sha256_digest(const std::array<uint8_t, 32>& digest) override {
        ossl::PkeyCtx ctx(EVP_PKEY_CTX_new(key_.get(), nullptr));
        size_t n = 0;
        if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
            EVP_PKEY_sign(ctx.get(), nullptr, &n, digest.data(), digest.size()) != 1)
            return ossl::ossl_error("test CA sign");
        Bytes sig(n);
        if (EVP_PKEY_sign(ctx.get(), sig.data(), &n, digest.data(), digest.size()) != 1)
            return ossl::ossl_error("test CA sign");
        sig.resize(n);
        return sig;
    }
    const Bytes& certificate_der() const override { return der_; }
    std::string describe() const override { return "test CA"; }

    X509* cert() const { return cert_.get(); }
    EVP_PKEY* key() const { return key_.get(); }
    std::string cert_pem() const { return pem_of(cert_.get()); }
    std::string key_pem() const {
        Bio bio(BIO_new(BIO_s_mem()));
        PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr);
        char* data = nullptr;
        const long n = BIO_get_mem_data(bio.get(), &data);
        return std::string(data, static_cast<size_t>(n));
    }

    // A minimal device certificate: serial, subject CN + serialNumber = UID hex, the device key.
    Bytes device_cert(const wpid1::Uid& uid, const Bytes& serial, EVP_PKEY* device_key) const {
        ossl::X509Ptr c(X509_new());
        X509_set_version(c.get(), X509_VERSION_3);
        ossl::Bn bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
        BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(c.get()));
        X509_gmtime_adj(X509_getm_notBefore(c.get()), 0);
        X509_gmtime_adj(X509_getm_notAfter(c.get()), 3600L * 24 * 365 * 20);
        X509_NAME* name = X509_get_subject_name(c.get());
        const std::string hex = to_hex(uid);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(hex.c_str()), -1, -1, 0);
        X509_NAME_add_entry_by_NID(name, NID_serialNumber, MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(hex.c_str()), -1, -1, 0);
        X509_set_issuer_name(c.get(), X509_get_subject_name(cert_.get()));
        X509_set_pubkey(c.get(), device_key);
        EXPECT_GT(X509_sign(c.get(), key_.get(), EVP_sha256()), 0);
        return der_of(c.get());
    }

private:
    ossl::Pkey key_;
    ossl::X509Ptr cert_;
    Bytes der_;
};

inline wpid1::Uid uid_of(uint64_t n, uint8_t tag = 0xa5) {
    wpid1::Uid u{};
    u[0] = tag;
    store_be64(u.data() + 8, n);
    return u;
}

inline Bytes serial_of(uint64_t n, uint8_t tag = 0x11) {
    Bytes s(9);
    s[0] = tag;
    store_be64(s.data() + 1, n);
    return s;
}

// A storage-only identity: fake key bytes and a fake certificate blob (the ledger does not
// parse certificates; verify_export does, so use real_identity for exports).
// Runs `sql` on the ledger behind the ledger's back (a tampering test's edit), with the store's
// own tool (store_support.hpp); SQLITE_OK, or the code of what refused it.
inline int sqlite_edit(const std::filesystem::path& ledger, const char* sql) {
    return raw_sql(ledger, sql);
}

inline NewIdentity fake_identity(uint64_t n, const std::string& lot = "LOT1", int wafer = 1,
                                 uint8_t tag = 0xa5) {
    NewIdentity id;
    id.loc = DieLocation{lot, wafer, static_cast<int>(n % 100), static_cast<int>(n / 100),
                         lot + "-" + std::to_string(wafer)};
    id.uid = uid_of(n, tag);
    id.serial = serial_of(n, tag);
    id.public_key[0] = 0x04;
    for (size_t i = 1; i < 65; ++i) id.public_key[i] = static_cast<uint8_t>(n * 7 + i);
    for (size_t i = 0; i < id.wrapped.size(); ++i) id.wrapped[i] = static_cast<uint8_t>(n + i);
    id.certificate_der.assign(420, static_cast<uint8_t>(n));
    id.tester = "T1";
    return id;
}

inline NewIdentity real_identity(const TestCa& ca, uint64_t n, const DieLocation& loc) {
    NewIdentity id;
    id.loc = loc;
    id.uid = uid_of(n);
    id.serial = serial_of(n);
    auto key = p256_key();
    id.public_key = public_point(key.get());
    for (size_t i = 0; i < id.wrapped.size(); ++i) id.wrapped[i] = static_cast<uint8_t>(n ^ i);
    id.certificate_der = ca.device_cert(id.uid, id.serial, key.get());
    id.tester = "T1";
    return id;
}

inline LedgerConfig test_config(uint64_t quota = 1000, const std::string& job = "JOB-1") {
    return LedgerConfig{job, "ACME", "WP-TEST", quota, 30000};
}

inline std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += x + "\n";
    return s;
}

inline bool any_contains(const std::vector<std::string>& v, const std::string& needle) {
    for (const auto& s : v)
        if (s.find(needle) != std::string::npos) return true;
    return false;
}

inline void write_text(const fs::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
}

// One die's result through Ledger::mark_results (the ledger has no single-die call: the tester
// link reports a touchdown at a time).
inline Result<TransitionResult> mark_result(Ledger& l, const wpid1::Uid& uid, bool programmed,
                                            const std::string& bin, const std::string& tester) {
    const DieResult r{uid, programmed, bin};
    WP_ASSIGN_OR_RETURN(auto v, l.mark_results(std::span<const DieResult>(&r, 1), tester));
    return std::move(v.front());
}

}  // namespace waferprov::host::testing
