// Proof of possession at final test (docs/final-test.md, "Proof of possession"): the message a
// packaged part signs over the host's challenge, signing it with the part's P-256 scalar (what
// the die's engine does; the tester simulator does it from the unwrapped d) and verifying it
// against the part's certificate (what `serve` does). Shared by the host and the tester side,
// so both build the same bytes.
//
// Thread-safety: pure functions; call them from any thread.
#pragma once

#include <array>
#include <cstdint>

#include "waferprov/bytes.hpp"
#include "waferprov/result.hpp"
#include "waferprov/wpid1.hpp"

namespace waferprov::possession {

inline constexpr size_t kNonceSize = 32;
inline constexpr size_t kSignatureSize = 64;
using Nonce = std::array<uint8_t, kNonceSize>;
using Signature = std::array<uint8_t, kSignatureSize>;  // r || s, 32 bytes each, big-endian

// The signed message: the ASCII label "waferprov final-test challenge v1" (33 bytes, no NUL),
// the part's UID (16), the session id (u64, little-endian like the link) and the nonce (32).
// The label keeps a challenge signature from meaning anything else the key might sign; the UID
// and session bind it to the part and the session the host issued it to.
// Inline and free of OpenSSL: the tester library builds it too, also for Windows testers,
// whose DLL links no OpenSSL.
inline Bytes challenge_message(const wpid1::Uid& uid, uint64_t session_id, const Nonce& nonce) {
    static constexpr char kLabel[] = "waferprov final-test challenge v1";
    Bytes m(kLabel, kLabel + sizeof kLabel - 1);
    m.insert(m.end(), uid.begin(), uid.end());
    for (int i = 0; i < 8; ++i) m.push_back(static_cast<uint8_t>(session_id >> (8 * i)));
    m.insert(m.end(), nonce.begin(), nonce.end());
    return m;
}

// ECDSA P-256 with SHA-256 over `message` with the private scalar `d` (big-endian, 1 <= d < n;
// else kInvalidArgument).
Result<Signature> sign(const SecretArray<32>& d, ByteSpan message);

// Whether `sig` is a valid ECDSA P-256 / SHA-256 signature over `message` by the public key of
// the DER certificate `certificate_der`. An Error only when the certificate cannot be parsed or
// does not hold a P-256 key (kInvalidArgument naming it); a wrong signature is `false`.
Result<bool> verify(ByteSpan certificate_der, ByteSpan message, const Signature& sig);

}  // namespace waferprov::possession
