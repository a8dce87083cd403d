// Rate-limited log lines: a flood of the same kind of line (refused connections, refused
// frames, refused sites) is written once, then summed up, so a misbehaving peer cannot fill
// the journal or the disk through the log.
//
//   first line of a kind           -> written at once
//   more of that kind in `window`  -> counted, not written
//   the window ends                -> "N more like this in the last Ts (last: ...)"
//
// Thread-safety: every member may be called from any thread; the sink is called under the
// limiter's lock, one line at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace waferprov::host {

class LogLimiter {
public:
    using Clock = std::chrono::steady_clock;
    using Sink = std::function<void(const std::string&)>;

    // `now` is the clock (tests pass their own); window > 0.
    LogLimiter(Sink sink, std::chrono::milliseconds window,
               std::function<Clock::time_point()> now = &Clock::now);

    // Writes `line` unless a line of the same `kind` was written less than `window` ago, in
    // which case it is only counted (and remembered as the last of its kind).
    void log(const std::string& kind, const std::string& line);

    // Writes the summaries of the windows that have ended (`all`: of every window, e.g. at
    // exit). Returns how long until the next one is due, or nullopt if nothing is being
    // counted. Call it now and then (the service does from its I/O loop) so a summary is not
    // held back until the next line of its kind.
    std::optional<Clock::duration> flush(bool all = false);

private:
    struct Kind {
        Clock::time_point since;  // when the line that opened this window was written
        uint64_t suppressed = 0;
        std::string last;
    };
    void summarize(const std::string& kind, const Kind& k);

    Sink sink_;
    std::chrono::milliseconds window_;
    std::function<Clock::time_point()> now_;
    std::mutex mu_;
    std::map<std::string, Kind> kinds_;
};

}  // namespace waferprov::host
