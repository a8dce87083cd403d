// Internals shared by the CA sources: more OpenSSL handles (same pattern as waferprov::ossl),
// a minimal DER writer, PEM/key helpers and exclusive file writes.
#pragma once

#include <array>
#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "waferprov/bytes.hpp"
#include "waferprov/files.hpp"  // write_new_file
#include "waferprov/host/signer.hpp"
#include "waferprov/ossl.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host::ca_detail {

void free_asn1_sequence_any(ASN1_SEQUENCE_ANY* p) noexcept;

using BioPtr = ossl::Ptr<BIO, BIO_free_all>;
using X509NamePtr = ossl::Ptr<X509_NAME, X509_NAME_free>;
using X509ExtPtr = ossl::Ptr<X509_EXTENSION, X509_EXTENSION_free>;
using Asn1IntegerPtr = ossl::Ptr<ASN1_INTEGER, ASN1_INTEGER_free>;
using Asn1OctetPtr = ossl::Ptr<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using Asn1BitStringPtr = ossl::Ptr<ASN1_BIT_STRING, ASN1_BIT_STRING_free>;
using Asn1TimePtr = ossl::Ptr<ASN1_TIME, ASN1_TIME_free>;
using Asn1ObjectPtr = ossl::Ptr<ASN1_OBJECT, ASN1_OBJECT_free>;
using Asn1SeqAnyPtr = ossl::Ptr<ASN1_SEQUENCE_ANY, free_asn1_sequence_any>;
using BasicConstraintsPtr = ossl::Ptr<BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free>;
using AuthorityKeyIdPtr = ossl::Ptr<AUTHORITY_KEYID, AUTHORITY_KEYID_free>;
using EcdsaSigPtr = ossl::Ptr<ECDSA_SIG, ECDSA_SIG_free>;

// DER: tag-length-value with a definite minimal length; INTEGER from a machine integer.
Bytes der_tlv(uint8_t tag, ByteSpan content);
Bytes der_integer(int64_t v);
// INTEGER from a big-endian magnitude (leading zeros stripped, 0x00 added if the top bit is set).
Bytes der_unsigned_integer(ByteSpan magnitude);

// SHA-256 / SHA-1 of data.
std::array<uint8_t, 32> sha256(ByteSpan data);
std::array<uint8_t, 20> sha1(ByteSpan data);

// Ok iff `point` is a 65-byte uncompressed SEC1 encoding of a P-256 point (not infinity).
Status check_p256_point(ByteSpan point);
// An EVP_PKEY (public only) for a validated 65-byte P-256 point.
Result<ossl::Pkey> p256_public_key(ByteSpan point);
// The 65-byte uncompressed point of an EC P-256 key.
Result<Bytes> p256_point_of(EVP_PKEY* key);
// A fresh P-256 key pair.
Result<ossl::Pkey> generate_p256_key();

// Certificates and keys in PEM / DER.
Result<ossl::X509Ptr> read_pem_certificate(const std::filesystem::path& path);
Result<ossl::Pkey> read_pem_private_key(const std::filesystem::path& path);
Result<Bytes> certificate_to_der(X509* cert);
Result<ossl::X509Ptr> certificate_from_der(ByteSpan der);
Result<std::string> certificate_to_pem(X509* cert);
Result<std::string> private_key_to_pem(EVP_PKEY* key);
// Ok iff `key` is an EC key on P-256.
Status check_p256_key(EVP_PKEY* key, const std::string& what);

// DER ECDSA-Sig-Value from raw r || s (64 bytes).
Result<Bytes> ecdsa_raw_to_der(ByteSpan raw);
// Signs a self-test digest with `signer` and verifies it with the certificate's public key.
Status check_signer_matches_certificate(Signer& signer);

// 16 random octets, positive, first octet nonzero (serials of the CA certificates).
Result<Bytes> random_serial();

// ASN1_TIME for a point in time (UTCTime before 2050, GeneralizedTime after: RFC 5280).
Result<Asn1TimePtr> asn1_time(std::chrono::system_clock::time_point t);

// Fails if any of the paths exists (checked before a command writes anything).
Status refuse_existing(std::initializer_list<std::filesystem::path> paths);

}  // namespace waferprov::host::ca_detail
