// The manufacturer CA's signers: a PEM key file (development, or a CA kept offline on the host)
// and a PKCS#11 token (production: the key never leaves the HSM). Both implement host::Signer
// and are safe to call from many threads. Open them through make_signer() unless you need a
// backend-specific accessor.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <variant>

#include "waferprov/bytes.hpp"
#include "waferprov/host/signer.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host {

// The environment variable that holds the token's user PIN unless the job names another.
// The PIN is never taken from the command line or a file.
inline constexpr const char* kDefaultPinEnv = "WAFERPROV_HSM_PIN";

struct PemSignerConfig {
    std::filesystem::path key_pem;  // CA private key, unencrypted PEM (PKCS#8 or SEC1), P-256
    std::filesystem::path certificate_pem;  // the CA certificate for that key, PEM
};

struct Pkcs11SignerConfig {
    std::filesystem::path module;           // e.g. /usr/lib/softhsm/libsofthsm2.so
    std::string token_label;                // CK_TOKEN_INFO.label (trailing blanks ignored)
    std::string key_label;                  // CKA_LABEL of the CKO_PRIVATE_KEY (CKK_EC, P-256)
    std::string pin_env = kDefaultPinEnv;   // NAME of the environment variable holding the PIN
    std::filesystem::path certificate_pem;  // the CA certificate for the token's key, PEM
    size_t pool_size = 0;                   // most sessions open at once; 0 = hardware threads
};

using SignerConfig = std::variant<PemSignerConfig, Pkcs11SignerConfig>;

// The DER of the certificate in a PEM file (the first one); errors name the file.
Result<Bytes> read_certificate_der(const std::filesystem::path& pem_file);

// Opens the signer a configuration describes. Before returning it signs one self-test digest
// and verifies the signature with the certificate's public key, so a key/certificate mismatch
// is an error here rather than a batch of unverifiable device certificates.
Result<std::unique_ptr<Signer>> make_signer(const SignerConfig& config);

// ECDSA with a P-256 key loaded from PEM. Thread-safe: the key is shared read-only and every
// signature has its own EVP_PKEY_CTX.
class PemSigner final : public Signer {
public:
    static Result<std::unique_ptr<PemSigner>> open(const PemSignerConfig& config);
    ~PemSigner() override;

    Result<Bytes> sign_sha256_digest(const std::array<uint8_t, 32>& digest) override;
    const Bytes& certificate_der() const override;
    std::string describe() const override;

    struct Impl;
    explicit PemSigner(std::unique_ptr<Impl> impl);

private:
    std::unique_ptr<Impl> impl_;
};

// ECDSA (CKM_ECDSA over the host-computed SHA-256 digest) with a key held in a PKCS#11 token.
// The module is loaded once per process and path (C_Initialize with CKF_OS_LOCKING_OK) and
// finalized when its last user goes away. Sessions are not thread-safe, so the signer keeps a
// bounded pool: each signature borrows a session, blocking while pool_size are in use. The PIN
// is read from the environment once, used for C_Login, and wiped; one extra session stays open
// for the signer's lifetime to hold the login.
class Pkcs11Signer final : public Signer {
public:
    static Result<std::unique_ptr<Pkcs11Signer>> open(const Pkcs11SignerConfig& config);
    ~Pkcs11Signer() override;

    Result<Bytes> sign_sha256_digest(const std::array<uint8_t, 32>& digest) override;
    const Bytes& certificate_der() const override;
    std::string describe() const override;

    size_t pool_size() const;      // the bound on signing sessions
    size_t sessions_open() const;  // signing sessions opened so far (never above pool_size)

    struct Impl;
    explicit Pkcs11Signer(std::unique_ptr<Impl> impl);

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace waferprov::host
