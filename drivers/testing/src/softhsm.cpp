#include "waferprov/testing/softhsm.hpp"

#include "waferprov/testing/process.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace waferprov::testing {

std::optional<std::filesystem::path> SoftHsmToken::find_module() {
    for (const char* p :
         {"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
          "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
          "/usr/local/lib/softhsm/libsofthsm2.so"}) {
        std::error_code ec;
        if (std::filesystem::exists(p, ec)) return std::filesystem::path(p);
    }
    return std::nullopt;
}

namespace {

// The program `name` on PATH (run_process() takes a path, not a name to look up).
std::optional<std::filesystem::path> on_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        if (dir.empty()) continue;
        const auto candidate = std::filesystem::path(dir) / name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return std::nullopt;
}

}  // namespace

Result<std::unique_ptr<SoftHsmToken>> SoftHsmToken::create(const SoftHsmTokenOptions& options) {
    auto module = find_module();
    if (!module)
        return make_error(ErrorCode::kNotFound,
                          "SoftHSM2 module (libsofthsm2.so) is not installed");

    std::unique_ptr<SoftHsmToken> t(new SoftHsmToken());
    t->options_ = options;
    t->module_ = *module;
    // Before dir_ is set: the destructor restores it whichever way create() ends.
    if (const char* prev = std::getenv("SOFTHSM2_CONF")) t->previous_conf_ = prev;
    const char* tmp = std::getenv("TMPDIR");
    std::string templ =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/waferprov-softhsm-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr)
        return make_error(ErrorCode::kIo, "mkdtemp " + templ + ": " + std::strerror(errno));
    t->dir_ = templ;  // from here on the destructor cleans up

    const auto tokens = t->dir_ / "tokens";
    std::error_code ec;
    std::filesystem::create_directory(tokens, ec);
    if (ec) return make_error(ErrorCode::kIo, "creating " + tokens.string() + ": " + ec.message());
    const auto conf = t->dir_ / "softhsm2.conf";
    {
        std::ofstream out(conf);
        out << "directories.tokendir = " << tokens.string() << "\n"
            << "objectstore.backend = file\n"
            << "log.level = ERROR\n"
            << "slots.removable = false\n";
        if (!out) return make_error(ErrorCode::kIo, "writing " + conf.string());
    }
    ::setenv("SOFTHSM2_CONF", conf.c_str(), 1);

    const auto log = t->dir_ / "softhsm2-util.log";
    const auto util = on_path("softhsm2-util");
    if (!util) return make_error(ErrorCode::kNotFound, "softhsm2-util is not on PATH");
    const int status =
        run_process({util->string(), "--init-token", "--free", "--label", options.label, "--pin",
                     options.user_pin, "--so-pin", options.so_pin},
                    log);
    if (status != 0) {
        std::ifstream in(log);
        std::stringstream text;
        text << in.rdbuf();
        return make_error(ErrorCode::kInternal, "softhsm2-util --init-token exited with " +
                                                    std::to_string(status) + ": " + text.str());
    }
    return t;
}

SoftHsmToken::~SoftHsmToken() {
    if (dir_.empty()) return;
    if (previous_conf_)
        ::setenv("SOFTHSM2_CONF", previous_conf_->c_str(), 1);
    else
        ::unsetenv("SOFTHSM2_CONF");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);  // best effort: a destructor cannot report
}

void SoftHsmToken::export_pin(const std::string& name) const {
    ::setenv(name.c_str(), options_.user_pin.c_str(), 1);
}

}  // namespace waferprov::testing
