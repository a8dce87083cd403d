#include "waferprov/host/log_limiter.hpp"

#include <cstdio>

namespace waferprov::host {

LogLimiter::LogLimiter(Sink sink, std::chrono::milliseconds window,
                       std::function<Clock::time_point()> now)
    : sink_(std::move(sink)), window_(window), now_(std::move(now)) {}

void LogLimiter::summarize(const std::string& kind, const Kind& k) {
    if (k.suppressed == 0) return;
    char secs[32];
    std::snprintf(secs, sizeof secs, "%g", static_cast<double>(window_.count()) / 1000.0);
    sink_(kind + ": " + std::to_string(k.suppressed) + " more like this in the last " + secs +
          "s (last: " + k.last + ")");
}

void LogLimiter::log(const std::string& kind, const std::string& line) {
    const auto now = now_();
    std::lock_guard lock(mu_);
    auto it = kinds_.find(kind);
    if (it != kinds_.end() && now - it->second.since < window_) {
        ++it->second.suppressed;
        it->second.last = line;
        return;
    }
    if (it != kinds_.end()) summarize(kind, it->second);
    sink_(line);
    kinds_[kind] = Kind{now, 0, {}};
}

std::optional<LogLimiter::Clock::duration> LogLimiter::flush(bool all) {
    const auto now = now_();
    std::lock_guard lock(mu_);
    std::optional<Clock::duration> next;
    for (auto it = kinds_.begin(); it != kinds_.end();) {
        const auto end = it->second.since + window_;
        if (all || now >= end) {
            summarize(it->first, it->second);
            it = kinds_.erase(it);
            continue;
        }
        if (it->second.suppressed > 0 && (!next || end - now < *next)) next = end - now;
        ++it;
    }
    return next;
}

}  // namespace waferprov::host
