
#include <cerrno>
#include <cstring>
#include <ctime>

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "ca_internal.hpp"
#include "waferprov/files.hpp"

namespace waferprov::host::ca_detail {

void free_asn1_sequence_any(ASN1_SEQUENCE_ANY* p) noexcept {
    sk_ASN1_TYPE_pop_free(p, ASN1_TYPE_free);
}

Bytes der_tlv(uint8_t tag, ByteSpan content) {
    Bytes out{tag};
    const size_t n = content.size();
    if (n < 0x80) {
        out.push_back(static_cast<uint8_t>(n));
    } else {
        uint8_t len[sizeof(size_t)];
        size_t k = 0;
        for (size_t v = n; v != 0; v >>= 8) len[k++] = static_cast<uint8_t>(v & 0xff);
        out.push_back(static_cast<uint8_t>(0x80 | k));
        while (k > 0) out.push_back(len[--k]);
    }
    out.insert(out.end(), content.begin(), content.end());
    return out;
}

Bytes der_integer(int64_t v) {
    // Two's complement big-endian, minimal: drop a leading octet while it only repeats the sign.
    uint8_t be[8];
    store_be64(be, static_cast<uint64_t>(v));
    size_t i = 0;
    while (i < 7 && ((be[i] == 0x00 && (be[i + 1] & 0x80) == 0) ||
                     (be[i] == 0xff && (be[i + 1] & 0x80) != 0)))
        ++i;
    return der_tlv(V_ASN1_INTEGER, ByteSpan(be + i, 8 - i));
}

Bytes der_unsigned_integer(ByteSpan magnitude) {
    size_t i = 0;
    while (i < magnitude.size() && magnitude[i] == 0) ++i;
    Bytes content;
    if (i == magnitude.size() || (magnitude[i] & 0x80) != 0) content.push_back(0x00);
    content.insert(content.end(), magnitude.begin() + static_cast<std::ptrdiff_t>(i),
                   magnitude.end());
    return der_tlv(V_ASN1_INTEGER, content);
}

std::array<uint8_t, 32> sha256(ByteSpan data) {
    std::array<uint8_t, 32> out{};
    unsigned int n = 0;
    // EVP_Digest only fails on allocation failure; assert rather than thread an error through.
    const int ok = EVP_Digest(data.data(), data.size(), out.data(), &n, EVP_sha256(), nullptr);
    (void)ok;
    return out;
}

std::array<uint8_t, 20> sha1(ByteSpan data) {
    std::array<uint8_t, 20> out{};
    unsigned int n = 0;
    const int ok = EVP_Digest(data.data(), data.size(), out.data(), &n, EVP_sha1(), nullptr);
    (void)ok;
    return out;
}

namespace {

const EC_GROUP* p256_group() {
    static const ossl::EcGroup g(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
    return g.get();
}

}  // namespace

Status check_p256_point(ByteSpan point) {
    if (point.size() != 65 || point[0] != 0x04)
        return make_error(
            ErrorCode::kInvalidArgument,
            "public key must be a 65-byte uncompressed SEC1 point (04 || X || Y), got " +
                std::to_string(point.size()) + " bytes starting " +
                (point.empty() ? std::string("with nothing") : to_hex(point.first(1))));
    const EC_GROUP* g = p256_group();
    ossl::EcPoint q(EC_POINT_new(g));
    ossl::BnCtx ctx(BN_CTX_new());
    if (!q || !ctx) return ossl::ossl_error("P-256 allocation");
    if (EC_POINT_oct2point(g, q.get(), point.data(), point.size(), ctx.get()) != 1 ||
        EC_POINT_is_on_curve(g, q.get(), ctx.get()) != 1 ||
        EC_POINT_is_at_infinity(g, q.get()) == 1) {
        ossl::clear_errors();
        return make_error(ErrorCode::kInvalidArgument,
                          "public key is not a point on P-256: " + to_hex(point));
    }
    return ok_status();
}

Result<ossl::Pkey> p256_public_key(ByteSpan point) {
    WP_RETURN_IF_ERROR(check_p256_point(point));
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                         const_cast<char*>(SN_X9_62_prime256v1), 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                          const_cast<uint8_t*>(point.data()), point.size()),
        OSSL_PARAM_construct_end()};
    ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY* raw = nullptr;
    if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1)
        return ossl::ossl_error("P-256 public key from point");
    return ossl::Pkey(raw);
}

Result<Bytes> p256_point_of(EVP_PKEY* key) {
    WP_RETURN_IF_ERROR(check_p256_key(key, "key"));
    Bytes point(65);
    size_t n = 0;
    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point.data(),
                                        point.size(), &n) != 1 ||
        n != 65)
        return ossl::ossl_error("reading the P-256 public point");
    return point;
}

Result<ossl::Pkey> generate_p256_key() {
    ossl::Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    if (!key) return ossl::ossl_error("generating a P-256 key");
    return key;
}

Status check_p256_key(EVP_PKEY* key, const std::string& what) {
    char group[64] = {};
    size_t n = 0;
    if (key == nullptr || EVP_PKEY_is_a(key, "EC") != 1 ||
        EVP_PKEY_get_group_name(key, group, sizeof group, &n) != 1 ||
        std::string_view(group, n) != SN_X9_62_prime256v1) {
        ossl::clear_errors();
        return make_error(ErrorCode::kInvalidArgument, what + " is not an EC P-256 key");
    }
    return ok_status();
}

namespace {

// A PEM certificate or key is a few KB. OpenSSL's PEM reader on /dev/zero never returns (it
// skips "lines" looking for -----BEGIN), so the file is read here, with a cap, and parsed from
// memory (issue #11).
constexpr size_t kMaxPemBytes = size_t{1} << 20;

Result<BioPtr> pem_bio(const std::string& pem, const std::string& what) {
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) return ossl::ossl_error(what);
    return bio;
}

}  // namespace

Result<ossl::X509Ptr> read_pem_certificate(const std::filesystem::path& path) {
    WP_ASSIGN_OR_RETURN(const std::string pem, read_file_capped(path, kMaxPemBytes, "certificate"));
    WP_ASSIGN_OR_RETURN(BioPtr bio, pem_bio(pem, "reading PEM certificate " + path.string()));
    ossl::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) return ossl::ossl_error("reading PEM certificate " + path.string());
    return cert;
}

Result<ossl::Pkey> read_pem_private_key(const std::filesystem::path& path) {
    WP_ASSIGN_OR_RETURN(std::string pem, read_file_capped(path, kMaxPemBytes, "private key"));
    struct Wipe {
        std::string& s;
        ~Wipe() { secure_wipe(s.data(), s.size()); }
    } wipe{pem};
    WP_ASSIGN_OR_RETURN(BioPtr bio, pem_bio(pem, "reading PEM private key " + path.string()));
    // No password callback: an encrypted key fails here instead of prompting on a terminal.
    ossl::Pkey key(PEM_read_bio_PrivateKey(
        bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
    if (!key) return ossl::ossl_error("reading PEM private key " + path.string());
    return key;
}

Result<Bytes> certificate_to_der(X509* cert) { return ossl::der_of(cert); }

Result<ossl::X509Ptr> certificate_from_der(ByteSpan der) {
    const uint8_t* p = der.data();
    ossl::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    if (!cert) return ossl::ossl_error("parsing DER certificate");
    if (p != der.data() + der.size()) {
        return make_error(ErrorCode::kInvalidArgument, "trailing bytes after DER certificate");
    }
    return cert;
}

namespace {

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

}  // namespace

Result<std::string> certificate_to_pem(X509* cert) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1)
        return ossl::ossl_error("PEM certificate");
    return bio_text(bio.get());
}

Result<std::string> private_key_to_pem(EVP_PKEY* key) {
    BioPtr bio(BIO_new(BIO_s_secmem()));
    if (!bio ||
        PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
        return ossl::ossl_error("PEM private key");
    return bio_text(bio.get());
}

Result<Bytes> ecdsa_raw_to_der(ByteSpan raw) {
    if (raw.size() != 64)
        return make_error(ErrorCode::kCrypto,
                          "raw ECDSA P-256 signature must be 64 bytes (r || s), got " +
                              std::to_string(raw.size()));
    EcdsaSigPtr sig(ECDSA_SIG_new());
    ossl::Bn r(BN_bin2bn(raw.data(), 32, nullptr)), s(BN_bin2bn(raw.data() + 32, 32, nullptr));
    if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1)
        return ossl::ossl_error("ECDSA signature to DER");
    // ECDSA_SIG_set0 took ownership of r and s.
    (void)r.release();
    (void)s.release();
    const int n = i2d_ECDSA_SIG(sig.get(), nullptr);
    if (n <= 0) return ossl::ossl_error("ECDSA signature to DER");
    Bytes der(static_cast<size_t>(n));
    uint8_t* p = der.data();
    if (i2d_ECDSA_SIG(sig.get(), &p) != n) return ossl::ossl_error("ECDSA signature to DER");
    return der;
}

Status check_signer_matches_certificate(Signer& signer) {
    static constexpr std::string_view kMessage = "waferprov signer self-test";
    const auto digest =
        sha256(ByteSpan(reinterpret_cast<const uint8_t*>(kMessage.data()), kMessage.size()));
    WP_ASSIGN_OR_RETURN(Bytes sig, signer.sign_sha256_digest(digest));
    WP_ASSIGN_OR_RETURN(ossl::X509Ptr cert, certificate_from_der(signer.certificate_der()));
    EVP_PKEY* pub = X509_get0_pubkey(cert.get());
    WP_RETURN_IF_ERROR(check_p256_key(pub, "the CA certificate's public key"));
    ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pub, nullptr));
    if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1)
        return ossl::ossl_error("verifying the signer's self-test signature");
    if (EVP_PKEY_verify(ctx.get(), sig.data(), sig.size(), digest.data(), digest.size()) != 1) {
        ossl::clear_errors();
        return make_error(ErrorCode::kInvalidArgument,
                          signer.describe() +
                              ": the key does not match the CA certificate's public key "
                              "(a self-test signature did not verify)");
    }
    return ok_status();
}

Result<Bytes> random_serial() {
    Bytes s(16);
    if (RAND_bytes(s.data(), static_cast<int>(s.size())) != 1)
        return ossl::ossl_error("random serial");
    s[0] &= 0x7f;
    if (s[0] == 0) s[0] = 0x01;
    return s;
}

Result<Asn1TimePtr> asn1_time(std::chrono::system_clock::time_point t) {
    const std::time_t tt = std::chrono::system_clock::to_time_t(t);
    Asn1TimePtr out(ASN1_TIME_set(nullptr, tt));
    if (!out) return ossl::ossl_error("time out of range for a certificate");
    return out;
}

Status refuse_existing(std::initializer_list<std::filesystem::path> paths) {
    for (const auto& p : paths) {
        std::error_code ec;
        const auto st = std::filesystem::symlink_status(p, ec);
        if (!ec && std::filesystem::exists(st))
            return make_error(ErrorCode::kInvalidArgument,
                              "refusing to overwrite existing " + p.string());
    }
    return ok_status();
}

}  // namespace waferprov::host::ca_detail

namespace waferprov::host {

Result<Bytes> read_certificate_der(const std::filesystem::path& pem_file) {
    WP_ASSIGN_OR_RETURN(ossl::X509Ptr cert, ca_detail::read_pem_certificate(pem_file));
    return ca_detail::certificate_to_der(cert.get());
}

}  // namespace waferprov::host
