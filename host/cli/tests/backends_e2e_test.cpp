// The host on every backend, with real components only: `waferprov run` and `serve` as a floor
// engineer runs them, on the software engine, on the Verilated card in-process, and on the card
// over the xdma transport against waferprov-cardsim (the emulated XDMA card, a FUSE mount).
//
//   - one job (KIK, fixed development entropy) and one map give byte-identical identity records
//     (UID, location, Q, wrapped key, serial) on all three backends, read from the ledgers with
//     SQLite directly and checked against the OpenSSL reference model with the plaintext KIK;
//   - each fault the emulator injects ends in a clear error, with no certificate for the bad
//     record and an ALARM in the ledger where the driver refused a record;
//   - kill -9 of `run` on the verilator backend, then a rerun, gives every die exactly once;
//   - `serve --backend verilator` hands a small wafer to the tester simulator end to end.
//
// Where /dev/fuse is absent the xdma tests say so and skip.
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cardsim_fixture.hpp"
#include "e2e_support.hpp"
#include "waferprov/reference.hpp"

using namespace waferprov;
namespace e2e = waferprov::tester::e2e;
namespace ref = waferprov::reference;
namespace fs = std::filesystem;
using e2e::read_text;

namespace {

const fs::path kBinary = WAFERPROV_BINARY;

// 96 hex digits: the development builds' fixed instantiate/reseed entropy, so that every
// backend draws the same scalars.
constexpr const char* kFixedEntropy =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f";

// The emulated card runs about 100 dies/s (slower on a loaded machine): generous deadlines
// per die; a stall is still caught within seconds.
const std::string kCardsimTimeouts = "timeout_ms=60000,per_die_us=200000";

int waferprov_run(const std::vector<std::string>& args, const fs::path& log) {
    std::vector<std::string> argv = {kBinary.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return waferprov::testing::run_process(
        argv, log, std::chrono::seconds(300) * waferprov::testing::kSlowdown);
}

// Rows of a query on a ledger file, read with SQLite itself (not through the ledger's code):
// text as is, blobs as lower-case hex, integers in decimal.
std::vector<std::vector<std::string>> query(const fs::path& file, const std::string& sql) {
    std::vector<std::vector<std::string>> rows;
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        ADD_FAILURE() << file << ": " << sqlite3_errmsg(db);
        sqlite3_close(db);
        return rows;
    }
    sqlite3_busy_timeout(db, 10000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
        ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
        sqlite3_close(db);
        return rows;
    }
    int rc = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        std::vector<std::string> row;
        for (int c = 0; c < sqlite3_column_count(st); ++c) {
            if (sqlite3_column_type(st, c) == SQLITE_BLOB) {
                const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(st, c));
                row.push_back(
                    to_hex(ByteSpan(p, static_cast<size_t>(sqlite3_column_bytes(st, c)))));
            } else {
                const auto* t = sqlite3_column_text(st, c);
                row.emplace_back(t == nullptr ? "" : reinterpret_cast<const char*>(t));
            }
        }
        rows.push_back(std::move(row));
    }
    if (rc != SQLITE_DONE) ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rows;
}

size_t record_count(const fs::path& ledger) {
    std::error_code ec;
    if (!fs::exists(ledger, ec)) return 0;
    // A run that is creating the ledger: the file is there before its tables are.
    auto tables = query(ledger, "SELECT count(*) FROM sqlite_master WHERE name = 'records'");
    if (tables.empty() || tables[0][0] == "0") return 0;
    auto rows = query(ledger, "SELECT count(*) FROM records");
    return rows.empty() ? 0 : std::stoul(rows[0][0]);
}

// The identity records of a ledger by location: uid, public key, wrapped key, serial.
using Identities = std::map<std::string, std::vector<std::string>>;
Identities identities(const fs::path& ledger) {
    Identities out;
    for (auto& r : query(ledger,
                         "SELECT lot, wafer, x, y, substrate, uid, public_key, wrapped_key, serial "
                         "FROM records"))
        out[r[0] + "/" + r[1] + "/" + r[2] + "/" + r[3] + "/" + r[4]] = {r[5], r[6], r[7], r[8]};
    return out;
}

// The die's own check (reference model, OpenSSL) of a ledger row: "" when the wrapped key
// unwraps under KEK(KIK, UID) to the d with d*G = Q.
std::string die_check(ByteSpan kik, const std::vector<std::string>& id) {
    wpid1::IdentityRecord r;
    const Bytes uid = from_hex(id[0], "uid").value();
    const Bytes pub = from_hex(id[1], "pub").value();
    const Bytes wrapped = from_hex(id[2], "wrapped").value();
    if (uid.size() != 16 || pub.size() != 65 || wrapped.size() != 40) return "bad sizes";
    std::copy(uid.begin(), uid.end(), r.uid.begin());
    std::copy(pub.begin() + 1, pub.begin() + 33, r.x.begin());
    std::copy(pub.begin() + 33, pub.end(), r.y.begin());
    std::copy(wrapped.begin(), wrapped.end(), r.wrapped.begin());
    return ref::die_check(kik, r);
}

Bytes read_kik(const fs::path& job_dir) {
    return from_hex(read_text(job_dir / "kik.hex").substr(0, 64), "kik").value();
}

// A job for every backend: `job init --backend xdma` wraps the KIK under the development test
// key the emulated card carries, and writes no device.key, so software and verilator use that
// key too. A 50 mm wafer of 6 x 6 mm dies: a few dozen dies.
struct WaferJob {
    waferprov::testing::TempDir tmp{"backends_e2e"};
    fs::path job, map, log;
    size_t dies = 0;

    WaferJob() {
        job = tmp.path() / "job";
        map = tmp.path() / "wafer.xml";
        log = tmp.path() / "setup.log";
        EXPECT_EQ(
            waferprov_run(
                {"job", "init", "--out", job.string(), "--id", "BE2E", "--backend", "xdma"}, log),
            0)
            << read_text(log);
        EXPECT_FALSE(fs::exists(job / "device.key")) << "a card carries its own device key";
        EXPECT_EQ(waferprov_run({"wafer", "synth", "--diameter", "50", "--die", "6x6", "--lot",
                                 "LOTBE", "--wafer", "1", "--out", map.string()},
                                log),
                  0)
            << read_text(log);
        auto m = host::read_map_file(map);
        EXPECT_TRUE(m.ok());
        if (m.ok()) dies = host::select_dies(*m, {"01"})->size();
    }

    // `run` on `backend` into its own ledger and reports (`tag`); the exit status, and the
    // output in `out`.
    int run(const std::string& backend, const std::string& tag, std::string& out,
            const std::vector<std::string>& extra = {}) const {
        const fs::path l = tmp.path() / (tag + ".log");
        std::vector<std::string> args = {"run",
                                         "--job",
                                         (job / "job.toml").string(),
                                         "--map",
                                         map.string(),
                                         "--ledger",
                                         ledger(tag).string(),
                                         "--out",
                                         (tmp.path() / ("reports-" + tag)).string(),
                                         "--backend",
                                         backend,
                                         "--no-progress"};
        args.insert(args.end(), extra.begin(), extra.end());
        const int rc = waferprov_run(args, l);
        out = read_text(l);
        return rc;
    }
    fs::path ledger(const std::string& tag) const { return tmp.path() / (tag + ".sqlite"); }
};

class FixedEntropy {
public:
    FixedEntropy() { ::setenv("WAFERPROV_DEV_FIXED_ENTROPY", kFixedEntropy, 1); }
    ~FixedEntropy() { ::unsetenv("WAFERPROV_DEV_FIXED_ENTROPY"); }
};

#define SKIP_WITHOUT_FUSE()                                                \
    do {                                                                   \
        if (auto why = cardsim_test::fuse_missing()) GTEST_SKIP() << *why; \
    } while (0)

}  // namespace

TEST(BackendsE2E, OneJobGivesByteIdenticalRecordsOnSoftwareVerilatorAndXdma) {
    SKIP_WITHOUT_FUSE();
    WaferJob s;
    ASSERT_GT(s.dies, 10u);
    ASSERT_LT(s.dies, 100u);
    cardsim_test::CardSim card;
    ASSERT_TRUE(card.ok()) << card.log();
    FixedEntropy entropy;

    const std::vector<std::pair<std::string, std::string>> backends = {
        {"software", "software"},
        {"verilator", "verilator"},
        {"xdma", "xdma:device=" + card.prefix() + "," + kCardsimTimeouts}};
    std::map<std::string, Identities> got;
    for (const auto& [tag, spec] : backends) {
        std::string out;
        // Batches of 8 with several in flight: the card sees many request packets.
        ASSERT_EQ(s.run(spec, tag, out, {"--batch", "8", "--threads", "2"}), 0) << out;
        got[tag] = identities(s.ledger(tag));
        EXPECT_EQ(got[tag].size(), s.dies) << tag;
    }
    EXPECT_EQ(card.stop(), 0) << card.log();

    // Byte-identical: the same UID, Q, wrapped key (and so serial) at every location.
    EXPECT_EQ(got["verilator"], got["software"]);
    EXPECT_EQ(got["xdma"], got["software"]);
    // And right: each record passes the die's own check with the plaintext KIK.
    const Bytes kik = read_kik(s.job);
    for (const auto& [where, id] : got["xdma"]) EXPECT_EQ(die_check(kik, id), "") << where;
    // Not vacuous: another entropy gives other keys.
    std::string out;
    ::setenv("WAFERPROV_DEV_FIXED_ENTROPY", std::string(96, 'f').c_str(), 1);
    ASSERT_EQ(s.run("software", "other", out), 0) << out;
    const Identities other = identities(s.ledger("other"));
    ASSERT_EQ(other.size(), s.dies);
    EXPECT_NE(other.begin()->second[1], got["software"].begin()->second[1]);
}

// `kat --backend xdma:device=...` runs the built-in known-answer files through the card on the
// emulated device: the WPID-1 cases pass on the card, the primitive cases it cannot run are
// skipped with the reason, never passed.
TEST(BackendsE2E, KatRunsTheKnownAnswerFilesThroughTheEmulatedCard) {
    SKIP_WITHOUT_FUSE();
    cardsim_test::CardSim card;
    ASSERT_TRUE(card.ok()) << card.log();
    waferprov::testing::TempDir t{"backends_kat"};
    const fs::path log = t.path() / "kat.log";
    EXPECT_EQ(
        waferprov_run({"kat", "--backend", "xdma:device=" + card.prefix() + "," + kCardsimTimeouts},
                      log),
        0)
        << read_text(log);
    const std::string out = read_text(log);
    EXPECT_NE(out.find("backend xdma:device="), std::string::npos) << out;
    EXPECT_NE(out.find(" 0 failed"), std::string::npos) << out;
    // The primitives ran on the card's self-test path (issue #15): every d*G vector, and the
    // AES-256 vectors of the CMAC and key-wrap files; other key sizes are skipped, by name.
    EXPECT_NE(out.find("P256-BASEMUL 59 passed, 0 failed, 0 skipped"), std::string::npos) << out;
    EXPECT_NE(out.find("rfc3394.json                                 AES-WRAP     3 passed, 0 "
                       "failed, 3 skipped"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("the card's AES-CMAC takes AES-256 keys only, not 128-bit ones"),
              std::string::npos)
        << out;
    EXPECT_EQ(out.find("(not in its capabilities)"), std::string::npos) << out;
    EXPECT_EQ(card.stop(), 0) << card.log();
}

// No card behind the prefix: a clear "unavailable" naming the node looked for, for `kat`
// and `run`; `kat` without --backend skips the absent card, saying so.
TEST(BackendsE2E, AMissingXdmaDeviceIsUnavailableNamingThePath) {
    waferprov::testing::TempDir t{"backends_missing"};
    const std::string prefix = (t.path() / "nosuch" / "xdma7").string();
    const fs::path log = t.path() / "kat.log";
    EXPECT_EQ(waferprov_run({"kat", "--backend", "xdma:device=" + prefix}, log), 1)
        << read_text(log);
    std::string out = read_text(log);
    EXPECT_NE(out.find("unavailable: backend xdma: no XDMA card at " + prefix + ": " + prefix +
                       "_user does not exist"),
              std::string::npos)
        << out;
    WaferJob s;
    ASSERT_EQ(s.run("xdma:device=" + prefix, "missing", out), 1) << out;
    EXPECT_NE(out.find(prefix + "_user does not exist"), std::string::npos) << out;
    EXPECT_EQ(record_count(s.ledger("missing")), 0u);
    const fs::path all = t.path() / "kat-all.log";
    // Every backend built: software and verilator run, xdma (no /dev/xdma0 here) is skipped.
    if (!fs::exists("/dev/xdma0_user")) {
        EXPECT_EQ(waferprov_run({"kat"}, all), 0) << read_text(all);
        EXPECT_NE(read_text(all).find("backend xdma skipped: no XDMA card at /dev/xdma0"),
                  std::string::npos)
            << read_text(all);
        EXPECT_EQ(read_text(all).find("backend xdma: "), std::string::npos) << read_text(all);
    }
}

// Each emulator fault, injected at record 5 of a run in batches of 4: the first batch (records
// 0..3) is committed, the run stops with an error naming the fault, and the die of the bad
// record has no identity (no certificate). Where the card driver refused a record (UID,
// sequence number, off-curve point) that die has an ALARM in the ledger.
TEST(BackendsE2E, EveryCardFaultEndsInAClearErrorAndNoCertificateForTheBadRecord) {
    SKIP_WITHOUT_FUSE();
    WaferJob s;
    ASSERT_GT(s.dies, 8u);
    struct Case {
        const char* fault;
        const char* expect;  // in the error
        bool refused;        // the driver refused a record: an ALARM names its die
        const char* timeouts;
    };
    const Case cases[] = {
        {"uid@5", "refused: UID", true, nullptr},
        {"seq@5", "refused: sequence number 6, expected 5", true, nullptr},
        {"point@5", "refused: public key is not a point on P-256", true, nullptr},
        {"reset@5", "short transfer|_h2c_0", false, nullptr},
        // A stalled stream: short deadlines, so the run ends within seconds.
        {"stall@5", "timeout", false, "timeout_ms=3000,per_die_us=200000"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.fault);
        cardsim_test::CardSim card({"--fault", c.fault});
        ASSERT_TRUE(card.ok()) << card.log();
        const std::string tag = std::string("fault-") + std::string(c.fault).substr(0, 4);
        std::string out;
        const std::string spec = "xdma:device=" + card.prefix() + "," +
                                 (c.timeouts != nullptr ? c.timeouts : kCardsimTimeouts);
        EXPECT_EQ(s.run(spec, tag, out, {"--batch", "4", "--threads", "1"}), 1) << out;
        // `expect` may offer alternatives, "a|b": a reset may end the record transfer short, or
        // the request write in flight at that moment.
        bool named = false;
        for (size_t from = 0; from <= std::strlen(c.expect);) {
            const char* bar = std::strchr(c.expect + from, '|');
            const size_t to =
                bar != nullptr ? static_cast<size_t>(bar - c.expect) : std::strlen(c.expect);
            named = named || out.find(std::string(c.expect + from, to - from)) != std::string::npos;
            from = to + 1;
        }
        EXPECT_TRUE(named) << "expected " << c.expect << " in: " << out;
        EXPECT_EQ(card.stop(), 0) << card.log();

        const fs::path ledger = s.ledger(tag);
        const auto records = identities(ledger);
        // Records 0..3 (the first batch) passed every check; nothing from the bad batch on.
        if (std::string(c.fault).rfind("stall", 0) == 0)
            EXPECT_LE(records.size(), 4u);
        else
            EXPECT_EQ(records.size(), 4u);
        const auto alarms =
            query(ledger,
                  "SELECT json_extract(payload, '$.offered.uid'), "
                  "json_extract(payload, '$.offered.x'), json_extract(payload, '$.offered.y'), "
                  "json_extract(payload, '$.reason') FROM events WHERE type = 'ALARM'");
        if (!c.refused) {
            EXPECT_TRUE(alarms.empty()) << "no record was refused";
            continue;
        }
        ASSERT_EQ(alarms.size(), 1u);
        EXPECT_EQ(alarms[0][3], "backend-record-refused");
        // The refused die has no identity: neither its UID nor its location is in the ledger.
        const auto at = query(ledger, "SELECT count(*) FROM records WHERE x = " + alarms[0][1] +
                                          " AND y = " + alarms[0][2] + " OR hex(uid) = upper('" +
                                          alarms[0][0] + "')");
        ASSERT_EQ(at.size(), 1u);
        EXPECT_EQ(at[0][0], "0") << "a record for the refused die";
        EXPECT_NE(out.find("ALARM backend-record-refused"), std::string::npos) << out;
        // The ledger stays verifiable with the ALARM in its chain.
        const fs::path vlog = s.tmp.path() / (tag + "-verify.log");
        EXPECT_EQ(waferprov_run({"ledger", "verify", "--ledger", ledger.string()}, vlog), 0)
            << read_text(vlog);
    }
}

// A wrapped key that does not unwrap is the one fault the host cannot see: the card driver and
// the host hold neither the KIK nor the die's KEK (by design), and a flipped byte of an AES-KW
// output is indistinguishable from a good one without them. `run` therefore issues it; the die
// itself refuses it at touchdown (the tester's die check, tester_e2e_test), and the customer's
// check with the KIK finds exactly that record. This test pins that limit down.
TEST(BackendsE2E, AWrappedKeyThatDoesNotUnwrapIsCaughtOnlyWithTheKik) {
    SKIP_WITHOUT_FUSE();
    WaferJob s;
    cardsim_test::CardSim card({"--fault", "wrap@5"});
    ASSERT_TRUE(card.ok()) << card.log();
    std::string out;
    EXPECT_EQ(s.run("xdma:device=" + card.prefix() + "," + kCardsimTimeouts, "wrap", out,
                    {"--batch", "4", "--threads", "1"}),
              0)
        << out;
    EXPECT_EQ(card.stop(), 0) << card.log();
    const Bytes kik = read_kik(s.job);
    size_t bad = 0;
    for (const auto& [where, id] : identities(s.ledger("wrap")))
        if (!die_check(kik, id).empty()) ++bad;
    EXPECT_EQ(bad, 1u);
}

// kill -9 of `run` on the verilator backend once it has committed a batch, then the same
// command again: every die of the wafer exactly once, the ledger verifies.
TEST(BackendsE2E, KillNineOfRunOnVerilatorThenRerunGivesEveryDieExactlyOnce) {
    WaferJob s;
    const std::vector<std::string> args = {"run",
                                           "--job",
                                           (s.job / "job.toml").string(),
                                           "--map",
                                           s.map.string(),
                                           "--ledger",
                                           s.ledger("kill").string(),
                                           "--out",
                                           (s.tmp.path() / "reports-kill").string(),
                                           "--backend",
                                           "verilator",
                                           "--batch",
                                           "2",
                                           "--threads",
                                           "1",
                                           "--no-progress"};
    std::vector<std::string> argv = {kBinary.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    const fs::path log = s.tmp.path() / "kill.log";
    int killed = 0;
    for (int attempt = 0; attempt < 3 && killed == 0; ++attempt) {
        const size_t before = record_count(s.ledger("kill"));
        if (before >= s.dies) break;
        e2e::Child child(waferprov::testing::spawn_process(argv, log));
        ASSERT_GT(child.pid(), 0);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (child.running() && std::chrono::steady_clock::now() < deadline &&
               record_count(s.ledger("kill")) == before)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        if (child.running()) {
            ::kill(child.pid(), SIGKILL);
            if (child.wait(std::chrono::seconds(30)) == waferprov::testing::kProcessSignaled)
                ++killed;
        }
    }
    EXPECT_EQ(killed, 1) << "no run was killed mid-wafer: " << read_text(log);
    const size_t after_kill = record_count(s.ledger("kill"));
    EXPECT_LT(after_kill, s.dies);
    ASSERT_EQ(waferprov::testing::run_process(argv, log, std::chrono::seconds(300)), 0)
        << read_text(log);
    const auto rows = query(s.ledger("kill"), "SELECT lot, wafer, x, y, hex(uid) FROM records");
    std::set<std::string> where, uids;
    for (const auto& r : rows) {
        where.insert(r[0] + "/" + r[1] + "/" + r[2] + "/" + r[3]);
        uids.insert(r[4]);
    }
    EXPECT_EQ(rows.size(), s.dies);
    EXPECT_EQ(where.size(), s.dies) << "a location twice";
    EXPECT_EQ(uids.size(), s.dies) << "a UID twice";
    const auto quota = query(s.ledger("kill"), "SELECT quota_used FROM job");
    ASSERT_EQ(quota.size(), 1u);
    EXPECT_EQ(quota[0][0], std::to_string(s.dies));
    const fs::path vlog = s.tmp.path() / "kill-verify.log";
    EXPECT_EQ(waferprov_run({"ledger", "verify", "--ledger", s.ledger("kill").string()}, vlog), 0)
        << read_text(vlog);
}

namespace {

// `serve --backend SPEC` on `job`: the tester simulator probes its wafer on 4 sites, every
// identity generated on the backend at touchdown and checked by the simulated dies; the ledger
// holds exactly what the simulator reported.
void serve_wafer_through_the_tester(const e2e::JobSetup& job, const std::string& spec) {
    e2e::Server server(job.job_toml(), job.tmp.path());
    const std::string endpoint = server.start("tcp://127.0.0.1:0", {"--backend", spec});
    ASSERT_FALSE(endpoint.empty()) << server.failure();
    const fs::path log = job.tmp.path() / "tester.log";
    ASSERT_EQ(e2e::run(e2e::kTester, job.tester_args(endpoint, 4, {"--seed", "1"}), log,
                       std::chrono::seconds(300)),
              0)
        << read_text(log) << server.logs();
    EXPECT_EQ(server.stop(), 0) << server.logs();
    const auto summary = job.summary();
    EXPECT_EQ(summary["ok"], job.dies);
    EXPECT_EQ(summary["check_failures"], 0);
    e2e::expect_ledger_matches(job, summary);
}

}  // namespace

// `serve --backend verilator`: a small wafer (a few dozen dies of 2 x 2 mm on 25 mm).
TEST(BackendsE2E, ServeOnTheVerilatorBackendProvisionsASmallWaferThroughTheTester) {
    e2e::JobSetup job("backends_serve", 25);
    ASSERT_GT(job.dies, 10u);
    ASSERT_LT(job.dies, 150u);
    serve_wafer_through_the_tester(job, "verilator");
}

// `serve --backend xdma` on the emulated card: the same wafer through the xdma driver, the FUSE
// nodes and the Verilated card; the job's KIK is wrapped under the key the card carries.
TEST(BackendsE2E, ServeOnTheEmulatedCardProvisionsASmallWaferThroughTheTester) {
    SKIP_WITHOUT_FUSE();
    cardsim_test::CardSim card;
    ASSERT_TRUE(card.ok()) << card.log();
    e2e::JobSetup job("backends_serve_xdma", 25, {"--backend", "xdma"});
    ASSERT_GT(job.dies, 10u);
    serve_wafer_through_the_tester(job, "xdma:device=" + card.prefix() + "," + kCardsimTimeouts);
    EXPECT_EQ(card.stop(), 0) << card.log();
}
