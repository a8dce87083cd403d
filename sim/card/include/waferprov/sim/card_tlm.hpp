// A TLM-2.0 loosely-timed model of the card (docs/planning.md, "The card model"): what the
// host sees through the XDMA IP — the register space (BAR, AXI4-Lite), the request stream
// (H2C DMA of 16-byte UIDs) and the record stream (C2H DMA of 128-byte records) — over a PCIe
// link with its own parameters. The card's timing is CardTiming, built from the calibration
// the Verilated card produced.
//
// Every target annotates its latency on `delay` and never calls wait() (STYLE.md); an
// initiator syncs (wait(delay)) when it must observe time. A C2H read of k records returns
// with the delay until the k-th record is out plus its transfer. Records carry their sequence
// number (bytes 0..7) and UID (8..23); the key material is not modelled (zeros): the model is
// for timing, the Verilated card and the software engine are for bytes.
//
// The register space: ID, VERSION, CAPS (ENGINES, stream width), SCRATCH, CTRL (LOAD_KIK,
// INSTANTIATE, RESEED), STATUS (BUSY, KIK_VALID, INSTANTIATED), SEQ_START, SEQ_NEXT; the other
// registers store writes and read 0. One SystemC simulation per process (see isolated.hpp).
#pragma once

#include <tlm_utils/simple_target_socket.h>
#include <cstdint>
#include <deque>
#include <systemc>
#include <tlm>

#include "waferprov/sim/card_calibration.hpp"
#include "waferprov/sim/card_timing.hpp"

namespace waferprov::sim {

struct CardTlmConfig {
    unsigned engines = 4;
    unsigned stream_bits = 128;
    double clock_mhz = 250.0;  // the engines' timing evidence (docs/rtl.md)
    PcieLink link;
    // false: the streams and registers are reached with no link cost (how the RTL bench
    // drives the card, for the comparison with the Verilated card).
    bool model_link = true;
};

class CardTlm : public sc_core::sc_module {
public:
    tlm_utils::simple_target_socket<CardTlm> regs;  // BAR: 4 KiB register space
    tlm_utils::simple_target_socket<CardTlm> h2c;   // request stream: writes of UIDs
    tlm_utils::simple_target_socket<CardTlm> c2h;   // record stream: reads of records

    CardTlm(const sc_core::sc_module_name& name, const CardCalibration& cal,
            const CardTlmConfig& config);

    sc_core::sc_time clock_period() const { return period_; }
    // The timing core (for utilization figures).
    const CardTiming& timing() const { return timing_; }

private:
    struct Pending {
        uint64_t seq;
        std::array<uint8_t, 16> uid;
        double out_cycle;  // card clock cycles since time zero
    };

    void regs_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);
    void h2c_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);
    void c2h_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);
    double cycles_at(const sc_core::sc_time& delay) const;
    sc_core::sc_time link_time(double bytes) const;

    CardCalibration cal_;
    CardTlmConfig config_;
    sc_core::sc_time period_;
    CardTiming timing_;
    std::array<uint32_t, 1024> reg_{};
    bool kik_valid_ = false;
    bool instantiated_ = false;
    uint64_t seq_next_ = 0;
    std::deque<Pending> pending_;
};

}  // namespace waferprov::sim
