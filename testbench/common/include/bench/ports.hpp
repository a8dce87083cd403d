// Moving byte strings on and off Verilator ports, for every bench. The RTL puts byte 0 of a
// value in the most significant bits of its port (rtl/symmetric/aes_pkg.sv, rtl/p256), so a
// port of N bytes holds byte i at bit (N-1-i)*8; Verilator's wide words hold bits [32w+31:32w]
// in word w.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include <verilated.h>

namespace bench {

// Writes `b` into a wide (VlWide) port of at least b.size()*8 bits; the rest is cleared.
template <std::size_t W>
void put(VlWide<W>& port, std::span<const uint8_t> b) {
    for (std::size_t w = 0; w < W; ++w) port.at(w) = 0;
    const std::size_t n = b.size();
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t pos = (n - 1 - i) * 8;
        port.at(pos / 32) |= static_cast<EData>(b[i]) << (pos % 32);
    }
}

// Writes `b` (at most 8 bytes) into a scalar port.
template <class T>
requires std::is_integral_v<T>
void put(T& port, std::span<const uint8_t> b) {
    uint64_t v = 0;
    for (uint8_t x : b) v = (v << 8) | x;
    port = static_cast<T>(v);
}

// Reads the low `n` bytes of a wide port.
template <std::size_t W>
std::vector<uint8_t> get(const VlWide<W>& port, std::size_t n) {
    std::vector<uint8_t> b(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t pos = (n - 1 - i) * 8;
        b[i] = static_cast<uint8_t>(port.at(pos / 32) >> (pos % 32));
    }
    return b;
}

// Reads the low N bytes of a wide port into a fixed-size array.
template <std::size_t N, std::size_t W>
std::array<uint8_t, N> get_array(const VlWide<W>& port) {
    static_assert(N <= W * 4, "port narrower than the value");
    std::array<uint8_t, N> b{};
    const std::vector<uint8_t> v = get(port, N);
    for (std::size_t i = 0; i < N; ++i) b[i] = v[i];
    return b;
}

// True when every word of a wide signal is zero (zeroize checks).
template <std::size_t W>
bool all_zero(const VlWide<W>& v) {
    for (std::size_t w = 0; w < W; ++w)
        if (v.at(w) != 0) return false;
    return true;
}

}  // namespace bench
