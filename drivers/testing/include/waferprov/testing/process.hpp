// Test-only helpers: child processes (the built `waferprov`, `waferprov serve`, the tester
// simulator, example programs) run with their output in log files, and reading those files.
// POSIX only (posix_spawn, waitpid). Used by tests and benchmarks, never by the product.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace waferprov::testing {

// What wait_process() and run_process() return instead of an exit status (which is 0..255).
inline constexpr int kProcessSignaled = -1;  // a signal ended the process
inline constexpr int kSpawnFailed = -2;      // run_process(): the program could not be started
inline constexpr int kProcessTimedOut = -3;  // the timeout passed: it was SIGKILLed and reaped
inline constexpr int kNoSuchProcess = -4;    // waitpid() failed: not a child, or already reaped

// How many times slower programs run in this build: 4 under AddressSanitizer (tools/test.sh
// --sanitize, where a Verilator model runs about ten times slower), else 1. Tests scale the
// limits they put on child processes by it, as waferprov_add_test scales CTest's.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr int kSlowdown = 4;
#else
inline constexpr int kSlowdown = 1;
#endif

// A timeout for wait_process()/run_process() that never passes: a plain blocking wait.
inline constexpr std::chrono::milliseconds kNoTimeout = std::chrono::milliseconds::max();

// Starts argv[0] (a path, not looked up on PATH) with the arguments argv[1..], in this
// process's environment and working directory, and returns at once.
// stdout goes to `out`; stderr goes to `err`, or to `out` as well when `err` is empty or the
// same path (one open file: the two streams interleave in the order written). The files are
// created with mode 0644 if missing, and appended to (`append`) or truncated first.
// Returns the child's pid, which the caller must reap (wait_process()); -1 if argv is empty or
// the program could not be started.
// Thread-safety: may be called from several threads at once; file descriptors another thread
// opens without O_CLOEXEC at the same moment are inherited by the child, as with any spawn.
pid_t spawn_process(const std::vector<std::string>& argv, const std::filesystem::path& out,
                    const std::filesystem::path& err = {}, bool append = true);

// Waits for the child `pid` to end, at most `timeout` (kNoTimeout: without limit; a negative
// timeout counts as zero). Returns its exit status (0..255); kProcessSignaled if a signal ended
// it; kProcessTimedOut if it was still running at the timeout, in which case it has been
// SIGKILLed and reaped; kNoSuchProcess if `pid` is not an unreaped child of this process.
// In every case the child has been reaped when this returns. Polls every 10 ms when a timeout
// is given; interrupted system calls (EINTR) are retried.
// Thread-safety: safe for different children from different threads; one child must be waited
// for by one thread only, and not also reaped elsewhere (e.g. by waitpid(-1, ...)).
int wait_process(pid_t pid, std::chrono::milliseconds timeout);

// Whether the child `pid` has ended, without waiting: nullopt while it runs; once it has ended
// it is reaped and its status is returned as wait_process() gives it (kNoSuchProcess if `pid`
// is not an unreaped child). Thread-safety as wait_process().
std::optional<int> poll_process(pid_t pid);

// spawn_process(argv, log) with stdout and stderr appended to `log`, then
// wait_process(pid, timeout): the command's exit status, or kSpawnFailed, kProcessSignaled or
// kProcessTimedOut. Thread-safety: as spawn_process() and wait_process().
int run_process(const std::vector<std::string>& argv, const std::filesystem::path& log,
                std::chrono::milliseconds timeout = std::chrono::minutes(10));

// The whole content of the file at `path`, byte for byte; "" if it cannot be opened (e.g. a log
// a child has not created yet). Thread-safety: safe to call from any thread; reading a file a
// child is still writing gives what was written so far.
std::string read_text(const std::filesystem::path& path);

}  // namespace waferprov::testing
