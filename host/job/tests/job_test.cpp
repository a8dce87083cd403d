#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <unistd.h>

#include "waferprov/host/job.hpp"
#include "waferprov/test_vectors.hpp"
#include "waferprov/testing/temp_dir.hpp"

using namespace waferprov;
using namespace waferprov::host;
namespace fs = std::filesystem;
using waferprov::testing::TempDir;

namespace {

const char* kValid = R"(
[job]
id = "JOB-1"
product = "WPX-1000"
customer = "ACME"
quota = 100
ledger = "ledger.sqlite"
[keys]
wrapped_kik = "kik.wrapped"
device_key = "device.key"
[ca]
type = "pem"
key = "ca.key"
certificate = "ca.pem"
root = "root.pem"
[certificate]
organization = "ACME Devices"
[uid]
policy = "derived"
salt = "000102030405060708090a0b0c0d0e0f"
[map]
provision_bins = ["01", "02"]

[testers]
"ATE-07" = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
ate8 = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
)";

fs::path write(const TempDir& d, const std::string& text) {
    fs::path p = d.path() / "job.toml";
    std::ofstream(p) << text;
    return p;
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
    auto pos = s.find(from);
    EXPECT_NE(pos, std::string::npos) << from;
    return s.replace(pos, from.size(), to);
}

}  // namespace

TEST(JobFile, ReadsEveryKeyAndResolvesPathsAgainstItsFolder) {
    TempDir d{"job"};
    auto job = load_job(write(d, kValid));
    ASSERT_TRUE(job.ok()) << job.error().describe();
    EXPECT_EQ(job->id, "JOB-1");
    EXPECT_EQ(job->quota, 100u);
    EXPECT_EQ(job->backend, "software");
    EXPECT_EQ(job->ledger, d.path() / "ledger.sqlite");
    EXPECT_EQ(*job->device_key, d.path() / "device.key");
    EXPECT_EQ(job->ca.kind, JobCa::Kind::kPem);
    EXPECT_EQ(job->ca.key, d.path() / "ca.key");
    EXPECT_EQ(job->certificate.organization, "ACME Devices");
    EXPECT_EQ(job->uid_policy, UidPolicy::kDerived);
    EXPECT_EQ(job->uid_salt.size(), 16u);
    EXPECT_EQ(job->provision_bins, (std::vector<std::string>{"01", "02"}));
    ASSERT_EQ(job->testers.size(), 2u);
    EXPECT_EQ(job->testers[0], (TesterKey{"ATE-07", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"}));
    EXPECT_EQ(job->testers[1].id, "ate8");
}

TEST(JobFile, WriteThenLoadRoundTrips) {
    TempDir d{"job"};
    auto job = load_job(write(d, kValid));
    ASSERT_TRUE(job.ok());
    job->file = d.path() / "copy.toml";
    job->ca.kind = JobCa::Kind::kPkcs11;
    job->ca.module = "/usr/lib/softhsm/libsofthsm2.so";
    job->ca.token_label = "tok";
    job->ca.key_label = "ca";
    job->customer = "quote \" and backslash \\";
    ASSERT_TRUE(write_job(*job).ok());
    auto back = load_job(job->file);
    ASSERT_TRUE(back.ok()) << back.error().describe();
    EXPECT_EQ(back->customer, job->customer);
    EXPECT_EQ(back->ca.kind, JobCa::Kind::kPkcs11);
    EXPECT_EQ(back->ca.token_label, "tok");
    EXPECT_EQ(back->ledger, job->ledger);
    EXPECT_EQ(back->uid_salt, job->uid_salt);
    EXPECT_EQ(back->testers, job->testers);
}

// The die-location extension's OID is the job's; the documentation PEN is only the default,
// and a job file written with it says so.
// docs/ledger.md "Stores": a PostgreSQL URI is kept as written (never resolved as a path) and
// needs this host's anchor file; "sqlite:PATH" is a path like any other; both round-trip.
TEST(JobFile, TheLedgerIsASqliteFileOrAPostgresDatabaseWithAnAnchor) {
    TempDir d{"job"};
    const std::string url = "postgresql://prov@db1/job_dev42?connect_timeout=10";
    auto pg = load_job(write(d, replace(kValid, "ledger = \"ledger.sqlite\"",
                                        "ledger = \"" + url + "\"\nanchor = \"h1.anchor\"")));
    ASSERT_TRUE(pg.ok()) << pg.error().describe();
    EXPECT_EQ(pg->ledger.string(), url);
    EXPECT_EQ(pg->anchor, d.path() / "h1.anchor");
    pg->file = d.path() / "copy.toml";
    ASSERT_TRUE(write_job(*pg).ok());
    auto back = load_job(pg->file);
    ASSERT_TRUE(back.ok()) << back.error().describe();
    EXPECT_EQ(back->ledger.string(), url);
    EXPECT_EQ(back->anchor, pg->anchor);

    auto no_anchor = load_job(
        write(d, replace(kValid, "ledger = \"ledger.sqlite\"", "ledger = \"" + url + "\"")));
    ASSERT_FALSE(no_anchor.ok());
    EXPECT_NE(no_anchor.error().message.find("job.anchor: missing"), std::string::npos)
        << no_anchor.error().message;

    auto lite = load_job(
        write(d, replace(kValid, "ledger = \"ledger.sqlite\"", "ledger = \"sqlite:l/j.db\"")));
    ASSERT_TRUE(lite.ok()) << lite.error().describe();
    EXPECT_EQ(lite->ledger, d.path() / "l/j.db");
    EXPECT_FALSE(lite->anchor);
    EXPECT_EQ(ledger_argument(url).string(), url);
    EXPECT_EQ(ledger_argument("sqlite:/srv/l.db"), fs::path("/srv/l.db"));
}

TEST(JobFile, LocationOidAndUidOverlay) {
    TempDir d{"job"};
    auto dflt = load_job(write(d, kValid));
    ASSERT_TRUE(dflt.ok());
    EXPECT_EQ(dflt->certificate.location_oid, "1.3.6.1.4.1.32473.1.1");
    EXPECT_FALSE(dflt->map_uid_overlay.has_value());
    dflt->file = d.path() / "written.toml";
    ASSERT_TRUE(write_job(*dflt).ok());
    std::ifstream in(dflt->file);
    const std::string written((std::istreambuf_iterator<char>(in)), {});
    EXPECT_NE(written.find("development only"), std::string::npos) << written;

    const std::string own = replace(
        replace(kValid, "organization = \"ACME Devices\"",
                "organization = \"ACME Devices\"\nlocation_oid = \"1.3.6.1.4.1.55555.2.1\""),
        "provision_bins = [\"01\", \"02\"]",
        "provision_bins = [\"01\", \"02\"]\nuid_overlay = \"UIDs\"");
    auto job = load_job(write(d, own));
    ASSERT_TRUE(job.ok()) << job.error().describe();
    EXPECT_EQ(job->certificate.location_oid, "1.3.6.1.4.1.55555.2.1");
    EXPECT_EQ(job->map_uid_overlay, "UIDs");
    job->file = d.path() / "round.toml";
    ASSERT_TRUE(write_job(*job).ok());
    auto back = load_job(job->file);
    ASSERT_TRUE(back.ok()) << back.error().describe();
    EXPECT_EQ(back->certificate.location_oid, "1.3.6.1.4.1.55555.2.1");
    EXPECT_EQ(back->map_uid_overlay, "UIDs");

    for (const char* bad : {"2.5.4.3", "1.3.6.1.4.1.55555", "1.3.6.1.4.1.0555.1", "x"}) {
        auto r = load_job(write(d, replace(kValid, "organization = \"ACME Devices\"",
                                           std::string("location_oid = \"") + bad + "\"")));
        ASSERT_FALSE(r.ok()) << bad;
        EXPECT_NE(r.error().message.find("certificate.location_oid"), std::string::npos)
            << r.error().message;
    }
}

TEST(JobFile, ErrorsNameTheKey) {
    TempDir d{"job"};
    struct Case {
        std::string from, to, key;
    } cases[] = {
        {"quota = 100", "quota = -1", "job.quota"},
        {"quota = 100", "quota = \"many\"", "job.quota"},
        {"id = \"JOB-1\"\n", "", "job.id"},
        {"type = \"pem\"", "type = \"cloud\"", "ca.type"},
        {"policy = \"derived\"", "policy = \"random\"", "uid.policy"},
        {"salt = \"000102030405060708090a0b0c0d0e0f\"", "salt = \"00zz\"", "uid.salt"},
        {"salt = \"000102030405060708090a0b0c0d0e0f\"", "salt = \"0001\"", "uid.salt"},
        {"provision_bins = [\"01\", \"02\"]", "provision_bins = [1]", "map.provision_bins"},
        // A key that is not Z85 (a quote-free 40 characters with '~'), not a string, too
        // short; the same key for two testers; the old list form; a non-ASCII tester id.
        {"ate8 = \"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID\"",
         "ate8 = \"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hI~\"", "testers.\"ate8\""},
        {"ate8 = \"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID\"", "ate8 = 5", "testers.\"ate8\""},
        {"ate8 = \"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID\"", "ate8 = \"Yne@$w\"",
         "testers.\"ate8\""},
        {"ate8 = \"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID\"",
         "ate8 = \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\"", "another tester"},
        {"ate8 = \"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID\"", "public_keys = []",
         "testers.public_keys"},
        {"ate8 = ", "\"ate\\u00e9\" = ", "printable ASCII"},
    };
    for (const auto& c : cases) {
        auto job = load_job(write(d, replace(kValid, c.from, c.to)));
        ASSERT_FALSE(job.ok()) << c.key;
        EXPECT_NE(job.error().message.find(c.key), std::string::npos) << job.error().message;
        EXPECT_NE(job.error().message.find("job.toml"), std::string::npos);
    }
}

TEST(JobFile, SyntaxErrorCarriesLineAndColumn) {
    TempDir d{"job"};
    auto job = load_job(write(d, replace(kValid, "quota = 100", "quota = = 100")));
    ASSERT_FALSE(job.ok());
    EXPECT_NE(job.error().message.find("job.toml:6:9"), std::string::npos) << job.error().message;
}

TEST(JobFile, RefusesAPinInTheFile) {
    TempDir d{"job"};
    std::string text = replace(kValid, "type = \"pem\"\nkey = \"ca.key\"",
                               "type = \"pkcs11\"\nmodule = \"m.so\"\ntoken_label = \"t\"\n"
                               "key_label = \"k\"\npin = \"1234\"");
    auto job = load_job(write(d, text));
    ASSERT_FALSE(job.ok());
    EXPECT_NE(job.error().message.find("ca.pin"), std::string::npos);
}

TEST(JobFile, MissingFileIsAClearError) {
    auto job = load_job("/nonexistent/job.toml");
    ASSERT_FALSE(job.ok());
    EXPECT_NE(job.error().message.find("/nonexistent/job.toml"), std::string::npos);
}

TEST(DerivedUid, MatchesTheDocumentedConstruction) {
    // Values computed independently with Python's hashlib over the byte string of
    // docs/identity-spec.md ("UID", the worked example):
    // sha256(b"WPID-1 UID/2\x00" + bytes(range(16)) + b"\x00\x04LOT1" + (3).to_bytes(4,"big")
    //        + (12).to_bytes(4,"big") + (-4).to_bytes(4,"big",signed=True)
    //        + b"\x00\x0bPH8Q66-02B6")[:16]
    Bytes salt(16);
    for (size_t i = 0; i < 16; ++i) salt[i] = static_cast<uint8_t>(i);
    EXPECT_EQ(to_hex(derive_uid(salt, DieLocation{"LOT1", 3, 12, -4, "PH8Q66-02B6"})),
              "fa909886bd42470b3db09353f3eaadd2");
    // ... with b"\x00\x08LOT1-003" as the substrate id: another physical wafer, another UID.
    EXPECT_EQ(to_hex(derive_uid(salt, DieLocation{"LOT1", 3, 12, -4, "LOT1-003"})),
              "9298596da77e13f668174b4a5a66e09e");
    // The UID before substrate ids (ledgers migrated from schema version 2):
    // sha256(b"WPID-1 UID\x00" + bytes(range(16)) + b"\x00\x04LOT1" + ...)[:16]
    EXPECT_EQ(to_hex(derive_legacy_uid(salt, DieLocation{"LOT1", 3, 12, -4, "PH8Q66-02B6"})),
              "0d992848d5a296f52813faf7020f5fb5");
}

TEST(DerivedUid, DiffersPerLocationSubstrateAndSalt) {
    Bytes salt(16, 1), other(16, 2);
    DieLocation a{"LOT1", 1, 0, 0, "S1"};
    // Determinism is the known-answer test above; here every field must change the UID,
    // including an empty substrate id against a non-empty one.
    EXPECT_NE(derive_uid(salt, a), derive_uid(salt, DieLocation{"LOT1", 1, 0, 1, "S1"}));
    EXPECT_NE(derive_uid(salt, a), derive_uid(salt, DieLocation{"LOT1", 1, 0, 0, ""}));
    EXPECT_NE(derive_uid(salt, a), derive_uid(salt, DieLocation{"LOT1", 2, 0, 0, "S1"}));
    EXPECT_NE(derive_uid(salt, a), derive_uid(salt, DieLocation{"LOT2", 1, 0, 0, "S1"}));
    EXPECT_NE(derive_uid(salt, a), derive_uid(salt, DieLocation{"LOT1", 1, 0, 0, "S2"}));
    EXPECT_NE(derive_uid(salt, a), derive_uid(other, a));
}

// Issue #11: a table header of 50,000 dotted parts (~100 KB) overflowed toml++'s stack (exit
// 139 from every command). The pre-scan refuses it, naming the file and the line.
TEST(JobFileBounds, HugeDottedHeaderIsRefusedNamingTheLine) {
    TempDir d{"job"};
    std::string header = "[a";
    for (int i = 0; i < 50000; ++i) header += ".a";
    header += "]\nx = 1\n";
    const auto p = write(d, std::string(kValid) + header);
    auto job = load_job(p);
    ASSERT_FALSE(job.ok());
    EXPECT_EQ(job.error().message, p.string() +
                                       ":27: a key of more than 32 dotted parts (the limit "
                                       "for a job file)");
    // The same as a dotted key of a key/value line and inside an inline table.
    std::string key = "k";
    for (int i = 0; i < 40; ++i) key += " . k";
    for (const std::string& line : {key + " = 1", "t = { " + key + " = 1 }"}) {
        auto r = load_job(write(d, std::string(kValid) + line + "\n"));
        ASSERT_FALSE(r.ok()) << line;
        EXPECT_NE(r.error().message.find("job.toml:27: a key of more than 32 dotted parts"),
                  std::string::npos)
            << r.error().message;
    }
}

TEST(JobFileBounds, DeepNestingIsRefusedNamingTheLine) {
    TempDir d{"job"};
    const std::string deep = "x = " + std::string(5000, '[') + std::string(5000, ']') + "\n";
    auto job = load_job(write(d, std::string(kValid) + deep));
    ASSERT_FALSE(job.ok());
    EXPECT_NE(job.error().message.find("job.toml:27: brackets nested deeper than 32"),
              std::string::npos)
        << job.error().message;
}

// Dots and brackets inside strings and comments are text, not structure; and the lexer reads
// a multi-line string's closing run of up to five quotes the way TOML does, so what follows on
// the line is still seen.
TEST(JobFileBounds, StringsAndCommentsDoNotCountButTheyCannotHideAKey) {
    TempDir d{"job"};
    const std::string dots(200, '.');
    const std::string fine = replace(
        replace(kValid, "organization = \"ACME Devices\"",
                "organization = \"" + dots + "\"   # [[[[ " + dots + "\ncountry = \"\"\"DE\"\"\""),
        "provision_bins = [\"01\", \"02\"]",
        "provision_bins = [\"01\", \"02\"]\nnote = \'\'\'[[[[[[\n" + std::string(100, '[') + dots +
            "\'\'\'");
    auto ok = load_job(write(d, fine));
    ASSERT_TRUE(ok.ok()) << ok.error().describe();
    EXPECT_EQ(ok->certificate.organization, dots);

    std::string key = "k";
    for (int i = 0; i < 40; ++i) key += ".k";
    auto hidden =
        load_job(write(d, std::string(kValid) + "t = { s = \"\"\"x\"\"\"\", " + key + " = 1 }\n"));
    ASSERT_FALSE(hidden.ok());
    EXPECT_NE(hidden.error().message.find("job.toml:27: a key of more than 32"), std::string::npos)
        << hidden.error().message;
}

TEST(JobFileBounds, OversizedFileAndDirectoryAreRefusedUnparsed) {
    TempDir d{"job"};
    const std::string big = std::string(kValid) + "# " + std::string(size_t{1} << 20, 'x') + "\n";
    const auto p = write(d, big);
    auto job = load_job(p);
    ASSERT_FALSE(job.ok());
    EXPECT_EQ(job.error().code, ErrorCode::kResourceExhausted);
    EXPECT_EQ(job.error().message,
              "job file " + p.string() + " is larger than the limit of 1048576 bytes");

    auto dir = load_job(d.path());
    ASSERT_FALSE(dir.ok());
    EXPECT_EQ(dir.error().message, "job file " + d.path().string() + " is a directory");
}

// Every text field is checked when the job is read (printable ASCII, at most 256 characters:
// what the ledger records), and the error names the file and the key.
TEST(JobFileBounds, TextFieldsArePrintableAsciiOfAtMost256) {
    TempDir d{"job"};
    struct Case {
        std::string from, to, message;
    } cases[] = {
        {"customer = \"ACME\"", "customer = \"ACM\u00c9\"",
         "job.customer: has the byte 0xc3 at character 4; only printable ASCII (0x20..0x7e) is "
         "allowed"},
        {"customer = \"ACME\"", "customer = \"AC\\tME\"", "job.customer: has the byte 0x09"},
        {"product = \"WPX-1000\"", "product = \"" + std::string(257, 'P') + "\"",
         "job.product: is 257 characters long; the limit is 256"},
        {"id = \"JOB-1\"", "id = \"JOB-\\u0001\"", "job.id: has the byte 0x01 at character 5"},
        {"organization = \"ACME Devices\"", "organization = \"ACME\\u00a0Devices\"",
         "certificate.organization: has the byte 0xc2"},
        {"provision_bins = [\"01\", \"02\"]", "provision_bins = [\"01\", \"0\\n2\"]",
         "map.provision_bins: element 2 has the byte 0x0a"},
        {"ledger = \"ledger.sqlite\"", "ledger = \"led\\u0007ger\"",
         "job.ledger: has a control character at character 4"},
    };
    for (const auto& c : cases) {
        const auto p = write(d, replace(kValid, c.from, c.to));
        auto job = load_job(p);
        ASSERT_FALSE(job.ok()) << c.to;
        EXPECT_NE(job.error().message.find(p.string() + ": " + c.message), std::string::npos)
            << job.error().message;
    }
    // 256 characters is allowed, and a path may hold what a file name can.
    auto edge = load_job(
        write(d, replace(replace(kValid, "product = \"WPX-1000\"",
                                 "product = \"" + std::string(256, 'P') + "\""),
                         "ledger = \"ledger.sqlite\"", "ledger = \"L\u00e9dger.sqlite\"")));
    ASSERT_TRUE(edge.ok()) << edge.error().describe();
    EXPECT_EQ(edge->product.size(), 256u);
    EXPECT_EQ(edge->ledger, d.path() / "L\u00e9dger.sqlite");
}

// wrapped_kik = "/dev/zero" grew run and serve without end: the read stops at a cap.
TEST(JobFileBounds, WrappedKikFromAnEndlessDeviceIsRefused) {
    TempDir d{"job"};
    auto job = load_job(write(d, replace(kValid, "\"kik.wrapped\"", "\"/dev/zero\"")));
    ASSERT_TRUE(job.ok()) << job.error().describe();
    auto kik = read_wrapped_kik(*job);
    ASSERT_FALSE(kik.ok());
    EXPECT_EQ(kik.error().message, "wrapped KIK /dev/zero is larger than the limit of 4096 bytes");

    // A well-formed file still reads, with surrounding blanks and CRLF.
    std::ofstream(d / "kik.wrapped") << "\r\n  " << std::string(80, 'a') << "\r\n";
    auto good = load_job(d / "job.toml");
    ASSERT_TRUE(good.ok());
    good = load_job(write(d, kValid));
    ASSERT_TRUE(good.ok());
    auto read = read_wrapped_kik(*good);
    ASSERT_TRUE(read.ok()) << read.error().describe();
    EXPECT_EQ(read->size(), 40u);
}
