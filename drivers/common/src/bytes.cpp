#include "waferprov/bytes.hpp"

#if defined(_WIN32)
// The Windows build of the tester library (ate/windows) links no OpenSSL: the system's
// SecureZeroMemory wipes, and ct_equal is a plain constant-time loop.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#else
#include <openssl/crypto.h>
#endif

namespace waferprov {

const char* to_string(ErrorCode code) noexcept {
    switch (code) {
        case ErrorCode::kInvalidArgument: return "invalid-argument";
        case ErrorCode::kInvalidScalar: return "invalid-scalar";
        case ErrorCode::kIntegrityFailure: return "integrity-failure";
        case ErrorCode::kNotLoaded: return "not-loaded";
        case ErrorCode::kNotInstantiated: return "not-instantiated";
        case ErrorCode::kReseedRequired: return "reseed-required";
        case ErrorCode::kUnsupported: return "unsupported";
        case ErrorCode::kResourceExhausted: return "resource-exhausted";
        case ErrorCode::kNotFound: return "not-found";
        case ErrorCode::kIo: return "io";
        case ErrorCode::kCrypto: return "crypto";
        case ErrorCode::kTimeout: return "timeout";
        case ErrorCode::kUnavailable: return "unavailable";
        case ErrorCode::kDeviceFault: return "device-fault";
        case ErrorCode::kInternal: return "internal";
    }
    return "unknown";
}

std::string Error::describe() const { return std::string(to_string(code)) + ": " + message; }

void secure_wipe(void* p, size_t n) noexcept {
#if defined(_WIN32)
    SecureZeroMemory(p, n);
#else
    OPENSSL_cleanse(p, n);
#endif
}

void append_hex(std::string& out, ByteSpan data) {
    static constexpr char kDigits[] = "0123456789abcdef";
    const size_t at = out.size();
    out.resize(at + data.size() * 2);
    char* d = out.data() + at;
    for (size_t i = 0; i < data.size(); ++i) {
        d[2 * i] = kDigits[data[i] >> 4];
        d[2 * i + 1] = kDigits[data[i] & 0xf];
    }
}

std::string to_hex(ByteSpan data) {
    std::string out;
    append_hex(out, data);
    return out;
}

namespace {
int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
}  // namespace

Result<Bytes> from_hex(std::string_view hex, std::string_view what) {
    if (hex.size() % 2 != 0)
        return make_error(
            ErrorCode::kInvalidArgument,
            std::string(what) + ": odd number of hex digits (" + std::to_string(hex.size()) + ")");
    Bytes out(hex.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) {
        int hi = hex_value(hex[2 * i]);
        int lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return make_error(ErrorCode::kInvalidArgument,
                              std::string(what) + ": not a hex digit at offset " +
                                  std::to_string(hi < 0 ? 2 * i : 2 * i + 1));
        out[i] = static_cast<uint8_t>((hi << 4) | lo);
    }
    return out;
}

bool ct_equal(ByteSpan a, ByteSpan b) noexcept {
    if (a.size() != b.size()) return false;
#if defined(_WIN32)
    // Every byte is read whatever the data; volatile keeps the compiler from stopping early.
    volatile uint8_t diff = 0;
    for (size_t i = 0; i < a.size(); ++i) diff = static_cast<uint8_t>(diff | (a[i] ^ b[i]));
    return diff == 0;
#else
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
#endif
}

void store_be32(uint8_t* p, uint32_t v) noexcept {
    for (int i = 3; i >= 0; --i) {
        p[i] = static_cast<uint8_t>(v);
        v >>= 8;
    }
}
void store_be64(uint8_t* p, uint64_t v) noexcept {
    for (int i = 7; i >= 0; --i) {
        p[i] = static_cast<uint8_t>(v);
        v >>= 8;
    }
}
uint64_t load_be64(const uint8_t* p) noexcept {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
    return v;
}

bool printable_ascii(std::string_view s) noexcept {
    for (char c : s)
        if (c < 0x20 || c > 0x7e) return false;
    return true;
}

}  // namespace waferprov
