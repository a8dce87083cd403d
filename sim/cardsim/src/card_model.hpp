// One Verilated card behind a small virtual interface, so that the emulator is written once for
// every configuration sim/card_rtl builds (the model class is a template parameter of
// CardHarness). Not thread-safe: the emulator's clock thread is the only caller.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "waferprov/sim/card_harness.hpp"

namespace waferprov::cardsim {

class CardModel {
public:
    virtual ~CardModel() = default;
    virtual uint32_t read32(uint32_t addr) = 0;
    virtual void write32(uint32_t addr, uint32_t value) = 0;
    virtual void step(uint64_t cycles) = 0;
    // One request beat (data.size() <= beat_bytes()).
    virtual void push_beat(sim::Beat beat) = 0;
    virtual std::size_t beat_bytes() const = 0;
    virtual bool requests_pending() const = 0;
    // Request beats the card took since the last call.
    virtual std::size_t take_accepted() = 0;
    // Records the card put out since the last call, in order.
    virtual std::vector<sim::RecordOut> take_records() = 0;
    virtual bool irq() = 0;
    virtual uint64_t cycles() const = 0;
    virtual std::string name() const = 0;
};

// A card with `engines` P-256 engines (1, 2 or 4; 128-bit streams), its key port tied to `dk`.
// nullptr for an engine count sim/card_rtl does not build for the emulator.
std::unique_ptr<CardModel> make_card_model(unsigned engines, std::span<const uint8_t> dk);
std::string supported_engine_counts();

}  // namespace waferprov::cardsim
