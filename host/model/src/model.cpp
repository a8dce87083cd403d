#include "waferprov/host/model.hpp"

namespace waferprov::host {

std::string DieLocation::describe() const {
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

}  // namespace waferprov::host
