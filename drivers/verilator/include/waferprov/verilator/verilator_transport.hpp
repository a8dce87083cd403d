// The Verilator transport: a card::Transport that clocks a Verilated wp_card in-process
// (sim/card_rtl's models through waferprov::sim::CardHarness). The card driver
// (drivers/card) runs over it unchanged, as it runs over XDMA.
//
// The model only advances while the driver waits on it: read32/write32 step until the AXI4-Lite
// response, write_requests steps until the card has taken every request beat (as an XDMA H2C
// transfer completes), read_records and wait_event step until the records or the interrupt are
// there, each within a wall-clock deadline (kTimeout). The card's interrupt line ends a wait
// for records early (kDeviceFault): a halted card sends nothing more.
//
// The engine count is fixed by the build: one verilated model per configuration
// (verilator_engine_counts()). Waves only on request (VerilatorOptions::trace_file, or the
// harness's WAFERPROV_TRACE). Not thread-safe, as every Transport.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "waferprov/card/transport.hpp"
#include "waferprov/result.hpp"

namespace waferprov::verilator {

struct VerilatorOptions {
    // Identity engines: one of verilator_engine_counts().
    uint32_t engines = 4;
    // The device key on the card's key port (32 bytes). Empty: the published development test
    // key (development builds only), the one `job init --backend verilator` wraps KIKs under.
    std::vector<uint8_t> device_key;
    // Write a VCD of the whole run here (slow; off unless asked for).
    std::optional<std::string> trace_file;
};

// The configurations this build verilated, by engine count ("n4_w128" for 4).
std::vector<uint32_t> verilator_engine_counts();
uint32_t default_verilator_engines();

// A transport over a fresh, reset card model. kInvalidArgument names the engine counts built.
Result<std::unique_ptr<card::Transport>> make_verilator_transport(const VerilatorOptions& options);

// Cycles the card model has run through this transport (figures: simulated cycles per die).
// kInvalidArgument when `transport` is not a Verilator transport.
Result<uint64_t> simulated_cycles(const card::Transport& transport);

}  // namespace waferprov::verilator
