// Helpers shared by the renderers (not part of the public API).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace waferprov::host::report {

std::string iso_time(int64_t unix_s);       // "2025-03-01T12:00:00Z", "-" for 0
std::string printable(std::string_view s);  // control characters replaced by '?'
std::string wafer_label(int wafer);         // "03"

}  // namespace waferprov::host::report
