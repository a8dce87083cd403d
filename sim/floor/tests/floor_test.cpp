// The floor model (sim/floor): its floor files, and its numbers against what can be worked out
// by hand for floors simple enough to do so, plus the saturation cases (a host or a card too
// small) where the bottleneck must move to it.
#include <gtest/gtest.h>

#include <fstream>

#include "waferprov/host/wafer_synth.hpp"
#include "waferprov/host/wafermap.hpp"
#include "waferprov/sim/floor.hpp"
#include "waferprov/testing/temp_dir.hpp"

namespace wsim = waferprov::sim;

namespace {

std::string load_error(const std::string& text) {
    waferprov::testing::TempDir dir;
    const auto f = dir.path() / "floor.toml";
    std::ofstream(f) << text;
    auto r = wsim::load_floor(f);
    return r.ok() ? "" : r.error().message;
}

// A small floor: 150 mm wafer of 5 x 5 mm dies, 16 sites.
wsim::FloorConfig small() {
    wsim::FloorConfig c;
    c.testers = 2;
    c.sites = 16;
    c.wafers_per_tester = 2;
    c.diameter_mm = 150;
    c.die_width_mm = c.die_height_mm = 5;
    c.index_time_s = 0.5;
    c.program_time_s = 0.1;
    c.wafer_change_s = 10;
    c.ledger_sigma = 0;  // no spread: the hand calculation is exact
    return c;
}

std::size_t touchdowns_of(const wsim::FloorConfig& c, std::size_t& dies) {
    waferprov::host::SynthOptions o;
    o.diameter_mm = c.diameter_mm;
    o.die_width_mm = c.die_width_mm;
    o.die_height_mm = c.die_height_mm;
    o.seed = c.seed;
    auto map = waferprov::host::synthesize_wafer(o);
    EXPECT_TRUE(map.ok());
    auto sel = waferprov::host::select_dies(*map, c.bins);
    EXPECT_TRUE(sel.ok());
    dies = sel->size();
    // ceil(dies / sites) is a lower bound on touchdowns; the stepping gives at least that
    return (dies + static_cast<std::size_t>(c.sites) - 1) / static_cast<std::size_t>(c.sites);
}

double util(const wsim::FloorResult& r, const std::string& prefix) {
    for (const auto& u : r.utilization)
        if (u.resource.rfind(prefix, 0) == 0) return u.busy;
    ADD_FAILURE() << "no resource " << prefix;
    return -1;
}

}  // namespace

TEST(FloorFile, ErrorsNameTheKey) {
    EXPECT_NE(load_error("[floor]\ntesters = 0\n").find("'floor.testers'"), std::string::npos);
    EXPECT_NE(
        load_error("[floor]\ntesters = \"many\"\n").find("'floor.testers' must be an integer"),
        std::string::npos);
    EXPECT_NE(
        load_error("[floor]\nindex_time = 0.8\n").find("'floor.index_time' is not a known key"),
        std::string::npos);
    EXPECT_NE(load_error("[cards]\nengines = 17\n").find("'cards.engines'"), std::string::npos);
    EXPECT_NE(load_error("[cards]\nstream_bits = 200\n").find("'cards.stream_bits'"),
              std::string::npos);
    EXPECT_NE(load_error("[wafer]\ndie_mm = 2\n").find("'wafer.die_mm'"), std::string::npos);
    EXPECT_NE(load_error("[pcie]\nefficiency = 1.5\n").find("'pcie.efficiency'"),
              std::string::npos);
    EXPECT_NE(load_error("[hosts]\ncount = 2\n[extra]\nx = 1\n").find("'extra.x'"),
              std::string::npos);
    EXPECT_NE(load_error("[floor\n").find("line 1"), std::string::npos);
    EXPECT_EQ(load_error("[floor]\ntesters = 20\nsites = 64\nindex_time_s = 0.8\n"
                         "[cards]\nengines = 8\n"),
              "");
}

TEST(FloorFile, MissingMapIsNamed) {
    wsim::FloorConfig c = small();
    c.map = "/nonexistent/wafer.xml";
    auto r = wsim::run_floor(c);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("wafer.map"), std::string::npos) << r.error().message;
}

// Uncontended hosts and cards: each touchdown costs index + the answer + programming + the
// results' acknowledgement; the answer and acknowledgement are sub-millisecond next to
// index and programming, so the wafer time is within 1 % of change + touchdowns x (index +
// program), and every die is provisioned once per wafer.
TEST(FloorModel, TesterBoundWaferTimeMatchesHandCalculation) {
    const wsim::FloorConfig c = small();
    std::size_t dies = 0;
    const std::size_t lower = touchdowns_of(c, dies);
    auto r = wsim::run_floor(c);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r->dies, dies * 4);
    EXPECT_EQ(r->wafers, 4u);
    const double tds = static_cast<double>(r->touchdowns) / 4.0;
    EXPECT_GE(tds, static_cast<double>(lower));
    const double hand = c.wafer_change_s + tds * (c.index_time_s + c.program_time_s);
    EXPECT_NEAR(r->wafer_time_s, hand, hand * 0.01);
    EXPECT_GT(r->wafer_time_s, hand);  // the link and host are not free
    EXPECT_NE(r->bottleneck.find("testers"), std::string::npos) << r->bottleneck;
}

// One signing thread at 50 certificates/s cannot keep up with 8 testers of 16 sites at
// 0.6 s a touchdown (~210 dies/s): the signing saturates and is named.
TEST(FloorModel, SlowSigningIsTheBottleneck) {
    wsim::FloorConfig c = small();
    c.testers = 8;
    c.wafer_change_s = 0;
    c.signing_threads = 1;
    c.sign_per_s = 50;
    auto r = wsim::run_floor(c);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r->bottleneck, "host signing");
    EXPECT_GT(util(*r, "host signing"), 0.75);  // less than 1: the lot's start and tail
    c.sign_per_s = 14480;
    auto fast = wsim::run_floor(c);
    ASSERT_TRUE(fast.ok());
    EXPECT_LT(r->dies_per_hour, fast->dies_per_hour);
}

// A one-engine card at 1 MHz makes ~108 keys/s (9,300 cycles each): with 8 testers of 64
// sites it saturates and is named; eight engines relieve it (the card is no longer the
// bottleneck and the floor runs at least twice as fast).
TEST(FloorModel, SlowCardIsTheBottleneckAndEnginesRelieveIt) {
    wsim::FloorConfig c = small();
    c.testers = 8;
    c.sites = 64;
    c.wafers_per_tester = 1;
    c.engines = 1;
    c.clock_mhz = 1;
    c.program_time_s = 0.05;
    c.index_time_s = 0.2;
    c.wafer_change_s = 0;
    auto r1 = wsim::run_floor(c);
    ASSERT_TRUE(r1.ok()) << r1.error().describe();
    EXPECT_EQ(r1->bottleneck, "card engines");
    c.engines = 8;
    auto r8 = wsim::run_floor(c);
    ASSERT_TRUE(r8.ok());
    EXPECT_GT(r8->dies_per_hour, 2.0 * r1->dies_per_hour);
    EXPECT_NE(r8->bottleneck, "card engines");
    EXPECT_GT(util(*r1, "card engines"), 0.9);
}

// Failures are retested: the retest count follows the rate, and retests cost time.
TEST(FloorModel, FailuresAreRetested) {
    wsim::FloorConfig c = small();
    c.fail_rate = 0.1;
    auto r = wsim::run_floor(c);
    ASSERT_TRUE(r.ok());
    const double rate = static_cast<double>(r->retests) / static_cast<double>(r->dies);
    EXPECT_NEAR(rate, 0.1, 0.03);
    auto clean = wsim::run_floor(small());
    ASSERT_TRUE(clean.ok());
    EXPECT_GT(r->wafer_time_s, clean->wafer_time_s);
}

TEST(FloorModel, SweepParametersAreChecked) {
    wsim::FloorConfig c = small();
    EXPECT_TRUE(wsim::set_floor_param(c, "engines", 16).ok());
    EXPECT_FALSE(wsim::set_floor_param(c, "engines", 17).ok());
    EXPECT_FALSE(wsim::set_floor_param(c, "voltage", 3).ok());
    EXPECT_TRUE(wsim::set_floor_param(c, "hosts", 8).ok());
    EXPECT_EQ(c.hosts, 8);
}
