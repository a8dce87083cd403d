// Synthetic wafers for the report tests: a round wafer of square dies with a random but
// self-consistent mix of outcomes and ledger states.
#pragma once

#include <cmath>
#include <random>
#include <string>

#include "waferprov/host/report.hpp"

namespace waferprov::host::report::testing {

inline std::string random_hex(std::mt19937_64& rng, size_t bytes) {
    static const char* digits = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < bytes; ++i) {
        auto b = static_cast<unsigned>(rng() & 0xff);
        s += digits[b >> 4];
        s += digits[b & 15];
    }
    return s;
}

// A wafer of `diameter_mm` with dies of `die_mm` square, centred on the origin: dies whose four
// corners lie inside the wafer. Coordinates run from 0 (LowerLeft origin, UpRight axis).
inline WaferRun synthetic_wafer(double diameter_mm, double die_mm, uint64_t seed,
                                std::string lot = "LOT0042", int wafer = 3) {
    std::mt19937_64 rng(seed);
    WaferRun run;
    run.job = "JOB-7";
    run.product = "WP-P256-A";
    run.customer = "ACME";
    run.lot = std::move(lot);
    run.wafer = wafer;
    run.substrate_id = run.lot + "-W" + std::to_string(wafer);
    run.tester_node = "prober-node-1";
    run.start_unix = 1735732800;  // 2025-01-01T12:00:00Z
    run.finish_unix = run.start_unix + 95;
    const int n = static_cast<int>(std::floor(diameter_mm / die_mm));
    run.geometry.columns = n;
    run.geometry.rows = n;
    run.geometry.die_width_mm = die_mm;
    run.geometry.die_height_mm = die_mm;
    const double r = diameter_mm / 2;
    std::discrete_distribution<int> pick({70, 6, 3, 3, 4, 14});
    std::discrete_distribution<int> live({30, 30, 40});
    for (int y = 0; y < n; ++y)
        for (int x = 0; x < n; ++x) {
            const double x0 = (x - n / 2.0) * die_mm, y0 = (y - n / 2.0) * die_mm;
            bool inside = true;
            for (double dx : {0.0, die_mm})
                for (double dy : {0.0, die_mm})
                    inside = inside && std::hypot(x0 + dx, y0 + dy) <= r;
            if (!inside) continue;
            DieRecord d;
            d.x = x;
            d.y = y;
            d.uid_hex = random_hex(rng, 16);
            d.site = 1 + static_cast<int>(rng() % 4);
            d.outcome = static_cast<Outcome>(pick(rng));
            d.selected = d.outcome != Outcome::kNotSelected;
            d.bin = d.selected ? "01" : "07";
            d.test_time_ms = d.selected ? 5 : 0;
            switch (d.outcome) {
                case Outcome::kProvisioned:
                case Outcome::kReissued:
                    d.state = static_cast<DieState>(live(rng));
                    d.serial_hex = random_hex(rng, 16);
                    break;
                case Outcome::kRefusedConflict: d.state = DieState::kProgrammed; break;
                case Outcome::kRefusedQuota: break;
                case Outcome::kFailedCheck:
                    d.state = DieState::kFailed;
                    d.note = "public key not on P-256";
                    break;
                case Outcome::kNotSelected: break;
            }
            run.dies.push_back(std::move(d));
        }
    Tally t = tally(run);
    run.run.elapsed_s = 95;
    run.run.dies_per_second = static_cast<double>(t.selected) / 95.0;
    run.run.quota = Quota{100000, 40000, 60000};
    run.run.counts = t.outcomes;
    return run;
}

}  // namespace waferprov::host::report::testing
