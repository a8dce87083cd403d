// The service's log: every part of `serve` (the I/O loop, the workers, admission) writes through
// one of these. Lines a peer can make many of go through the rate limiter.
//
// Thread-safety: line() and limited() may be called from any thread (the sink given in
// ServiceOptions::log must be callable from several threads; the default writes to stderr).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "waferprov/host/log_limiter.hpp"

namespace waferprov::host::svc {

class ServiceLog {
public:
    using Sink = std::function<void(const std::string&)>;

    // `sink` empty: timestamped lines on stderr. window > 0.
    ServiceLog(Sink sink, std::chrono::milliseconds window);

    void line(const std::string& text) const;
    // A line of a kind a peer can repeat without limit: rate-limited by kind.
    void limited(const std::string& kind, const std::string& text);
    LogLimiter& limiter() { return *limiter_; }

private:
    Sink sink_;
    std::unique_ptr<LogLimiter> limiter_;
};

// A possibly hostile string made safe for a log line: printable ASCII kept, the rest escaped,
// at most 64 characters.
std::string loggable(std::string_view s);

// "5s", "2.5s", "0.001s".
std::string seconds(std::chrono::milliseconds ms);

}  // namespace waferprov::host::svc
