// Helpers shared by the renderers (not part of the public API).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#include "waferprov/bytes.hpp"

namespace waferprov::host::report {

std::string iso_time(int64_t unix_s);       // "2025-03-01T12:00:00Z", "-" for 0
std::string printable(std::string_view s);  // control characters replaced by '?'
std::string wafer_label(int wafer);         // "03"

// STDF V4 records, little-endian (stdf.cpp, final.cpp).
inline constexpr int16_t kStdfMissingCoord = std::numeric_limits<int16_t>::min();  // X/Y_COORD
inline constexpr uint32_t kStdfMissingU4 = 0xFFFFFFFFu;

// A time field (U*4, seconds since 1970): 0 unknown, capped below the missing value.
inline uint32_t stdf_time(int64_t unix_s) {
    if (unix_s <= 0) return 0;
    return unix_s > static_cast<int64_t>(kStdfMissingU4 - 1) ? kStdfMissingU4 - 1
                                                             : static_cast<uint32_t>(unix_s);
}

// One record body; emit() adds the 4-byte header.
class Rec {
public:
    Rec& u1(uint8_t v) {
        b_.push_back(v);
        return *this;
    }
    Rec& u2(uint16_t v) {
        b_.push_back(static_cast<uint8_t>(v));
        b_.push_back(static_cast<uint8_t>(v >> 8));
        return *this;
    }
    Rec& u4(uint32_t v) {
        for (int i = 0; i < 4; ++i) b_.push_back(static_cast<uint8_t>(v >> (8 * i)));
        return *this;
    }
    Rec& i2(int16_t v) { return u2(static_cast<uint16_t>(v)); }
    Rec& r4(float v) {
        uint32_t bits = 0;
        static_assert(sizeof bits == sizeof v);
        std::memcpy(&bits, &v, sizeof bits);
        return u4(bits);
    }
    Rec& c1(char c) { return u1(static_cast<uint8_t>(c)); }
    // C*n: a length byte, then at most 255 bytes of text.
    Rec& cn(std::string_view s) {
        const size_t n = std::min<size_t>(s.size(), 255);
        u1(static_cast<uint8_t>(n));
        b_.insert(b_.end(), s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n));
        return *this;
    }
    const Bytes& body() const { return b_; }

private:
    Bytes b_;
};

inline void emit(Bytes& out, uint8_t typ, uint8_t sub, const Rec& r) {
    // Every body here is far below 65535 bytes (strings are capped at 255).
    const auto len = static_cast<uint16_t>(r.body().size());
    out.push_back(static_cast<uint8_t>(len));
    out.push_back(static_cast<uint8_t>(len >> 8));
    out.push_back(typ);
    out.push_back(sub);
    out.insert(out.end(), r.body().begin(), r.body().end());
}

}  // namespace waferprov::host::report
