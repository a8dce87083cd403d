// Independent OpenSSL reference for WPID-1 (tests only; see CMakeLists.txt).
// Functions abort the test via exceptions (std::runtime_error) on any OpenSSL failure: this is
// test code, where an unexpected OpenSSL error must fail loudly.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "waferprov/accelerator.hpp"
#include "waferprov/bytes.hpp"
#include "waferprov/wpid1.hpp"

namespace waferprov::reference {

// KEK via EVP_KDF "KBKDF" (counter mode, mac CMAC, cipher AES-256-CBC, salt = label,
// info = UID), 32 bytes.
Bytes kek(ByteSpan kik, ByteSpan uid);
// AES-CMAC via EVP_MAC "CMAC".
Bytes cmac(ByteSpan key, ByteSpan message);
// SP 800-108 counter-mode KDF with CMAC over arbitrary fixed input (the CAVP form):
// K(i) = CMAC(key, [i]32 || fixed), concatenated and truncated to out_len bytes. Via EVP_MAC.
Bytes kbkdf_cmac_fixed(ByteSpan key, ByteSpan fixed, size_t out_len);
// RFC 3394 wrap/unwrap via OpenSSL's AES-{128,192,256}-WRAP ciphers. unwrap returns nullopt
// when OpenSSL rejects the input.
Bytes kw_wrap(ByteSpan kek, ByteSpan plaintext);
std::optional<Bytes> kw_unwrap(ByteSpan kek, ByteSpan wrapped);
// AES block encrypt via EVP AES-xxx-ECB.
Bytes aes_encrypt(ByteSpan key, ByteSpan block);
// d*G computed on a P-256 group constructed from its explicit parameters (OpenSSL's generic
// prime-field code, not the named-curve fast path the software engine uses). nullopt if
// OpenSSL refuses the scalar.
std::optional<P256Point> base_mul(ByteSpan scalar);
// True iff d*G == (x, y), checked with the same generic group.
bool point_matches(ByteSpan scalar, const wpid1::Coord& x, const wpid1::Coord& y);

// OpenSSL's EVP_RAND CTR-DRBG (AES-256-CTR, use_df 0) over a TEST-RAND parent.
class Drbg {
public:
    Drbg(ByteSpan entropy, ByteSpan personalization);
    ~Drbg();
    Drbg(const Drbg&) = delete;
    Drbg& operator=(const Drbg&) = delete;
    void reseed(ByteSpan entropy, ByteSpan additional = {});
    Bytes generate(size_t n, ByteSpan additional = {});

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The whole WPID-1 stream computed by the reference: for each UID, draw scalars from `drbg`
// until one is in range, then d*G and the wrap under the KBKDF KEK.
struct ReferenceIdentity {
    SecureBytes d;
    wpid1::IdentityRecord record;
};
std::vector<ReferenceIdentity> identities(ByteSpan kik, Drbg& drbg,
                                          const std::vector<wpid1::Uid>& uids,
                                          uint64_t first_sequence = 0);

// What the die does with a record: derive the KEK (reference KBKDF), unwrap d (OpenSSL
// AES-256-WRAP, integrity check), and check d*G = Q. Returns an empty string when all holds,
// else what failed.
std::string die_check(ByteSpan kik, const wpid1::IdentityRecord& record);

}  // namespace waferprov::reference
