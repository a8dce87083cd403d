// Device certificates signed with the PEM signer: the profile field by field, chain
// verification (X509_STORE for many, the openssl CLI for a couple), serials, refusals.
#include <algorithm>
#include <chrono>

#include "ca_test_util.hpp"

namespace waferprov::host::test {
namespace {

class PemChain : public ::testing::Test {
protected:
    void SetUp() override {
        ChainOptions o;
        o.product = "WP-TEST";
        files_ = must(init_pem_chain(dir_.path() / "chain", o), "init_pem_chain");
        signer_ = must(make_signer(files_.signer), "make_signer");
        ca_ski_ = must(certificate_ski(signer_->certificate_der()), "ca ski");
    }
    TempDir dir_;
    ChainFiles files_;
    std::unique_ptr<Signer> signer_;
    Bytes ca_ski_;
};

TEST_F(PemChain, DeviceCertificateHasTheDocumentedProfile) {
    const auto req = sample_request(ca_ski_, 1);
    const Bytes der = must(build_device_certificate(req, *signer_), "build");
    expect_profile(der, req, signer_->certificate_der());
}

// A part provisioned at final test (docs/final-test.md) has no wafer position: its certificate
// leaves the die-location extension out, and the template TBS still equals OpenSSL's.
TEST_F(PemChain, APackagedPartsCertificateHasNoDieLocation) {
    auto builder = must(DeviceCertBuilder::create(*signer_), "builder");
    for (uint32_t n = 0; n < 8; ++n) {
        DeviceCertRequest req = sample_request(ca_ski_, n);
        req.location = DieLocation{std::string(1 + n * 20, 'P'), 0, 0, 0, "", true};
        const Bytes fast = must(builder.tbs(req), "tbs");
        ASSERT_EQ(to_hex(fast), to_hex(must(builder.reference_tbs(req), "reference tbs")))
            << "request " << n;
        expect_profile(must(builder.build(req), "build"), req, signer_->certificate_der());
    }
}

TEST_F(PemChain, TemplateFieldsAreOptional) {
    auto req = sample_request(ca_ski_, 2);
    req.subject_template = {};
    const Bytes der = must(build_device_certificate(req, *signer_), "build");
    expect_profile(der, req, signer_->certificate_der());
}

// The certificate built from the job's pre-encoded parts is byte for byte the one OpenSSL's X509
// API builds field by field, over the inputs that change a TBS's shape: subject templates (with
// and without O/OU/C, short and long product names), times before 2050 (UTCTime) and after
// (GeneralizedTime), serials of every length and leading-bit case, locations whose lot,
// substrate and coordinates need 1..4 DER octets, negative coordinates, another location OID.
TEST_F(PemChain, TemplateTbsIsByteIdenticalToOpensslsTbs) {
    auto builder = must(DeviceCertBuilder::create(*signer_), "builder");
    auto other_oid = must(DeviceCertBuilder::create(*signer_, "1.3.6.1.4.1.99999.7.300"), "oid");
    const std::vector<CertTemplate> templates = {
        {},
        {"Example Semiconductor", "Provisioning", "DE"},
        {"O", "", ""},
        {"", "OU only", "US"},
        {std::string(64, 'o'), std::string(64, 'u'), "JP"}};
    const std::vector<std::string> products = {"P", "WP-TEST", std::string(31, 'p')};
    const std::vector<int64_t> times = {
        0, 1767225600, 2524607999 /* 2049-12-31T23:59:59Z */, 2524608000 /* 2050 */,
        7258118400 /* 2200: system_clock counts ns in 64 bits, up to 2262 */};
    const std::vector<Bytes> serials = {Bytes{0x01}, Bytes{0x80}, Bytes{0x00, 0x7f},
                                        Bytes(20, 0x7f), Bytes(19, 0xff)};
    uint32_t n = 0;
    for (const auto& t : templates)
        for (const auto& product : products)
            for (int64_t when : times) {
                DeviceCertRequest req = sample_request(ca_ski_, n);
                req.subject_template = t;
                req.product = product;
                req.not_before = std::chrono::system_clock::from_time_t(when);
                req.serial = serials[n % serials.size()];
                const int big = (n % 2 ? -1 : 1) * (1 << (8 * (n % 4)));
                req.location.x = big;
                req.location.y = -big / 3;
                req.location.wafer = static_cast<int>(n % 26);
                req.location.lot = std::string(1 + n % 200, 'L');
                req.location.substrate = n % 3 ? std::string(n % 130, 'S') : "";
                const auto& b = n % 2 ? builder : other_oid;
                const Bytes fast = must(b.tbs(req), "tbs");
                const Bytes reference = must(b.reference_tbs(req), "reference tbs");
                ASSERT_EQ(to_hex(fast), to_hex(reference)) << "request " << n;
                ++n;
            }
    EXPECT_EQ(n, templates.size() * products.size() * times.size());
    // And the signed certificate carries exactly that TBS.
    DeviceCertRequest req = sample_request(ca_ski_, 7);
    const Bytes der = must(builder.build(req), "build");
    const Bytes tbs = must(builder.reference_tbs(req), "reference tbs");
    ASSERT_GT(der.size(), tbs.size() + 4);
    EXPECT_TRUE(std::search(der.begin(), der.end(), tbs.begin(), tbs.end()) == der.begin() + 4)
        << "the certificate's first element is its TBS";
    expect_profile(der, req, signer_->certificate_der());
}

TEST_F(PemChain, X509StoreVerifiesManyCertificates) {
    auto builder = must(DeviceCertBuilder::create(*signer_), "builder");
    std::vector<Bytes> certs;
    for (uint32_t i = 0; i < 200; ++i)
        certs.push_back(must(builder.build(sample_request(ca_ski_, i)), "build"));
    expect_store_verifies(files_.root_cert, files_.ca_cert, certs);
}

TEST_F(PemChain, OpensslCliVerifiesDeviceCertificates) {
    for (uint32_t i = 0; i < 2; ++i) {
        const auto device = dir_.path() / ("device" + std::to_string(i) + ".pem");
        write_pem(device, must(build_device_certificate(sample_request(ca_ski_, 100 + i), *signer_),
                               "build"));
        std::string out;
        EXPECT_EQ(openssl_verify(files_.root_cert, files_.ca_cert, device, out), 0) << out;
        EXPECT_NE(out.find(": OK"), std::string::npos) << out;
    }
}

// The extension's OID comes from the job ([certificate] location_oid): a certificate built
// under the manufacturer's own arc carries the location (substrate id included) there and
// nothing under the documentation arc; the openssl CLI verifies it and prints the extension.
TEST_F(PemChain, TheDieLocationOidIsTheJobs) {
    const std::string own = "1.3.6.1.4.1.99999.7.1";
    auto builder = must(DeviceCertBuilder::create(*signer_, own), "builder");
    const DeviceCertRequest req = sample_request(ca_ski_, 3);
    const Bytes der = must(builder.build(req), "build");
    expect_profile(der, req, signer_->certificate_der(), own);
    const unsigned char* p = der.data();
    ossl::X509Ptr x(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    ASSERT_TRUE(x);
    ca_detail::Asn1ObjectPtr dev(OBJ_txt2obj(std::string(kDieLocationOid).c_str(), 1));
    EXPECT_LT(X509_get_ext_by_OBJ(x.get(), dev.get(), -1), 0);
    EXPECT_FALSE(DeviceCertBuilder::create(*signer_, "not.an.oid").ok());

    const auto device = dir_.path() / "own-oid.pem";
    write_pem(device, der);
    std::string out;
    EXPECT_EQ(openssl_verify(files_.root_cert, files_.ca_cert, device, out), 0) << out;
    const auto text_log = dir_.path() / "own-oid.txt";
    ASSERT_EQ(std::system(("openssl x509 -noout -text -in '" + device.string() + "' > '" +
                           text_log.string() + "' 2>&1")
                              .c_str()),
              0);
    const std::string text = slurp(text_log);
    EXPECT_NE(text.find("1.3.6.1.4.1.99999.7.1:"), std::string::npos) << text;
    EXPECT_EQ(text.find("1.3.6.1.4.1.32473"), std::string::npos) << text;
    EXPECT_NE(text.find(req.location.substrate), std::string::npos) << text;  // "SUB-9003"
}

TEST_F(PemChain, WrongRootFailsVerification) {
    TempDir other;
    auto other_chain = must(init_pem_chain(other.path(), {}), "other chain");
    const auto device = dir_.path() / "device.pem";
    write_pem(device,
              must(build_device_certificate(sample_request(ca_ski_, 5), *signer_), "build"));
    std::string out;
    EXPECT_NE(openssl_verify(other_chain.root_cert, files_.ca_cert, device, out), 0) << out;
}

TEST_F(PemChain, RefusesOffCurvePublicKey) {
    auto req = sample_request(ca_ski_, 3);
    req.public_key[64] ^= 0x01;  // y + 1 (or - 1): no longer on the curve
    auto r = build_device_certificate(req, *signer_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find("not a point on P-256"), std::string::npos)
        << r.error().message;

    req.public_key[0] = 0x02;  // not the uncompressed form
    r = build_device_certificate(req, *signer_);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("uncompressed"), std::string::npos) << r.error().message;
}

TEST_F(PemChain, RefusesBadSerialsAndNames) {
    auto req = sample_request(ca_ski_, 4);
    req.serial = Bytes(4, 0);
    EXPECT_FALSE(build_device_certificate(req, *signer_).ok());
    req.serial = Bytes(20, 0xff);  // 21 DER octets with the sign octet
    EXPECT_FALSE(build_device_certificate(req, *signer_).ok());
    req.serial = Bytes(20, 0x7f);  // exactly 20: fine
    EXPECT_TRUE(build_device_certificate(req, *signer_).ok());
    req.serial = {0x80};  // top bit set: encoded 00 80, positive
    const Bytes der = must(build_device_certificate(req, *signer_), "serial 0x80");
    expect_profile(der, req, signer_->certificate_der());

    req.product = std::string(32, 'P');
    EXPECT_FALSE(build_device_certificate(req, *signer_).ok());
    req.product = "";
    EXPECT_FALSE(build_device_certificate(req, *signer_).ok());
    req.product = "WP";
    req.subject_template.country = "Germany";
    EXPECT_FALSE(build_device_certificate(req, *signer_).ok());
}

TEST_F(PemChain, ParallelBuildsFromFourThreads) {
    auto builder = must(DeviceCertBuilder::create(*signer_), "builder");
    std::vector<DeviceCertRequest> reqs;
    for (uint32_t i = 0; i < 200; ++i) reqs.push_back(sample_request(ca_ski_, i));
    std::vector<Bytes> certs(reqs.size());
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (size_t t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (size_t i = t; i < reqs.size(); i += 4) {
                auto r = builder.build(reqs[i]);
                if (r.ok())
                    certs[i] = std::move(r).value();
                else
                    ++failures;
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);
    expect_store_verifies(files_.root_cert, files_.ca_cert, certs);
}

TEST(DeviceSerial, IsPositiveSixteenOctetsDeterministicAndKeyed) {
    const Bytes ski(20, 0x11);
    const auto pk = fresh_public_key();
    const Bytes s = device_serial(ski, pk);
    ASSERT_EQ(s.size(), 16u);
    EXPECT_EQ(s[0] & 0x80, 0);
    EXPECT_NE(s[0], 0);
    EXPECT_EQ(s, device_serial(ski, pk));
    EXPECT_NE(s, device_serial(Bytes(20, 0x12), pk));
    EXPECT_NE(s, device_serial(ski, fresh_public_key()));
    // The exact definition: SHA-256("WPID-1 serial" || ski || pk)[0..16), octet 0 masked.
    const std::string label = "WPID-1 serial";
    Bytes in;
    in.reserve(label.size() + ski.size() + pk.size());
    in.insert(in.end(), label.begin(), label.end());
    in.insert(in.end(), ski.begin(), ski.end());
    in.insert(in.end(), pk.begin(), pk.end());
    const auto h = ca_detail::sha256(in);
    Bytes want(h.begin(), h.begin() + 16);
    want[0] = static_cast<uint8_t>(want[0] & 0x7f);
    if (want[0] == 0) want[0] = 1;
    EXPECT_EQ(s, want);
}

TEST(DieLocationExtension, RoundTripsAndIsStrict) {
    for (const DieLocation& loc :
         {DieLocation{"A1", 1, 0, 0, "A1-01"},
          DieLocation{"LOT-Ü", 25, -32768, 32767, "PH8Q66-02B6"}, DieLocation{"", 0, -1, 128, ""},
          DieLocation{"X", 7, 2147483647, -2147483647 - 1, "E17340W05PA2"}}) {
        const Bytes der = must(encode_die_location(loc), "encode");
        EXPECT_EQ(must(decode_die_location(der), "decode"), loc);
    }
    // SEQUENCE { UTF8String "A", INTEGER 1, INTEGER 2 }: a field missing.
    const Bytes short_seq = {0x30, 0x09, 0x0c, 0x01, 'A', 0x02, 0x01, 0x01, 0x02, 0x01, 0x02};
    EXPECT_FALSE(decode_die_location(short_seq).ok());
    // The four-field form of before substrate ids: refused, not read with a blank substrate.
    const Bytes four = {0x30, 0x0d, 0x0c, 0x02, 'L',  '1',  0x02, 0x01,
                        0x03, 0x02, 0x01, 0xfc, 0x02, 0x01, 0x0c};
    EXPECT_FALSE(decode_die_location(four).ok());
    // Exact encoding of a small value, as documented (checked with `openssl asn1parse`:
    // SEQUENCE { UTF8STRING :L1, INTEGER :03, INTEGER :-04, INTEGER :0C, UTF8STRING :W1 }).
    EXPECT_EQ(to_hex(must(encode_die_location({"L1", 3, -4, 12, "W1"}), "encode")),
              "30110c024c310201030201fc02010c0c025731");
}

}  // namespace
}  // namespace waferprov::host::test
