// Test-only: the built `waferprov` run as a user runs it, its exit status and both output
// streams captured. Every CLI test (registered with waferprov_add_cli_test(), which defines
// WAFERPROV_BINARY) runs the command through run_cli().
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "waferprov/testing/process.hpp"

namespace waferprov::testing {

struct CliRun {
    int status = -1;  // exit status 0..255, or kProcessSignaled / kSpawnFailed / kProcessTimedOut
    std::string out;  // what the command wrote to stdout
    std::string err;  // ... and to stderr
    std::string all() const { return out + err; }
};

// Runs `binary args...` (no shell: each argument is passed as is) with stdout and stderr in
// files under `dir` (which must exist; overwritten by the next run in the same directory),
// waits at most `timeout`, and returns the status and both streams.
CliRun run_cli(const std::filesystem::path& binary, const std::vector<std::string>& args,
               const std::filesystem::path& dir,
               std::chrono::milliseconds timeout = std::chrono::minutes(5) * kSlowdown);

// Splits a command line at spaces (no quoting: for tests whose arguments contain none).
std::vector<std::string> split_args(const std::string& line);

}  // namespace waferprov::testing
