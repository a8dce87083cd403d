#include "waferprov/host/ca_ceremony.hpp"

#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "ca_internal.hpp"
#include "token_key.hpp"
#include "waferprov/files.hpp"

namespace waferprov::host {

using namespace ca_detail;

namespace {

namespace fs = std::filesystem;
using ReqPtr = ossl::Ptr<X509_REQ, X509_REQ_free>;
void free_extensions(STACK_OF(X509_EXTENSION) * s) {
    sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
}
using ExtStackPtr = ossl::Ptr<STACK_OF(X509_EXTENSION), free_extensions>;
using AlgorPtr = ossl::Ptr<X509_ALGOR, X509_ALGOR_free>;
using BasicConstraintsPtr = ca_detail::BasicConstraintsPtr;

// The request for the manufacturer CA: its subject, `key`'s public half and the extensions it
// asks the root for. Not yet signed.
Result<ReqPtr> unsigned_request(const ChainOptions& o, EVP_PKEY* key) {
    ReqPtr req(X509_REQ_new());
    if (!req || X509_REQ_set_version(req.get(), 0) != 1) return ossl::ossl_error("X509_REQ_new");
    X509_NAME* name = X509_REQ_get_subject_name(req.get());
    const std::string cn = manufacturer_ca_common_name(o);
    for (auto [nid, value] :
         {std::pair{NID_organizationName, &o.organization}, std::pair{NID_commonName, &cn}}) {
        if (value->empty()) continue;
        if (X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(value->data()),
                                       static_cast<int>(value->size()), -1, 0) != 1)
            return ossl::ossl_error("request subject '" + *value + "'");
    }
    if (X509_REQ_set_pubkey(req.get(), key) != 1) return ossl::ossl_error("request public key");

    ExtStackPtr exts(sk_X509_EXTENSION_new_null());
    if (!exts) return ossl::ossl_error("request extensions");
    for (auto [nid, value] :
         {std::pair{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
          std::pair{NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature"}}) {
        X509ExtPtr ext(X509V3_EXT_conf_nid(nullptr, nullptr, nid, value));
        if (!ext || sk_X509_EXTENSION_push(exts.get(), ext.get()) <= 0)
            return ossl::ossl_error(std::string("request extension ") + OBJ_nid2sn(nid));
        (void)ext.release();  // the stack owns it
    }
    if (X509_REQ_add_extensions(req.get(), exts.get()) != 1)
        return ossl::ossl_error("request extensions");
    return req;
}

Result<std::string> request_to_pem(X509_REQ* req) {
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_X509_REQ(bio.get(), req) != 1)
        return ossl::ossl_error("encoding the request");
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(n));
}

Status prepare(const fs::path& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec)
        return make_error(ErrorCode::kIo, "cannot create " + dir.string() + ": " + ec.message());
    return ok_status();
}

// A PEM request of a P-256 key is well under 1 KiB; the cap keeps a wrong path (a device, a
// log) from being read without end.
constexpr size_t kMaxRequestBytes = 64u << 10;

Result<ReqPtr> read_request(const fs::path& path) {
    WP_ASSIGN_OR_RETURN(const std::string pem,
                        read_file_capped(path, kMaxRequestBytes, "certificate request"));
    ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) return ossl::ossl_error("cannot read the request " + path.string());
    ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
    if (!req) return ossl::ossl_error(path.string() + " holds no PEM certificate request");
    return req;
}

Error refused(const fs::path& cert, const std::string& why) {
    return make_error(ErrorCode::kInvalidArgument, "refusing " + cert.string() + ": " + why);
}

// The manufacturer-CA profile of ca init: a critical CA:TRUE with pathlen 0, a critical
// keyUsage with keyCertSign (device certificates) and digitalSignature (export manifests),
// and a subject key identifier.
Status check_profile(X509* cert, const fs::path& path) {
    int crit = -1;
    BasicConstraintsPtr bc(static_cast<BASIC_CONSTRAINTS*>(
        X509_get_ext_d2i(cert, NID_basic_constraints, &crit, nullptr)));
    if (!bc || bc->ca == 0) return refused(path, "it is not a CA certificate (no CA:TRUE)");
    if (crit != 1) return refused(path, "its basicConstraints extension is not critical");
    if (bc->pathlen == nullptr || ASN1_INTEGER_get(bc->pathlen) != 0)
        return refused(path, "its path length is not 0 (the manufacturer CA signs only devices)");
    const int ku_at = X509_get_ext_by_NID(cert, NID_key_usage, -1);
    if (ku_at < 0) return refused(path, "it has no keyUsage extension");
    if (X509_EXTENSION_get_critical(X509_get_ext(cert, ku_at)) != 1)
        return refused(path, "its keyUsage extension is not critical");
    const uint32_t ku = X509_get_key_usage(cert);
    if ((ku & KU_KEY_CERT_SIGN) == 0) return refused(path, "its keyUsage lacks keyCertSign");
    if ((ku & KU_DIGITAL_SIGNATURE) == 0)
        return refused(path, "its keyUsage lacks digitalSignature (needed for export manifests)");
    if (X509_get0_subject_key_id(cert) == nullptr)
        return refused(path, "it has no subject key identifier");
    return ok_status();
}

// The chain verifies at `now` with the root as the only trust anchor, and the CA does not
// outlive its root.
Status check_chain(X509* cert, X509* root, const fs::path& cert_path, const fs::path& root_path,
                   std::chrono::system_clock::time_point now) {
    if (X509_check_issued(root, root) != X509_V_OK || X509_check_ca(root) < 1)
        return make_error(ErrorCode::kInvalidArgument,
                          "refusing " + root_path.string() + ": it is not a self-signed CA");
    if (X509_check_issued(root, cert) != X509_V_OK)
        return refused(cert_path, "it was not issued by the root in " + root_path.string());
    ossl::X509Store store(X509_STORE_new());
    ossl::X509StoreCtx ctx(X509_STORE_CTX_new());
    if (!store || !ctx || X509_STORE_add_cert(store.get(), root) != 1 ||
        X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr) != 1)
        return ossl::ossl_error("setting up chain verification");
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
    X509_VERIFY_PARAM_set_time(param, std::chrono::system_clock::to_time_t(now));
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
    if (X509_verify_cert(ctx.get()) != 1) {
        const int err = X509_STORE_CTX_get_error(ctx.get());
        ossl::clear_errors();
        return refused(cert_path, std::string("its chain to the root does not verify: ") +
                                      X509_verify_cert_error_string(err));
    }
    if (ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(root)) > 0)
        return refused(cert_path, "it expires after its root");
    return ok_status();
}

}  // namespace

Result<CsrFiles> make_pem_csr(const fs::path& dir, const ChainOptions& options) {
    WP_RETURN_IF_ERROR(check_chain_options(options));
    CsrFiles f{dir / "ca.csr", dir / "ca.key"};
    WP_RETURN_IF_ERROR(refuse_existing({f.csr, f.key}));
    WP_RETURN_IF_ERROR(prepare(dir));
    WP_ASSIGN_OR_RETURN(ossl::Pkey key, generate_p256_key());
    WP_ASSIGN_OR_RETURN(ReqPtr req, unsigned_request(options, key.get()));
    if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0)
        return ossl::ossl_error("signing the request");
    WP_ASSIGN_OR_RETURN(std::string pem, request_to_pem(req.get()));
    WP_ASSIGN_OR_RETURN(std::string key_pem, private_key_to_pem(key.get()));
    Status st = write_new_file(f.key, key_pem, 0600);
    secure_wipe(key_pem.data(), key_pem.size());
    WP_RETURN_IF_ERROR(st);
    WP_RETURN_IF_ERROR(write_new_file(f.csr, pem, 0644));
    return f;
}

Result<CsrFiles> make_hsm_csr(const fs::path& dir, const HsmChainOptions& options) {
    WP_RETURN_IF_ERROR(check_chain_options(options.chain));
    CsrFiles f{dir / "ca.csr", {}};
    WP_RETURN_IF_ERROR(refuse_existing({f.csr}));
    WP_ASSIGN_OR_RETURN(TokenSession token, open_ca_token(options));
    WP_RETURN_IF_ERROR(refuse_existing_key(token, options));
    WP_RETURN_IF_ERROR(prepare(dir));
    WP_ASSIGN_OR_RETURN(TokenKey key, generate_ca_key(token, options));
    auto result = [&]() -> Result<CsrFiles> {
        WP_ASSIGN_OR_RETURN(ReqPtr req, unsigned_request(options.chain, key.public_key.get()));
        // Sign CertificationRequestInfo in the token: SHA-256 here, CKM_ECDSA there.
        AlgorPtr alg(X509_ALGOR_new());
        if (!alg ||
            X509_ALGOR_set0(alg.get(), OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF, nullptr) !=
                1 ||
            X509_REQ_set1_signature_algo(req.get(), alg.get()) != 1)
            return ossl::ossl_error("request signature algorithm");
        const int tbs_len = i2d_re_X509_REQ_tbs(req.get(), nullptr);
        if (tbs_len <= 0) return ossl::ossl_error("encoding CertificationRequestInfo");
        Bytes tbs(static_cast<size_t>(tbs_len));
        uint8_t* p = tbs.data();
        if (i2d_re_X509_REQ_tbs(req.get(), &p) != tbs_len)
            return ossl::ossl_error("encoding CertificationRequestInfo");
        const auto digest = sha256(tbs);
        WP_ASSIGN_OR_RETURN(Bytes raw, token.session.sign_ecdsa(key.priv, digest));
        WP_ASSIGN_OR_RETURN(Bytes der, ecdsa_raw_to_der(raw));
        Asn1BitStringPtr sig(ASN1_BIT_STRING_new());
        if (!sig || ASN1_BIT_STRING_set(sig.get(), der.data(), static_cast<int>(der.size())) != 1)
            return ossl::ossl_error("request signature");
        // A signature is a whole number of bytes: no unused bits, whatever its last byte.
        sig->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
        sig->flags |= ASN1_STRING_FLAG_BITS_LEFT;
        X509_REQ_set0_signature(req.get(), sig.release());
        // The token's signature must verify under the token's public key.
        if (X509_REQ_verify(req.get(), key.public_key.get()) != 1)
            return ossl::ossl_error("the token's signature on the request does not verify");
        WP_ASSIGN_OR_RETURN(std::string pem, request_to_pem(req.get()));
        WP_RETURN_IF_ERROR(write_new_file(f.csr, pem, 0644));
        return f;
    }();
    if (!result.ok()) destroy_key(token, key);
    return result;
}

Result<ImportedChain> import_ca_certificate(const fs::path& dir, const fs::path& certificate_pem,
                                            const fs::path& root_pem,
                                            std::chrono::system_clock::time_point now) {
    ImportedChain out{dir / "ca.pem", dir / "root.pem"};
    WP_RETURN_IF_ERROR(refuse_existing({out.ca_cert, out.root_cert}));
    WP_ASSIGN_OR_RETURN(ReqPtr req, read_request(dir / "ca.csr"));
    EVP_PKEY* req_key = X509_REQ_get0_pubkey(req.get());
    if (req_key == nullptr || X509_REQ_verify(req.get(), req_key) != 1) {
        ossl::clear_errors();
        return make_error(
            ErrorCode::kInvalidArgument,
            (dir / "ca.csr").string() + ": the request's own signature does not verify");
    }
    WP_ASSIGN_OR_RETURN(ossl::X509Ptr cert, read_pem_certificate(certificate_pem));
    WP_ASSIGN_OR_RETURN(ossl::X509Ptr root, read_pem_certificate(root_pem));

    if (EVP_PKEY_eq(X509_get0_pubkey(cert.get()), req_key) != 1) {
        ossl::clear_errors();
        return refused(certificate_pem,
                       "it certifies another key than the request in " + (dir / "ca.csr").string());
    }
    if (X509_NAME_cmp(X509_get_subject_name(cert.get()), X509_REQ_get_subject_name(req.get())) != 0)
        return refused(certificate_pem, "its subject is not the request's");
    WP_RETURN_IF_ERROR(check_profile(cert.get(), certificate_pem));
    WP_RETURN_IF_ERROR(check_chain(cert.get(), root.get(), certificate_pem, root_pem, now));

    WP_ASSIGN_OR_RETURN(std::string ca_text, certificate_to_pem(cert.get()));
    WP_ASSIGN_OR_RETURN(std::string root_text, certificate_to_pem(root.get()));
    WP_RETURN_IF_ERROR(write_new_file(out.root_cert, root_text, 0644));
    WP_RETURN_IF_ERROR(write_new_file(out.ca_cert, ca_text, 0644));
    return out;
}

}  // namespace waferprov::host
