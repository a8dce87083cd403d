// Device certificates: the X.509 profile of a die's identity (docs/certificates.md).
//
// One path for every signer: the TBSCertificate is assembled from parts pre-encoded per job (the
// die's own fields encoded in place; OpenSSL's X509 API builds the same bytes as the tests'
// reference), hashed with SHA-256 on the host and signed through host::Signer (PEM key or
// PKCS#11 token); the Certificate is assembled around the signature.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "waferprov/bytes.hpp"
#include "waferprov/host/model.hpp"
#include "waferprov/host/signer.hpp"
#include "waferprov/result.hpp"
#include "waferprov/wpid1.hpp"

namespace waferprov::host {

// The die-location extension (non-critical):
//   DieLocation ::= SEQUENCE { lot UTF8String, wafer INTEGER, x INTEGER, y INTEGER,
//                              substrateId UTF8String }
// under the OID the job names ([certificate] location_oid, under the manufacturer's own IANA
// enterprise number). kDieLocationOid, under 1.3.6.1.4.1.32473 (the enterprise number RFC 5612
// reserves for documentation), is only the DEVELOPMENT default.
inline constexpr std::string_view kDieLocationOid = "1.3.6.1.4.1.32473.1.1";

// Optional subject attributes a job's certificate template adds (empty = absent).
struct CertTemplate {
    std::string organization;         // O, at most 64 characters
    std::string organizational_unit;  // OU, at most 64 characters
    std::string country;              // C, two letters (ISO 3166)
};

struct DeviceCertRequest {
    wpid1::Uid uid{};
    DieLocation location;  // location.packaged (a part provisioned at final test): no extension
    std::string product;   // 1..31 characters: CN is "<product> <UID hex>"
    std::array<uint8_t, 65> public_key{};  // uncompressed SEC1 point 04 || X || Y on P-256
    Bytes serial;                          // big-endian magnitude, nonzero, DER ≤ 20 octets
    std::chrono::system_clock::time_point not_before{};  // issuance time
    CertTemplate subject_template;
};

// The certificate serial for a device key: the first 16 octets of
// SHA-256("WPID-1 serial" || ca_ski || public_key) with the top bit of octet 0 cleared, and
// octet 0 set to 0x01 if it is then zero. So the DER INTEGER is positive and exactly 16 octets,
// unique per issuer for distinct keys (barring a 127-bit collision; the ledger enforces
// uniqueness anyway) and computable before the ledger commit.
Bytes device_serial(ByteSpan ca_ski, ByteSpan public_key);

// The subjectKeyIdentifier of a DER certificate (error if it has none).
Result<Bytes> certificate_ski(ByteSpan certificate_der);

// DER of the die-location extension value, and its inverse (strict: exactly five fields).
Result<Bytes> encode_die_location(const DieLocation& location);
Result<DieLocation> decode_die_location(ByteSpan der);

// Builds device certificates for one issuer. Construction parses the signer's CA certificate
// once (issuer name, subject key identifier, public key). build() is thread-safe and may run
// concurrently from many threads when the signer is (both shipped signers are). The signer must
// outlive the builder.
class DeviceCertBuilder {
public:
    // `location_oid`: the die-location extension's OID (dotted form).
    static Result<DeviceCertBuilder> create(Signer& signer,
                                            std::string_view location_oid = kDieLocationOid);
    DeviceCertBuilder(DeviceCertBuilder&&) noexcept;
    DeviceCertBuilder& operator=(DeviceCertBuilder&&) noexcept;
    ~DeviceCertBuilder();

    // The DER Certificate. Refuses a public key that is not a P-256 point, a zero or too long
    // serial, an empty or too long product name or template field.
    Result<Bytes> build(const DeviceCertRequest& request) const;

    // What build() refuses, checked alone.
    Status check(const DeviceCertRequest& request) const;
    // The TBSCertificate build() signs: assembled from parts pre-encoded per job (issuer, AKI,
    // OIDs, the subject with a UID placeholder) with the die's own fields encoded in place.
    Result<Bytes> tbs(const DeviceCertRequest& request) const;
    // The same TBSCertificate built field by field through OpenSSL's X509 API: the independent
    // reference the tests compare tbs() with, byte for byte (about 2x slower).
    Result<Bytes> reference_tbs(const DeviceCertRequest& request) const;

    const Bytes& ca_ski() const;  // the issuer's subject key identifier (= device AKI)

    struct Impl;

private:
    explicit DeviceCertBuilder(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// One-shot convenience: DeviceCertBuilder::create(signer) then build(request).
Result<Bytes> build_device_certificate(const DeviceCertRequest& request, Signer& signer);

}  // namespace waferprov::host
