#include "waferprov/verilator/verilator_transport.hpp"

#include <array>
#include <chrono>
#include <exception>
#include <functional>

#include "Vwp_card_vl_n1_w128.h"
#include "Vwp_card_vl_n2_w128.h"
#include "Vwp_card_vl_n4_w128.h"
#include "waferprov/sim/card_harness.hpp"
#include "waferprov/software/device_key.hpp"

namespace waferprov::verilator {
namespace {

using Clock = std::chrono::steady_clock;

// Cycles between two looks at the wall clock while stepping (a few hundred microseconds).
constexpr uint64_t kClockCheckCycles = 256;

// The harness reports a broken bus or stream (no AXI response, tkeep holes, tlast mid-record)
// by throwing; the transport turns that into kDeviceFault at its boundary.
template <class F>
auto guarded(const std::string& what, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const std::exception& e) {
        return make_error(ErrorCode::kDeviceFault, what + ": " + e.what());
    }
}

class CyclesSource {
public:
    virtual ~CyclesSource() = default;
    virtual uint64_t cycles() const = 0;
};

template <class Model>
class VerilatorTransport final : public card::Transport, public CyclesSource {
public:
    VerilatorTransport(std::span<const uint8_t> dk, std::string config, bool trace,
                       const std::string& vcd)
        : h_(dk, trace, vcd), config_(std::move(config)) {
        h_.reset();
    }

    Result<uint32_t> read32(uint32_t offset) override {
        return guarded("verilator " + config_ + " read32",
                       [&]() -> Result<uint32_t> { return h_.read32(offset); });
    }
    Status write32(uint32_t offset, uint32_t value) override {
        return guarded("verilator " + config_ + " write32", [&]() -> Status {
            h_.write32(offset, value);
            return ok_status();
        });
    }

    Status write_requests(std::span<const uint8_t> bytes,
                          std::chrono::milliseconds timeout) override {
        if (bytes.empty() || bytes.size() % 16 != 0)
            return make_error(ErrorCode::kInvalidArgument,
                              "verilator " + config_ +
                                  ": a request packet is a whole number of "
                                  "16-byte UIDs, got " +
                                  std::to_string(bytes.size()) + " bytes");
        uids_.resize(bytes.size() / 16);
        for (size_t i = 0; i < uids_.size(); ++i)
            std::copy_n(bytes.begin() + static_cast<long>(16 * i), 16, uids_[i].begin());
        return guarded("verilator " + config_ + " request stream", [&]() -> Status {
            h_.push_uids(uids_, uids_.size());
            // Returns when the card has taken the last beat, as an H2C DMA completes.
            return step_until([&] { return !h_.requests_pending(); }, timeout,
                              "the card did not take the request packet");
        });
    }

    Status read_records(std::span<uint8_t> out, std::chrono::milliseconds timeout) override {
        if (out.empty() || out.size() % 128 != 0)
            return make_error(ErrorCode::kInvalidArgument,
                              "verilator " + config_ +
                                  ": records are read whole (128 bytes), "
                                  "asked for " +
                                  std::to_string(out.size()) + " bytes");
        const size_t n = out.size() / 128;
        return guarded("verilator " + config_ + " record stream", [&]() -> Status {
            auto& q = h_.records();
            bool irq = false;
            WP_RETURN_IF_ERROR(step_until(
                [&] {
                    if (q.size() >= n) return true;
                    irq = h_.dut().irq_o != 0;
                    return irq;
                },
                timeout, "no records"));
            if (q.size() < n && irq)
                return make_error(
                    ErrorCode::kDeviceFault,
                    "verilator " + config_ + ": the card raised its interrupt after " +
                        std::to_string(q.size()) + " of " + std::to_string(n) + " records");
            for (size_t i = 0; i < n; ++i) {
                const auto& r = q.front();
                std::copy(r.bytes.begin(), r.bytes.end(), out.begin() + static_cast<long>(128 * i));
                const bool last = r.last;
                q.pop_front();
                if (last && i + 1 < n)
                    return make_error(
                        ErrorCode::kDeviceFault,
                        "verilator " + config_ + ": the transfer ended (tlast) after " +
                            std::to_string(i + 1) + " of " + std::to_string(n) + " records");
            }
            return ok_status();
        });
    }

    Status wait_event(std::chrono::milliseconds timeout) override {
        return guarded("verilator " + config_ + " interrupt", [&]() -> Status {
            return step_until([&] { return h_.dut().irq_o != 0; }, timeout, "no interrupt");
        });
    }

    std::string describe() const override { return "verilator " + config_; }
    uint64_t cycles() const override { return h_.cycles(); }

private:
    // Steps the model until pred() holds or the wall-clock deadline passes (kTimeout).
    Status step_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                      const char* what) {
        const auto deadline = Clock::now() + timeout;
        for (uint64_t n = 0; !pred(); ++n) {
            if (n % kClockCheckCycles == 0 && Clock::now() >= deadline)
                return make_error(ErrorCode::kTimeout,
                                  "verilator " + config_ + ": " + what + " within " +
                                      std::to_string(timeout.count()) + " ms (cycle " +
                                      std::to_string(h_.cycles()) + ")");
            h_.step();
        }
        return ok_status();
    }

    sim::CardHarness<Model> h_;
    std::string config_;
    std::vector<std::array<uint8_t, 16>> uids_;
};

template <class Model>
std::unique_ptr<card::Transport> make(std::span<const uint8_t> dk, const char* config,
                                      const VerilatorOptions& o) {
    return std::make_unique<VerilatorTransport<Model>>(dk, config, o.trace_file.has_value(),
                                                       o.trace_file.value_or("card.vcd"));
}

}  // namespace

std::vector<uint32_t> verilator_engine_counts() { return {1, 2, 4}; }
uint32_t default_verilator_engines() { return 4; }

Result<std::unique_ptr<card::Transport>> make_verilator_transport(const VerilatorOptions& o) {
    std::vector<uint8_t> dk = o.device_key;
    if (dk.empty()) {
        auto k = software::test_device_key();
        if (!k.ok())
            return k.error().with_context(
                "verilator backend: the simulated card's device key is the development test key");
        dk.assign(k->bytes.begin(), k->bytes.end());
    }
    if (dk.size() != 32)
        return make_error(
            ErrorCode::kInvalidArgument,
            "verilator backend: device key must be 32 bytes, got " + std::to_string(dk.size()));
    try {
        switch (o.engines) {
            case 1: return make<Vwp_card_vl_n1_w128>(dk, "n1_w128", o);
            case 2: return make<Vwp_card_vl_n2_w128>(dk, "n2_w128", o);
            case 4: return make<Vwp_card_vl_n4_w128>(dk, "n4_w128", o);
            default: break;
        }
    } catch (const std::exception& e) {
        return make_error(
            ErrorCode::kDeviceFault,
            std::string("verilator backend: the card model failed to start: ") + e.what());
    }
    std::string names;
    for (uint32_t n : verilator_engine_counts())
        names += (names.empty() ? "" : ", ") + std::to_string(n);
    return make_error(ErrorCode::kInvalidArgument,
                      "verilator backend: engines=" + std::to_string(o.engines) +
                          " was not built (this build has " + names + ")");
}

Result<uint64_t> simulated_cycles(const card::Transport& transport) {
    const auto* c = dynamic_cast<const CyclesSource*>(&transport);
    if (c == nullptr)
        return make_error(ErrorCode::kInvalidArgument,
                          transport.describe() + " is not a Verilator transport");
    return c->cycles();
}

}  // namespace waferprov::verilator
