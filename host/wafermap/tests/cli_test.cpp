// `waferprov wafer` run as a floor engineer runs it: synth then info, and a bad map failing with
// the line in stderr. Runs the built binary (WAFERPROV_BINARY).
#include <gtest/gtest.h>
#include <algorithm>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "waferprov/testing/cli.hpp"
#include "waferprov/testing/process.hpp"
#include "waferprov/testing/temp_dir.hpp"

namespace fs = std::filesystem;

namespace {

using waferprov::testing::CliRun;

class WaferCli : public ::testing::Test {
protected:
    CliRun run(const std::string& args) {
        return waferprov::testing::run_cli(WAFERPROV_BINARY, waferprov::testing::split_args(args),
                                           dir_.path());
    }
    fs::path path(const std::string& name) const { return dir_ / name; }

    waferprov::testing::TempDir dir_;
};

}  // namespace

TEST_F(WaferCli, SynthThenInfoReportsTheSameWafer) {
    const auto map = path("w.xml").string();
    CliRun s =
        run("wafer synth --diameter 300 --die 2x2 --lot LOTCLI --wafer 4 --seed 9 --out " + map);
    ASSERT_EQ(s.status, 0) << s.err;
    EXPECT_NE(s.out.find("gross dies"), std::string::npos) << s.out;
    CliRun i = run("wafer info --map " + map);
    ASSERT_EQ(i.status, 0) << i.err;
    EXPECT_NE(i.out.find("lot        LOTCLI"), std::string::npos) << i.out;
    EXPECT_NE(i.out.find("wafer      4"), std::string::npos) << i.out;
    EXPECT_NE(i.out.find("provision  "), std::string::npos) << i.out;
    CliRun b = run("wafer info --map " + map + " --bins 01,02");
    ASSERT_EQ(b.status, 0) << b.err;
    EXPECT_NE(b.out.find("(bins 01,02)"), std::string::npos) << b.out;
}

TEST_F(WaferCli, SinfSynthThenInfo) {
    const auto map = path("w.sinf").string();
    CliRun s = run("wafer synth --diameter 200 --die 5x5 --format sinf --out " + map);
    ASSERT_EQ(s.status, 0) << s.err;
    CliRun i = run("wafer info --map " + map);
    ASSERT_EQ(i.status, 0) << i.err;
    EXPECT_NE(i.out.find("(SINF, HexaDecimal bins)"), std::string::npos) << i.out;
}

TEST_F(WaferCli, BadMapFailsNamingTheLine) {
    const auto map = path("bad.xml");
    std::ofstream(map) << "<?xml version=\"1.0\"?>\n<MapData>\n<Layouts>\n</MapData>\n";
    CliRun i = run("wafer info --map " + map.string());
    EXPECT_EQ(i.status, 1);
    EXPECT_NE(i.err.find("line 4"), std::string::npos) << i.err;
    EXPECT_NE(i.err.find("malformed XML"), std::string::npos) << i.err;
}

TEST_F(WaferCli, UndefinedBinFails) {
    const auto map = path("w.xml").string();
    ASSERT_EQ(run("wafer synth --diameter 100 --die 4x4 --out " + map).status, 0);
    CliRun i = run("wafer info --map " + map + " --bins 01,77");
    EXPECT_EQ(i.status, 1);
    EXPECT_NE(i.err.find("bin '77' is not defined"), std::string::npos) << i.err;
}

TEST_F(WaferCli, BadCommandLineIsAUsageError) {
    EXPECT_EQ(run("wafer synth --diameter 300 --die 2by2 --out " + path("x").string()).status, 2);
    EXPECT_EQ(run("wafer synth --die 2x2 --out " + path("x").string()).status, 2);
    EXPECT_EQ(run("wafer info").status, 2);
    EXPECT_EQ(run("wafer frobnicate").status, 2);
}

// The bound on the command's memory. AddressSanitizer reserves terabytes of shadow address
// space at start, so under it (tools/test.sh --sanitize) the bound is its own resident-memory
// limit, which kills the command once it holds more than 1 GiB, instead of `ulimit -v`.
namespace {
std::string memory_bound() {
#if defined(__SANITIZE_ADDRESS__)
    const char* inherited = std::getenv("ASAN_OPTIONS");
    std::string options = inherited != nullptr ? std::string(inherited) + ":" : std::string();
    return "ASAN_OPTIONS='" + options + "hard_rss_limit_mb=1024' ";
#else
    return "ulimit -v 1048576; ";
#endif
}
}  // namespace

// Issue #11: hostile inputs to `run`, each refused with a message naming the file and what is
// wrong, in bounded memory: the command runs with at most 1 GiB (memory_bound()), so an
// input that made it grow without end (the lot copied per die, /dev/zero read to the end)
// fails the test by std::bad_alloc instead of the expected message.
TEST_F(WaferCli, HostileInputsToRunAreRefusedInBoundedMemory) {
    const auto job_dir = path("job");
    ASSERT_EQ(run("job init --out " + job_dir.string()).status, 0);
    const auto job = (job_dir / "job.toml").string();
    const auto map = path("w.xml");
    ASSERT_EQ(run("wafer synth --diameter 50 --die 2x2 --out " + map.string()).status, 0);
    const std::string limited = memory_bound() + std::string(WAFERPROV_BINARY);
    auto run_limited = [&](const std::string& args) {
        const std::string cmd =
            limited + " " + args + " >" + path("out").string() + " 2>" + path("err").string();
        const int raw = std::system(cmd.c_str());
        CliRun r;
        r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
        r.err = waferprov::testing::read_text(path("err"));
        return r;
    };

    // A 60 MB LotId (under the 64 MiB map cap) took `run` to 3.6 GB.
    std::string text = waferprov::testing::read_text(map);
    const std::string lot = "<LotId>SYNTH0001</LotId>";
    ASSERT_NE(text.find(lot), std::string::npos);
    const auto lot_line =
        1 + std::count(text.begin(), text.begin() + static_cast<long>(text.find(lot)), '\n');
    text.replace(text.find(lot), lot.size(), "<LotId>" + std::string(60u << 20, 'L') + "</LotId>");
    const auto hostile_map = path("hostile.xml");
    std::ofstream(hostile_map, std::ios::binary) << text;
    text.clear();
    text.shrink_to_fit();
    CliRun r = run_limited("run --job " + job + " --map " + hostile_map.string() +
                           " --wafer 1 --no-progress");
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find(hostile_map.string() + ": line " + std::to_string(lot_line) +
                         ": LotId: is 62914560 characters long; the limit is 256"),
              std::string::npos)
        << r.err;
    fs::remove(hostile_map);

    // A table header of 50,000 dotted parts crashed every command (exit 139).
    const auto dotted = path("dotted.toml");
    {
        std::ofstream out(dotted);
        out << waferprov::testing::read_text(job) << "\n[a";
        for (int i = 0; i < 50000; ++i) out << ".a";
        out << "]\n";
    }
    r = run_limited("run --job " + dotted.string() + " --map " + map.string());
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("a key of more than 32 dotted parts"), std::string::npos) << r.err;

    // A directory given as the job.
    r = run_limited("run --job " + job_dir.string() + " --map " + map.string());
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("job file " + job_dir.string() + " is a directory"), std::string::npos)
        << r.err;

    // wrapped_kik = "/dev/zero" grew run and serve without end.
    std::string job_text = waferprov::testing::read_text(job);
    const std::string kik = "wrapped_kik = \"kik.wrapped\"";
    ASSERT_NE(job_text.find(kik), std::string::npos) << job_text;
    job_text.replace(job_text.find(kik), kik.size(), "wrapped_kik = \"/dev/zero\"");
    const auto zero_job = job_dir / "zero.toml";
    std::ofstream(zero_job) << job_text;
    r = run_limited("run --job " + zero_job.string() + " --map " + map.string() + " --no-progress");
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("wrapped KIK /dev/zero is larger than the limit of 4096 bytes"),
              std::string::npos)
        << r.err;
}
