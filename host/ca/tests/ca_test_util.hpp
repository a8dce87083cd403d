// Shared by the CA tests: temporary directories, sample requests, the profile checker and
// chain verification (in-process X509_STORE and the openssl CLI).
#pragma once

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "ca_internal.hpp"
#include "waferprov/host/ca_init.hpp"
#include "waferprov/host/ca_signers.hpp"
#include "waferprov/host/device_cert.hpp"
#include "waferprov/testing/temp_dir.hpp"

namespace waferprov::host::test {

using StorePtr = ossl::X509Store;
using StoreCtxPtr = ossl::X509StoreCtx;
using ossl::X509Stack;
using BcPtr = ca_detail::BasicConstraintsPtr;
using AkidPtr = ca_detail::AuthorityKeyIdPtr;
using OctetPtr = ca_detail::Asn1OctetPtr;

using waferprov::testing::TempDir;

template <class T>
T must(Result<T> r, const char* what = "") {
    if (!r.ok()) {
        ADD_FAILURE() << what << ": " << r.error().describe();
        throw std::runtime_error(r.error().describe());
    }
    return std::move(r).value();
}

inline std::array<uint8_t, 65> fresh_public_key() {
    auto key = must(ca_detail::generate_p256_key(), "keygen");
    auto point = must(ca_detail::p256_point_of(key.get()), "point");
    std::array<uint8_t, 65> out{};
    std::copy(point.begin(), point.end(), out.begin());
    return out;
}

inline DeviceCertRequest sample_request(const Bytes& ca_ski, uint32_t n) {
    DeviceCertRequest r;
    for (size_t i = 0; i < r.uid.size(); ++i) r.uid[i] = static_cast<uint8_t>(0xa0 + i + n * 7);
    r.location = DieLocation{"LOT" + std::to_string(1234 + n), static_cast<int>(n % 25) + 1,
                             static_cast<int>(n % 40) - 20, -static_cast<int>(n % 17),
                             "SUB-" + std::to_string(9000 + n)};
    r.product = "WP-TEST";
    r.public_key = fresh_public_key();
    r.serial = device_serial(ca_ski, r.public_key);
    // Whole seconds: certificates carry no fractions.
    r.not_before = std::chrono::system_clock::from_time_t(1767225600 + n);  // 2026-01-01
    r.subject_template = CertTemplate{"Example Semiconductor", "Provisioning", "DE"};
    return r;
}

inline std::string name_entry(X509_NAME* name, int nid) {
    const int i = X509_NAME_get_index_by_NID(name, nid, -1);
    if (i < 0) return "<absent>";
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<size_t>(ASN1_STRING_length(s)));
}

inline Bytes octets(const ASN1_OCTET_STRING* s) {
    const uint8_t* p = ASN1_STRING_get0_data(s);
    return Bytes(p, p + ASN1_STRING_length(s));
}

// Every field of the device certificate profile, read back through OpenSSL's parser.
inline void expect_profile(const Bytes& der, const DeviceCertRequest& req, const Bytes& ca_der,
                           std::string_view location_oid = kDieLocationOid) {
    auto cert = must(ca_detail::certificate_from_der(der), "parse device cert");
    auto ca = must(ca_detail::certificate_from_der(ca_der), "parse CA cert");
    X509* x = cert.get();
    EXPECT_EQ(X509_get_version(x), X509_VERSION_3);

    // Signature algorithm, outer and in the TBS, parameters absent.
    EXPECT_EQ(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    const X509_ALGOR* outer = nullptr;
    X509_get0_signature(nullptr, &outer, x);
    for (const X509_ALGOR* alg : {outer, X509_get0_tbs_sigalg(x)}) {
        const ASN1_OBJECT* obj = nullptr;
        int ptype = 0;
        X509_ALGOR_get0(&obj, &ptype, nullptr, alg);
        EXPECT_EQ(OBJ_obj2nid(obj), NID_ecdsa_with_SHA256);
        EXPECT_EQ(ptype, V_ASN1_UNDEF);
    }

    // Serial: positive, at most 20 octets, the requested value.
    const ASN1_INTEGER* serial = X509_get0_serialNumber(x);
    EXPECT_EQ(ASN1_STRING_type(serial), V_ASN1_INTEGER);
    EXPECT_LE(ASN1_STRING_length(serial), 20);
    EXPECT_EQ(to_hex(octets(serial)), to_hex(req.serial));

    // Validity.
    const ASN1_TIME* na = X509_get0_notAfter(x);
    EXPECT_EQ(ASN1_STRING_type(na), V_ASN1_GENERALIZEDTIME);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(na)),
                          static_cast<size_t>(ASN1_STRING_length(na))),
              "99991231235959Z");
    EXPECT_EQ(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x),
                                   std::chrono::system_clock::to_time_t(req.not_before)),
              0);

    // Names.
    EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca.get())), 0);
    const std::string uid_hex = to_hex(req.uid);
    X509_NAME* subject = X509_get_subject_name(x);
    EXPECT_EQ(name_entry(subject, NID_serialNumber), uid_hex);
    EXPECT_EQ(name_entry(subject, NID_commonName), req.product + " " + uid_hex);
    const CertTemplate& t = req.subject_template;
    EXPECT_EQ(name_entry(subject, NID_organizationName),
              t.organization.empty() ? "<absent>" : t.organization);
    EXPECT_EQ(name_entry(subject, NID_organizationalUnitName),
              t.organizational_unit.empty() ? "<absent>" : t.organizational_unit);
    EXPECT_EQ(name_entry(subject, NID_countryName), t.country.empty() ? "<absent>" : t.country);

    // Public key: the device's P-256 point.
    auto point = must(ca_detail::p256_point_of(X509_get0_pubkey(x)), "device point");
    EXPECT_EQ(to_hex(point), to_hex(req.public_key));

    // Extensions: exactly five; four for a packaged part, which has no die location.
    EXPECT_EQ(X509_get_ext_count(x), req.location.packaged ? 4 : 5);
    auto critical = [&](int nid) {
        const int i = X509_get_ext_by_NID(x, nid, -1);
        EXPECT_GE(i, 0) << OBJ_nid2sn(nid);
        return i >= 0 && X509_EXTENSION_get_critical(X509_get_ext(x, i)) == 1;
    };
    EXPECT_TRUE(critical(NID_basic_constraints));
    BcPtr bc(static_cast<BASIC_CONSTRAINTS*>(
        X509_get_ext_d2i(x, NID_basic_constraints, nullptr, nullptr)));
    ASSERT_TRUE(bc);
    EXPECT_EQ(bc->ca, 0);
    EXPECT_EQ(bc->pathlen, nullptr);
    EXPECT_TRUE(critical(NID_key_usage));
    EXPECT_EQ(X509_get_key_usage(x), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
    EXPECT_FALSE(critical(NID_subject_key_identifier));
    EXPECT_FALSE(critical(NID_authority_key_identifier));

    const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(x);
    ASSERT_NE(ski, nullptr);
    EXPECT_EQ(ASN1_STRING_length(ski), 20);
    const auto want_ski = ca_detail::sha1(req.public_key);
    EXPECT_EQ(to_hex(octets(ski)), to_hex(want_ski));
    const ASN1_OCTET_STRING* akid = X509_get0_authority_key_id(x);
    ASSERT_NE(akid, nullptr);
    EXPECT_EQ(ASN1_STRING_length(akid), 20);
    EXPECT_EQ(to_hex(octets(akid)), to_hex(octets(X509_get0_subject_key_id(ca.get()))));

    ca_detail::Asn1ObjectPtr oid(OBJ_txt2obj(std::string(location_oid).c_str(), 1));
    const int li = X509_get_ext_by_OBJ(x, oid.get(), -1);
    if (req.location.packaged) {
        EXPECT_EQ(li, -1) << "a die-location extension on a packaged part's certificate";
        EXPECT_EQ(X509_verify(x, X509_get0_pubkey(ca.get())), 1);
        return;
    }
    ASSERT_GE(li, 0);
    X509_EXTENSION* loc = X509_get_ext(x, li);
    EXPECT_EQ(X509_EXTENSION_get_critical(loc), 0);
    auto decoded = must(decode_die_location(octets(X509_EXTENSION_get_data(loc))), "location");
    EXPECT_EQ(decoded, req.location);

    // And the signature verifies under the CA key.
    EXPECT_EQ(X509_verify(x, X509_get0_pubkey(ca.get())), 1);
}

// Verifies every certificate against root -> ca with an in-process X509_STORE.
inline void expect_store_verifies(const std::filesystem::path& root_pem,
                                  const std::filesystem::path& ca_pem,
                                  const std::vector<Bytes>& certs) {
    auto root = must(ca_detail::read_pem_certificate(root_pem), "root");
    auto ca = must(ca_detail::read_pem_certificate(ca_pem), "ca");
    StorePtr store(X509_STORE_new());
    ASSERT_EQ(X509_STORE_add_cert(store.get(), root.get()), 1);
    X509Stack untrusted(sk_X509_new_null());
    ASSERT_TRUE(X509_up_ref(ca.get()) == 1 && sk_X509_push(untrusted.get(), ca.get()) > 0);
    for (const auto& der : certs) {
        auto cert = must(ca_detail::certificate_from_der(der), "device");
        StoreCtxPtr ctx(X509_STORE_CTX_new());
        ASSERT_EQ(X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), untrusted.get()), 1);
        // X509_V_FLAG_X509_STRICT: the stricter RFC 5280 checks (e.g. AKI/SKI presence).
        X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_X509_STRICT);
        EXPECT_EQ(X509_verify_cert(ctx.get()), 1)
            << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
    }
}

inline void write_pem(const std::filesystem::path& path, const Bytes& der) {
    auto cert = must(ca_detail::certificate_from_der(der), "pem");
    std::ofstream out(path);
    out << must(ca_detail::certificate_to_pem(cert.get()), "pem");
}

inline std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// `openssl verify -x509_strict -CAfile root.pem -untrusted ca.pem device.pem`; returns exit status.
inline int openssl_verify(const std::filesystem::path& root_pem,
                          const std::filesystem::path& ca_pem,
                          const std::filesystem::path& device_pem, std::string& output) {
    const auto log = device_pem.string() + ".verify.log";
    const std::string cmd = "openssl verify -x509_strict -CAfile '" + root_pem.string() +
                            "' -untrusted '" + ca_pem.string() + "' '" + device_pem.string() +
                            "' > '" + log + "' 2>&1";
    const int rc = std::system(cmd.c_str());
    output = slurp(log);
    return rc;
}

}  // namespace waferprov::host::test
