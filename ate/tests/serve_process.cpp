#include "serve_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace waferprov::ate_test {
namespace {

using Clock = std::chrono::steady_clock;

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// Starts argv with stdout to `out` and stderr to `err` (the same file if equal); -1 on failure.
pid_t spawn(const std::vector<std::string>& args, const fs::path& out, const fs::path& err) {
    std::vector<std::string> copy = args;
    std::vector<char*> argv;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err == out)
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
    else
        posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = -1;
    if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

// Waits for `pid` until `timeout`; its exit status, or -1 (a signal ended it, or it had to be
// killed at the timeout).
int wait_for(pid_t pid, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    int status = 0;
    for (;;) {
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0) return -1;
        if (Clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

RunResult run_command(const std::vector<std::string>& argv, const fs::path& log,
                      std::chrono::seconds timeout) {
    RunResult r;
    const pid_t pid = spawn(argv, log, log);
    if (pid < 0) {
        r.output = "cannot spawn " + argv.at(0);
        return r;
    }
    r.exit_status = wait_for(pid, timeout);
    r.output = slurp(log);
    return r;
}

bool serve_available(const fs::path& waferprov, const fs::path& scratch) {
    return run_command({waferprov.string(), "serve", "--help"}, scratch / "serve-help.log")
               .exit_status == 0;
}

std::string make_dev_job(const fs::path& waferprov, const fs::path& dir, const std::string& id,
                         const std::vector<std::string>& testers, DevJob& job) {
    std::vector<std::string> argv = {waferprov.string(), "job", "init", "--out", dir.string(),
                                     "--id", id};
    for (const auto& t : testers) {
        argv.emplace_back("--tester");
        argv.push_back(t);
    }
    const RunResult r = run_command(argv, dir.parent_path() / (dir.filename().string() + ".log"));
    if (r.exit_status != 0)
        return "waferprov job init failed (" + std::to_string(r.exit_status) + "): " + r.output;
    job.dir = dir;
    job.id = id;
    if (wp_ate_read_key_file((dir / "server.pub").c_str(), job.server_public, nullptr) !=
        WP_ATE_OK)
        return std::string("reading server.pub: ") + wp_ate_last_error(nullptr);
    return {};
}

std::string read_tester_keys(const fs::path& key_file, TesterKeys& keys) {
    if (wp_ate_read_key_file(key_file.c_str(), keys.public_z85, keys.secret_z85) != WP_ATE_OK)
        return std::string("reading ") + key_file.string() + ": " + wp_ate_last_error(nullptr);
    return {};
}

std::unique_ptr<ServeProcess> ServeProcess::start(const fs::path& waferprov,
                                                  const std::vector<std::string>& args,
                                                  const fs::path& log_stem, std::string& error) {
    std::unique_ptr<ServeProcess> p(new ServeProcess);
    p->out_ = log_stem.string() + ".out";
    p->err_ = log_stem.string() + ".err";
    std::vector<std::string> argv = {waferprov.string(), "serve"};
    argv.insert(argv.end(), args.begin(), args.end());
    p->pid_ = spawn(argv, p->out_, p->err_);
    if (p->pid_ < 0) {
        error = "cannot spawn " + waferprov.string();
        return nullptr;
    }
    const std::string marker = "listening on ";
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
        const std::string out = slurp(p->out_);
        const size_t at = out.find(marker);
        if (at != std::string::npos) {
            const size_t end = out.find('\n', at);
            if (end != std::string::npos) {
                p->endpoint_ = out.substr(at + marker.size(), end - at - marker.size());
                return p;
            }
        }
        int status = 0;
        if (::waitpid(p->pid_, &status, WNOHANG) == p->pid_) {
            p->pid_ = -1;
            error = "waferprov serve exited before listening: " + slurp(p->err_) + out;
            return nullptr;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    error = "waferprov serve did not print 'listening on' within 60 s: " + p->log();
    return nullptr;  // the destructor kills it
}

ServeProcess::~ServeProcess() { (void)stop(); }

void ServeProcess::kill_hard() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

int ServeProcess::stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    const int rc = wait_for(pid_, std::chrono::seconds(10));
    pid_ = -1;
    return rc;
}

std::string ServeProcess::log() const { return slurp(err_) + slurp(out_); }

}  // namespace waferprov::ate_test
