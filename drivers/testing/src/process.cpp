#include "waferprov/testing/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <iterator>
#include <thread>

extern char** environ;  // NOLINT: POSIX

namespace waferprov::testing {
namespace {

using Clock = std::chrono::steady_clock;

// The result of a waitpid() status: the exit status, or kProcessSignaled.
int exit_status(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : kProcessSignaled; }

// SIGKILL and reap (after a timeout).
int kill_and_reap(pid_t pid) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {}
    return kProcessTimedOut;
}

}  // namespace

pid_t spawn_process(const std::vector<std::string>& argv, const std::filesystem::path& out,
                    const std::filesystem::path& err, bool append) {
    if (argv.empty()) return -1;
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0) return -1;
    bool ok = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out.c_str(), flags, 0644) == 0;
    if (err.empty() || err == out)
        ok = ok && posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO) == 0;
    else
        ok = ok &&
             posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err.c_str(), flags, 0644) == 0;
    pid_t pid = -1;
    if (!ok || posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0) pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

int wait_process(pid_t pid, std::chrono::milliseconds timeout) {
    if (pid <= 0) return kNoSuchProcess;
    int status = 0;
    // No timeout, or one past the end of the clock: a blocking wait.
    if (timeout >= std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() -
                                                                         Clock::now())) {
        for (;;) {
            if (::waitpid(pid, &status, 0) == pid) return exit_status(status);
            if (errno != EINTR) return kNoSuchProcess;
        }
    }
    const auto deadline = Clock::now() + std::max(timeout, std::chrono::milliseconds(0));
    for (;;) {
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) return exit_status(status);
        if (r < 0 && errno != EINTR) return kNoSuchProcess;
        if (Clock::now() >= deadline) return kill_and_reap(pid);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

std::optional<int> poll_process(pid_t pid) {
    if (pid <= 0) return kNoSuchProcess;
    int status = 0;
    for (;;) {
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == 0) return std::nullopt;
        if (r == pid) return exit_status(status);
        if (errno != EINTR) return kNoSuchProcess;
    }
}

int run_process(const std::vector<std::string>& argv, const std::filesystem::path& log,
                std::chrono::milliseconds timeout) {
    const pid_t pid = spawn_process(argv, log);
    return pid < 0 ? kSpawnFailed : wait_process(pid, timeout);
}

std::string read_text(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace waferprov::testing
