// Test-only: a fresh directory that is removed, with everything in it, at scope exit. The one
// TempDir of the tests and benchmarks (waferprov::testing; nothing in the product links it).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace waferprov::testing {

class TempDir {
public:
    // <system temp>/waferprov-<tag>-<pid>-<n>-XXXXXX, created 0700 with mkdtemp (unique even
    // across processes and repeated runs). Aborts the test program if it cannot be made.
    explicit TempDir(std::string_view tag = "test");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

}  // namespace waferprov::testing
