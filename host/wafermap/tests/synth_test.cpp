// Synthetic wafers: realistic die counts, deterministic failures, dies inside the usable circle,
// and the E142/SINF round trip; plus the parse time of a full 300 mm map.
#include <gtest/gtest.h>

#include <cmath>

#include "waferprov/host/wafer_synth.hpp"
#include "waferprov/host/wafermap.hpp"

using namespace waferprov;
using namespace waferprov::host;

TEST(WaferSynth, A300mmWaferOf2x2mmDiesHoldsAbout16kDies) {
    SynthOptions o;  // 300 mm, 2 x 2 mm, 3 mm edge exclusion
    auto m = synthesize_wafer(o);
    ASSERT_TRUE(m.ok()) << m.error().describe();
    EXPECT_GE(m->dies.size(), 16000u);
    EXPECT_LE(m->dies.size(), 17000u);
    // Within 2% of the textbook estimate for the usable diameter.
    const double estimate = gross_die_estimate(294, 4);
    EXPECT_NEAR(static_cast<double>(m->dies.size()), estimate, 0.02 * estimate);
}

TEST(WaferSynth, EveryDieLiesInsideTheUsableCircle) {
    SynthOptions o;
    o.diameter_mm = 100;
    o.die_width_mm = 3;
    o.die_height_mm = 5;
    auto m = synthesize_wafer(o);
    ASSERT_TRUE(m.ok());
    // The layout is the bounding box of the dies, so it fits in the usable diameter.
    EXPECT_LE(m->columns * 3, 94);
    EXPECT_LE(m->rows * 5, 94);
    EXPECT_EQ(m->origin, "LowerLeft");
    int min_x = 1 << 30, min_y = 1 << 30;
    for (const auto& d : m->dies) {
        min_x = std::min(min_x, d.x);
        min_y = std::min(min_y, d.y);
        EXPECT_LT(d.x, m->columns);
        EXPECT_LT(d.y, m->rows);
    }
    EXPECT_EQ(min_x, 0);
    EXPECT_EQ(min_y, 0);
}

TEST(WaferSynth, FailuresAreDeterministicPerSeedAndNearTheRate) {
    SynthOptions o;
    o.seed = 42;
    auto a = synthesize_wafer(o);
    auto b = synthesize_wafer(o);
    o.seed = 43;
    auto c = synthesize_wafer(o);
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    size_t differ_b = 0, differ_c = 0;
    for (size_t i = 0; i < a->dies.size(); ++i) {
        differ_b += a->dies[i].bin != b->dies[i].bin;
        differ_c += a->dies[i].bin != c->dies[i].bin;
    }
    EXPECT_EQ(differ_b, 0u);
    EXPECT_GT(differ_c, 0u);
    const auto counts = count_by_bin(*a);
    const double failed = static_cast<double>(a->dies.size() - counts.at("01"));
    EXPECT_NEAR(failed / static_cast<double>(a->dies.size()), 0.04, 0.002);
}

TEST(WaferSynth, RefusesNonsense) {
    SynthOptions o;
    o.die_width_mm = 0;
    EXPECT_FALSE(synthesize_wafer(o).ok());
    o = {};
    o.fail_rate = 0.9;
    EXPECT_FALSE(synthesize_wafer(o).ok());
    o = {};
    o.edge_exclusion_mm = 150;
    EXPECT_FALSE(synthesize_wafer(o).ok());
    o = {};
    o.die_width_mm = 0.01;  // 30000 dies across
    EXPECT_FALSE(synthesize_wafer(o).ok());
    o = {};
    o.origin = "Nowhere";
    EXPECT_FALSE(synthesize_wafer(o).ok());
}

TEST(WaferSynth, E142RoundTripKeepsEveryDie) {
    SynthOptions o;
    o.origin = "UpperRight";
    o.axis = "DownLeft";
    auto m = synthesize_wafer(o);
    ASSERT_TRUE(m.ok());
    auto xml = write_e142(*m);
    ASSERT_TRUE(xml.ok()) << xml.error().describe();
    auto back = read_e142(*xml);
    ASSERT_TRUE(back.ok()) << back.error().describe();
    ASSERT_EQ(back->dies.size(), m->dies.size());
    for (size_t i = 0; i < m->dies.size(); ++i) {
        EXPECT_EQ(back->dies[i].x, m->dies[i].x);
        EXPECT_EQ(back->dies[i].y, m->dies[i].y);
        EXPECT_EQ(back->dies[i].bin, m->dies[i].bin);
    }
    EXPECT_EQ(back->good_bins, std::vector<std::string>{"01"});
    EXPECT_EQ(back->null_bin, "FF");
    // The wafer's size and notch travel with the map (reports draw and write them).
    EXPECT_DOUBLE_EQ(back->wafer_diameter_mm, o.diameter_mm);
    EXPECT_EQ(back->flat_deg, 180);
}

TEST(WaferSynth, AsciiAndSinfRoundTrip) {
    SynthOptions o;
    o.diameter_mm = 150;
    o.bin_type = "Ascii";
    auto m = synthesize_wafer(o);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->null_bin, ".");
    auto xml = write_e142(*m);
    ASSERT_TRUE(xml.ok());
    auto back = read_e142(*xml);
    ASSERT_TRUE(back.ok()) << back.error().describe();
    EXPECT_EQ(back->dies.size(), m->dies.size());

    o.bin_type = "HexaDecimal";
    o.origin = "UpperLeft";
    o.axis = "DownRight";
    auto s = synthesize_wafer(o);
    ASSERT_TRUE(s.ok());
    auto text = write_sinf(*s);
    ASSERT_TRUE(text.ok()) << text.error().describe();
    auto sback = read_sinf(*text);
    ASSERT_TRUE(sback.ok()) << sback.error().describe();
    ASSERT_EQ(sback->dies.size(), s->dies.size());
    for (size_t i = 0; i < s->dies.size(); ++i) {
        EXPECT_EQ(sback->dies[i].x, s->dies[i].x);
        EXPECT_EQ(sback->dies[i].y, s->dies[i].y);
    }
}
