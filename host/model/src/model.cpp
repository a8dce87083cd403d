#include "waferprov/host/model.hpp"

#include <cstdio>

namespace waferprov::host {

std::optional<std::string> text_field_problem(std::string_view s, bool may_be_empty) {
    if (s.empty() && !may_be_empty) return "must not be empty";
    if (s.size() > kMaxTextField)
        return "is " + std::to_string(s.size()) + " characters long; the limit is " +
               std::to_string(kMaxTextField);
    for (size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c > 0x7e) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02x", c);
            return std::string("has the byte ") + hex + " at character " + std::to_string(i + 1) +
                   "; only printable ASCII (0x20..0x7e) is allowed";
        }
    }
    return std::nullopt;
}

std::string DieLocation::describe() const {
    if (packaged) return lot + " packaged part";
    return lot + " wafer " + std::to_string(wafer) + " [" + substrate + "] (" + std::to_string(x) +
           ", " + std::to_string(y) + ")";
}

const char* to_string(DieState s) noexcept {
    switch (s) {
        case DieState::kIssued: return "ISSUED";
        case DieState::kDelivered: return "DELIVERED";
        case DieState::kProgrammed: return "PROGRAMMED";
        case DieState::kFailed: return "FAILED";
        case DieState::kVoid: return "VOID";
    }
    return "?";
}

Result<DieState> die_state_from_string(std::string_view s) {
    for (DieState d : {DieState::kIssued, DieState::kDelivered, DieState::kProgrammed,
                       DieState::kFailed, DieState::kVoid})
        if (s == to_string(d)) return d;
    return make_error(ErrorCode::kInvalidArgument, "unknown die state '" + std::string(s) + "'");
}

bool is_postgres_location(std::string_view location) {
    return location.substr(0, 13) == "postgresql://" || location.substr(0, 11) == "postgres://";
}

std::string sqlite_path_of(std::string_view location) {
    if (location.substr(0, 7) == "sqlite:") location.remove_prefix(7);
    return std::string(location);
}

}  // namespace waferprov::host
