// Soak (label soak, not in the default suite): a 300 mm wafer (~16k dies) through a 64-site card
// with the server killed -9 at ten random moments, each time restarted on the same port after
// 0-1.5 s, with programming failures and retests; then every die must be provisioned exactly once
// and the ledger verify.
#include <algorithm>
#include <random>

#include "e2e_support.hpp"

using namespace waferprov;
using namespace waferprov::tester::e2e;

TEST(TesterSoak, FullWaferWithTheServerKilledTenTimes) {
    JobSetup job("tester_soak", 300);
    ASSERT_GT(job.dies, 15000u);
    Server server(job.job_toml(), job.tmp.path());
    const std::string endpoint = server.start();
    ASSERT_FALSE(endpoint.empty()) << server.failure();

    const fs::path log = job.tmp.path() / "tester.log";
    Child tester(spawn(kTester,
                       job.tester_args(endpoint, 64,
                                       {"--timeout-ms", "1000", "--give-up-s", "120", "--fail-rate",
                                        "0.01", "--retest-rate", "1"}),
                       log));
    ASSERT_GT(tester.pid(), 0);
    std::mt19937 rng(std::random_device{}());
    std::uniform_real_distribution<double> fraction(0.05, 0.9);
    std::vector<double> at;
    for (int i = 0; i < 10; ++i) at.push_back(fraction(rng));
    std::sort(at.begin(), at.end());
    int kills = 0;
    for (const double f : at) {
        const auto deadline = Clock::now() + std::chrono::seconds(600);
        while (Clock::now() < deadline && tester.running() &&
               static_cast<double>(job.counts().programmed) < f * static_cast<double>(job.dies))
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (!tester.running()) break;
        server.kill9();
        ++kills;
        std::this_thread::sleep_for(
            std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 1500)(rng)));
        ASSERT_EQ(server.start(endpoint), endpoint) << server.failure();
    }
    EXPECT_GE(kills, 6) << "the wafer finished before most kills";
    ASSERT_EQ(tester.wait(std::chrono::seconds(1200)), 0) << read_text(log) << server.logs();
    EXPECT_EQ(server.stop(), 0) << server.logs();

    const json s = job.summary();
    EXPECT_EQ(s["check_failures"], 0);
    EXPECT_EQ(s["refused"].size(), 0u) << s["refused"].dump();
    expect_ledger_matches(job, s);
    std::cout << kills << " kills: " << s["resends"] << " requests sent again, " << s["reissued"]
              << " dies REISSUED, " << s["retest_touchdowns"] << " retest touchdowns\n";
    const auto c = job.counts();
    EXPECT_EQ(c.total(), job.dies);
    EXPECT_EQ(c.programmed + c.failed, job.dies);
}
