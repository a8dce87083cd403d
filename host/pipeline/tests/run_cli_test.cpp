// `waferprov job init` -> `wafer synth` -> `run` -> `ledger verify`/`export` as a floor engineer
// runs them, with a PEM CA and with the CA key inside a SoftHSM2 token; and `kill -9` of a run
// at random moments, then the same command again, finishing the wafer with no identity lost,
// none issued twice and the quota intact; and three hosts sharing one job on PostgreSQL.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "waferprov/host/job.hpp"
#include "waferprov/host/ledger.hpp"
#include "waferprov/host/wafermap.hpp"
#include "waferprov/reference.hpp"
#include "waferprov/test_vectors.hpp"
#include "waferprov/testing/postgres.hpp"
#include "waferprov/testing/process.hpp"
#include "waferprov/testing/softhsm.hpp"
#include "waferprov/testing/temp_dir.hpp"

using namespace waferprov;
using namespace waferprov::host;
namespace ref = waferprov::reference;
namespace fs = std::filesystem;
using waferprov::testing::TempDir;

namespace {

const fs::path kBinary = WAFERPROV_BINARY;

// `waferprov args...`.
std::vector<std::string> command(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {kBinary.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

// Starts the command with stdout and stderr appended to `log`; -1 on failure.
pid_t spawn(const std::vector<std::string>& args, const fs::path& log) {
    return waferprov::testing::spawn_process(command(args), log);
}

// Runs the command to completion; its exit status, or waferprov::testing::kProcessSignaled /
// waferprov::testing::kSpawnFailed.
int run(const std::vector<std::string>& args, const fs::path& log) {
    return waferprov::testing::run_process(command(args), log, waferprov::testing::kNoTimeout);
}

// Checks the export of a finished wafer: one record per selected die, every die's record
// passes the die's own check with the plaintext KIK, nothing twice.
void check_export(const fs::path& export_dir, const fs::path& kik_hex, size_t expected) {
    Bytes kik = from_hex(waferprov::testing::read_text(kik_hex).substr(0, 64), "kik").value();
    std::ifstream in(export_dir / "records.jsonl");
    std::string line;
    std::set<std::string> uids, serials, locations;
    size_t n = 0;
    while (std::getline(in, line)) {
        auto j = nlohmann::json::parse(line);
        ++n;
        uids.insert(j["uid"].get<std::string>());
        serials.insert(j["serial"].get<std::string>());
        locations.insert(j["lot"].get<std::string>() + "/" + std::to_string(j["wafer"].get<int>()) +
                         "/" + std::to_string(j["x"].get<int>()) + "/" +
                         std::to_string(j["y"].get<int>()));
        wpid1::IdentityRecord r;
        Bytes uid = from_hex(j["uid"].get<std::string>(), "uid").value();
        Bytes pub = from_hex(j["public_key"].get<std::string>(), "pub").value();
        Bytes wrapped = from_hex(j["wrapped_key"].get<std::string>(), "wrapped").value();
        ASSERT_EQ(uid.size(), 16u);
        ASSERT_EQ(pub.size(), 65u);
        ASSERT_EQ(wrapped.size(), 40u);
        std::copy(uid.begin(), uid.end(), r.uid.begin());
        std::copy(pub.begin() + 1, pub.begin() + 33, r.x.begin());
        std::copy(pub.begin() + 33, pub.end(), r.y.begin());
        std::copy(wrapped.begin(), wrapped.end(), r.wrapped.begin());
        EXPECT_EQ(ref::die_check(kik, r), "") << line;
    }
    EXPECT_EQ(n, expected);
    EXPECT_EQ(uids.size(), n);
    EXPECT_EQ(serials.size(), n);
    EXPECT_EQ(locations.size(), n);
}

// Starts `waferprov args...` and kills it with SIGKILL at a random moment (0..max_extra_ms) after
// the ledger's count of records has grown past `before` (so that the kill lands in the middle of
// the wafer however fast the machine is), or not at all if it ends first. Whether it was killed.
bool kill_mid_wafer(const std::vector<std::string>& args, const fs::path& log,
                    const std::function<uint64_t()>& committed, std::mt19937& rng,
                    int max_extra_ms) {
    const uint64_t before = committed();
    const pid_t pid = spawn(args, log);
    EXPECT_GT(pid, 0);
    if (pid <= 0) return false;
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
        if (::waitpid(pid, &status, WNOHANG) == pid) return false;
        if (committed() > before) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(0, max_extra_ms)(rng)));
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return WIFSIGNALED(status);
}

// `ledger export` of the job's ledger (`ledger` overrides it when given) into dir/export, the
// customer's `ledger verify --export` of it under dir/job/ca.pem, then check_export.
void export_and_check(const fs::path& dir, const fs::path& job_file, const std::string& ledger,
                      const fs::path& log, size_t expected) {
    std::vector<std::string> args = {"ledger",          "export", "--job",
                                     job_file.string(), "--out",  (dir / "export").string()};
    if (!ledger.empty()) args.insert(args.end(), {"--ledger", ledger});
    ASSERT_EQ(run(args, log), 0) << waferprov::testing::read_text(log);
    ASSERT_EQ(run({"ledger", "verify", "--export", (dir / "export").string(), "--ca",
                   (dir / "job/ca.pem").string()},
                  log),
              0)
        << waferprov::testing::read_text(log);
    check_export(dir / "export", dir / "job/kik.hex", expected);
}

size_t selected_dies(const fs::path& map) {
    auto m = read_map_file(map);
    EXPECT_TRUE(m.ok());
    return select_dies(*m, {"01"})->size();
}

}  // namespace

// `report` writes the floor reports from the ledger alone: it says so (exit 1, a MISMATCH in
// the reconciliation) while dies lack an identity, and reconciles once `run` gave them one.
TEST(RunCli, ReportFromTheLedgerAlone) {
    TempDir t{"report"};
    const fs::path log = t.path() / "log.txt";
    ASSERT_EQ(run({"job", "init", "--out", (t.path() / "job").string()}, log), 0)
        << waferprov::testing::read_text(log);
    ASSERT_EQ(run({"wafer", "synth", "--diameter", "30", "--die", "2x2", "--out",
                   (t.path() / "w.xml").string()},
                  log),
              0)
        << waferprov::testing::read_text(log);
    const std::vector<std::string> report = {"report",
                                             "--job",
                                             (t.path() / "job/job.toml").string(),
                                             "--map",
                                             (t.path() / "w.xml").string(),
                                             "--out",
                                             (t.path() / "rep").string()};
    ASSERT_EQ(run({"run", "--job", (t.path() / "job/job.toml").string(), "--map",
                   (t.path() / "w.xml").string(), "--no-progress", "--out",
                   (t.path() / "run-reports").string()},
                  log),
              0)
        << waferprov::testing::read_text(log);
    ASSERT_EQ(run(report, log), 0) << waferprov::testing::read_text(log);
    const std::string recon =
        waferprov::testing::read_text(t.path() / "rep/SYNTH0001/01/reconciliation.txt");
    EXPECT_EQ(recon.find("MISMATCH"), std::string::npos) << recon;
    // The summary's elapsed time and rate follow from its own start and finish (the ledger's
    // first issue and last change), not from a pipeline run `report` did not do.
    {
        auto sj = nlohmann::json::parse(
            waferprov::testing::read_text(t.path() / "rep/SYNTH0001/01/summary.json"));
        const auto& w = sj["wafers"][0];
        const double elapsed = w["elapsed_s"].get<double>();
        const double rate = w["dies_per_second"].get<double>();
        const size_t dies = selected_dies(t.path() / "w.xml");
        if (elapsed > 0) {
            EXPECT_NEAR(rate * elapsed, static_cast<double>(dies), 0.5) << sj.dump();
        } else {
            EXPECT_EQ(rate, 0.0) << sj.dump();
        }
        EXPECT_NE(w["start"], "") << sj.dump();
    }
    EXPECT_TRUE(fs::exists(t.path() / "rep/SYNTH0001/01/SYNTH0001_01.stdf"));
    // A second wafer nobody provisioned: reported as a gap.
    ASSERT_EQ(run({"wafer", "synth", "--diameter", "30", "--die", "2x2", "--wafer", "2", "--out",
                   (t.path() / "w2.xml").string()},
                  log),
              0)
        << waferprov::testing::read_text(log);
    auto gap = report;
    gap.back() = (t.path() / "rep2").string();
    gap.push_back("--map");
    gap.push_back((t.path() / "w2.xml").string());
    EXPECT_EQ(run(gap, log), 1);
    EXPECT_NE(waferprov::testing::read_text(log).find("have no identity in the ledger"),
              std::string::npos);
    EXPECT_NE(waferprov::testing::read_text(t.path() / "rep2/SYNTH0001/02/reconciliation.txt")
                  .find("MISMATCH"),
              std::string::npos);
}

TEST(RunCli, PemJobFromInitToVerifiedExport) {
    TempDir t{"run"};
    const fs::path log = t.path() / "log.txt";
    ASSERT_EQ(run({"job", "init", "--out", (t.path() / "job").string()}, log), 0)
        << waferprov::testing::read_text(log);
    ASSERT_EQ(run({"wafer", "synth", "--diameter", "50", "--die", "2x2", "--out",
                   (t.path() / "w.xml").string()},
                  log),
              0)
        << waferprov::testing::read_text(log);
    const std::vector<std::string> cmd = {"run",
                                          "--job",
                                          (t.path() / "job/job.toml").string(),
                                          "--map",
                                          (t.path() / "w.xml").string(),
                                          "--no-progress"};
    ASSERT_EQ(run(cmd, log), 0) << waferprov::testing::read_text(log);
    // Rerun: idempotent, nothing new.
    ASSERT_EQ(run(cmd, log), 0) << waferprov::testing::read_text(log);
    const fs::path ledger = t.path() / "job/ledger.sqlite";
    ASSERT_EQ(run({"ledger", "verify", "--ledger", ledger.string()}, log), 0)
        << waferprov::testing::read_text(log);
    const size_t expected = selected_dies(t.path() / "w.xml");
    auto l = Ledger::open_existing(ledger);
    ASSERT_TRUE(l.ok());
    EXPECT_EQ((*l)->counts()->total(), expected);
    EXPECT_EQ((*l)->quota()->used, expected);
    l->reset();
    export_and_check(t.path(), t.path() / "job/job.toml", ledger.string(), log, expected);
    // The floor reports are there.
    bool svg = false, stdf = false;
    for (const auto& e : fs::recursive_directory_iterator(t.path() / "job/reports")) {
        svg |= e.path().extension() == ".svg";
        stdf |= e.path().extension() == ".stdf";
    }
    EXPECT_TRUE(svg);
    EXPECT_TRUE(stdf);
}

TEST(RunCli, SoftHsmJobSignsWithTheTokenKey) {
    auto token = waferprov::testing::SoftHsmToken::create();
    if (!token.ok()) GTEST_FAIL() << token.error().describe();
    (*token)->export_pin("WAFERPROV_HSM_PIN");
    TempDir t{"run"};
    const fs::path log = t.path() / "log.txt";
    ASSERT_EQ(run({"job", "init", "--out", (t.path() / "job").string(), "--hsm", "--module",
                   (*token)->module().string(), "--token-label", (*token)->label(), "--key-label",
                   "manufacturer-ca"},
                  log),
              0)
        << waferprov::testing::read_text(log);
    EXPECT_FALSE(fs::exists(t.path() / "job/ca.key"));
    ASSERT_EQ(run({"wafer", "synth", "--diameter", "30", "--die", "2x2", "--out",
                   (t.path() / "w.xml").string()},
                  log),
              0)
        << waferprov::testing::read_text(log);
    ASSERT_EQ(run({"run", "--job", (t.path() / "job/job.toml").string(), "--map",
                   (t.path() / "w.xml").string(), "--no-progress"},
                  log),
              0)
        << waferprov::testing::read_text(log);
    export_and_check(t.path(), t.path() / "job/job.toml", "", log,
                     selected_dies(t.path() / "w.xml"));
}

TEST(RunCli, KillNineAtRandomMomentsThenRerunFinishesTheWaferExactlyOnce) {
    TempDir t{"run"};
    const fs::path log = t.path() / "log.txt";
    ASSERT_EQ(run({"job", "init", "--out", (t.path() / "job").string(), "--quota", "100000"}, log),
              0)
        << waferprov::testing::read_text(log);
    ASSERT_EQ(run({"wafer", "synth", "--diameter", "150", "--die", "2x2", "--out",
                   (t.path() / "w.xml").string()},
                  log),
              0)
        << waferprov::testing::read_text(log);
    const std::vector<std::string> cmd = {"run",
                                          "--job",
                                          (t.path() / "job/job.toml").string(),
                                          "--map",
                                          (t.path() / "w.xml").string(),
                                          "--no-progress",
                                          "--batch",
                                          "8"};
    const fs::path ledger_file = t.path() / "job/ledger.sqlite";
    auto committed = [&]() -> uint64_t {
        auto l = Ledger::open_existing(ledger_file);
        if (!l.ok()) return 0;
        auto c = (*l)->counts();
        return c.ok() ? c->total() : 0;
    };
    std::mt19937 rng(std::random_device{}());
    int killed = 0;
    for (int i = 0; i < 8; ++i) {
        if (kill_mid_wafer(cmd, log, committed, rng, 150)) ++killed;
        // Between kills the ledger is always consistent.
        auto l = Ledger::open_existing(ledger_file);
        if (l.ok()) {
            auto v = (*l)->verify();
            ASSERT_TRUE(v.ok());
            ASSERT_TRUE(v->ok()) << v->problems[0];
            EXPECT_EQ((*l)->quota()->used, (*l)->counts()->total());
        }
    }
    std::printf("[   info   ] %d of 8 runs killed mid-wafer\n", killed);
    EXPECT_GT(killed, 0);
    ASSERT_EQ(run(cmd, log), 0) << waferprov::testing::read_text(log);
    const size_t expected = selected_dies(t.path() / "w.xml");
    auto l = Ledger::open_existing(t.path() / "job/ledger.sqlite");
    ASSERT_TRUE(l.ok());
    EXPECT_EQ((*l)->counts()->total(), expected);
    EXPECT_EQ((*l)->quota()->used, expected);
    auto v = (*l)->verify();
    ASSERT_TRUE(v.ok());
    EXPECT_TRUE(v->ok());
    l->reset();
    export_and_check(t.path(), t.path() / "job/job.toml", "", log, expected);
}

TEST(RunCli, TesterUidPolicyLeavesDiesWithoutAMapUidToTheTouchdown) {
    TempDir t{"run"};
    const fs::path log = t.path() / "log.txt";
    ASSERT_EQ(
        run({"job", "init", "--out", (t.path() / "job").string(), "--uid-policy", "tester"}, log),
        0)
        << waferprov::testing::read_text(log);
    ASSERT_EQ(run({"wafer", "synth", "--diameter", "30", "--die", "2x2", "--out",
                   (t.path() / "w.xml").string()},
                  log),
              0)
        << waferprov::testing::read_text(log);
    ASSERT_EQ(run({"run", "--job", (t.path() / "job/job.toml").string(), "--map",
                   (t.path() / "w.xml").string(), "--no-progress"},
                  log),
              0)
        << waferprov::testing::read_text(log);
    EXPECT_NE(waferprov::testing::read_text(log).find("get their identity at touchdown"),
              std::string::npos)
        << waferprov::testing::read_text(log);
    auto l = Ledger::open_existing(t.path() / "job/ledger.sqlite");
    ASSERT_TRUE(l.ok());
    EXPECT_EQ((*l)->counts()->total(), 0u);
}

TEST(RunCli, BadMapProvisionsNothing) {
    TempDir t{"run"};
    const fs::path log = t.path() / "log.txt";
    ASSERT_EQ(run({"job", "init", "--out", (t.path() / "job").string()}, log), 0)
        << waferprov::testing::read_text(log);
    std::ofstream(t.path() / "bad.xml")
        << "<MapData><Layouts>\n<Layout LayoutId=\"x\">\n</MapData>\n";
    EXPECT_EQ(run({"run", "--job", (t.path() / "job/job.toml").string(), "--map",
                   (t.path() / "bad.xml").string(), "--no-progress"},
                  log),
              1);
    EXPECT_NE(waferprov::testing::read_text(log).find("line"), std::string::npos)
        << waferprov::testing::read_text(log);
    EXPECT_FALSE(fs::exists(t.path() / "job/ledger.sqlite"));
}

namespace {

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
    return s;
}

void write_file(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::trunc);
    out << text;
}

}  // namespace

// Issue #10: two maps of different physical wafers of one lot whose wafer numbers come out
// equal. Before, the second run printed "provisioned 0, reissued N", exited 0 and handed every
// die of the second wafer the first one's identity. Now the second wafer is refused with an
// ALARM and no identity changes hands; the certificate names the substrate (openssl reads it).
TEST(RunCli, TwoWafersOfOneLotWithOneNumberAreNeverOneWafer) {
    TempDir t{"twowafers"};
    const fs::path log = t.path() / "log.txt";
    const std::string job = (t.path() / "job/job.toml").string();
    ASSERT_EQ(run({"job", "init", "--out", (t.path() / "job").string()}, log), 0)
        << waferprov::testing::read_text(log);
    // `job init` says that the die-location OID it writes is only a development default.
    EXPECT_NE(waferprov::testing::read_text(log).find(
                  "development default. Set [certificate] location_oid"),
              std::string::npos)
        << waferprov::testing::read_text(log);
    const fs::path a = t.path() / "a.xml";
    ASSERT_EQ(run({"wafer", "synth", "--diameter", "30", "--die", "3x3", "--lot", "LOTC", "--wafer",
                   "5", "--out", a.string()},
                  log),
              0)
        << waferprov::testing::read_text(log);
    // Wafer B: the same lot and SlotNumber, another physical wafer (another SubstrateId).
    const fs::path b = t.path() / "b.xml";
    write_file(b, replace_all(waferprov::testing::read_text(a), "SubstrateId=\"LOTC-05\"",
                              "SubstrateId=\"PH8Q66-02B6\""));
    const size_t dies = selected_dies(a);
    ASSERT_GT(dies, 10u);

    ASSERT_EQ(run({"run", "--job", job, "--map", a.string(), "--no-progress"}, log), 0)
        << waferprov::testing::read_text(log);
    const fs::path log_b = t.path() / "log-b.txt";
    EXPECT_EQ(run({"run", "--job", job, "--map", b.string(), "--no-progress"}, log_b), 1)
        << waferprov::testing::read_text(log_b);
    EXPECT_NE(waferprov::testing::read_text(log_b).find("ALARM: " + std::to_string(dies) +
                                                        " dies refused for a conflict"),
              std::string::npos)
        << waferprov::testing::read_text(log_b);
    EXPECT_NE(waferprov::testing::read_text(log_b).find(
                  "is substrate 'LOTC-05' in the ledger; substrate "
                  "'PH8Q66-02B6' under the same lot and wafer number"),
              std::string::npos)
        << waferprov::testing::read_text(log_b);

    auto l = Ledger::open_existing(t.path() / "job/ledger.sqlite");
    ASSERT_TRUE(l.ok()) << l.error().describe();
    EXPECT_EQ((*l)->quota()->used, dies);  // nothing issued, nothing reissued for wafer B
    auto records = (*l)->list_wafer("LOTC", 5);
    ASSERT_TRUE(records.ok());
    ASSERT_EQ(records->size(), dies);
    for (const auto& r : *records) {
        EXPECT_EQ(r.loc.substrate, "LOTC-05");
        EXPECT_EQ(r.reissues, 0u);
    }
    auto rep = (*l)->verify();
    ASSERT_TRUE(rep.ok());
    EXPECT_TRUE(rep->ok());
    l->reset();

    // The export's events name the refusal; a certificate carries the substrate id under the
    // job's die-location OID (the development default here), as openssl prints it.
    const fs::path x = t.path() / "export";
    ASSERT_EQ(run({"ledger", "export", "--job", job, "--out", x.string()}, log), 0)
        << waferprov::testing::read_text(log);
    const std::string events = waferprov::testing::read_text(x / "events.jsonl");
    EXPECT_NE(events.find("\"reason\":\"wafer-number-reused\""), std::string::npos);
    std::ifstream in(x / "records.jsonl");
    std::string line;
    ASSERT_TRUE(std::getline(in, line));
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["substrate"], "LOTC-05");
    const fs::path b64 = t.path() / "cert.b64";
    write_file(b64, j["certificate"].get<std::string>() + "\n");
    const fs::path text = t.path() / "cert.txt";
    ASSERT_EQ(std::system(("openssl base64 -d -A -in '" + b64.string() + "' | openssl x509 " +
                           "-inform DER -noout -text > '" + text.string() + "' 2>&1")
                              .c_str()),
              0)
        << waferprov::testing::read_text(text);
    const std::string cert = waferprov::testing::read_text(text);
    EXPECT_NE(cert.find("1.3.6.1.4.1.32473.1.1:"), std::string::npos) << cert;
    EXPECT_NE(cert.find("LOTC-05"), std::string::npos) << cert;
}

// The SINF wafer id of the issue: free text gives no number; --wafer N gives it, and the
// wafer number it names is then refused as another wafer's (the ledger holds LOTC wafer 5).
TEST(RunCli, AFreeTextSinfWaferIdNeedsItsNumberFromTheOperator) {
    TempDir t{"sinfid"};
    const fs::path log = t.path() / "log.txt";
    const std::string job = (t.path() / "job/job.toml").string();
    ASSERT_EQ(run({"job", "init", "--out", (t.path() / "job").string()}, log), 0)
        << waferprov::testing::read_text(log);
    const fs::path s = t.path() / "w.sinf";
    ASSERT_EQ(run({"wafer", "synth", "--diameter", "20", "--die", "3x3", "--lot", "LOTC", "--wafer",
                   "6", "--format", "sinf", "--out", s.string()},
                  log),
              0)
        << waferprov::testing::read_text(log);
    write_file(s,
               replace_all(waferprov::testing::read_text(s), "WAFER:LOTC-06", "WAFER:PH8Q66-02B6"));
    const fs::path log_s = t.path() / "log-s.txt";
    EXPECT_EQ(run({"run", "--job", job, "--map", s.string(), "--no-progress"}, log_s), 1);
    EXPECT_NE(waferprov::testing::read_text(log_s).find(
                  "WAFER 'PH8Q66-02B6' does not give a wafer number"),
              std::string::npos)
        << waferprov::testing::read_text(log_s);
    EXPECT_NE(waferprov::testing::read_text(log_s).find("--wafer N"), std::string::npos);
    EXPECT_FALSE(fs::exists(t.path() / "job/ledger.sqlite"));  // nothing provisioned
    ASSERT_EQ(
        run({"run", "--job", job, "--map", s.string(), "--wafer", "6", "--no-progress"}, log_s), 0)
        << waferprov::testing::read_text(log_s);
    auto l = Ledger::open_existing(t.path() / "job/ledger.sqlite");
    ASSERT_TRUE(l.ok());
    auto records = (*l)->list_wafer("LOTC", 6);
    ASSERT_TRUE(records.ok());
    ASSERT_FALSE(records->empty());
    EXPECT_EQ(records->front().loc.substrate, "PH8Q66-02B6");
}

// Three hosts run one job on one PostgreSQL ledger (each with its own job file naming its own
// anchor): hosts 0 and 1 race over the same wafer, host 2 provisions another and is killed
// with SIGKILL at random moments ten times and started again, and the server itself restarts
// once in the middle. Hosts that fail while it is down are started again, as an operator would.
// At the end every die has exactly one identity, the quota is used exactly, `ledger verify`
// passes against every host's anchor, and the export checks out die by die.
TEST(RunCli, ThreeHostsShareAPostgresJobThroughKillsAndAServerRestart) {
    using waferprov::testing::PostgresServer;
    if (!PostgresServer::find_binaries())
        GTEST_SKIP() << "the PostgreSQL server binaries are absent (tools/install-deps.sh "
                        "installs them)";
    auto server = PostgresServer::start();
    ASSERT_TRUE(server.ok()) << server.error().describe();
    ASSERT_TRUE((*server)->create_database("job").ok());
    const std::string url = (*server)->url("job");
    TempDir t{"hosts"};
    const fs::path log = t.path() / "log.txt";
    ASSERT_EQ(run({"job", "init", "--out", (t.path() / "job").string()}, log), 0)
        << waferprov::testing::read_text(log);
    for (const auto& [name, wafer] : {std::pair{"a.xml", "1"}, std::pair{"b.xml", "2"}})
        ASSERT_EQ(run({"wafer", "synth", "--diameter", "100", "--die", "2x2", "--lot", "LOTP",
                       "--wafer", wafer, "--out", (t.path() / name).string()},
                      log),
                  0)
            << waferprov::testing::read_text(log);
    const size_t expected = selected_dies(t.path() / "a.xml") + selected_dies(t.path() / "b.xml");
    // Each host's job file: the quota exactly the two wafers, the ledger the database, and an
    // anchor of its own.
    const std::string base = waferprov::testing::read_text(t.path() / "job/job.toml");
    for (int h = 0; h < 3; ++h) {
        std::string text = std::regex_replace(base, std::regex("\nquota = [0-9]+"),
                                              "\nquota = " + std::to_string(expected));
        text = std::regex_replace(
            text, std::regex("\nledger = [^\n]*"),
            "\nledger = \"" + url + "\"\nanchor = \"host" + std::to_string(h) + ".anchor\"");
        std::ofstream(t.path() / ("job/host" + std::to_string(h) + ".toml")) << text;
    }
    auto host = [&](int h, const char* map) {
        return std::vector<std::string>{
            "run",
            "--job",
            (t.path() / ("job/host" + std::to_string(h) + ".toml")).string(),
            "--map",
            (t.path() / map).string(),
            "--no-progress",
            "--batch",
            "16",
            "--threads",
            "1",
            "--out",
            (t.path() / ("rep" + std::to_string(h))).string()};
    };
    std::unique_ptr<Ledger> watch;
    auto committed = [&]() -> uint64_t {
        if (!watch) {
            auto l = Ledger::open_existing(url);
            if (!l.ok()) return 0;
            watch = std::move(*l);
        }
        auto c = watch->counts();
        return c.ok() ? c->total() : 0;
    };
    const fs::path logs[3] = {t.path() / "host0.log", t.path() / "host1.log",
                              t.path() / "host2.log"};
    pid_t racers[2] = {spawn(host(0, "a.xml"), logs[0]), spawn(host(1, "a.xml"), logs[1])};
    ASSERT_GT(racers[0], 0);
    ASSERT_GT(racers[1], 0);
    std::mt19937 rng(std::random_device{}());
    int killed = 0;
    bool restarted = false;
    for (int i = 0; i < 10; ++i) {
        if (kill_mid_wafer(host(2, "b.xml"), logs[2], committed, rng, 200)) ++killed;
        if (i == 4) {  // the server restarts under the two racing hosts
            ASSERT_TRUE((*server)->restart().ok());
            restarted = true;
        }
    }
    EXPECT_TRUE(restarted);
    std::printf("[   info   ] host 2 killed %d of 10 times mid-wafer\n", killed);
    EXPECT_GT(killed, 0);
    // Hosts that stopped with an error (the server went away under them) are started again
    // until their wafer is done; host 2 finishes its wafer.
    int reruns = 0;
    for (int h = 0; h < 2; ++h) {
        int status = waferprov::testing::wait_process(racers[h], std::chrono::minutes(10));
        for (int attempt = 0; status != 0 && attempt < 5; ++attempt, ++reruns)
            status = run(host(h, "a.xml"), logs[h]);
        EXPECT_EQ(status, 0) << waferprov::testing::read_text(logs[h]);
    }
    std::printf("[   info   ] %zu dies; hosts 0 and 1 started again %d times\n", expected, reruns);
    ASSERT_EQ(run(host(2, "b.xml"), logs[2]), 0) << waferprov::testing::read_text(logs[2]);
    watch.reset();
    auto l = Ledger::open_existing(url);
    ASSERT_TRUE(l.ok()) << l.error().describe();
    EXPECT_EQ((*l)->counts()->total(), expected);
    EXPECT_EQ((*l)->quota()->used, expected);
    l->reset();
    for (int h = 0; h < 3; ++h)
        EXPECT_EQ(run({"ledger", "verify", "--job",
                       (t.path() / ("job/host" + std::to_string(h) + ".toml")).string()},
                      log),
                  0)
            << waferprov::testing::read_text(log);
    EXPECT_NE(waferprov::testing::read_text(log).find("the chain contains its head"),
              std::string::npos)
        << waferprov::testing::read_text(log);
    // The customer's check of an export is the same whichever store it came from.
    export_and_check(t.path(), t.path() / "job/host0.toml", "", log, expected);
}
