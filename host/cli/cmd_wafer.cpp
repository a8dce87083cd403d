// waferprov wafer synth|info: synthetic wafer maps, and what a map holds (docs/wafer-maps.md).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli.hpp"
#include "maps.hpp"
#include "waferprov/host/wafer_synth.hpp"
#include "waferprov/host/wafermap.hpp"

namespace waferprov::cli {
namespace {

constexpr const char* kUsage =
    "usage: waferprov wafer synth --diameter MM --die WxH --out FILE [--lot ID] [--wafer N]\n"
    "                             [--seed S] [--edge-exclusion MM] [--fail-rate R]\n"
    "                             [--bin-type ascii|hex] [--format e142|sinf]\n"
    "                             [--origin LowerLeft|...] [--axis UpRight|...] [--device NAME]\n"
    "       waferprov wafer info --map FILE [--wafer N] [--bins CODE,...]\n"
    "\n"
    "synth writes a synthetic wafer map: the dies whose whole rectangle lies inside the circle of\n"
    "diameter MM - 2 x edge exclusion (default 3 mm), bin 01 (\"1\" for ascii) to provision,\n"
    "bins 02-05 failed at earlier tests (--fail-rate, default 0.04, clustered, the same for the\n"
    "same --seed), NullBin FF (\".\") elsewhere. Default format E142 (2DArray, hex bins).\n"
    "info reads an E142 or SINF map and prints lot, wafer, layout, dies per bin, and how many\n"
    "dies would be provisioned from --bins (default: the bins the map marks good).\n"
    "Exit status: 0 ok; 1 the map is bad or a bin is not defined; 2 usage.\n";

int usage_error(const std::string& what) {
    std::cerr << "waferprov wafer: " << what << "\n" << kUsage;
    return kExitUsage;
}

bool parse_double(const std::string& s, double& out) {
    std::istringstream in(s);
    in >> out;
    return !s.empty() && in && in.eof();
}

bool parse_u64(const std::string& s, uint64_t& out) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 19)
        return false;
    out = std::stoull(s);
    return true;
}

std::vector<std::string> split_commas(const std::string& s) {
    std::vector<std::string> out;
    std::string item;
    std::istringstream in(s);
    while (std::getline(in, item, ','))
        if (!item.empty()) out.push_back(item);
    return out;
}

int run_synth(const Args& args) {
    ParsedArgs p;
    std::string error;
    if (!parse_args(args,
                    {"diameter", "die", "out", "lot", "wafer", "seed", "edge-exclusion",
                     "fail-rate", "bin-type", "format", "origin", "axis", "device"},
                    {"help"}, p, error))
        return usage_error(error);
    if (p.has("help")) {
        std::cout << kUsage;
        return kExitOk;
    }
    if (!p.positionals.empty()) return usage_error("unexpected argument " + p.positionals[0]);
    for (const char* required : {"diameter", "die", "out"})
        if (!p.has(required)) return usage_error(std::string("--") + required + " is required");

    host::SynthOptions o;
    if (!parse_double(p.get("diameter"), o.diameter_mm))
        return usage_error("--diameter: not a number: " + p.get("diameter"));
    const std::string die = p.get("die");
    const auto x = die.find_first_of("xX");
    if (x == std::string::npos || !parse_double(die.substr(0, x), o.die_width_mm) ||
        !parse_double(die.substr(x + 1), o.die_height_mm))
        return usage_error("--die: expected WxH in mm (e.g. 2x2 or 1.5x2.25), got " + die);
    if (p.has("edge-exclusion") && !parse_double(p.get("edge-exclusion"), o.edge_exclusion_mm))
        return usage_error("--edge-exclusion: not a number");
    if (p.has("fail-rate") && !parse_double(p.get("fail-rate"), o.fail_rate))
        return usage_error("--fail-rate: not a number");
    if (p.has("seed") && !parse_u64(p.get("seed"), o.seed))
        return usage_error("--seed: not a non-negative integer");
    if (p.has("wafer")) {
        uint64_t w = 0;
        if (!parse_u64(p.get("wafer"), w) || w > 9999)
            return usage_error("--wafer: not a wafer number");
        o.wafer = static_cast<int>(w);
    }
    if (p.has("lot")) o.lot = p.get("lot");
    if (p.has("device")) o.device = p.get("device");
    const std::string bin_type = p.has("bin-type") ? p.get("bin-type") : "hex";
    if (bin_type == "hex")
        o.bin_type = "HexaDecimal";
    else if (bin_type == "ascii")
        o.bin_type = "Ascii";
    else
        return usage_error("--bin-type: ascii or hex");
    const std::string format = p.has("format") ? p.get("format") : "e142";
    if (format != "e142" && format != "sinf") return usage_error("--format: e142 or sinf");
    if (format == "sinf") {
        // SINF is always read as UpperLeft/DownRight (docs/wafer-maps.md).
        if (p.has("origin") || p.has("axis") || o.bin_type != "HexaDecimal")
            return usage_error("--format sinf takes neither --origin, --axis nor --bin-type ascii");
        o.origin = "UpperLeft";
        o.axis = "DownRight";
    }
    if (p.has("origin")) o.origin = p.get("origin");
    if (p.has("axis")) o.axis = p.get("axis");

    auto map = host::synthesize_wafer(o);
    if (!map.ok()) {
        std::cerr << "waferprov wafer synth: " << map.error().describe() << "\n";
        return map.error().code == ErrorCode::kInvalidArgument ? kExitUsage : kExitFailure;
    }
    auto text = format == "sinf" ? host::write_sinf(*map) : host::write_e142(*map);
    if (!text.ok()) {
        std::cerr << "waferprov wafer synth: " << text.error().describe() << "\n";
        return kExitFailure;
    }
    const std::string out_path = p.get("out");
    {
        std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
        out << *text;
        out.close();
        if (!out) {
            std::cerr << "waferprov wafer synth: cannot write " << out_path << "\n";
            return kExitFailure;
        }
    }
    const auto counts = host::count_by_bin(*map);
    const size_t gross = map->dies.size();
    const size_t good = counts.at(map->good_bins.front());
    const double usable = o.diameter_mm - 2 * o.edge_exclusion_mm;
    std::cout << "wrote " << out_path << " (" << (format == "sinf" ? "SINF" : "E142") << ", "
              << map->bin_type << " bins, origin " << map->origin << ", axis " << map->axis << ")\n"
              << "  lot " << map->lot << " wafer " << map->wafer << ": " << o.diameter_mm
              << " mm wafer, " << o.edge_exclusion_mm << " mm edge exclusion, " << o.die_width_mm
              << " x " << o.die_height_mm << " mm dies\n"
              << "  layout " << map->columns << " x " << map->rows << ", gross dies " << gross
              << " (estimate pi(d/2)^2/S - pi d/sqrt(2S) with d = " << usable << " mm: "
              << std::llround(host::gross_die_estimate(usable, o.die_width_mm * o.die_height_mm))
              << ")\n"
              << "  failed at earlier tests " << gross - good << " (" << std::fixed
              << std::setprecision(1)
              << (gross == 0
                      ? 0.0
                      : 100.0 * static_cast<double>(gross - good) / static_cast<double>(gross))
              << "%), to provision (bin " << map->good_bins.front() << ") " << good << "\n";
    return kExitOk;
}

int run_info(const Args& args) {
    ParsedArgs p;
    std::string error;
    if (!parse_args(args, {"map", "wafer", "bins"}, {"help"}, p, error)) return usage_error(error);
    if (p.has("help")) {
        std::cout << kUsage;
        return kExitOk;
    }
    if (!p.positionals.empty()) return usage_error("unexpected argument " + p.positionals[0]);
    if (!p.has("map")) return usage_error("--map is required");

    const auto start = std::chrono::steady_clock::now();
    auto map_list = map_args(p);
    if (!map_list.ok()) return usage_error(map_list.error().message);
    auto map = read_map(map_list->back(), {});
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!map.ok()) {
        std::cerr << "waferprov wafer info: " << map.error().describe() << "\n";
        return kExitFailure;
    }
    const host::WaferMap& m = *map;
    size_t with_uid = 0;
    for (const auto& d : m.dies) with_uid += d.uid ? 1 : 0;
    std::cout << "map        " << p.get("map") << " (" << m.format << ", " << m.bin_type
              << " bins)\n"
              << "lot        " << m.lot << "\n"
              << "wafer      " << m.wafer << " (substrate " << m.substrate_id << ")\n";
    if (!m.device.empty()) std::cout << "device     " << m.device << "\n";
    std::cout << "layout     " << m.columns << " x " << m.rows << " dies";
    if (m.die_width_mm > 0)
        std::cout << ", step " << m.die_width_mm << " x " << m.die_height_mm << " mm";
    std::cout << ", origin " << m.origin << ", axis " << m.axis << "\n"
              << "dies       " << m.dies.size() << " (" << with_uid << " with a UID)\n";
    bool first = true;
    for (const auto& [code, count] : host::count_by_bin(m)) {
        const auto it = m.bin_descriptions.find(code);
        const bool good =
            std::find(m.good_bins.begin(), m.good_bins.end(), code) != m.good_bins.end();
        std::cout << (first ? "bins       " : "           ") << std::left << std::setw(5) << code
                  << std::right << std::setw(8) << count << "  "
                  << (it == m.bin_descriptions.end() ? "" : it->second) << (good ? " [good]" : "")
                  << "\n";
        first = false;
    }
    const std::vector<std::string> bins = p.has("bins") ? split_commas(p.get("bins")) : m.good_bins;
    if (bins.empty()) {
        std::cout << "provision  - (the map marks no bin good; pass --bins)\n";
    } else {
        auto selected = host::select_dies(m, bins);
        if (!selected.ok()) {
            std::cerr << "waferprov wafer info: " << selected.error().describe() << "\n";
            return kExitFailure;
        }
        std::string list;
        for (const auto& b : bins) list += (list.empty() ? "" : ",") + b;
        std::cout << "provision  " << selected->size() << " dies (bins " << list << ")\n";
    }
    std::cout << "read in    " << std::fixed << std::setprecision(1) << ms << " ms\n";
    return kExitOk;
}

}  // namespace

static int run_wafer(const Args& args) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h") {
        (args.empty() ? std::cerr : std::cout) << kUsage;
        return args.empty() ? kExitUsage : kExitOk;
    }
    const Args rest(args.begin() + 1, args.end());
    if (args[0] == "synth") return run_synth(rest);
    if (args[0] == "info") return run_info(rest);
    return usage_error("unknown subcommand '" + args[0] + "'");
}

WAFERPROV_COMMAND(wafer, "wafer synth|info: synthetic wafer maps; what an E142/SINF map holds",
                  run_wafer);

}  // namespace waferprov::cli
