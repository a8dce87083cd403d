// The die's checks: a payload made by the reference model (WPID-1 through OpenSSL's EVP APIs) and
// the project's CA passes; each kind of damage is caught and named.
#include <cstring>
#include <fstream>

#include <gtest/gtest.h>

#include "die_check.hpp"
#include "waferprov/host/ca_init.hpp"
#include "waferprov/host/ca_signers.hpp"
#include "waferprov/host/device_cert.hpp"
#include "waferprov/reference.hpp"
#include "waferprov/test_vectors.hpp"
#include "waferprov/testing/temp_dir.hpp"

using namespace waferprov;
using namespace waferprov::tester;
namespace ref = waferprov::reference;
namespace fs = std::filesystem;

namespace {

struct Fixture {
    waferprov::testing::TempDir dir{"tester_check"};
    host::ChainFiles chain;
    std::unique_ptr<host::Signer> signer;
    std::optional<host::DeviceCertBuilder> builder;
    SecretArray<32> kik;
    ref::Drbg drbg{ref::random_bytes(48), {}};

    Fixture() {
        auto files = host::init_pem_chain(dir.path() / "ca", host::ChainOptions{});
        EXPECT_TRUE(files.ok()) << files.error().message;
        chain = *files;
        signer = std::move(host::make_signer(chain.signer).value());
        builder.emplace(std::move(host::DeviceCertBuilder::create(*signer).value()));
        Bytes k = ref::random_bytes(32);
        std::memcpy(kik.data(), k.data(), 32);
    }

    // A payload as the host should send it, for `uid` at (x, y).
    std::unique_ptr<wp_ate_site_identity> payload(
        const wpid1::Uid& uid, int x = 3, int y = -2,
        std::chrono::system_clock::time_point not_before = std::chrono::system_clock::now() -
                                                           std::chrono::minutes(1)) {
        auto ids = ref::identities(kik.span(), drbg, {uid});
        const auto& rec = ids[0].record;
        host::DeviceCertRequest cr;
        cr.uid = uid;
        cr.location = host::DieLocation{"LOT1", 1, x, y, "LOT1-01"};
        cr.product = "WPTEST";
        cr.public_key[0] = 4;
        std::copy(rec.x.begin(), rec.x.end(), cr.public_key.begin() + 1);
        std::copy(rec.y.begin(), rec.y.end(), cr.public_key.begin() + 33);
        cr.serial = host::device_serial(builder->ca_ski(), cr.public_key);
        cr.not_before = not_before;
        auto der = builder->build(cr);
        EXPECT_TRUE(der.ok()) << der.error().message;
        auto id = std::make_unique<wp_ate_site_identity>();
        std::memcpy(id->uid, uid.data(), 16);
        id->key_usage = id->key_algorithm = id->key_version = 1;
        std::memcpy(id->wrapped_key, rec.wrapped.data(), 40);
        id->certificate_length = der->size();
        std::memcpy(id->certificate, der->data(), der->size());
        auto cid = chain_id_of(chain.ca_cert, chain.root_cert);
        EXPECT_TRUE(cid.ok());
        std::memcpy(id->chain_id, cid->data(), 32);
        return id;
    }

    DieChecker checker(int clock_skew_s = 5) {
        return std::move(
            DieChecker::create(kik, chain.ca_cert, chain.root_cert, clock_skew_s).value());
    }
};

wpid1::Uid uid_of(uint8_t seed) {
    wpid1::Uid u{};
    for (size_t i = 0; i < u.size(); ++i) u[i] = static_cast<uint8_t>(seed + 17 * i);
    return u;
}

#define EXPECT_CHECK_FAILS_WITH(text, needle) \
    EXPECT_NE((text).find(needle), std::string::npos) << "check said: '" << (text) << "'"

}  // namespace

TEST(DieCheck, KekIsTheWpid1KdfOfTheReferenceModel) {
    SecretArray<32> kik;
    Bytes k = ref::random_bytes(32);
    std::memcpy(kik.data(), k.data(), 32);
    const wpid1::Uid uid = uid_of(5);
    auto kek = wpid1_kek(kik, uid);
    ASSERT_TRUE(kek.ok());
    EXPECT_EQ(Bytes(kek->bytes.begin(), kek->bytes.end()), ref::kek(k, uid));
}

TEST(DieCheck, AGoodPayloadPasses) {
    Fixture f;
    auto c = f.checker();
    const wpid1::Uid uid = uid_of(1);
    auto id = f.payload(uid);
    EXPECT_EQ(c.check(*id, std::nullopt), "");
    EXPECT_EQ(c.check(*id, uid), "");  // the die sent its own UID and got it back
}

TEST(DieCheck, EveryKindOfDamageIsCaughtAndNamed) {
    Fixture f;
    auto c = f.checker();
    const wpid1::Uid uid = uid_of(2);
    const auto good = f.payload(uid);

    auto id = std::make_unique<wp_ate_site_identity>(*good);
    id->wrapped_key[7] ^= 1;
    EXPECT_CHECK_FAILS_WITH(c.check(*id, std::nullopt), "integrity check failed");

    id = std::make_unique<wp_ate_site_identity>(*good);
    id->key_version = 2;
    EXPECT_CHECK_FAILS_WITH(c.check(*id, std::nullopt), "expected 1/1/1");

    id = std::make_unique<wp_ate_site_identity>(*good);
    id->chain_id[0] ^= 0x80;
    EXPECT_CHECK_FAILS_WITH(c.check(*id, std::nullopt), "chain_id");

    // Another UID: its KEK does not unwrap the key, and the certificate names the first UID.
    id = std::make_unique<wp_ate_site_identity>(*good);
    id->uid[15] ^= 1;
    auto text = c.check(*id, std::nullopt);
    EXPECT_CHECK_FAILS_WITH(text, "integrity check failed");
    EXPECT_CHECK_FAILS_WITH(text, "serialNumber");

    // The host answered another UID than the die sent.
    EXPECT_CHECK_FAILS_WITH(c.check(*good, uid_of(3)), "for a die that sent");

    // A byte of the certificate's signature changed: it no longer chains to the root.
    id = std::make_unique<wp_ate_site_identity>(*good);
    id->certificate[id->certificate_length - 3] ^= 1;
    EXPECT_CHECK_FAILS_WITH(c.check(*id, std::nullopt), "does not chain to the root");

    // Trailing bytes after the certificate; a truncated certificate.
    id = std::make_unique<wp_ate_site_identity>(*good);
    id->certificate[id->certificate_length++] = 0;
    EXPECT_CHECK_FAILS_WITH(c.check(*id, std::nullopt), "bytes after the DER certificate");
    id = std::make_unique<wp_ate_site_identity>(*good);
    id->certificate_length -= 10;
    EXPECT_CHECK_FAILS_WITH(c.check(*id, std::nullopt), "not DER X.509");
    id->certificate_length = 0;
    EXPECT_CHECK_FAILS_WITH(c.check(*id, std::nullopt), "certificate length 0");

    // The wrapped key of another identity for the same UID: it unwraps, but d*G is another key.
    auto other = f.payload(uid);
    id = std::make_unique<wp_ate_site_identity>(*good);
    std::memcpy(id->wrapped_key, other->wrapped_key, 40);
    EXPECT_CHECK_FAILS_WITH(c.check(*id, std::nullopt),
                            "d*G does not equal the certificate's public key");

    // Every damaged payload above leaves the good one good.
    EXPECT_EQ(c.check(*good, std::nullopt), "");
}

TEST(DieCheck, ACertificateFromAnotherCaDoesNotChain) {
    Fixture f, other;
    const wpid1::Uid uid = uid_of(4);
    // Same KIK, so only the chain is wrong.
    other.kik = f.kik;
    auto id = other.payload(uid);
    std::memcpy(id->chain_id, f.checker().chain_id().data(), 32);
    EXPECT_CHECK_FAILS_WITH(f.checker().check(*id, std::nullopt), "does not chain to the root");
}

TEST(DieCheck, TheWrongKikFailsTheUnwrap) {
    Fixture f;
    const wpid1::Uid uid = uid_of(6);
    auto id = f.payload(uid);
    SecretArray<32> wrong = f.kik;
    wrong.bytes[0] ^= 1;
    auto c = DieChecker::create(wrong, f.chain.ca_cert, f.chain.root_cert);
    ASSERT_TRUE(c.ok());
    EXPECT_CHECK_FAILS_WITH(c->check(*id, std::nullopt), "integrity check failed");
}

TEST(DieCheck, KikAndCertificateFilesAreCheckedOnReading) {
    Fixture f;
    const fs::path kik = f.dir.path() / "kik.hex";
    std::ofstream(kik) << "  " << to_hex(f.kik.span()) << "\n";
    auto k = read_kik_file(kik);
    ASSERT_TRUE(k.ok()) << k.error().message;
    EXPECT_EQ(k->bytes, f.kik.bytes);
    std::ofstream(kik) << to_hex(f.kik.span()).substr(2) << "\n";
    EXPECT_NE(read_kik_file(kik).error().message.find("31"), std::string::npos);
    std::ofstream(kik) << "zz\n";
    EXPECT_NE(read_kik_file(kik).error().message.find("kik.hex"), std::string::npos);
    EXPECT_NE(read_kik_file(f.dir.path() / "nope").error().message.find("cannot open"),
              std::string::npos);

    // A bundle is not one certificate; a missing file is named.
    const fs::path bundle = f.dir.path() / "bundle.pem";
    {
        std::ifstream a(f.chain.ca_cert), b(f.chain.root_cert);
        std::ofstream out(bundle);
        out << a.rdbuf() << b.rdbuf();
    }
    auto c = DieChecker::create(f.kik, bundle, f.chain.root_cert);
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.error().message.find("more than one certificate"), std::string::npos)
        << c.error().message;
    c = DieChecker::create(f.kik, f.dir.path() / "missing.pem", f.chain.root_cert);
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.error().message.find("missing.pem"), std::string::npos);
}

TEST(DieCheck, ACertificateValidFromAMomentAheadIsAcceptedWithinTheClockSkew) {
    Fixture f;
    const auto now = std::chrono::system_clock::now();
    auto soon = f.payload(uid_of(7), 1, 1, now + std::chrono::seconds(3));
    auto c = f.checker(5);
    EXPECT_EQ(c.check(*soon, std::nullopt), "");
    EXPECT_EQ(c.not_before_ahead(), 1u);
    auto strict = f.checker(0);
    EXPECT_CHECK_FAILS_WITH(strict.check(*soon, std::nullopt), "certificate is not yet valid");
    auto later = f.payload(uid_of(8), 1, 2, now + std::chrono::minutes(5));
    EXPECT_CHECK_FAILS_WITH(c.check(*later, std::nullopt),
                            "not yet valid (depth 0) at this clock + 5 s");
}
