#include "serve_process.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <thread>

#include "waferprov/testing/process.hpp"

namespace waferprov::ate_test {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

RunResult run_command(const std::vector<std::string>& argv, const fs::path& log,
                      std::chrono::seconds timeout) {
    RunResult r;
    const pid_t pid = waferprov::testing::spawn_process(argv, log, {}, /*append=*/false);
    if (pid < 0) {
        r.exit_status = waferprov::testing::kSpawnFailed;
        r.output = "cannot spawn " + argv.at(0);
        return r;
    }
    r.exit_status = waferprov::testing::wait_process(pid, timeout);
    r.output = waferprov::testing::read_text(log);
    return r;
}

bool serve_available(const fs::path& waferprov, const fs::path& scratch) {
    return run_command({waferprov.string(), "serve", "--help"}, scratch / "serve-help.log")
               .exit_status == 0;
}

std::string make_dev_job(const fs::path& waferprov, const fs::path& dir, const std::string& id,
                         const std::vector<std::string>& testers, DevJob& job) {
    std::vector<std::string> argv = {waferprov.string(), "job",  "init", "--out",
                                     dir.string(),       "--id", id};
    for (const auto& t : testers) {
        argv.emplace_back("--tester");
        argv.push_back(t);
    }
    const RunResult r = run_command(argv, dir.parent_path() / (dir.filename().string() + ".log"));
    if (r.exit_status != 0)
        return "waferprov job init failed (" + std::to_string(r.exit_status) + "): " + r.output;
    job.dir = dir;
    job.id = id;
    if (wp_ate_read_key_file((dir / "server.pub").c_str(), job.server_public, nullptr) != WP_ATE_OK)
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
    p->pid_ = waferprov::testing::spawn_process(argv, p->out_, p->err_, /*append=*/false);
    if (p->pid_ < 0) {
        error = "cannot spawn " + waferprov.string();
        return nullptr;
    }
    const std::string marker = "listening on ";
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
        const std::string out = waferprov::testing::read_text(p->out_);
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
            error = "waferprov serve exited before listening: " +
                    waferprov::testing::read_text(p->err_) + out;
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
    if (pid_ <= 0) return waferprov::testing::kNoSuchProcess;
    ::kill(pid_, SIGTERM);
    const int rc = waferprov::testing::wait_process(pid_, std::chrono::seconds(10));
    pid_ = -1;
    return rc;
}

std::string ServeProcess::log() const {
    return waferprov::testing::read_text(err_) + waferprov::testing::read_text(out_);
}

}  // namespace waferprov::ate_test
