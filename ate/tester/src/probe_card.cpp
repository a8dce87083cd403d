#include "probe_card.hpp"

#include <algorithm>
#include <climits>
#include <unordered_map>

#include "waferprov/host/wafermap.hpp"

namespace waferprov::tester {

CardLayout card_layout(int sites) {
    int rows = 1;
    for (int r = 1; static_cast<long long>(r) * r <= sites; ++r)
        if (sites % r == 0) rows = r;
    return CardLayout{sites / rows, rows};
}

namespace {

int64_t key_of(int column, int row) {
    return (static_cast<int64_t>(column) << 32) ^ static_cast<int64_t>(static_cast<uint32_t>(row));
}

}  // namespace

Result<std::vector<Touchdown>> plan_touchdowns(const host::WaferMap& map,
                                               const std::vector<host::MapDie>& dies,
                                               CardLayout card) {
    if (card.columns < 1 || card.rows < 1)
        return make_error(ErrorCode::kInvalidArgument, "probe card must have at least one site");
    WP_ASSIGN_OR_RETURN(host::CoordinateSystem cs,
                        host::coordinate_system(map.columns, map.rows, map.origin, map.axis));

    // The bounding box of every die on the map, in picture positions.
    int cmin = INT_MAX, cmax = INT_MIN, rmin = INT_MAX, rmax = INT_MIN;
    for (const auto& d : map.dies) {
        const host::GridPosition p = cs.to_grid(d.x, d.y);
        cmin = std::min(cmin, p.column);
        cmax = std::max(cmax, p.column);
        rmin = std::min(rmin, p.row);
        rmax = std::max(rmax, p.row);
    }
    std::unordered_map<int64_t, size_t> to_provision;
    to_provision.reserve(dies.size());
    for (size_t i = 0; i < dies.size(); ++i) {
        const host::GridPosition p = cs.to_grid(dies[i].x, dies[i].y);
        if (!cs.contains(p) || p.column < cmin || p.column > cmax || p.row < rmin || p.row > rmax)
            return make_error(ErrorCode::kInvalidArgument,
                              "die (" + std::to_string(dies[i].x) + ", " +
                                  std::to_string(dies[i].y) + ") is outside the map's " +
                                  std::to_string(map.columns) + " x " + std::to_string(map.rows) +
                                  " layout");
        if (!to_provision.emplace(key_of(p.column, p.row), i).second)
            return make_error(ErrorCode::kInvalidArgument, "die (" + std::to_string(dies[i].x) +
                                                               ", " + std::to_string(dies[i].y) +
                                                               ") is listed twice");
    }

    std::vector<Touchdown> out;
    if (dies.empty()) return out;
    const int positions = (cmax - cmin + card.columns) / card.columns;  // card positions per band
    int band = 0;
    for (int row = rmin; row <= rmax; row += card.rows, ++band) {
        for (int k = 0; k < positions; ++k) {
            // Serpentine: even bands left to right, odd bands right to left.
            const int column = cmin + card.columns * (band % 2 == 0 ? k : positions - 1 - k);
            Touchdown td{column, row, {}};
            for (int s = 0; s < card.columns * card.rows; ++s) {
                const int c = column + s % card.columns, r = row + s / card.columns;
                auto it = to_provision.find(key_of(c, r));
                if (it == to_provision.end()) continue;
                const host::MapDie& d = dies[it->second];
                td.sites.push_back(SiteDie{static_cast<uint16_t>(s), d.x, d.y, d.uid, it->second});
            }
            if (!td.sites.empty()) out.push_back(std::move(td));
        }
    }
    return out;
}

}  // namespace waferprov::tester
