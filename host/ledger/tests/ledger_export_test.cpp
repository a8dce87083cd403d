// Signed exports and their verification as a customer runs it (no ledger).
#include <sqlite3.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace waferprov::host {
namespace {

using namespace testing;
using nlohmann::json;

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

// The soak build of this file (every byte changed) gets its own suite name so that CTest's
// test names stay unique.
#ifdef WAFERPROV_LEDGER_EXHAUSTIVE
#define LedgerExport LedgerExportSoak
#endif

// A small ledger with every kind of event and state, exported.
class LedgerExport : public ::testing::Test {
protected:
    void SetUp() override {
        auto l = open_ledger(dir_ / "l.db", test_config(6));
        ASSERT_TRUE(l.ok());
        ledger_ = std::move(*l);
        std::vector<NewIdentity> batch;
        // Offered out of order; exported by lot, wafer, y, x.
        batch.push_back(real_identity(ca_, 1, {"LOTB", 2, 0, 0, "LOTB-2"}));
        batch.push_back(real_identity(ca_, 2, {"LOTA", 1, 5, 1, "LOTA-1"}));
        batch.push_back(real_identity(ca_, 3, {"LOTA", 1, -3, 1, "LOTA-1"}));
        batch.push_back(real_identity(ca_, 4, {"LOTA", 1, 2, 0, "LOTA-1"}));
        auto r = ledger_->record_batch(batch);
        ASSERT_TRUE(r.ok());
        ASSERT_TRUE(ledger_->record_batch(std::vector<NewIdentity>{batch[1]}).ok());  // REISSUE
        ASSERT_TRUE(
            ledger_->mark_delivered(std::vector<wpid1::Uid>{uid_of(1), uid_of(2), uid_of(3)}, "T1")
                .ok());
        ASSERT_TRUE(mark_result(*ledger_, uid_of(1), true, "01", "T1").ok());
        ASSERT_TRUE(mark_result(*ledger_, uid_of(2), false, "07", "T1").ok());
        ASSERT_TRUE(ledger_->void_identity(uid_of(4), "scrapped").ok());
        auto more =
            std::vector<NewIdentity>{real_identity(ca_, 5, {"LOTA", 1, 2, 0, "LOTA-1"}),  // ALARM
                                     real_identity(ca_, 6, {"LOTC", 1, 0, 0, "LOTC-1"}),
                                     real_identity(ca_, 7, {"LOTC", 1, 1, 0, "LOTC-1"}),
                                     real_identity(ca_, 8, {"LOTC", 1, 2, 0, "LOTC-1"})};  // quota
        ASSERT_TRUE(ledger_->record_batch(more).ok());
        write_text(dir_ / "ca.pem", ca_.cert_pem());
    }

    fs::path export_dir() const { return dir_ / "export"; }
    Status do_export() { return ledger_->export_to(export_dir(), ca_); }
    VerifyReport verify(const fs::path& dir, const fs::path& ca) {
        auto r = Ledger::verify_export(dir, ca);
        EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
        return r.ok() ? *r : VerifyReport{0, 0, {}, {"error"}};
    }

    TempDir dir_;
    TestCa ca_;
    std::unique_ptr<Ledger> ledger_;
};

TEST_F(LedgerExport, WritesRecordsEventsAndASignedManifestThatVerify) {
    ASSERT_TRUE(do_export().ok());
    std::set<std::string> files;
    for (const auto& e : fs::directory_iterator(export_dir())) files.insert(e.path().filename());
    EXPECT_EQ(files, (std::set<std::string>{"records.jsonl", "events.jsonl", "manifest.json",
                                            "manifest.sig"}));
    // No temporary directory left next to it.
    size_t siblings = 0;
    for (const auto& e : fs::directory_iterator(dir_.path())) siblings += e.is_directory();
    EXPECT_EQ(siblings, 1u);

    const auto records = lines_of(slurp(export_dir() / "records.jsonl"));
    ASSERT_EQ(records.size(), 6u);
    std::vector<std::string> order;
    for (const auto& line : records) {
        const json j = json::parse(line);
        std::set<std::string> keys;
        for (auto it = j.begin(); it != j.end(); ++it) keys.insert(it.key());
        EXPECT_EQ(keys,
                  (std::set<std::string>{"uid", "lot", "wafer", "substrate", "x", "y", "serial",
                                         "state", "public_key", "wrapped_key", "certificate"}));
        order.push_back(j["uid"].get<std::string>().substr(30));
        EXPECT_EQ(j["public_key"].get<std::string>().size(), 130u);
        EXPECT_EQ(j["wrapped_key"].get<std::string>().size(), 80u);
    }
    // LOTA w1 (2,0) (-3,1) (5,1), LOTB w2 (0,0), LOTC w1 (0,0) (1,0).
    EXPECT_EQ(order, (std::vector<std::string>{"04", "03", "02", "01", "06", "07"}));

    const json m = json::parse(slurp(export_dir() / "manifest.json"));
    EXPECT_EQ(m["job_id"], "JOB-1");
    EXPECT_EQ(m["customer"], "ACME");
    EXPECT_EQ(m["product"], "WP-TEST");
    EXPECT_EQ(m["quota"], 6);
    EXPECT_EQ(m["quota_used"], 6);
    EXPECT_EQ(m["records"], 6);
    EXPECT_EQ(m["counts"]["PROGRAMMED"], 1);
    EXPECT_EQ(m["counts"]["FAILED"], 1);
    EXPECT_EQ(m["counts"]["DELIVERED"], 1);
    EXPECT_EQ(m["counts"]["VOID"], 1);
    EXPECT_EQ(m["counts"]["ISSUED"], 2);
    const auto head = *ledger_->head();
    EXPECT_EQ(m["chain"]["head"], to_hex(head.hash));
    EXPECT_EQ(m["chain"]["events"], head.events);
    EXPECT_EQ(lines_of(slurp(export_dir() / "events.jsonl")).size(), head.events);

    const auto rep = verify(export_dir(), dir_ / "ca.pem");
    EXPECT_TRUE(rep.ok()) << join(rep.problems);
    EXPECT_EQ(rep.records, 6u);
    EXPECT_EQ(rep.head.hash, head.hash);
}

TEST_F(LedgerExport, RefusesToOverwriteAnExistingDirectory) {
    fs::create_directories(export_dir());
    auto st = do_export();
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("already exists"), std::string::npos);
    EXPECT_TRUE(fs::is_empty(export_dir()));
}

// Which bytes to change. The default suite: every byte of manifest.sig, every 3rd byte of
// manifest.json, and in the JSON-lines files the first and last byte and the newline of every
// line plus every 31st byte. The soak variant (ledger_export_soak_test, built with
// WAFERPROV_LEDGER_EXHAUSTIVE) changes every byte of every file: one verification costs a few
// milliseconds of OpenSSL decoding, too slow for ~25k of them in the default suite.
bool byte_selected(const std::string& name, const std::string& text, size_t i) {
#ifdef WAFERPROV_LEDGER_EXHAUSTIVE
    (void)name, (void)text, (void)i;
    return true;
#else
    if (name == "manifest.sig") return true;
    if (name == "manifest.json") return i % 3 == 0;
    if (i % 31 == 0 || text[i] == '\n') return true;
    if (i == 0 || text[i - 1] == '\n') return true;     // first byte of a line
    return i + 1 < text.size() && text[i + 1] == '\n';  // last byte of a line
#endif
}

TEST_F(LedgerExport, ChangingAnyByteOfAnyFileFailsVerification) {
    ASSERT_TRUE(do_export().ok());
    size_t checked = 0;
    for (const char* name : {"manifest.sig", "manifest.json", "records.jsonl", "events.jsonl"}) {
        const fs::path file = export_dir() / name;
        const std::string original = slurp(file);
        for (size_t i = 0; i < original.size(); ++i) {
            if (!byte_selected(name, original, i)) continue;
            // The low bit flipped (a "nearby" character), and for every 5th byte also the top
            // bit (a non-ASCII byte).
            for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}}) {
#ifndef WAFERPROV_LEDGER_EXHAUSTIVE
                if (mask == 0x80 && i % 5 != 0) continue;
#endif
                std::string changed = original;
                changed[i] = static_cast<char>(static_cast<uint8_t>(changed[i]) ^ mask);
                write_text(file, changed);
                const auto rep = verify(export_dir(), dir_ / "ca.pem");
                ASSERT_FALSE(rep.ok()) << name << " byte " << i << " mask " << int(mask);
                ++checked;
            }
        }
        // Truncation and an appended byte as well.
        write_text(file, original.substr(0, original.size() - 1));
        EXPECT_FALSE(verify(export_dir(), dir_ / "ca.pem").ok()) << name;
        write_text(file, original + "\n");
        EXPECT_FALSE(verify(export_dir(), dir_ / "ca.pem").ok()) << name;
        write_text(file, original);
    }
    EXPECT_TRUE(verify(export_dir(), dir_ / "ca.pem").ok());
    std::cout << checked << " single-byte changes, all detected\n";
}

TEST_F(LedgerExport, MissingFilesFailVerification) {
    ASSERT_TRUE(do_export().ok());
    for (const char* name : {"manifest.sig", "manifest.json", "records.jsonl", "events.jsonl"}) {
        const fs::path file = export_dir() / name;
        const std::string original = slurp(file);
        fs::remove(file);
        const auto rep = verify(export_dir(), dir_ / "ca.pem");
        EXPECT_FALSE(rep.ok()) << name;
        write_text(file, original);
    }
}

TEST_F(LedgerExport, AnotherCaDoesNotVerifyButABundleWithTheCaDoes) {
    ASSERT_TRUE(do_export().ok());
    TestCa other("another CA");
    write_text(dir_ / "other.pem", other.cert_pem());
    auto rep = verify(export_dir(), dir_ / "other.pem");
    EXPECT_FALSE(rep.ok());
    EXPECT_NE(join(rep.problems).find("not in"), std::string::npos) << join(rep.problems);
    EXPECT_NE(join(rep.problems).find("manifest.sig"), std::string::npos) << join(rep.problems);
    // A bundle: the root first, then the manufacturer CA.
    write_text(dir_ / "bundle.pem", other.cert_pem() + ca_.cert_pem());
    rep = verify(export_dir(), dir_ / "bundle.pem");
    EXPECT_TRUE(rep.ok()) << join(rep.problems);
    write_text(dir_ / "empty.pem", "no certificates here\n");
    EXPECT_FALSE(Ledger::verify_export(export_dir(), dir_ / "empty.pem").ok());
}

TEST_F(LedgerExport, ARecordWhoseCertificateDoesNotMatchIsReported) {
    // A ledger whose stored certificate was made for another key: the export verifies the
    // chain (the ledger recorded what it was given) but the certificate check names the die.
    TempDir d;
    auto l = open_ledger(d / "l.db", test_config(5));
    ASSERT_TRUE(l.ok());
    NewIdentity a = real_identity(ca_, 1, {"L", 1, 0, 0, "L-1"});
    NewIdentity b = real_identity(ca_, 2, {"L", 1, 1, 0, "L-1"});
    a.certificate_der = b.certificate_der;  // wrong key, serial and subject for a
    ASSERT_TRUE((*l)->record_batch(std::vector<NewIdentity>{a, b}).ok());
    ASSERT_TRUE((*l)->export_to(d / "x", ca_).ok());
    const auto rep = verify(d / "x", dir_ / "ca.pem");
    const std::string all = join(rep.problems);
    EXPECT_NE(all.find("public key is not public_key"), std::string::npos) << all;
    EXPECT_NE(all.find("serial number is not serial"), std::string::npos) << all;
    EXPECT_NE(all.find("serialNumber"), std::string::npos) << all;
    EXPECT_NE(all.find(to_hex(uid_of(1))), std::string::npos) << all;
    EXPECT_EQ(all.find("(UID " + to_hex(uid_of(2)) + ")"), std::string::npos) << all;
}

TEST_F(LedgerExport, ATamperedLedgerIsNotExported) {
    ledger_.reset();
    ASSERT_EQ(sqlite_edit(dir_ / "l.db",
                          "UPDATE records SET state = 'PROGRAMMED' WHERE state = 'ISSUED'"),
              SQLITE_OK);
    auto l = open_existing_ledger(dir_ / "l.db");
    ASSERT_TRUE(l.ok());
    auto st = (*l)->export_to(export_dir(), ca_);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, ErrorCode::kIntegrityFailure);
    EXPECT_FALSE(fs::exists(export_dir()));
}

}  // namespace
}  // namespace waferprov::host
