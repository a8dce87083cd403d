// Reading the wafer maps named on a command line: `--map FILE [--wafer N]`, in order, where
// `--wafer N` gives the wafer number of the map named just before it (for maps whose own
// fields do not give one; docs/wafer-maps.md, "Wafer numbers and substrate ids").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "waferprov/host/job.hpp"
#include "waferprov/host/wafermap.hpp"

namespace waferprov::cli {

// The map-reading options a job asks for ([map] uid_overlay).
inline host::MapReadOptions map_options_of(const host::Job& job) {
    host::MapReadOptions o;
    o.uid_overlay = job.map_uid_overlay;
    return o;
}

// The --map FILE [--wafer N] pairs of `a` in command-line order. `stop_at` ends the scan at an
// option of that name (serve: the next --job); `from` is where the scan starts.
struct MapArg {
    std::string file;
    std::optional<int> wafer;
};

inline Result<std::vector<MapArg>> map_args(const ParsedArgs& a) {
    std::vector<MapArg> out;
    for (const auto& [name, value] : a.options) {
        if (name == "map") {
            out.push_back(MapArg{value, std::nullopt});
        } else if (name == "wafer") {
            if (out.empty())
                return make_error(ErrorCode::kInvalidArgument,
                                  "--wafer " + value + " must follow the --map it numbers");
            if (out.back().wafer)
                return make_error(ErrorCode::kInvalidArgument,
                                  "--map " + out.back().file + " has two --wafer options");
            size_t used = 0;
            int n = -1;
            try {
                n = std::stoi(value, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used != value.size() || n < 0 || n > 65535)
                return make_error(ErrorCode::kInvalidArgument,
                                  "--wafer must be a wafer number 0..65535, got '" + value + "'");
            out.back().wafer = n;
        }
    }
    return out;
}

inline Result<host::WaferMap> read_map(const MapArg& m, host::MapReadOptions options) {
    options.wafer_number = m.wafer;
    return host::read_map_file(m.file, options);
}

}  // namespace waferprov::cli
