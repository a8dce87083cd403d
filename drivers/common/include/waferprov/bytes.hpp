// Byte containers and hex codecs. SecureBytes wipes itself (OPENSSL_cleanse) when destroyed:
// use it for anything secret (KIK, KEK, private scalars, DRBG state).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "waferprov/result.hpp"

namespace waferprov {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;

// Wipes memory in a way the compiler cannot elide.
void secure_wipe(void* p, size_t n) noexcept;

// A fixed-size secret buffer that wipes itself on destruction and on move-from.
template <size_t N>
struct SecretArray {
    std::array<uint8_t, N> bytes{};
    SecretArray() = default;
    SecretArray(const SecretArray&) = default;
    SecretArray& operator=(const SecretArray&) = default;
    ~SecretArray() { secure_wipe(bytes.data(), N); }
    uint8_t* data() { return bytes.data(); }
    const uint8_t* data() const { return bytes.data(); }
    static constexpr size_t size() { return N; }
    ByteSpan span() const { return ByteSpan(bytes.data(), N); }
};

// A variable-length secret buffer that wipes itself on destruction.
class SecureBytes {
public:
    SecureBytes() = default;
    explicit SecureBytes(size_t n) : v_(n) {}
    explicit SecureBytes(ByteSpan s) : v_(s.begin(), s.end()) {}
    SecureBytes(const SecureBytes&) = default;
    SecureBytes& operator=(const SecureBytes& o) {
        if (this != &o) {
            wipe();
            v_ = o.v_;
        }
        return *this;
    }
    SecureBytes(SecureBytes&& o) noexcept : v_(std::move(o.v_)) { o.v_.clear(); }
    SecureBytes& operator=(SecureBytes&& o) noexcept {
        if (this != &o) {
            wipe();
            v_ = std::move(o.v_);
            o.v_.clear();
        }
        return *this;
    }
    ~SecureBytes() { wipe(); }

    uint8_t* data() { return v_.data(); }
    const uint8_t* data() const { return v_.data(); }
    size_t size() const { return v_.size(); }
    bool empty() const { return v_.empty(); }
    void resize(size_t n) { v_.resize(n); }
    ByteSpan span() const { return ByteSpan(v_.data(), v_.size()); }
    uint8_t& operator[](size_t i) { return v_[i]; }
    const uint8_t& operator[](size_t i) const { return v_[i]; }

private:
    void wipe() noexcept {
        if (!v_.empty()) secure_wipe(v_.data(), v_.size());
    }
    std::vector<uint8_t> v_;
};

// Lower-case hex of `data`.
std::string to_hex(ByteSpan data);
// Appends the lower-case hex of `data` to `out` (no temporary string; for hot paths).
void append_hex(std::string& out, ByteSpan data);
template <size_t N>
std::string to_hex(const std::array<uint8_t, N>& a) {
    return to_hex(ByteSpan(a));
}

// Parses hex (either case, even length, no separators). `what` names the field in errors.
Result<Bytes> from_hex(std::string_view hex, std::string_view what = "hex string");

// Parses hex of exactly N bytes.
template <size_t N>
Result<std::array<uint8_t, N>> from_hex_fixed(std::string_view hex, std::string_view what) {
    auto b = from_hex(hex, what);
    if (!b.ok()) return b.error();
    if (b->size() != N)
        return make_error(ErrorCode::kInvalidArgument, std::string(what) + ": expected " +
                                                           std::to_string(N) + " bytes, got " +
                                                           std::to_string(b->size()));
    std::array<uint8_t, N> out{};
    std::copy(b->begin(), b->end(), out.begin());
    return out;
}

// Constant-time equality of two equal-length buffers (false if lengths differ).
bool ct_equal(ByteSpan a, ByteSpan b) noexcept;

// Only printable ASCII, 0x20..0x7e (true for ""): what the ledger, the reports and the job file
// accept in ids, lots and bins.
bool printable_ascii(std::string_view s) noexcept;

void store_be32(uint8_t* p, uint32_t v) noexcept;
void store_be64(uint8_t* p, uint64_t v) noexcept;
uint64_t load_be64(const uint8_t* p) noexcept;

}  // namespace waferprov
