// Synthetic wafers. Geometry: a die is present when its whole rectangle lies inside the usable
// circle; of the four grid placements (a die centre or a die corner on the wafer centre, per
// axis) the one holding the most dies is used, as a stepper plan would. Failures: about 40% in a
// few round clusters (a particle, a scratch end), the rest scattered with the outer ring of the
// wafer 2.5x as likely to fail as the centre. A private splitmix64 generator keeps the map the
// same on every platform for a given seed (std:: distributions are implementation-defined).
#include <algorithm>
#include <cmath>
#include <numbers>
#include <unordered_map>

#include "internal.hpp"
#include "waferprov/host/wafer_synth.hpp"
#include "waferprov/host/wafermap.hpp"

namespace waferprov::host {
namespace {

class SplitMix64 {
public:
    explicit SplitMix64(uint64_t seed) : state_(seed) {}
    uint64_t next() {
        uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
    size_t below(size_t n) { return static_cast<size_t>(uniform() * static_cast<double>(n)); }

private:
    uint64_t state_;
};

struct Site {
    int i, j;  // grid index: die i spans [offset_x + i*W, offset_x + (i+1)*W]
};

std::vector<Site> place(double radius, double w, double h, double off_x, double off_y, int n_x,
                        int n_y) {
    std::vector<Site> out;
    const double r2 = radius * radius;
    for (int j = -n_y; j <= n_y; ++j) {
        const double y0 = off_y + j * h, y1 = y0 + h;
        const double ymax = std::max(y0 * y0, y1 * y1);
        for (int i = -n_x; i <= n_x; ++i) {
            const double x0 = off_x + i * w, x1 = x0 + w;
            // The rectangle is inside the (convex) circle iff its farthest corner is.
            if (std::max(x0 * x0, x1 * x1) + ymax <= r2) out.push_back({i, j});
        }
    }
    return out;
}

}  // namespace

double gross_die_estimate(double usable_diameter_mm, double die_area_mm2) {
    const double d = usable_diameter_mm, s = die_area_mm2;
    return std::numbers::pi * (d / 2) * (d / 2) / s - std::numbers::pi * d / std::sqrt(2 * s);
}

namespace {

Error invalid_synth(const std::string& what) {
    return make_error(ErrorCode::kInvalidArgument, "wafer synth: " + what);
}

// The options' ranges (the bin type is checked where it is read).
Status check_synth_options(const SynthOptions& o) {
    if (!(o.diameter_mm > 0 && o.diameter_mm <= 1000))
        return invalid_synth("diameter must be in (0, 1000] mm");
    if (!(o.die_width_mm > 0 && o.die_height_mm > 0))
        return invalid_synth("die width and height must be positive");
    if (o.diameter_mm / o.die_width_mm > 10000 || o.diameter_mm / o.die_height_mm > 10000)
        return invalid_synth("more than 10000 dies across the wafer");
    if (!(o.edge_exclusion_mm >= 0 && o.edge_exclusion_mm < o.diameter_mm / 2))
        return invalid_synth("edge exclusion must be in [0, diameter/2) mm");
    if (!(o.fail_rate >= 0 && o.fail_rate <= 0.5))
        return invalid_synth("fail rate must be in [0, 0.5]");
    if (o.lot.empty()) return invalid_synth("empty lot id");
    if (o.wafer < 0) return invalid_synth("negative wafer number");
    return {};
}

// The grid offset (die corners or die centres on the wafer's axes) that fits the most dies.
std::vector<Site> best_placement(double radius, double w, double h) {
    const int n_x = static_cast<int>(std::ceil(radius / w)) + 1;
    const int n_y = static_cast<int>(std::ceil(radius / h)) + 1;
    std::vector<Site> sites;
    for (double off_x : {-w / 2, 0.0})
        for (double off_y : {-h / 2, 0.0}) {
            auto s = place(radius, w, h, off_x, off_y, n_x, n_y);
            if (s.size() > sites.size()) sites = std::move(s);
        }
    return sites;
}

// Each site's bin (1 = pass): 40 % of the failures in clusters (scan, memory BIST), the rest
// scattered and more likely near the edge (continuity, IDDQ). The draws are in a fixed order,
// so one seed always gives the same wafer.
std::vector<int> draw_bins(const std::vector<Site>& sites, const SynthOptions& o, double radius,
                           double w, double h) {
    const size_t n = sites.size();
    std::vector<int> bin(n, 1);
    std::unordered_map<int64_t, size_t> index;  // (column, row) -> site
    auto key = [](int c, int r) {
        return (static_cast<int64_t>(r) << 32) | static_cast<uint32_t>(c);
    };
    for (size_t k = 0; k < n; ++k) index[key(sites[k].i, sites[k].j)] = k;

    SplitMix64 rng(o.seed);
    const size_t target = static_cast<size_t>(std::llround(o.fail_rate * static_cast<double>(n)));
    const size_t cluster_budget = target * 2 / 5;
    size_t failed = 0;
    while (failed < cluster_budget) {
        const Site centre = sites[rng.below(n)];
        const double rc = 1.5 + 2.5 * rng.uniform();  // cluster radius in dies
        const int fail_bin = rng.uniform() < 0.6 ? 4 : 5;
        const int reach = static_cast<int>(std::ceil(rc));
        for (int dj = -reach; dj <= reach && failed < cluster_budget; ++dj)
            for (int di = -reach; di <= reach && failed < cluster_budget; ++di) {
                if (di * di + dj * dj > rc * rc) continue;
                auto it = index.find(key(centre.i + di, centre.j + dj));
                if (it == index.end() || bin[it->second] != 1 || rng.uniform() >= 0.7) continue;
                bin[it->second] = fail_bin;
                ++failed;
            }
    }
    const double edge_r2 = 0.85 * 0.85 * radius * radius;
    while (failed < target) {
        const size_t k = rng.below(n);
        const double cx = (sites[k].i + 0.5) * w, cy = (sites[k].j + 0.5) * h;
        const bool edge = cx * cx + cy * cy > edge_r2;
        if (bin[k] != 1 || rng.uniform() >= (edge ? 1.0 : 0.4)) continue;
        const double u = rng.uniform();
        bin[k] = edge && u < 0.5 ? 2 : u < 0.35 ? 2 : u < 0.65 ? 3 : u < 0.9 ? 4 : 5;
        ++failed;
    }

    return bin;
}

}  // namespace

Result<WaferMap> synthesize_wafer(const SynthOptions& o) {
    WP_RETURN_IF_ERROR(check_synth_options(o));
    const auto bin_type = detail::canonical_bin_type(o.bin_type);
    if (!bin_type || (*bin_type != "Ascii" && *bin_type != "HexaDecimal"))
        return invalid_synth("bin type must be Ascii or HexaDecimal, not '" + o.bin_type + "'");
    const bool hex = *bin_type == "HexaDecimal";

    const double radius = o.diameter_mm / 2 - o.edge_exclusion_mm;
    const double w = o.die_width_mm, h = o.die_height_mm;
    std::vector<Site> sites = best_placement(radius, w, h);
    if (sites.empty()) return invalid_synth("no die fits inside the usable circle");

    int min_i = sites.front().i, max_i = min_i, min_j = sites.front().j, max_j = min_j;
    for (const auto& s : sites) {
        min_i = std::min(min_i, s.i);
        max_i = std::max(max_i, s.i);
        min_j = std::min(min_j, s.j);
        max_j = std::max(max_j, s.j);
    }

    WaferMap map;
    map.format = "E142";
    map.lot = o.lot;
    map.wafer = o.wafer;
    map.substrate_id = o.lot + "-" + (o.wafer < 10 ? "0" : "") + std::to_string(o.wafer);
    map.device = o.device;
    map.columns = max_i - min_i + 1;
    map.rows = max_j - min_j + 1;
    map.die_width_mm = w;
    map.die_height_mm = h;
    map.wafer_diameter_mm = o.diameter_mm;
    map.flat_deg = 180;  // the notch down, as the synthetic maps have always been drawn
    map.origin = o.origin;
    map.axis = o.axis;
    map.bin_type = *bin_type;
    WP_ASSIGN_OR_RETURN(const CoordinateSystem cs,
                        coordinate_system(map.columns, map.rows, map.origin, map.axis));
    auto code = [hex](int n) { return hex ? "0" + std::to_string(n) : std::to_string(n); };
    map.null_bin = hex ? "FF" : ".";
    map.bin_descriptions = {{code(1), "pass: provision"},
                            {code(2), "continuity (open/short)"},
                            {code(3), "IDDQ leakage"},
                            {code(4), "scan"},
                            {code(5), "memory BIST"}};
    map.good_bins = {code(1)};

    // Picture order (top row first): j grows upwards on the wafer, so row = max_j - j.
    std::sort(sites.begin(), sites.end(),
              [](const Site& a, const Site& b) { return a.j != b.j ? a.j > b.j : a.i < b.i; });
    const size_t n = sites.size();
    const std::vector<int> bin = draw_bins(sites, o, radius, w, h);

    map.dies.reserve(n);
    for (size_t k = 0; k < n; ++k) {
        MapDie d;
        cs.to_floor(sites[k].i - min_i, max_j - sites[k].j, d.x, d.y);
        d.bin = code(bin[k]);
        map.dies.push_back(std::move(d));
    }
    return map;
}

}  // namespace waferprov::host
