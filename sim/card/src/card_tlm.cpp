#include "waferprov/sim/card_tlm.hpp"

#include <algorithm>
#include <cstring>

#include "waferprov/card/card_regs.hpp"

namespace waferprov::sim {

namespace regs = card::regs;
using sc_core::SC_SEC;
using sc_core::sc_time;

CardTlm::CardTlm(const sc_core::sc_module_name& name, const CardCalibration& cal,
                 const CardTlmConfig& config)
    : sc_module(name),
      regs("regs"),
      h2c("h2c"),
      c2h("c2h"),
      cal_(cal),
      config_(config),
      period_(1.0 / (config.clock_mhz * 1e6), SC_SEC),
      timing_(cal, config.engines, config.stream_bits) {
    regs.register_b_transport(this, &CardTlm::regs_transport);
    h2c.register_b_transport(this, &CardTlm::h2c_transport);
    c2h.register_b_transport(this, &CardTlm::c2h_transport);
}

double CardTlm::cycles_at(const sc_time& delay) const {
    return (sc_core::sc_time_stamp() + delay) / period_;
}

sc_time CardTlm::link_time(double bytes) const {
    if (!config_.model_link) return sc_core::SC_ZERO_TIME;
    return sc_time(config_.link.transfer_seconds(bytes), SC_SEC);
}

void CardTlm::regs_transport(tlm::tlm_generic_payload& gp, sc_time& delay) {
    const uint64_t addr = gp.get_address();
    if (gp.get_data_length() != 4 || addr % 4 != 0 || addr >= 4096) {
        gp.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
        return;
    }
    uint32_t v = 0;
    const double now = cycles_at(delay);
    if (gp.is_write()) {
        std::memcpy(&v, gp.get_data_ptr(), 4);
        reg_.at(addr / 4) = v;
        if (addr == regs::kCtrl) {
            if (regs::kCtrlLoadKik.get(v) != 0) {
                kik_valid_ = true;
                timing_.load_kik(now);
            }
            if (regs::kCtrlInstantiate.get(v) != 0) {
                instantiated_ = true;
                seq_next_ =
                    reg_[regs::kSeqStartLo / 4] | (uint64_t{reg_[regs::kSeqStartHi / 4]} << 32);
                pending_.clear();
                timing_.instantiate(now);
            }
            if (regs::kCtrlReseed.get(v) != 0) timing_.reseed(now);
            reg_[addr / 4] = 0;
        }
        delay += period_ * cal_.reg_write_cycles;
    } else {
        switch (addr) {
            case regs::kId: v = 0x57504331; break;
            case regs::kVersion: v = 0x00010001; break;
            case regs::kCaps:
                v = regs::kCapsEngines.put(config_.engines) |
                    regs::kCapsStreamBytesLog2.put(config_.stream_bits == 512   ? 6
                                                   : config_.stream_bits == 256 ? 5
                                                                                : 4) |
                    regs::kCapsRecordFormat.put(1);
                break;
            case regs::kScratch:
            case regs::kSeqStartLo:
            case regs::kSeqStartHi: v = reg_.at(addr / 4); break;
            case regs::kStatus:
                v = regs::kStatusBusy.put(now < timing_.idle_at() ? 1 : 0) |
                    regs::kStatusKikValid.put(kik_valid_ ? 1 : 0) |
                    regs::kStatusInstantiated.put(instantiated_ ? 1 : 0);
                break;
            case regs::kSeqNextLo: v = static_cast<uint32_t>(seq_next_); break;
            case regs::kSeqNextHi: v = static_cast<uint32_t>(seq_next_ >> 32); break;
            default: v = 0; break;
        }
        std::memcpy(gp.get_data_ptr(), &v, 4);
        delay += period_ * cal_.reg_write_cycles;
    }
    gp.set_response_status(tlm::TLM_OK_RESPONSE);
}

void CardTlm::h2c_transport(tlm::tlm_generic_payload& gp, sc_time& delay) {
    const std::size_t len = gp.get_data_length();
    if (!gp.is_write() || len == 0 || len % 16 != 0) {
        gp.set_response_status(tlm::TLM_BURST_ERROR_RESPONSE);
        return;
    }
    if (!kik_valid_ || !instantiated_) {
        gp.set_response_status(tlm::TLM_COMMAND_ERROR_RESPONSE);
        return;
    }
    delay += link_time(static_cast<double>(len));
    const std::size_t n = len / 16;
    const auto out = timing_.submit(cycles_at(delay), n);
    for (std::size_t i = 0; i < n; ++i) {
        Pending p{seq_next_++, {}, out[i]};
        std::memcpy(p.uid.data(), gp.get_data_ptr() + 16 * i, 16);
        pending_.push_back(p);
    }
    gp.set_response_status(tlm::TLM_OK_RESPONSE);
}

void CardTlm::c2h_transport(tlm::tlm_generic_payload& gp, sc_time& delay) {
    const std::size_t len = gp.get_data_length();
    if (!gp.is_read() || len == 0 || len % 128 != 0 || len / 128 > pending_.size()) {
        gp.set_response_status(tlm::TLM_BURST_ERROR_RESPONSE);
        return;
    }
    const std::size_t n = len / 128;
    uint8_t* d = gp.get_data_ptr();
    std::memset(d, 0, len);
    for (std::size_t i = 0; i < n; ++i) {
        const Pending& p = pending_.front();
        for (int b = 0; b < 8; ++b)
            d[128 * i + static_cast<std::size_t>(b)] = static_cast<uint8_t>(p.seq >> (56 - 8 * b));
        std::memcpy(d + 128 * i + 8, p.uid.data(), 16);
        if (i + 1 == n) {
            // Annotate the wait for the last record (no wait() here), then its transfer.
            const double now = cycles_at(delay);
            if (p.out_cycle > now) delay += period_ * (p.out_cycle - now);
        }
        pending_.pop_front();
    }
    delay += link_time(static_cast<double>(len));
    gp.set_response_status(tlm::TLM_OK_RESPONSE);
}

}  // namespace waferprov::sim
