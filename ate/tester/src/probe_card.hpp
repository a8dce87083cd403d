// The prober side of the simulator: the probe card's layout and the touchdowns of a serpentine
// raster over a wafer map (docs/tester-simulator.md, "Probe card and stepping").
//
// Everything here is pure: no I/O, no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "waferprov/host/model.hpp"
#include "waferprov/result.hpp"
#include "waferprov/wpid1.hpp"

namespace waferprov::tester {

// The sites of a probe card as a rectangle of `columns` x `rows` dies, columns >= rows. Site s
// sits at card column s % columns, card row s / columns (site 0 top left as the map's picture
// is drawn, numbered row by row).
struct CardLayout {
    int columns = 1;
    int rows = 1;
};

// The most nearly square rectangle of exactly `sites` dies: rows = the largest divisor of
// `sites` that is at most sqrt(sites), columns = sites / rows. 16 -> 4 x 4, 8 -> 4 x 2,
// 12 -> 4 x 3, 64 -> 8 x 8; a prime count is a 1 x N row (7 -> 7 x 1). sites >= 1.
CardLayout card_layout(int sites);

// One site of a touchdown that sits over a die to provision.
struct SiteDie {
    uint16_t site = 0;
    int x = 0;  // the die's floor coordinates (the map's x/y)
    int y = 0;
    std::optional<wpid1::Uid> uid;  // the map's DeviceIdMap UID, where it has one
    size_t die = 0;                 // index into the dies-to-provision list given to plan()
};

// One position of the card where at least one site is over a die to provision. Sites over no
// such die are left out (they do not appear in `sites`).
struct Touchdown {
    int column = 0;  // picture column / row of the card's site 0 (top-left corner)
    int row = 0;
    std::vector<SiteDie> sites;  // ordered by site number
};

// The touchdowns of an N-site card stepping over `map` in a serpentine raster: bands of
// `rows` picture rows from the top row of the map's dies downwards; the first band left to
// right, the next right to left, and so on; card positions on a fixed grid anchored at the
// top-left corner of the bounding box of every die of the map (any bin). `dies` are the dies to
// provision (select_dies(map, bins)). Every die of `dies` is under exactly one site of exactly
// one touchdown. Errors: an origin/axis the map's coordinate convention does not know, a die
// outside the map's layout, or the same location twice in `dies`.
Result<std::vector<Touchdown>> plan_touchdowns(const host::WaferMap& map,
                                               const std::vector<host::MapDie>& dies,
                                               CardLayout card);

}  // namespace waferprov::tester
