// The probe card's layout and its serpentine stepping over a wafer map.
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "probe_card.hpp"
#include "waferprov/host/wafer_synth.hpp"
#include "waferprov/host/wafermap.hpp"

using namespace waferprov;
using namespace waferprov::tester;

namespace {

// The 3 x 2 map of docs/wafer-maps.md (LowerLeft / UpRight): picture rows A B C / D E F.
host::WaferMap small_map(const std::vector<std::string>& bins /* A..F */) {
    host::WaferMap m;
    m.lot = "LOT1";
    m.wafer = 1;
    m.columns = 3;
    m.rows = 2;
    m.format = "E142";
    m.bin_type = "HexaDecimal";
    m.bin_descriptions = {{"01", "pass"}, {"02", "fail"}};
    const int xy[6][2] = {{0, 1}, {1, 1}, {2, 1}, {0, 0}, {1, 0}, {2, 0}};
    for (int i = 0; i < 6; ++i)
        m.dies.push_back(host::MapDie{xy[i][0], xy[i][1], bins[i], std::nullopt});
    return m;
}

std::vector<std::pair<int, int>> locations(const Touchdown& td) {
    std::vector<std::pair<int, int>> out;
    for (const auto& s : td.sites) out.emplace_back(s.x, s.y);
    return out;
}

}  // namespace

TEST(ProbeCard, LayoutIsTheMostNearlySquareRectangleWithColumnsAtLeastRows) {
    const std::map<int, std::pair<int, int>> expected = {
        {1, {1, 1}},  {2, {2, 1}},   {3, {3, 1}},    {4, {2, 2}},     {6, {3, 2}},
        {7, {7, 1}},  {8, {4, 2}},   {12, {4, 3}},   {16, {4, 4}},    {32, {8, 4}},
        {64, {8, 8}}, {13, {13, 1}}, {128, {16, 8}}, {1024, {32, 32}}};
    for (const auto& [sites, cr] : expected) {
        const CardLayout c = card_layout(sites);
        EXPECT_EQ(c.columns, cr.first) << sites << " sites";
        EXPECT_EQ(c.rows, cr.second) << sites << " sites";
        EXPECT_EQ(c.columns * c.rows, sites);
        EXPECT_GE(c.columns, c.rows);
    }
}

TEST(ProbeCard, SteppingIsASerpentineFromTheTopLeft) {
    // A 2 x 1 card over A B C / D E F: the top band left to right, the bottom right to left.
    auto m = small_map({"01", "01", "01", "01", "01", "01"});
    auto plan = plan_touchdowns(m, m.dies, card_layout(2));
    ASSERT_TRUE(plan.ok()) << plan.error().message;
    ASSERT_EQ(plan->size(), 4u);
    using L = std::vector<std::pair<int, int>>;
    EXPECT_EQ(locations((*plan)[0]), (L{{0, 1}, {1, 1}}));  // A B
    EXPECT_EQ(locations((*plan)[1]), (L{{2, 1}}));          // C under site 0; site 1 off the map
    EXPECT_EQ(locations((*plan)[2]), (L{{2, 0}}));          // F
    EXPECT_EQ(locations((*plan)[3]), (L{{0, 0}, {1, 0}}));  // D E
    EXPECT_EQ((*plan)[0].sites[1].site, 1);
    EXPECT_EQ((*plan)[3].column, 0);
    EXPECT_EQ((*plan)[3].row, 1);
}

TEST(ProbeCard, SitesOverNoDieToProvisionAreLeftOutAndEmptyTouchdownsSkipped) {
    // Only A and F are to provision, under a 2 x 2 card.
    auto m = small_map({"01", "02", "02", "02", "02", "01"});
    auto dies = host::select_dies(m, {"01"});
    ASSERT_TRUE(dies.ok());
    auto plan = plan_touchdowns(m, *dies, card_layout(4));  // 2 x 2
    ASSERT_TRUE(plan.ok());
    ASSERT_EQ(plan->size(), 2u);
    ASSERT_EQ((*plan)[0].sites.size(), 1u);
    EXPECT_EQ((*plan)[0].sites[0].site, 0);  // A at the card's top left
    EXPECT_EQ((*plan)[0].sites[0].x, 0);
    ASSERT_EQ((*plan)[1].sites.size(), 1u);
    EXPECT_EQ((*plan)[1].sites[0].site, 2);  // F: card at column 2, F in its bottom-left site
    EXPECT_EQ((*plan)[1].sites[0].x, 2);
    EXPECT_EQ((*plan)[1].sites[0].y, 0);
}

TEST(ProbeCard, EveryDieOfASynthesizedWaferIsUnderExactlyOneSite) {
    host::SynthOptions so;
    so.diameter_mm = 100;
    auto map = host::synthesize_wafer(so);
    ASSERT_TRUE(map.ok());
    auto dies = host::select_dies(*map, {"01"});
    ASSERT_TRUE(dies.ok());
    auto cs = host::coordinate_system(map->columns, map->rows, map->origin, map->axis);
    ASSERT_TRUE(cs.ok());
    for (int sites : {1, 7, 8, 16, 64}) {
        const CardLayout card = card_layout(sites);
        auto plan = plan_touchdowns(*map, *dies, card);
        ASSERT_TRUE(plan.ok()) << plan.error().message;
        std::vector<int> seen(dies->size(), 0);
        int band_row = -1, direction = 0, last_column = 0;
        for (const auto& td : *plan) {
            ASSERT_FALSE(td.sites.empty());
            std::set<int> site_numbers;
            for (const auto& s : td.sites) {
                EXPECT_LT(s.site, sites);
                EXPECT_TRUE(site_numbers.insert(s.site).second) << "site twice in a touchdown";
                ASSERT_LT(s.die, dies->size());
                ++seen[s.die];
                EXPECT_EQ(s.x, (*dies)[s.die].x);
                EXPECT_EQ(s.y, (*dies)[s.die].y);
                const host::GridPosition p = cs->to_grid(s.x, s.y);
                EXPECT_EQ(p.column, td.column + s.site % card.columns);
                EXPECT_EQ(p.row, td.row + s.site / card.columns);
            }
            // Serpentine: within a band the card moves one way; the next band the other way.
            if (td.row != band_row) {
                if (band_row >= 0) {
                    EXPECT_EQ(td.row, band_row + card.rows * ((td.row - band_row) / card.rows));
                    EXPECT_GT(td.row, band_row);
                }
                band_row = td.row;
                direction = direction == 0 ? 1 : -direction;
            } else {
                EXPECT_EQ((td.column - last_column) * direction > 0, true) << sites << " sites";
                EXPECT_EQ((td.column - last_column) % card.columns, 0);
            }
            last_column = td.column;
        }
        for (size_t i = 0; i < seen.size(); ++i)
            ASSERT_EQ(seen[i], 1) << "die " << i << ", " << sites << " sites";
        // A full card cannot do with fewer touchdowns than dies / sites.
        EXPECT_GE(plan->size() * static_cast<size_t>(sites), dies->size());
    }
}

TEST(ProbeCard, ADieListedTwiceIsAnError) {
    auto m = small_map({"01", "01", "01", "01", "01", "01"});
    auto dies = m.dies;
    dies.push_back(dies[0]);
    auto plan = plan_touchdowns(m, dies, card_layout(2));
    ASSERT_FALSE(plan.ok());
    EXPECT_NE(plan.error().message.find("listed twice"), std::string::npos) << plan.error().message;
}
