// SEMI E142 strip maps read as carrier maps (final test, docs/final-test.md "Strip maps"):
// hand-written strip files, positions checked against the pictures written out below, and one
// test per defect asserting what the error names. Also: the wafer readers refuse a strip file
// by its SubstrateType, and the carrier reader refuses a wafer map.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "line_of.hpp"
#include "waferprov/bytes.hpp"
#include "waferprov/host/wafermap.hpp"
#include "waferprov/testing/temp_dir.hpp"

using namespace waferprov;
using namespace waferprov::host;

namespace {

// One strip: a SubstrateMap of `rows` BinCode rows (picture order, top row first).
struct Strip {
    Strip(std::string id_, std::vector<std::string> rows_,
          std::string lot_ = "<LotId>ASSY7</LotId>", std::string type_ = "Strip",
          std::string origin_ = "UpperLeft", std::string axis_ = "DownRight",
          std::string layout_ = "Strip4x2")
        : id(std::move(id_)),
          rows(std::move(rows_)),
          lot(std::move(lot_)),
          type(std::move(type_)),
          origin(std::move(origin_)),
          axis(std::move(axis_)),
          layout(std::move(layout_)) {}
    std::string id;
    std::vector<std::string> rows;
    std::string lot, type, origin, axis, layout;
    std::string extra_overlay;
    std::string map_id;  // SubstrateMap SubstrateId; empty: the strip's id
};

// A file of strips, one element per line, layouts 4 x 2 and 3 x 1, Ascii bins: P pass (good),
// X an X-out unit (reject), '.' no unit.
std::string strip_file(const std::vector<Strip>& strips) {
    std::string s =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<MapData xmlns=\"urn:semi-org:xsd.E142-1.V1005.SubstrateMap\">\n"
        "<Layouts>\n"
        "<Layout LayoutId=\"Strip4x2\" DefaultUnits=\"mm\">\n"
        "<Dimension X=\"4\" Y=\"2\"/>\n"
        "<StepSize X=\"5\" Y=\"5\"/>\n"
        "<ProductId>CHIP9</ProductId>\n"
        "</Layout>\n"
        "<Layout LayoutId=\"Strip3x1\" DefaultUnits=\"mm\">\n"
        "<Dimension X=\"3\" Y=\"1\"/>\n"
        "</Layout>\n"
        "</Layouts>\n"
        "<Substrates>\n";
    for (const auto& st : strips)
        s += "<Substrate SubstrateType=\"" + st.type + "\" SubstrateId=\"" + st.id + "\">\n" +
             st.lot + "\n</Substrate>\n";
    s += "</Substrates>\n<SubstrateMaps>\n";
    for (const auto& st : strips) {
        s += "<SubstrateMap SubstrateType=\"" + st.type + "\" SubstrateId=\"" +
             (st.map_id.empty() ? st.id : st.map_id) + "\" LayoutSpecifier=\"" + st.layout +
             "\" OriginLocation=\"" + st.origin + "\" AxisDirection=\"" + st.axis + "\">\n" +
             "<Overlay MapName=\"FinalTest\">\n"
             "<BinCodeMap BinType=\"Ascii\" NullBin=\".\" MapType=\"2DArray\">\n"
             "<BinDefinitions>\n"
             "<BinDefinition BinCode=\"P\" BinQuality=\"Pass\" BinDescription=\"unit\"/>\n"
             "<BinDefinition BinCode=\"X\" BinQuality=\"Fail\" BinDescription=\"x-out\"/>\n"
             "</BinDefinitions>\n";
        for (const auto& r : st.rows) s += "<BinCode>" + r + "</BinCode>\n";
        s += "</BinCodeMap>\n</Overlay>\n" + st.extra_overlay + "</SubstrateMap>\n";
    }
    s += "</SubstrateMaps>\n</MapData>\n";
    return s;
}

using waferprov::host::testing::line_of;

std::string error_of(const std::string& xml) {
    auto r = read_e142_carriers(xml, "s.xml");
    EXPECT_FALSE(r.ok()) << "accepted:\n" << xml;
    return r.ok() ? std::string() : r.error().message;
}

std::string line_prefix(const std::string& xml, const std::string& needle) {
    return "s.xml: line " + std::to_string(line_of(xml, needle)) + ": ";
}

TEST(CarrierMap, StripsAreReadWithEveryPositionAsTheFileGivesIt) {
    // S1 (UpperLeft / DownRight: row = picture row, column = picture column):
    //   row 0: P X . P
    //   row 1: P P P .
    Strip s1{"S1", {"PX.P", "PPP."}};
    // S2 (LowerLeft / UpRight, a 3 x 1 strip): row 0 is its only picture row.
    Strip s2{"S2", {"XPP"}, "", "Strip", "LowerLeft", "UpRight", "Strip3x1"};
    auto r = read_e142_carriers(strip_file({s1, s2}), "s.xml");
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->size(), 2u);
    const CarrierMap& a = (*r)[0];
    EXPECT_EQ(a.strip_id, "S1");
    EXPECT_EQ(a.lot, "ASSY7");
    EXPECT_EQ(a.product, "CHIP9");
    EXPECT_EQ(a.rows, 2);
    EXPECT_EQ(a.columns, 4);
    EXPECT_EQ(a.null_bin, ".");
    EXPECT_EQ(a.good_bins, std::vector<std::string>{"P"});
    const std::vector<CarrierMapPosition> want_a = {
        {0, 0, "P", true, std::nullopt}, {0, 1, "X", false, std::nullopt},
        {0, 3, "P", true, std::nullopt}, {1, 0, "P", true, std::nullopt},
        {1, 1, "P", true, std::nullopt}, {1, 2, "P", true, std::nullopt}};
    EXPECT_EQ(a.positions, want_a);
    const CarrierMap& b = (*r)[1];
    EXPECT_EQ(b.strip_id, "S2");
    EXPECT_EQ(b.lot, "");  // a strip need not name its lot
    EXPECT_EQ(b.rows, 1);
    EXPECT_EQ(b.columns, 3);
    const std::vector<CarrierMapPosition> want_b = {{0, 0, "X", false, std::nullopt},
                                                    {0, 1, "P", true, std::nullopt},
                                                    {0, 2, "P", true, std::nullopt}};
    EXPECT_EQ(b.positions, want_b);
}

TEST(CarrierMap, OriginAndAxisDecideRowAndColumn) {
    // LowerLeft / UpRight: the bottom picture row is row 0, so the lone P of the top row is
    // row 1.
    Strip s{"S1", {"...P", "X..."}, "", "strip", "LowerLeft", "UpRight"};
    auto r = read_e142_carriers(strip_file({s}), "s.xml");
    ASSERT_TRUE(r.ok()) << r.error().message;
    const std::vector<CarrierMapPosition> want = {{0, 0, "X", false, std::nullopt},
                                                  {1, 3, "P", true, std::nullopt}};
    EXPECT_EQ((*r)[0].positions, want);  // SubstrateType compared without regard to case
}

TEST(CarrierMap, DeviceIdsGiveThePositionsTheirUids) {
    Strip s{"S1", {"PP..", "...."}};
    s.extra_overlay =
        "<Overlay MapName=\"DeviceIds\">\n<DeviceIdMap>\n"
        "<DeviceId X=\"1\" Y=\"0\">00112233445566778899aabbccddeeff</DeviceId>\n"
        "</DeviceIdMap>\n</Overlay>\n";
    auto r = read_e142_carriers(strip_file({s}), "s.xml");
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ((*r)[0].positions.size(), 2u);
    EXPECT_FALSE((*r)[0].positions[0].uid);
    ASSERT_TRUE((*r)[0].positions[1].uid);
    EXPECT_EQ(to_hex(*(*r)[0].positions[1].uid), "00112233445566778899aabbccddeeff");
}

TEST(CarrierMap, AWaferMapIsRefusedNamingItsType) {
    Strip w{"LOT1-01", {"PPPP", "PPPP"}, "<LotId>LOT1</LotId>", "Wafer"};
    const std::string xml = strip_file({w});
    EXPECT_EQ(error_of(xml),
              line_prefix(xml, "<Substrate SubstrateType") +
                  "Substrate 'LOT1-01' is SubstrateType 'Wafer', not Strip: carrier maps hold "
                  "strips (a wafer map is read with --map)");
    Strip tray = w;
    tray.type = "Tray";
    EXPECT_NE(error_of(strip_file({tray})).find("SubstrateType 'Tray', not Strip"),
              std::string::npos);
}

TEST(CarrierMap, TheWaferReaderRefusesAStripFileNamingItsType) {
    Strip s{"S1", {"PPPP", "PPPP"}};
    const std::string xml = strip_file({s, Strip{"S2", {"PPPP", "PPPP"}}});
    auto r = read_e142(xml, "s.xml");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message,
              line_prefix(xml, "<Substrate SubstrateType") +
                  "Substrate 'S1' is SubstrateType 'Strip', not Wafer: this reads wafer maps (a "
                  "strip map is a carrier map at final test: waferprov-tester --strip-map)");
    // A Frame is refused too, and a map without SubstrateType is still a wafer map (the
    // wafer tests' maps): only a named other type is refused.
    Strip f = s;
    f.type = "Frame";
    auto rf = read_e142(strip_file({f}), "s.xml");
    ASSERT_FALSE(rf.ok());
    EXPECT_NE(rf.error().message.find("SubstrateType 'Frame', not Wafer: this reads wafer maps"),
              std::string::npos)
        << rf.error().message;
}

TEST(CarrierMap, DefectsAreRefusedNamingTheLine) {
    {  // a row too short
        const std::string xml = strip_file({Strip{"S1", {"PPP", "PPPP"}}});
        EXPECT_EQ(error_of(xml), line_prefix(xml, "<BinCode>PPP<") +
                                     "BinCode row 1 has 3 characters; Dimension X 4 at 1 per "
                                     "die needs 4");
    }
    {  // a bin the strip does not define
        const std::string xml = strip_file({Strip{"S1", {"PPPP", "PPQP"}}});
        EXPECT_EQ(error_of(xml), line_prefix(xml, "<BinCode>PPQP") +
                                     "BinCode row 2 column 3: bin code 'Q' is not in "
                                     "BinDefinitions");
    }
    {  // one strip mapped twice
        Strip again{"S1", {"PPPP", "PPPP"}};
        std::string xml = strip_file({again, Strip{"S2", {"PPPP", "PPPP"}}});
        // The second SubstrateMap names S1 as well.
        const auto second = xml.find("SubstrateId=\"S2\" LayoutSpecifier");
        ASSERT_NE(second, std::string::npos);
        xml.replace(second, std::string("SubstrateId=\"S2\"").size(), "SubstrateId=\"S1\"");
        const std::string err = error_of(xml);
        EXPECT_NE(err.find("strip 'S1' is mapped twice (first on line"), std::string::npos) << err;
    }
    {  // a SubstrateMap naming no strip of the file
        Strip s{"S1", {"PPPP", "PPPP"}};
        s.map_id = "S9";
        const std::string xml = strip_file({s, Strip{"S2", {"PPPP", "PPPP"}}});
        const std::string err = error_of(xml);
        EXPECT_NE(err.find("SubstrateMap SubstrateId 'S9' matches none of the 2 Substrates"),
                  std::string::npos)
            << err;
    }
    {  // negative positions under a Center origin
        Strip s{"S1", {"PPPP", "PPPP"}, "", "Strip", "Center", "UpRight"};
        const std::string err = error_of(strip_file({s}));
        EXPECT_NE(err.find("negative coordinate under OriginLocation Center"), std::string::npos)
            << err;
    }
    {  // malformed XML
        std::string xml = strip_file({Strip{"S1", {"PPPP", "PPPP"}}});
        xml.replace(xml.find("</Overlay>"), 10, "</Overlai>");
        const std::string err = error_of(xml);
        EXPECT_NE(err.find("malformed XML: mismatched tag"), std::string::npos) << err;
    }
    {  // no strips at all
        const std::string xml = "<MapData><Layouts/><Substrates/><SubstrateMaps/></MapData>";
        EXPECT_EQ(error_of(xml), "s.xml: line 1: the file has no Substrate (Substrates/Substrate)");
    }
}

TEST(CarrierMap, AFileThatIsNotXmlIsRefusedByName) {
    waferprov::testing::TempDir tmp("carrier_map_file");
    const auto sinf = tmp.path() / "strip.sinf";
    std::ofstream(sinf) << "DEVICE:CHIP9\nLOT:L\n";
    auto r = read_carrier_file(sinf);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("strip map " + sinf.string() + " is not XML"),
              std::string::npos)
        << r.error().message;
    const auto xml = tmp.path() / "strips.xml";
    std::ofstream(xml) << strip_file({Strip{"S1", {"PPPP", "PPPP"}}});
    auto ok = read_carrier_file(xml);
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    EXPECT_EQ(ok->front().positions.size(), 8u);
}

}  // namespace
