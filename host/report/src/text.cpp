// The text, CSV and JSON renderers: end-of-run summary and reconciliation.
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <set>

#include <nlohmann/json.hpp>

#include "report_internal.hpp"
#include "waferprov/host/report.hpp"

namespace waferprov::host::report {

std::string iso_time(int64_t unix_s) {
    if (unix_s <= 0) return "-";
    std::time_t t = static_cast<std::time_t>(unix_s);
    std::tm tm{};
    if (gmtime_r(&t, &tm) == nullptr) return "-";
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string printable(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        auto b = static_cast<unsigned char>(c);
        out += (b < 0x20 || b == 0x7f) ? '?' : c;  // no terminal escapes from a lot id
    }
    return out;
}

std::string wafer_label(int wafer) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%02d", wafer);
    return buf;
}

namespace {

using json = nlohmann::json;

std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

// "label ........ value" rows of a fixed-width table.
void row(std::string& out, std::string_view label, uint64_t v, int indent = 0) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%*s%-*s %10" PRIu64 "\n", indent, "", 40 - indent,
                  std::string(label).c_str(), v);
    out += buf;
}

void check_lines(std::string& out, const std::vector<Check>& checks) {
    for (const Check& c : checks) {
        char buf[512];
        std::snprintf(buf, sizeof buf, "  %-9s %s: %s\n", c.ok ? "OK" : "MISMATCH", c.name.c_str(),
                      c.detail.c_str());
        out += buf;
    }
}

struct Aggregate {
    Tally tally;
    double elapsed_s = 0;
    double dies_processed = 0;  // dies/s x elapsed, summed
    std::optional<Quota> quota;
    int64_t start = 0;
    int64_t finish = 0;
    std::set<std::string> lots;
    std::vector<int> wafers;
    size_t mismatches = 0;
};

Aggregate aggregate(std::span<const WaferRun> runs) {
    Aggregate a;
    for (const WaferRun& r : runs) {
        Reconciliation rec = reconcile(r);
        a.tally += rec.tally;
        a.mismatches += rec.mismatches();
        a.elapsed_s += r.run.elapsed_s;
        a.dies_processed += r.run.dies_per_second * r.run.elapsed_s;
        if (r.run.quota) a.quota = r.run.quota;
        if (r.start_unix > 0 && (a.start == 0 || r.start_unix < a.start)) a.start = r.start_unix;
        if (r.finish_unix > a.finish) a.finish = r.finish_unix;
        a.lots.insert(r.lot);
        a.wafers.push_back(r.wafer);
    }
    return a;
}

double dies_per_second(const Aggregate& a, std::span<const WaferRun> runs) {
    if (runs.size() == 1) return runs.front().run.dies_per_second;
    return a.elapsed_s > 0 ? a.dies_processed / a.elapsed_s : 0.0;
}

std::string join_lots(const std::set<std::string>& lots) {
    std::string s;
    for (const std::string& l : lots) s += (s.empty() ? "" : ", ") + printable(l);
    return s;
}

const char* csv_header =
    "lot,wafer,map_dies,selected,not_selected,provisioned,reissued,refused_conflict,"
    "refused_quota,failed_check,outcome_not_selected,state_issued,state_delivered,"
    "state_programmed,state_failed,state_void,state_none,checks,mismatches,failed_checks\n";

std::string csv_field(std::string_view s) {
    bool quote = s.find_first_of(",\"\r\n") != std::string_view::npos;
    if (!quote) return std::string(s);
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

std::string csv_row(std::string_view lot, std::string_view wafer, const Tally& t,
                    const std::vector<Check>& checks) {
    std::string out = csv_field(lot) + "," + csv_field(wafer);
    auto add = [&](uint64_t v) { out += "," + std::to_string(v); };
    add(t.map_dies);
    add(t.selected);
    add(t.not_selected);
    for (size_t i = 0; i < kOutcomeCount; ++i) add(t.outcomes.n[i]);
    for (size_t i = 0; i < kDieStateCount; ++i) add(t.states[i]);
    add(t.no_state);
    std::string failed;
    size_t bad = 0;
    for (const Check& c : checks)
        if (!c.ok) {
            failed += (failed.empty() ? "" : "; ") + c.name;
            bad++;
        }
    add(checks.size());
    add(bad);
    out += "," + csv_field(failed) + "\n";
    return out;
}

void tally_table(std::string& out, const Tally& t) {
    const OutcomeCounts& o = t.outcomes;
    out += "                                               dies\n";
    row(out, "map dies", t.map_dies);
    row(out, "not selected", t.not_selected, 2);
    row(out, "selected", t.selected, 2);
    row(out, "provisioned", o[Outcome::kProvisioned], 4);
    row(out, "reissued", o[Outcome::kReissued], 4);
    row(out, "refused", o.refused(), 4);
    row(out, "conflict", o[Outcome::kRefusedConflict], 6);
    row(out, "quota", o[Outcome::kRefusedQuota], 6);
    row(out, "failed check", o[Outcome::kFailedCheck], 4);
    out += "ledger state (all map dies)\n";
    for (size_t i = 0; i < kDieStateCount; ++i)
        row(out, to_string(static_cast<DieState>(i)), t.states[i], 2);
    row(out, "(no record)", t.no_state, 2);
}

json tally_json(const Tally& t) {
    json outcomes = json::object();
    for (size_t i = 0; i < kOutcomeCount; ++i)
        outcomes[to_string(static_cast<Outcome>(i))] = t.outcomes.n[i];
    json states = json::object();
    for (size_t i = 0; i < kDieStateCount; ++i)
        states[to_string(static_cast<DieState>(i))] = t.states[i];
    states["none"] = t.no_state;
    return json{{"map_dies", t.map_dies},
                {"selected", t.selected},
                {"not_selected", t.not_selected},
                {"outcomes", outcomes},
                {"states", states}};
}

json checks_json(const std::vector<Check>& checks) {
    json a = json::array();
    for (const Check& c : checks)
        a.push_back(json{{"check", c.name}, {"detail", c.detail}, {"ok", c.ok}});
    return a;
}

}  // namespace

std::string summary_text(std::span<const WaferRun> runs) {
    Aggregate a = aggregate(runs);
    const OutcomeCounts& o = a.tally.outcomes;
    std::string out = "waferprov run summary\n";
    std::string wafers;
    for (int w : a.wafers) wafers += " " + wafer_label(w);
    out += "lot " + join_lots(a.lots) + "  wafers" + wafers + "\n";
    if (!runs.empty()) {
        const WaferRun& f = runs.front();
        out += "job " + printable(f.job) + "  product " + printable(f.product) + "  customer " +
               printable(f.customer) + "  node " + printable(f.tester_node) + "\n";
    }
    out += "start " + iso_time(a.start) + "  finish " + iso_time(a.finish) + "\n";
    out += "elapsed " + fixed(a.elapsed_s, 1) + " s  rate " + fixed(dies_per_second(a, runs), 1) +
           " dies/s\n";
    if (a.quota)
        out += "quota " + std::to_string(a.quota->total) + " total, " +
               std::to_string(a.quota->used) + " used, " + std::to_string(a.quota->left) +
               " left\n";
    else
        out += "quota none\n";
    out += "\noutcome                                        dies\n";
    for (size_t i = 0; i < kOutcomeCount; ++i)
        row(out, to_string(static_cast<Outcome>(i)), o.n[i], 2);
    row(out, "selected", o.selected(), 2);
    out += "\nledger state                                   dies\n";
    for (size_t i = 0; i < kDieStateCount; ++i)
        row(out, to_string(static_cast<DieState>(i)), a.tally.states[i], 2);
    row(out, "(no record)", a.tally.no_state, 2);
    out += "\nreconciliation: ";
    out += a.mismatches == 0 ? std::string("OK\n")
                             : "MISMATCH (" + std::to_string(a.mismatches) +
                                   " checks failed; see reconciliation.txt)\n";
    return out;
}

std::string summary_json(std::span<const WaferRun> runs) {
    Aggregate a = aggregate(runs);
    json wafers = json::array();
    for (const WaferRun& r : runs) {
        Reconciliation rec = reconcile(r);
        json w{{"lot", r.lot},
               {"wafer", r.wafer},
               {"substrate_id", r.substrate_id},
               {"start", iso_time(r.start_unix)},
               {"finish", iso_time(r.finish_unix)},
               {"elapsed_s", r.run.elapsed_s},
               {"dies_per_second", r.run.dies_per_second},
               {"tally", tally_json(rec.tally)},
               {"reconciliation_ok", rec.ok()},
               {"checks", checks_json(rec.checks)}};
        wafers.push_back(std::move(w));
    }
    json doc{{"format", "waferprov-summary-1"},
             {"lots", json(std::vector<std::string>(a.lots.begin(), a.lots.end()))},
             {"start", iso_time(a.start)},
             {"finish", iso_time(a.finish)},
             {"elapsed_s", a.elapsed_s},
             {"dies_per_second", dies_per_second(a, runs)},
             {"tally", tally_json(a.tally)},
             {"reconciliation_ok", a.mismatches == 0},
             {"mismatches", a.mismatches},
             {"wafers", wafers}};
    if (!runs.empty()) {
        doc["job"] = runs.front().job;
        doc["product"] = runs.front().product;
        doc["customer"] = runs.front().customer;
        doc["tester_node"] = runs.front().tester_node;
    }
    doc["quota"] =
        a.quota ? json{{"total", a.quota->total}, {"used", a.quota->used}, {"left", a.quota->left}}
                : json(nullptr);
    // Invalid UTF-8 in a lot id must not throw: replace it.
    return doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string reconciliation_text(const Reconciliation& r, const WaferRun& run) {
    std::string out = "Reconciliation  lot " + printable(r.lot) + "  wafer " + wafer_label(r.wafer);
    if (!run.substrate_id.empty()) out += "  substrate " + printable(run.substrate_id);
    out += "\njob " + printable(run.job) + "  product " + printable(run.product) + "  customer " +
           printable(run.customer) + "  node " + printable(run.tester_node) + "\nstart " +
           iso_time(run.start_unix) + "  finish " + iso_time(run.finish_unix) + "\n\n";
    tally_table(out, r.tally);
    out += "checks\n";
    check_lines(out, r.checks);
    out += r.ok() ? std::string("RESULT OK\n")
                  : "RESULT MISMATCH (" + std::to_string(r.mismatches()) + " of " +
                        std::to_string(r.checks.size()) + " checks)\n";
    return out;
}

std::string reconciliation_csv(std::span<const Reconciliation> rows) {
    std::string out = csv_header;
    for (const Reconciliation& r : rows)
        out += csv_row(r.lot, wafer_label(r.wafer), r.tally, r.checks);
    return out;
}

std::string lot_reconciliation_text(const LotReconciliation& lot) {
    std::string out = "Lot reconciliation  lot " + printable(lot.lot) + "  wafers " +
                      std::to_string(lot.wafers.size()) + "\n\n";
    const char* head = "%-6s %7s %7s %7s %7s %7s %7s %7s %7s %7s %7s %7s %7s %7s  %s\n";
    char buf[256];
    std::snprintf(buf, sizeof buf, head, "wafer", "map", "notsel", "sel", "prov", "reiss", "ref-cf",
                  "ref-qt", "failed", "ISSUED", "DELIV", "PROGR", "FAILED", "VOID", "check");
    out += buf;
    auto line = [&](const std::string& label, const Tally& t, bool ok) {
        const OutcomeCounts& o = t.outcomes;
        std::snprintf(buf, sizeof buf,
                      "%-6s %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %7" PRIu64
                      " %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %7" PRIu64
                      " %7" PRIu64 " %7" PRIu64 "  %s\n",
                      label.c_str(), t.map_dies, t.not_selected, t.selected,
                      o[Outcome::kProvisioned], o[Outcome::kReissued], o[Outcome::kRefusedConflict],
                      o[Outcome::kRefusedQuota], o[Outcome::kFailedCheck], t.states[0], t.states[1],
                      t.states[2], t.states[3], t.states[4], ok ? "OK" : "MISMATCH");
        out += buf;
    };
    for (const Reconciliation& w : lot.wafers) line(wafer_label(w.wafer), w.tally, w.ok());
    out += std::string(118, '-') + "\n";
    line("TOTAL", lot.total, lot.ok());
    out += "\nchecks\n";
    check_lines(out, lot.checks);
    for (const Reconciliation& w : lot.wafers)
        for (const Check& c : w.checks)
            if (!c.ok)
                out += "  MISMATCH  wafer " + wafer_label(w.wafer) + ": " + c.name + ": " +
                       c.detail + "\n";
    out += lot.ok() ? "RESULT OK\n" : "RESULT MISMATCH\n";
    return out;
}

std::string lot_reconciliation_csv(const LotReconciliation& lot) {
    std::string out = reconciliation_csv(lot.wafers);
    out += csv_row(lot.lot, "TOTAL", lot.total, lot.checks);
    return out;
}

}  // namespace waferprov::host::report
