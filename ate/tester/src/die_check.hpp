// What a die does with the payload the host sent for it, and what a careful tester checks
// besides, with OpenSSL directly and none of the host's code (docs/tester-simulator.md,
// "The die's checks"):
//   1. key_usage / key_algorithm / key_version are 1 / 1 / 1;
//   2. KEK = WPID-1 KDF(KIK, UID) (SP 800-108 counter mode, AES-256-CMAC, EVP_KDF "KBKDF"),
//      d = AES-256-KW-unwrap(KEK, wrapped_key), the RFC 3394 integrity check must pass;
//   3. the certificate is one DER X.509 certificate (d2i_X509, nothing trailing) whose key is a
//      P-256 point equal to d*G (0 < d < n);
//   4. it chains to the root through the manufacturer CA (X509_verify_cert,
//   X509_V_FLAG_X509_STRICT,
//      root.pem trusted, ca.pem untrusted), at this clock's time plus an allowed clock skew: a
//      device certificate's notBefore is its issuance time to the second, so a verifier whose
//      clock is a little behind the host's would otherwise call a certificate issued a moment
//      ago "not yet valid" (on one machine too: OpenSSL reads time(), which glibc serves from
//      the coarse clock, up to a tick behind the clock the host stamps certificates with);
//   5. its subject serialNumber is the UID in lower-case hex;
//   6. chain_id = SHA-256(DER(ca.pem) || DER(root.pem));
//   7. the UID is the one the tester sent, when it sent one.
// The private scalar, the KEK and the KIK are wiped after use.
#pragma once

#include <array>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "waferprov/bytes.hpp"
#include "waferprov/result.hpp"
#include "waferprov/wpid1.hpp"
#include "waferprov_ate.h"

namespace waferprov::tester {

// Reads a KIK file: 64 hex digits (either case), surrounding white space ignored.
Result<SecretArray<32>> read_kik_file(const std::filesystem::path& path);

// SHA-256(DER(ca) || DER(root)): the chain id the host must send (docs/tester-protocol.md).
// Each file must hold exactly one PEM certificate.
Result<std::array<uint8_t, 32>> chain_id_of(const std::filesystem::path& ca_pem,
                                            const std::filesystem::path& root_pem);

// The checks above for one site's payload. Not thread-safe (create one per thread).
class DieChecker {
public:
    // Reads the CA and root certificates (one PEM certificate each) and keeps a copy of the KIK.
    // Certificates are verified at now + clock_skew_s (>= 0).
    static Result<DieChecker> create(const SecretArray<32>& kik,
                                     const std::filesystem::path& ca_pem,
                                     const std::filesystem::path& root_pem, int clock_skew_s = 0);
    DieChecker(DieChecker&&) noexcept;
    DieChecker& operator=(DieChecker&&) noexcept;
    ~DieChecker();

    // "" when every check passes; else every failed check, "; "-separated, each naming what
    // failed ("wrapped key does not unwrap under KEK(KIK, UID): integrity check failed").
    // `sent_uid` is the UID the touchdown carried (has_uid = 1), nullopt if the host assigned it.
    std::string check(const wp_ate_site_identity& identity,
                      const std::optional<wpid1::Uid>& sent_uid) const;

    // The die's private scalar d, unwrapped from the payload as the die does (KEK from the KIK
    // and the UID, AES-KW): what a part signs final-test challenges with. nullopt when it does
    // not unwrap.
    std::optional<wpid1::Scalar> scalar(const wp_ate_site_identity& identity) const;

    const std::array<uint8_t, 32>& chain_id() const;

    // How many certificates check() has seen whose notBefore is later than this clock's time
    // (accepted when within the allowed skew): a sign of clocks that disagree.
    size_t not_before_ahead() const;

    struct Impl;

private:
    explicit DieChecker(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// The WPID-1 KEK (exposed for the tests, which compare it with the reference model).
Result<SecretArray<32>> wpid1_kek(const SecretArray<32>& kik, const wpid1::Uid& uid);

}  // namespace waferprov::tester
