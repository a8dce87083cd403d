// The PKCS#11 signer on a fresh SoftHSM2 token (and timing of both signers): device
// certificates, parallel signing through the session pool, clear errors.
#include <atomic>
#include <chrono>
#include <thread>

#include "ca_test_util.hpp"
#include "pkcs11_module.hpp"
#include "waferprov/testing/softhsm.hpp"
#include "waferprov/testing/temp_dir.hpp"

namespace waferprov::host::test {
namespace {

constexpr const char* kPinEnv = "WAFERPROV_TEST_HSM_PIN";

class TokenChain : public ::testing::Test {
protected:
    void SetUp() override {
        if (!waferprov::testing::SoftHsmToken::find_module())
            GTEST_SKIP() << "SoftHSM2 is not installed";
        token_ = must(waferprov::testing::SoftHsmToken::create(), "SoftHSM token");
        token_->export_pin(kPinEnv);
        HsmChainOptions o;
        o.module = token_->module();
        o.token_label = token_->label();
        o.key_label = "manufacturer-ca";
        o.pin_env = kPinEnv;
        o.chain.product = "WP-TEST";
        files_ = must(init_hsm_chain(dir_.path(), o), "init_hsm_chain");
        config_ = std::get<Pkcs11SignerConfig>(files_.signer);
    }
    void TearDown() override { ::unsetenv(kPinEnv); }

    std::unique_ptr<waferprov::testing::SoftHsmToken> token_;
    TempDir dir_;
    ChainFiles files_;
    Pkcs11SignerConfig config_;
};

TEST_F(TokenChain, DeviceCertificateSignedInTokenHasTheProfileAndVerifies) {
    auto signer = must(make_signer(config_), "make_signer");
    EXPECT_NE(signer->describe().find("token '" + token_->label() + "'"), std::string::npos);
    const Bytes ca_ski = must(certificate_ski(signer->certificate_der()), "ski");
    std::vector<Bytes> certs;
    for (uint32_t i = 0; i < 3; ++i) {
        const auto req = sample_request(ca_ski, i);
        certs.push_back(must(build_device_certificate(req, *signer), "build"));
        expect_profile(certs.back(), req, signer->certificate_der());
    }
    expect_store_verifies(files_.root_cert, files_.ca_cert, certs);
    const auto device = dir_.path() / "device.pem";
    write_pem(device, certs.front());
    std::string out;
    EXPECT_EQ(openssl_verify(files_.root_cert, files_.ca_cert, device, out), 0) << out;
}

TEST_F(TokenChain, ParallelSigningFromFourThreadsThroughTheSessionPool) {
    config_.pool_size = 4;
    auto signer = must(Pkcs11Signer::open(config_), "open");
    auto builder = must(DeviceCertBuilder::create(*signer), "builder");
    constexpr size_t kCerts = 400;
    std::vector<DeviceCertRequest> reqs;
    for (uint32_t i = 0; i < kCerts; ++i) reqs.push_back(sample_request(builder.ca_ski(), i));
    std::vector<Bytes> certs(kCerts);
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (size_t t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (size_t i = t; i < kCerts; i += 4) {
                auto r = builder.build(reqs[i]);
                if (r.ok())
                    certs[i] = std::move(r).value();
                else {
                    ADD_FAILURE() << r.error().describe();
                    ++failures;
                }
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_GE(signer->sessions_open(), 1u);
    EXPECT_LE(signer->sessions_open(), 4u);
    expect_store_verifies(files_.root_cert, files_.ca_cert, certs);
}

TEST_F(TokenChain, PoolOfOneSerializesEightThreads) {
    config_.pool_size = 1;
    auto signer = must(Pkcs11Signer::open(config_), "open");
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            std::array<uint8_t, 32> d{};
            for (int i = 0; i < 20; ++i)
                if (signer->sign_sha256_digest(d).ok()) ++ok;
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(ok.load(), 160);
    EXPECT_EQ(signer->sessions_open(), 1u);
}

TEST_F(TokenChain, PrivateKeyIsSensitiveNonExtractableAndIdIsTheSki) {
    auto module = must(p11::Module::load(token_->module().string()), "module");
    const ck_slot_id_t slot = must(module->find_token(token_->label()), "slot");
    auto session = must(p11::Session::open(module, slot, false), "session");
    auto pin = must(p11::read_pin_env(kPinEnv), "pin");
    ASSERT_TRUE(session.login(pin, token_->label()).ok());
    const ck_object_handle_t key =
        must(session.find_private_key("manufacturer-ca", token_->label()), "key");
    EXPECT_TRUE(must(session.bool_attribute(key, CKA_SENSITIVE), "sensitive"));
    EXPECT_FALSE(must(session.bool_attribute(key, CKA_EXTRACTABLE), "extractable"));
    EXPECT_TRUE(must(session.bool_attribute(key, CKA_SIGN), "sign"));
    EXPECT_TRUE(must(session.bool_attribute(key, CKA_TOKEN), "token"));
    auto value = session.attribute(key, CKA_VALUE);
    ASSERT_FALSE(value.ok());
    EXPECT_NE(value.error().message.find("CKR_ATTRIBUTE_SENSITIVE"), std::string::npos)
        << value.error().message;
    auto ca = must(ca_detail::read_pem_certificate(files_.ca_cert), "ca");
    EXPECT_EQ(to_hex(must(session.attribute(key, CKA_ID), "id")),
              to_hex(octets(X509_get0_subject_key_id(ca.get()))));
}

TEST_F(TokenChain, HsmInitRefusesAnExistingKeyLabel) {
    TempDir other;
    HsmChainOptions o;
    o.module = token_->module();
    o.token_label = token_->label();
    o.key_label = "manufacturer-ca";
    o.pin_env = kPinEnv;
    auto r = init_hsm_chain(other.path(), o);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("already holds a private key labelled 'manufacturer-ca'"),
              std::string::npos)
        << r.error().message;
    EXPECT_FALSE(std::filesystem::exists(other.path() / "root.pem"));
}

TEST_F(TokenChain, WrongPinIsAClearError) {
    ::setenv(kPinEnv, "999999", 1);
    auto r = make_signer(config_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find("CKR_PIN_INCORRECT"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(token_->label()), std::string::npos) << r.error().message;
}

TEST_F(TokenChain, UnsetPinVariableIsNamed) {
    config_.pin_env = "WAFERPROV_TEST_NO_SUCH_PIN_VARIABLE";
    auto r = make_signer(config_);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("WAFERPROV_TEST_NO_SUCH_PIN_VARIABLE"), std::string::npos)
        << r.error().message;
}

TEST_F(TokenChain, MissingTokenIsNamed) {
    config_.token_label = "no-such-token";
    auto r = make_signer(config_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
    EXPECT_NE(r.error().message.find("no token labelled 'no-such-token'"), std::string::npos)
        << r.error().message;
    EXPECT_NE(r.error().message.find("'" + token_->label() + "'"), std::string::npos)
        << r.error().message;
}

TEST_F(TokenChain, MissingKeyLabelIsNamed) {
    config_.key_label = "no-such-key";
    auto r = make_signer(config_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
    EXPECT_NE(r.error().message.find("no EC private key labelled 'no-such-key'"), std::string::npos)
        << r.error().message;
    EXPECT_NE(r.error().message.find(token_->label()), std::string::npos) << r.error().message;
}

TEST_F(TokenChain, MissingModuleIsNamed) {
    config_.module = "/nonexistent/libnosuchpkcs11.so";
    auto r = make_signer(config_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
    EXPECT_NE(r.error().message.find("/nonexistent/libnosuchpkcs11.so"), std::string::npos)
        << r.error().message;
}

TEST_F(TokenChain, CertificateOfAnotherKeyIsRefused) {
    TempDir other;
    auto pem = must(init_pem_chain(other.path(), {}), "pem chain");
    config_.certificate_pem = pem.ca_cert;
    auto r = make_signer(config_);
    ASSERT_FALSE(r.ok());
    // The signer's own check of every token signature fires on make_signer's self-test.
    EXPECT_NE(r.error().message.find("does not verify under the CA certificate"), std::string::npos)
        << r.error().message;
}

// A token whose signatures do not verify under the configured certificate (here: opened
// directly, past make_signer's start-up self-test) never has a signature accepted.
TEST_F(TokenChain, TokenSignatureThatDoesNotVerifyIsAnError) {
    TempDir other;
    auto pem = must(init_pem_chain(other.path(), {}), "pem chain");
    config_.certificate_pem = pem.ca_cert;
    auto signer = Pkcs11Signer::open(config_);
    ASSERT_TRUE(signer.ok()) << signer.error().describe();
    std::array<uint8_t, 32> digest{};
    auto sig = (*signer)->sign_sha256_digest(digest);
    ASSERT_FALSE(sig.ok());
    EXPECT_NE(sig.error().message.find("does not verify"), std::string::npos)
        << sig.error().message;
}

// Not a benchmark: a rough per-signature cost for the report, printed to the test log.
TEST_F(TokenChain, ReportsPerSignatureCost) {
    TempDir pem_dir;
    auto pem_files = must(init_pem_chain(pem_dir.path(), {}), "pem chain");
    auto pem = must(make_signer(pem_files.signer), "pem signer");
    config_.pool_size = 4;
    auto hsm = must(make_signer(config_), "hsm signer");
    auto time_signer = [](Signer& s, int threads, int per_thread) {
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t)
            ts.emplace_back([&, t] {
                std::array<uint8_t, 32> d{};
                d[0] = static_cast<uint8_t>(t);
                for (int i = 0; i < per_thread; ++i) {
                    d[1] = static_cast<uint8_t>(i);
                    if (!s.sign_sha256_digest(d).ok()) ADD_FAILURE() << "sign failed";
                }
            });
        for (auto& th : ts) th.join();
        const std::chrono::duration<double, std::micro> us = std::chrono::steady_clock::now() - t0;
        return us.count() / (threads * per_thread);
    };
    auto time_build = [](Signer& s, int n) {
        auto b = must(DeviceCertBuilder::create(s), "builder");
        std::vector<DeviceCertRequest> reqs;
        for (int i = 0; i < n; ++i)
            reqs.push_back(sample_request(b.ca_ski(), static_cast<uint32_t>(i)));
        const auto t0 = std::chrono::steady_clock::now();
        for (const auto& r : reqs)
            if (!b.build(r).ok()) ADD_FAILURE() << "build failed";
        const std::chrono::duration<double, std::micro> us = std::chrono::steady_clock::now() - t0;
        return us.count() / n;
    };
    constexpr int kN = 1000;
    std::printf("[ timing ] PEM signer      1 thread : %7.1f us/signature\n",
                time_signer(*pem, 1, kN));
    std::printf("[ timing ] PKCS#11 signer  1 thread : %7.1f us/signature\n",
                time_signer(*hsm, 1, kN));
    std::printf("[ timing ] PEM signer      2 threads: %7.1f us/signature (wall/total)\n",
                time_signer(*pem, 2, kN / 2));
    std::printf("[ timing ] PKCS#11 signer  2 threads: %7.1f us/signature (wall/total)\n",
                time_signer(*hsm, 2, kN / 2));
    std::printf("[ timing ] device cert, PEM signer    : %7.1f us/certificate (build+sign)\n",
                time_build(*pem, 200));
    std::printf("[ timing ] device cert, PKCS#11 signer: %7.1f us/certificate (build+sign)\n",
                time_build(*hsm, 200));
}

}  // namespace
}  // namespace waferprov::host::test
