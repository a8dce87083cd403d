// The map readers' tests check that an error names the line of the offending element.
#pragma once

#include <algorithm>
#include <string>

#include <gtest/gtest.h>

namespace waferprov::host::testing {

// The 1-based line of `text` on which `needle` first appears (a test failure if it does not).
inline int line_of(const std::string& text, const std::string& needle) {
    const auto pos = text.find(needle);
    EXPECT_NE(pos, std::string::npos) << needle;
    return 1 +
           static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(pos), '\n'));
}

}  // namespace waferprov::host::testing
