// The offline-root ceremony (ca csr -> an `openssl ca` root signs -> ca import), with OpenSSL's
// own command line standing in for the offline root and checking the request independently.
// Every refusal names its reason and writes nothing.
#include <gtest/gtest.h>

#include <fstream>

#include "ca_test_util.hpp"
#include "waferprov/host/ca_ceremony.hpp"
#include "waferprov/testing/process.hpp"
#include "waferprov/testing/softhsm.hpp"

namespace waferprov::host::test {
namespace {

namespace fs = std::filesystem;
using waferprov::testing::run_process;

constexpr const char* kOpenssl = "/usr/bin/openssl";
constexpr const char* kPinEnv = "WAFERPROV_TEST_CEREMONY_PIN";

// An offline root made and run by `openssl req` / `openssl ca` in its own directory.
class OfflineRoot {
public:
    OfflineRoot(const fs::path& dir, const std::string& cn, int days = 3650) : dir_(dir) {
        fs::create_directories(dir_ / "newcerts");
        std::ofstream(dir_ / "index.txt");
        std::ofstream(dir_ / "serial") << "1000\n";
        std::ofstream(dir_ / "ca.cnf")
            << "[ca]\ndefault_ca = root\n[root]\ndir = " << dir_.string()
            << "\ndatabase = $dir/index.txt\n"
               "new_certs_dir = $dir/newcerts\n"
               "certificate = $dir/root.pem\nprivate_key = $dir/root.key\n"
               "serial = $dir/serial\ndefault_md = sha256\n"
               "policy = any\ncopy_extensions = none\n"
               "unique_subject = no\n"
               "[any]\norganizationName = optional\n"
               "commonName = supplied\n";
        ok_ = run({kOpenssl,
                   "req",
                   "-x509",
                   "-newkey",
                   "ec",
                   "-pkeyopt",
                   "ec_paramgen_curve:P-256",
                   "-nodes",
                   "-keyout",
                   (dir_ / "root.key").string(),
                   "-out",
                   (dir_ / "root.pem").string(),
                   "-days",
                   std::to_string(days),
                   "-subj",
                   "/O=Offline Root Org/CN=" + cn,
                   "-addext",
                   "basicConstraints=critical,CA:TRUE,pathlen:1",
                   "-addext",
                   "keyUsage=critical,keyCertSign,cRLSign"});
    }
    bool ok() const { return ok_; }
    fs::path pem() const { return dir_ / "root.pem"; }

    // Signs `csr` with the extensions given (one per line, openssl config syntax) into `out`.
    bool sign(const fs::path& csr, const fs::path& out, const std::string& extensions,
              int days = 1825) {
        const std::string section = "ext" + std::to_string(n_++);
        std::ofstream(dir_ / "ca.cnf", std::ios::app) << "[" << section << "]\n" << extensions;
        return run({kOpenssl, "ca", "-batch", "-notext", "-preserveDN", "-config",
                    (dir_ / "ca.cnf").string(), "-extensions", section, "-days",
                    std::to_string(days), "-in", csr.string(), "-out", out.string()});
    }

private:
    bool run(const std::vector<std::string>& argv) {
        const int rc = run_process(argv, dir_ / "openssl.log");
        if (rc != 0)
            ADD_FAILURE() << argv[1] << " failed (" << rc << "):\n"
                          << waferprov::testing::read_text(dir_ / "openssl.log");
        return rc == 0;
    }
    fs::path dir_;
    bool ok_ = false;
    int n_ = 0;
};

const std::string kGoodProfile =
    "basicConstraints = critical,CA:TRUE,pathlen:0\n"
    "keyUsage = critical,keyCertSign,cRLSign,digitalSignature\n"
    "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n";

ChainOptions options() {
    ChainOptions o;
    o.organization = "Ceremony Test Org";
    o.product = "WP-CER";
    return o;
}

class Ceremony : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = std::make_unique<OfflineRoot>(tmp_ / "root", "Offline Root");
        ASSERT_TRUE(root_->ok());
        csr_ = must(make_pem_csr(tmp_ / "host", options()), "ca csr");
    }
    // The refusal names `why`, and ca import wrote nothing.
    void expect_refused(
        const fs::path& cert, const std::string& why,
        std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
        auto r = import_ca_certificate(tmp_ / "host", cert, root_->pem(), now);
        ASSERT_FALSE(r.ok()) << "imported " << cert;
        EXPECT_NE(r.error().describe().find(why), std::string::npos) << r.error().describe();
        EXPECT_FALSE(fs::exists(tmp_ / "host/ca.pem"));
        EXPECT_FALSE(fs::exists(tmp_ / "host/root.pem"));
    }
    TempDir tmp_;
    std::unique_ptr<OfflineRoot> root_;
    CsrFiles csr_;
};

TEST_F(Ceremony, RequestIsSelfSignedWithTheManufacturerSubjectAndAKeyFile) {
    ASSERT_EQ(run_process({kOpenssl, "req", "-verify", "-noout", "-in", csr_.csr.string()},
                          tmp_ / "verify.log"),
              0)
        << waferprov::testing::read_text(tmp_ / "verify.log");
    ASSERT_EQ(
        run_process({kOpenssl, "req", "-noout", "-subject", "-text", "-in", csr_.csr.string()},
                    tmp_ / "text.log"),
        0);
    const std::string text = waferprov::testing::read_text(tmp_ / "text.log");
    EXPECT_NE(text.find("CN = Ceremony Test Org Manufacturer CA WP-CER"), std::string::npos)
        << text;
    EXPECT_NE(text.find("CA:TRUE, pathlen:0"), std::string::npos) << text;
    EXPECT_EQ(fs::status(csr_.key).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
    // A second csr into the same directory is refused, nothing overwritten.
    EXPECT_FALSE(make_pem_csr(tmp_ / "host", options()).ok());
}

TEST_F(Ceremony, ImportsWhatTheOfflineRootSignedAndTheSignerOpensOnIt) {
    ASSERT_TRUE(root_->sign(csr_.csr, tmp_ / "signed.pem", kGoodProfile));
    auto chain =
        must(import_ca_certificate(tmp_ / "host", tmp_ / "signed.pem", root_->pem()), "ca import");
    ASSERT_EQ(run_process({kOpenssl, "verify", "-x509_strict", "-CAfile", chain.root_cert.string(),
                           chain.ca_cert.string()},
                          tmp_ / "chain.log"),
              0)
        << waferprov::testing::read_text(tmp_ / "chain.log");
    // make_signer signs and verifies a self-test digest: the key and the certificate match.
    must(make_signer(PemSignerConfig{csr_.key, chain.ca_cert}), "signer on the imported chain");
    // Importing twice would overwrite: refused.
    EXPECT_FALSE(import_ca_certificate(tmp_ / "host", tmp_ / "signed.pem", root_->pem()).ok());
}

TEST_F(Ceremony, RefusesACertificateForAnotherKey) {
    auto other = must(make_pem_csr(tmp_ / "other", options()), "second csr");
    ASSERT_TRUE(root_->sign(other.csr, tmp_ / "other.pem", kGoodProfile));
    expect_refused(tmp_ / "other.pem", "certifies another key");
}

TEST_F(Ceremony, RefusesProfilesThatAreNotTheManufacturerCa) {
    struct Case {
        const char* ext;
        const char* why;
    } cases[] = {
        {"basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
         "subjectKeyIdentifier = hash\n",
         "not a CA"},
        {"basicConstraints = CA:TRUE,pathlen:0\n"
         "keyUsage = critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier = hash\n",
         "basicConstraints extension is not critical"},
        {"basicConstraints = critical,CA:TRUE,pathlen:1\n"
         "keyUsage = critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier = hash\n",
         "path length is not 0"},
        {"basicConstraints = critical,CA:TRUE,pathlen:0\nkeyUsage = critical,keyCertSign,cRLSign\n"
         "subjectKeyIdentifier = hash\n",
         "lacks digitalSignature"},
        {"basicConstraints = critical,CA:TRUE,pathlen:0\n"
         "keyUsage = keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier = hash\n",
         "keyUsage extension is not critical"},
    };
    int i = 0;
    for (const auto& c : cases) {
        SCOPED_TRACE(c.why);
        const fs::path out = tmp_ / ("case" + std::to_string(i++) + ".pem");
        ASSERT_TRUE(root_->sign(csr_.csr, out, c.ext));
        expect_refused(out, c.why);
    }
}

TEST_F(Ceremony, RefusesAnotherRootAnExpiredCertificateAndACaOutlivingItsRoot) {
    OfflineRoot stranger(tmp_ / "stranger", "Offline Root");  // same name, another key
    ASSERT_TRUE(stranger.ok());
    ASSERT_TRUE(stranger.sign(csr_.csr, tmp_ / "stranger.pem", kGoodProfile));
    expect_refused(tmp_ / "stranger.pem", "not issued by the root");

    ASSERT_TRUE(root_->sign(csr_.csr, tmp_ / "good.pem", kGoodProfile, 30));
    expect_refused(tmp_ / "good.pem", "certificate has expired",
                   std::chrono::system_clock::now() + std::chrono::hours(24 * 60));

    ASSERT_TRUE(root_->sign(csr_.csr, tmp_ / "long.pem", kGoodProfile, 3650 + 400));
    expect_refused(tmp_ / "long.pem", "expires after its root");
}

TEST(CeremonyCli, CsrThenImportAsAnOperatorRunsThem) {
    TempDir tmp;
    OfflineRoot root(tmp / "root", "Offline CLI Root");
    ASSERT_TRUE(root.ok());
    const std::string bin = WAFERPROV_BINARY;
    const fs::path log = tmp / "cli.log";
    const fs::path host = tmp / "host";
    ASSERT_EQ(
        run_process({bin, "ca", "csr", "--out", host.string(), "--organization", "CLI Org"}, log),
        0)
        << waferprov::testing::read_text(log);
    EXPECT_EQ(run_process({bin, "ca", "import", "--dir", host.string()}, log), 2) << "usage";
    ASSERT_TRUE(root.sign(host / "ca.csr", tmp / "wide.pem",
                          "basicConstraints = critical,CA:TRUE,pathlen:3\n"
                          "keyUsage = critical,keyCertSign,cRLSign,digitalSignature\n"
                          "subjectKeyIdentifier = hash\n"));
    EXPECT_EQ(run_process({bin, "ca", "import", "--dir", host.string(), "--cert",
                           (tmp / "wide.pem").string(), "--root", root.pem().string()},
                          log),
              1);
    EXPECT_NE(waferprov::testing::read_text(log).find("path length is not 0"), std::string::npos);
    ASSERT_TRUE(root.sign(host / "ca.csr", tmp / "signed.pem", kGoodProfile));
    ASSERT_EQ(run_process({bin, "ca", "import", "--dir", host.string(), "--cert",
                           (tmp / "signed.pem").string(), "--root", root.pem().string()},
                          log),
              0)
        << waferprov::testing::read_text(log);
    EXPECT_TRUE(fs::exists(host / "ca.pem"));
    EXPECT_TRUE(fs::exists(host / "root.pem"));
}

TEST(CeremonyHsm, KeyStaysInTheTokenAndTheImportedChainOpensItsSigner) {
    if (!waferprov::testing::SoftHsmToken::find_module())
        GTEST_SKIP() << "SoftHSM2 is not installed";
    auto token = must(waferprov::testing::SoftHsmToken::create(), "SoftHSM token");
    token->export_pin(kPinEnv);
    TempDir tmp;
    OfflineRoot root(tmp / "root", "Offline HSM Root");
    ASSERT_TRUE(root.ok());
    HsmChainOptions h;
    h.module = token->module();
    h.token_label = token->label();
    h.key_label = "mfg-ca";
    h.pin_env = kPinEnv;
    h.chain = options();
    auto csr = must(make_hsm_csr(tmp / "host", h), "ca csr --hsm");
    EXPECT_TRUE(csr.key.empty());
    EXPECT_FALSE(fs::exists(tmp / "host/ca.key"));
    // The token's signature on the request, checked by OpenSSL's command line.
    ASSERT_EQ(run_process({kOpenssl, "req", "-verify", "-noout", "-in", csr.csr.string()},
                          tmp / "verify.log"),
              0)
        << waferprov::testing::read_text(tmp / "verify.log");
    // The label is taken now: a second csr with it is refused.
    EXPECT_FALSE(make_hsm_csr(tmp / "again", h).ok());

    ASSERT_TRUE(root.sign(csr.csr, tmp / "signed.pem", kGoodProfile));
    auto chain =
        must(import_ca_certificate(tmp / "host", tmp / "signed.pem", root.pem()), "ca import");
    must(make_signer(
             Pkcs11SignerConfig{h.module, h.token_label, h.key_label, kPinEnv, chain.ca_cert, 1}),
         "token signer on the imported chain");
}

}  // namespace
}  // namespace waferprov::host::test
