#include "ca_internal.hpp"
#include "waferprov/host/ca_signers.hpp"

namespace waferprov::host {

struct PemSigner::Impl {
    ossl::Pkey key;
    Bytes cert_der;
    std::string description;
};

PemSigner::PemSigner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PemSigner::~PemSigner() = default;

Result<std::unique_ptr<PemSigner>> PemSigner::open(const PemSignerConfig& config) {
    auto impl = std::make_unique<Impl>();
    WP_ASSIGN_OR_RETURN(impl->key, ca_detail::read_pem_private_key(config.key_pem));
    WP_RETURN_IF_ERROR(
        ca_detail::check_p256_key(impl->key.get(), "CA key " + config.key_pem.string()));
    WP_ASSIGN_OR_RETURN(ossl::X509Ptr cert,
                        ca_detail::read_pem_certificate(config.certificate_pem));
    if (EVP_PKEY_eq(X509_get0_pubkey(cert.get()), impl->key.get()) != 1) {
        ossl::clear_errors();
        return make_error(ErrorCode::kInvalidArgument, "CA key " + config.key_pem.string() +
                                                           " does not belong to certificate " +
                                                           config.certificate_pem.string());
    }
    WP_ASSIGN_OR_RETURN(impl->cert_der, ca_detail::certificate_to_der(cert.get()));
    impl->description = "PEM " + config.key_pem.string();
    return std::make_unique<PemSigner>(std::move(impl));
}

Result<Bytes> PemSigner::sign_sha256_digest(const std::array<uint8_t, 32>& digest) {
    // A context per call: EVP_PKEY_CTX is not shareable between threads, the key is.
    ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, impl_->key.get(), nullptr));
    if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1)
        return ossl::ossl_error("ECDSA sign with " + impl_->description);
    size_t len = 0;
    if (EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size()) != 1)
        return ossl::ossl_error("ECDSA sign with " + impl_->description);
    Bytes sig(len);
    if (EVP_PKEY_sign(ctx.get(), sig.data(), &len, digest.data(), digest.size()) != 1)
        return ossl::ossl_error("ECDSA sign with " + impl_->description);
    sig.resize(len);
    return sig;
}

const Bytes& PemSigner::certificate_der() const { return impl_->cert_der; }
std::string PemSigner::describe() const { return impl_->description; }

}  // namespace waferprov::host
