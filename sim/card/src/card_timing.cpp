#include "waferprov/sim/card_timing.hpp"

#include <algorithm>

namespace waferprov::sim {

CardTiming::CardTiming(const CardCalibration& cal, unsigned engines, unsigned stream_bits)
    : cal_(cal),
      uids_per_beat_(std::max(1u, stream_bits / 128)),
      record_beats_(static_cast<double>(cal.record_beats_128) * 128.0 /
                    static_cast<double>(std::max(128u, stream_bits))),
      engine_free_(std::max(1u, engines), 0.0) {}

void CardTiming::load_kik(double now) {
    kik_fresh_ = true;
    sym_free_ = std::max(sym_free_, now);
}

void CardTiming::reseed(double now) {
    // Queued behind the die in sym_die: it runs once that die is handed off.
    reseed_ready_ = std::max(now + cal_.fixed_cycles, sym_free_) + cal_.reseed_extra_cycles;
}

void CardTiming::instantiate(double now) { sym_free_ = std::max(sym_free_, now); }

std::vector<double> CardTiming::submit(double now, std::size_t count) {
    std::vector<double> out;
    out.reserve(count);
    // The latency's fixed part is charged at ingress, so that a die's latency is
    // fixed + sym + keygen + record beats when nothing waits.
    for (std::size_t i = 0; i < count; ++i) {
        const double arrival = now + static_cast<double>(i / uids_per_beat_) + cal_.fixed_cycles;
        const double start = std::max({arrival, sym_free_, reseed_ready_});
        double sym = cal_.sym_cycles;
        if (kik_fresh_) {
            sym += cal_.kik_first_extra_cycles;
            kik_fresh_ = false;
        }
        const double sym_done = start + sym;
        // The lowest-numbered engine free the earliest.
        auto e = std::min_element(engine_free_.begin(), engine_free_.end());
        const double hand = std::max(sym_done, *e);
        sym_free_ = hand;  // sym_die holds its result until an engine takes it
        const double done = hand + cal_.keygen_cycles;
        const double rec_start = std::max(done, rec_free_);
        rec_free_ = rec_start + record_beats_;
        engine_busy_ += rec_start - hand;
        *e = rec_start;  // the engine is wiped and free when its record is taken
        out.push_back(rec_free_);
    }
    return out;
}

}  // namespace waferprov::sim
