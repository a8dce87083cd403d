// `waferprov plan` as a planner runs it: one floor (its figures and bottleneck printed), a sweep
// (one table row and one plot marker per value, the plot a well-formed SVG read by expat, not by
// the code that wrote it), and bad input (errors name the file, the key or the parameter).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "waferprov/testing/cli.hpp"
#include "waferprov/testing/temp_dir.hpp"
#include "waferprov/testing/xml_walk.hpp"

namespace {

namespace fs = std::filesystem;
using waferprov::testing::CliRun;
using waferprov::testing::run_cli;
using waferprov::testing::TempDir;

// A small floor the model runs in a fraction of a second: 2 testers of 16 sites, a 150 mm
// wafer of 5 x 5 mm dies, 2 wafers each.
constexpr const char* kSmallFloor = R"([floor]
testers = 2
sites = 16
wafers_per_tester = 2
index_time_s = 0.5
program_time_s = 0.1
wafer_change_s = 10

[wafer]
diameter_mm = 150
die_mm = [5.0, 5.0]

[hosts]
count = 1

[cards]
per_host = 1
engines = 4
)";

fs::path write(const TempDir& dir, const std::string& name, const std::string& text) {
    const fs::path p = dir.path() / name;
    std::ofstream(p) << text;
    return p;
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

bool contains(const std::string& s, const std::string& what) {
    return s.find(what) != std::string::npos;
}

// What the plot holds, as an XML parser reads it.
struct Svg {
    bool ok = false;
    std::string error;
    std::string root;
    size_t points = 0;                       // <circle class="point">
    std::map<std::string, size_t> by_class;  // elements with a class attribute
    std::string text;                        // all character data
};

Svg parse_svg(const std::string& svg) {
    const auto xml = waferprov::testing::walk_xml(svg);
    Svg doc;
    doc.ok = xml.ok;
    doc.error = xml.error;
    doc.text = xml.text;
    if (!xml.elements.empty()) doc.root = xml.elements.front().name;
    for (const auto& e : xml.elements) {
        const std::string cls = e.attribute("class");
        if (cls.empty()) continue;
        doc.by_class[cls]++;
        if (e.name == "circle" && cls == "point") doc.points++;
    }
    return doc;
}

// The table rows of a sweep's output: the lines that start with a value of the parameter.
std::vector<std::string> rows_of(const std::string& out) {
    std::vector<std::string> rows;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line))
        if (!line.empty() && std::isdigit(static_cast<unsigned char>(line[0])))
            rows.push_back(line);
    return rows;
}

TEST(PlanCommand, SmallFloorPrintsThroughputUtilizationAndBottleneck) {
    TempDir dir;
    const fs::path floor = write(dir, "floor.toml", kSmallFloor);
    const CliRun r = run_cli(WAFERPROV_BINARY, {"plan", floor.string()}, dir.path());
    ASSERT_EQ(r.status, 0) << r.all();
    for (const char* what :
         {"dies/hour", "wafers/hour", "wafer time", "probers", "testers", "host signing",
          "host ledger", "card engines", "card PCIe link", "bottleneck"})
        EXPECT_TRUE(contains(r.out, what)) << what << "\n" << r.out;
    // 2 testers, 4 wafers, a tester-bound floor (0.6 s a touchdown, hosts nearly idle).
    EXPECT_TRUE(contains(r.out, "lot                4 wafers")) << r.out;
    EXPECT_TRUE(contains(r.out, "bottleneck         testers")) << r.out;
}

TEST(PlanCommand, SweepPrintsOneRowAndDrawsOnePointPerValue) {
    TempDir dir;
    const fs::path floor = write(dir, "floor.toml", kSmallFloor);
    const fs::path svg = dir.path() / "testers.svg";
    const CliRun r = run_cli(
        WAFERPROV_BINARY,
        {"plan", floor.string(), "--sweep", "testers=1..7:2", "--svg", svg.string()}, dir.path());
    ASSERT_EQ(r.status, 0) << r.all();
    const auto rows = rows_of(r.out);
    ASSERT_EQ(rows.size(), 4u) << r.out;  // 1, 3, 5, 7
    EXPECT_EQ(rows[0].rfind("1 ", 0), 0u) << rows[0];
    EXPECT_EQ(rows[3].rfind("7 ", 0), 0u) << rows[3];
    EXPECT_TRUE(contains(r.out, "bottleneck")) << r.out;

    Svg doc = parse_svg(slurp(svg));
    ASSERT_TRUE(doc.ok) << doc.error;
    EXPECT_EQ(doc.root, "svg");
    EXPECT_EQ(doc.points, 4u);
    EXPECT_EQ(doc.by_class["dies-per-hour"], 1u);
    EXPECT_EQ(doc.by_class["title"], 1u);
    EXPECT_EQ(doc.by_class["xlabel"], 1u);
    EXPECT_EQ(doc.by_class["ylabel"], 1u);
    EXPECT_TRUE(contains(doc.text, "testers = 7: ")) << doc.text;        // each marker's hover text
    EXPECT_TRUE(contains(doc.text, "bottleneck: testers")) << doc.text;  // the legend
}

// With one tiny host, adding testers ends on the host: the sweep names the shift.
TEST(PlanCommand, SweepShowsTheBottleneckMovingToTheHost) {
    TempDir dir;
    std::string text = kSmallFloor;
    text.replace(text.find("[hosts]\ncount = 1\n"), 17,
                 "[hosts]\ncount = 1\nsigning_threads = 1\nsign_per_s = 60\n");
    const fs::path floor = write(dir, "floor.toml", text);
    // No --svg: the plot goes to plan-sweep.svg in the working directory, the child's being
    // this process's.
    const fs::path cwd = fs::current_path();
    fs::current_path(dir.path());
    const CliRun r = run_cli(WAFERPROV_BINARY,
                             {"plan", floor.string(), "--sweep", "testers=1..8:7"}, dir.path());
    fs::current_path(cwd);
    ASSERT_EQ(r.status, 0) << r.all();
    const auto rows = rows_of(r.out);
    ASSERT_EQ(rows.size(), 2u) << r.out;
    EXPECT_TRUE(contains(rows[0], "testers (prober")) << rows[0];
    EXPECT_TRUE(contains(rows[1], "host signing")) << rows[1];
    // The default plot file, in the working directory.
    const Svg doc = parse_svg(slurp(dir.path() / "plan-sweep.svg"));
    ASSERT_TRUE(doc.ok) << doc.error;
    EXPECT_EQ(doc.points, 2u);
}

TEST(PlanCommand, ErrorsNameTheFileTheKeyOrTheParameter) {
    TempDir dir;
    const fs::path floor = write(dir, "floor.toml", kSmallFloor);
    struct Case {
        std::vector<std::string> args;
        int status;
        std::string names;
    };
    const fs::path missing = dir.path() / "nosuch.toml";
    const fs::path typo = write(dir, "typo.toml", "[floor]\nindex_time = 0.8\n");
    const fs::path range = write(dir, "range.toml", "[cards]\nengines = 40\n");
    const fs::path nomap = write(dir, "nomap.toml", "[wafer]\nmap = \"absent.xml\"\n");
    const std::vector<Case> cases = {
        {{"plan"}, 2, "FLOOR.toml is required"},
        {{"plan", missing.string()}, 1, "nosuch.toml: no such floor file"},
        {{"plan", typo.string()}, 1, "'floor.index_time' is not a known key"},
        {{"plan", range.string()}, 1, "'cards.engines'"},
        {{"plan", nomap.string()}, 1, "wafer.map"},
        {{"plan", floor.string(), "--sweep", "voltage=1..3"}, 1, "cannot sweep 'voltage'"},
        {{"plan", floor.string(), "--sweep", "engines=1..20"}, 1, "engines=17"},
        {{"plan", floor.string(), "--sweep", "testers=5..2"}, 2, "LO is greater than HI"},
        {{"plan", floor.string(), "--sweep", "testers=1-4"}, 2, "--sweep 'testers=1-4'"},
        {{"plan", floor.string(), "--sweep", "testers=1..4:0"}, 2, "STEP"},
        {{"plan", floor.string(), "--svg", "x.svg"}, 2, "--svg needs --sweep"},
        {{"plan", floor.string(), "--frobnicate"}, 2, "--frobnicate"},
    };
    for (const auto& c : cases) {
        const CliRun r = run_cli(WAFERPROV_BINARY, c.args, dir.path());
        EXPECT_EQ(r.status, c.status) << c.args.back() << "\n" << r.all();
        EXPECT_TRUE(contains(r.err, c.names)) << c.names << "\n" << r.all();
    }
}

}  // namespace
