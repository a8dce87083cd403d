// The reports on synthetic wafers: summary and reconciliation numbers, MISMATCH on inconsistent
// input, a well-formed SVG with one rect per die, STDF checked by an independent reader, the
// output layout and PNG conversion.
#include <stdlib.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "stdf_reader.hpp"
#include "synthetic.hpp"
#include "waferprov/host/report.hpp"
#include "waferprov/testing/xml_walk.hpp"

using namespace waferprov;
using namespace waferprov::host;
using namespace waferprov::host::report;
using report::testing::random_hex;
using report::testing::synthetic_wafer;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

WaferRun small_wafer(uint64_t seed = 1) { return synthetic_wafer(100, 5, seed); }  // ~300 dies

bool contains(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

fs::path fresh_dir(const std::string& name) {
    fs::path p =
        fs::temp_directory_path() / ("waferprov_report_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// ---- SVG through expat ----------------------------------------------------------------------

struct SvgDoc {
    bool ok = false;
    std::string error;
    size_t die_rects = 0;  // <rect class="cN"> (legend swatches carry no class)
    std::map<std::string, size_t> die_rects_by_class;
    size_t circles = 0;
    std::string text;                                // all character data, concatenated
    std::vector<std::pair<double, double>> rect_xy;  // die rect positions, in document order
};

SvgDoc parse_svg(const std::string& svg) {
    const auto xml = waferprov::testing::walk_xml(svg);
    SvgDoc doc;
    doc.ok = xml.ok;
    doc.error = xml.error;
    doc.text = xml.text;
    for (const auto& e : xml.elements) {
        if (e.name == "circle") doc.circles++;
        const std::string cls = e.attribute("class");
        if (e.name != "rect" || cls.empty()) continue;
        doc.die_rects++;
        doc.die_rects_by_class[cls]++;
        doc.rect_xy.emplace_back(std::atof(e.attribute("x").c_str()),
                                 std::atof(e.attribute("y").c_str()));
    }
    return doc;
}

stdf_test::File parse_stdf_or_fail(const Bytes& b) {
    stdf_test::File f;
    std::string err;
    EXPECT_TRUE(stdf_test::parse(b, f, err)) << err;
    return f;
}

}  // namespace

// ---- summary --------------------------------------------------------------------------------

TEST(ReportSummary, TextCountsEveryOutcomeAndState) {
    WaferRun run = small_wafer();
    ASSERT_GT(run.dies.size(), 200u);
    Tally t = tally(run);
    std::string s = summary_text(std::span(&run, 1));
    for (size_t i = 0; i < kOutcomeCount; ++i) {
        auto o = static_cast<Outcome>(i);
        EXPECT_TRUE(contains(s, to_string(o))) << to_string(o);
    }
    char line[128];
    std::snprintf(line, sizeof line, "  %-38s %10llu", "provisioned",
                  static_cast<unsigned long long>(t.outcomes[Outcome::kProvisioned]));
    EXPECT_TRUE(contains(s, line)) << s;
    std::snprintf(line, sizeof line, "  %-38s %10llu", "PROGRAMMED",
                  static_cast<unsigned long long>(t.states[2]));
    EXPECT_TRUE(contains(s, line)) << s;
    EXPECT_TRUE(contains(s, "60000 left"));
    EXPECT_TRUE(contains(s, "reconciliation: OK"));
    EXPECT_TRUE(contains(s, "2025-01-01T12:00:00Z"));
}

TEST(ReportSummary, JsonCarriesTheSameNumbers) {
    WaferRun run = small_wafer();
    Tally t = tally(run);
    json j = json::parse(summary_json(std::span(&run, 1)));
    EXPECT_EQ(j["tally"]["map_dies"].get<uint64_t>(), run.dies.size());
    for (size_t i = 0; i < kOutcomeCount; ++i)
        EXPECT_EQ(j["tally"]["outcomes"][to_string(static_cast<Outcome>(i))].get<uint64_t>(),
                  t.outcomes.n[i]);
    EXPECT_EQ(j["tally"]["states"]["FAILED"].get<uint64_t>(), t.states[3]);
    EXPECT_EQ(j["quota"]["left"].get<uint64_t>(), 60000u);
    EXPECT_TRUE(j["reconciliation_ok"].get<bool>());
    EXPECT_NEAR(j["dies_per_second"].get<double>(), run.run.dies_per_second, 1e-9);
}

TEST(ReportSummary, MultiWaferSummaryAddsUp) {
    std::vector<WaferRun> runs{synthetic_wafer(100, 5, 1, "L1", 1),
                               synthetic_wafer(100, 5, 2, "L1", 2)};
    json j = json::parse(summary_json(runs));
    EXPECT_EQ(j["tally"]["map_dies"].get<uint64_t>(), runs[0].dies.size() + runs[1].dies.size());
    EXPECT_EQ(j["wafers"].size(), 2u);
    EXPECT_DOUBLE_EQ(j["elapsed_s"].get<double>(), 190.0);
}

// ---- reconciliation -------------------------------------------------------------------------

TEST(ReportReconciliation, ConsistentInputAddsUp) {
    WaferRun run = small_wafer();
    Reconciliation r = reconcile(run);
    EXPECT_TRUE(r.ok());
    const Tally& t = r.tally;
    EXPECT_EQ(t.selected, t.outcomes[Outcome::kProvisioned] + t.outcomes[Outcome::kReissued] +
                              t.outcomes.refused() + t.outcomes[Outcome::kFailedCheck]);
    EXPECT_EQ(t.map_dies, t.selected + t.not_selected);
    std::string text = reconciliation_text(r, run);
    EXPECT_TRUE(contains(text, "RESULT OK"));
    EXPECT_FALSE(contains(text, "MISMATCH"));
    std::string csv = reconciliation_csv(std::span(&r, 1));
    EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 2);
    EXPECT_TRUE(contains(csv, "LOT0042,03," + std::to_string(t.map_dies) + ","));
}

TEST(ReportReconciliation, MismatchWhenDieFlagsContradictOutcomes) {
    WaferRun run = small_wafer();
    for (DieRecord& d : run.dies)
        if (d.outcome == Outcome::kProvisioned) {
            d.selected = false;  // provisioned, yet not flagged selected
            break;
        }
    Reconciliation r = reconcile(run);
    EXPECT_FALSE(r.ok());
    std::string text = reconciliation_text(r, run);
    EXPECT_TRUE(contains(text, "MISMATCH  selected = provisioned + reissued + refused + failed"))
        << text;
    EXPECT_TRUE(contains(text, "RESULT MISMATCH"));
    EXPECT_TRUE(contains(reconciliation_csv(std::span(&r, 1)),
                         "selected = provisioned + reissued + refused + failed"));
}

TEST(ReportReconciliation, MismatchWhenPipelineCountsDisagree) {
    WaferRun run = small_wafer();
    (*run.run.counts)[Outcome::kRefusedQuota] += 2;
    Reconciliation r = reconcile(run);
    EXPECT_EQ(r.mismatches(), 1u);
    EXPECT_TRUE(
        contains(reconciliation_text(r, run), "MISMATCH  pipeline refused-quota = die records"));
}

TEST(ReportReconciliation, MismatchWhenProvisionedDieHasNoLedgerRecordOrQuotaIsOff) {
    WaferRun run = small_wafer();
    for (DieRecord& d : run.dies)
        if (d.outcome == Outcome::kReissued) {
            d.state.reset();
            break;
        }
    run.run.quota->left += 1;
    Reconciliation r = reconcile(run);
    EXPECT_EQ(r.mismatches(), 2u);
    std::string text = reconciliation_text(r, run);
    EXPECT_TRUE(contains(text, "MISMATCH  provisioned + reissued = issued with serial"));
    EXPECT_TRUE(contains(text, "MISMATCH  quota total = used + left"));
}

TEST(ReportReconciliation, LotAggregatesWafersInOrder) {
    std::vector<WaferRun> runs;
    for (int w : {5, 2, 9}) runs.push_back(synthetic_wafer(100, 5, 10 + w, "LOTA", w));
    LotReconciliation lot = reconcile_lot(runs);
    ASSERT_EQ(lot.wafers.size(), 3u);
    EXPECT_EQ(lot.wafers[0].wafer, 2);
    EXPECT_EQ(lot.wafers[2].wafer, 9);
    uint64_t dies = 0;
    for (const WaferRun& r : runs) dies += r.dies.size();
    EXPECT_EQ(lot.total.map_dies, dies);
    EXPECT_TRUE(lot.ok());
    std::string text = lot_reconciliation_text(lot);
    EXPECT_TRUE(contains(text, "TOTAL")) << text;
    EXPECT_TRUE(contains(text, "RESULT OK"));
    std::string csv = lot_reconciliation_csv(lot);
    EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5);  // header, 3 wafers, TOTAL
    EXPECT_TRUE(contains(csv, "LOTA,TOTAL," + std::to_string(dies) + ","));
}

TEST(ReportReconciliation, LotFlagsDuplicateForeignAndTooManyWafers) {
    std::vector<WaferRun> runs;
    for (int w = 1; w <= 25; ++w) runs.push_back(synthetic_wafer(40, 5, 100 + w, "LOTB", w));
    EXPECT_TRUE(reconcile_lot(runs).ok());
    runs.push_back(synthetic_wafer(40, 5, 7, "LOTB", 4));    // wafer 4 again, 26 wafers
    runs.push_back(synthetic_wafer(40, 5, 8, "OTHER", 30));  // not of this lot
    LotReconciliation lot = reconcile_lot(runs);
    EXPECT_FALSE(lot.ok());
    std::string text = lot_reconciliation_text(lot);
    EXPECT_TRUE(contains(text, "MISMATCH  wafers in lot <= 25: 27 > 25")) << text;
    EXPECT_TRUE(contains(text, "MISMATCH  wafer numbers seen twice = 0: 1 != 0"));
    EXPECT_TRUE(contains(text, "MISMATCH  wafers of another lot = 0: 1 != 0"));
}

TEST(ReportReconciliation, CsvQuotesAwkwardLotIds) {
    WaferRun run = small_wafer();
    run.lot = "L,\"1\"";
    Reconciliation r = reconcile(run);
    EXPECT_TRUE(contains(reconciliation_csv(std::span(&r, 1)), "\"L,\"\"1\"\"\",03,"));
}

// ---- SVG ------------------------------------------------------------------------------------

TEST(ReportSvg, WellFormedWithOneRectPerDieColouredByCategory) {
    WaferRun run = small_wafer();
    SvgDoc doc = parse_svg(wafer_svg(run));
    ASSERT_TRUE(doc.ok) << doc.error;
    EXPECT_EQ(doc.die_rects, run.dies.size());
    std::map<std::string, size_t> want;
    for (const DieRecord& d : run.dies)
        want["c" + std::to_string(static_cast<int>(category_of(d)))]++;
    EXPECT_EQ(doc.die_rects_by_class, want);
    EXPECT_EQ(doc.circles, 1u);  // die size known: wafer outline
    EXPECT_TRUE(contains(doc.text, "PROGRAMMED: " + std::to_string(want["c3"])));
    EXPECT_TRUE(contains(doc.text, "Lot LOT0042  wafer 03"));
    EXPECT_TRUE(contains(doc.text, "2025-01-01T12:00:00Z"));
}

TEST(ReportSvg, EscapesTextAndSurvivesBadBytes) {
    WaferRun run = small_wafer();
    run.lot = "L<&>\"'1";
    run.job = std::string("J\x01\xff\xc3", 4);  // control byte, invalid UTF-8
    run.tester_node = "n\xc3\xa9ud";            // valid UTF-8 kept
    SvgDoc doc = parse_svg(wafer_svg(run));
    ASSERT_TRUE(doc.ok) << doc.error;
    EXPECT_TRUE(contains(doc.text, "Lot L<&>\"'1  wafer 03"));
    EXPECT_TRUE(contains(doc.text, "n\xc3\xa9ud"));
}

TEST(ReportSvg, NoOutlineWhenDieSizeUnknown) {
    WaferRun run = small_wafer();
    run.geometry.die_width_mm = run.geometry.die_height_mm = 0;
    SvgDoc doc = parse_svg(wafer_svg(run));
    ASSERT_TRUE(doc.ok) << doc.error;
    EXPECT_EQ(doc.circles, 0u);
    EXPECT_EQ(doc.die_rects, run.dies.size());
}

TEST(ReportSvg, HonoursAxisDirection) {
    WaferRun run;
    run.lot = "AX";
    run.geometry.columns = 3;
    run.geometry.rows = 2;
    for (auto [x, y] : {std::pair{0, 0}, std::pair{2, 1}}) {
        DieRecord d;
        d.x = x;
        d.y = y;
        run.dies.push_back(d);
    }
    auto positions = [&](const char* axis) {
        run.geometry.axis = axis;
        SvgDoc doc = parse_svg(wafer_svg(run, SvgOptions{400, false}));
        EXPECT_TRUE(doc.ok) << doc.error;
        return doc.rect_xy;  // [die (0,0), die (2,1)]
    };
    auto ur = positions("UpRight");  // +x right, +y up: (2,1) right of and above (0,0)
    EXPECT_GT(ur[1].first, ur[0].first);
    EXPECT_LT(ur[1].second, ur[0].second);
    auto dl = positions("DownLeft");  // +x left, +y down
    EXPECT_LT(dl[1].first, dl[0].first);
    EXPECT_GT(dl[1].second, dl[0].second);
    auto dr = positions("DownRight");
    EXPECT_GT(dr[1].first, dr[0].first);
    EXPECT_GT(dr[1].second, dr[0].second);
}

// The map's notch/flat and wafer size reach the picture and STDF WCR (WF_FLAT, WAFR_SIZ).
TEST(ReportSvg, NotchAndOriginDieDrawnAndWcrCarriesTheFlat) {
    WaferRun run = small_wafer();
    if (std::none_of(run.dies.begin(), run.dies.end(),
                     [](const DieRecord& d) { return d.x == 0 && d.y == 0; }))
        run.dies.push_back(DieRecord{});  // the origin die at (0, 0)
    std::string plain = wafer_svg(run);
    EXPECT_FALSE(contains(plain, "id=\"notch\"")) << "no notch without a flat_deg";
    EXPECT_TRUE(contains(plain, "id=\"origin-die\""));
    for (auto [deg, side] : {std::pair{0, 'U'}, std::pair{90, 'R'}, std::pair{180, 'D'},
                             std::pair{270, 'L'}, std::pair{45, ' '}}) {
        run.geometry.flat_deg = deg;
        run.geometry.wafer_diameter_mm = 150;
        std::string svg = wafer_svg(run);
        SvgDoc doc = parse_svg(svg);
        ASSERT_TRUE(doc.ok) << doc.error;
        EXPECT_TRUE(contains(svg, "id=\"notch\"")) << deg;
        EXPECT_TRUE(contains(doc.text, "notch " + std::to_string(deg))) << deg;
        stdf_test::File f = parse_stdf_or_fail(stdf_bytes(run));
        EXPECT_EQ(f.wcr_flat, side) << deg;
        EXPECT_FLOAT_EQ(f.wcr_wafer_size, 150.0f);
    }
    // The notch at 180 degrees lies below the centre of the picture (SVG y grows downwards).
    run.geometry.flat_deg = 180;
    std::string svg = wafer_svg(run);
    const auto at = svg.find("id=\"notch\" d=\"M");
    ASSERT_NE(at, std::string::npos);
    const auto comma = svg.find(',', at);
    EXPECT_GT(std::atof(svg.c_str() + comma + 1), 70.0) << svg.substr(at, 80);
    // Without the origin die on the map, no frame.
    run.dies.erase(std::remove_if(run.dies.begin(), run.dies.end(),
                                  [](const DieRecord& d) { return d.x == 0 && d.y == 0; }),
                   run.dies.end());
    EXPECT_FALSE(contains(wafer_svg(run), "id=\"origin-die\""));
}

// Prints the render times for the record (benchmarks measure; tests never assert timings).
TEST(ReportSvg, SeventeenThousandDiesRenderCompactly) {
    WaferRun run = synthetic_wafer(300, 2.08, 99);  // ~16-17k dies
    ASSERT_GT(run.dies.size(), 15000u);
    auto t0 = std::chrono::steady_clock::now();
    std::string svg = wafer_svg(run);
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    auto t1 = std::chrono::steady_clock::now();
    Bytes stdf = stdf_bytes(run);
    double stdf_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();
    std::printf("%zu dies: SVG %.1f ms %zu bytes; STDF %.1f ms %zu bytes\n", run.dies.size(), ms,
                svg.size(), stdf_ms, stdf.size());
    EXPECT_LT(svg.size(), 4u << 20);
    SvgDoc doc = parse_svg(svg);
    ASSERT_TRUE(doc.ok) << doc.error;
    EXPECT_EQ(doc.die_rects, run.dies.size());
}

// ---- STDF -----------------------------------------------------------------------------------

TEST(ReportStdf, IndependentReaderMatchesTheInput) {
    WaferRun run = small_wafer(5);
    Bytes b = stdf_bytes(run);
    stdf_test::File f = parse_stdf_or_fail(b);
    EXPECT_EQ(f.cpu_type, 2);
    EXPECT_EQ(f.stdf_ver, 4);
    using P = std::pair<int, int>;
    ASSERT_GE(f.sequence.size(), 6u);
    EXPECT_EQ(f.sequence[1], (P{1, 10}));
    EXPECT_EQ(f.sequence[2], (P{1, 80}));
    ASSERT_GE(f.mir_strings.size(), 5u);
    EXPECT_EQ(f.mir_strings[0], "LOT0042");
    EXPECT_EQ(f.mir_strings[1], "WP-P256-A");
    EXPECT_EQ(f.mir_strings[2], "prober-node-1");
    EXPECT_EQ(f.mir_strings[4], "JOB-7");
    EXPECT_EQ(f.start_t, 1735732800u);
    EXPECT_EQ(f.wir_start, 1735732800u);
    EXPECT_EQ(f.wir_wafer_id, "LOT0042-W3");
    EXPECT_EQ(f.wrr_wafer_id, "LOT0042-W3");
    EXPECT_EQ(f.wrr_finish, 1735732895u);
    EXPECT_EQ(f.mrr_finish, 1735732895u);
    EXPECT_EQ(f.sdr_sites, (std::vector<int>{1, 2, 3, 4}));
    EXPECT_EQ(f.wcr_pos_x, 'R');
    EXPECT_EQ(f.wcr_pos_y, 'U');
    EXPECT_FLOAT_EQ(f.wcr_die_w, 5.0f);
    EXPECT_EQ(f.wcr_flat, ' ');  // the map gave no notch

    std::vector<const DieRecord*> tested;
    for (const DieRecord& d : run.dies)
        if (d.outcome != Outcome::kNotSelected) tested.push_back(&d);
    ASSERT_EQ(f.parts.size(), tested.size());
    std::map<uint16_t, uint32_t> hard, soft;
    uint32_t good = 0;
    for (size_t i = 0; i < tested.size(); ++i) {
        const DieRecord& d = *tested[i];
        const stdf_test::Part& p = f.parts[i];
        EXPECT_EQ(p.x, d.x);
        EXPECT_EQ(p.y, d.y);
        EXPECT_EQ(p.site, d.site);
        EXPECT_EQ(p.head, 1);
        EXPECT_EQ(p.part_id, d.uid_hex);
        EXPECT_EQ(p.test_t, d.test_time_ms);
        const bool pass = d.outcome == Outcome::kProvisioned || d.outcome == Outcome::kReissued;
        EXPECT_EQ((p.flags & 0x08) != 0, !pass);
        EXPECT_EQ((p.flags & 0x02) != 0, d.outcome == Outcome::kReissued);
        EXPECT_EQ(p.flags & 0x01, 0);
        const std::map<Outcome, uint16_t> sb{{Outcome::kProvisioned, 1},
                                             {Outcome::kReissued, 2},
                                             {Outcome::kRefusedConflict, 10},
                                             {Outcome::kRefusedQuota, 11},
                                             {Outcome::kFailedCheck, 12}};
        EXPECT_EQ(p.soft_bin, sb.at(d.outcome));
        EXPECT_EQ(p.hard_bin, pass ? 1 : is_refused(d.outcome) ? 2 : 3);
        ASSERT_EQ(p.dtr.size(), 1u);
        std::string want = "WPID";
        if (!d.serial_hex.empty()) want += " serial=" + d.serial_hex;
        want += " uid=" + d.uid_hex + " x=" + std::to_string(d.x) + " y=" + std::to_string(d.y) +
                " outcome=" + to_string(d.outcome) +
                " state=" + (d.state ? to_string(*d.state) : "-");
        EXPECT_EQ(p.dtr[0], want);
        EXPECT_EQ(p.part_txt, d.note);
        hard[p.hard_bin]++;
        soft[p.soft_bin]++;
        if (pass) good++;
    }
    EXPECT_EQ(f.wrr_parts, tested.size());
    EXPECT_EQ(f.wrr_good, good);
    EXPECT_EQ(f.pcr_parts, tested.size());
    EXPECT_EQ(f.pcr_good, good);
    EXPECT_EQ(f.wrr_exc_desc, "");
    ASSERT_EQ(f.hbr.size(), 3u);
    ASSERT_EQ(f.sbr.size(), 5u);
    for (const stdf_test::Bin& h : f.hbr) {
        EXPECT_EQ(h.head, 255);
        EXPECT_EQ(h.count, hard[h.number]) << h.name;
        EXPECT_EQ(h.pf, h.number == 1 ? 'P' : 'F');
    }
    for (const stdf_test::Bin& s : f.sbr) EXPECT_EQ(s.count, soft[s.number]) << s.name;
}

// After the tester link, the ledger's history says which dies were delivered again after a
// FAILED result (Ledger::retests -> DieRecord::retests): their PRR carries the retest bit, and
// WRR and PCR count them; the site each die was reported on is PRR SITE_NUM and SDR lists the
// sites. Parsed back with the test's own reader.
TEST(ReportStdf, RetestsFromTheLedgerHistoryAndSitesAreCounted) {
    WaferRun run;
    run.lot = "RH";
    run.wafer = 2;
    for (int i = 0; i < 6; ++i) {
        DieRecord d;
        d.x = i;
        d.y = 0;
        d.selected = true;
        d.outcome = Outcome::kProvisioned;
        d.state = DieState::kProgrammed;
        d.site = 1 + i % 3;
        d.retests = i == 1 ? 1 : (i == 4 ? 2 : 0);
        run.dies.push_back(d);
    }
    stdf_test::File f = parse_stdf_or_fail(stdf_bytes(run));
    ASSERT_EQ(f.parts.size(), 6u);
    for (size_t i = 0; i < 6; ++i) {
        EXPECT_EQ(f.parts[i].flags, i == 1 || i == 4 ? 0x02 : 0x00) << i;
        EXPECT_EQ(f.parts[i].site, 1 + static_cast<int>(i) % 3) << i;
    }
    EXPECT_EQ(f.sdr_sites, (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(f.wrr_retests, 2u);
    EXPECT_EQ(f.pcr_retests, 2u);
}

TEST(ReportStdf, RetestFlagsForADieSeenTwiceAndMissingCoordinates) {
    WaferRun run;
    run.lot = "RT";
    auto die = [](int x, int y, Outcome o, std::string uid) {
        DieRecord d;
        d.x = x;
        d.y = y;
        d.outcome = o;
        d.selected = true;
        d.uid_hex = std::move(uid);
        return d;
    };
    run.dies = {
        die(1, 1, Outcome::kFailedCheck, "aa"),     die(1, 1, Outcome::kProvisioned, "aa"),
        die(2, 1, Outcome::kReissued, "bb"),        die(40000, 0, Outcome::kProvisioned, "cc"),
        die(40000, 1, Outcome::kProvisioned, "cc"), die(3, 3, Outcome::kProvisioned, "")};
    stdf_test::File f = parse_stdf_or_fail(stdf_bytes(run));
    ASSERT_EQ(f.parts.size(), 6u);
    EXPECT_EQ(f.parts[0].flags, 0x08);
    EXPECT_EQ(f.parts[1].flags, 0x02);  // same X/Y again
    EXPECT_EQ(f.parts[2].flags, 0x02);  // reissued: seen in an earlier run of the lot
    EXPECT_EQ(f.parts[3].x, -32768);    // out of I2 range: missing
    EXPECT_EQ(f.parts[3].flags, 0x00);
    EXPECT_EQ(f.parts[4].flags, 0x01);  // no X/Y: superseded by PART_ID
    EXPECT_EQ(f.parts[5].part_id, "X3Y3");
    EXPECT_EQ(f.wrr_retests, 3u);
}

TEST(ReportStdf, LongStringsAreTruncatedTo255) {
    WaferRun run = small_wafer();
    run.lot = std::string(300, 'L');
    run.dies[0].note = std::string(1000, 'n');
    run.dies[0].outcome = Outcome::kFailedCheck;
    run.dies[0].selected = true;
    stdf_test::File f = parse_stdf_or_fail(stdf_bytes(run));
    EXPECT_EQ(f.mir_strings[0], std::string(255, 'L'));
    EXPECT_EQ(f.parts[0].part_txt, std::string(255, 'n'));
    EXPECT_EQ(f.wrr_exc_desc, "reconciliation MISMATCH");  // run.run.counts now disagree
}

TEST(ReportStdf, NoSecretBytesInTheFile) {
    // The input model has no field for a secret; the wrapped key and KEK the pipeline handled
    // for these dies must therefore appear nowhere, raw or as hex.
    std::mt19937_64 rng(77);
    WaferRun run = small_wafer(77);
    std::vector<std::string> secrets;
    for (int i = 0; i < 16; ++i) secrets.push_back(random_hex(rng, 40));  // wrapped keys
    secrets.push_back(random_hex(rng, 32));                               // a KEK
    Bytes b = stdf_bytes(run);
    std::string file(b.begin(), b.end());
    std::string svg = wafer_svg(run);
    std::string text = summary_text(std::span(&run, 1)) + summary_json(std::span(&run, 1));
    for (const std::string& s : secrets) {
        Bytes raw = from_hex(s).value();
        EXPECT_FALSE(contains(file, s));
        EXPECT_FALSE(contains(file, std::string(raw.begin(), raw.begin() + 8)));
        EXPECT_FALSE(contains(svg, s));
        EXPECT_FALSE(contains(text, s));
    }
    // What a DTR does carry is only the public serial and UID.
    stdf_test::File f = parse_stdf_or_fail(b);
    for (const auto& p : f.parts)
        for (const std::string& t : p.dtr) EXPECT_EQ(t.rfind("WPID ", 0), 0u) << t;
}

// ---- files ----------------------------------------------------------------------------------

TEST(ReportFiles, WaferAndLotReportsUseTheDocumentedLayout) {
    fs::path out = fresh_dir("layout");
    std::vector<WaferRun> runs{synthetic_wafer(60, 5, 1, "LOT/9", 1),
                               synthetic_wafer(60, 5, 2, "LOT/9", 12)};
    WriteOptions opt;
    opt.png = false;
    Result<Written> w = write_lot_reports(out, runs, opt);
    ASSERT_TRUE(w.ok()) << w.error().describe();
    for (const char* f :
         {"LOT_9/01/summary.txt", "LOT_9/01/summary.json", "LOT_9/01/reconciliation.txt",
          "LOT_9/01/reconciliation.csv", "LOT_9/01/wafer.svg", "LOT_9/01/LOT_9_01.stdf",
          "LOT_9/12/wafer.svg", "LOT_9/lot_reconciliation.txt", "LOT_9/lot_reconciliation.csv",
          "LOT_9/lot_summary.txt", "LOT_9/lot_summary.json"})
        EXPECT_TRUE(fs::is_regular_file(out / f)) << f;
    EXPECT_EQ(w->files.size(), 16u);
    // No temporary file is left behind.
    for (const auto& e : fs::recursive_directory_iterator(out))
        EXPECT_NE(e.path().filename().string().front(), '.') << e.path();
    std::string stdf = slurp(out / "LOT_9/12/LOT_9_12.stdf");
    stdf_test::File f = parse_stdf_or_fail(Bytes(stdf.begin(), stdf.end()));
    EXPECT_EQ(f.mir_strings[0], "LOT/9");
    fs::remove_all(out);
}

TEST(ReportFiles, InvalidInputIsRefused) {
    WaferRun run = small_wafer();
    run.dies[3].serial_hex = "12zz";
    const fs::path out = fresh_dir("invalid");
    Result<Written> w = write_wafer_reports(out, run, {});
    fs::remove_all(out);
    ASSERT_FALSE(w.ok());
    EXPECT_TRUE(contains(w.error().message, "serial is not hex"));
    run.dies[3].serial_hex = "";
    run.dies[4].site = 0;
    EXPECT_FALSE(validate(run).ok());
}

TEST(ReportFiles, SafePathComponents) {
    EXPECT_EQ(safe_path_component("LOT-1.A_b"), "LOT-1.A_b");
    EXPECT_EQ(safe_path_component("../x y"), ".._x_y");
    EXPECT_EQ(safe_path_component(".."), "_..");
    EXPECT_EQ(safe_path_component(""), "_");
    // A 256-character lot (the longest a map may carry) still makes file names a file system
    // takes, and two long lots with a common beginning stay apart.
    const std::string a = std::string(250, 'L') + "-00001";
    const std::string b = std::string(250, 'L') + "-00002";
    EXPECT_EQ(safe_path_component(a).size(), kMaxPathComponent);
    EXPECT_EQ(safe_path_component(a).substr(0, 10), "LLLLLLLLLL");
    EXPECT_NE(safe_path_component(a), safe_path_component(b));
    EXPECT_EQ(safe_path_component(a), safe_path_component(a));
    auto run = small_wafer();
    run.lot = std::string(256, 'L');
    const fs::path out = fresh_dir("long-lot");
    Result<Written> w = write_wafer_reports(out, run, {});
    ASSERT_TRUE(w.ok()) << w.error().describe();
    EXPECT_FALSE(w->files.empty());
}

TEST(ReportFiles, PngProducedWhenRsvgConvertIsInstalled) {
    auto tool = find_svg_converter();
    if (!tool || tool->filename() != "rsvg-convert") GTEST_SKIP() << "rsvg-convert not on PATH";
    fs::path out = fresh_dir("png");
    Result<Written> w = write_wafer_reports(out, small_wafer(), {});
    ASSERT_TRUE(w.ok()) << w.error().describe();
    EXPECT_TRUE(w->notes.empty());
    std::string png = slurp(out / "LOT0042/03/wafer.png");
    ASSERT_GT(png.size(), 8u);
    EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
    fs::remove_all(out);
}

TEST(ReportFiles, PngSkippedWithANoteWhenNoConverter) {
    fs::path out = fresh_dir("nopng");
    const char* old = std::getenv("PATH");
    std::string saved = old ? old : "";
    ::setenv("PATH", (out / "empty-bin").c_str(), 1);
    Result<Written> w = write_wafer_reports(out, small_wafer(), {});
    ::setenv("PATH", saved.c_str(), 1);
    ASSERT_TRUE(w.ok()) << w.error().describe();
    ASSERT_EQ(w->notes.size(), 1u);
    EXPECT_TRUE(contains(w->notes[0], "PNG skipped"));
    EXPECT_FALSE(fs::exists(out / "LOT0042/03/wafer.png"));
    EXPECT_TRUE(fs::exists(out / "LOT0042/03/wafer.svg"));
    fs::remove_all(out);
}

TEST(ReportModel, DiesFromMapCarryPositionBinAndUid) {
    WaferMap map;
    map.columns = 4;
    map.rows = 3;
    map.die_width_mm = 2;
    map.die_height_mm = 3;
    map.axis = "DownLeft";
    MapDie a{1, 2, "01", std::nullopt};
    MapDie b{3, 0, "07", wpid1::Uid{}};
    b.uid->fill(0xab);
    map.dies = {a, b};
    MapGeometry g = geometry_of(map);
    EXPECT_EQ(g.columns, 4);
    EXPECT_EQ(g.axis, "DownLeft");
    EXPECT_EQ(g.die_height_mm, 3);
    std::vector<DieRecord> dies = dies_from_map(map);
    ASSERT_EQ(dies.size(), 2u);
    EXPECT_EQ(dies[0].x, 1);
    EXPECT_EQ(dies[0].bin, "01");
    EXPECT_EQ(dies[0].uid_hex, "");
    std::string ab;
    for (int i = 0; i < 16; ++i) ab += "ab";
    EXPECT_EQ(dies[1].uid_hex, ab);
    EXPECT_EQ(dies[1].outcome, Outcome::kNotSelected);
    EXPECT_FALSE(dies[1].selected);
}
