// The floor model against the real thing (issue 16's acceptance check on the model): a real
// `waferprov serve` and a real `waferprov-tester` over loopback provision a small wafer with a
// prober index time and a programming time; the floor model, configured with that run's
// parameters (the same wafer map, sites, index and programming time, one tester, one host with
// keys on its CPU), must predict the measured wafer time within 15 %.
//
// Tests never assert timings in general; this one asserts a model's prediction, and is made to
// hold on a loaded 2-core machine: the tester's index and programming time (wall-clock sleeps)
// are ~95 % of the wafer time, the host's answer is taken from the same run (the model's link
// round trip is set from the measured median touchdown latency, see calibrate()), and the die's
// payload checks run inside the programming time (waferprov-tester --program-ms).
#include <cmath>
#include <cstdio>

#include "e2e_support.hpp"
#include "waferprov/sim/floor.hpp"

using namespace waferprov;
using namespace waferprov::tester::e2e;

namespace {

constexpr int kDiameter = 50;  // a 50 mm wafer of 2 x 2 mm dies: a few hundred dies
constexpr int kSites = 16;
constexpr int kIndexMs = 120;
constexpr int kProgramMs = 120;

// The model's host answers a touchdown of n dies in transport + keys + certificates + one
// ledger transaction. Its figures are this VM's idle benchmarks; under load the real host is
// slower, so the link's round trip absorbs the difference: transport_ms is set so that the
// model's answer to a full touchdown equals the median measured in this run.
void calibrate(sim::FloorConfig& c, double p50_ms) {
    const double n = kSites;
    const double per_thread = std::ceil(n / c.signing_threads);
    const double host_ms = per_thread * 1e3 / c.host_keygen_per_s +
                           per_thread * 1e3 / c.sign_per_s + c.ledger_fixed_ms +
                           n * c.ledger_per_die_ms;
    c.transport_ms = std::max(0.0, p50_ms - host_ms);
}

// Sets the value after `option` in a tester's argument list.
void set_arg(std::vector<std::string>& args, const std::string& option, const std::string& value) {
    for (size_t i = 0; i + 1 < args.size(); ++i)
        if (args[i] == option) {
            args[i + 1] = value;
            return;
        }
    args.push_back(option);
    args.push_back(value);
}

// The model of one run: the same map, sites and times, `testers` on one host with keys on its
// CPU, no wafer change (each simulator provisions one wafer).
sim::FloorConfig model_of(const JobSetup& job, int testers) {
    sim::FloorConfig c;
    c.testers = testers;
    c.wafers_per_tester = 1;
    c.sites = kSites;
    c.map = job.map;
    c.bins = {"01"};
    c.index_time_s = kIndexMs / 1e3;
    c.program_time_s = kProgramMs / 1e3;
    c.wafer_change_s = 0;
    c.fail_rate = 0;
    c.hosts = 1;
    c.cards_per_host = 0;  // `serve` with the software backend: keys on the host's CPU
    c.generate_on_host = true;
    return c;
}

}  // namespace

TEST(FloorModelAgainstRealRun, PredictsTheMeasuredWaferTimeWithin15Percent) {
    JobSetup job("floor_vs_real", kDiameter);
    ASSERT_GT(job.dies, 100u);
    Server server(job.job_toml(), job.tmp.path());
    const std::string endpoint = server.start();
    ASSERT_FALSE(endpoint.empty()) << server.failure();

    const fs::path log = job.tmp.path() / "tester.log";
    ASSERT_EQ(run(kTester,
                  job.tester_args(endpoint, kSites,
                                  {"--seed", "1", "--quiet", "--index-ms", std::to_string(kIndexMs),
                                   "--program-ms", std::to_string(kProgramMs)}),
                  log),
              0)
        << read_text(log) << server.logs();
    EXPECT_EQ(server.stop(), 0) << server.logs();
    const json s = job.summary();
    ASSERT_EQ(s["programmed"], job.dies);
    const double wall_s = s["wall_s"].get<double>();
    const double p50_ms = s["latency_ms"]["p50"].get<double>();
    const auto touchdowns = s["touchdowns"].get<uint64_t>();

    sim::FloorConfig c = model_of(job, 1);
    // For the record (not asserted): the model with the idle VM's host figures, uncalibrated.
    auto idle = sim::run_floor(c);
    ASSERT_TRUE(idle.ok()) << idle.error().describe();
    calibrate(c, p50_ms);
    auto r = sim::run_floor(c);
    ASSERT_TRUE(r.ok()) << r.error().describe();

    // The model steps the wafer with the simulator's own probe-card code: the same touchdowns.
    EXPECT_EQ(r->touchdowns, touchdowns);
    EXPECT_EQ(r->dies, job.dies);
    // The simulator starts at its first touchdown (the prober is there after alignment); the
    // model indexes before every touchdown, the first included: one index more.
    const double measured = wall_s + c.index_time_s;
    const double error = (r->wafer_time_s - measured) / measured;
    std::printf(
        "floor model vs real run: %zu dies, %llu touchdowns of %d sites, index %d ms, "
        "programming %d ms, touchdown p50 %.2f ms (model transport %.2f ms): measured %.3f s "
        "(+ one index), model %.3f s, error %+.1f %% (uncalibrated host: %.3f s, %+.1f %%)\n",
        job.dies, static_cast<unsigned long long>(touchdowns), kSites, kIndexMs, kProgramMs, p50_ms,
        c.transport_ms, measured, r->wafer_time_s, 100 * error, idle->wafer_time_s,
        100 * (idle->wafer_time_s - measured) / measured);
    EXPECT_LT(std::abs(error), 0.15)
        << "measured " << measured << " s, model " << r->wafer_time_s << " s";
}

// Two testers sharing one `serve`, each on its own wafer (same map, another wafer number and
// substrate for the second), at the same time: the model's two testers on one host.
TEST(FloorModelAgainstRealRun, TwoTestersSharingOneHost) {
    JobSetup job("floor_vs_real2", kDiameter, {"--tester", "SIM-02"});
    ASSERT_GT(job.dies, 100u);
    Server server(job.job_toml(), job.tmp.path());
    const std::string endpoint = server.start();
    ASSERT_FALSE(endpoint.empty()) << server.failure();

    const std::vector<std::string> extra = {"--seed",
                                            "1",
                                            "--quiet",
                                            "--index-ms",
                                            std::to_string(kIndexMs),
                                            "--program-ms",
                                            std::to_string(kProgramMs)};
    std::vector<std::string> a1 = job.tester_args(endpoint, kSites, extra);
    std::vector<std::string> a2 = a1;
    set_arg(a1, "--json", (job.tmp.path() / "summary-1.json").string());
    set_arg(a2, "--json", (job.tmp.path() / "summary-2.json").string());
    set_arg(a2, "--tester-id", "SIM-02");
    set_arg(a2, "--key", (job.dir / "tester-SIM-02.key").string());
    set_arg(a2, "--wafer", std::to_string(job.wafer + 1));
    set_arg(a2, "--substrate", "FLOOR-VS-REAL-SECOND");
    const fs::path log1 = job.tmp.path() / "tester-1.log", log2 = job.tmp.path() / "tester-2.log";
    Child t1(spawn(kTester, a1, log1)), t2(spawn(kTester, a2, log2));
    ASSERT_EQ(t1.wait(std::chrono::seconds(120)), 0) << read_text(log1) << server.logs();
    ASSERT_EQ(t2.wait(std::chrono::seconds(120)), 0) << read_text(log2) << server.logs();
    EXPECT_EQ(server.stop(), 0) << server.logs();
    const json s1 = json::parse(read_text(job.tmp.path() / "summary-1.json"));
    const json s2 = json::parse(read_text(job.tmp.path() / "summary-2.json"));
    ASSERT_EQ(s1["programmed"], job.dies);
    ASSERT_EQ(s2["programmed"], job.dies);

    sim::FloorConfig c = model_of(job, 2);
    calibrate(c,
              (s1["latency_ms"]["p50"].get<double>() + s2["latency_ms"]["p50"].get<double>()) / 2);
    auto r = sim::run_floor(c);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r->touchdowns, s1["touchdowns"].get<uint64_t>() + s2["touchdowns"].get<uint64_t>());
    const double measured =
        (s1["wall_s"].get<double>() + s2["wall_s"].get<double>()) / 2 + c.index_time_s;
    const double error = (r->wafer_time_s - measured) / measured;
    std::printf(
        "floor model vs real run, two testers on one host: measured %.3f / %.3f s (+ one "
        "index), model %.3f s (mean), touchdown p50 %.2f / %.2f ms, error %+.1f %%\n",
        s1["wall_s"].get<double>() + c.index_time_s, s2["wall_s"].get<double>() + c.index_time_s,
        r->wafer_time_s, s1["latency_ms"]["p50"].get<double>(),
        s2["latency_ms"]["p50"].get<double>(), 100 * error);
    EXPECT_LT(std::abs(error), 0.15)
        << "measured " << measured << " s, model " << r->wafer_time_s << " s";
}
