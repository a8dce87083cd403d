#include "card_model.hpp"

#include "Vwp_card_vl_n1_w128.h"
#include "Vwp_card_vl_n2_w128.h"
#include "Vwp_card_vl_n4_w128.h"

namespace waferprov::cardsim {

namespace {

template <class Model>
class Card final : public CardModel {
public:
    Card(std::span<const uint8_t> dk, std::string name) : h_(dk), name_(std::move(name)) {
        h_.reset();
    }
    uint32_t read32(uint32_t addr) override { return h_.read32(addr); }
    void write32(uint32_t addr, uint32_t value) override { h_.write32(addr, value); }
    void step(uint64_t cycles) override { h_.run(cycles); }
    void push_beat(sim::Beat beat) override { h_.push_beat(std::move(beat)); }
    std::size_t beat_bytes() const override { return sim::CardHarness<Model>::beat_bytes(); }
    bool requests_pending() const override { return h_.requests_pending(); }
    std::size_t take_accepted() override {
        const std::size_t n = h_.accepted_cycles().size();
        h_.accepted_cycles().clear();
        return n;
    }
    std::vector<sim::RecordOut> take_records() override {
        std::vector<sim::RecordOut> out(h_.records().begin(), h_.records().end());
        h_.records().clear();
        return out;
    }
    bool irq() override { return h_.dut().irq_o != 0; }
    uint64_t cycles() const override { return h_.cycles(); }
    std::string name() const override { return name_; }

private:
    sim::CardHarness<Model> h_;
    std::string name_;
};

}  // namespace

std::unique_ptr<CardModel> make_card_model(unsigned engines, std::span<const uint8_t> dk) {
    switch (engines) {
        case 1: return std::make_unique<Card<Vwp_card_vl_n1_w128>>(dk, "wp_card n1 w128");
        case 2: return std::make_unique<Card<Vwp_card_vl_n2_w128>>(dk, "wp_card n2 w128");
        case 4: return std::make_unique<Card<Vwp_card_vl_n4_w128>>(dk, "wp_card n4 w128");
        default: return nullptr;
    }
}

std::string supported_engine_counts() { return "1, 2 or 4"; }

}  // namespace waferprov::cardsim
