// Byte strings, hex and deterministic random vectors for the symmetric benches; the port
// helpers come from bench/ports.hpp.
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

#include "bench/ports.hpp"

namespace symbench {

using Bytes = std::vector<uint8_t>;

// The port helpers are the shared ones (testbench/common/include/bench/ports.hpp).
using bench::all_zero;
using bench::get;
using bench::put;

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
