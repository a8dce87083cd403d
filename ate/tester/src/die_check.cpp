#include "die_check.hpp"

#include <cctype>
#include <cstring>
#include <ctime>
#include <vector>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "waferprov/files.hpp"
#include "waferprov/ossl.hpp"

namespace waferprov::tester {
namespace {

namespace fs = std::filesystem;

using ossl::Bio;
using Store = ossl::X509Store;
using StoreCtx = ossl::X509StoreCtx;
using ossl::X509Stack;

// The one PEM certificate in `path`.
Result<ossl::X509Ptr> read_pem_certificate(const fs::path& path) {
    Bio bio(BIO_new_file(path.c_str(), "r"));
    if (!bio) {
        ossl::clear_errors();
        return make_error(ErrorCode::kIo, "cannot open " + path.string());
    }
    ossl::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) return ossl::ossl_error(path.string() + ": no PEM certificate");
    ossl::X509Ptr second(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    ossl::clear_errors();  // the expected end-of-file "no start line"
    if (second)
        return make_error(ErrorCode::kInvalidArgument,
                          path.string() + ": holds more than one certificate; give exactly one");
    return cert;
}

Result<Bytes> der_of(const X509* cert, const fs::path& source) {
    auto der = ossl::der_of(cert);
    if (!der.ok()) return der.error().with_context(source.string());
    return der;
}

Result<std::array<uint8_t, 32>> sha256_concat(ByteSpan a, ByteSpan b) {
    std::array<uint8_t, 32> out{};
    ossl::MdCtx md(EVP_MD_CTX_new());
    unsigned int len = 0;
    if (!md || EVP_DigestInit_ex2(md.get(), EVP_sha256(), nullptr) != 1 ||
        EVP_DigestUpdate(md.get(), a.data(), a.size()) != 1 ||
        EVP_DigestUpdate(md.get(), b.data(), b.size()) != 1 ||
        EVP_DigestFinal_ex(md.get(), out.data(), &len) != 1 || len != out.size())
        return ossl::ossl_error("SHA-256 of the CA chain");
    return out;
}

constexpr char kKekLabel[] = "WPID-1 KEK";  // docs/identity-spec.md §2, 10 bytes

}  // namespace

Result<SecretArray<32>> read_kik_file(const fs::path& path) {
    // 64 hex digits and white space: anything past 4 KiB is not a KIK file.
    WP_ASSIGN_OR_RETURN(std::string text, read_file_capped(path, 4096, "KIK file"));
    size_t b = 0, e = text.size();
    while (b < e && std::isspace(static_cast<unsigned char>(text[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(text[e - 1]))) --e;
    auto bytes = from_hex(std::string_view(text).substr(b, e - b), "KIK");
    secure_wipe(text.data(), text.size());
    if (!bytes.ok())
        return make_error(ErrorCode::kInvalidArgument,
                          path.string() + ": not a KIK (64 hex digits): " + bytes.error().message);
    SecretArray<32> kik;
    const bool right_size = bytes->size() == 32;
    if (right_size) std::memcpy(kik.data(), bytes->data(), 32);
    secure_wipe(bytes->data(), bytes->size());
    if (!right_size)
        return make_error(ErrorCode::kInvalidArgument,
                          path.string() + ": a KIK is 32 bytes (64 hex digits), this holds " +
                              std::to_string(bytes->size()));
    return kik;
}

Result<std::array<uint8_t, 32>> chain_id_of(const fs::path& ca_pem, const fs::path& root_pem) {
    WP_ASSIGN_OR_RETURN(ossl::X509Ptr ca, read_pem_certificate(ca_pem));
    WP_ASSIGN_OR_RETURN(ossl::X509Ptr root, read_pem_certificate(root_pem));
    WP_ASSIGN_OR_RETURN(Bytes ca_der, der_of(ca.get(), ca_pem));
    WP_ASSIGN_OR_RETURN(Bytes root_der, der_of(root.get(), root_pem));
    return sha256_concat(ca_der, root_der);
}

Result<SecretArray<32>> wpid1_kek(const SecretArray<32>& kik, const wpid1::Uid& uid) {
    ossl::Kdf kdf(EVP_KDF_fetch(nullptr, "KBKDF", nullptr));
    if (!kdf) return ossl::ossl_error("EVP_KDF_fetch KBKDF");
    ossl::KdfCtx ctx(EVP_KDF_CTX_new(kdf.get()));
    if (!ctx) return ossl::ossl_error("EVP_KDF_CTX_new");
    char mode[] = "COUNTER", mac[] = "CMAC", cipher[] = "AES-256-CBC";
    char label[sizeof kKekLabel];
    std::memcpy(label, kKekLabel, sizeof label);
    uint8_t info[wpid1::kUidSize];
    std::memcpy(info, uid.data(), uid.size());
    SecretArray<32> key = kik;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, mode, 0),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, mac, 0),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_CIPHER, cipher, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key.data(), key.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, label, sizeof label - 1),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof info),
        OSSL_PARAM_construct_end()};
    SecretArray<32> kek;
    if (EVP_KDF_derive(ctx.get(), kek.data(), kek.size(), params) != 1)
        return ossl::ossl_error("KBKDF (WPID-1 KEK)");
    return kek;
}

struct DieChecker::Impl {
    SecretArray<32> kik;
    ossl::X509Ptr ca, root;
    Store store;
    X509Stack untrusted;
    std::array<uint8_t, 32> chain_id{};
    ossl::EcGroup p256;
    ossl::Cipher wrap;
    ossl::BnCtx bn;
    int clock_skew_s = 0;
    mutable size_t not_before_ahead = 0;

    // d = AES-256-KW-unwrap(KEK, wrapped): nullopt when the integrity check fails.
    std::optional<wpid1::Scalar> unwrap(const SecretArray<32>& kek, const uint8_t* wrapped) const {
        ossl::CipherCtx ctx(EVP_CIPHER_CTX_new());
        // Room for the cipher's block of slack; wiped below whatever happens.
        SecretArray<wpid1::kWrappedKeySize + 16> out;
        int len = 0, fin = 0;
        const bool ok =
            ctx && EVP_DecryptInit_ex2(ctx.get(), wrap.get(), kek.data(), nullptr, nullptr) == 1 &&
            EVP_DecryptUpdate(ctx.get(), out.data(), &len, wrapped,
                              static_cast<int>(wpid1::kWrappedKeySize)) == 1 &&
            EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &fin) == 1 &&
            len + fin == static_cast<int>(wpid1::kScalarSize);
        ossl::clear_errors();
        if (!ok) return std::nullopt;
        wpid1::Scalar d;
        std::memcpy(d.data(), out.data(), d.size());
        return d;
    }

    // "" if 0 < d < n and d*G equals the certificate's key, else what is wrong.
    std::string key_matches(const wpid1::Scalar& d, X509* cert) const {
        EVP_PKEY* pk = X509_get0_pubkey(cert);
        if (!pk) {
            ossl::clear_errors();
            return "certificate has no usable public key";
        }
        char group[64] = {};
        size_t glen = 0;
        if (!EVP_PKEY_is_a(pk, "EC") ||
            EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           &glen) != 1 ||
            std::string(group, glen) != "prime256v1") {
            ossl::clear_errors();
            return "certificate key is not a P-256 key";
        }
        uint8_t enc[133];
        size_t elen = 0;
        if (EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, enc, sizeof enc, &elen) !=
            1) {
            ossl::clear_errors();
            return "cannot read the certificate's public point";
        }
        ossl::EcPoint cert_point(EC_POINT_new(p256.get()));
        ossl::EcPoint q(EC_POINT_new(p256.get()));
        ossl::Bn scalar(BN_bin2bn(d.data(), static_cast<int>(d.size()), nullptr));
        if (!cert_point || !q || !scalar) return ossl::ossl_error("allocating EC values").message;
        BN_set_flags(scalar.get(), BN_FLG_CONSTTIME);
        if (EC_POINT_oct2point(p256.get(), cert_point.get(), enc, elen, bn.get()) != 1) {
            ossl::clear_errors();
            return "certificate's public key is not a point on P-256";
        }
        if (BN_is_zero(scalar.get()) || BN_cmp(scalar.get(), EC_GROUP_get0_order(p256.get())) >= 0)
            return "unwrapped private scalar is not in 1..n-1";
        if (EC_POINT_mul(p256.get(), q.get(), scalar.get(), nullptr, nullptr, bn.get()) != 1)
            return ossl::ossl_error("d*G").message;
        const int cmp = EC_POINT_cmp(p256.get(), q.get(), cert_point.get(), bn.get());
        if (cmp < 0) return ossl::ossl_error("comparing points").message;
        return cmp == 0 ? "" : "d*G does not equal the certificate's public key";
    }

    std::string chains_to_root(X509* cert) const {
        StoreCtx ctx(X509_STORE_CTX_new());
        if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), cert, untrusted.get()) != 1)
            return ossl::ossl_error("X509_STORE_CTX_init").message;
        const time_t now = std::time(nullptr);
        if (ASN1_TIME_cmp_time_t(X509_get0_notBefore(cert), now) > 0) ++not_before_ahead;
        X509_STORE_CTX_set_time(ctx.get(), 0, now + clock_skew_s);
        if (X509_verify_cert(ctx.get()) == 1) return "";
        const int err = X509_STORE_CTX_get_error(ctx.get());
        ossl::clear_errors();
        std::string why =
            std::string("certificate does not chain to the root through the manufacturer CA: ") +
            X509_verify_cert_error_string(err) + " (depth " +
            std::to_string(X509_STORE_CTX_get_error_depth(ctx.get())) + ")";
        if (err == X509_V_ERR_CERT_NOT_YET_VALID)
            why += " at this clock + " + std::to_string(clock_skew_s) + " s allowed skew";
        return why;
    }
};

DieChecker::DieChecker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DieChecker::DieChecker(DieChecker&&) noexcept = default;
DieChecker& DieChecker::operator=(DieChecker&&) noexcept = default;
DieChecker::~DieChecker() = default;

Result<DieChecker> DieChecker::create(const SecretArray<32>& kik, const fs::path& ca_pem,
                                      const fs::path& root_pem, int clock_skew_s) {
    if (clock_skew_s < 0)
        return make_error(ErrorCode::kInvalidArgument, "clock skew must not be negative");
    auto impl = std::make_unique<Impl>();
    impl->kik = kik;
    impl->clock_skew_s = clock_skew_s;
    WP_ASSIGN_OR_RETURN(impl->ca, read_pem_certificate(ca_pem));
    WP_ASSIGN_OR_RETURN(impl->root, read_pem_certificate(root_pem));
    WP_ASSIGN_OR_RETURN(impl->chain_id, chain_id_of(ca_pem, root_pem));
    impl->store.reset(X509_STORE_new());
    impl->untrusted.reset(sk_X509_new_null());
    if (!impl->store || !impl->untrusted ||
        X509_STORE_add_cert(impl->store.get(), impl->root.get()) != 1 ||
        X509_STORE_set_flags(impl->store.get(), X509_V_FLAG_X509_STRICT) != 1)
        return ossl::ossl_error("setting up the certificate store");
    // The stack owns a reference of its own to the CA certificate.
    WP_ASSIGN_OR_RETURN(ossl::X509Ptr ca_ref, ossl::share(impl->ca.get()));
    if (sk_X509_push(impl->untrusted.get(), ca_ref.get()) <= 0)
        return ossl::ossl_error("setting up the certificate store");
    (void)ca_ref.release();
    impl->p256.reset(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
    impl->wrap.reset(EVP_CIPHER_fetch(nullptr, "AES-256-WRAP", nullptr));
    impl->bn.reset(BN_CTX_new());
    if (!impl->p256 || !impl->wrap || !impl->bn)
        return ossl::ossl_error("OpenSSL P-256 / AES-256-WRAP");
    return DieChecker(std::move(impl));
}

const std::array<uint8_t, 32>& DieChecker::chain_id() const { return impl_->chain_id; }

size_t DieChecker::not_before_ahead() const { return impl_->not_before_ahead; }

std::string DieChecker::check(const wp_ate_site_identity& id,
                              const std::optional<wpid1::Uid>& sent_uid) const {
    std::vector<std::string> problems;
    wpid1::Uid uid{};
    std::memcpy(uid.data(), id.uid, uid.size());

    if (id.key_usage != 1 || id.key_algorithm != 1 || id.key_version != 1)
        problems.push_back("key usage/algorithm/version are " + std::to_string(id.key_usage) + "/" +
                           std::to_string(id.key_algorithm) + "/" + std::to_string(id.key_version) +
                           ", expected 1/1/1");
    if (sent_uid && *sent_uid != uid)
        problems.push_back("the host answered UID " + to_hex(uid) + " for a die that sent " +
                           to_hex(*sent_uid));
    if (std::memcmp(id.chain_id, impl_->chain_id.data(), impl_->chain_id.size()) != 0)
        problems.push_back(
            "chain_id " + to_hex(ByteSpan(id.chain_id, sizeof id.chain_id)) +
            " is not SHA-256(DER(ca.pem) || DER(root.pem)) = " + to_hex(impl_->chain_id));

    // The certificate: exactly one DER certificate.
    ossl::X509Ptr cert;
    if (id.certificate_length == 0 || id.certificate_length > WP_ATE_MAX_CERTIFICATE) {
        problems.push_back("certificate length " + std::to_string(id.certificate_length) +
                           " is outside 1.." + std::to_string(WP_ATE_MAX_CERTIFICATE));
    } else {
        const unsigned char* p = id.certificate;
        cert.reset(d2i_X509(nullptr, &p, static_cast<long>(id.certificate_length)));
        if (!cert) {
            problems.push_back(ossl::ossl_error("certificate is not DER X.509").message);
        } else if (p != id.certificate + id.certificate_length) {
            problems.push_back("certificate has " +
                               std::to_string(id.certificate + id.certificate_length - p) +
                               " bytes after the DER certificate");
            cert.reset();
        }
    }
    if (cert) {
        if (auto why = impl_->chains_to_root(cert.get()); !why.empty()) problems.push_back(why);
        // Subject serialNumber = the UID in lower-case hex, exactly one such attribute.
        X509_NAME* subject = X509_get_subject_name(cert.get());
        const int at = subject ? X509_NAME_get_index_by_NID(subject, NID_serialNumber, -1) : -1;
        if (at < 0) {
            problems.push_back("certificate subject has no serialNumber");
        } else if (X509_NAME_get_index_by_NID(subject, NID_serialNumber, at) >= 0) {
            problems.push_back("certificate subject has more than one serialNumber");
        } else {
            const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
            const std::string serial(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                     static_cast<size_t>(ASN1_STRING_length(s)));
            if (serial != to_hex(uid))
                problems.push_back("certificate subject serialNumber '" + serial +
                                   "' is not the UID " + to_hex(uid));
        }
    }

    // What the die does: KEK, unwrap (integrity check), d*G = the certificate's key.
    auto kek = wpid1_kek(impl_->kik, uid);
    if (!kek.ok()) {
        problems.push_back(kek.error().message);
    } else {
        auto d = impl_->unwrap(*kek, id.wrapped_key);
        if (!d) {
            problems.push_back("wrapped key does not unwrap under KEK(KIK, UID " + to_hex(uid) +
                               "): AES-KW integrity check failed");
        } else if (cert) {
            if (auto why = impl_->key_matches(*d, cert.get()); !why.empty())
                problems.push_back(why);
        }
        // d and the KEK are SecretArrays: wiped as they go out of scope here.
    }

    std::string out;
    for (const auto& p : problems) out += (out.empty() ? "" : "; ") + p;
    return out;
}

std::optional<wpid1::Scalar> DieChecker::scalar(const wp_ate_site_identity& identity) const {
    wpid1::Uid uid{};
    std::memcpy(uid.data(), identity.uid, uid.size());
    auto kek = wpid1_kek(impl_->kik, uid);
    if (!kek.ok()) return std::nullopt;
    return impl_->unwrap(*kek, identity.wrapped_key);
}

}  // namespace waferprov::tester
