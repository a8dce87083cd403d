// OpenSSL 3 reference models for the symmetric RTL benches: AES-256-ECB, AES-256-CMAC, the
// WPID-1 KEK (KBKDF counter mode over CMAC), RFC 3394 key wrap and CTR_DRBG (AES-256, no df).
// Every OpenSSL object lives in a drivers/common RAII handle; a failing OpenSSL call throws
// std::runtime_error carrying the drained error queue (benches only, so exceptions are fine).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "bits.hpp"
#include "waferprov/ossl.hpp"

namespace symbench::ossl {

// The RAII handles and the error-queue reader are drivers/common's (waferprov/ossl.hpp).
using waferprov::ossl::Cipher;
using waferprov::ossl::CipherCtx;
using waferprov::ossl::Kdf;
using waferprov::ossl::KdfCtx;
using waferprov::ossl::Mac;
using waferprov::ossl::MacCtx;
using waferprov::ossl::Rand;
using waferprov::ossl::RandCtx;

[[noreturn]] inline void fail(const std::string& what) {
    throw std::runtime_error(waferprov::ossl::ossl_error("OpenSSL: " + what).message);
}

inline void check(int ok, const char* what) {
    if (ok != 1) fail(what);
}

template <class T>
T* check_ptr(T* p, const char* what) {
    if (p == nullptr) fail(what);
    return p;
}

// One AES-256 block in ECB mode, no padding.
inline Bytes aes256_block(std::span<const uint8_t> key, std::span<const uint8_t> in, bool encrypt) {
    CipherCtx ctx(check_ptr(EVP_CIPHER_CTX_new(), "EVP_CIPHER_CTX_new"));
    check(EVP_CipherInit_ex2(ctx.get(), EVP_aes_256_ecb(), key.data(), nullptr, encrypt ? 1 : 0,
                             nullptr),
          "EVP_CipherInit_ex2(aes-256-ecb)");
    check(EVP_CIPHER_CTX_set_padding(ctx.get(), 0), "set_padding");
    Bytes out(16);
    int len = 0;
    check(EVP_CipherUpdate(ctx.get(), out.data(), &len, in.data(), 16), "EVP_CipherUpdate");
    return out;
}

// AES-256-CMAC of an arbitrary message.
inline Bytes aes256_cmac(std::span<const uint8_t> key, std::span<const uint8_t> msg) {
    Mac mac(check_ptr(EVP_MAC_fetch(nullptr, "CMAC", nullptr), "EVP_MAC_fetch(CMAC)"));
    MacCtx ctx(check_ptr(EVP_MAC_CTX_new(mac.get()), "EVP_MAC_CTX_new"));
    char cipher[] = "AES-256-CBC";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
                           OSSL_PARAM_construct_end()};
    check(EVP_MAC_init(ctx.get(), key.data(), key.size(), params), "EVP_MAC_init");
    check(EVP_MAC_update(ctx.get(), msg.data(), msg.size()), "EVP_MAC_update");
    Bytes out(16);
    size_t len = 0;
    check(EVP_MAC_final(ctx.get(), out.data(), &len, out.size()), "EVP_MAC_final");
    return out;
}

// WPID-1 KEK = KBKDF-CTR-CMAC(KIK, label "WPID-1 KEK", context UID, 256 bits).
inline Bytes wpid_kek(std::span<const uint8_t> kik, std::span<const uint8_t> uid) {
    Kdf kdf(check_ptr(EVP_KDF_fetch(nullptr, "KBKDF", nullptr), "EVP_KDF_fetch(KBKDF)"));
    KdfCtx ctx(check_ptr(EVP_KDF_CTX_new(kdf.get()), "EVP_KDF_CTX_new"));
    char mac[] = "CMAC";
    char cipher[] = "AES-256-CBC";
    char mode[] = "counter";
    static const char kLabel[] = "WPID-1 KEK";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, mode, 0),
                           OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, mac, 0),
                           OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_CIPHER, cipher, 0),
                           OSSL_PARAM_construct_octet_string(
                               OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(kik.data()), kik.size()),
                           OSSL_PARAM_construct_octet_string(
                               OSSL_KDF_PARAM_SALT, const_cast<char*>(kLabel), sizeof kLabel - 1),
                           OSSL_PARAM_construct_octet_string(
                               OSSL_KDF_PARAM_INFO, const_cast<uint8_t*>(uid.data()), uid.size()),
                           OSSL_PARAM_construct_end()};
    Bytes out(32);
    check(EVP_KDF_derive(ctx.get(), out.data(), out.size(), params), "EVP_KDF_derive(KBKDF)");
    return out;
}

// RFC 3394 wrap (default IV) of `key` under `kek`.
inline Bytes kw_wrap(std::span<const uint8_t> kek, std::span<const uint8_t> key) {
    CipherCtx ctx(check_ptr(EVP_CIPHER_CTX_new(), "EVP_CIPHER_CTX_new"));
    EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    Cipher c(check_ptr(EVP_CIPHER_fetch(nullptr, "id-aes256-wrap", nullptr), "fetch wrap"));
    check(EVP_EncryptInit_ex2(ctx.get(), c.get(), kek.data(), nullptr, nullptr), "wrap init");
    Bytes out(key.size() + 8);
    int len = 0;
    check(EVP_EncryptUpdate(ctx.get(), out.data(), &len, key.data(), static_cast<int>(key.size())),
          "wrap update");
    out.resize(static_cast<size_t>(len));
    return out;
}

// RFC 3394 unwrap; nullopt when the integrity check fails.
inline std::optional<Bytes> kw_unwrap(std::span<const uint8_t> kek, std::span<const uint8_t> in) {
    CipherCtx ctx(check_ptr(EVP_CIPHER_CTX_new(), "EVP_CIPHER_CTX_new"));
    EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    Cipher c(check_ptr(EVP_CIPHER_fetch(nullptr, "id-aes256-wrap", nullptr), "fetch wrap"));
    check(EVP_DecryptInit_ex2(ctx.get(), c.get(), kek.data(), nullptr, nullptr), "unwrap init");
    Bytes out(in.size());
    int len = 0;
    if (EVP_DecryptUpdate(ctx.get(), out.data(), &len, in.data(), static_cast<int>(in.size())) !=
            1 ||
        len <= 0) {
        ERR_clear_error();
        return std::nullopt;
    }
    out.resize(static_cast<size_t>(len));
    return out;
}

// SP 800-90A CTR_DRBG, AES-256, no derivation function, fed by OpenSSL's TEST-RAND parent so
// that the bench chooses the entropy. Automatic reseeding is turned off: the bench, like the
// hardware, reseeds only when told to.
class CtrDrbg {
public:
    CtrDrbg() {
        Rand test(check_ptr(EVP_RAND_fetch(nullptr, "TEST-RAND", nullptr), "fetch TEST-RAND"));
        parent_.reset(check_ptr(EVP_RAND_CTX_new(test.get(), nullptr), "TEST-RAND ctx"));
        unsigned strength = 256;
        OSSL_PARAM pp[] = {OSSL_PARAM_construct_uint(OSSL_RAND_PARAM_STRENGTH, &strength),
                           OSSL_PARAM_construct_end()};
        check(EVP_RAND_CTX_set_params(parent_.get(), pp), "TEST-RAND strength");

        Rand ctr(check_ptr(EVP_RAND_fetch(nullptr, "CTR-DRBG", nullptr), "fetch CTR-DRBG"));
        drbg_.reset(check_ptr(EVP_RAND_CTX_new(ctr.get(), parent_.get()), "CTR-DRBG ctx"));
        char cipher[] = "AES-256-CTR";
        int use_df = 0;
        unsigned requests = 0;
        OSSL_PARAM dp[] = {OSSL_PARAM_construct_utf8_string(OSSL_DRBG_PARAM_CIPHER, cipher, 0),
                           OSSL_PARAM_construct_int(OSSL_DRBG_PARAM_USE_DF, &use_df),
                           OSSL_PARAM_construct_uint(OSSL_DRBG_PARAM_RESEED_REQUESTS, &requests),
                           OSSL_PARAM_construct_end()};
        check(EVP_RAND_CTX_set_params(drbg_.get(), dp), "CTR-DRBG params");
    }

    // Instantiate with 48 bytes of entropy and an optional personalization string. A non-NULL,
    // zero-length string is passed when there is none: with NULL OpenSSL mixes in a default
    // personalization string of its own.
    void instantiate(std::span<const uint8_t> entropy, std::span<const uint8_t> pers) {
        set_entropy(entropy);
        static const unsigned char kEmpty[1] = {0};
        const unsigned char* p = pers.empty() ? kEmpty : pers.data();
        check(EVP_RAND_instantiate(drbg_.get(), 256, 0, p, pers.size(), nullptr),
              "CTR-DRBG instantiate");
    }

    void reseed(std::span<const uint8_t> entropy) {
        set_entropy(entropy);
        check(EVP_RAND_reseed(drbg_.get(), 0, nullptr, 0, nullptr, 0), "CTR-DRBG reseed");
    }

    Bytes generate(size_t n = 32) {
        Bytes out(n);
        check(EVP_RAND_generate(drbg_.get(), out.data(), n, 256, 0, nullptr, 0),
              "CTR-DRBG generate");
        return out;
    }

private:
    void set_entropy(std::span<const uint8_t> entropy) {
        OSSL_PARAM p[] = {
            OSSL_PARAM_construct_octet_string(OSSL_RAND_PARAM_TEST_ENTROPY,
                                              const_cast<uint8_t*>(entropy.data()), entropy.size()),
            OSSL_PARAM_construct_end()};
        check(EVP_RAND_CTX_set_params(parent_.get(), p), "TEST-RAND entropy");
    }

    RandCtx parent_;
    RandCtx drbg_;
};

}  // namespace symbench::ossl
