// The card model's constants, read from the calibration file that testbench/card's
// card_calibrate writes from the Verilated card (never typed in by hand), and the PCIe link's
// parameters (public figures, cited in docs/planning.md).
#pragma once

#include <filesystem>
#include <string>

#include "waferprov/result.hpp"

namespace waferprov::sim {

// Cycles of the card's clock, as card_calibrate measured them (docs/planning.md, "Calibration").
struct CardCalibration {
    double keygen_cycles = 0;           // an engine's occupancy per die (hand-off to hand-off)
    double sym_cycles = 0;              // sym_die per die (KDF, DRBG, wrap)
    double kik_first_extra_cycles = 0;  // the first die after LOAD_KIK (CMAC subkeys)
    double reseed_extra_cycles = 0;     // a RESEED ahead of a die
    double fixed_cycles = 0;            // a die's latency beyond sym + keygen + record beats
    double reg_write_cycles = 0;        // one AXI4-Lite write
    unsigned record_beats_128 = 8;      // beats of one record at 128 bits
};

// Reads `file`. Errors name the file and the key that is missing or out of range.
Result<CardCalibration> load_card_calibration(const std::filesystem::path& file);

// The calibration file to use when a floor names none: $WAFERPROV_CARD_CALIBRATION if set; for
// an installed program, <prefix>/share/waferprov/card_calibration.toml (the Debian package
// ships the one its build wrote); else the one the build wrote
// (build/sim/card/card_calibration.toml).
std::filesystem::path default_card_calibration_path();

// The PCIe link between host and card. Defaults: Gen3 x8 (what a KU5P/Alveo-class card with the
// XDMA IP runs), 85 % of the raw rate left for payload by TLP/DLLP overhead at 256-byte
// payloads, and 30 us per DMA transfer (XDMA in interrupt mode, dma_ip_drivers issue 321).
struct PcieLink {
    int generation = 3;          // 1..5
    int lanes = 8;               // 1, 2, 4, 8, 16
    double efficiency = 0.85;    // payload share of the raw rate (0, 1]
    double dma_setup_us = 30.0;  // per DMA transfer (descriptor, doorbell, completion interrupt)

    // Payload bytes per second after line coding and protocol overhead.
    double bytes_per_second() const;
    // One DMA transfer of `bytes`: setup plus the payload at bytes_per_second().
    double transfer_seconds(double bytes) const;
    Status validate() const;
};

}  // namespace waferprov::sim
