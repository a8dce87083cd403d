// The tester simulator's run: one wafer over the tester link (docs/tester-simulator.md).
#pragma once

#include <ostream>

#include "options.hpp"

namespace waferprov::tester {

inline constexpr int kExitOk = 0;       // every die provisioned, checked and acknowledged
inline constexpr int kExitFailure = 1;  // anything else, or an error
inline constexpr int kExitUsage = 2;

// Reads the map, steps the probe card over it, asks the host for each touchdown's identities,
// checks them as the dies would, reports the results, and retests failed dies at the end of the
// wafer. Progress and problems go to `err` (each names what went wrong), the summary to `out`
// (and to options.json). Returns the exit status. Never throws.
int run_simulation(const Options& options, std::ostream& out, std::ostream& err);

}  // namespace waferprov::tester
