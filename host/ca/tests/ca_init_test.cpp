// `ca init`: the PEM chain's files and certificates, refusal to overwrite, and the command.
#include <sys/stat.h>

#include "ca_test_util.hpp"
#include "waferprov/testing/cli.hpp"
#include "waferprov/testing/process.hpp"

namespace waferprov::host::test {
namespace {

unsigned mode_of(const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 0777;
}

void expect_ca(X509* cert, int pathlen, bool self_signed) {
    EXPECT_EQ(X509_get_version(cert), X509_VERSION_3);
    EXPECT_EQ(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
    EXPECT_TRUE(ca_detail::check_p256_key(X509_get0_pubkey(cert), "CA key").ok());
    BcPtr bc(static_cast<BASIC_CONSTRAINTS*>(
        X509_get_ext_d2i(cert, NID_basic_constraints, nullptr, nullptr)));
    ASSERT_TRUE(bc);
    EXPECT_NE(bc->ca, 0);
    ASSERT_NE(bc->pathlen, nullptr);
    EXPECT_EQ(ASN1_INTEGER_get(bc->pathlen), pathlen);
    EXPECT_EQ(X509_EXTENSION_get_critical(
                  X509_get_ext(cert, X509_get_ext_by_NID(cert, NID_basic_constraints, -1))),
              1);
    EXPECT_NE(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN, 0u);
    ASSERT_NE(X509_get0_subject_key_id(cert), nullptr);
    EXPECT_EQ(ASN1_STRING_length(X509_get0_subject_key_id(cert)), 20);
    EXPECT_EQ((X509_get_extension_flags(cert) & EXFLAG_SS) != 0, self_signed);
}

TEST(CaInit, PemChainWritesCertificatesAndPrivateKeys) {
    TempDir dir;
    ChainOptions o;
    o.organization = "Example Semiconductor";
    o.product = "WP-TEST";
    auto files = must(init_pem_chain(dir.path() / "new" / "ca", o), "init");
    EXPECT_EQ(mode_of(files.root_key), 0600u);
    EXPECT_EQ(mode_of(files.ca_key), 0600u);
    EXPECT_EQ(mode_of(files.root_cert), 0644u);
    EXPECT_EQ(mode_of(files.ca_cert), 0644u);

    auto root = must(ca_detail::read_pem_certificate(files.root_cert), "root");
    auto ca = must(ca_detail::read_pem_certificate(files.ca_cert), "ca");
    expect_ca(root.get(), 1, true);
    expect_ca(ca.get(), 0, false);
    EXPECT_EQ(name_entry(X509_get_subject_name(ca.get()), NID_commonName),
              "Example Semiconductor Manufacturer CA WP-TEST");
    EXPECT_EQ(to_hex(octets(X509_get0_authority_key_id(ca.get()))),
              to_hex(octets(X509_get0_subject_key_id(root.get()))));
    // Root: about 20 years.
    int days = 0, secs = 0;
    ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(root.get()),
                             X509_get0_notAfter(root.get())),
              1);
    EXPECT_GE(days, 20 * 365);
    EXPECT_LE(days, 20 * 366);

    // The keys belong to their certificates; the CA verifies under the root.
    auto root_key = must(ca_detail::read_pem_private_key(files.root_key), "root key");
    EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(root.get()), root_key.get()), 1);
    EXPECT_EQ(X509_verify(ca.get(), X509_get0_pubkey(root.get())), 1);
    auto signer = make_signer(files.signer);
    ASSERT_TRUE(signer.ok()) << signer.error().describe();
    EXPECT_EQ((*signer)->describe(), "PEM " + files.ca_key.string());
}

TEST(CaInit, RefusesToOverwriteAndLeavesFilesAlone) {
    TempDir dir;
    auto first = must(init_pem_chain(dir.path(), {}), "init");
    const std::string before = slurp(first.ca_cert);
    auto again = init_pem_chain(dir.path(), {});
    ASSERT_FALSE(again.ok());
    EXPECT_NE(again.error().message.find("refusing to overwrite"), std::string::npos)
        << again.error().message;
    EXPECT_EQ(slurp(first.ca_cert), before);

    // Any one existing file is enough to refuse, before anything is written.
    TempDir partial;
    { std::ofstream(partial.path() / "ca.key") << "keep me"; }
    ASSERT_FALSE(init_pem_chain(partial.path(), {}).ok());
    EXPECT_FALSE(std::filesystem::exists(partial.path() / "root.pem"));
    EXPECT_EQ(slurp(partial.path() / "ca.key"), "keep me");
}

TEST(CaInit, PemSignerRefusesAMismatchedKey) {
    TempDir a, b;
    auto ca = must(init_pem_chain(a.path(), {}), "a");
    auto cb = must(init_pem_chain(b.path(), {}), "b");
    auto r = make_signer(PemSignerConfig{ca.ca_key, cb.ca_cert});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("does not belong to certificate"), std::string::npos)
        << r.error().message;
    auto missing = make_signer(PemSignerConfig{a.path() / "nope.key", ca.ca_cert});
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().message.find("nope.key"), std::string::npos)
        << missing.error().message;
}

int run_ca(const std::filesystem::path& dir, const std::string& args,
           std::string* output = nullptr) {
    const auto r =
        waferprov::testing::run_cli(WAFERPROV_BINARY, waferprov::testing::split_args(args), dir);
    if (output != nullptr) *output = r.all();
    return r.status;
}

TEST(CaInitCommand, WritesChainThenRefusesToOverwrite) {
    TempDir dir;
    const std::string out = (dir.path() / "chain").string();
    EXPECT_EQ(
        run_ca(dir.path(), "ca init --out " + out + " --product WP-TEST --organization Example"),
        0);
    EXPECT_TRUE(std::filesystem::exists(dir.path() / "chain" / "ca.key"));
    const auto key_before = waferprov::testing::read_text(dir.path() / "chain" / "ca.key");
    std::string refused;
    EXPECT_EQ(run_ca(dir.path(), "ca init --out " + out, &refused), 1);
    EXPECT_NE(refused.find("refusing to overwrite"), std::string::npos) << refused;
    EXPECT_EQ(waferprov::testing::read_text(dir.path() / "chain" / "ca.key"), key_before)
        << "a refused ca init must leave the existing chain as it was";
    EXPECT_EQ(run_ca(dir.path(), "ca init"), 2);
    EXPECT_EQ(run_ca(dir.path(), "ca init --out x --module m"), 2);
    EXPECT_EQ(run_ca(dir.path(), "ca init --out x --hsm --module m"), 2);
}

}  // namespace
}  // namespace waferprov::host::test

// Issue #11: OpenSSL's PEM reader never returns on /dev/zero; the files are read with a cap.
TEST(CaFiles, EndlessDeviceAsCertificateOrKeyIsRefusedAtTheCap) {
    auto cert = waferprov::host::ca_detail::read_pem_certificate("/dev/zero");
    ASSERT_FALSE(cert.ok());
    EXPECT_EQ(cert.error().message,
              "certificate /dev/zero is larger than the limit of 1048576 bytes");
    auto key = waferprov::host::ca_detail::read_pem_private_key("/dev/zero");
    ASSERT_FALSE(key.ok());
    EXPECT_EQ(key.error().message,
              "private key /dev/zero is larger than the limit of 1048576 bytes");
}
