#include "waferprov/testing/temp_dir.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace waferprov::testing {

TempDir::TempDir(std::string_view tag) {
    static std::atomic<unsigned> counter{0};
    std::string name = "waferprov-" + std::string(tag) + "-" + std::to_string(::getpid()) + "-" +
                       std::to_string(counter++) + "-XXXXXX";
    std::string templ = (std::filesystem::temp_directory_path() / name).string();
    if (::mkdtemp(templ.data()) == nullptr) {
        std::fprintf(stderr, "TempDir: mkdtemp %s: %s\n", templ.c_str(), std::strerror(errno));
        std::abort();
    }
    path_ = templ;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

}  // namespace waferprov::testing
