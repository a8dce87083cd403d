// Clocked harness around a Verilated model, in the manner of OpenTitan's VerilatorSimCtrl and
// ZipCPU's TESTB<>: one VerilatedContext owned by a unique_ptr, tick() toggles clk_i through a
// full cycle, run_until() bounds every wait so that a hung handshake fails a test instead of
// hanging CTest. Waves are off unless the bench asks for them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include <verilated.h>

namespace bench {

template <class Model>
class Harness {
public:
    Harness() : ctx_(std::make_unique<VerilatedContext>()) {
        ctx_->debug(0);
        ctx_->randReset(0);
        model_ = std::make_unique<Model>(ctx_.get(), "top");
        model_->clk_i = 0;
        model_->rst_ni = 1;
        model_->eval();
    }
    ~Harness() {
        if (model_) model_->final();
    }
    Harness(const Harness&) = delete;
    Harness& operator=(const Harness&) = delete;

    Model* operator->() { return model_.get(); }
    Model& dut() { return *model_; }

    // One full clock cycle: inputs set before tick() are sampled on the rising edge.
    void tick() {
        model_->clk_i = 1;
        model_->eval();
        ctx_->timeInc(1);
        model_->clk_i = 0;
        model_->eval();
        ctx_->timeInc(1);
        ++cycles_;
    }

    // Active-low synchronous reset held for `cycles` cycles.
    void reset(unsigned cycles = 2) {
        model_->rst_ni = 0;
        for (unsigned i = 0; i < cycles; ++i) tick();
        model_->rst_ni = 1;
        model_->eval();
    }

    // Ticks until pred() holds (checked before each tick) and returns the cycles spent.
    // Throws if timeout_cycles pass first, so a hung handshake fails the test.
    uint64_t run_until(const std::function<bool()>& pred, uint64_t timeout_cycles) {
        uint64_t spent = 0;
        while (!pred()) {
            if (spent >= timeout_cycles)
                throw std::runtime_error("run_until: timed out after " +
                                         std::to_string(timeout_cycles) + " cycles");
            tick();
            ++spent;
        }
        return spent;
    }

    uint64_t cycles() const { return cycles_; }
    VerilatedContext* context() { return ctx_.get(); }

private:
    std::unique_ptr<VerilatedContext> ctx_;
    std::unique_ptr<Model> model_;
    uint64_t cycles_ = 0;
};

}  // namespace bench
