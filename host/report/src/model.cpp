// The input model's helpers, the tally and the reconciliation checks.
#include <algorithm>
#include <cctype>
#include <set>
#include <utility>

#include "waferprov/host/report.hpp"

namespace waferprov::host::report {

namespace {

bool is_hex(std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

std::string u(uint64_t v) { return std::to_string(v); }

Check equal_check(std::string name, uint64_t lhs, uint64_t rhs, const std::string& rhs_terms) {
    Check c;
    c.name = std::move(name);
    c.ok = lhs == rhs;
    c.detail = u(lhs) + (c.ok ? " = " : " != ") + u(rhs);
    if (!rhs_terms.empty()) c.detail += " (" + rhs_terms + ")";
    return c;
}

}  // namespace

const char* to_string(Outcome o) noexcept {
    switch (o) {
        case Outcome::kProvisioned: return "provisioned";
        case Outcome::kReissued: return "reissued";
        case Outcome::kRefusedConflict: return "refused-conflict";
        case Outcome::kRefusedQuota: return "refused-quota";
        case Outcome::kFailedCheck: return "failed-check";
        case Outcome::kNotSelected: return "not-selected";
    }
    return "?";
}

Result<Outcome> outcome_from_string(std::string_view s) {
    for (size_t i = 0; i < kOutcomeCount; ++i)
        if (s == to_string(static_cast<Outcome>(i))) return static_cast<Outcome>(i);
    return make_error(ErrorCode::kInvalidArgument, "unknown outcome '" + std::string(s) + "'");
}

bool is_refused(Outcome o) noexcept {
    return o == Outcome::kRefusedConflict || o == Outcome::kRefusedQuota;
}

uint64_t OutcomeCounts::selected() const {
    uint64_t s = 0;
    for (size_t i = 0; i < kOutcomeCount; ++i)
        if (static_cast<Outcome>(i) != Outcome::kNotSelected) s += n[i];
    return s;
}

uint64_t OutcomeCounts::refused() const {
    return (*this)[Outcome::kRefusedConflict] + (*this)[Outcome::kRefusedQuota];
}

MapGeometry geometry_of(const WaferMap& map) {
    MapGeometry g;
    g.columns = map.columns;
    g.rows = map.rows;
    g.die_width_mm = map.die_width_mm;
    g.die_height_mm = map.die_height_mm;
    g.origin = map.origin;
    g.axis = map.axis;
    g.wafer_diameter_mm = map.wafer_diameter_mm;
    g.flat_deg = map.flat_deg;
    return g;
}

std::vector<DieRecord> dies_from_map(const WaferMap& map) {
    std::vector<DieRecord> dies;
    dies.reserve(map.dies.size());
    for (const MapDie& m : map.dies) {
        DieRecord d;
        d.x = m.x;
        d.y = m.y;
        d.bin = m.bin;
        if (m.uid) d.uid_hex = to_hex(*m.uid);
        dies.push_back(std::move(d));
    }
    return dies;
}

Status validate(const WaferRun& run) {
    for (const DieRecord& d : run.dies) {
        auto where = [&] {
            return "die (" + std::to_string(d.x) + ", " + std::to_string(d.y) + ") of " + run.lot +
                   " wafer " + std::to_string(run.wafer);
        };
        if (!is_hex(d.serial_hex))
            return make_error(ErrorCode::kInvalidArgument, where() + ": serial is not hex");
        if (!is_hex(d.uid_hex))
            return make_error(ErrorCode::kInvalidArgument, where() + ": UID is not hex");
        if (d.site < 1 || d.site > 255)
            return make_error(ErrorCode::kInvalidArgument,
                              where() + ": site " + std::to_string(d.site) + " not in 1..255");
    }
    return ok_status();
}

Tally& Tally::operator+=(const Tally& o) {
    map_dies += o.map_dies;
    selected += o.selected;
    not_selected += o.not_selected;
    for (size_t i = 0; i < kOutcomeCount; ++i) outcomes.n[i] += o.outcomes.n[i];
    for (size_t i = 0; i < kDieStateCount; ++i) states[i] += o.states[i];
    no_state += o.no_state;
    issued_with_record += o.issued_with_record;
    return *this;
}

Tally tally(const WaferRun& run) {
    Tally t;
    t.map_dies = run.dies.size();
    for (const DieRecord& d : run.dies) {
        (d.selected ? t.selected : t.not_selected)++;
        t.outcomes[d.outcome]++;
        if (d.state)
            t.states[static_cast<size_t>(*d.state)]++;
        else
            t.no_state++;
        if ((d.outcome == Outcome::kProvisioned || d.outcome == Outcome::kReissued) && d.state &&
            (*d.state == DieState::kIssued || *d.state == DieState::kDelivered ||
             *d.state == DieState::kProgrammed) &&
            !d.serial_hex.empty())
            t.issued_with_record++;
    }
    return t;
}

namespace {

std::vector<Check> tally_checks(const Tally& t) {
    const OutcomeCounts& o = t.outcomes;
    std::vector<Check> checks;
    checks.push_back(equal_check("not selected = dies with outcome not-selected", t.not_selected,
                                 o[Outcome::kNotSelected], ""));
    checks.push_back(equal_check(
        "selected = provisioned + reissued + refused + failed", t.selected, o.selected(),
        u(o[Outcome::kProvisioned]) + " + " + u(o[Outcome::kReissued]) + " + " +
            u(o[Outcome::kRefusedConflict]) + " + " + u(o[Outcome::kRefusedQuota]) + " + " +
            u(o[Outcome::kFailedCheck])));
    checks.push_back(
        equal_check("provisioned + reissued = issued with serial and live ledger record",
                    o[Outcome::kProvisioned] + o[Outcome::kReissued], t.issued_with_record,
                    "ISSUED/DELIVERED/PROGRAMMED"));
    return checks;
}

}  // namespace

bool Reconciliation::ok() const {
    return std::all_of(checks.begin(), checks.end(), [](const Check& c) { return c.ok; });
}

size_t Reconciliation::mismatches() const {
    return static_cast<size_t>(
        std::count_if(checks.begin(), checks.end(), [](const Check& c) { return !c.ok; }));
}

Reconciliation reconcile(const WaferRun& run) {
    Reconciliation r;
    r.lot = run.lot;
    r.wafer = run.wafer;
    r.tally = tally(run);
    r.checks = tally_checks(r.tally);

    std::set<std::pair<int, int>> seen;
    for (const DieRecord& d : run.dies) seen.emplace(d.x, d.y);
    r.checks.push_back(
        equal_check("map dies = distinct positions", r.tally.map_dies, seen.size(), ""));
    if (run.geometry.columns > 0 && run.geometry.rows > 0) {
        uint64_t cells =
            static_cast<uint64_t>(run.geometry.columns) * static_cast<uint64_t>(run.geometry.rows);
        Check c{"map dies <= columns x rows",
                u(r.tally.map_dies) + (r.tally.map_dies <= cells ? " <= " : " > ") + u(cells),
                r.tally.map_dies <= cells};
        r.checks.push_back(c);
    }
    if (run.run.counts) {
        const OutcomeCounts& p = *run.run.counts;
        for (size_t i = 0; i < kOutcomeCount; ++i) {
            auto oc = static_cast<Outcome>(i);
            r.checks.push_back(
                equal_check(std::string("pipeline ") + to_string(oc) + " = die records", p[oc],
                            r.tally.outcomes[oc], ""));
        }
    }
    if (run.run.quota) {
        const Quota& q = *run.run.quota;
        r.checks.push_back(equal_check("quota total = used + left", q.total, q.used + q.left,
                                       u(q.used) + " + " + u(q.left)));
    }
    return r;
}

bool LotReconciliation::ok() const {
    return std::all_of(checks.begin(), checks.end(), [](const Check& c) { return c.ok; }) &&
           std::all_of(wafers.begin(), wafers.end(),
                       [](const Reconciliation& w) { return w.ok(); });
}

LotReconciliation reconcile_lot(std::span<const WaferRun> runs) {
    LotReconciliation lot;
    if (!runs.empty()) lot.lot = runs.front().lot;
    std::vector<const WaferRun*> order;
    for (const WaferRun& r : runs) order.push_back(&r);
    std::stable_sort(order.begin(), order.end(),
                     [](const WaferRun* a, const WaferRun* b) { return a->wafer < b->wafer; });
    std::set<int> numbers;
    uint64_t duplicates = 0;
    uint64_t other_lot = 0;
    for (const WaferRun* r : order) {
        lot.wafers.push_back(reconcile(*r));
        lot.total += lot.wafers.back().tally;
        if (!numbers.insert(r->wafer).second) duplicates++;
        if (r->lot != lot.lot) other_lot++;
    }
    const uint64_t n = order.size();
    lot.checks.push_back(
        Check{"wafers in lot <= 25", u(n) + (n <= 25 ? " <= 25" : " > 25"), n <= 25});
    lot.checks.push_back(equal_check("wafers of another lot = 0", other_lot, 0, ""));
    lot.checks.push_back(equal_check("wafer numbers seen twice = 0", duplicates, 0, ""));
    uint64_t bad = static_cast<uint64_t>(std::count_if(
        lot.wafers.begin(), lot.wafers.end(), [](const Reconciliation& w) { return !w.ok(); }));
    lot.checks.push_back(equal_check("wafers with a MISMATCH = 0", bad, 0, ""));
    for (Check& c : tally_checks(lot.total)) {
        c.name = "lot: " + c.name;
        lot.checks.push_back(std::move(c));
    }
    return lot;
}

MapCategory category_of(const DieRecord& d) noexcept {
    if (d.outcome == Outcome::kNotSelected && !d.selected) return MapCategory::kNotSelected;
    if (is_refused(d.outcome)) return MapCategory::kRefused;
    if (d.state) {
        switch (*d.state) {
            case DieState::kIssued: return MapCategory::kIssued;
            case DieState::kDelivered: return MapCategory::kDelivered;
            case DieState::kProgrammed: return MapCategory::kProgrammed;
            case DieState::kFailed: return MapCategory::kFailed;
            case DieState::kVoid: return MapCategory::kVoid;
        }
    }
    if (d.outcome == Outcome::kFailedCheck) return MapCategory::kFailed;
    return MapCategory::kNoRecord;
}

const char* to_string(MapCategory c) noexcept {
    switch (c) {
        case MapCategory::kNotSelected: return "not selected / failed earlier bin";
        case MapCategory::kIssued: return "ISSUED";
        case MapCategory::kDelivered: return "DELIVERED";
        case MapCategory::kProgrammed: return "PROGRAMMED";
        case MapCategory::kFailed: return "FAILED";
        case MapCategory::kVoid: return "VOID";
        case MapCategory::kRefused: return "refused (conflict or quota)";
        case MapCategory::kNoRecord: return "selected, no ledger record";
    }
    return "?";
}

// Colour-blind-friendly where it matters: pass states are blue/green shades, failures
// red/black, refusals orange, untouched dies light grey.
const char* colour_of(MapCategory c) noexcept {
    switch (c) {
        case MapCategory::kNotSelected: return "#d9d9d9";
        case MapCategory::kIssued: return "#fdd835";
        case MapCategory::kDelivered: return "#64b5f6";
        case MapCategory::kProgrammed: return "#2e7d32";
        case MapCategory::kFailed: return "#d32f2f";
        case MapCategory::kVoid: return "#212121";
        case MapCategory::kRefused: return "#fb8c00";
        case MapCategory::kNoRecord: return "#ffffff";
    }
    return "#ff00ff";
}

}  // namespace waferprov::host::report
