// Helpers for the end-to-end tests of waferprov-tester: child processes (the `waferprov` command,
// `waferprov serve`, the simulator), a development job with a synthesized wafer, and the check
// that the ledger holds exactly what the simulator reported.
#pragma once

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "waferprov/host/ledger.hpp"
#include "waferprov/host/wafermap.hpp"
#include "waferprov/test_vectors.hpp"
#include "waferprov/testing/process.hpp"
#include "waferprov/testing/temp_dir.hpp"

namespace waferprov::tester::e2e {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

inline const fs::path kWaferprov = WAFERPROV_BINARY;
inline const fs::path kTester = WAFERPROV_TESTER_BINARY;

using waferprov::testing::read_text;

// Starts `binary args...` with stdout and stderr appended to `log`; -1 on failure.
inline pid_t spawn(const fs::path& binary, const std::vector<std::string>& args,
                   const fs::path& log) {
    std::vector<std::string> argv = {binary.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return waferprov::testing::spawn_process(argv, log);
}

// Runs `binary args...` to completion (see spawn()); its exit status, or
// waferprov::testing::kSpawnFailed
// (-2), kProcessSignaled (-1) or kProcessTimedOut (-3, the process is then killed).
inline int run(const fs::path& binary, const std::vector<std::string>& args, const fs::path& log,
               std::chrono::seconds timeout = std::chrono::seconds(120)) {
    const pid_t pid = spawn(binary, args, log);
    return pid < 0 ? waferprov::testing::kSpawnFailed
                   : waferprov::testing::wait_process(pid, timeout);
}

// A child process that is killed and reaped if the test leaves before waiting for it.
class Child {
public:
    explicit Child(pid_t pid) : pid_(pid) {}
    ~Child() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    pid_t pid() const { return pid_; }
    // False once it has ended (it is reaped then, and wait() returns its status).
    bool running() {
        if (pid_ <= 0) return false;
        const auto rc = waferprov::testing::poll_process(pid_);
        if (!rc) return true;
        ended_ = *rc;
        has_ended_ = true;
        pid_ = -1;
        return false;
    }
    // Its exit status (see run()), also after running() saw it end.
    int wait(std::chrono::seconds timeout) {
        if (pid_ <= 0 && has_ended_) return ended_;
        const int rc = waferprov::testing::wait_process(pid_, timeout);
        pid_ = -1;
        return rc;
    }

private:
    pid_t pid_;
    // (Not a std::optional: GCC 12 takes it for uninitialized under -Werror.)
    bool has_ended_ = false;
    int ended_ = 0;
};

// `waferprov serve` as a child process. start() waits for its "listening on ENDPOINT" line.
class Server {
public:
    Server(fs::path job_toml, fs::path dir) : job_(std::move(job_toml)), dir_(std::move(dir)) {}
    ~Server() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Starts the server on `bind` (with `extra` arguments) and returns the endpoint it listens
    // on ("" on failure, with the reason in failure()).
    std::string start(const std::string& bind = "tcp://127.0.0.1:0",
                      const std::vector<std::string>& extra = {}) {
        log_ = dir_ / ("serve-" + std::to_string(++starts_) + ".log");
        std::vector<std::string> args = {"serve", "--job", job_.string(), "--bind", bind};
        args.insert(args.end(), extra.begin(), extra.end());
        pid_ = spawn(kWaferprov, args, log_);
        if (pid_ < 0) return fail("cannot spawn " + kWaferprov.string());
        const auto deadline = Clock::now() + std::chrono::seconds(60);
        const std::string marker = "listening on ";
        while (Clock::now() < deadline) {
            const std::string text = read_text(log_);
            if (const size_t at = text.find(marker); at != std::string::npos) {
                const size_t end = text.find('\n', at);
                if (end != std::string::npos) {
                    endpoint_ = text.substr(at + marker.size(), end - at - marker.size());
                    return endpoint_;
                }
            }
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return fail("serve exited before listening: " + text);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return fail("serve did not print 'listening on' within 60 s: " + read_text(log_));
    }

    void kill9() {
        ASSERT_GT(pid_, 0);
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

    // SIGTERM; the exit status (0 = stopped cleanly; see run()), kNoSuchProcess (-4) if not
    // running.
    int stop() {
        if (pid_ <= 0) return waferprov::testing::kNoSuchProcess;
        ::kill(pid_, SIGTERM);
        const int rc = waferprov::testing::wait_process(pid_, std::chrono::seconds(30));
        pid_ = -1;
        return rc;
    }

    const std::string& endpoint() const { return endpoint_; }
    std::string logs() const {
        std::string all;
        for (int i = 1; i <= starts_; ++i)
            all += read_text(dir_ / ("serve-" + std::to_string(i) + ".log"));
        return all;
    }
    const std::string& failure() const { return failure_; }

private:
    std::string fail(const std::string& why) {
        failure_ = why;
        return "";
    }
    fs::path job_, dir_, log_;
    pid_t pid_ = -1;
    int starts_ = 0;
    std::string endpoint_, failure_;
};

// A development job (job init --id J1 --tester SIM-01) and a synthesized wafer in a temporary
// folder.
struct JobSetup {
    waferprov::testing::TempDir tmp;
    fs::path dir, map, log;
    size_t dies = 0;  // dies to provision (bin 01)
    std::string lot;
    int wafer = 0;

    JobSetup(const std::string& tag, int diameter_mm,
             const std::vector<std::string>& job_extra = {})
        : tmp(tag) {
        dir = tmp.path() / "job";
        map = tmp.path() / "wafer.xml";
        log = tmp.path() / "commands.log";
        std::vector<std::string> init = {"job",  "init", "--out",    dir.string(),
                                         "--id", "J1",   "--tester", "SIM-01"};
        init.insert(init.end(), job_extra.begin(), job_extra.end());
        EXPECT_EQ(run(kWaferprov, init, log), 0) << read_text(log);
        EXPECT_EQ(run(kWaferprov,
                      {"wafer", "synth", "--diameter", std::to_string(diameter_mm), "--die", "2x2",
                       "--lot", "LOTSIM", "--wafer", "3", "--out", map.string()},
                      log),
                  0)
            << read_text(log);
        auto m = host::read_map_file(map);
        EXPECT_TRUE(m.ok());
        if (m.ok()) {
            dies = host::select_dies(*m, {"01"})->size();
            lot = m->lot;
            wafer = m->wafer;
        }
    }

    fs::path job_toml() const { return dir / "job.toml"; }
    fs::path ledger() const { return dir / "ledger.sqlite"; }

    std::vector<std::string> tester_args(const std::string& endpoint, int sites,
                                         const std::vector<std::string>& extra = {}) const {
        std::vector<std::string> a = {"--map",        map.string(),
                                      "--sites",      std::to_string(sites),
                                      "--endpoint",   endpoint,
                                      "--job-id",     "J1",
                                      "--tester-id",  "SIM-01",
                                      "--key",        (dir / "tester-SIM-01.key").string(),
                                      "--server-key", (dir / "server.pub").string(),
                                      "--kik",        (dir / "kik.hex").string(),
                                      "--ca",         (dir / "ca.pem").string(),
                                      "--root",       (dir / "root.pem").string(),
                                      "--json",       (tmp.path() / "summary.json").string()};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
    json summary() const { return json::parse(read_text(tmp.path() / "summary.json")); }

    // Counts of the ledger's states (zero if it cannot be opened yet).
    host::StateCounts counts() const {
        auto l = host::Ledger::open_existing(ledger(), 2000);
        if (!l.ok()) return {};
        auto c = (*l)->counts();
        return c.ok() ? *c : host::StateCounts{};
    }
};

// The ledger verifies, holds exactly one identity per die to provision, and every die is in
// the state with the bin the simulator reported (and under the UID it was delivered).
// `packaged`: parts provisioned at final test besides the wafer's dies (no wafer position; not
// in the summary's dies).
inline void expect_ledger_matches(const JobSetup& job, const json& summary, size_t packaged = 0) {
    EXPECT_EQ(run(kWaferprov, {"ledger", "verify", "--ledger", job.ledger().string()}, job.log), 0)
        << read_text(job.log);
    auto l = host::Ledger::open_existing(job.ledger());
    ASSERT_TRUE(l.ok()) << l.error().message;
    std::map<std::pair<int, int>, host::LedgerRecord> by_location;
    std::set<wpid1::Uid> uids;
    size_t records = 0, packaged_records = 0;
    ASSERT_TRUE((*l)->for_each([&](const host::LedgerRecord& r) {
                        uids.insert(r.uid);
                        if (r.loc.packaged) {
                            ++packaged_records;
                            return ok_status();
                        }
                        ++records;
                        EXPECT_EQ(r.loc.lot, job.lot);
                        EXPECT_EQ(r.loc.wafer, job.wafer);
                        EXPECT_TRUE(by_location.emplace(std::pair{r.loc.x, r.loc.y}, r).second)
                            << "two identities at " << r.loc.describe();
                        return ok_status();
                    })
                    .ok());
    EXPECT_EQ(records, job.dies) << "identities in the ledger vs dies to provision";
    EXPECT_EQ(packaged_records, packaged) << "parts provisioned at final test";
    EXPECT_EQ(uids.size(), records + packaged_records) << "a UID twice";
    EXPECT_EQ((*l)->quota()->used, records + packaged_records);
    ASSERT_EQ(summary["dies"].size(), job.dies);
    for (const auto& d : summary["dies"]) {
        const auto at = std::pair{d["x"].get<int>(), d["y"].get<int>()};
        auto it = by_location.find(at);
        ASSERT_NE(it, by_location.end())
            << "die (" << at.first << ", " << at.second << ") is not in the ledger";
        const host::LedgerRecord& r = it->second;
        const std::string outcome = d["outcome"].get<std::string>();
        const std::string where = r.loc.describe();
        EXPECT_EQ(to_hex(r.uid), d["uid"].get<std::string>()) << where;
        if (outcome == "PROGRAMMED") {
            EXPECT_EQ(r.state, host::DieState::kProgrammed) << where;
        } else if (outcome == "FAILED") {
            EXPECT_EQ(r.state, host::DieState::kFailed) << where;
        } else {
            ADD_FAILURE() << where << ": the simulator reported no outcome (" << d.dump() << ")";
        }
        EXPECT_EQ(r.bin, d["bin"].get<std::string>()) << where;
        EXPECT_EQ(r.tester, "SIM-01") << where;
    }
}

}  // namespace waferprov::tester::e2e
