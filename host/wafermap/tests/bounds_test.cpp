// Issue #11, bounded inputs: every text field of a map is printable ASCII of at most 256
// characters, checked when the map is read and named with its file and line; files are read
// with a cap that holds on what is read; and what is neither E142 nor SINF (empty, UTF-16,
// binary, a .xml that is not XML) is refused saying what it is, never read as SINF.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "waferprov/host/wafermap.hpp"
#include "waferprov/testing/temp_dir.hpp"

using namespace waferprov;
using namespace waferprov::host;
namespace fs = std::filesystem;
using waferprov::testing::TempDir;

namespace {

// One element per line; the fields under test are parameters.
std::string e142(const std::string& lot = "LOT42", const std::string& substrate = "LOT42-07",
                 const std::string& product = "CHIP9", const std::string& description = "good") {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                      // 1
           "<MapData xmlns=\"urn:semi-org:xsd.E142-1.V1005.SubstrateMap\">\n"  // 2
           "<Layouts>\n"                                                       // 3
           "<Layout LayoutId=\"Devices\" DefaultUnits=\"mm\">\n"               // 4
           "<Dimension X=\"2\" Y=\"1\"/>\n"                                    // 5
           "<ProductId>" +
           product +
           "</ProductId>\n"  // 6
           "</Layout>\n"     // 7
           "</Layouts>\n"    // 8
           "<Substrates>\n"  // 9
           "<Substrate SubstrateType=\"Wafer\" SubstrateId=\"" +
           substrate +
           "\">\n"  // 10
           "<LotId>" +
           lot +
           "</LotId>\n"                    // 11
           "<SlotNumber>7</SlotNumber>\n"  // 12
           "</Substrate>\n"                // 13
           "</Substrates>\n"               // 14
           "<SubstrateMaps>\n"             // 15
           "<SubstrateMap SubstrateType=\"Wafer\" SubstrateId=\"" +
           substrate +
           "\">\n"                                                               // 16
           "<Overlay MapName=\"Sort\">\n"                                        // 17
           "<BinCodeMap BinType=\"Ascii\" NullBin=\".\" MapType=\"2DArray\">\n"  // 18
           "<BinDefinitions>\n"                                                  // 19
           "<BinDefinition BinCode=\"A\" BinQuality=\"Pass\" BinDescription=\"" +
           description +
           "\"/>\n"                   // 20
           "</BinDefinitions>\n"      // 21
           "<BinCode>A.</BinCode>\n"  // 22
           "</BinCodeMap>\n</Overlay>\n</SubstrateMap>\n</SubstrateMaps>\n</MapData>\n";
}

std::string sinf(const std::string& lot = "LOT77", const std::string& wafer = "LOT77-12",
                 const std::string& device = "CHIP9") {
    return "DEVICE:" + device +
           "\n"  // 1
           "LOT:" +
           lot +
           "\n"  // 2
           "WAFER:" +
           wafer +
           "\n"  // 3
           "ROWCT:1\nCOLCT:2\nBCEQU:01\nRowData:01 __\n";
}

void expect_refused(const Result<WaferMap>& r, const std::string& message) {
    ASSERT_FALSE(r.ok()) << "accepted";
    EXPECT_NE(r.error().message.find(message), std::string::npos) << r.error().message;
}

fs::path write(const TempDir& d, const std::string& name, const std::string& text) {
    const fs::path p = d / name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
}

}  // namespace

TEST(MapTextFields, E142FieldsAreCheckedNamingFileLineAndField) {
    const std::string long_lot(257, 'L');
    expect_refused(read_e142(e142("LOT\xc3\x89"), "m.xml"),
                   "m.xml: line 11: LotId: has the byte 0xc3 at character 4; only printable "
                   "ASCII (0x20..0x7e) is allowed");
    expect_refused(read_e142(e142(long_lot), "m.xml"),
                   "m.xml: line 11: LotId: is 257 characters long; the limit is 256");
    expect_refused(read_e142(e142("LOT42", "LOT42&#9;07"), "m.xml"),
                   "m.xml: line 16: SubstrateMap SubstrateId: has the byte 0x09 at character 6");
    expect_refused(read_e142(e142("LOT42", "LOT42-07", "CHIP\xe2\x84\xa2"), "m.xml"),
                   "m.xml: line 4: ProductId: has the byte 0xe2");
    expect_refused(read_e142(e142("LOT42", "LOT42-07", "CHIP9", std::string(300, 'd')), "m.xml"),
                   "m.xml: line 20: BinDefinition BinDescription: is 300 characters long");
    // The error never quotes the field itself (it may be megabytes).
    auto r = read_e142(e142(long_lot), "m.xml");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message.find(long_lot), std::string::npos);
    // 256 printable characters are a lot id.
    auto at = read_e142(e142(std::string(256, 'L'), "S-1"), "m.xml");
    ASSERT_TRUE(at.ok()) << at.error().describe();
    EXPECT_EQ(at->lot.size(), 256u);
}

TEST(MapTextFields, SinfFieldsAreCheckedNamingFileLineAndKey) {
    expect_refused(read_sinf(sinf("LOT\xc3\x89"), "w.sinf"),
                   "w.sinf: line 2: LOT: has the byte 0xc3 at character 4");
    expect_refused(read_sinf(sinf("LOT77", "W" + std::string(300, '1')), "w.sinf"),
                   "w.sinf: line 3: WAFER: is 301 characters long; the limit is 256");
    expect_refused(read_sinf(sinf("LOT77", "LOT77-12", "CHIP\x7f"), "w.sinf"),
                   "w.sinf: line 1: DEVICE: has the byte 0x7f at character 5");
    auto ok = read_sinf(sinf(std::string(256, 'L'), "12"), "w.sinf");
    ASSERT_TRUE(ok.ok()) << ok.error().describe();
}

// /dev/zero has st_size 0: the old reader trusted stat. The cap holds on what is read.
TEST(MapFileBounds, AnEndlessDeviceIsRefusedAtTheCap) {
    MapReadOptions o;
    o.max_bytes = 1 << 20;
    expect_refused(read_map_file("/dev/zero", o),
                   "wafer map /dev/zero is larger than the limit of 1048576 bytes");
}

TEST(MapFileBounds, WhatIsNoMapIsRefusedSayingWhatItIs) {
    TempDir d{"maps"};
    expect_refused(read_map_file(write(d, "empty.xml", "")),
                   "wafer map " + (d / "empty.xml").string() + " is empty");
    expect_refused(read_map_file(write(d, "blank.sinf", " \r\n\t\n")), "is empty (only blanks)");
    expect_refused(read_map_file(d.path()), "wafer map " + d.path().string() + " is a directory");

    // The same E142 map saved as UTF-16 (little- and big-endian, with and without a BOM).
    const std::string xml = e142();
    std::string le = "\xFF\xFE", be = "\xFE\xFF", bare;
    for (char c : xml) {
        le += std::string{c, '\0'};
        be += std::string{'\0', c};
        bare += std::string{c, '\0'};
    }
    expect_refused(read_map_file(write(d, "le.xml", le)),
                   "le.xml is UTF-16 text (byte-order mark \\xFF\\xFE); wafer maps are read as "
                   "UTF-8 or ASCII");
    expect_refused(read_map_file(write(d, "be.xml", be)),
                   "is UTF-16 text (byte-order mark \\xFE\\xFF)");
    expect_refused(read_map_file(write(d, "bare.xml", bare)),
                   "is UTF-16 text without a byte-order mark");
    expect_refused(read_map_file(write(d, "bin.map", std::string("LOT:\0\x01", 6))),
                   "holds binary data (a NUL byte at offset 4)");
    // A file named .xml whose content is not XML is not read as SINF.
    expect_refused(read_map_file(write(d, "sinf.xml", sinf())),
                   "sinf.xml is named .xml but is not XML (it begins 'DEVICE:CHIP9\\x0ALOT'");
    // The real thing still reads, E142 with a UTF-8 BOM and SINF under its own name.
    auto e = read_map_file(write(d, "ok.xml", "\xEF\xBB\xBF" + xml));
    ASSERT_TRUE(e.ok()) << e.error().describe();
    EXPECT_EQ(e->format, "E142");
    auto s = read_map_file(write(d, "ok.sinf", sinf()));
    ASSERT_TRUE(s.ok()) << s.error().describe();
    EXPECT_EQ(s->format, "SINF");
}
