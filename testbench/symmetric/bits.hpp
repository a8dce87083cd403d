// Moving byte strings on and off Verilator ports. Every symmetric block puts byte 0 of a value
// in the most significant bits of its port (see rtl/symmetric/aes_pkg.sv), so a port of N bytes
// holds byte i at bit (N-1-i)*8.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <verilated.h>

namespace symbench {

using Bytes = std::vector<uint8_t>;

// Writes `b` into a wide (VlWide) port of exactly b.size()*8 bits.
template <std::size_t W>
void put(VlWide<W>& port, std::span<const uint8_t> b) {
    for (std::size_t w = 0; w < W; ++w) port.at(w) = 0;
    const std::size_t n = b.size();
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t pos = (n - 1 - i) * 8;
        port.at(pos / 32) |= static_cast<EData>(b[i]) << (pos % 32);
    }
}

// Writes `b` into a scalar (<= 64-bit) port.
template <class T>
requires std::is_integral_v<T>
void put(T& port, std::span<const uint8_t> b) {
    uint64_t v = 0;
    for (uint8_t x : b) v = (v << 8) | x;
    port = static_cast<T>(v);
}

// Reads `n` bytes from a wide port.
template <std::size_t W>
Bytes get(const VlWide<W>& port, std::size_t n) {
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t pos = (n - 1 - i) * 8;
        b[i] = static_cast<uint8_t>(port.at(pos / 32) >> (pos % 32));
    }
    return b;
}

// True when every word of a wide signal is zero (zeroize checks).
template <std::size_t W>
bool all_zero(const VlWide<W>& v) {
    for (std::size_t w = 0; w < W; ++w)
        if (v.at(w) != 0) return false;
    return true;
}

Bytes from_hex(const std::string& hex);
std::string to_hex(std::span<const uint8_t> b);

inline Bytes from_hex(const std::string& hex) {
    Bytes out;
    auto nib = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    int hi = -1;
    for (char c : hex) {
        const int v = nib(c);
        if (v < 0) continue;
        if (hi < 0) {
            hi = v;
        } else {
            out.push_back(static_cast<uint8_t>(hi * 16 + v));
            hi = -1;
        }
    }
    return out;
}

inline std::string to_hex(std::span<const uint8_t> b) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s;
    s.reserve(b.size() * 2);
    for (uint8_t x : b) {
        s.push_back(kHex[x >> 4]);
        s.push_back(kHex[x & 15]);
    }
    return s;
}

// Number of random vectors a test runs: `dflt` unless WAFERPROV_SYM_VECTORS overrides it (the
// CTest `soak` entries set it to a large value).
inline std::size_t vector_count(std::size_t dflt) {
    if (const char* e = std::getenv("WAFERPROV_SYM_VECTORS"); e != nullptr && *e != '\0')
        return static_cast<std::size_t>(std::strtoull(e, nullptr, 10));
    return dflt;
}

// Deterministic random bytes; WAFERPROV_SYM_SEED picks another seed (printed, for replay).
class Rng {
public:
    Rng() {
        uint64_t seed = 0x5750494431ULL;  // "WPID1"
        if (const char* e = std::getenv("WAFERPROV_SYM_SEED"); e != nullptr && *e != '\0')
            seed = std::strtoull(e, nullptr, 0);
        eng_.seed(seed);
    }
    Bytes bytes(std::size_t n) {
        Bytes b(n);
        for (auto& x : b) x = static_cast<uint8_t>(eng_());
        return b;
    }
    uint64_t next() { return eng_(); }

private:
    std::mt19937_64 eng_;
};

}  // namespace symbench
