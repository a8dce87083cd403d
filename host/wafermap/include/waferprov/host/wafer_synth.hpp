// Synthetic wafer maps for demos, tests and load runs: a round wafer of rectangular dies with a
// deterministic sprinkling of dies that already failed earlier tests (docs/wafer-maps.md).
#pragma once

#include <cstdint>
#include <string>

#include "waferprov/host/model.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host {

struct SynthOptions {
    double diameter_mm = 300;
    double die_width_mm = 2;
    double die_height_mm = 2;
    // A die is present when its whole rectangle lies inside the circle of diameter
    // diameter_mm - 2 * edge_exclusion_mm.
    double edge_exclusion_mm = 3;
    double fail_rate = 0.04;  // fraction of present dies failed at earlier tests, in [0, 0.5]
    uint64_t seed = 1;        // same seed, same map (on every platform)
    std::string lot = "SYNTH0001";
    int wafer = 1;
    std::string device = "WPDEMO";
    std::string bin_type = "HexaDecimal";  // or "Ascii"
    std::string origin = "LowerLeft";
    std::string axis = "UpRight";
};

// Pass bin: "01" (HexaDecimal) / "1" (Ascii); failed bins "02".."05" / "2".."5"; null bin "FF"
// / ".". Errors: non-positive or absurd sizes (more than MapReadOptions' 10,000 dies a side), a
// fail rate outside [0, 0.5], an unknown bin type, origin or axis.
Result<WaferMap> synthesize_wafer(const SynthOptions& options);

// The textbook gross-die estimate π(d/2)²/S − πd/√(2S) for usable diameter d and die area S.
double gross_die_estimate(double usable_diameter_mm, double die_area_mm2);

}  // namespace waferprov::host
