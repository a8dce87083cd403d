// The card's timing, die by die, from the calibration: the cycle-level core of the TLM model
// (card_tlm.hpp) and of the floor model's cards. Pure arithmetic, no SystemC.
//
// The structure follows rtl/card (docs/card.md, "Ordering"): one sym_die takes the UIDs in
// order and holds each result until an engine is free (so it is busy until the hand-off); the
// lowest-numbered free engine takes it; the record stage takes engines strictly in sequence
// order and frees an engine when it takes its record. A RESEED is queued behind the die in
// sym_die; the first die after LOAD_KIK costs sym_die extra.
//
// Not thread-safe; one per card.
#pragma once

#include <cstdint>
#include <vector>

#include "waferprov/sim/card_calibration.hpp"

namespace waferprov::sim {

class CardTiming {
public:
    // engines: 1..16; stream_bits: 128, 256 or 512.
    CardTiming(const CardCalibration& cal, unsigned engines, unsigned stream_bits = 128);

    unsigned engines() const { return static_cast<unsigned>(engine_free_.size()); }

    // LOAD_KIK done at `now` (cycles): the next die pays the CMAC subkey derivation.
    void load_kik(double now);
    // RESEED written at `now`: takes effect before the next die starts.
    void reseed(double now);
    // INSTANTIATE at `now`: drops nothing in this model (the caller drains first).
    void instantiate(double now);

    // `count` UIDs handed to the request stream at cycle `now` (one per 128 bits of beat);
    // returns the cycle at which the last beat of each record leaves, in sequence order.
    std::vector<double> submit(double now, std::size_t count);

    // Cycle at which everything submitted so far is out.
    double idle_at() const { return rec_free_; }
    // Cycles sym_die and the engines were busy (for utilization).
    double engine_busy_cycles() const { return engine_busy_; }

private:
    CardCalibration cal_;
    unsigned uids_per_beat_;
    double record_beats_;
    std::vector<double> engine_free_;
    double sym_free_ = 0;
    double rec_free_ = 0;
    double reseed_ready_ = 0;
    bool kik_fresh_ = false;
    double engine_busy_ = 0;
};

}  // namespace waferprov::sim
