// `waferprov ledger ...` as a floor engineer and a customer run it.
#include <sqlite3.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>

#include <gtest/gtest.h>

#include "test_support.hpp"
#include "waferprov/host/device_cert.hpp"

namespace waferprov::host {
namespace {

using namespace testing;

struct Run {
    int status = -1;
    std::string out;
};

Run waferprov(const std::string& args) {
    Run r;
    const std::string cmd = std::string(WAFERPROV_BINARY) + " " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) return r;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    const int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

class LedgerCli : public ::testing::Test {
protected:
    void SetUp() override {
        auto l = Ledger::open(db(), test_config(10));
        ASSERT_TRUE(l.ok());
        std::vector<NewIdentity> batch;
        for (uint64_t i = 0; i < 3; ++i)
            batch.push_back(real_identity(ca_, i, {"LOT7", 2, static_cast<int>(i), 0, "LOT7-02"}));
        ASSERT_TRUE((*l)->record_batch(batch).ok());
        ASSERT_TRUE((*l)->mark_delivered(std::vector<wpid1::Uid>{uid_of(1)}, "T1").ok());
        write_text(dir_ / "ca.pem", ca_.cert_pem());
        write_text(dir_ / "ca.key", ca_.key_pem());
    }
    std::string db() const { return (dir_ / "l.db").string(); }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    TempDir dir_;
    TestCa ca_;
};

TEST_F(LedgerCli, ExportThenVerifyTheExportAndTheLedger) {
    auto r = waferprov("ledger export --ledger " + db() + " --out " + path("x") + " --ca-key " +
                       path("ca.key") + " --ca-cert " + path("ca.pem"));
    ASSERT_EQ(r.status, 0) << r.out;
    r = waferprov("ledger verify --export " + path("x") + " --ca " + path("ca.pem"));
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("OK"), std::string::npos) << r.out;
    r = waferprov("ledger verify --ledger " + db());
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("3 records"), std::string::npos) << r.out;

    // A changed record line fails and names the file.
    const fs::path rec = dir_ / "x" / "records.jsonl";
    std::ifstream in(rec);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text.replace(text.find("\"state\":\"ISSUED\""), 16, "\"state\":\"VOIDED\"");
    write_text(rec, text);
    r = waferprov("ledger verify --export " + path("x") + " --ca " + path("ca.pem"));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("records.jsonl"), std::string::npos) << r.out;
}

TEST_F(LedgerCli, SummaryAndShow) {
    auto r = waferprov("ledger summary --ledger " + db());
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("ISSUED       2"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("DELIVERED    1"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("left 7"), std::string::npos) << r.out;
    r = waferprov("ledger show --ledger " + db() + " --uid " + to_hex(uid_of(1)));
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("LOT7 wafer 2 [LOT7-02] (1, 0)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("DELIVERED"), std::string::npos) << r.out;
    r = waferprov("ledger show --ledger " + db() + " --uid " + to_hex(uid_of(9)));
    EXPECT_EQ(r.status, 1) << r.out;
}

TEST_F(LedgerCli, ShowAtALocationAndListByState) {
    auto r = waferprov("ledger show --ledger " + db() + " --at LOT7:2:2:0");
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find(to_hex(uid_of(2))), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("LOT7 wafer 2 [LOT7-02] (2, 0)"), std::string::npos) << r.out;
    r = waferprov("ledger show --ledger " + db() + " --at LOT7:2:5:0");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("no record at LOT7 wafer 2 (5, 0)"), std::string::npos) << r.out;
    for (const char* bad :
         {"LOT7:2:1", "LOT7:2:x:0", ":2:1:0", "LOT7:2:1:0:", "LOT7:2:1:99999999999"}) {
        r = waferprov("ledger show --ledger " + db() + " --at " + bad);
        EXPECT_EQ(r.status, 2) << bad << "\n" << r.out;
        EXPECT_NE(r.out.find("expected LOT:WAFER:X:Y"), std::string::npos) << r.out;
    }
    EXPECT_EQ(
        waferprov("ledger show --ledger " + db() + " --at LOT7:2:1:0 --uid " + to_hex(uid_of(1)))
            .status,
        2);

    r = waferprov("ledger list --ledger " + db());
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 4) << r.out;  // header + 3 records
    EXPECT_EQ(r.out.rfind("uid\tlot\twafer\tsubstrate\tx\ty\tstate\tserial\ttester\tbin\n", 0), 0u)
        << r.out;
    EXPECT_NE(r.out.find(to_hex(uid_of(1)) + "\tLOT7\t2\tLOT7-02\t1\t0\tDELIVERED\t"),
              std::string::npos)
        << r.out;
    r = waferprov("ledger list --ledger " + db() + " --state DELIVERED");
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
    EXPECT_NE(r.out.find(to_hex(uid_of(1))), std::string::npos) << r.out;
    r = waferprov("ledger list --ledger " + db() + " --state SHIPPED");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find("SHIPPED"), std::string::npos) << r.out;
}

// `ledger void` on a real job: `job init`, `wafer synth`, `run` pre-generates the wafer.
TEST(LedgerVoid, AVoidedIdentityIsRecordedInTheChainAndKeepsCountingAgainstTheQuota) {
    TempDir dir;
    const std::string job = (dir / "job" / "job.toml").string();
    auto r = waferprov("job init --out " + (dir / "job").string() +
                       " --id VOIDJOB --tester SIM-01 --quota 100");
    ASSERT_EQ(r.status, 0) << r.out;
    // Before anything is issued there is nothing to void, and no ledger is created.
    r = waferprov("ledger void --job " + job + " --uid " + std::string(32, '0') +
                  " --reason scrapped");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("has no ledger"), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(dir / "job" / "ledger.sqlite"));
    r = waferprov("wafer synth --diameter 16 --die 2x2 --lot LOTV --wafer 3 --seed 5 --out " +
                  (dir / "w.xml").string());
    ASSERT_EQ(r.status, 0) << r.out;
    r = waferprov("run --job " + job + " --map " + (dir / "w.xml").string() +
                  " --no-progress --out " + (dir / "reports").string());
    ASSERT_EQ(r.status, 0) << r.out;

    r = waferprov("ledger list --job " + job);
    ASSERT_EQ(r.status, 0) << r.out;
    const size_t line = r.out.find('\n') + 1;  // the first record after the header
    const std::string uid = r.out.substr(line, 32);
    r = waferprov("ledger summary --job " + job);
    ASSERT_EQ(r.status, 0) << r.out;
    const std::string before = r.out;

    r = waferprov("ledger void --job " + job + " --uid " + uid +
                  " --reason 'die scrapped after a probe crash'");
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("voided UID " + uid), std::string::npos) << r.out;
    r = waferprov("ledger show --job " + job + " --uid " + uid);
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("state        VOID"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("void reason  die scrapped after a probe crash"), std::string::npos)
        << r.out;
    r = waferprov("ledger verify --job " + job);
    EXPECT_EQ(r.status, 0) << r.out;
    // The quota still counts it: used is unchanged, one record moved to VOID.
    r = waferprov("ledger summary --job " + job);
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("VOID         1"), std::string::npos) << r.out;
    const auto quota_line = [](const std::string& t) {
        const size_t at = t.find("quota ");
        return t.substr(at, t.find('\n', at) - at);
    };
    EXPECT_EQ(quota_line(r.out), quota_line(before));

    // Refusals name what was wrong and change nothing.
    r = waferprov("ledger void --job " + job + " --uid " + uid + " --reason again");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("VOIDED"), std::string::npos) << r.out;
    r = waferprov("ledger void --job " + job + " --uid " + std::string(32, 'f') + " --reason gone");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("UNKNOWN_UID"), std::string::npos) << r.out;
    r = waferprov("ledger void --job " + job + " --uid " + uid + " --reason ''");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("printable ASCII"), std::string::npos) << r.out;
    EXPECT_EQ(waferprov("ledger void --job " + job + " --uid " + uid).status, 2);
    EXPECT_EQ(waferprov("ledger void --job " + job + " --reason x").status, 2);
    EXPECT_EQ(waferprov("ledger void --ledger " + (dir / "job" / "ledger.sqlite").string() +
                        " --uid " + uid + " --reason x")
                  .status,
              2);
    EXPECT_EQ(waferprov("ledger void --job " + job + " --uid 12 --reason x").status, 2);
    r = waferprov("ledger verify --job " + job);
    EXPECT_EQ(r.status, 0) << r.out;
    auto l = Ledger::open_existing(dir / "job" / "ledger.sqlite");
    ASSERT_TRUE(l.ok());
    auto rep = (*l)->verify();
    ASSERT_TRUE(rep.ok());
    EXPECT_TRUE(rep->ok());
}

TEST_F(LedgerCli, ATamperedLedgerFailsVerification) {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(db().c_str(), &h), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(h, "UPDATE records SET bin = 'X'", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(h);
    auto r = waferprov("ledger verify --ledger " + db());
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("record UID " + to_hex(uid_of(0))), std::string::npos) << r.out;
    r = waferprov("ledger export --ledger " + db() + " --out " + path("x") + " --ca-key " +
                  path("ca.key") + " --ca-cert " + path("ca.pem"));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_FALSE(fs::exists(dir_ / "x"));
}

TEST_F(LedgerCli, UsageErrorsExitTwo) {
    EXPECT_EQ(waferprov("ledger").status, 2);
    EXPECT_EQ(waferprov("ledger frobnicate --ledger " + db()).status, 2);
    EXPECT_EQ(waferprov("ledger verify").status, 2);
    EXPECT_EQ(waferprov("ledger verify --export " + path("x")).status, 2);
    EXPECT_EQ(waferprov("ledger export --ledger " + db()).status, 2);
    EXPECT_EQ(waferprov("ledger show --ledger " + db() + " --bogus").status, 2);
    EXPECT_EQ(waferprov("ledger verify --ledger " + path("missing.db")).status, 1);
}

// The export check accepts the certificates host/ca really issues (the minimal test
// certificates elsewhere only imitate them).
TEST_F(LedgerCli, ExportOfHostCaDeviceCertificatesVerifies) {
    auto builder = DeviceCertBuilder::create(ca_);
    ASSERT_TRUE(builder.ok()) << builder.error().describe();
    auto l = Ledger::open(path("real.db"), test_config(10));
    ASSERT_TRUE(l.ok());
    std::vector<NewIdentity> batch;
    for (uint64_t i = 0; i < 3; ++i) {
        NewIdentity id =
            real_identity(ca_, 100 + i, {"LOT9", 1, static_cast<int>(i), 4, "LOT9-01"});
        id.serial = device_serial(builder->ca_ski(), id.public_key);
        DeviceCertRequest req;
        req.uid = id.uid;
        req.location = id.loc;
        req.product = "WP-TEST";
        req.public_key = id.public_key;
        req.serial = id.serial;
        req.not_before = std::chrono::system_clock::now();
        auto der = builder->build(req);
        ASSERT_TRUE(der.ok()) << der.error().describe();
        id.certificate_der = *der;
        batch.push_back(id);
    }
    ASSERT_TRUE((*l)->record_batch(batch).ok());
    ASSERT_TRUE((*l)->export_to(dir_ / "real", ca_).ok());
    auto rep = Ledger::verify_export(dir_ / "real", dir_ / "ca.pem");
    ASSERT_TRUE(rep.ok());
    EXPECT_TRUE(rep->ok()) << join(rep->problems);
}

// A ledger written by the build before substrate ids (schema version 2, kept in
// tests/data/ledger-v2 with the two maps it was run from and its development CA): refused by
// name with the migrate command, never reinterpreted; migrated only when every wafer has its
// map; afterwards it verifies, exports and verifies as an export, with the MIGRATE event in
// its chain.
class LedgerMigrate : public ::testing::Test {
protected:
    void SetUp() override {
        const fs::path data = fs::path(WAFERPROV_SOURCE_DIR) / "host/ledger/tests/data/ledger-v2";
        for (const char* f : {"ledger.sqlite", "w3.xml", "w4.sinf", "ca.pem", "ca.key"})
            fs::copy_file(data / f, dir_ / f);
    }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    std::string bytes_of(const std::string& name) const {
        std::ifstream in(dir_ / name, std::ios::binary);
        return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    }
    TempDir dir_;
};

TEST_F(LedgerMigrate, AnOldLedgerIsRefusedByNameWithTheCommandThatMigratesIt) {
    const std::string before = bytes_of("ledger.sqlite");
    for (const std::string cmd : {"ledger verify --ledger ", "ledger summary --ledger "}) {
        auto r = waferprov(cmd + path("ledger.sqlite"));
        EXPECT_EQ(r.status, 1) << r.out;
        EXPECT_NE(r.out.find("written before substrate ids"), std::string::npos) << r.out;
        EXPECT_NE(r.out.find("waferprov ledger migrate --ledger " + path("ledger.sqlite")),
                  std::string::npos)
            << r.out;
    }
    auto l = Ledger::open(path("ledger.sqlite"),
                          LedgerConfig{"LEGACY", "Development customer", "WPDEMO", 1000});
    ASSERT_FALSE(l.ok());
    EXPECT_EQ(l.error().code, ErrorCode::kUnsupported);
    EXPECT_EQ(bytes_of("ledger.sqlite"), before);
}

TEST_F(LedgerMigrate, MigrationNeedsTheMapOfEveryWaferAndChangesNothingWithout) {
    const std::string before = bytes_of("ledger.sqlite");
    auto r =
        waferprov("ledger migrate --ledger " + path("ledger.sqlite") + " --map " + path("w3.xml"));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("no map was given for LEGACY1 wafer 4"), std::string::npos) << r.out;
    EXPECT_EQ(bytes_of("ledger.sqlite"), before);
    // The same substrate id for both wafers is refused too.
    r = waferprov("ledger migrate --ledger " + path("ledger.sqlite") + " --map " + path("w3.xml") +
                  " --map " + path("w3.xml") + " --wafer 4");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_EQ(bytes_of("ledger.sqlite"), before);
}

TEST_F(LedgerMigrate, AMigratedLedgerVerifiesAndExportsWithItsSubstrateIds) {
    auto r = waferprov("ledger migrate --ledger " + path("ledger.sqlite") + " --map " +
                       path("w3.xml") + " --map " + path("w4.sinf"));
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("LEGACY1 wafer 3: substrate LEGACY1-03"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("24 records on 2 wafer(s)"), std::string::npos) << r.out;
    r = waferprov("ledger verify --ledger " + path("ledger.sqlite"));
    EXPECT_EQ(r.status, 0) << r.out;
    // + three MIGRATE events: 2 -> 3 (substrate ids), 3 -> 4 (one DELIVER event per touchdown),
    // 4 -> 5 (packaged parts)
    EXPECT_NE(r.out.find("28 events, 24 records"), std::string::npos) << r.out;
    r = waferprov("ledger migrate --ledger " + path("ledger.sqlite") + " --map " + path("w3.xml") +
                  " --map " + path("w4.sinf"));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("already schema version 5"), std::string::npos) << r.out;

    auto l = Ledger::open_existing(path("ledger.sqlite"));
    ASSERT_TRUE(l.ok()) << l.error().describe();
    auto wafer4 = (*l)->list_wafer("LEGACY1", 4);
    ASSERT_TRUE(wafer4.ok());
    ASSERT_EQ(wafer4->size(), 12u);
    for (const auto& rec : *wafer4) EXPECT_EQ(rec.loc.substrate, "LEGACY1-04");
    l->reset();

    r = waferprov("ledger export --ledger " + path("ledger.sqlite") + " --out " + path("x") +
                  " --ca-key " + path("ca.key") + " --ca-cert " + path("ca.pem"));
    ASSERT_EQ(r.status, 0) << r.out;
    r = waferprov("ledger verify --export " + path("x") + " --ca " + path("ca.pem"));
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(bytes_of("x/records.jsonl").find("\"substrate\":\"LEGACY1-03\""), std::string::npos);
    EXPECT_NE(bytes_of("x/events.jsonl").find("\"type\":\"MIGRATE\""), std::string::npos);
}

// A ledger written by the build before one DELIVER event per touchdown (schema version 3, kept
// in tests/data/ledger-v3 with its anchor and development CA; its README says how it was made):
// refused by name with the migrate command, never reinterpreted; migrated without maps; its old
// per-die DELIVER events still replay, and new deliveries are one event per call.
// The files of an old ledger fixture (tests/data/<name>) copied into a temporary directory.
class OldLedger : public ::testing::Test {
protected:
    explicit OldLedger(const char* name) : name_(name) {}
    void SetUp() override {
        const fs::path data = fs::path(WAFERPROV_SOURCE_DIR) / "host/ledger/tests/data" / name_;
        for (const char* f :
             {"ledger.sqlite", "ledger.sqlite.anchor", "w7.xml", "ca.pem", "ca.key", "root.pem"})
            fs::copy_file(data / f, dir_ / f);
        fs::permissions(dir_ / "ca.key", fs::perms::owner_read | fs::perms::owner_write);
    }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    std::string bytes_of(const std::string& name) const {
        std::ifstream in(dir_ / name, std::ios::binary);
        return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    }
    const char* name_;
    TempDir dir_;
};

class LedgerMigrate3 : public OldLedger {
protected:
    LedgerMigrate3() : OldLedger("ledger-v3") {}
    static LedgerConfig config() {
        return LedgerConfig{"LEDGER3", "Development customer", "WPDEMO", 1000};
    }
};

TEST_F(LedgerMigrate3, AVersion3LedgerIsRefusedByNameWithTheCommandThatMigratesIt) {
    const std::string before = bytes_of("ledger.sqlite");
    for (const std::string cmd : {"ledger verify --ledger ", "ledger summary --ledger "}) {
        auto r = waferprov(cmd + path("ledger.sqlite"));
        EXPECT_EQ(r.status, 1) << r.out;
        EXPECT_NE(r.out.find("one DELIVER event per die (schema version 3)"), std::string::npos)
            << r.out;
        EXPECT_NE(r.out.find("waferprov ledger migrate --ledger " + path("ledger.sqlite")),
                  std::string::npos)
            << r.out;
    }
    auto l = Ledger::open(path("ledger.sqlite"), config());
    ASSERT_FALSE(l.ok());
    EXPECT_EQ(l.error().code, ErrorCode::kUnsupported);
    // Maps belong to the migration from version 2 only.
    auto r =
        waferprov("ledger migrate --ledger " + path("ledger.sqlite") + " --map " + path("w7.xml"));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("takes no maps"), std::string::npos) << r.out;
    EXPECT_EQ(bytes_of("ledger.sqlite"), before);
}

TEST_F(LedgerMigrate3, AMigratedLedgerKeepsItsHistoryAndDeliversOneEventPerCall) {
    auto r = waferprov("ledger migrate --ledger " + path("ledger.sqlite"));
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("from schema version 3 to 5"), std::string::npos) << r.out;
    r = waferprov("ledger verify --ledger " + path("ledger.sqlite"));
    ASSERT_EQ(r.status, 0) << r.out;
    // + two MIGRATE events (3 -> 4, 4 -> 5)
    EXPECT_NE(r.out.find("70 events, 12 records"), std::string::npos) << r.out;
    r = waferprov("ledger migrate --ledger " + path("ledger.sqlite"));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("already schema version 5"), std::string::npos) << r.out;

    auto l = Ledger::open(path("ledger.sqlite"), config());
    ASSERT_TRUE(l.ok()) << l.error().describe();
    // Not a ledger from before substrate ids: its UIDs are all derived with them.
    auto migrated = (*l)->migrated();
    ASSERT_TRUE(migrated.ok());
    EXPECT_FALSE(*migrated);
    // The per-die DELIVER events before the MIGRATE event still count: 16 deliveries of 12
    // dies, the 4 retests among them (the fixture's README).
    auto tally = (*l)->delivery_tally();
    ASSERT_TRUE(tally.ok());
    uint32_t deliveries = 0;
    for (const auto& [uid, n] : tally->deliveries) deliveries += n;
    EXPECT_EQ(tally->deliveries.size(), 12u);
    EXPECT_EQ(deliveries, 16u);
    auto retests = (*l)->retests();
    ASSERT_TRUE(retests.ok());
    uint32_t again = 0;
    for (const auto& [uid, n] : *retests) again += n;
    EXPECT_EQ(again, 4u);

    // The die that failed last is retested: one DELIVER event, in the new form.
    auto wafer = (*l)->list_wafer("LOT3", 7);
    ASSERT_TRUE(wafer.ok());
    std::vector<LedgerRecord> failed;
    for (const auto& rec : *wafer)
        if (rec.state == DieState::kFailed) failed.push_back(rec);
    ASSERT_EQ(failed.size(), 1u);
    const LedgerRecord die = failed.front();
    const Delivery d{die.uid, die.loc, 2};
    auto done = (*l)->deliver(std::vector<Delivery>{d, d}, "SIM-01");
    ASSERT_TRUE(done.ok()) << done.error().describe();
    ASSERT_EQ(done->size(), 2u);
    EXPECT_EQ((*done)[0].status, TransitionStatus::kOk);
    EXPECT_EQ((*done)[1].status, TransitionStatus::kInvalidArgument);  // the same die again
    tally = (*l)->delivery_tally();
    ASSERT_TRUE(tally.ok());
    EXPECT_EQ(tally->deliveries.at(die.uid), 3u);  // delivered, failed, retested: twice before
    retests = (*l)->retests();
    ASSERT_TRUE(retests.ok());
    EXPECT_EQ(retests->at(die.uid), 2u);
    l->reset();

    r = waferprov("ledger verify --ledger " + path("ledger.sqlite"));
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("71 events, 12 records"), std::string::npos) << r.out;
    r = waferprov("ledger export --ledger " + path("ledger.sqlite") + " --out " + path("x") +
                  " --ca-key " + path("ca.key") + " --ca-cert " + path("ca.pem"));
    ASSERT_EQ(r.status, 0) << r.out;
    r = waferprov("ledger verify --export " + path("x") + " --ca " + path("ca.pem"));
    EXPECT_EQ(r.status, 0) << r.out;
    const std::string events = bytes_of("x/events.jsonl");
    EXPECT_NE(events.find("\"from_format\":\"waferprov-ledger/3\""), std::string::npos);
    EXPECT_NE(events.find("{\"dies\":[{\"after\":"), std::string::npos);
}

// A ledger written by the build before parts provisioned at final test (schema version 4, kept
// in tests/data/ledger-v4 with its anchor and development CA; its README says how it was made):
// refused by name with the migrate command; migrated with its history and its final-test rows
// kept; then it takes a packaged part.
class LedgerMigrate4 : public OldLedger {
protected:
    LedgerMigrate4() : OldLedger("ledger-v4") {}
    static LedgerConfig config() {
        return LedgerConfig{"LEDGER4", "Development customer", "WPDEMO", 1000};
    }
};

TEST_F(LedgerMigrate4, AVersion4LedgerIsRefusedByNameWithTheCommandThatMigratesIt) {
    const std::string before = bytes_of("ledger.sqlite");
    auto r = waferprov("ledger verify --ledger " + path("ledger.sqlite"));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("holds only parts on wafers (schema version 4)"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("waferprov ledger migrate --ledger " + path("ledger.sqlite")),
              std::string::npos)
        << r.out;
    auto l = Ledger::open(path("ledger.sqlite"), config());
    ASSERT_FALSE(l.ok());
    EXPECT_EQ(l.error().code, ErrorCode::kUnsupported);
    EXPECT_EQ(bytes_of("ledger.sqlite"), before);
}

TEST_F(LedgerMigrate4, AMigratedLedgerKeepsItsHistoryAndFinalTestRowsAndTakesPackagedParts) {
    auto r = waferprov("ledger migrate --ledger " + path("ledger.sqlite"));
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("from schema version 4 to 5"), std::string::npos) << r.out;
    // The anchor (written before the migration) still matches the chain's first 59 events: the
    // history is unchanged, one MIGRATE event after it.
    r = waferprov("ledger verify --ledger " + path("ledger.sqlite"));
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("60 events, 12 records"), std::string::npos) << r.out;

    auto l = Ledger::open(path("ledger.sqlite"), config());
    ASSERT_TRUE(l.ok()) << l.error().describe();
    auto finals = (*l)->list_final();
    ASSERT_TRUE(finals.ok());
    EXPECT_EQ(finals->size(), 11u);
    size_t verified = 0, mismatched = 0;
    for (const auto& f : *finals) {
        verified += f.state == FinalState::kVerified;
        mismatched += f.state == FinalState::kMismatch;
    }
    EXPECT_EQ(verified, 10u);
    EXPECT_EQ(mismatched, 1u);

    // A packaged part (fake certificate bytes: the ledger does not parse them) provisioned in
    // a handler site: PROVISIONED, no wafer position, and the chain verifies.
    NewIdentity part = fake_identity(900, "LOT4", 7, 0x77);
    part.loc = DieLocation{"LOT4", 0, 0, 0, "", true};
    const int site = 3;
    const FinalLocation where{"LOT4", "HDL-1", 3, "", -1, -1};
    auto done = (*l)->record_and_deliver(std::span(&part, 1), std::span(&site, 1), "SIM-01",
                                         std::span(&where, 1));
    ASSERT_TRUE(done.ok()) << done.error().describe();
    EXPECT_EQ(done->at(0).recorded.outcome, RecordOutcome::kIssued);
    auto fin = (*l)->find_final(part.uid);
    ASSERT_TRUE(fin.ok() && fin->has_value());
    EXPECT_EQ((*fin)->state, FinalState::kProvisioned);
    l->reset();
    r = waferprov("ledger verify --ledger " + path("ledger.sqlite"));
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("63 events, 13 records"), std::string::npos)
        << r.out;  // + ISSUE, DELIVER, FINAL_PROVISION
    r = waferprov("ledger list --ledger " + path("ledger.sqlite"));
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find(to_hex(part.uid) + "\tLOT4\t-\t\t-\t-\tDELIVERED"), std::string::npos)
        << r.out;
}

}  // namespace
}  // namespace waferprov::host
