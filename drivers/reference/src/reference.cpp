#include "waferprov/reference.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>

#include "waferprov/ossl.hpp"

namespace waferprov::reference {
namespace {

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error("reference: " + ossl::ossl_error(what).message);
}

const char* aes_name(size_t key_len, const char* mode) {
    static thread_local std::string name;
    name = "AES-" + std::to_string(key_len * 8) + "-" + mode;
    return name.c_str();
}

// P-256 from its published parameters (SEC 2 / FIPS 186-4), as an explicit curve so that
// OpenSSL uses its generic GFp code rather than the nistz256 path.
ossl::EcGroup explicit_p256() {
    static const char* kP = "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff";
    static const char* kA = "ffffffff00000001000000000000000000000000fffffffffffffffffffffffc";
    static const char* kB = "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b";
    static const char* kGx = "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296";
    static const char* kGy = "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
    static const char* kN = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
    BIGNUM *p = nullptr, *a = nullptr, *b = nullptr, *gx = nullptr, *gy = nullptr, *n = nullptr;
    BN_hex2bn(&p, kP);
    BN_hex2bn(&a, kA);
    BN_hex2bn(&b, kB);
    BN_hex2bn(&gx, kGx);
    BN_hex2bn(&gy, kGy);
    BN_hex2bn(&n, kN);
    ossl::Bn hp(p), ha(a), hb(b), hgx(gx), hgy(gy), hn(n), one(BN_new());
    BN_one(one.get());
    ossl::BnCtx ctx(BN_CTX_new());
    ossl::EcGroup g(EC_GROUP_new_curve_GFp(p, a, b, ctx.get()));
    if (!g) fail("EC_GROUP_new_curve_GFp");
    ossl::EcPoint gen(EC_POINT_new(g.get()));
    if (EC_POINT_set_affine_coordinates(g.get(), gen.get(), gx, gy, ctx.get()) != 1 ||
        EC_GROUP_set_generator(g.get(), gen.get(), n, one.get()) != 1)
        fail("setting the P-256 generator");
    return g;
}

}  // namespace

Bytes kek(ByteSpan kik, ByteSpan uid) {
    ossl::Kdf kdf(EVP_KDF_fetch(nullptr, "KBKDF", nullptr));
    if (!kdf) fail("EVP_KDF_fetch KBKDF");
    ossl::KdfCtx ctx(EVP_KDF_CTX_new(kdf.get()));
    char mode[] = "COUNTER", mac[] = "CMAC", cipher[] = "AES-256-CBC";
    std::string label(wpid1::kKekLabel);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, mode, 0),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, mac, 0),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_CIPHER, cipher, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(kik.data()),
                                          kik.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, label.data(), label.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<uint8_t*>(uid.data()),
                                          uid.size()),
        OSSL_PARAM_construct_end()};
    Bytes out(32);
    if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) fail("KBKDF derive");
    return out;
}

Bytes cmac(ByteSpan key, ByteSpan message) {
    ossl::Mac mac(EVP_MAC_fetch(nullptr, "CMAC", nullptr));
    ossl::MacCtx ctx(EVP_MAC_CTX_new(mac.get()));
    std::string cipher = aes_name(key.size(), "CBC");
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher.data(), 0),
        OSSL_PARAM_construct_end()};
    if (!ctx || EVP_MAC_init(ctx.get(), key.data(), key.size(), params) != 1 ||
        EVP_MAC_update(ctx.get(), message.data(), message.size()) != 1)
        fail("CMAC");
    Bytes out(16);
    size_t len = 0;
    if (EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1 || len != 16)
        fail("CMAC final");
    return out;
}

Bytes kbkdf_cmac_fixed(ByteSpan key, ByteSpan fixed, size_t out_len) {
    Bytes out;
    for (uint32_t i = 1; out.size() < out_len; ++i) {
        Bytes m(4 + fixed.size());
        store_be32(m.data(), i);
        if (!fixed.empty()) std::memcpy(m.data() + 4, fixed.data(), fixed.size());
        Bytes k = cmac(key, m);
        out.insert(out.end(), k.begin(), k.end());
    }
    out.resize(out_len);
    return out;
}

static std::optional<Bytes> kw(ByteSpan kek, ByteSpan in, bool wrap) {
    ossl::Cipher c(EVP_CIPHER_fetch(nullptr, aes_name(kek.size(), "WRAP"), nullptr));
    if (!c) fail("fetching AES-WRAP");
    ossl::CipherCtx ctx(EVP_CIPHER_CTX_new());
    if (EVP_CipherInit_ex2(ctx.get(), c.get(), kek.data(), nullptr, wrap ? 1 : 0, nullptr) != 1)
        fail("AES-WRAP init");
    Bytes out(in.size() + 16);
    int len = 0, fin = 0;
    if (EVP_CipherUpdate(ctx.get(), out.data(), &len, in.data(), static_cast<int>(in.size())) !=
            1 ||
        EVP_CipherFinal_ex(ctx.get(), out.data() + len, &fin) != 1) {
        ERR_clear_error();
        return std::nullopt;
    }
    out.resize(static_cast<size_t>(len + fin));
    return out;
}

Bytes kw_wrap(ByteSpan kek, ByteSpan plaintext) {
    auto r = kw(kek, plaintext, true);
    if (!r) fail("AES-WRAP wrap refused");
    return *r;
}

std::optional<Bytes> kw_unwrap(ByteSpan kek, ByteSpan wrapped) { return kw(kek, wrapped, false); }

Bytes aes_encrypt(ByteSpan key, ByteSpan block) {
    ossl::Cipher c(EVP_CIPHER_fetch(nullptr, aes_name(key.size(), "ECB"), nullptr));
    ossl::CipherCtx ctx(EVP_CIPHER_CTX_new());
    Bytes out(32);
    int len = 0;
    if (!c || EVP_EncryptInit_ex2(ctx.get(), c.get(), key.data(), nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1 ||
        EVP_EncryptUpdate(ctx.get(), out.data(), &len, block.data(), 16) != 1)
        fail("AES-ECB");
    out.resize(16);
    return out;
}

std::optional<P256Point> base_mul(ByteSpan scalar) {
    static const ossl::EcGroup g = explicit_p256();
    ossl::BnCtx ctx(BN_CTX_new());
    ossl::Bn d(BN_bin2bn(scalar.data(), static_cast<int>(scalar.size()), nullptr));
    ossl::Bn n(BN_new());
    EC_GROUP_get_order(g.get(), n.get(), ctx.get());
    if (BN_is_zero(d.get()) || BN_cmp(d.get(), n.get()) >= 0) return std::nullopt;
    ossl::EcPoint q(EC_POINT_new(g.get()));
    ossl::Bn x(BN_new()), y(BN_new());
    if (EC_POINT_mul(g.get(), q.get(), d.get(), nullptr, nullptr, ctx.get()) != 1 ||
        EC_POINT_get_affine_coordinates(g.get(), q.get(), x.get(), y.get(), ctx.get()) != 1)
        fail("reference d*G");
    P256Point out;
    BN_bn2binpad(x.get(), out.x.data(), 32);
    BN_bn2binpad(y.get(), out.y.data(), 32);
    return out;
}

bool point_matches(ByteSpan scalar, const wpid1::Coord& x, const wpid1::Coord& y) {
    auto q = base_mul(scalar);
    return q && q->x == x && q->y == y;
}

struct Drbg::Impl {
    ossl::RandCtx parent;
    ossl::RandCtx drbg;
};

namespace {
void set_test_entropy(EVP_RAND_CTX* parent, ByteSpan entropy) {
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_octet_string(OSSL_RAND_PARAM_TEST_ENTROPY,
                                          const_cast<uint8_t*>(entropy.data()), entropy.size()),
        OSSL_PARAM_construct_end()};
    if (EVP_RAND_CTX_set_params(parent, p) != 1) fail("TEST-RAND entropy");
}
}  // namespace

Drbg::Drbg(ByteSpan entropy, ByteSpan personalization) : impl_(std::make_unique<Impl>()) {
    ossl::Rand test(EVP_RAND_fetch(nullptr, "TEST-RAND", nullptr));
    ossl::Rand ctr(EVP_RAND_fetch(nullptr, "CTR-DRBG", nullptr));
    if (!test || !ctr) fail("EVP_RAND_fetch");
    impl_->parent.reset(EVP_RAND_CTX_new(test.get(), nullptr));
    unsigned int strength = 256;
    OSSL_PARAM pp[] = {OSSL_PARAM_construct_uint(OSSL_RAND_PARAM_STRENGTH, &strength),
                       OSSL_PARAM_construct_end()};
    if (!impl_->parent || EVP_RAND_CTX_set_params(impl_->parent.get(), pp) != 1) fail("TEST-RAND");
    set_test_entropy(impl_->parent.get(), entropy);
    if (EVP_RAND_instantiate(impl_->parent.get(), strength, 0, nullptr, 0, nullptr) != 1)
        fail("TEST-RAND instantiate");
    impl_->drbg.reset(EVP_RAND_CTX_new(ctr.get(), impl_->parent.get()));
    char cipher[] = "AES-256-CTR";
    int use_df = 0;
    // OpenSSL reseeds from its parent on its own after 256 requests (and after a time
    // interval); 0 turns both off, so the stream follows SP 800-90A as WPID-1 uses it.
    unsigned int reseed_requests = 0;
    time_t reseed_time = 0;
    OSSL_PARAM dp[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_DRBG_PARAM_CIPHER, cipher, 0),
        OSSL_PARAM_construct_int(OSSL_DRBG_PARAM_USE_DF, &use_df),
        OSSL_PARAM_construct_uint(OSSL_DRBG_PARAM_RESEED_REQUESTS, &reseed_requests),
        OSSL_PARAM_construct_time_t(OSSL_DRBG_PARAM_RESEED_TIME_INTERVAL, &reseed_time),
        OSSL_PARAM_construct_end()};
    if (!impl_->drbg || EVP_RAND_CTX_set_params(impl_->drbg.get(), dp) != 1)
        fail("CTR-DRBG params");
    // A non-NULL pointer with zero length: with NULL, OpenSSL mixes in its own default
    // personalization string and no longer matches SP 800-90A / CAVP.
    static const uint8_t kEmpty[1] = {0};
    const uint8_t* pers = personalization.empty() ? kEmpty : personalization.data();
    if (EVP_RAND_instantiate(impl_->drbg.get(), 256, 0, pers, personalization.size(), nullptr) != 1)
        fail("CTR-DRBG instantiate");
}

Drbg::~Drbg() = default;

void Drbg::reseed(ByteSpan entropy, ByteSpan additional) {
    set_test_entropy(impl_->parent.get(), entropy);
    if (EVP_RAND_reseed(impl_->drbg.get(), 0, nullptr, 0, additional.data(), additional.size()) !=
        1)
        fail("CTR-DRBG reseed");
}

Bytes Drbg::generate(size_t n, ByteSpan additional) {
    Bytes out(n);
    if (EVP_RAND_generate(impl_->drbg.get(), out.data(), n, 256, 0, additional.data(),
                          additional.size()) != 1)
        fail("CTR-DRBG generate");
    return out;
}

std::vector<ReferenceIdentity> identities(ByteSpan kik, Drbg& drbg,
                                          const std::vector<wpid1::Uid>& uids,
                                          uint64_t first_sequence) {
    std::vector<ReferenceIdentity> out;
    for (size_t i = 0; i < uids.size(); ++i) {
        Bytes d;
        do {
            d = drbg.generate(32);
        } while (!base_mul(d).has_value());  // reference range check: d = 0 or d >= n refused
        ReferenceIdentity id;
        auto q = *base_mul(d);
        id.record.sequence = first_sequence + i;
        id.record.uid = uids[i];
        id.record.x = q.x;
        id.record.y = q.y;
        Bytes w = kw_wrap(kek(kik, uids[i]), d);
        std::memcpy(id.record.wrapped.data(), w.data(), 40);
        id.d = SecureBytes(d);
        secure_wipe(d.data(), d.size());
        out.push_back(std::move(id));
    }
    return out;
}

std::string die_check(ByteSpan kik, const wpid1::IdentityRecord& record) {
    Bytes k = kek(kik, record.uid);
    auto d = kw_unwrap(k, record.wrapped);
    if (!d) return "wrapped key does not unwrap under the KEK derived from KIK and UID";
    if (d->size() != 32) return "unwrapped key is not 32 bytes";
    if (!point_matches(*d, record.x, record.y)) return "d*G does not equal the record's public key";
    return "";
}

}  // namespace waferprov::reference
