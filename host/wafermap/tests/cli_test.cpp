// `waferprov wafer` run as a floor engineer runs it: synth then info, and a bad map failing with
// the line in stderr. Runs the built binary (WAFERPROV_CLI).
#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/wait.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

namespace {

struct CliRun {
    int status = -1;
    std::string out, err;
};

class WaferCli : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("waferprov_wafer_cli_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    static std::string slurp(const fs::path& p) {
        std::ifstream in(p);
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }
    CliRun run(const std::string& args) {
        const std::string cmd = std::string(WAFERPROV_CLI) + " " + args + " >" +
                                (dir_ / "out").string() + " 2>" + (dir_ / "err").string();
        const int raw = std::system(cmd.c_str());
        CliRun r;
        r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
        r.out = slurp(dir_ / "out");
        r.err = slurp(dir_ / "err");
        return r;
    }
    fs::path path(const std::string& name) const { return dir_ / name; }

    fs::path dir_;
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
