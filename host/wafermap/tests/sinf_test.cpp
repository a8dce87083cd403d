// SINF reading: header keys, the UpperLeft/DownRight reading of the rows, "__" and "@@",
// BCEQU as the good bins, the writer round trip, and each bad input naming its line.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "waferprov/host/wafermap.hpp"

using namespace waferprov;
using namespace waferprov::host;

namespace {

const char* const kSinf =
    "DEVICE:CHIP9\n"           // 1
    "LOT:LOT77\n"              // 2
    "WAFER:LOT77-12\n"         // 3
    "FNLOC:180\n"              // 4
    "ROWCT:3\n"                // 5
    "COLCT:4\n"                // 6
    "BCEQU:01 02\n"            // 7
    "REFPX:0\n"                // 8
    "REFPY:0\n"                // 9
    "DUTMS:um\n"               // 10
    "XDIES:2500\n"             // 11
    "YDIES:2000\n"             // 12
    "RowData:__ 01 01 __\n"    // 13
    "RowData:01 0a @@ 02\r\n"  // 14
    "RowData:__ 03 01 __\n";   // 15

std::string replace_line(std::string text, int line, const std::string& with) {
    size_t pos = 0;
    for (int i = 1; i < line; ++i) pos = text.find('\n', pos) + 1;
    const size_t end = text.find('\n', pos);
    return text.replace(pos, end - pos, with);
}

void expect_error(const std::string& text, int line, const std::string& what) {
    auto r = read_sinf(text, "w.sinf");
    ASSERT_FALSE(r.ok()) << "accepted:\n" << text;
    EXPECT_NE(r.error().message.find("w.sinf: line " + std::to_string(line) + ":"),
              std::string::npos)
        << "wanted line " << line << " in: " << r.error().message;
    EXPECT_NE(r.error().message.find(what), std::string::npos)
        << "wanted '" << what << "' in: " << r.error().message;
}

}  // namespace

TEST(SinfReader, ReadsHeaderAndRowsAsUpperLeftDownRight) {
    auto m = read_sinf(kSinf);
    ASSERT_TRUE(m.ok()) << m.error().describe();
    EXPECT_EQ(m->format, "SINF");
    EXPECT_EQ(m->device, "CHIP9");
    EXPECT_EQ(m->lot, "LOT77");
    EXPECT_EQ(m->wafer, 12);
    EXPECT_EQ(m->substrate_id, "LOT77-12");
    EXPECT_EQ(m->columns, 4);
    EXPECT_EQ(m->rows, 3);
    EXPECT_DOUBLE_EQ(m->die_width_mm, 2.5);
    EXPECT_DOUBLE_EQ(m->die_height_mm, 2.0);
    EXPECT_EQ(m->origin, "UpperLeft");
    EXPECT_EQ(m->axis, "DownRight");
    EXPECT_EQ((m->good_bins), (std::vector<std::string>{"01", "02"}));
    ASSERT_EQ(m->dies.size(), 8u);
    EXPECT_EQ(m->dies[0].x, 1);  // first die of the top row
    EXPECT_EQ(m->dies[0].y, 0);
    const auto it =
        std::find_if(m->dies.begin(), m->dies.end(), [](const MapDie& d) { return d.bin == "0A"; });
    ASSERT_NE(it, m->dies.end());
    EXPECT_EQ(it->x, 1);
    EXPECT_EQ(it->y, 1);
}

TEST(SinfReader, UntestedDiesAreDiesWithBinAtAt) {
    auto m = read_sinf(kSinf);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(count_by_bin(*m).at("@@"), 1u);
    auto untested = select_dies(*m, {"@@"});
    ASSERT_TRUE(untested.ok());
    ASSERT_EQ(untested->size(), 1u);
    EXPECT_EQ(untested->front().x, 2);
    EXPECT_EQ(untested->front().y, 1);
}

TEST(SinfReader, SelectsGoodBinsAndRefusesUnknownOnes) {
    auto m = read_sinf(kSinf);
    ASSERT_TRUE(m.ok());
    auto good = select_dies(*m, m->good_bins);
    ASSERT_TRUE(good.ok());
    EXPECT_EQ(good->size(), 5u);                // four 01, one 02
    EXPECT_TRUE(select_dies(*m, {"0A"}).ok());  // present in the rows
    EXPECT_FALSE(select_dies(*m, {"07"}).ok());
}

TEST(SinfReader, FnlocIsTheNotchAndABadOneIsRefused) {
    auto m = read_sinf(kSinf);
    ASSERT_TRUE(m.ok()) << m.error().describe();
    EXPECT_EQ(m->flat_deg, 180);
    expect_error(replace_line(kSinf, 4, "FNLOC:down"), 4, "FNLOC 'down'");
    expect_error(replace_line(kSinf, 4, "FNLOC:400"), 4, "FNLOC '400'");
    auto east = read_sinf(replace_line(kSinf, 4, "FNLOC:90"));
    ASSERT_TRUE(east.ok()) << east.error().describe();
    EXPECT_EQ(east->flat_deg, 90);
    auto text = write_sinf(*east);
    ASSERT_TRUE(text.ok());
    EXPECT_NE(text->find("FNLOC:90\n"), std::string::npos) << *text;
}

TEST(SinfWriter, RoundTrips) {
    auto m = read_sinf(kSinf);
    ASSERT_TRUE(m.ok());
    auto text = write_sinf(*m);
    ASSERT_TRUE(text.ok()) << text.error().describe();
    auto back = read_sinf(*text);
    ASSERT_TRUE(back.ok()) << back.error().describe() << "\n" << *text;
    ASSERT_EQ(back->dies.size(), m->dies.size());
    for (size_t i = 0; i < m->dies.size(); ++i) {
        EXPECT_EQ(back->dies[i].x, m->dies[i].x);
        EXPECT_EQ(back->dies[i].y, m->dies[i].y);
        EXPECT_EQ(back->dies[i].bin, m->dies[i].bin);
    }
    EXPECT_EQ(back->good_bins, m->good_bins);
    EXPECT_EQ(back->wafer, 12);
}

TEST(SinfWriter, RefusesAMapWithAnotherOrigin) {
    auto m = read_sinf(kSinf);
    ASSERT_TRUE(m.ok());
    m->origin = "LowerLeft";
    m->axis = "UpRight";
    EXPECT_FALSE(write_sinf(*m).ok());
}

TEST(SinfBadMap, RowOfTheWrongLengthNamesItsLine) {
    expect_error(replace_line(kSinf, 14, "RowData:01 0A @@"), 14,
                 "RowData has 3 codes; COLCT is 4");
}

TEST(SinfBadMap, WrongRowCountIsRefused) {
    expect_error(replace_line(kSinf, 5, "ROWCT:2"), 15, "3 RowData lines; ROWCT is 2");
    expect_error(replace_line(kSinf, 5, "ROWCT:4"), 15, "3 RowData lines; ROWCT is 4");
}

TEST(SinfBadMap, BadBinCodeNamesItsLine) {
    expect_error(replace_line(kSinf, 15, "RowData:__ 3 01 __"), 15,
                 "RowData column 2: '3' is not a two-digit hex bin code");
}

TEST(SinfBadMap, MissingLotIsRefused) {
    expect_error(replace_line(kSinf, 2, "NOTE:no lot"), 13, "header key LOT is missing");
}

TEST(SinfBadMap, WaferWithoutANumberIsRefused) {
    expect_error(replace_line(kSinf, 3, "WAFER:LOTX-A"), 3, "does not give a wafer number");
}

// Free-text wafer ids: the trailing digits are not a wafer number ("PH8Q66-02B6" was read as
// wafer 6 and "E17340W05PA2" as wafer 2, so two wafers of a lot became one).
TEST(SinfWaferNumber, FreeTextWaferIdsGiveNoNumber) {
    for (const char* id : {"PH8Q66-02B6", "E17340W05PA2", "LOT77-12A", "LOT7-12"}) {
        expect_error(replace_line(kSinf, 3, std::string("WAFER:") + id), 3,
                     "give the number with --wafer N");
    }
}

TEST(SinfWaferNumber, TheOperatorGivesTheNumberAndTheIdIsKept) {
    MapReadOptions o;
    o.wafer_number = 2;
    auto m = read_sinf(replace_line(kSinf, 3, "WAFER:E17340W05PA2"), "w.sinf", o);
    ASSERT_TRUE(m.ok()) << m.error().describe();
    EXPECT_EQ(m->wafer, 2);
    EXPECT_EQ(m->substrate_id, "E17340W05PA2");
}

TEST(SinfWaferNumber, AllDigitsOrLotDashDigitsAreNumbers) {
    auto m = read_sinf(replace_line(kSinf, 3, "WAFER:07"));
    ASSERT_TRUE(m.ok()) << m.error().describe();
    EXPECT_EQ(m->wafer, 7);
    EXPECT_EQ(wafer_number_of_substrate("LOT77-03", "LOT77"), 3);
    EXPECT_EQ(wafer_number_of_substrate("LOT77-03", "LOT7"), std::nullopt);
    EXPECT_EQ(wafer_number_of_substrate("99999", "L"), std::nullopt);  // above 65535
}

TEST(SinfWaferNumber, TheOperatorsNumberMustAgreeWithTheMap) {
    MapReadOptions o;
    o.wafer_number = 11;
    auto m = read_sinf(kSinf, "w.sinf", o);
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("line 3: WAFER 'LOT77-12' is wafer 12, not wafer 11"),
              std::string::npos)
        << m.error().message;
}

TEST(SinfReader, BcequListsMayBeSeparatedByCommasOrSpaces) {
    for (const char* list : {"BCEQU:01,02", "BCEQU:01, 02", "BCEQU: 01 ,02 "}) {
        auto m = read_sinf(replace_line(kSinf, 7, list));
        ASSERT_TRUE(m.ok()) << list << ": " << m.error().describe();
        EXPECT_EQ(m->good_bins, (std::vector<std::string>{"01", "02"})) << list;
    }
}

TEST(SinfBadMap, ThreeDigitSinfIsRefusedByName) {
    std::string text = kSinf;
    text = replace_line(text, 13, "RowData:___ 001 001 ___");
    expect_error(text, 13, "3-digit SINF is not supported");
}

TEST(SinfReader, DiectMustCountTheDies) {
    std::string with = kSinf;
    with.insert(with.find("ROWCT"), "DIECT:8\n");  // line 5
    auto m = read_sinf(with);
    ASSERT_TRUE(m.ok()) << m.error().describe();
    std::string wrong = kSinf;
    wrong.insert(wrong.find("ROWCT"), "DIECT:9\n");
    expect_error(wrong, 5, "DIECT is 9 but the rows hold 8 dies");
}

TEST(SinfBadMap, RepeatedKeyIsRefused) {
    expect_error(replace_line(kSinf, 9, "LOT:OTHER"), 9, "LOT repeated (first on line 2)");
}

TEST(SinfBadMap, LineWithoutAColonIsRefused) {
    expect_error(replace_line(kSinf, 8, "REFPX 0"), 8, "expected KEY:value");
}

TEST(SinfBadMap, HugeRowCountIsRefused) {
    expect_error(replace_line(kSinf, 5, "ROWCT:20000"), 5, "exceeds the limit of 10000");
}

TEST(SinfBadMap, BadBcequCodeIsRefused) {
    expect_error(replace_line(kSinf, 7, "BCEQU:01 XY"), 7, "BCEQU: 'XY'");
}
