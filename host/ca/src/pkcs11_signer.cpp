#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "ca_internal.hpp"
#include "pkcs11_module.hpp"
#include "waferprov/host/ca_signers.hpp"

namespace waferprov::host {

struct Pkcs11Signer::Impl {
    std::shared_ptr<p11::Module> module;
    ck_slot_id_t slot = 0;
    std::string token_label;
    std::string description;
    Bytes cert_der;
    ossl::Pkey cert_key;  // the certificate's public key: every token signature is checked
    ck_object_handle_t key = CK_INVALID_HANDLE;
    // Holds the login for the signer's lifetime: login state belongs to the application and
    // ends when its last session on the token closes.
    std::optional<p11::Session> login_session;

    // The pool: idle sessions, and how many exist (idle + borrowed), at most `limit`.
    size_t limit = 1;
    mutable std::mutex mu;
    std::condition_variable cv;
    std::vector<p11::Session> idle;
    size_t open = 0;

    Result<p11::Session> borrow();
    void give_back(p11::Session s, bool healthy);
};

Result<p11::Session> Pkcs11Signer::Impl::borrow() {
    {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return !idle.empty() || open < limit; });
        if (!idle.empty()) {
            p11::Session s = std::move(idle.back());
            idle.pop_back();
            return s;
        }
        ++open;  // reserve the slot; open the session outside the lock
    }
    auto s = p11::Session::open(module, slot, /*read_write=*/false);
    if (!s.ok()) {
        std::lock_guard lock(mu);
        --open;
        cv.notify_one();
        return s.error().with_context("token '" + token_label + "'");
    }
    return s;
}

void Pkcs11Signer::Impl::give_back(p11::Session s, bool healthy) {
    std::lock_guard lock(mu);
    if (healthy) {
        idle.push_back(std::move(s));
    } else {
        --open;  // s closes when it goes out of scope
    }
    cv.notify_one();
}

Pkcs11Signer::Pkcs11Signer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Pkcs11Signer::~Pkcs11Signer() {
    if (!impl_) return;
    // Signing sessions first, then the login session, then the module reference.
    impl_->idle.clear();
    impl_->login_session.reset();
}

Result<std::unique_ptr<Pkcs11Signer>> Pkcs11Signer::open(const Pkcs11SignerConfig& config) {
    if (config.token_label.empty() || config.key_label.empty())
        return make_error(ErrorCode::kInvalidArgument,
                          "PKCS#11 signer needs a token label and a key label");
    auto impl = std::make_unique<Impl>();
    impl->token_label = config.token_label;
    impl->description = "PKCS#11 module '" + config.module.string() + "' token '" +
                        config.token_label + "' key '" + config.key_label + "'";
    impl->limit = config.pool_size != 0 ? config.pool_size
                                        : std::max<size_t>(1, std::thread::hardware_concurrency());

    // The certificate first: a missing file is the cheapest error to report.
    WP_ASSIGN_OR_RETURN(ossl::X509Ptr cert,
                        ca_detail::read_pem_certificate(config.certificate_pem));
    WP_ASSIGN_OR_RETURN(impl->cert_der, ca_detail::certificate_to_der(cert.get()));
    EVP_PKEY* cert_key = X509_get0_pubkey(cert.get());
    if (cert_key == nullptr || EVP_PKEY_up_ref(cert_key) != 1)
        return ossl::ossl_error("public key of " + config.certificate_pem.string());
    impl->cert_key.reset(cert_key);
    {
        // Read the PIN before touching the module so an unset variable is a clear error.
        WP_ASSIGN_OR_RETURN(SecureBytes pin, p11::read_pin_env(config.pin_env));
        WP_ASSIGN_OR_RETURN(impl->module, p11::Module::load(config.module.string()));
        WP_ASSIGN_OR_RETURN(impl->slot, impl->module->find_token(config.token_label));
        WP_ASSIGN_OR_RETURN(p11::Session s, p11::Session::open(impl->module, impl->slot, false));
        WP_RETURN_IF_ERROR(s.login(pin, config.token_label));
        impl->login_session.emplace(std::move(s));
    }  // the PIN is wiped here
    // Token objects' handles are valid in every session of this application.
    WP_ASSIGN_OR_RETURN(
        impl->key, impl->login_session->find_private_key(config.key_label, config.token_label));
    return std::make_unique<Pkcs11Signer>(std::move(impl));
}

Result<Bytes> Pkcs11Signer::sign_sha256_digest(const std::array<uint8_t, 32>& digest) {
    WP_ASSIGN_OR_RETURN(p11::Session s, impl_->borrow());
    ck_rv_t rv = CKR_OK;
    auto raw = s.sign_ecdsa(impl_->key, digest, &rv);
    // C_Sign ends the operation whatever its result, so the session goes back to the pool
    // unless the module says the session or the device itself is gone.
    const bool healthy = rv != CKR_SESSION_HANDLE_INVALID && rv != CKR_SESSION_CLOSED &&
                         rv != CKR_DEVICE_ERROR && rv != CKR_DEVICE_REMOVED &&
                         rv != CKR_TOKEN_NOT_PRESENT && rv != CKR_OPERATION_ACTIVE;
    impl_->give_back(std::move(s), healthy);
    if (!raw.ok()) return raw.error().with_context(impl_->description);
    WP_ASSIGN_OR_RETURN(Bytes der, ca_detail::ecdsa_raw_to_der(*raw));
    // The token is a device that can fail: a signature that does not verify under the CA
    // certificate's key must never reach a certificate or a manifest.
    ossl::PkeyCtx vctx(EVP_PKEY_CTX_new_from_pkey(nullptr, impl_->cert_key.get(), nullptr));
    if (!vctx || EVP_PKEY_verify_init(vctx.get()) != 1 ||
        EVP_PKEY_CTX_set_signature_md(vctx.get(), EVP_sha256()) != 1)
        return ossl::ossl_error("checking the signature of " + impl_->description);
    if (EVP_PKEY_verify(vctx.get(), der.data(), der.size(), digest.data(), digest.size()) != 1) {
        ossl::clear_errors();
        return make_error(ErrorCode::kCrypto, impl_->description +
                                                  " returned a signature that does not verify "
                                                  "under the CA certificate's key");
    }
    return der;
}

const Bytes& Pkcs11Signer::certificate_der() const { return impl_->cert_der; }
std::string Pkcs11Signer::describe() const { return impl_->description; }
size_t Pkcs11Signer::pool_size() const { return impl_->limit; }
size_t Pkcs11Signer::sessions_open() const {
    std::lock_guard lock(impl_->mu);
    return impl_->open;
}

}  // namespace waferprov::host
