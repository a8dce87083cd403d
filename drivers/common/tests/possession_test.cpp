// Proof of possession (docs/final-test.md): signatures made with a part's scalar are checked
// with OpenSSL's own verification of the key it generated, and verify() is checked against
// signatures OpenSSL made, never against sign() alone.
#include "waferprov/possession.hpp"

#include <openssl/core_names.h>
#include <openssl/x509.h>

#include <gtest/gtest.h>

#include "waferprov/ossl_sig.hpp"

namespace waferprov::possession {
namespace {

ossl::Pkey reference_key() {
    ossl::Pkey k(EVP_EC_gen("P-256"));
    EXPECT_TRUE(k);
    return k;
}

SecretArray<32> scalar_of(EVP_PKEY* k) {
    BIGNUM* raw = nullptr;
    EXPECT_EQ(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &raw), 1);
    ossl::Bn d(raw);
    SecretArray<32> out;
    EXPECT_EQ(BN_bn2binpad(d.get(), out.data(), 32), 32);
    return out;
}

// A self-signed certificate for `k`: only its public key matters here.
Bytes certificate_of(EVP_PKEY* k) {
    ossl::X509Ptr c(X509_new());
    EXPECT_TRUE(c);
    X509_set_version(c.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c.get()), 7);
    X509_gmtime_adj(X509_getm_notBefore(c.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(c.get()), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(c.get()), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("part"), -1, -1, 0);
    X509_set_issuer_name(c.get(), X509_get_subject_name(c.get()));
    X509_set_pubkey(c.get(), k);
    EXPECT_GT(X509_sign(c.get(), k, EVP_sha256()), 0);
    auto der = ossl::der_of(c.get());
    EXPECT_TRUE(der.ok());
    return der.ok() ? *der : Bytes{};
}

Nonce nonce_of(uint8_t b) {
    Nonce n{};
    for (size_t i = 0; i < n.size(); ++i) n[i] = static_cast<uint8_t>(b + i);
    return n;
}

TEST(Possession, TheMessageIsLabelUidSessionNonce) {
    wpid1::Uid uid{};
    for (size_t i = 0; i < uid.size(); ++i) uid[i] = static_cast<uint8_t>(i);
    const Bytes m = challenge_message(uid, 0x0102030405060708ULL, nonce_of(0x40));
    ASSERT_EQ(m.size(), 33u + 16u + 8u + 32u);
    EXPECT_EQ(std::string(m.begin(), m.begin() + 33), "waferprov final-test challenge v1");
    EXPECT_EQ(to_hex(ByteSpan(m).subspan(33, 16)), "000102030405060708090a0b0c0d0e0f");
    EXPECT_EQ(to_hex(ByteSpan(m).subspan(49, 8)), "0807060504030201");
    EXPECT_EQ(m[57], 0x40);
    EXPECT_EQ(m.back(), 0x40 + 31);
}

TEST(Possession, ASignatureFromTheScalarVerifiesWithOpenSslsKey) {
    auto key = reference_key();
    const Bytes msg = challenge_message(wpid1::Uid{}, 9, nonce_of(1));
    auto sig = sign(scalar_of(key.get()), msg);
    ASSERT_TRUE(sig.ok()) << sig.error().describe();
    // Reference: OpenSSL verifies the DER form with the key it generated.
    ossl::EcdsaSig es(ECDSA_SIG_new());
    ECDSA_SIG_set0(es.get(), BN_bin2bn(sig->data(), 32, nullptr),
                   BN_bin2bn(sig->data() + 32, 32, nullptr));
    unsigned char* der = nullptr;
    const int n = i2d_ECDSA_SIG(es.get(), &der);
    ossl::Buffer owner(der);
    ossl::MdCtx md(EVP_MD_CTX_new());
    ASSERT_EQ(EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, key.get()), 1);
    EXPECT_EQ(EVP_DigestVerify(md.get(), der, static_cast<size_t>(n), msg.data(), msg.size()), 1);
}

TEST(Possession, VerifyAcceptsOpenSslsSignatureAndRefusesAnyOther) {
    auto key = reference_key();
    auto other = reference_key();
    const Bytes cert = certificate_of(key.get());
    const Bytes msg = challenge_message(wpid1::Uid{}, 9, nonce_of(2));
    // Reference signature by OpenSSL, converted to r || s.
    ossl::MdCtx md(EVP_MD_CTX_new());
    ASSERT_EQ(EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, key.get()), 1);
    size_t len = 0;
    ASSERT_EQ(EVP_DigestSign(md.get(), nullptr, &len, msg.data(), msg.size()), 1);
    Bytes der(len);
    ASSERT_EQ(EVP_DigestSign(md.get(), der.data(), &len, msg.data(), msg.size()), 1);
    const unsigned char* p = der.data();
    ossl::EcdsaSig es(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)));
    ASSERT_TRUE(es);
    Signature sig{};
    BN_bn2binpad(ECDSA_SIG_get0_r(es.get()), sig.data(), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es.get()), sig.data() + 32, 32);
    EXPECT_EQ(verify(cert, msg, sig).value(), true);
    // Another message (another nonce, session or part), a flipped bit, another part's key.
    EXPECT_EQ(verify(cert, challenge_message(wpid1::Uid{}, 10, nonce_of(2)), sig).value(), false);
    Signature flipped = sig;
    flipped[40] ^= 0x01;
    EXPECT_EQ(verify(cert, msg, flipped).value(), false);
    auto swapped = sign(scalar_of(other.get()), msg);
    ASSERT_TRUE(swapped.ok());
    EXPECT_EQ(verify(cert, msg, *swapped).value(), false);
    EXPECT_EQ(verify(certificate_of(other.get()), msg, *swapped).value(), true);
}

TEST(Possession, BadInputIsNamed) {
    SecretArray<32> zero;
    auto s = sign(zero, Bytes{1});
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("d is not in 1..n-1"), std::string::npos);
    auto v = verify(Bytes{0x30, 0x03, 0x02, 0x01, 0x01}, Bytes{1}, Signature{});
    ASSERT_FALSE(v.ok());
    EXPECT_NE(v.error().message.find("not one DER certificate"), std::string::npos);
}

}  // namespace
}  // namespace waferprov::possession
