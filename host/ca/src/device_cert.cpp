#include "waferprov/host/device_cert.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <limits>
#include <map>
#include <mutex>
#include <shared_mutex>

#include <openssl/obj_mac.h>
#include <openssl/objects.h>

#include "ca_internal.hpp"

namespace waferprov::host {

using namespace ca_detail;

namespace {

constexpr std::string_view kSerialLabel = "WPID-1 serial";  // 13 ASCII octets, no terminator
constexpr size_t kMaxProductLength = 31;  // CN "<product> <32 hex>" within ub-common-name (64)
constexpr size_t kMaxNameField = 64;      // ub-organization-name, ub-organizational-unit-name

// AlgorithmIdentifier { ecdsa-with-SHA256 } with parameters absent (RFC 5758 §3.2).
constexpr uint8_t kEcdsaWithSha256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                        0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};

Status add_entry(X509_NAME* name, int nid, const std::string& value) {
    if (X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1)
        return ossl::ossl_error(std::string("subject ") + OBJ_nid2sn(nid) + " '" + value + "'");
    return ok_status();
}

Status check_field(const std::string& what, const std::string& value, size_t max) {
    if (value.size() > max)
        return make_error(ErrorCode::kInvalidArgument, what + " '" + value + "' is longer than " +
                                                           std::to_string(max) + " characters");
    return ok_status();
}

Status add_ext(X509* x, int nid, void* value, bool critical, const char* what) {
    if (X509_add1_ext_i2d(x, nid, value, critical ? 1 : 0, X509V3_ADD_APPEND) != 1)
        return ossl::ossl_error(std::string("adding ") + what);
    return ok_status();
}

}  // namespace

Bytes device_serial(ByteSpan ca_ski, ByteSpan public_key) {
    Bytes input(kSerialLabel.begin(), kSerialLabel.end());
    input.insert(input.end(), ca_ski.begin(), ca_ski.end());
    input.insert(input.end(), public_key.begin(), public_key.end());
    const auto h = sha256(input);
    Bytes serial(h.begin(), h.begin() + 16);
    serial[0] &= 0x7f;                     // positive
    if (serial[0] == 0) serial[0] = 0x01;  // and exactly 16 DER octets
    return serial;
}

Result<Bytes> certificate_ski(ByteSpan certificate_der) {
    WP_ASSIGN_OR_RETURN(ossl::X509Ptr cert, certificate_from_der(certificate_der));
    const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(cert.get());
    if (ski == nullptr) {
        ossl::clear_errors();
        return make_error(ErrorCode::kInvalidArgument,
                          "the CA certificate has no subjectKeyIdentifier");
    }
    const uint8_t* p = ASN1_STRING_get0_data(ski);
    return Bytes(p, p + ASN1_STRING_length(ski));
}

Result<Bytes> encode_die_location(const DieLocation& location) {
    Bytes body = der_tlv(
        V_ASN1_UTF8STRING,
        ByteSpan(reinterpret_cast<const uint8_t*>(location.lot.data()), location.lot.size()));
    for (int v : {location.wafer, location.x, location.y}) {
        const Bytes i = der_integer(v);
        body.insert(body.end(), i.begin(), i.end());
    }
    const Bytes substrate = der_tlv(
        V_ASN1_UTF8STRING, ByteSpan(reinterpret_cast<const uint8_t*>(location.substrate.data()),
                                    location.substrate.size()));
    body.insert(body.end(), substrate.begin(), substrate.end());
    return der_tlv(V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, body);
}

Result<DieLocation> decode_die_location(ByteSpan der) {
    const uint8_t* p = der.data();
    Asn1SeqAnyPtr seq(d2i_ASN1_SEQUENCE_ANY(nullptr, &p, static_cast<long>(der.size())));
    if (!seq || p != der.data() + der.size() || sk_ASN1_TYPE_num(seq.get()) != 5) {
        ossl::clear_errors();
        return make_error(ErrorCode::kInvalidArgument,
                          "die-location extension is not SEQUENCE { UTF8String, INTEGER, "
                          "INTEGER, INTEGER, UTF8String }");
    }
    const ASN1_TYPE* lot = sk_ASN1_TYPE_value(seq.get(), 0);
    if (ASN1_TYPE_get(lot) != V_ASN1_UTF8STRING)
        return make_error(ErrorCode::kInvalidArgument, "die-location lot is not a UTF8String");
    DieLocation out;
    const ASN1_STRING* s = lot->value.utf8string;
    out.lot.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                   static_cast<size_t>(ASN1_STRING_length(s)));
    int* fields[] = {&out.wafer, &out.x, &out.y};
    for (int i = 0; i < 3; ++i) {
        const ASN1_TYPE* t = sk_ASN1_TYPE_value(seq.get(), i + 1);
        int64_t v = 0;
        if (ASN1_TYPE_get(t) != V_ASN1_INTEGER && ASN1_TYPE_get(t) != V_ASN1_NEG_INTEGER)
            return make_error(ErrorCode::kInvalidArgument, "die-location field is not an INTEGER");
        if (ASN1_INTEGER_get_int64(&v, t->value.integer) != 1 ||
            v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
            ossl::clear_errors();
            return make_error(ErrorCode::kInvalidArgument, "die-location INTEGER out of range");
        }
        *fields[i] = static_cast<int>(v);
    }
    const ASN1_TYPE* substrate = sk_ASN1_TYPE_value(seq.get(), 4);
    if (ASN1_TYPE_get(substrate) != V_ASN1_UTF8STRING)
        return make_error(ErrorCode::kInvalidArgument,
                          "die-location substrateId is not a UTF8String");
    const ASN1_STRING* sub = substrate->value.utf8string;
    out.substrate.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(sub)),
                         static_cast<size_t>(ASN1_STRING_length(sub)));
    return out;
}

// A job's subject Name, encoded once by OpenSSL with a placeholder UID; a die's subject is the
// same bytes with its UID's hex patched in at the two places the placeholder took (CN and
// serialNumber: fixed length, so nothing else moves).
struct SubjectTemplate {
    Bytes der;
    std::array<size_t, 2> uid_at{};
};

struct DeviceCertBuilder::Impl {
    Signer* signer = nullptr;
    Bytes issuer_name_der;  // the CA certificate's subject
    Bytes ca_ski;
    Asn1ObjectPtr location_oid;  // read-only after construction
    Bytes location_oid_der;      // 06 len <oid>
    Bytes aki_extension_der;     // Extension { authorityKeyIdentifier, keyIdentifier ca_ski }
    // Subject templates per (product, O/OU/C): a job uses one.
    mutable std::shared_mutex subjects_mu;
    mutable std::map<std::string, SubjectTemplate> subjects;

    Result<Bytes> subject_der(const DeviceCertRequest& req, const std::string& uid_hex) const;
};

namespace {

// The placeholder the subject templates are encoded with: 32 characters like a UID's hex, but
// upper-case, which a UID's hex (to_hex: lower-case) never is.
constexpr std::string_view kUidPlaceholder = "WPIDUIDPLACEHOLDERWPIDUIDPLACEHO";

Result<X509NamePtr> subject_name(const DeviceCertRequest& req, const std::string& uid_hex) {
    const CertTemplate& tmpl = req.subject_template;
    X509NamePtr subject(X509_NAME_new());
    if (!subject) return ossl::ossl_error("subject");
    if (!tmpl.country.empty())
        WP_RETURN_IF_ERROR(add_entry(subject.get(), NID_countryName, tmpl.country));
    if (!tmpl.organization.empty())
        WP_RETURN_IF_ERROR(add_entry(subject.get(), NID_organizationName, tmpl.organization));
    if (!tmpl.organizational_unit.empty())
        WP_RETURN_IF_ERROR(
            add_entry(subject.get(), NID_organizationalUnitName, tmpl.organizational_unit));
    WP_RETURN_IF_ERROR(add_entry(subject.get(), NID_commonName, req.product + " " + uid_hex));
    WP_RETURN_IF_ERROR(add_entry(subject.get(), NID_serialNumber, uid_hex));
    return subject;
}

Result<Bytes> name_der(const X509_NAME* name) {
    const int n = i2d_X509_NAME(name, nullptr);
    if (n <= 0) return ossl::ossl_error("encoding a Name");
    Bytes out(static_cast<size_t>(n));
    uint8_t* p = out.data();
    if (i2d_X509_NAME(name, &p) != n) return ossl::ossl_error("encoding a Name");
    return out;
}

// Time ::= UTCTime (years 1950..2049) | GeneralizedTime, as OpenSSL's ASN1_TIME_set chooses.
Result<Bytes> der_time(std::chrono::system_clock::time_point t) {
    const std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    if (gmtime_r(&tt, &tm) == nullptr)
        return make_error(ErrorCode::kInvalidArgument, "time out of range for a certificate");
    const int year = tm.tm_year + 1900;
    if (year < 0 || year > 9999)
        return make_error(ErrorCode::kInvalidArgument, "time out of range for a certificate");
    char buf[32];
    const bool utc = year >= 1950 && year < 2050;
    const int n = utc ? std::snprintf(buf, sizeof buf, "%02d%02d%02d%02d%02d%02dZ", year % 100,
                                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec)
                      : std::snprintf(buf, sizeof buf, "%04d%02d%02d%02d%02d%02dZ", year,
                                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return der_tlv(utc ? V_ASN1_UTCTIME : V_ASN1_GENERALIZEDTIME,
                   ByteSpan(reinterpret_cast<const uint8_t*>(buf), static_cast<size_t>(n)));
}

void append(Bytes& out, ByteSpan b) { out.insert(out.end(), b.begin(), b.end()); }

// The constant parts of every device TBSCertificate (docs/certificates.md).
constexpr uint8_t kVersion3[] = {0xa0, 0x03, 0x02, 0x01, 0x02};  // [0] EXPLICIT INTEGER 2
// notAfter 99991231235959Z: no well-defined expiration (RFC 5280 §4.1.2.5, IEEE 802.1AR).
constexpr uint8_t kNotAfter[] = {0x18, 0x0f, '9', '9', '9', '9', '1', '2', '3',
                                 '1',  '2',  '3', '5', '9', '5', '9', 'Z'};
// SubjectPublicKeyInfo { id-ecPublicKey, prime256v1 } and the BIT STRING header of a 65-octet
// uncompressed point.
constexpr uint8_t kSpkiPrefix[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                   0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                   0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
// basicConstraints critical {} (cA FALSE), keyUsage critical digitalSignature.
constexpr uint8_t kBasicConstraintsAndKeyUsage[] = {
    0x30, 0x0c, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x02, 0x30, 0x00, 0x30,
    0x0e, 0x06, 0x03, 0x55, 0x1d, 0x0f, 0x01, 0x01, 0xff, 0x04, 0x04, 0x03, 0x02, 0x07, 0x80};
constexpr uint8_t kSkiOid[] = {0x06, 0x03, 0x55, 0x1d, 0x0e};
constexpr uint8_t kAkiOid[] = {0x06, 0x03, 0x55, 0x1d, 0x23};

}  // namespace

Result<Bytes> DeviceCertBuilder::Impl::subject_der(const DeviceCertRequest& req,
                                                   const std::string& uid_hex) const {
    const CertTemplate& t = req.subject_template;
    std::string key = req.product;
    for (const std::string* f : {&t.organization, &t.organizational_unit, &t.country}) {
        key += '\0';
        key += *f;
    }
    const SubjectTemplate* found = nullptr;
    {
        std::shared_lock lock(subjects_mu);
        if (auto it = subjects.find(key); it != subjects.end()) found = &it->second;
    }
    if (found == nullptr) {
        WP_ASSIGN_OR_RETURN(X509NamePtr name, subject_name(req, std::string(kUidPlaceholder)));
        WP_ASSIGN_OR_RETURN(Bytes der, name_der(name.get()));
        SubjectTemplate st{std::move(der), {}};
        size_t hits = 0;
        auto at = st.der.begin();
        while ((at = std::search(at, st.der.end(), kUidPlaceholder.begin(),
                                 kUidPlaceholder.end())) != st.der.end()) {
            if (hits < 2) st.uid_at[hits] = static_cast<size_t>(at - st.der.begin());
            ++hits;
            at += static_cast<std::ptrdiff_t>(kUidPlaceholder.size());
        }
        if (hits != 2) {  // a product or O/OU holding the placeholder itself: encode per die
            WP_ASSIGN_OR_RETURN(X509NamePtr own, subject_name(req, uid_hex));
            return name_der(own.get());
        }
        std::unique_lock lock(subjects_mu);
        found = &subjects.emplace(std::move(key), std::move(st)).first->second;  // map: stable
    }
    Bytes out = found->der;
    for (size_t at : found->uid_at) std::copy(uid_hex.begin(), uid_hex.end(), out.begin() + at);
    return out;
}

DeviceCertBuilder::DeviceCertBuilder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeviceCertBuilder::DeviceCertBuilder(DeviceCertBuilder&&) noexcept = default;
DeviceCertBuilder& DeviceCertBuilder::operator=(DeviceCertBuilder&&) noexcept = default;
DeviceCertBuilder::~DeviceCertBuilder() = default;

const Bytes& DeviceCertBuilder::ca_ski() const { return impl_->ca_ski; }

Result<DeviceCertBuilder> DeviceCertBuilder::create(Signer& signer, std::string_view location_oid) {
    auto impl = std::make_unique<Impl>();
    impl->signer = &signer;
    WP_ASSIGN_OR_RETURN(ossl::X509Ptr ca, certificate_from_der(signer.certificate_der()));
    WP_ASSIGN_OR_RETURN(impl->ca_ski, certificate_ski(signer.certificate_der()));
    const int n = i2d_X509_NAME(X509_get_subject_name(ca.get()), nullptr);
    if (n <= 0) return ossl::ossl_error("encoding the CA subject");
    impl->issuer_name_der.resize(static_cast<size_t>(n));
    uint8_t* p = impl->issuer_name_der.data();
    if (i2d_X509_NAME(X509_get_subject_name(ca.get()), &p) != n)
        return ossl::ossl_error("encoding the CA subject");
    WP_RETURN_IF_ERROR(
        check_p256_key(X509_get0_pubkey(ca.get()), "the CA certificate's public key"));
    impl->location_oid.reset(OBJ_txt2obj(std::string(location_oid).c_str(), 1));
    if (!impl->location_oid)
        return ossl::ossl_error("die-location OID '" + std::string(location_oid) + "'");
    const int oid_len = i2d_ASN1_OBJECT(impl->location_oid.get(), nullptr);
    if (oid_len <= 0) return ossl::ossl_error("encoding the die-location OID");
    impl->location_oid_der.resize(static_cast<size_t>(oid_len));
    uint8_t* op = impl->location_oid_der.data();
    if (i2d_ASN1_OBJECT(impl->location_oid.get(), &op) != oid_len)
        return ossl::ossl_error("encoding the die-location OID");
    // Extension { authorityKeyIdentifier, OCTET STRING { SEQUENCE { [0] keyIdentifier } } }
    Bytes aki(std::begin(kAkiOid), std::end(kAkiOid));
    append(aki,
           der_tlv(V_ASN1_OCTET_STRING, der_tlv(V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED,
                                                der_tlv(V_ASN1_CONTEXT_SPECIFIC, impl->ca_ski))));
    impl->aki_extension_der = der_tlv(V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, aki);
    return DeviceCertBuilder(std::move(impl));
}

Status DeviceCertBuilder::check(const DeviceCertRequest& req) const {
    const std::string context = "device certificate for UID " + to_hex(req.uid);
    auto fail = [&](const Error& e) { return e.with_context(context); };
    // Inputs first: nothing is signed for a request we would refuse.
    if (Status st = check_p256_point(req.public_key); !st.ok()) return fail(st.error());
    if (req.product.empty() || req.product.size() > kMaxProductLength)
        return fail(make_error(ErrorCode::kInvalidArgument,
                               "product name must be 1.." + std::to_string(kMaxProductLength) +
                                   " characters, got '" + req.product + "'"));
    const CertTemplate& tmpl = req.subject_template;
    for (auto [what, value] : {std::pair{"organization", &tmpl.organization},
                               std::pair{"organizational unit", &tmpl.organizational_unit}})
        if (Status st = check_field(what, *value, kMaxNameField); !st.ok()) return fail(st.error());
    if (!tmpl.country.empty() &&
        (tmpl.country.size() != 2 || !std::isupper(static_cast<unsigned char>(tmpl.country[0])) ||
         !std::isupper(static_cast<unsigned char>(tmpl.country[1]))))
        return fail(
            make_error(ErrorCode::kInvalidArgument,
                       "country must be two upper-case letters, got '" + tmpl.country + "'"));
    const Bytes serial_der = der_unsigned_integer(req.serial);
    // serial_der = 02 len content; RFC 5280 §4.1.2.2: positive, at most 20 content octets.
    if (serial_der.size() < 3 || serial_der[1] > 20 ||
        std::all_of(serial_der.begin() + 2, serial_der.end(), [](uint8_t b) { return b == 0; }))
        return fail(make_error(ErrorCode::kInvalidArgument,
                               "serial must be a positive integer of at most 20 DER octets, got " +
                                   to_hex(req.serial)));
    return ok_status();
}

// The TBSCertificate from the job's pre-encoded parts: the constant fields are bytes fixed at
// construction (issuer, AKI, OIDs) or per subject template, and a die's own fields (serial,
// notBefore, UID in the subject, public key, SKI, die location) are encoded in place.
// reference_tbs() builds the same bytes through OpenSSL's X509 API; the tests compare the two.
Result<Bytes> DeviceCertBuilder::tbs(const DeviceCertRequest& req) const {
    WP_RETURN_IF_ERROR(check(req));
    const std::string uid_hex = to_hex(req.uid);
    Bytes t;
    t.reserve(640);
    append(t, kVersion3);
    append(t, der_unsigned_integer(req.serial));
    append(t, kEcdsaWithSha256);
    append(t, impl_->issuer_name_der);
    WP_ASSIGN_OR_RETURN(Bytes not_before, der_time(req.not_before));
    append(not_before, kNotAfter);
    append(t, der_tlv(V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, not_before));
    WP_ASSIGN_OR_RETURN(Bytes subject, impl_->subject_der(req, uid_hex));
    append(t, subject);
    append(t, kSpkiPrefix);
    append(t, req.public_key);

    Bytes ext(std::begin(kBasicConstraintsAndKeyUsage), std::end(kBasicConstraintsAndKeyUsage));
    // RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's value.
    Bytes ski(std::begin(kSkiOid), std::end(kSkiOid));
    append(ski, der_tlv(V_ASN1_OCTET_STRING, der_tlv(V_ASN1_OCTET_STRING, sha1(req.public_key))));
    append(ext, der_tlv(V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, ski));
    append(ext, impl_->aki_extension_der);
    if (!req.location.packaged) {  // a packaged part has no die location (docs/certificates.md)
        WP_ASSIGN_OR_RETURN(Bytes loc_der, encode_die_location(req.location));
        Bytes loc = impl_->location_oid_der;
        append(loc, der_tlv(V_ASN1_OCTET_STRING, loc_der));
        append(ext, der_tlv(V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, loc));
    }
    append(t, der_tlv(0xa3, der_tlv(V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, ext)));
    return der_tlv(V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, t);
}

Result<Bytes> DeviceCertBuilder::reference_tbs(const DeviceCertRequest& req) const {
    WP_RETURN_IF_ERROR(check(req));
    const std::string uid_hex = to_hex(req.uid);
    const std::string context = "device certificate for UID " + uid_hex;
    auto fail = [&](const Error& e) { return e.with_context(context); };
    ossl::X509Ptr x(X509_new());
    if (!x || X509_set_version(x.get(), X509_VERSION_3) != 1)
        return fail(ossl::ossl_error("X509_new"));

    ossl::Bn bn(BN_bin2bn(req.serial.data(), static_cast<int>(req.serial.size()), nullptr));
    Asn1IntegerPtr serial(bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr);
    if (!serial || X509_set_serialNumber(x.get(), serial.get()) != 1)
        return fail(ossl::ossl_error("serial"));

    const uint8_t* np = impl_->issuer_name_der.data();
    X509NamePtr issuer(
        d2i_X509_NAME(nullptr, &np, static_cast<long>(impl_->issuer_name_der.size())));
    if (!issuer || X509_set_issuer_name(x.get(), issuer.get()) != 1)
        return fail(ossl::ossl_error("issuer"));

    WP_ASSIGN_OR_RETURN(X509NamePtr subject, subject_name(req, uid_hex));
    if (X509_set_subject_name(x.get(), subject.get()) != 1)
        return fail(ossl::ossl_error("subject"));

    WP_ASSIGN_OR_RETURN(Asn1TimePtr not_before, asn1_time(req.not_before));
    Asn1TimePtr not_after(ASN1_TIME_new());
    // 99991231235959Z: no well-defined expiration (RFC 5280 §4.1.2.5, IEEE 802.1AR).
    if (!not_after || ASN1_TIME_set_string_X509(not_after.get(), "99991231235959Z") != 1 ||
        X509_set1_notBefore(x.get(), not_before.get()) != 1 ||
        X509_set1_notAfter(x.get(), not_after.get()) != 1)
        return fail(ossl::ossl_error("validity"));

    // SubjectPublicKeyInfo { id-ecPublicKey, prime256v1 } with the (already checked) point.
    // Set directly rather than through X509_set_pubkey(EVP_PKEY): OpenSSL 3.0 runs its encoder
    // machinery for that, which costs more than the signature itself.
    ossl::Buffer penc(
        static_cast<unsigned char*>(OPENSSL_memdup(req.public_key.data(), req.public_key.size())));
    if (!penc ||
        X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x.get()), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                               V_ASN1_OBJECT, OBJ_nid2obj(NID_X9_62_prime256v1), penc.get(),
                               static_cast<int>(req.public_key.size())) != 1)
        return fail(ossl::ossl_error("public key"));
    (void)penc.release();  // the X509_PUBKEY owns it now

    // Extensions, in the order a reader expects them.
    BasicConstraintsPtr bc(BASIC_CONSTRAINTS_new());  // cA FALSE (DEFAULT, so encoded as {})
    if (!bc) return fail(ossl::ossl_error("basicConstraints"));
    WP_RETURN_IF_ERROR(add_ext(x.get(), NID_basic_constraints, bc.get(), true, "basicConstraints"));

    Asn1BitStringPtr ku(ASN1_BIT_STRING_new());
    if (!ku || ASN1_BIT_STRING_set_bit(ku.get(), 0, 1) != 1)  // digitalSignature
        return fail(ossl::ossl_error("keyUsage"));
    WP_RETURN_IF_ERROR(add_ext(x.get(), NID_key_usage, ku.get(), true, "keyUsage"));

    // RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's value.
    const auto ski_bytes = sha1(req.public_key);
    Asn1OctetPtr ski(ASN1_OCTET_STRING_new());
    if (!ski ||
        ASN1_OCTET_STRING_set(ski.get(), ski_bytes.data(), static_cast<int>(ski_bytes.size())) != 1)
        return fail(ossl::ossl_error("subjectKeyIdentifier"));
    WP_RETURN_IF_ERROR(
        add_ext(x.get(), NID_subject_key_identifier, ski.get(), false, "subjectKeyIdentifier"));

    AuthorityKeyIdPtr akid(AUTHORITY_KEYID_new());
    if (!akid) return fail(ossl::ossl_error("authorityKeyIdentifier"));
    akid->keyid = ASN1_OCTET_STRING_new();
    if (akid->keyid == nullptr ||
        ASN1_OCTET_STRING_set(akid->keyid, impl_->ca_ski.data(),
                              static_cast<int>(impl_->ca_ski.size())) != 1)
        return fail(ossl::ossl_error("authorityKeyIdentifier"));
    WP_RETURN_IF_ERROR(add_ext(x.get(), NID_authority_key_identifier, akid.get(), false,
                               "authorityKeyIdentifier"));

    if (!req.location.packaged) {
        WP_ASSIGN_OR_RETURN(Bytes loc_der, encode_die_location(req.location));
        Asn1OctetPtr loc(ASN1_OCTET_STRING_new());
        if (!loc ||
            ASN1_OCTET_STRING_set(loc.get(), loc_der.data(), static_cast<int>(loc_der.size())) != 1)
            return fail(ossl::ossl_error("die-location extension"));
        X509ExtPtr loc_ext(
            X509_EXTENSION_create_by_OBJ(nullptr, impl_->location_oid.get(), 0, loc.get()));
        if (!loc_ext || X509_add_ext(x.get(), loc_ext.get(), -1) != 1)
            return fail(ossl::ossl_error("die-location extension"));
    }

    // The TBS signature field must equal the outer signatureAlgorithm. OpenSSL 3.0 has no
    // setter for an X509 being signed outside X509_sign(), and the field is embedded in the
    // X509, so set it in place; i2d_re_X509_tbs then re-encodes the TBS with it.
    auto* tbs_alg = const_cast<X509_ALGOR*>(X509_get0_tbs_sigalg(x.get()));
    if (X509_ALGOR_set0(tbs_alg, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF, nullptr) != 1)
        return fail(ossl::ossl_error("TBS signature algorithm"));
    const int tbs_len = i2d_re_X509_tbs(x.get(), nullptr);
    if (tbs_len <= 0) return fail(ossl::ossl_error("encoding TBSCertificate"));
    Bytes tbs(static_cast<size_t>(tbs_len));
    uint8_t* tp = tbs.data();
    if (i2d_re_X509_tbs(x.get(), &tp) != tbs_len)
        return fail(ossl::ossl_error("encoding TBSCertificate"));

    return tbs;
}

Result<Bytes> DeviceCertBuilder::build(const DeviceCertRequest& req) const {
    const std::string context = "device certificate for UID " + to_hex(req.uid);
    auto fail = [&](const Error& e) { return e.with_context(context); };
    WP_ASSIGN_OR_RETURN(Bytes tbs, this->tbs(req));
    auto sig = impl_->signer->sign_sha256_digest(sha256(tbs));
    if (!sig.ok())
        return fail(sig.error().with_context("signing with " + impl_->signer->describe()));

    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
    Bytes bits{0x00};  // no unused bits
    bits.insert(bits.end(), sig->begin(), sig->end());
    Bytes body = std::move(tbs);
    body.insert(body.end(), std::begin(kEcdsaWithSha256), std::end(kEcdsaWithSha256));
    const Bytes bit_string = der_tlv(V_ASN1_BIT_STRING, bits);
    body.insert(body.end(), bit_string.begin(), bit_string.end());
    // No parse-back here: d2i_X509 costs OpenSSL 3.0 about six signatures' worth of time (its
    // provider decoder runs on the public key), and the assembly above is fixed code that the
    // tests check with OpenSSL's parser and verifier. A signature from a device that can fail
    // (a PKCS#11 token) is checked by its signer before it gets here.
    return der_tlv(V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, body);
}

Result<Bytes> build_device_certificate(const DeviceCertRequest& request, Signer& signer) {
    WP_ASSIGN_OR_RETURN(DeviceCertBuilder builder, DeviceCertBuilder::create(signer));
    return builder.build(request);
}

}  // namespace waferprov::host
