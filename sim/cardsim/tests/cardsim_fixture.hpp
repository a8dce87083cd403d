// A mounted waferprov-cardsim for a test: mounts it in a fresh temp dir, waits for the nodes,
// and at the end stops it with SIGTERM (it unmounts itself); if it does not end in time it is
// killed and the mount is removed with `fusermount3 -u -z`. Needs /dev/fuse: fuse_missing()
// says why a test must skip.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "waferprov/testing/process.hpp"
#include "waferprov/testing/temp_dir.hpp"

namespace cardsim_test {

// Why this machine cannot mount a FUSE filesystem, or nullopt when it can.
inline std::optional<std::string> fuse_missing() {
    if (::access("/dev/fuse", R_OK | W_OK) != 0)
        return std::string("/dev/fuse is absent or not accessible: the emulated card needs FUSE");
    return std::nullopt;
}

class CardSim {
public:
    // `args`: extra options (--engines, --fault ...). Check ok() (or use start()) before use.
    explicit CardSim(std::vector<std::string> args = {}) : dir_("cardsim") {
        mnt_ = dir_.path() / "mnt";
        std::filesystem::create_directory(mnt_);
        log_ = dir_.path() / "cardsim.log";
        std::vector<std::string> argv = {WAFERPROV_CARDSIM, mnt_.string()};
        argv.insert(argv.end(), args.begin(), args.end());
        pid_ = waferprov::testing::spawn_process(argv, log_);
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (std::chrono::steady_clock::now() < until) {
            std::error_code ec;
            if (std::filesystem::exists(mnt_ / "xdma0_events_0", ec)) {
                ok_ = true;
                return;
            }
            if (pid_ <= 0) break;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // it ended: a bad option, no mount
                pid_ = -1;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    ~CardSim() { stop(); }
    CardSim(const CardSim&) = delete;
    CardSim& operator=(const CardSim&) = delete;

    bool ok() const { return ok_; }
    pid_t pid() const { return pid_; }
    std::string log() const { return waferprov::testing::read_text(log_); }
    std::filesystem::path mountdir() const { return mnt_; }
    // The xdma backend's device prefix.
    std::string prefix() const { return (mnt_ / "xdma0").string(); }

    // SIGTERM, then the exit status (0: unmounted cleanly). Kills and lazily unmounts when it
    // does not end within 30 s.
    int stop() {
        if (pid_ <= 0) return stopped_rc_;
        ::kill(pid_, SIGTERM);
        stopped_rc_ = waferprov::testing::wait_process(pid_, std::chrono::seconds(30));
        pid_ = -1;
        if (stopped_rc_ != 0) force_unmount();
        return stopped_rc_;
    }
    bool mounted() const {
        std::error_code ec;
        return std::filesystem::exists(mnt_ / "xdma0_user", ec);
    }

private:
    void force_unmount() {
        waferprov::testing::run_process({"fusermount3", "-u", "-z", mnt_.string()},
                                        dir_.path() / "fusermount.log", std::chrono::seconds(30));
    }

    waferprov::testing::TempDir dir_;  // first member: removed after the unmount
    std::filesystem::path mnt_, log_;
    pid_t pid_ = -1;
    bool ok_ = false;
    int stopped_rc_ = -1;
};

}  // namespace cardsim_test
