// Driver for the Verilated P-256 key generator (rtl/p256/p256_keygen.sv) on the shared harness:
// pushes a scalar through the valid/ready input, waits for the result and reports it with the
// number of cycles from the accepting clock edge to q_valid_o.
#pragma once

#include <cstdint>
#include <random>

#include "Vp256_keygen.h"
#include "bench/harness.hpp"
#include "bench/ports.hpp"
#include "p256_ref.hpp"

namespace p256bench {

struct KeygenResult {
    bool err = false;
    Bytes32 x{};
    Bytes32 y{};
    uint64_t cycles = 0;  // accepting edge of d_i to the first cycle with q_valid_o
};

class Dut {
public:
    static constexpr uint64_t kTimeout = 1'000'000;

    Dut() {
        h_->zeroize_i = 0;
        h_->d_valid_i = 0;
        h_->q_ready_i = 0;
        h_->scan_seed_i = 0;
        h_.reset();
    }

    bench::Harness<Vp256_keygen>& harness() { return h_; }
    Vp256_keygen* operator->() { return &h_.dut(); }

    // Hands d to the engine with a scan seed (by default a fresh pseudo-random one, as the
    // card's DRBG would supply); returns once the accepting clock edge has passed.
    void push(const Bytes32& d) { push(d, static_cast<uint16_t>(seeds_())); }
    void push(const Bytes32& d, uint16_t seed) {
        h_.run_until([&] { return h_->d_ready_o != 0; }, kTimeout);
        bench::put(h_->d_i, d);
        h_->scan_seed_i = seed;
        h_->d_valid_i = 1;
        h_.tick();
        h_->d_valid_i = 0;
        h_->scan_seed_i = 0;
        bench::put(h_->d_i, Bytes32{});
    }

    // Waits for the result (counting cycles), holds q_ready_i low for `stall` cycles, then
    // accepts it.
    KeygenResult pop(unsigned stall = 0) {
        KeygenResult r;
        r.cycles = h_.run_until([&] { return h_->q_valid_o != 0; }, kTimeout);
        for (unsigned i = 0; i < stall; ++i) h_.tick();
        r.err = h_->q_err_o != 0;
        r.x = bench::get_array<32>(h_->q_x_o);
        r.y = bench::get_array<32>(h_->q_y_o);
        h_->q_ready_i = 1;
        h_.tick();
        h_->q_ready_i = 0;
        h_.dut().eval();
        return r;
    }

    KeygenResult keygen(const Bytes32& d, unsigned stall = 0) {
        push(d);
        return pop(stall);
    }

private:
    bench::Harness<Vp256_keygen> h_;
    std::mt19937 seeds_{0x5eed};
};

}  // namespace p256bench
