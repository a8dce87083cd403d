// Errors as values: every fallible call returns Result<T> (or Status = Result<void>), which is
// [[nodiscard]] and carries an error code plus a message with context. Exceptions are reserved
// for main() and thread boundaries.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace waferprov {

enum class ErrorCode {
    kInvalidArgument,    // malformed input: wrong length, bad hex, out-of-range value
    kInvalidScalar,      // a P-256 scalar that is 0 or >= n
    kIntegrityFailure,   // AES key unwrap integrity check failed
    kNotLoaded,          // the engine has no KIK loaded
    kNotInstantiated,    // the DRBG has not been instantiated
    kReseedRequired,     // the DRBG reached its reseed interval
    kUnsupported,        // the backend cannot run this operation (e.g. a key size it lacks)
    kResourceExhausted,  // a bounded resource (batches in flight, quota) is used up
    kNotFound,
    kIo,           // file or device I/O failed
    kCrypto,       // OpenSSL (or a device) reported an internal failure
    kTimeout,      // a deadline passed before the peer or device answered
    kUnavailable,  // the peer or device is not there (not connected, not present)
    kDeviceFault,  // a device reported a fault (its sticky error registers say which)
    kInternal,
};

const char* to_string(ErrorCode code) noexcept;

struct Error {
    ErrorCode code;
    std::string message;

    // "invalid-argument: <message>"
    std::string describe() const;
    // Prefixes context ("loading KIK: ...") while keeping the code.
    Error with_context(const std::string& context) const {
        return Error{code, context + ": " + message};
    }
};

inline Error make_error(ErrorCode code, std::string message) {
    return Error{code, std::move(message)};
}

// Result<T> holds a T or an Error. A layer whose errors carry more than a code and a message
// names its own error type E (the tester link's codec: Result<Frame, DecodeError>, which also
// carries the protocol status and the byte offset); it is the same shape everywhere.
template <class T, class E = Error>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
    Result(E error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const E& error() const& { return std::get<1>(v_); }

private:
    std::variant<T, E> v_;
};

template <>
class [[nodiscard]] Result<void, Error> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

    bool ok() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    const Error& error() const& { return error_; }

private:
    Error error_{ErrorCode::kInternal, ""};
    bool ok_ = true;
};

using Status = Result<void>;

inline Status ok_status() { return Status{}; }

}  // namespace waferprov

// Propagates an error from a Result/Status expression out of the enclosing function.
#define WP_RETURN_IF_ERROR(expr)                                                   \
    do {                                                                           \
        if (auto wp_status_ = (expr); !wp_status_.ok()) return wp_status_.error(); \
    } while (0)

#define WP_CONCAT_INNER(a, b) a##b
#define WP_CONCAT(a, b) WP_CONCAT_INNER(a, b)
// Declares `lhs` from a Result expression, or returns its error.
#define WP_ASSIGN_OR_RETURN(lhs, expr) \
    WP_ASSIGN_OR_RETURN_IMPL(WP_CONCAT(wp_result_, __LINE__), lhs, expr)
#define WP_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
    auto tmp = (expr);                           \
    if (!tmp.ok()) return tmp.error();           \
    lhs = std::move(tmp).value()
