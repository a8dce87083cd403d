// Test support: child processes (`waferprov job init`, `waferprov serve`, the example program)
// and a development job with tester keys. Real processes, no mocks.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "waferprov_ate.h"

namespace waferprov::ate_test {

namespace fs = std::filesystem;

struct RunResult {
    // The exit status, or (negative) waferprov::testing::kSpawnFailed, kProcessSignaled or
    // kProcessTimedOut (waferprov/test_process.hpp).
    int exit_status = -1;
    std::string output;  // stdout and stderr together
};

// Runs argv[0] (a path) with its arguments to completion, output to `log` (truncated first);
// killed after `timeout`.
RunResult run_command(const std::vector<std::string>& argv, const fs::path& log,
                      std::chrono::seconds timeout = std::chrono::seconds(60));

// `waferprov serve --help` works: the command exists in this build.
bool serve_available(const fs::path& waferprov, const fs::path& scratch);

// A development job written by `waferprov job init --out DIR --id ID --tester T ...`, and the
// keys a tester needs, read with the library under test.
struct DevJob {
    fs::path dir;
    std::string id;
    char server_public[WP_ATE_KEY_Z85_LENGTH + 1] = {};

    fs::path job_file() const { return dir / "job.toml"; }
    fs::path tester_key(const std::string& tester) const {
        return dir / ("tester-" + tester + ".key");
    }
};
// "" on success, else what went wrong.
std::string make_dev_job(const fs::path& waferprov, const fs::path& dir, const std::string& id,
                         const std::vector<std::string>& testers, DevJob& job);

// A tester's key pair, read from its key file.
struct TesterKeys {
    char public_z85[WP_ATE_KEY_Z85_LENGTH + 1] = {};
    char secret_z85[WP_ATE_KEY_Z85_LENGTH + 1] = {};
};
std::string read_tester_keys(const fs::path& key_file, TesterKeys& keys);

// A running `waferprov serve`. start() waits for its "listening on ENDPOINT" line; the
// destructor stops it (SIGTERM, then SIGKILL after 10 s).
class ServeProcess {
public:
    // `args` follow "serve"; stdout/stderr go to `log_stem`.out / .err.
    static std::unique_ptr<ServeProcess> start(const fs::path& waferprov,
                                               const std::vector<std::string>& args,
                                               const fs::path& log_stem, std::string& error);
    ~ServeProcess();
    ServeProcess(const ServeProcess&) = delete;
    ServeProcess& operator=(const ServeProcess&) = delete;

    const std::string& endpoint() const { return endpoint_; }
    // SIGKILL and reap: the host dies mid-session, nothing flushed or closed.
    void kill_hard();
    // SIGTERM and wait; the exit status, or a negative waferprov::testing::wait_process() code
    // (kProcessTimedOut if it had to be killed after 10 s, kNoSuchProcess if not running).
    int stop();
    // What the server wrote to stderr so far (for failure messages).
    std::string log() const;

private:
    ServeProcess() = default;
    pid_t pid_ = -1;
    std::string endpoint_;
    fs::path out_, err_;
};

}  // namespace waferprov::ate_test
