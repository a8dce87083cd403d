#include "service_log.hpp"

#include <cstdio>
#include <iostream>

#include "waferprov/host/ledger.hpp"  // iso8601_utc

namespace waferprov::host::svc {

ServiceLog::ServiceLog(Sink sink, std::chrono::milliseconds window)
    : sink_(std::move(sink)),
      limiter_(std::make_unique<LogLimiter>([this](const std::string& l) { line(l); }, window)) {}

void ServiceLog::line(const std::string& text) const {
    if (sink_) {
        sink_(text);
        return;
    }
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    std::cerr << iso8601_utc(std::chrono::duration_cast<std::chrono::microseconds>(now).count())
              << " " << text << "\n";
}

void ServiceLog::limited(const std::string& kind, const std::string& text) {
    limiter_->log(kind, text);
}

std::string loggable(std::string_view s) {
    std::string out;
    for (char ch : s.substr(0, 64)) {
        if (ch >= 0x20 && ch <= 0x7e) {
            out += ch;
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(ch));
            out += buf;
        }
    }
    if (s.size() > 64) out += "...";
    return out;
}

std::string seconds(std::chrono::milliseconds ms) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", static_cast<double>(ms.count()) / 1000.0);
    return std::string(buf) + "s";
}

}  // namespace waferprov::host::svc
