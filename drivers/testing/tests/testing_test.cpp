// The shared test helpers do what the tests rely on: a TempDir is unique and gone afterwards,
// child processes report exit status, signal and timeout, and their output lands in the log.
#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <thread>

#include "waferprov/testing/process.hpp"
#include "waferprov/testing/temp_dir.hpp"
#include "waferprov/testing/xml_walk.hpp"

namespace waferprov::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

TEST(TempDir, IsFreshUniqueAndRemovedWithItsContents) {
    fs::path kept;
    {
        TempDir a("unit");
        TempDir b("unit");
        ASSERT_TRUE(fs::is_directory(a.path()));
        EXPECT_NE(a.path(), b.path());
        EXPECT_TRUE(fs::is_empty(a.path()));
        EXPECT_EQ(a / "x", a.path() / "x");
        fs::create_directories(a / "sub/deeper");
        std::ofstream(a / "sub/file") << "data";
        kept = a.path();
    }
    EXPECT_FALSE(fs::exists(kept));
}

TEST(Process, ReportsExitStatusAndOutput) {
    TempDir dir("process");
    const auto log = dir / "log";
    EXPECT_EQ(run_process({"/bin/sh", "-c", "echo out; echo err >&2; exit 7"}, log), 7);
    const std::string text = read_text(log);
    EXPECT_NE(text.find("out\n"), std::string::npos);
    EXPECT_NE(text.find("err\n"), std::string::npos);
}

TEST(Process, ReportsSpawnFailureSignalAndTimeout) {
    TempDir dir("process");
    EXPECT_EQ(run_process({(dir / "no-such-program").string()}, dir / "log"), kSpawnFailed);
    EXPECT_EQ(run_process({"/bin/sh", "-c", "kill -TERM $$"}, dir / "log"), kProcessSignaled);
    EXPECT_EQ(run_process({"/bin/sleep", "30"}, dir / "log", milliseconds(100)), kProcessTimedOut);
}

TEST(Process, PollReportsRunningThenTheExitStatusOnce) {
    TempDir dir("process");
    const pid_t pid = spawn_process({"/bin/sh", "-c", "sleep 1; exit 5"}, dir / "log");
    ASSERT_GT(pid, 0);
    EXPECT_EQ(poll_process(pid), std::nullopt);
    std::optional<int> rc;
    for (int i = 0; i < 3000 && !rc; ++i) {
        rc = poll_process(pid);
        if (!rc) std::this_thread::sleep_for(milliseconds(10));
    }
    EXPECT_EQ(rc, std::optional<int>(5));
    EXPECT_EQ(poll_process(pid), std::optional<int>(kNoSuchProcess));  // reaped already
}

}  // namespace
}  // namespace waferprov::testing

TEST(XmlWalk, ListsElementsInOrderWithAttributesAndText) {
    const auto d = waferprov::testing::walk_xml(
        "<?xml version=\"1.0\"?>\n<svg a=\"1\"><g><rect class=\"c1\" x=\"2.5\"/>"
        "<text>a &amp; b</text></g></svg>");
    ASSERT_TRUE(d.ok) << d.error;
    ASSERT_EQ(d.elements.size(), 4u);
    EXPECT_EQ(d.elements[0].name, "svg");
    EXPECT_EQ(d.elements[0].attribute("a"), "1");
    EXPECT_EQ(d.elements[2].name, "rect");
    EXPECT_EQ(d.elements[2].attribute("class"), "c1");
    EXPECT_EQ(d.elements[2].attribute("x"), "2.5");
    EXPECT_EQ(d.elements[2].attribute("y"), "");
    EXPECT_EQ(d.text, "a & b");
}

TEST(XmlWalk, AMalformedDocumentIsNotOkAndSaysWhere) {
    const auto d = waferprov::testing::walk_xml("<svg>\n<g></svg>");
    EXPECT_FALSE(d.ok);
    EXPECT_NE(d.error.find("mismatched tag"), std::string::npos) << d.error;
    EXPECT_NE(d.error.find("line 2"), std::string::npos) << d.error;
}
