// The manufacturer CA's signing key, wherever it lives (PEM file, PKCS#11 token). The host
// signs device certificates and the ledger export manifest through this interface.
// Implementations must be safe to call from many threads (PKCS#11 uses a session pool).
#pragma once

#include <array>
#include <cstdint>

#include "waferprov/bytes.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host {

class Signer {
public:
    virtual ~Signer() = default;
    // ECDSA P-256 signature over a SHA-256 digest the caller computed, DER-encoded
    // (ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }).
    virtual Result<Bytes> sign_sha256_digest(const std::array<uint8_t, 32>& digest) = 0;
    // The signer's certificate, DER (the manufacturer CA certificate).
    virtual const Bytes& certificate_der() const = 0;
    // Human-readable description for logs ("PEM ca.key", "PKCS#11 token 'x' key 'y'").
    virtual std::string describe() const = 0;
};

}  // namespace waferprov::host
