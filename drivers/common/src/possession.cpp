// Proof of possession at final test: docs/final-test.md. OpenSSL objects only through the RAII
// handles of waferprov/ossl.hpp and waferprov/ossl_sig.hpp.
#include "waferprov/possession.hpp"

#include <cstring>
#include <string_view>

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include "waferprov/ossl_sig.hpp"

namespace waferprov::possession {

namespace {

using ossl::EcdsaSig;
using ossl::ParamBld;
using ossl::Params;

// An EVP_PKEY for the scalar d with its public point d*G (OpenSSL's EC signing wants both).
Result<ossl::Pkey> key_from_scalar(const SecretArray<32>& d) {
    ossl::EcGroup group(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
    ossl::Bn priv(BN_bin2bn(d.data(), 32, nullptr));
    ossl::BnCtx bctx(BN_CTX_new());
    if (!group || !priv || !bctx) return ossl::ossl_error("possession: P-256 setup");
    if (BN_is_zero(priv.get()) || BN_cmp(priv.get(), EC_GROUP_get0_order(group.get())) >= 0)
        return make_error(ErrorCode::kInvalidArgument, "possession: d is not in 1..n-1");
    ossl::EcPoint pub(EC_POINT_new(group.get()));
    if (!pub || EC_POINT_mul(group.get(), pub.get(), priv.get(), nullptr, nullptr, bctx.get()) != 1)
        return ossl::ossl_error("possession: d*G");
    std::array<uint8_t, 65> point{};
    if (EC_POINT_point2oct(group.get(), pub.get(), POINT_CONVERSION_UNCOMPRESSED, point.data(),
                           point.size(), bctx.get()) != point.size())
        return ossl::ossl_error("possession: encoding d*G");
    ParamBld bld(OSSL_PARAM_BLD_new());
    if (!bld ||
        OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
            1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, priv.get()) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                         point.size()) != 1)
        return ossl::ossl_error("possession: key parameters");
    Params params(OSSL_PARAM_BLD_to_param(bld.get()));
    ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY* raw = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_KEYPAIR, params.get()) != 1)
        return ossl::ossl_error("possession: building the key from d");
    return ossl::Pkey(raw);
}

}  // namespace

Result<Signature> sign(const SecretArray<32>& d, ByteSpan message) {
    WP_ASSIGN_OR_RETURN(ossl::Pkey key, key_from_scalar(d));
    ossl::MdCtx md(EVP_MD_CTX_new());
    size_t der_len = 0;
    if (!md ||
        EVP_DigestSignInit_ex(md.get(), nullptr, "SHA256", nullptr, nullptr, key.get(), nullptr) !=
            1 ||
        EVP_DigestSign(md.get(), nullptr, &der_len, message.data(), message.size()) != 1)
        return ossl::ossl_error("possession: signing");
    Bytes der(der_len);
    if (EVP_DigestSign(md.get(), der.data(), &der_len, message.data(), message.size()) != 1)
        return ossl::ossl_error("possession: signing");
    const unsigned char* p = der.data();
    EcdsaSig sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
    if (!sig) return ossl::ossl_error("possession: decoding the signature");
    Signature out{};
    if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out.data(), 32) != 32 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out.data() + 32, 32) != 32)
        return ossl::ossl_error("possession: r || s");
    return out;
}

Result<bool> verify(ByteSpan certificate_der, ByteSpan message, const Signature& sig) {
    const unsigned char* p = certificate_der.data();
    ossl::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(certificate_der.size())));
    if (!cert || p != certificate_der.data() + certificate_der.size()) {
        ossl::clear_errors();
        return make_error(ErrorCode::kInvalidArgument,
                          "possession: the part's certificate is not one DER certificate");
    }
    EVP_PKEY* key = X509_get0_pubkey(cert.get());
    char group[32] = {};
    size_t glen = 0;
    if (key == nullptr ||
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &glen) != 1 ||
        std::string_view(group, glen) != "prime256v1") {
        ossl::clear_errors();
        return make_error(ErrorCode::kInvalidArgument,
                          "possession: the part's certificate holds no P-256 key");
    }
    // r || s to the DER ECDSA-Sig-Value OpenSSL verifies.
    EcdsaSig es(ECDSA_SIG_new());
    ossl::Bn r(BN_bin2bn(sig.data(), 32, nullptr));
    ossl::Bn s(BN_bin2bn(sig.data() + 32, 32, nullptr));
    if (!es || !r || !s || ECDSA_SIG_set0(es.get(), r.get(), s.get()) != 1)
        return ossl::ossl_error("possession: r || s");
    (void)r.release();  // owned by es now
    (void)s.release();
    unsigned char* der = nullptr;
    const int der_len = i2d_ECDSA_SIG(es.get(), &der);
    if (der_len <= 0) return ossl::ossl_error("possession: encoding the signature");
    ossl::Buffer der_owner(der);
    ossl::MdCtx md(EVP_MD_CTX_new());
    if (!md ||
        EVP_DigestVerifyInit_ex(md.get(), nullptr, "SHA256", nullptr, nullptr, key, nullptr) != 1)
        return ossl::ossl_error("possession: verifying");
    const int rc = EVP_DigestVerify(md.get(), der, static_cast<size_t>(der_len), message.data(),
                                    message.size());
    ossl::clear_errors();  // a bad signature leaves an error behind; it is an answer, not a fault
    return rc == 1;
}

}  // namespace waferprov::possession
