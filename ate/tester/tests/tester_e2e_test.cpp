// waferprov-tester against a real `waferprov serve` (no mocks): job init, wafer synth, serve as a
// child process, the simulator as a child process, then the ledger must hold exactly what the
// simulator reported. Includes the kill -9 of the server mid-wafer.
#include <algorithm>
#include <fstream>

#include "e2e_support.hpp"

using namespace waferprov;
using namespace waferprov::tester::e2e;

namespace {

// A 50 mm wafer of 2 x 2 mm dies: a few hundred dies, a couple of seconds end to end.
constexpr int kDiameter = 50;

}  // namespace

TEST(TesterE2E, SixteenSiteCardProgramsTheWholeWafer) {
    JobSetup job("tester_e2e", kDiameter);
    ASSERT_GT(job.dies, 100u);
    Server server(job.job_toml(), job.tmp.path());
    const std::string endpoint = server.start();
    ASSERT_FALSE(endpoint.empty()) << server.failure();

    const fs::path log = job.tmp.path() / "tester.log";
    ASSERT_EQ(run(kTester, job.tester_args(endpoint, 16, {"--seed", "1"}), log), 0)
        << read_text(log) << server.logs();
    EXPECT_EQ(server.stop(), 0) << server.logs();

    const json s = job.summary();
    EXPECT_EQ(s["dies_to_provision"], job.dies);
    EXPECT_EQ(s["card"]["columns"], 4);
    EXPECT_EQ(s["card"]["rows"], 4);
    EXPECT_EQ(s["requested"], job.dies);
    EXPECT_EQ(s["ok"], job.dies);
    EXPECT_EQ(s["reissued"], 0);
    EXPECT_EQ(s["programmed"], job.dies);
    EXPECT_EQ(s["check_failures"], 0);
    EXPECT_EQ(s["results_acked"], job.dies);
    EXPECT_EQ(s["retest_touchdowns"], 0);
    EXPECT_GE(s["touchdowns"].get<size_t>() * 16, job.dies);
    EXPECT_EQ(s["latency_ms"]["calls"], s["touchdowns"]);
    EXPECT_NE(read_text(log).find("PASS: every die provisioned"), std::string::npos)
        << read_text(log);
    expect_ledger_matches(job, s);
    const auto c = job.counts();
    EXPECT_EQ(c.programmed, job.dies);
}

TEST(TesterE2E, ProgrammingFailuresAndRetestsEndInTheLedgerAsReported) {
    JobSetup job("tester_e2e", kDiameter);
    Server server(job.job_toml(), job.tmp.path());
    const std::string endpoint = server.start();
    ASSERT_FALSE(endpoint.empty()) << server.failure();

    const fs::path log = job.tmp.path() / "tester.log";
    ASSERT_EQ(run(kTester,
                  job.tester_args(endpoint, 8,
                                  {"--fail-rate", "0.3", "--retest-rate", "1", "--seed", "42"}),
                  log),
              0)
        << read_text(log) << server.logs();
    EXPECT_EQ(server.stop(), 0) << server.logs();

    const json s = job.summary();
    EXPECT_EQ(s["card"]["columns"], 4);
    EXPECT_EQ(s["card"]["rows"], 2);
    EXPECT_EQ(s["check_failures"], 0);
    EXPECT_GT(s["failed_programming"].get<size_t>(), 0u);
    EXPECT_GT(s["retest_touchdowns"].get<size_t>(), 0u);
    size_t retested = 0, failed_twice = 0, programmed = 0;
    for (const auto& d : s["dies"]) {
        if (d["retested"].get<bool>()) {
            ++retested;
            EXPECT_EQ(d["deliveries"], 2) << d.dump();
            EXPECT_EQ(d["status"], "REISSUED") << d.dump();
            failed_twice += d["outcome"] == "FAILED";
        } else {
            EXPECT_EQ(d["deliveries"], 1) << d.dump();
        }
        programmed += d["outcome"] == "PROGRAMMED";
    }
    // --retest-rate 1: every die whose programming failed came back once, got the same
    // identity again (REISSUED, byte for byte: else it would be a check failure) and was
    // programmed again, failing again at the same rate.
    EXPECT_EQ(s["reissued"], retested);
    EXPECT_EQ(s["ok"], job.dies);
    EXPECT_EQ(s["results_acked"], job.dies + retested);
    EXPECT_EQ(s["programmed"], programmed);
    EXPECT_LT(failed_twice, retested);
    expect_ledger_matches(job, s);

    // The same seed makes the same choices.
    JobSetup again("tester_e2e", kDiameter);
    Server server2(again.job_toml(), again.tmp.path());
    const std::string endpoint2 = server2.start();
    ASSERT_FALSE(endpoint2.empty()) << server2.failure();
    ASSERT_EQ(run(kTester,
                  again.tester_args(endpoint2, 8,
                                    {"--fail-rate", "0.3", "--retest-rate", "1", "--seed", "42"}),
                  log),
              0)
        << read_text(log);
    const json s2 = again.summary();
    EXPECT_EQ(s2["programmed"], s["programmed"]);
    EXPECT_EQ(s2["retest_touchdowns"], s["retest_touchdowns"]);
    for (size_t i = 0; i < s["dies"].size(); ++i)
        EXPECT_EQ(s2["dies"][i]["bin"], s["dies"][i]["bin"]);
}

TEST(TesterE2E, KillNineOfTheServerMidWaferLosesNothingAndIssuesNothingTwice) {
    // 80 mm: ~1000 dies, long enough on the prober for two kills on a fast machine. No index
    // time, so that a kill usually lands while a request is in flight (its answer is lost and
    // the simulator must send it again after --timeout-ms) rather than between touchdowns
    // (where ZeroMQ queues the next request until the host is back).
    JobSetup job("tester_e2e", 80);
    Server server(job.job_toml(), job.tmp.path());
    const std::string endpoint = server.start();
    ASSERT_FALSE(endpoint.empty()) << server.failure();
    const std::string bind = endpoint;  // restart on the same port

    const fs::path log = job.tmp.path() / "tester.log";
    Child tester(spawn(
        kTester,
        job.tester_args(endpoint, 16, {"--timeout-ms", "1000", "--give-up-s", "60", "--seed", "9"}),
        log));
    ASSERT_GT(tester.pid(), 0);
    int kills = 0;
    for (const double fraction : {0.25, 0.6}) {
        // Wait until that part of the wafer is programmed, then kill -9 the server, mid-wafer.
        const auto deadline = Clock::now() + std::chrono::seconds(90);
        while (Clock::now() < deadline && static_cast<double>(job.counts().programmed) <
                                              fraction * static_cast<double>(job.dies)) {
            ASSERT_TRUE(tester.running())
                << "the simulator ended before the kill: " << read_text(log);
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ASSERT_LT(job.counts().programmed, job.dies) << "the wafer was finished before the kill";
        server.kill9();
        ++kills;
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        ASSERT_EQ(server.start(bind), bind) << server.failure();
    }
    EXPECT_EQ(kills, 2);
    ASSERT_EQ(tester.wait(std::chrono::seconds(180)), 0) << read_text(log) << server.logs();
    EXPECT_EQ(server.stop(), 0) << server.logs();

    const json s = job.summary();
    EXPECT_EQ(s["check_failures"], 0);
    EXPECT_EQ(s["programmed"], job.dies) << read_text(log);
    EXPECT_EQ(s["refused"].size(), 0u) << s["refused"].dump();
    expect_ledger_matches(job, s);  // one identity per die, nothing lost, nothing twice
    std::cout << "kill -9 twice: " << s["resends"] << " requests sent again, " << s["reissued"]
              << " dies REISSUED\n";
    const auto c = job.counts();
    EXPECT_EQ(c.programmed, job.dies);
    EXPECT_EQ(c.total(), job.dies);
}

namespace {

// Gives every die of the job's map a random UID in a DeviceIdMap, as a map from an earlier test
// step would (the `tester` UID policy reads them with --uid-from-map); `uid_at` gets each.
void give_every_die_a_uid(const JobSetup& job, std::map<std::pair<int, int>, std::string>& uid_at) {
    auto map = host::read_map_file(job.map);
    ASSERT_TRUE(map.ok());
    for (auto& d : map->dies) {
        wpid1::Uid u{};
        const Bytes r = reference::random_bytes(16);
        std::copy(r.begin(), r.end(), u.begin());
        d.uid = u;
        uid_at[{d.x, d.y}] = to_hex(u);
    }
    auto xml = host::write_e142(*map);
    ASSERT_TRUE(xml.ok()) << xml.error().message;
    std::ofstream(job.map, std::ios::trunc) << *xml;
}

}  // namespace

TEST(TesterE2E, DiesSendTheirOwnUidsFromTheMapUnderTheTesterPolicy) {
    JobSetup job("tester_e2e", 30, {"--uid-policy", "tester"});
    std::map<std::pair<int, int>, std::string> uid_at;
    ASSERT_NO_FATAL_FAILURE(give_every_die_a_uid(job, uid_at));
    Server server(job.job_toml(), job.tmp.path());
    const std::string endpoint = server.start();
    ASSERT_FALSE(endpoint.empty()) << server.failure();

    const fs::path log = job.tmp.path() / "tester.log";
    // Without --uid-from-map the host has no UID for any die.
    EXPECT_EQ(run(kTester, job.tester_args(endpoint, 16), log), 1) << read_text(log);
    EXPECT_EQ(job.summary()["refused"]["NO_UID"], job.dies) << read_text(log);
    ASSERT_EQ(run(kTester, job.tester_args(endpoint, 16, {"--uid-from-map"}), log), 0)
        << read_text(log);
    EXPECT_EQ(server.stop(), 0) << server.logs();
    const json s = job.summary();
    EXPECT_EQ(s["programmed"], job.dies);
    for (const auto& d : s["dies"]) {
        const std::pair<int, int> at{d["x"].get<int>(), d["y"].get<int>()};
        EXPECT_EQ(d["uid"], uid_at[at]) << d.dump();
    }
    expect_ledger_matches(job, s);  // and the ledger holds the map's UIDs
}

TEST(TesterE2E, ATamperedKikFailsTheDiesChecks) {
    JobSetup job("tester_e2e", 30);
    // The dies' ROM holds another KIK than the job's: no payload can unwrap.
    std::string kik = read_text(job.dir / "kik.hex");
    kik[0] = kik[0] == '0' ? '1' : '0';
    std::ofstream(job.dir / "kik.hex", std::ios::trunc) << kik;
    Server server(job.job_toml(), job.tmp.path());
    const std::string endpoint = server.start();
    ASSERT_FALSE(endpoint.empty()) << server.failure();

    const fs::path log = job.tmp.path() / "tester.log";
    EXPECT_EQ(run(kTester, job.tester_args(endpoint, 16), log), 1) << read_text(log);
    EXPECT_EQ(server.stop(), 0) << server.logs();
    const std::string out = read_text(log);
    EXPECT_NE(out.find("integrity check failed"), std::string::npos) << out;
    EXPECT_NE(out.find("FAIL: "), std::string::npos) << out;

    const json s = job.summary();
    EXPECT_EQ(s["check_failures"], job.dies);
    EXPECT_EQ(s["programmed"], 0);
    EXPECT_EQ(s["exit_status"], 1);
    for (const auto& d : s["dies"]) {
        EXPECT_EQ(d["bin"], "CHK");
        EXPECT_FALSE(d["checked_ok"].get<bool>());
    }
    expect_ledger_matches(job, s);  // every die FAILED with bin CHK
    EXPECT_EQ(job.counts().failed, job.dies);
}

TEST(TesterE2E, InsecureLinkNeedsNoCurveKeys) {
    JobSetup job("tester_e2e", 30);
    Server server(job.job_toml(), job.tmp.path());
    const std::string endpoint = server.start("tcp://127.0.0.1:0", {"--insecure"});
    ASSERT_FALSE(endpoint.empty()) << server.failure();
    auto args = job.tester_args(endpoint, 64, {"--insecure"});
    // No --key, no --server-key.
    for (const char* drop : {"--key", "--server-key"}) {
        auto it = std::find(args.begin(), args.end(), drop);
        ASSERT_NE(it, args.end());
        args.erase(it, it + 2);
    }
    const fs::path log = job.tmp.path() / "tester.log";
    ASSERT_EQ(run(kTester, args, log), 0) << read_text(log) << server.logs();
    EXPECT_EQ(server.stop(), 0) << server.logs();
    const json s = job.summary();
    EXPECT_EQ(s["card"]["columns"], 8);
    EXPECT_EQ(s["programmed"], job.dies);
    expect_ledger_matches(job, s);
}

TEST(TesterE2E, UsageAndSetupErrorsAreNamed) {
    waferprov::testing::TempDir t("tester_e2e");
    const fs::path log = t.path() / "log.txt";
    EXPECT_EQ(run(kTester, {}, log), 2);
    EXPECT_NE(read_text(log).find("--map is required"), std::string::npos) << read_text(log);
    EXPECT_EQ(run(kTester, {"--help"}, log), 0);

    JobSetup job("tester_e2e", 30);
    auto args = job.tester_args("tcp://127.0.0.1:9", 4);
    args[1] = (t.path() / "no-such-map.xml").string();
    std::ofstream(log, std::ios::trunc).flush();
    EXPECT_EQ(run(kTester, args, log), 1);
    EXPECT_NE(read_text(log).find("no-such-map.xml"), std::string::npos) << read_text(log);

    // Nobody listens: the simulator gives up after --give-up-s, naming the endpoint.
    args = job.tester_args("tcp://127.0.0.1:9", 4,
                           {"--timeout-ms", "200", "--give-up-s", "1", "--quiet"});
    std::ofstream(log, std::ios::trunc).flush();
    EXPECT_EQ(run(kTester, args, log), 1);
    EXPECT_NE(read_text(log).find("opening a session with tcp://127.0.0.1:9"), std::string::npos)
        << read_text(log);
    EXPECT_NE(read_text(log).find("gave up"), std::string::npos) << read_text(log);
}

// Issue #10 through the tester link: two physical wafers that share a lot and a wafer number
// are told apart by the substrate id the tester sends (TOUCHDOWN_WAFER, protocol 1.1). The
// second wafer's dies are refused with CONFLICT and an ALARM, never handed the first wafer's
// identities; a 1.0 touchdown (no substrate id) to this derived-UID job without maps is refused;
// with the map served, a touchdown naming another substrate is refused.
TEST(TesterE2E, TwoWafersSharingALotAndNumberAreNeverOneWafer) {
    JobSetup job("tester_e2e_substrate", 30);
    ASSERT_GT(job.dies, 20u);
    Server server(job.job_toml(), job.tmp.path());
    std::string endpoint = server.start();
    ASSERT_FALSE(endpoint.empty()) << server.failure();
    const fs::path log = job.tmp.path() / "tester.log";
    ASSERT_EQ(run(kTester, job.tester_args(endpoint, 16, {"--seed", "1"}), log), 0)
        << read_text(log) << server.logs();
    expect_ledger_matches(job, job.summary());

    // Another physical wafer: same lot, same number, same die positions, another substrate id.
    EXPECT_EQ(run(kTester, job.tester_args(endpoint, 16, {"--substrate", "LOTSIM-03-OTHER"}), log),
              1)
        << read_text(log);
    json s = job.summary();
    EXPECT_EQ(s["refused"]["CONFLICT"], job.dies) << read_text(log);
    EXPECT_EQ(s["ok"], 0) << read_text(log);
    EXPECT_EQ(s["reissued"], 0) << read_text(log);
    // An older tester that sends no substrate id: refused too (derived UIDs, no map).
    EXPECT_EQ(run(kTester, job.tester_args(endpoint, 16, {"--no-substrate"}), log), 1)
        << read_text(log);
    s = job.summary();
    EXPECT_EQ(s["refused"]["CONFLICT"], job.dies) << read_text(log);
    EXPECT_NE(read_text(log).find("must name the wafer's substrate id"), std::string::npos)
        << read_text(log);
    EXPECT_EQ(server.stop(), 0) << server.logs();

    // The ledger still holds exactly the first wafer's identities, and the ALARM of the second.
    EXPECT_EQ(job.counts().programmed, job.dies);
    const fs::path out = job.tmp.path() / "export";
    ASSERT_EQ(
        run(kWaferprov,
            {"ledger", "export", "--job", job.job_toml().string(), "--out", out.string()}, job.log),
        0)
        << read_text(job.log);
    const std::string events = read_text(out / "events.jsonl");
    EXPECT_NE(events.find("wafer-number-reused"), std::string::npos);

    // With the wafer's map served, the map names the substrate: another one is refused.
    endpoint = server.start("tcp://127.0.0.1:0", {"--map", job.map.string()});
    ASSERT_FALSE(endpoint.empty()) << server.failure();
    EXPECT_EQ(run(kTester, job.tester_args(endpoint, 16, {"--substrate", "LOTSIM-03-OTHER"}), log),
              1)
        << read_text(log);
    s = job.summary();
    EXPECT_EQ(s["refused"]["CONFLICT"], job.dies) << read_text(log);
    EXPECT_NE(read_text(log).find("the map served for LOTSIM wafer 3 is substrate 'LOTSIM-03'"),
              std::string::npos)
        << read_text(log);
    // ... while the right wafer is the one the ledger holds: its dies are already programmed.
    EXPECT_EQ(run(kTester, job.tester_args(endpoint, 16, {"--seed", "2"}), log), 1)
        << read_text(log);
    s = job.summary();
    EXPECT_EQ(s["refused"]["ALREADY_PROGRAMMED"], job.dies) << read_text(log);
    EXPECT_EQ(s["refused"].count("CONFLICT"), 0u) << read_text(log);
    EXPECT_EQ(server.stop(), 0) << server.logs();
}

// Handler mode (issue #20): the same job's wafer through sort, then its parts, packaged, through
// an 8-site handler: every part provisioned at sort is verified by its signature, the three
// swapped parts (valid UIDs carrying other parts' keys) are caught, the two parts never seen at
// sort are refused by this derived-UID job, and `ledger verify` holds the chain with it all.
TEST(TesterE2E, HandlerModeVerifiesTheWafersPartsAndCatchesSwappedOnes) {
    JobSetup job("tester_e2e_handler", kDiameter);
    ASSERT_GT(job.dies, 10u);
    Server server(job.job_toml(), job.tmp.path());
    const std::string endpoint = server.start();
    ASSERT_FALSE(endpoint.empty()) << server.failure();
    const fs::path log = job.tmp.path() / "tester.log";
    ASSERT_EQ(run(kTester,
                  job.tester_args(
                      endpoint, 16,
                      {"--seed", "7", "--handler-sites", "8", "--swapped", "3", "--unsorted", "2"}),
                  log),
              0)
        << read_text(log) << server.logs();
    EXPECT_EQ(server.stop(), 0) << server.logs();
    const std::string text = read_text(log);
    const std::string want = "final test          " + std::to_string(job.dies + 2) +
                             " parts in a 8-site handler: " + std::to_string(job.dies - 3) +
                             " verified, 3 of 3 swapped parts caught, 2 of 2 unsorted parts "
                             "refused, 0 provisioned, 0 problems";
    EXPECT_NE(text.find(want), std::string::npos) << text;
    expect_ledger_matches(job, job.summary());
    auto l = host::Ledger::open_existing(job.ledger());
    ASSERT_TRUE(l.ok());
    const auto finals = (*l)->list_final().value();
    EXPECT_EQ(finals.size(), job.dies);  // one final-test record per part from sort
    size_t verified = 0, mismatch = 0;
    for (const auto& f : finals) {
        verified += f.state == host::FinalState::kVerified;
        mismatch += f.state == host::FinalState::kMismatch;
        EXPECT_EQ(f.loc.handler, "HANDLER-1");
        // No --strip-map: the carrier is unknown, and sent as such (has_carrier = 0).
        EXPECT_EQ(f.loc.carrier, "") << f.loc.carrier;
        EXPECT_EQ(f.loc.row, -1);
        EXPECT_EQ(f.loc.column, -1);
        EXPECT_GE(f.loc.site, 1);
        EXPECT_LE(f.loc.site, 8);
    }
    EXPECT_EQ(verified, job.dies - 3);
    EXPECT_EQ(mismatch, 3u);
    EXPECT_EQ(job.counts().programmed, job.dies);  // final test issued nothing
}

// Handler mode under the `tester` UID policy (issue #20): the dies bring their UIDs from the
// map at sort, then their parts and three parts sort never saw go through the handler. The
// sorted parts are verified (one swapped part caught); the three strangers are provisioned at
// final test: each checks its payload as a die does and reports PROGRAMMED, and the ledger
// holds them as packaged parts, PROVISIONED where the handler had them, counted in the quota.
TEST(TesterE2E, HandlerModeProvisionsPartsSortNeverSawUnderTheTesterPolicy) {
    JobSetup job("tester_e2e_handler_tester", 30, {"--uid-policy", "tester"});
    std::map<std::pair<int, int>, std::string> uid_at;
    ASSERT_NO_FATAL_FAILURE(give_every_die_a_uid(job, uid_at));
    Server server(job.job_toml(), job.tmp.path());
    const std::string endpoint = server.start();
    ASSERT_FALSE(endpoint.empty()) << server.failure();
    const fs::path log = job.tmp.path() / "tester.log";
    ASSERT_EQ(run(kTester,
                  job.tester_args(endpoint, 16,
                                  {"--uid-from-map", "--seed", "3", "--handler-sites", "4",
                                   "--swapped", "1", "--unsorted", "3"}),
                  log),
              0)
        << read_text(log) << server.logs();
    EXPECT_EQ(server.stop(), 0) << server.logs();
    const std::string text = read_text(log);
    const std::string want = "final test          " + std::to_string(job.dies + 3) +
                             " parts in a 4-site handler: " + std::to_string(job.dies - 1) +
                             " verified, 1 of 1 swapped parts caught, 0 of 3 unsorted parts "
                             "refused, 3 provisioned, 0 problems";
    EXPECT_NE(text.find(want), std::string::npos) << text;
    expect_ledger_matches(job, job.summary(), 3);

    auto l = host::Ledger::open_existing(job.ledger());
    ASSERT_TRUE(l.ok());
    std::set<std::string> strangers;
    const json summary = job.summary();
    for (const auto& p : summary["final_test"]["handler_parts"])
        if (!p["sorted"].get<bool>()) strangers.insert(p["uid"].get<std::string>());
    ASSERT_EQ(strangers.size(), 3u);
    size_t provisioned = 0;
    const auto finals = (*l)->list_final().value();
    for (const auto& f : finals) {
        if (strangers.count(to_hex(f.uid)) == 0) continue;
        ++provisioned;
        EXPECT_EQ(f.state, host::FinalState::kProvisioned);
        EXPECT_EQ(f.loc.handler, "HANDLER-1");
        const auto rec = (*l)->find_uid(f.uid).value();
        ASSERT_TRUE(rec);
        EXPECT_TRUE(rec->loc.packaged);
        EXPECT_EQ(rec->state, host::DieState::kProgrammed);
    }
    EXPECT_EQ(provisioned, 3u);
    EXPECT_EQ(job.counts().programmed, job.dies + 3);
}

namespace {

// `count` strips of 16 x 4 positions, UpperLeft / DownRight (row = picture row from the top),
// ids "<prefix>-<k>": in every strip (1, 5) is an X-out unit (bin X, not to test) and (3, 15)
// holds no unit (NullBin). Appends the strips' good positions, in order, to `slots`.
std::string strip_file(const std::string& prefix, int count,
                       std::vector<std::tuple<std::string, int, int>>& slots) {
    std::string subs, maps;
    for (int k = 1; k <= count; ++k) {
        const std::string id = prefix + "-" + std::to_string(k);
        subs += "<Substrate SubstrateType=\"Strip\" SubstrateId=\"" + id +
                "\"><LotId>ASSY1</LotId></Substrate>\n";
        maps += "<SubstrateMap SubstrateType=\"Strip\" SubstrateId=\"" + id +
                "\" OriginLocation=\"UpperLeft\" AxisDirection=\"DownRight\">\n"
                "<Overlay MapName=\"Assembly\"><BinCodeMap BinType=\"Ascii\" NullBin=\".\">\n"
                "<BinDefinitions><BinDefinition BinCode=\"1\" BinQuality=\"Pass\"/>"
                "<BinDefinition BinCode=\"X\" BinQuality=\"Fail\"/></BinDefinitions>\n";
        for (int row = 0; row < 4; ++row) {
            std::string codes;
            for (int col = 0; col < 16; ++col) {
                if (row == 1 && col == 5) {
                    codes += 'X';
                } else if (row == 3 && col == 15) {
                    codes += '.';
                } else {
                    codes += '1';
                    slots.emplace_back(id, row, col);
                }
            }
            maps += "<BinCode>" + codes + "</BinCode>\n";
        }
        maps += "</BinCodeMap></Overlay></SubstrateMap>\n";
    }
    return "<?xml version=\"1.0\"?>\n<MapData>\n<Layouts><Layout LayoutId=\"Strip\">"
           "<Dimension X=\"16\" Y=\"4\"/></Layout></Layouts>\n<Substrates>\n" +
           subs + "</Substrates>\n<SubstrateMaps>\n" + maps + "</SubstrateMaps>\n</MapData>\n";
}

}  // namespace

// Strip maps (issue #20): the handler places the wafer's parts in the good positions of the
// strips of two --strip-map files, in order, and FINAL_TOUCHDOWN carries each part's strip, row
// and column: the ledger's final-test rows hold exactly those, X-out and empty positions are
// never used, and the parts failing final test (--final-fail) are FAILED with their bin.
TEST(TesterE2E, HandlerModeSendsEachPartsStripPositionFromTheStripMaps) {
    JobSetup job("tester_e2e_strips", kDiameter);
    ASSERT_GT(job.dies, 10u);
    std::vector<std::tuple<std::string, int, int>> slots;
    const int strips = static_cast<int>(job.dies / 62) + 1;  // 62 good positions a strip
    const fs::path a = job.tmp.path() / "strips-a.xml", b = job.tmp.path() / "strips-b.xml";
    std::ofstream(a) << strip_file("SA", strips / 2, slots);
    std::ofstream(b) << strip_file("SB", strips - strips / 2 + 1, slots);
    ASSERT_GE(slots.size(), job.dies);
    Server server(job.job_toml(), job.tmp.path());
    const std::string endpoint = server.start();
    ASSERT_FALSE(endpoint.empty()) << server.failure();
    const fs::path log = job.tmp.path() / "tester.log";
    ASSERT_EQ(run(kTester,
                  job.tester_args(
                      endpoint, 16,
                      {"--seed", "11", "--handler-sites", "8", "--swapped", "2", "--final-fail",
                       "3", "--strip-map", a.string(), "--strip-map", b.string()}),
                  log),
              0)
        << read_text(log) << server.logs();
    EXPECT_EQ(server.stop(), 0) << server.logs();
    EXPECT_NE(read_text(log).find("3 of 3 failing parts failed, 0 problems"), std::string::npos)
        << read_text(log);

    // The parts took the first job.dies good positions, in file, strip, row, column order.
    std::map<std::tuple<std::string, int, int>, size_t> slot_index;
    for (size_t i = 0; i < slots.size(); ++i) slot_index[slots[i]] = i;
    auto l = host::Ledger::open_existing(job.ledger());
    ASSERT_TRUE(l.ok());
    const auto finals = (*l)->list_final().value();
    ASSERT_EQ(finals.size(), job.dies);
    std::set<size_t> used;
    size_t failed = 0, mismatch = 0;
    for (const auto& f : finals) {
        const auto at = std::tuple{f.loc.carrier, f.loc.row, f.loc.column};
        auto it = slot_index.find(at);
        ASSERT_NE(it, slot_index.end())
            << "part " << to_hex(f.uid) << " at " << f.loc.carrier << " (" << f.loc.row << ", "
            << f.loc.column << ") is on no good position of the strip maps";
        EXPECT_LT(it->second, job.dies) << f.loc.carrier;
        EXPECT_TRUE(used.insert(it->second).second) << "two parts on one position";
        EXPECT_EQ(f.loc.site, static_cast<int>(it->second % 8) + 1) << to_hex(f.uid);
        if (f.state == host::FinalState::kFailed) {
            ++failed;
            EXPECT_EQ(f.bin, "FT");
        }
        mismatch += f.state == host::FinalState::kMismatch;
    }
    EXPECT_EQ(failed, 3u);
    EXPECT_EQ(mismatch, 2u);
    // The simulator's account of where each part was agrees with the ledger's.
    const json s = job.summary();
    ASSERT_EQ(s["final_test"]["handler_parts"].size(), job.dies);
    for (const auto& p : s["final_test"]["handler_parts"]) {
        auto uid = from_hex_fixed<wpid1::kUidSize>(p["uid"].get<std::string>(), "uid");
        ASSERT_TRUE(uid.ok());
        auto f = (*l)->find_final(*uid).value();
        ASSERT_TRUE(f);
        EXPECT_EQ(f->loc.carrier, p["carrier"].get<std::string>());
        EXPECT_EQ(f->loc.row, p["row"].get<int>());
        EXPECT_EQ(f->loc.column, p["column"].get<int>());
    }
}

// A wafer map given as a strip map is refused before anything is sent, naming its type; too
// few strip positions for the parts is a problem the run names.
TEST(TesterE2E, AStripMapThatIsNoStripMapIsRefusedByName) {
    JobSetup job("tester_e2e_strip_errors", kDiameter);
    const fs::path log = job.tmp.path() / "tester.log";
    EXPECT_EQ(run(kTester,
                  job.tester_args("tcp://127.0.0.1:1", 16,
                                  {"--handler-sites", "8", "--strip-map", job.map.string()}),
                  log),
              1);
    EXPECT_NE(read_text(log).find("--strip-map: " + job.map.string() + ": line "),
              std::string::npos)
        << read_text(log);
    EXPECT_NE(read_text(log).find("is SubstrateType 'Wafer', not Strip"), std::string::npos)
        << read_text(log);

    std::vector<std::tuple<std::string, int, int>> slots;
    const fs::path small = job.tmp.path() / "one-strip.xml";
    std::ofstream(small) << strip_file("S", 1, slots);
    Server server(job.job_toml(), job.tmp.path());
    const std::string endpoint = server.start();
    ASSERT_FALSE(endpoint.empty()) << server.failure();
    EXPECT_EQ(
        run(kTester,
            job.tester_args(endpoint, 16, {"--handler-sites", "8", "--strip-map", small.string()}),
            log),
        1);
    EXPECT_NE(read_text(log).find(std::to_string(job.dies) +
                                  " parts but the 1 strips of --strip-map hold only 62 good "
                                  "positions"),
              std::string::npos)
        << read_text(log);
    EXPECT_EQ(server.stop(), 0) << server.logs();
}

namespace {

// The PRRs of an STDF file, read here (little-endian, as FAR CPU_TYPE 2 says): PART_ID ->
// (flags, hard bin, soft bin, X, Y, site).
struct FinalPrr {
    int flags = 0, hard = 0, soft = 0, x = 0, y = 0, site = 0;
};
std::map<std::string, FinalPrr> final_prrs(const fs::path& file) {
    const std::string b = read_text(file);
    auto u1 = [&](size_t at) { return static_cast<int>(static_cast<uint8_t>(b.at(at))); };
    auto u2 = [&](size_t at) { return u1(at) | (u1(at + 1) << 8); };
    std::map<std::string, FinalPrr> out;
    EXPECT_GE(b.size(), 6u);
    EXPECT_EQ(u1(2), 0);  // FAR first
    EXPECT_EQ(u1(4), 2);  // CPU_TYPE 2: little-endian
    for (size_t at = 0; at + 4 <= b.size();) {
        const size_t len = static_cast<size_t>(u2(at));
        const size_t body = at + 4;
        if (u1(at + 2) == 5 && u1(at + 3) == 20) {
            FinalPrr p;
            p.site = u1(body + 1);
            p.flags = u1(body + 2);
            p.hard = u2(body + 5);
            p.soft = u2(body + 7);
            p.x = static_cast<int16_t>(u2(body + 9));
            p.y = static_cast<int16_t>(u2(body + 11));
            const size_t id_len = static_cast<size_t>(u1(body + 17));
            out[b.substr(body + 18, id_len)] = p;
        }
        at = body + len;
        EXPECT_LE(at, b.size()) << "a record runs past the end of " << file;
    }
    return out;
}

}  // namespace

// The final-test reports (issue #20) against a real job: wafer 4 of the lot is sorted and never
// goes to final test; wafer 3 is sorted, then its parts go through an 8-site handler on strips
// with 2 swapped parts and 2 failing ones. `waferprov report --final-test` must write the lot's
// STDF (a PRR per part seen, PART_ID the UID, no X/Y) and a reconciliation that lists each part
// under what happened to it, and exit 1 naming the mismatch.
TEST(TesterE2E, FinalTestReportsReconcileSortWithFinalTest) {
    JobSetup job("tester_e2e_final_report", kDiameter);
    ASSERT_GT(job.dies, 10u);
    const fs::path w4 = job.tmp.path() / "wafer4.xml";
    ASSERT_EQ(run(kWaferprov,
                  {"wafer", "synth", "--diameter", "30", "--die", "2x2", "--lot", "LOTSIM",
                   "--wafer", "4", "--seed", "5", "--out", w4.string()},
                  job.log),
              0)
        << read_text(job.log);
    std::vector<std::tuple<std::string, int, int>> slots;
    const fs::path strips = job.tmp.path() / "strips.xml";
    std::ofstream(strips) << strip_file("ST", static_cast<int>(job.dies / 62) + 1, slots);
    Server server(job.job_toml(), job.tmp.path());
    const std::string endpoint = server.start();
    ASSERT_FALSE(endpoint.empty()) << server.failure();
    const fs::path log = job.tmp.path() / "tester.log";
    auto sort_only = job.tester_args(endpoint, 16, {"--seed", "3"});
    sort_only[1] = w4.string();  // --map wafer4.xml
    ASSERT_EQ(run(kTester, sort_only, log), 0) << read_text(log) << server.logs();
    ASSERT_EQ(run(kTester,
                  job.tester_args(endpoint, 16,
                                  {"--seed", "9", "--handler-sites", "8", "--swapped", "2",
                                   "--final-fail", "2", "--strip-map", strips.string()}),
                  log),
              0)
        << read_text(log) << server.logs();
    EXPECT_EQ(server.stop(), 0) << server.logs();

    // What the ledger says, to compare the reports with.
    auto l = host::Ledger::open_existing(job.ledger());
    ASSERT_TRUE(l.ok());
    std::map<std::string, std::set<std::string>> want;  // list -> UIDs
    std::map<std::string, host::FinalRecord> finals;
    const auto listed = (*l)->list_final();
    ASSERT_TRUE(listed.ok()) << listed.error().message;
    for (const auto& f : *listed) {
        finals[to_hex(f.uid)] = f;
        want[f.state == host::FinalState::kVerified   ? "verified"
             : f.state == host::FinalState::kFailed   ? "failed"
             : f.state == host::FinalState::kMismatch ? "mismatched"
                                                      : "other"]
            .insert(to_hex(f.uid));
    }
    size_t wafer4 = 0;
    ASSERT_TRUE((*l)->for_each([&](const host::LedgerRecord& r) {
                        if (r.loc.wafer == 4) {
                            ++wafer4;
                            want["never_seen"].insert(to_hex(r.uid));
                        }
                        return ok_status();
                    })
                    .ok());
    l->reset();
    ASSERT_GT(wafer4, 0u);
    EXPECT_EQ(want["mismatched"].size(), 2u);
    EXPECT_EQ(want["failed"].size(), 2u);
    EXPECT_EQ(want["verified"].size(), job.dies - 4);
    EXPECT_EQ(want.count("other"), 0u);

    const fs::path out = job.tmp.path() / "reports";
    const fs::path report_log = job.tmp.path() / "report.log";
    EXPECT_EQ(
        run(kWaferprov,
            {"report", "--job", job.job_toml().string(), "--final-test", "--out", out.string()},
            report_log),
        1)
        << read_text(report_log);
    const std::string said = read_text(report_log);
    EXPECT_NE(said.find("final test LOTSIM: " + std::to_string(job.dies - 4) +
                        " verified, 0 provisioned at final test, " + std::to_string(wafer4) +
                        " never seen, 2 mismatched, 2 failed, 0 never answered: MISMATCH"),
              std::string::npos)
        << said;
    EXPECT_NE(said.find("MISMATCH signature mismatches = 0: 2 (parts that could not prove their "
                        "identity: swapped or counterfeit: "),
              std::string::npos)
        << said;

    const json rec = json::parse(read_text(out / "LOTSIM" / "final_reconciliation.json"));
    EXPECT_EQ(rec["ok"], false);
    for (const char* list : {"verified", "failed", "mismatched", "never_seen"}) {
        std::set<std::string> got;
        for (const auto& u : rec["uids"][list]) got.insert(u.get<std::string>());
        EXPECT_EQ(got, want[list]) << list;
        EXPECT_EQ(rec["counts"][list], want[list].size()) << list;
    }
    EXPECT_EQ(rec["counts"]["provisioned_at_final_test"], 0);
    EXPECT_EQ(rec["counts"]["unanswered"], 0);
    EXPECT_NE(read_text(out / "LOTSIM" / "final_reconciliation.txt")
                  .find("RESULT MISMATCH (1 of 3 checks)"),
              std::string::npos);

    // The STDF: one PRR per part final test saw, under its UID, with the handler's site.
    const auto prrs = final_prrs(out / "LOTSIM" / "LOTSIM_final.stdf");
    EXPECT_EQ(prrs.size(), finals.size());
    for (const auto& [uid, f] : finals) {
        auto it = prrs.find(uid);
        ASSERT_NE(it, prrs.end()) << uid;
        const FinalPrr& p = it->second;
        EXPECT_EQ(p.x, -32768) << uid;
        EXPECT_EQ(p.y, -32768) << uid;
        EXPECT_EQ(p.site, f.loc.site) << uid;
        const bool verified = f.state == host::FinalState::kVerified;
        const bool failed = f.state == host::FinalState::kFailed;
        EXPECT_EQ(p.hard, verified ? 1 : failed ? 3 : 4) << uid;
        EXPECT_EQ(p.soft, verified ? 1 : failed ? 30 : 40) << uid;
        EXPECT_EQ(p.flags, verified ? 0 : 0x08) << uid;
    }

    // --json: the same verdict as one document, with the final_test object.
    const fs::path json_log = job.tmp.path() / "report-json.log";
    EXPECT_EQ(run(kWaferprov,
                  {"report", "--job", job.job_toml().string(), "--final-test", "--json", "--out",
                   out.string()},
                  json_log),
              1);
    const json j = json::parse(read_text(json_log));
    EXPECT_EQ(j["exit_status"], 1);
    EXPECT_EQ(j["final_test"]["ok"], false);
    ASSERT_EQ(j["final_test"]["lots"].size(), 1u);
    EXPECT_EQ(j["final_test"]["lots"][0]["lot"], "LOTSIM");
    EXPECT_EQ(j["final_test"]["lots"][0]["counts"]["mismatched"], 2);

    // Usage: neither --map nor --final-test.
    EXPECT_EQ(run(kWaferprov, {"report", "--job", job.job_toml().string()}, json_log), 2);
    EXPECT_NE(read_text(json_log).find("give --map FILE (wafer reports), --final-test, or both"),
              std::string::npos);
}
