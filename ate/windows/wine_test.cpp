// waferprov_ate.dll under Wine against a real `waferprov serve` over CurveZMQ on loopback: the
// example C program cross-built for Windows runs a lot (HELLO, touchdowns, results, BYE) while
// the host is killed -9 and restarted between two touchdowns, so the library's resend after
// NO_SESSION runs inside the DLL. The job, the keys and the server are the Linux build's, as in
// ate_server_test; the only thing that is Windows is the tester. No mocks.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "serve_process.hpp"
#include "waferprov/test_vectors.hpp"
#include "waferprov/testing/process.hpp"
#include "waferprov/testing/temp_dir.hpp"

namespace waferprov::ate_test {
namespace {

namespace ref = waferprov::reference;
using Clock = std::chrono::steady_clock;

const fs::path kWaferprov = WAFERPROV_BINARY;
const fs::path kWine = WAFERPROV_WINE64;
const fs::path kExample = WAFERPROV_ATE_WINDOWS_EXAMPLE;  // example_test_program.exe
const fs::path kWinePrefix = WAFERPROV_WINEPREFIX;

// A Linux path as the Windows program sees it: Wine maps drive Z: to /.
std::string windows_path(const fs::path& p) { return "Z:" + p.generic_string(); }

// Waits until `log` contains `text`, at most `timeout`, or the process `pid` ends first.
bool wait_for_output(const fs::path& log, const std::string& text, pid_t pid,
                     std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        if (waferprov::testing::read_text(log).find(text) != std::string::npos) return true;
        if (::kill(pid, 0) != 0) return false;  // reaped: not our child any more
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

class AteWine : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        // The prefix ate.windows.wineprefix made (CTest fixture); quiet Wine.
        ::setenv("WINEPREFIX", kWinePrefix.c_str(), 1);
        ::setenv("WINEDEBUG", "-all", 1);
    }

    void SetUp() override {
        ASSERT_TRUE(fs::exists(kWinePrefix / "system.reg"))
            << kWinePrefix << " is not a Wine prefix (ctest runs ate.windows.wineprefix first)";
        ASSERT_TRUE(fs::exists(kExample)) << kExample << " was not built";
        ASSERT_TRUE(serve_available(kWaferprov, dir_.path()));
        ASSERT_EQ(make_dev_job(kWaferprov, dir_.path() / "job", "J1", {"ATE-1"}, job_), "");
        start_server();
    }

    void start_server(const std::string& bind = "tcp://127.0.0.1:0") {
        std::string err;
        server_.reset();
        server_ = ServeProcess::start(
            kWaferprov, {"--job", job_.job_file().string(), "--bind", bind, "--threads", "2"},
            dir_.path() / ("serve-" + std::to_string(++starts_)), err);
        ASSERT_NE(server_, nullptr) << err;
    }

    // wine64 example_test_program.exe ENDPOINT SERVER_PUB TESTER_KEY J1 tester [extra...]
    std::vector<std::string> example_argv(const std::string& tester,
                                          const std::vector<std::string>& extra) const {
        std::vector<std::string> argv = {kWine.string(),
                                         kExample.string(),
                                         server_->endpoint(),
                                         windows_path(job_.dir / "server.pub"),
                                         windows_path(job_.tester_key("ATE-1")),
                                         "J1",
                                         tester};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return argv;
    }

    waferprov::testing::TempDir dir_{"ate_wine"};
    DevJob job_;
    std::unique_ptr<ServeProcess> server_;
    int starts_ = 0;
};

// A lot of three touchdowns; between the first and the second the host is killed -9 and started
// again on the same port. The example waits on stdin (--step) where a real program waits for
// the prober, which is when the test restarts the host.
TEST_F(AteWine, ExampleRunsALotAcrossAHostRestart) {
    const fs::path fifo = dir_.path() / "prober";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    const fs::path log = dir_.path() / "example.log";
    // stdin from the FIFO: the shell opens it and then becomes wine64.
    std::vector<std::string> argv = {"/bin/sh", "-c", "exec \"$@\" < \"$0\"", fifo.string()};
    for (auto& a : example_argv("ATE-1", {"LOT-WINE", "1", "--step"})) argv.push_back(a);
    const pid_t pid = waferprov::testing::spawn_process(argv, log, {}, /*append=*/false);
    ASSERT_GT(pid, 0);
    // Opening for writing waits for the shell to open the reading end.
    const int prober = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(prober, 0);
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{prober};

    // Touchdown 1 (session 1), then the program waits for the prober.
    ASSERT_TRUE(wait_for_output(log, "touchdown 2: waiting", pid, std::chrono::seconds(180)))
        << waferprov::testing::read_text(log) << "\nserver log:\n"
        << server_->log();
    const std::string endpoint = server_->endpoint();
    server_->kill_hard();
    start_server(endpoint);
    ASSERT_EQ(server_->endpoint(), endpoint);
    ASSERT_EQ(::write(prober, "\n", 1), 1);
    // Touchdown 2 goes to the new host: NO_SESSION, HELLO again, the touchdown resent.
    ASSERT_TRUE(wait_for_output(log, "touchdown 3: waiting", pid, std::chrono::seconds(120)))
        << waferprov::testing::read_text(log) << "\nserver log:\n"
        << server_->log();
    ASSERT_EQ(::write(prober, "\n", 1), 1);

    const int status = waferprov::testing::wait_process(pid, std::chrono::seconds(120));
    const std::string out = waferprov::testing::read_text(log);
    EXPECT_EQ(status, 0) << out << "\nserver log:\n" << server_->log();
    EXPECT_NE(out.find("the host restarted: session"), std::string::npos) << out;
    EXPECT_NE(out.find("done: 3 touchdowns, 0 refusals"), std::string::npos) << out;
    // 4 sites x 3 touchdowns, each programmed and acknowledged.
    size_t programmed = 0;
    for (size_t at = out.find(": program uid "); at != std::string::npos;
         at = out.find(": program uid ", at + 1))
        ++programmed;
    EXPECT_EQ(programmed, 12u) << out;
    // The restarted host saw the DLL's new HELLO, with this machine's name as the node (Wine
    // passes the host name through GetComputerNameExA), and its BYE at the end.
    std::array<char, 256> host{};
    ASSERT_EQ(::gethostname(host.data(), host.size() - 1), 0);
    const std::string log2 = server_->log();
    EXPECT_NE(log2.find("opened: tester ATE-1 (node '" + std::string(host.data()) + "'"),
              std::string::npos)
        << log2;
    EXPECT_NE(log2.find("session of tester ATE-1 closed (BYE)"), std::string::npos) << log2;
    EXPECT_EQ(server_->stop(), 0) << log2;
}

// The failure path through the DLL: a key the job binds to another tester id.
TEST_F(AteWine, ExampleReportsATesterTheHostDoesNotAdmit) {
    const RunResult r = run_command(example_argv("ATE-2", {}), dir_.path() / "example-bad.log",
                                    std::chrono::seconds(180));
    EXPECT_EQ(r.exit_status, 2) << r.output;
    EXPECT_NE(r.output.find("NOT_ADMITTED"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace waferprov::ate_test
