// A TLM-to-AXI bridge onto the Verilated card (issue 16, docs/planning.md): the same three
// TLM-2.0 target sockets as the card's TLM model (sim/card, CardTlm) — the register space
// (AXI4-Lite), the request stream (H2C writes of 16-byte UIDs) and the record stream (C2H reads
// of 128-byte records) — carried out on the Verilated wp_card through its clocked harness
// (CardHarness), so that one TLM front end drives either the model or the RTL.
//
// Loosely timed with the RTL running ahead of SystemC time, as a temporally decoupled target:
// a transport first clocks the idle card up to the initiator's local time (sc_time_stamp() +
// delay: the card keeps working on what it holds meanwhile), then carries the access out on
// the ports cycle by cycle (a register access until its AXI4-Lite response, an H2C write until
// the card has taken the packet's last beat, a C2H read until the last requested record's
// last beat is out) and returns with `delay` advanced to the card's cycle count. It never calls
// wait() (STYLE.md). One initiator at a time (the card has one clock and one set of ports).
//
// The card is verilated once per configuration (sim/card_rtl, a C++ model, not Verilator's
// --sc output): this header is the only place the harness meets SystemC. Include the Verilated
// model's header and card_harness.hpp before SystemC (verilated.h must not see SystemC when
// the model is not an --sc model); this header includes card_harness.hpp first for that reason.
#pragma once

#include "waferprov/sim/card_harness.hpp"
// SystemC after Verilator (see above).
#include <tlm_utils/simple_target_socket.h>

#include <cmath>
#include <cstring>
#include <span>
#include <string>
#include <systemc>
#include <tlm>

namespace waferprov::sim {

template <class Model>
class CardRtlBridge : public sc_core::sc_module {
public:
    tlm_utils::simple_target_socket<CardRtlBridge> regs;  // BAR: 4 KiB register space
    tlm_utils::simple_target_socket<CardRtlBridge> h2c;   // request stream: writes of UIDs
    tlm_utils::simple_target_socket<CardRtlBridge> c2h;   // record stream: reads of records

    // `dk`: the device key on the card's key port (32 bytes); `clock_mhz`: the card clock the
    // cycles are converted at (the TLM model's, for a comparison). The card is reset here.
    CardRtlBridge(const sc_core::sc_module_name& name, std::span<const uint8_t> dk,
                  double clock_mhz)
        : sc_module(name),
          regs("regs"),
          h2c("h2c"),
          c2h("c2h"),
          period_(1.0 / (clock_mhz * 1e6), sc_core::SC_SEC),
          card_(dk) {
        regs.register_b_transport(this, &CardRtlBridge::regs_transport);
        h2c.register_b_transport(this, &CardRtlBridge::h2c_transport);
        c2h.register_b_transport(this, &CardRtlBridge::c2h_transport);
        card_.reset();
        reset_cycles_ = card_.cycles();
    }

    sc_core::sc_time clock_period() const { return period_; }
    // The card's clock cycles since the end of its reset (time zero).
    uint64_t cycles() const { return card_.cycles() - reset_cycles_; }
    // What went wrong in the first transport that returned an error response ("" if none).
    const std::string& last_error() const { return error_; }

private:
    // Clocks the card, idle but serviced, up to the initiator's local time.
    void catch_up(const sc_core::sc_time& delay) {
        const auto at =
            static_cast<uint64_t>(std::ceil((sc_core::sc_time_stamp() + delay) / period_ - 1e-9));
        while (cycles() < at) card_.step();
    }
    // `delay` to where the card's clock is now.
    void annotate(sc_core::sc_time& delay) const {
        delay = period_ * static_cast<double>(cycles()) - sc_core::sc_time_stamp();
    }
    template <class Fn>
    void carry_out(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay, Fn&& fn) {
        catch_up(delay);
        try {
            fn();
            gp.set_response_status(tlm::TLM_OK_RESPONSE);
        } catch (const std::exception& e) {  // the harness's bounded waits
            if (error_.empty()) error_ = e.what();
            gp.set_response_status(tlm::TLM_GENERIC_ERROR_RESPONSE);
        }
        annotate(delay);
    }

    void regs_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
        const uint64_t addr = gp.get_address();
        if (gp.get_data_length() != 4 || addr % 4 != 0 || addr >= 4096) {
            gp.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
            return;
        }
        carry_out(gp, delay, [&] {
            uint32_t v = 0;
            if (gp.is_write()) {
                std::memcpy(&v, gp.get_data_ptr(), 4);
                card_.write32(static_cast<uint32_t>(addr), v);
            } else {
                v = card_.read32(static_cast<uint32_t>(addr));
                std::memcpy(gp.get_data_ptr(), &v, 4);
            }
        });
    }

    void h2c_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
        const std::size_t len = gp.get_data_length();
        if (!gp.is_write() || len == 0 || len % 16 != 0) {
            gp.set_response_status(tlm::TLM_BURST_ERROR_RESPONSE);
            return;
        }
        carry_out(gp, delay, [&] {
            // One H2C transfer is one request packet (tlast on its last beat), done when the
            // card has taken that beat.
            std::vector<std::array<uint8_t, 16>> uids(len / 16);
            for (std::size_t i = 0; i < uids.size(); ++i)
                std::memcpy(uids[i].data(), gp.get_data_ptr() + 16 * i, 16);
            card_.push_uids(uids, uids.size());
            // The card takes a beat only when its engines have room for its UIDs (back-pressure),
            // so a long packet is taken at the pace of the key generations.
            card_.run_until([&] { return !card_.requests_pending(); },
                            kCyclesPerRecord * (uids.size() + 4));
        });
    }

    void c2h_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
        const std::size_t len = gp.get_data_length();
        if (!gp.is_read() || len == 0 || len % 128 != 0) {
            gp.set_response_status(tlm::TLM_BURST_ERROR_RESPONSE);
            return;
        }
        carry_out(gp, delay, [&] {
            const std::size_t n = len / 128;
            auto& out = card_.records();
            card_.run_until([&] { return out.size() >= n; }, kCyclesPerRecord * (n + 4));
            for (std::size_t i = 0; i < n; ++i) {
                std::memcpy(gp.get_data_ptr() + 128 * i, out.front().bytes.data(), 128);
                out.pop_front();
            }
        });
    }

    // The bound of the waits, per die: generous against one key generation (about 9,300
    // cycles, rejections included), so that only a card that stopped (halted on an error, a
    // broken design) runs into it.
    static constexpr uint64_t kCyclesPerRecord = 40000;

    sc_core::sc_time period_;
    CardHarness<Model> card_;
    uint64_t reset_cycles_ = 0;
    std::string error_;
};

}  // namespace waferprov::sim
