// `waferprov wafer` run as a floor engineer runs it: synth then info, and a bad map failing with
// the line in stderr. Runs the built binary (WAFERPROV_BINARY).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "waferprov/testing/cli.hpp"
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
