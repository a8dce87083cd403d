#include "waferprov/host/softhsm_fixture.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

extern char** environ;  // NOLINT: POSIX

namespace waferprov::host {

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

// Runs argv (no shell), its output into `log`; returns the exit status or an error.
Result<int> run(const std::vector<std::string>& argv, const std::filesystem::path& log) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return make_error(ErrorCode::kNotFound, "cannot run " + argv[0] + ": " + std::strerror(rc));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return make_error(ErrorCode::kInternal,
                              "waitpid " + argv[0] + ": " + std::strerror(errno));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status)
                             : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
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
    WP_ASSIGN_OR_RETURN(int status,
                        run({"softhsm2-util", "--init-token", "--free", "--label", options.label,
                             "--pin", options.user_pin, "--so-pin", options.so_pin},
                            log));
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

}  // namespace waferprov::host
