// SEMI E142 reading: the coordinate convention under every OriginLocation/AxisDirection (on a
// small asymmetric map, expectations written out by hand), the Coordinate form and the writer
// agreeing with the 2DArray form, DeviceIdMap UIDs, die selection, and one test per bad input
// asserting that the error names the line.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "line_of.hpp"
#include "waferprov/bytes.hpp"
#include "waferprov/host/wafermap.hpp"

using namespace waferprov;
using namespace waferprov::host;

namespace {

// A small map, one element per line so that tests can find the line of each.
struct Doc {
    std::string origin;  // OriginLocation attribute value; empty: attribute absent
    std::string axis;
    std::string dimension = R"(X="3" Y="2")";
    std::string bin_code_map = R"(BinType="Ascii" NullBin="." MapType="2DArray")";
    std::vector<std::string> definitions = {
        R"(<BinDefinition BinCode="A" BinQuality="Pass" BinDescription="good" Pick="true"/>)",
        R"(<BinDefinition BinCode="B" BinQuality="Fail" BinDescription="scan"/>)",
        R"(<BinDefinition BinCode="C" BinQuality="Fail"/>)",
        R"(<BinDefinition BinCode="D" BinQuality="Fail"/>)",
        R"(<BinDefinition BinCode="E" BinQuality="Fail"/>)",
        R"(<BinDefinition BinCode="F" BinQuality="Fail"/>)"};
    // The picture: first row is the top row.
    std::vector<std::string> codes = {"<BinCode>ABC</BinCode>", "<BinCode>DEF</BinCode>"};
    std::string substrate = "<LotId>LOT42</LotId>\n<SlotNumber>7</SlotNumber>";
    std::string substrate_id = "LOT42-07";
    std::string extra_overlay;
    std::string prolog;

    std::string xml() const {
        std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + prolog +
                        "<MapData xmlns=\"urn:semi-org:xsd.E142-1.V1005.SubstrateMap\">\n"
                        "<Layouts>\n"
                        "<Layout LayoutId=\"Devices\" DefaultUnits=\"mm\">\n"
                        "<Dimension " +
                        dimension +
                        "/>\n"
                        "<StepSize X=\"2.5\" Y=\"3\"/>\n"
                        "<ProductId>CHIP9</ProductId>\n"
                        "</Layout>\n"
                        "</Layouts>\n"
                        "<Substrates>\n"
                        "<Substrate SubstrateType=\"Wafer\" SubstrateId=\"" +
                        substrate_id + "\">\n" + substrate +
                        "\n</Substrate>\n"
                        "</Substrates>\n"
                        "<SubstrateMaps>\n"
                        "<SubstrateMap SubstrateType=\"Wafer\" SubstrateId=\"" +
                        substrate_id + "\"";
        if (!origin.empty()) s += " OriginLocation=\"" + origin + "\"";
        if (!axis.empty()) s += " AxisDirection=\"" + axis + "\"";
        s += ">\n<Overlay MapName=\"Sort\">\n<BinCodeMap " + bin_code_map + ">\n<BinDefinitions>\n";
        for (const auto& d : definitions) s += d + "\n";
        s += "</BinDefinitions>\n";
        for (const auto& c : codes) s += c + "\n";
        s += "</BinCodeMap>\n</Overlay>\n" + extra_overlay +
             "</SubstrateMap>\n</SubstrateMaps>\n</MapData>\n";
        return s;
    }
};

using waferprov::host::testing::line_of;

const MapDie* die_with_bin(const WaferMap& m, const std::string& bin) {
    for (const auto& d : m.dies)
        if (d.bin == bin) return &d;
    return nullptr;
}

// Expects reading `xml` to fail with a message naming `line` and containing `text`.
void expect_error(const std::string& xml, int line, const std::string& text) {
    auto r = read_e142(xml, "t.xml");
    ASSERT_FALSE(r.ok()) << "accepted:\n" << xml;
    const std::string msg = r.error().message;
    EXPECT_NE(msg.find("t.xml: line " + std::to_string(line) + ":"), std::string::npos)
        << "wanted line " << line << " in: " << msg;
    EXPECT_NE(msg.find(text), std::string::npos) << "wanted '" << text << "' in: " << msg;
}

struct OriginCase {
    const char* origin;
    const char* axis;
    int ax, ay;  // where the top-left die (bin A) lands
    int fx, fy;  // where the bottom-right die (bin F) lands
};

// The picture is   A B C   (top row)
//                  D E F
// x counts columns from the origin die in the axis's horizontal sense, y rows in its vertical
// sense (docs/wafer-maps.md); Center is the left/upper of the middle dies, here B.
const OriginCase kOriginCases[] = {
    {"LowerLeft", "UpRight", 0, 1, 2, 0},    {"LowerLeft", "DownRight", 0, -1, 2, 0},
    {"LowerLeft", "UpLeft", 0, 1, -2, 0},    {"LowerLeft", "DownLeft", 0, -1, -2, 0},
    {"UpperLeft", "UpRight", 0, 0, 2, -1},   {"UpperLeft", "DownRight", 0, 0, 2, 1},
    {"UpperLeft", "UpLeft", 0, 0, -2, -1},   {"UpperLeft", "DownLeft", 0, 0, -2, 1},
    {"UpperRight", "UpRight", -2, 0, 0, -1}, {"UpperRight", "DownRight", -2, 0, 0, 1},
    {"UpperRight", "UpLeft", 2, 0, 0, -1},   {"UpperRight", "DownLeft", 2, 0, 0, 1},
    {"LowerRight", "UpRight", -2, 1, 0, 0},  {"LowerRight", "DownRight", -2, -1, 0, 0},
    {"LowerRight", "UpLeft", 2, 1, 0, 0},    {"LowerRight", "DownLeft", 2, -1, 0, 0},
    {"Center", "UpRight", -1, 0, 1, -1},     {"Center", "DownRight", -1, 0, 1, 1},
    {"Center", "UpLeft", 1, 0, -1, -1},      {"Center", "DownLeft", 1, 0, -1, 1},
};

std::vector<std::tuple<int, int, std::string>> dies_of(const WaferMap& m) {
    std::vector<std::tuple<int, int, std::string>> out;
    for (const auto& d : m.dies) out.emplace_back(d.x, d.y, d.bin);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

TEST(E142Reader, ReadsLayoutSubstrateBinsAndDies) {
    auto m = read_e142(Doc{}.xml());
    ASSERT_TRUE(m.ok()) << m.error().describe();
    EXPECT_EQ(m->format, "E142");
    EXPECT_EQ(m->lot, "LOT42");
    EXPECT_EQ(m->wafer, 7);
    EXPECT_EQ(m->substrate_id, "LOT42-07");
    EXPECT_EQ(m->device, "CHIP9");
    EXPECT_EQ(m->columns, 3);
    EXPECT_EQ(m->rows, 2);
    EXPECT_DOUBLE_EQ(m->die_width_mm, 2.5);
    EXPECT_DOUBLE_EQ(m->die_height_mm, 3);
    EXPECT_EQ(m->origin, "LowerLeft");  // the E142 defaults
    EXPECT_EQ(m->axis, "UpRight");
    EXPECT_EQ(m->bin_type, "Ascii");
    EXPECT_EQ(m->null_bin, ".");
    EXPECT_EQ(m->bin_descriptions.at("A"), "good (Pass)");
    EXPECT_EQ(m->good_bins, std::vector<std::string>{"A"});
    ASSERT_EQ(m->dies.size(), 6u);
    // Picture order: top row first.
    EXPECT_EQ(m->dies.front().bin, "A");
    EXPECT_EQ(m->dies.back().bin, "F");
}

TEST(E142Reader, EveryOriginAndAxisPlacesTheAsymmetricMapAsDocumented) {
    for (const auto& c : kOriginCases) {
        SCOPED_TRACE(std::string(c.origin) + " " + c.axis);
        Doc doc;
        doc.origin = c.origin;
        doc.axis = c.axis;
        auto m = read_e142(doc.xml());
        ASSERT_TRUE(m.ok()) << m.error().describe();
        EXPECT_EQ(m->origin, c.origin);
        EXPECT_EQ(m->axis, c.axis);
        const MapDie* a = die_with_bin(*m, "A");
        const MapDie* f = die_with_bin(*m, "F");
        ASSERT_TRUE(a && f);
        EXPECT_EQ(a->x, c.ax);
        EXPECT_EQ(a->y, c.ay);
        EXPECT_EQ(f->x, c.fx);
        EXPECT_EQ(f->y, c.fy);
        // B is A's right-hand neighbour and D the one below, whatever the axes.
        const MapDie* b = die_with_bin(*m, "B");
        const MapDie* d = die_with_bin(*m, "D");
        const int sx = std::string(c.axis).find("Right") != std::string::npos ? 1 : -1;
        const int sy = std::string(c.axis).find("Up") != std::string::npos ? 1 : -1;
        EXPECT_EQ(b->x - a->x, sx);
        EXPECT_EQ(b->y, a->y);
        EXPECT_EQ(d->y - a->y, -sy);
        EXPECT_EQ(d->x, a->x);
        // The origin die is at (0, 0).
        EXPECT_EQ(std::count_if(m->dies.begin(), m->dies.end(),
                                [](const MapDie& x) { return x.x == 0 && x.y == 0; }),
                  1);
    }
}

TEST(E142Reader, CoordinateFormAgreesWith2DArrayForEveryOriginAndAxis) {
    for (const auto& c : kOriginCases) {
        SCOPED_TRACE(std::string(c.origin) + " " + c.axis);
        Doc grid;
        grid.origin = c.origin;
        grid.axis = c.axis;
        grid.codes = {"<BinCode>AB.</BinCode>", "<BinCode>DEF</BinCode>"};
        auto from_grid = read_e142(grid.xml());
        ASSERT_TRUE(from_grid.ok()) << from_grid.error().describe();
        ASSERT_EQ(from_grid->dies.size(), 5u);

        Doc coord = grid;
        coord.bin_code_map = R"(BinType="Ascii" NullBin="." MapType="Coordinate")";
        coord.codes.clear();
        for (const auto& d : from_grid->dies)
            coord.codes.push_back("<BinCode X=\"" + std::to_string(d.x) + "\" Y=\"" +
                                  std::to_string(d.y) + "\">" + d.bin + "</BinCode>");
        std::reverse(coord.codes.begin(), coord.codes.end());  // order does not matter
        auto from_coord = read_e142(coord.xml());
        ASSERT_TRUE(from_coord.ok()) << from_coord.error().describe();
        EXPECT_EQ(dies_of(*from_coord), dies_of(*from_grid));
        // Same canonical (picture) order too.
        for (size_t i = 0; i < from_grid->dies.size(); ++i)
            EXPECT_EQ(from_coord->dies[i].bin, from_grid->dies[i].bin);
    }
}

TEST(E142Writer, RoundTripsEveryOriginAndAxis) {
    for (const auto& c : kOriginCases) {
        SCOPED_TRACE(std::string(c.origin) + " " + c.axis);
        Doc doc;
        doc.origin = c.origin;
        doc.axis = c.axis;
        auto m = read_e142(doc.xml());
        ASSERT_TRUE(m.ok()) << m.error().describe();
        m->dies[2].uid = wpid1::Uid{0xde, 0xad, 0xbe, 0xef};
        auto xml = write_e142(*m);
        ASSERT_TRUE(xml.ok()) << xml.error().describe();
        auto back = read_e142(*xml);
        ASSERT_TRUE(back.ok()) << back.error().describe() << "\n" << *xml;
        EXPECT_EQ(dies_of(*back), dies_of(*m));
        EXPECT_EQ(back->dies[2].uid, m->dies[2].uid);
        EXPECT_EQ(back->origin, c.origin);
        EXPECT_EQ(back->lot, "LOT42");
        EXPECT_EQ(back->wafer, 7);
    }
}

TEST(E142Reader, HexaDecimalRowsIgnoreCaseAndBlanksAndSkipTheNullBin) {
    Doc doc;
    doc.bin_code_map = R"(BinType="HexaDecimal" NullBin="ff" MapType="2DArray")";
    doc.definitions = {R"(<BinDefinition BinCode="01" BinQuality="Pass" BinCount="3"/>)",
                       R"(<BinDefinition BinCode="0a" BinQuality="Fail" BinCount="1"/>)"};
    doc.codes = {"<BinCode>FF0101</BinCode>", "<BinCode>\n  01 0A ff\n</BinCode>"};
    auto m = read_e142(doc.xml());
    ASSERT_TRUE(m.ok()) << m.error().describe();
    EXPECT_EQ(m->null_bin, "FF");
    ASSERT_EQ(m->dies.size(), 4u);
    EXPECT_EQ(count_by_bin(*m).at("0A"), 1u);
    auto picked = select_dies(*m, {"0a"});
    ASSERT_TRUE(picked.ok()) << picked.error().describe();
    ASSERT_EQ(picked->size(), 1u);
    EXPECT_EQ(picked->front().x, 1);
    EXPECT_EQ(picked->front().y, 0);
}

TEST(E142Reader, Integer2UsesFourHexDigitsPerDie) {
    Doc doc;
    doc.bin_code_map = R"(BinType="Integer2" NullBin="FFFF")";  // MapType defaults to 2DArray
    doc.definitions = {R"(<BinDefinition BinCode="0001" BinQuality="Pass"/>)",
                       R"(<BinDefinition BinCode="0102" BinQuality="Fail"/>)"};
    doc.codes = {"<BinCode>000101020001</BinCode>", "<BinCode>FFFF00010001</BinCode>"};
    auto m = read_e142(doc.xml());
    ASSERT_TRUE(m.ok()) << m.error().describe();
    EXPECT_EQ(m->dies.size(), 5u);
    EXPECT_EQ(count_by_bin(*m).at("0102"), 1u);
}

TEST(E142Reader, DecimalRowsAreSeparatedCodes) {
    Doc doc;
    doc.bin_code_map = R"(BinType="Decimal" NullBin="255")";
    doc.definitions = {R"(<BinDefinition BinCode="1" BinQuality="Pass"/>)",
                       R"(<BinDefinition BinCode="17" BinQuality="Fail"/>)"};
    doc.codes = {"<BinCode>1,17,255</BinCode>", "<BinCode>001 1 1</BinCode>"};
    auto m = read_e142(doc.xml());
    ASSERT_TRUE(m.ok()) << m.error().describe();
    EXPECT_EQ(m->dies.size(), 5u);
    EXPECT_EQ(count_by_bin(*m).at("1"), 4u);
    EXPECT_TRUE(select_dies(*m, {"01"}).ok());
}

TEST(E142Reader, DeviceIdMapGivesDiesTheirUids) {
    Doc doc;
    doc.extra_overlay =
        "<Overlay MapName=\"DeviceIds\">\n<DeviceIdMap>\n"
        "<DeviceId X=\"0\" Y=\"1\">00112233445566778899AABBCCDDEEFF</DeviceId>\n"
        "<DeviceId X=\"2\" Y=\"0\">ffeeddccbbaa99887766554433221100</DeviceId>\n"
        "</DeviceIdMap>\n</Overlay>\n";
    auto m = read_e142(doc.xml());
    ASSERT_TRUE(m.ok()) << m.error().describe();
    const MapDie* a = die_with_bin(*m, "A");  // LowerLeft/UpRight: A is (0, 1)
    const MapDie* f = die_with_bin(*m, "F");  // F is (2, 0)
    ASSERT_TRUE(a->uid && f->uid);
    EXPECT_EQ((*a->uid)[0], 0x00);
    EXPECT_EQ((*a->uid)[15], 0xff);
    EXPECT_EQ((*f->uid)[0], 0xff);
    EXPECT_FALSE(die_with_bin(*m, "B")->uid);
}

TEST(E142Reader, PrefixedNamespaceAndMultipleLayoutsAreRead) {
    const std::string xml =
        "<e:MapData xmlns:e=\"urn:semi-org:xsd.E142-1.V1005.SubstrateMap\">\n"
        "<e:Layouts><e:Layout LayoutId=\"Wafer\"><e:Dimension X=\"1\" Y=\"1\"/>"
        "<e:ChildLayouts><e:ChildLayout LayoutId=\"Dev\"/></e:ChildLayouts></e:Layout>\n"
        "<e:Layout LayoutId=\"Dev\"><e:Dimension X=\"2\" Y=\"1\"/></e:Layout></e:Layouts>\n"
        "<e:Substrates><e:Substrate SubstrateId=\"W\"><e:LotId>L</e:LotId>"
        "<e:SlotNumber>3</e:SlotNumber></e:Substrate></e:Substrates>\n"
        "<e:SubstrateMaps><e:SubstrateMap SubstrateId=\"W\"><e:Overlay>"
        "<e:BinCodeMap BinType=\"ASCII\" NullBin=\".\"><e:BinDefinitions>"
        "<e:BinDefinition BinCode=\"1\"/></e:BinDefinitions><e:BinCode>1.</e:BinCode>"
        "</e:BinCodeMap></e:Overlay></e:SubstrateMap></e:SubstrateMaps></e:MapData>\n";
    auto m = read_e142(xml);
    ASSERT_TRUE(m.ok()) << m.error().describe();
    EXPECT_EQ(m->columns, 2);
    EXPECT_EQ(m->dies.size(), 1u);
    EXPECT_EQ(m->wafer, 3);
}

// The wafer's size and notch: a 1 x 1 wafer layout around the dies gives the diameter (in its
// DefaultUnits), the SubstrateMap's Orientation the notch; the die layout's units scale the
// step size.
std::string geometry_map(const std::string& wafer_layout, const std::string& orientation,
                         const std::string& die_units = "mm", const std::string& step = "2.5") {
    return "<MapData xmlns=\"urn:semi-org:xsd.E142-1.V1005.SubstrateMap\">\n"
           "<Layouts>\n" +
           wafer_layout + "<Layout LayoutId=\"Dev\" DefaultUnits=\"" + die_units +
           "\"><Dimension X=\"2\" Y=\"1\"/><StepSize X=\"" + step + "\" Y=\"" + step +
           "\"/></Layout>\n"
           "</Layouts>\n"
           "<Substrates><Substrate SubstrateId=\"W\"><LotId>L</LotId>"
           "<SlotNumber>3</SlotNumber></Substrate></Substrates>\n"
           "<SubstrateMaps><SubstrateMap SubstrateId=\"W\" LayoutSpecifier=\"Wafer/Dev\"" +
           orientation +
           ">\n<Overlay><BinCodeMap BinType=\"Ascii\" NullBin=\".\"><BinDefinitions>"
           "<BinDefinition BinCode=\"1\"/></BinDefinitions><BinCode>1.</BinCode>"
           "</BinCodeMap></Overlay></SubstrateMap></SubstrateMaps></MapData>\n";
}
const char* const kWaferLayout200 =
    "<Layout LayoutId=\"Wafer\" DefaultUnits=\"micron\"><Dimension X=\"1\" Y=\"1\"/>"
    "<DeviceSize X=\"200000\" Y=\"200000\"/>"
    "<ChildLayouts><ChildLayout LayoutId=\"Dev\"/></ChildLayouts></Layout>\n";

TEST(E142Reader, WaferDiameterNotchAndUnitsAreRead) {
    auto m = read_e142(geometry_map(kWaferLayout200, " Orientation=\"270\"", "micron", "2500"));
    ASSERT_TRUE(m.ok()) << m.error().describe();
    EXPECT_DOUBLE_EQ(m->wafer_diameter_mm, 200.0);
    EXPECT_EQ(m->flat_deg, 270);
    EXPECT_DOUBLE_EQ(m->die_width_mm, 2.5);
    // Without them: unknown (0 and -1), never a guess.
    auto bare = read_e142(geometry_map("<Layout LayoutId=\"Wafer\"/>\n", ""));
    ASSERT_TRUE(bare.ok()) << bare.error().describe();
    EXPECT_EQ(bare->wafer_diameter_mm, 0.0);
    EXPECT_EQ(bare->flat_deg, -1);
    EXPECT_DOUBLE_EQ(bare->die_width_mm, 2.5);
}

TEST(E142BadMap, BadOrientationAndUnitsAreRefusedNamingTheLine) {
    std::string xml = geometry_map(kWaferLayout200, " Orientation=\"up\"");
    expect_error(xml, line_of(xml, "<SubstrateMap"), "Orientation 'up'");
    xml = geometry_map(kWaferLayout200, " Orientation=\"360\"");
    expect_error(xml, line_of(xml, "<SubstrateMap"), "Orientation '360'");
    xml = geometry_map(kWaferLayout200, "", "furlong");
    expect_error(xml, line_of(xml, "<Layout LayoutId=\"Dev\""), "DefaultUnits 'furlong'");
}

TEST(E142Writer, DiameterAndNotchRoundTrip) {
    auto m = read_e142(geometry_map(kWaferLayout200, " Orientation=\"90\""));
    ASSERT_TRUE(m.ok()) << m.error().describe();
    auto text = write_e142(*m);
    ASSERT_TRUE(text.ok()) << text.error().describe();
    auto back = read_e142(*text);
    ASSERT_TRUE(back.ok()) << back.error().describe() << "\n" << *text;
    EXPECT_DOUBLE_EQ(back->wafer_diameter_mm, 200.0);
    EXPECT_EQ(back->flat_deg, 90);
    EXPECT_EQ(back->dies.size(), m->dies.size());
}

// ---- die selection ----

TEST(SelectDies, ReturnsTheDiesOfTheRequestedBins) {
    auto m = read_e142(Doc{}.xml());
    ASSERT_TRUE(m.ok());
    auto s = select_dies(*m, {"A", "E"});
    ASSERT_TRUE(s.ok()) << s.error().describe();
    ASSERT_EQ(s->size(), 2u);
    EXPECT_EQ((*s)[0].bin, "A");
    EXPECT_EQ((*s)[1].bin, "E");
}

TEST(SelectDies, RefusesABinTheMapDoesNotDefine) {
    auto m = read_e142(Doc{}.xml());
    ASSERT_TRUE(m.ok());
    auto s = select_dies(*m, {"A", "Z"});
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("'Z' is not defined"), std::string::npos) << s.error().message;
    EXPECT_FALSE(select_dies(*m, {"a"}).ok());  // Ascii codes are case-sensitive
}

TEST(SelectDies, RefusesAnEmptyBinList) {
    auto m = read_e142(Doc{}.xml());
    ASSERT_TRUE(m.ok());
    EXPECT_FALSE(select_dies(*m, {}).ok());
}

// ---- bad maps: each names its line ----

TEST(E142BadMap, MalformedXmlNamesTheLine) {
    Doc doc;
    doc.codes = {"<BinCode>ABC</BinCode>", "<BinCode>DEF</BinCod>"};
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "<BinCode>DEF"), "malformed XML");
}

TEST(E142BadMap, TruncatedFileIsMalformed) {
    const std::string xml = Doc{}.xml();
    auto r = read_e142(xml.substr(0, xml.size() / 2), "t.xml");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("malformed XML"), std::string::npos) << r.error().message;
}

TEST(E142BadMap, CoordinateOutsideTheLayoutIsRefused) {
    Doc doc;
    doc.bin_code_map = R"(BinType="Ascii" NullBin="." MapType="Coordinate")";
    doc.codes = {R"(<BinCode X="0" Y="0">A</BinCode>)", R"(<BinCode X="3" Y="0">B</BinCode>)"};
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, R"(X="3" Y="0")"),
                 "BinCode at (3, 0) is outside the 3 x 2 layout");
}

TEST(E142BadMap, DuplicateCoordinatesAreRefused) {
    Doc doc;
    doc.bin_code_map = R"(BinType="Ascii" NullBin="." MapType="Coordinate")";
    doc.codes = {R"(<BinCode X="1" Y="1">A</BinCode>)", R"(<BinCode X="1" Y="1">B</BinCode>)"};
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, ">B</BinCode>"),
                 "duplicates the BinCode on line " + std::to_string(line_of(xml, ">A</BinCode>")));
}

TEST(E142BadMap, UnknownBinCodeIsRefused) {
    Doc doc;
    doc.codes = {"<BinCode>ABC</BinCode>", "<BinCode>DXF</BinCode>"};
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "DXF"),
                 "BinCode row 2 column 2: bin code 'X' is not in BinDefinitions");
}

TEST(E142BadMap, RowOfTheWrongLengthIsRefused) {
    Doc doc;
    doc.codes = {"<BinCode>ABCD</BinCode>", "<BinCode>DEF</BinCode>"};
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "ABCD"), "BinCode row 1 has 4 characters");
}

TEST(E142BadMap, TooFewRowsAreRefused) {
    Doc doc;
    doc.codes = {"<BinCode>ABC</BinCode>"};
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "<BinCodeMap"), "1 BinCode rows; Layout Dimension Y is 2");
}

TEST(E142BadMap, TooManyRowsNameTheFirstExtraRow) {
    Doc doc;
    doc.codes = {"<BinCode>ABC</BinCode>", "<BinCode>DEF</BinCode>", "<BinCode>FED</BinCode>"};
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "FED"), "3 BinCode rows; Layout Dimension Y is 2");
}

TEST(E142BadMap, UnknownOriginLocationIsRefused) {
    Doc doc;
    doc.origin = "Middle";
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "<SubstrateMap "), "unknown OriginLocation 'Middle'");
}

TEST(E142BadMap, UnknownAxisDirectionIsRefused) {
    Doc doc;
    doc.axis = "Sideways";
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "<SubstrateMap "), "unknown AxisDirection 'Sideways'");
}

TEST(E142BadMap, MissingLotIdIsRefused) {
    Doc doc;
    doc.substrate = "<SlotNumber>7</SlotNumber>";
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "<Substrate "), "Substrate 'LOT42-07' has no LotId");
}

TEST(E142BadMap, MissingSlotNumberWithAFreeTextSubstrateIdIsRefused) {
    Doc doc;
    doc.substrate = "<LotId>LOT42</LotId>";
    doc.substrate_id = "PH8Q66-02B6";
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "<Substrate "), "has no SlotNumber");
    expect_error(xml, line_of(xml, "<Substrate "), "give the number with --wafer N");
}

TEST(E142WaferNumber, WithoutSlotNumberAnUnambiguousSubstrateIdGivesIt) {
    for (const auto& [id, number] : {std::pair{"LOT42-07", 7}, std::pair{"0012", 12}}) {
        Doc doc;
        doc.substrate = "<LotId>LOT42</LotId>";
        doc.substrate_id = id;
        auto m = read_e142(doc.xml(), "t.xml");
        ASSERT_TRUE(m.ok()) << m.error().describe();
        EXPECT_EQ(m->wafer, number) << id;
        EXPECT_EQ(m->substrate_id, id);
    }
}

TEST(E142WaferNumber, TheOperatorGivesTheNumberOfAFreeTextWafer) {
    Doc doc;
    doc.substrate = "<LotId>LOT42</LotId>";
    doc.substrate_id = "E17340W05PA2";
    MapReadOptions o;
    o.wafer_number = 5;
    auto m = read_e142(doc.xml(), "t.xml", o);
    ASSERT_TRUE(m.ok()) << m.error().describe();
    EXPECT_EQ(m->wafer, 5);
    EXPECT_EQ(m->substrate_id, "E17340W05PA2");
}

TEST(E142WaferNumber, TheOperatorsNumberMustAgreeWithSlotNumber) {
    Doc doc;  // SlotNumber 7
    MapReadOptions o;
    o.wafer_number = 8;
    const std::string xml = doc.xml();
    auto m = read_e142(xml, "t.xml", o);
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("line " + std::to_string(line_of(xml, "<SlotNumber>"))),
              std::string::npos)
        << m.error().message;
    EXPECT_NE(m.error().message.find("SlotNumber 7 is wafer 7, not wafer 8"), std::string::npos)
        << m.error().message;
}

TEST(E142BadMap, MissingSubstrateIdIsRefused) {
    Doc doc;
    doc.substrate_id = "";
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "<Substrate "), "Substrate has no SubstrateId");
}

// A floor map: the supplier's own die ids in one DeviceIdMap overlay, the WPID-1 UIDs in another.
std::string two_id_overlays(const std::string& supplier_id) {
    return "<Overlay MapName=\"SupplierIds\">\n<DeviceIdMap>\n<DeviceId X=\"0\" Y=\"1\">" +
           supplier_id +
           "</DeviceId>\n</DeviceIdMap>\n</Overlay>\n"
           "<Overlay MapName=\"UIDs\">\n<DeviceIdMap>\n"
           "<DeviceId X=\"0\" Y=\"1\">000102030405060708090a0b0c0d0e0f</DeviceId>\n"
           "</DeviceIdMap>\n</Overlay>\n";
}

TEST(E142DeviceIdOverlays, TheJobsOverlayGivesTheUidsAndOthersAreIgnored) {
    Doc doc;
    doc.extra_overlay = two_id_overlays("SUP-0001/not-a-uid");
    MapReadOptions o;
    o.uid_overlay = "UIDs";
    auto m = read_e142(doc.xml(), "t.xml", o);
    ASSERT_TRUE(m.ok()) << m.error().describe();
    const MapDie* a = die_with_bin(*m, "A");  // top-left die: (0, 1) under LowerLeft/UpRight
    ASSERT_NE(a, nullptr);
    ASSERT_TRUE(a->uid.has_value());
    EXPECT_EQ(to_hex(*a->uid), "000102030405060708090a0b0c0d0e0f");
    for (const auto& d : m->dies) {
        if (&d != a) {
            EXPECT_FALSE(d.uid.has_value());
        }
    }
}

TEST(E142DeviceIdOverlays, NoOverlayNamedMeansNoUidsRead) {
    Doc doc;
    doc.extra_overlay = two_id_overlays("SUP-0001");
    MapReadOptions o;
    o.uid_overlay = "";
    auto m = read_e142(doc.xml(), "t.xml", o);
    ASSERT_TRUE(m.ok()) << m.error().describe();
    for (const auto& d : m->dies) {
        EXPECT_FALSE(d.uid.has_value());
    }
}

TEST(E142DeviceIdOverlays, TwoOverlaysWithoutAChoiceAreRefusedAtTheSecond) {
    Doc doc;
    doc.extra_overlay = two_id_overlays("SUP-0001");
    const std::string xml = doc.xml();
    const auto second = xml.find("<DeviceIdMap>", xml.find("<DeviceIdMap>") + 1);
    const int line = 1 + static_cast<int>(std::count(
                             xml.begin(), xml.begin() + static_cast<long>(second), '\n'));
    expect_error(xml, line, "uid_overlay");
}

TEST(E142DeviceIdOverlays, AnOverlayTheMapDoesNotHaveIsRefused) {
    Doc doc;
    doc.extra_overlay = two_id_overlays("SUP-0001");
    MapReadOptions o;
    o.uid_overlay = "DieIds";
    auto m = read_e142(doc.xml(), "t.xml", o);
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("no DeviceIdMap overlay has MapName 'DieIds'"),
              std::string::npos)
        << m.error().message;
    EXPECT_NE(m.error().message.find("'SupplierIds'"), std::string::npos) << m.error().message;
}

TEST(E142DeviceIdOverlays, ABadUidInTheChosenOverlayNamesItsLine) {
    Doc doc;
    doc.extra_overlay =
        "<Overlay MapName=\"UIDs\">\n<DeviceIdMap>\n<DeviceId X=\"0\" Y=\"1\">zz</DeviceId>\n"
        "</DeviceIdMap>\n</Overlay>\n";
    MapReadOptions o;
    o.uid_overlay = "UIDs";
    const std::string xml = doc.xml();
    auto m = read_e142(xml, "t.xml", o);
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("line " + std::to_string(line_of(xml, "<DeviceId X"))),
              std::string::npos)
        << m.error().message;
}

TEST(E142BadMap, NonNumericSlotNumberIsRefused) {
    Doc doc;
    doc.substrate = "<LotId>LOT42</LotId>\n<SlotNumber>seven</SlotNumber>";
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "<SlotNumber>"), "SlotNumber 'seven'");
}

TEST(E142BadMap, UidThatIsNotHexIsRefused) {
    Doc doc;
    doc.extra_overlay =
        "<Overlay>\n<DeviceIdMap>\n"
        "<DeviceId X=\"0\" Y=\"0\">00112233445566778899AABBCCDDEEZZ</DeviceId>\n"
        "</DeviceIdMap>\n</Overlay>\n";
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "<DeviceId "), "DeviceId at (0, 0): UID");
}

TEST(E142BadMap, UidOfTheWrongLengthIsRefused) {
    Doc doc;
    doc.extra_overlay =
        "<Overlay>\n<DeviceIdMap>\n"
        "<DeviceId X=\"0\" Y=\"0\">0011223344556677</DeviceId>\n"
        "</DeviceIdMap>\n</Overlay>\n";
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "<DeviceId "), "is not 32 hex digits");
}

TEST(E142BadMap, UidForAPositionWithoutADieIsRefused) {
    Doc doc;
    doc.codes = {"<BinCode>.BC</BinCode>", "<BinCode>DEF</BinCode>"};
    doc.extra_overlay =
        "<Overlay>\n<DeviceIdMap>\n"
        "<DeviceId X=\"0\" Y=\"1\">00112233445566778899AABBCCDDEEFF</DeviceId>\n"
        "</DeviceIdMap>\n</Overlay>\n";
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "<DeviceId "), "no die at that position");
}

TEST(E142BadMap, DuplicateUidPositionIsRefused) {
    Doc doc;
    doc.extra_overlay =
        "<Overlay>\n<DeviceIdMap>\n"
        "<DeviceId X=\"0\" Y=\"0\">00112233445566778899AABBCCDDEEFF</DeviceId>\n"
        "<DeviceId X=\"0\" Y=\"0\">ffeeddccbbaa99887766554433221100</DeviceId>\n"
        "</DeviceIdMap>\n</Overlay>\n";
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "ffeedd"), "duplicates the DeviceId");
}

TEST(E142BadMap, BinCountThatDisagreesWithTheDiesIsRefused) {
    Doc doc;
    doc.definitions[0] = R"(<BinDefinition BinCode="A" BinQuality="Pass" BinCount="2"/>)";
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, R"(BinCount="2")"), "BinCount=2 but the map holds 1 dies");
}

TEST(E142BadMap, DuplicateBinDefinitionIsRefused) {
    Doc doc;
    doc.definitions.push_back(R"(<BinDefinition BinCode="A" BinQuality="Fail" Note="again"/>)");
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "again"), "bin 'A' defined twice");
}

TEST(E142BadMap, UnknownBinTypeIsRefused) {
    Doc doc;
    doc.bin_code_map = R"(BinType="Octal" NullBin=".")";
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "<BinCodeMap"), "unknown BinType 'Octal'");
}

TEST(E142BadMap, ASecondSubstrateMapIsRefused) {
    Doc doc;
    doc.extra_overlay = "</SubstrateMap>\n<SubstrateMap SubstrateId=\"other\">\n";
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "\"other\""), "expected exactly one SubstrateMap, found 2");
}

TEST(E142BadMap, AnotherRootElementIsRefused) {
    expect_error("<Wafer/>\n", 1, "root element is <Wafer>, not <MapData>");
}

// ---- hostile input ----

TEST(E142Hostile, DoctypeAndEntitiesAreRefused) {
    Doc doc;
    doc.prolog =
        "<!DOCTYPE MapData [\n"
        "<!ENTITY a \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\">\n"
        "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">\n"
        "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">\n"
        "]>\n";
    doc.substrate = "<LotId>&c;</LotId>\n<SlotNumber>7</SlotNumber>";
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "<!DOCTYPE"), "DOCTYPE declarations are not accepted");
}

TEST(E142Hostile, OversizedInputIsRefusedBeforeParsing) {
    MapReadOptions small;
    small.max_bytes = 100;
    auto r = read_e142(Doc{}.xml(), "big.xml", small);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kResourceExhausted);
    EXPECT_NE(r.error().message.find("the limit for a wafer map is 100"), std::string::npos);
}

TEST(E142Hostile, HugeDimensionIsRefused) {
    Doc doc;
    doc.dimension = R"(X="3" Y="1000000")";
    const std::string xml = doc.xml();
    expect_error(xml, line_of(xml, "<Layout "), "Dimension Y=1000000 exceeds the limit of 10000");
}

TEST(E142Hostile, HugeSparseCoordinateLayoutCostsNoMemory) {
    // 10000 x 10000 is within the limit; the reader must not allocate per position.
    Doc doc;
    doc.dimension = R"(X="10000" Y="10000")";
    doc.bin_code_map = R"(BinType="Ascii" NullBin="." MapType="Coordinate")";
    doc.codes = {R"(<BinCode X="9999" Y="9999">A</BinCode>)"};
    auto m = read_e142(doc.xml());
    ASSERT_TRUE(m.ok()) << m.error().describe();
    EXPECT_EQ(m->dies.size(), 1u);
}

TEST(E142Hostile, DieCountLimitIsEnforced) {
    MapReadOptions o;
    o.max_dies = 5;
    auto r = read_e142(Doc{}.xml(), "t.xml", o);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("more than the limit of 5 dies"), std::string::npos)
        << r.error().message;
}

TEST(MapFile, MissingFileIsAnIoError) {
    auto r = read_map_file("/nonexistent/wafer.xml");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kIo);
}
