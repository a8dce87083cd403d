// A clocked harness around a Verilated wp_card (rtl/card/wp_card.sv): AXI4-Lite read32/write32,
// the request stream (UIDs in, tkeep/tlast) and the record stream (128-byte records out), clock
// stepping and bounded waits. Every bus and stream is serviced on every cycle, so register
// accesses proceed while the streams move, with optional random gaps on the request stream and
// random back-pressure on the record stream.
//
// Built once per card configuration as a static library wp_card_vl_n<N>_w<DW> (model class
// Vwp_card_vl_n<N>_w<DW>, see sim/card_rtl/CMakeLists.txt); the card benches, the Verilator
// transport and the emulated device drive that same model with this class.
//
// Waves: `+trace` on the command line (or WAFERPROV_TRACE=<file.vcd>) writes a VCD of the
// whole run to card.vcd (or the given file); off by default.
//
// Not thread-safe: one harness per thread.
#pragma once

#include <array>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <verilated.h>
#include <verilated_vcd_c.h>

namespace waferprov::sim {

using Record = std::array<uint8_t, 128>;

// One request beat as the stream carries it: data bytes in lane order (lane i = byte i),
// tkeep bit i for lane i.
struct Beat {
    std::vector<uint8_t> data;
    uint64_t keep = 0;
    bool last = false;
};

// A record taken off the stream, with the tlast flag of its final beat and the cycle in which
// its final beat left.
struct RecordOut {
    Record bytes{};
    bool last = false;
    uint64_t cycle = 0;
};

namespace detail {

// Byte lane i of a stream port (bits 8i+7..8i).
template <std::size_t W>
inline void set_lane(VlWide<W>& port, std::size_t i, uint8_t v) {
    auto& w = port.at(i / 4);
    const unsigned sh = static_cast<unsigned>(i % 4) * 8;
    w = (w & ~(EData{0xff} << sh)) | (static_cast<EData>(v) << sh);
}
template <std::size_t W>
inline uint8_t get_lane(const VlWide<W>& port, std::size_t i) {
    return static_cast<uint8_t>(port.at(i / 4) >> ((i % 4) * 8));
}
template <class T>
requires std::is_integral_v<T>
inline void set_lane(T& port, std::size_t i, uint8_t v) {
    const unsigned sh = static_cast<unsigned>(i) * 8;
    port = static_cast<T>((port & ~(T{0xff} << sh)) | (static_cast<T>(v) << sh));
}
template <class T>
requires std::is_integral_v<T>
inline uint8_t get_lane(const T& port, std::size_t i) {
    return static_cast<uint8_t>(port >> (i * 8));
}

// A byte string into a wide port with byte 0 in the most significant bits (the card's key
// port convention, as every symmetric block).
template <std::size_t W>
inline void put_be(VlWide<W>& port, std::span<const uint8_t> b) {
    for (std::size_t w = 0; w < W; ++w) port.at(w) = 0;
    const std::size_t n = b.size();
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t pos = (n - 1 - i) * 8;
        port.at(pos / 32) |= static_cast<EData>(b[i]) << (pos % 32);
    }
}

// Waves on request: WAFERPROV_TRACE=<file.vcd>, or `+trace` among `args` (then card.vcd).
inline bool trace_requested(const std::vector<std::string>& args, std::string& path) {
    if (const char* e = std::getenv("WAFERPROV_TRACE"); e != nullptr && *e != '\0') {
        path = e;
        return true;
    }
    path = "card.vcd";
    for (const std::string& a : args)
        if (a == "+trace") return true;
    return false;
}

}  // namespace detail

template <class Model>
class CardHarness {
public:
    static constexpr std::size_t kDataBits = sizeof(Model::req_tdata_i) * 8;

    // `dk`: the device key on the card's key port (32 bytes). `trace`: write waves.
    CardHarness(std::span<const uint8_t> dk, bool trace = false,
                const std::string& vcd = "card.vcd")
        : ctx_(std::make_unique<VerilatedContext>()) {
        ctx_->debug(0);
        ctx_->randReset(0);
        if (trace) ctx_->traceEverOn(true);
        model_ = std::make_unique<Model>(ctx_.get(), "card");
        if (trace) {
            vcd_ = std::make_unique<VerilatedVcdC>();
            model_->trace(vcd_.get(), 99);
            vcd_->open(vcd.c_str());
        }
        model_->clk_i = 0;
        model_->rst_ni = 1;
        detail::put_be(model_->dk_i, dk);
        idle_inputs();
        model_->eval();
    }
    ~CardHarness() {
        if (model_) model_->final();
        if (vcd_) vcd_->close();
    }
    CardHarness(const CardHarness&) = delete;
    CardHarness& operator=(const CardHarness&) = delete;

    Model& dut() { return *model_; }
    static constexpr std::size_t beat_bytes() { return kBeatBytes; }
    uint64_t cycles() const { return cycles_; }

    // --- stream knobs -------------------------------------------------------------------
    // Probability (0..1) that no request beat is offered in a cycle / that the record stream
    // is not ready in a cycle. Random with a fixed seed (reproducible).
    void set_request_gaps(double p) { gap_p_ = p; }
    void set_record_stalls(double p) { stall_p_ = p; }
    void seed(uint64_t s) { rng_.seed(s); }

    // Active-low synchronous reset.
    void reset(unsigned cycles = 4) {
        model_->rst_ni = 0;
        for (unsigned i = 0; i < cycles; ++i) step();
        model_->rst_ni = 1;
        model_->eval();
    }

    // One cycle with every bus and stream serviced.
    void step() {
        // Request stream: a beat, once offered, stays until taken (AXI4-Stream).
        if (!offering_ && !beats_.empty() && !chance(gap_p_)) offering_ = true;
        model_->req_tvalid_i = offering_ ? 1 : 0;
        if (offering_) {
            const Beat& b = beats_.front();
            for (std::size_t i = 0; i < kBeatBytes; ++i)
                detail::set_lane(model_->req_tdata_i, i, i < b.data.size() ? b.data[i] : 0);
            model_->req_tkeep_i =
                static_cast<std::remove_reference_t<decltype(model_->req_tkeep_i)>>(b.keep);
            model_->req_tlast_i = b.last ? 1 : 0;
        }
        model_->rec_tready_i = chance(stall_p_) ? 0 : 1;
        model_->eval();

        const bool req_fire = model_->req_tvalid_i && model_->req_tready_o;
        const bool rec_fire = model_->rec_tvalid_o && model_->rec_tready_i;
        aw_fire_ = model_->s_awvalid_i && model_->s_awready_o;
        b_fire_ = model_->s_bvalid_o && model_->s_bready_i;
        ar_fire_ = model_->s_arvalid_i && model_->s_arready_o;
        r_fire_ = model_->s_rvalid_o && model_->s_rready_i;
        if (r_fire_) rdata_ = model_->s_rdata_o;
        if (rec_fire) {
            if (model_->rec_tkeep_o !=
                static_cast<std::remove_reference_t<decltype(model_->rec_tkeep_o)>>(~0ULL))
                throw std::runtime_error("record beat with tkeep not all ones");
            for (std::size_t i = 0; i < kBeatBytes; ++i)
                cur_.bytes[cur_fill_ + i] = detail::get_lane(model_->rec_tdata_o, i);
            cur_fill_ += kBeatBytes;
            const bool last = model_->rec_tlast_o != 0;
            if (cur_fill_ == 128) {
                cur_.last = last;
                cur_.cycle = cycles_;
                records_.push_back(cur_);
                cur_fill_ = 0;
            } else if (last) {
                throw std::runtime_error("tlast in the middle of a record");
            }
        }
        tick();
        if (req_fire) {
            beats_.pop_front();
            offering_ = false;
            accepted_cycles_.push_back(cycles_ - 1);
        }
    }

    // Steps until pred() holds (checked before each step); throws after timeout cycles.
    uint64_t run_until(const std::function<bool()>& pred, uint64_t timeout) {
        uint64_t n = 0;
        while (!pred()) {
            if (n++ >= timeout)
                throw std::runtime_error("run_until: timed out after " + std::to_string(timeout) +
                                         " cycles");
            step();
        }
        return n;
    }
    void run(uint64_t n) {
        for (uint64_t i = 0; i < n; ++i) step();
    }

    // --- AXI4-Lite ----------------------------------------------------------------------
    void write32(uint32_t addr, uint32_t data, uint32_t strb = 0xf) {
        model_->s_awvalid_i = 1;
        model_->s_wvalid_i = 1;
        model_->s_awaddr_i = static_cast<uint16_t>(addr);
        model_->s_wdata_i = data;
        model_->s_wstrb_i = static_cast<uint8_t>(strb);
        model_->s_bready_i = 1;
        for (uint64_t n = 0;; ++n) {
            if (n > 1000) throw std::runtime_error("write32: no response");
            step();
            if (aw_fire_) {
                model_->s_awvalid_i = 0;
                model_->s_wvalid_i = 0;
            }
            if (b_fire_) break;
        }
        model_->s_bready_i = 0;
    }
    uint32_t read32(uint32_t addr) {
        model_->s_arvalid_i = 1;
        model_->s_araddr_i = static_cast<uint16_t>(addr);
        model_->s_rready_i = 1;
        for (uint64_t n = 0;; ++n) {
            if (n > 1000) throw std::runtime_error("read32: no response");
            step();
            if (ar_fire_) model_->s_arvalid_i = 0;
            if (r_fire_) break;
        }
        model_->s_rready_i = 0;
        return rdata_;
    }
    // A byte string into consecutive words, byte 4k in bits 31:24 of word k (the map's rule).
    void write_bytes(uint32_t addr, std::span<const uint8_t> b) {
        for (std::size_t k = 0; k * 4 < b.size(); ++k) {
            uint32_t w = 0;
            for (std::size_t j = 0; j < 4; ++j) {
                const std::size_t i = k * 4 + j;
                w = (w << 8) | (i < b.size() ? b[i] : 0);
            }
            write32(addr + static_cast<uint32_t>(4 * k), w);
        }
    }

    // --- streams ------------------------------------------------------------------------
    // UIDs as request packets of `per_packet` UIDs each (tlast on the last beat of a packet).
    void push_uids(std::span<const std::array<uint8_t, 16>> uids, std::size_t per_packet) {
        std::size_t i = 0;
        while (i < uids.size()) {
            const std::size_t n = std::min(per_packet, uids.size() - i);
            std::size_t k = 0;
            while (k < n) {
                Beat b;
                b.data.assign(kBeatBytes, 0);
                std::size_t in_beat = 0;
                while (in_beat < kBeatBytes / 16 && k < n) {
                    std::copy(uids[i + k].begin(), uids[i + k].end(),
                              b.data.begin() + static_cast<long>(in_beat * 16));
                    ++in_beat;
                    ++k;
                }
                b.keep = in_beat * 16 >= 64 ? ~0ULL : ((1ULL << (in_beat * 16)) - 1);
                b.last = (k == n);
                beats_.push_back(std::move(b));
            }
            i += n;
        }
    }
    void push_beat(Beat b) {
        b.data.resize(kBeatBytes, 0);
        beats_.push_back(std::move(b));
    }
    bool requests_pending() const { return !beats_.empty(); }
    std::deque<RecordOut>& records() { return records_; }
    // Cycle (of the accepting edge) of every request beat taken, in order.
    std::deque<uint64_t>& accepted_cycles() { return accepted_cycles_; }

private:
    static constexpr std::size_t kBeatBytes = kDataBits / 8;

    void idle_inputs() {
        model_->s_awvalid_i = 0;
        model_->s_wvalid_i = 0;
        model_->s_bready_i = 0;
        model_->s_arvalid_i = 0;
        model_->s_rready_i = 0;
        model_->req_tvalid_i = 0;
        model_->req_tlast_i = 0;
        model_->req_tkeep_i = 0;
        model_->rec_tready_i = 1;
    }
    bool chance(double p) {
        if (p <= 0.0) return false;
        return std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < p;
    }
    void tick() {
        model_->clk_i = 1;
        model_->eval();
        if (vcd_) vcd_->dump(ctx_->time());
        ctx_->timeInc(1);
        model_->clk_i = 0;
        model_->eval();
        if (vcd_) vcd_->dump(ctx_->time());
        ctx_->timeInc(1);
        ++cycles_;
    }

    std::unique_ptr<VerilatedContext> ctx_;
    std::unique_ptr<Model> model_;
    std::unique_ptr<VerilatedVcdC> vcd_;
    uint64_t cycles_ = 0;
    std::mt19937_64 rng_{0x57504331};
    double gap_p_ = 0.0;
    double stall_p_ = 0.0;
    std::deque<Beat> beats_;
    bool offering_ = false;
    std::deque<RecordOut> records_;
    std::deque<uint64_t> accepted_cycles_;
    RecordOut cur_{};
    std::size_t cur_fill_ = 0;
    bool aw_fire_ = false, b_fire_ = false, ar_fire_ = false, r_fire_ = false;
    uint32_t rdata_ = 0;
};

}  // namespace waferprov::sim
