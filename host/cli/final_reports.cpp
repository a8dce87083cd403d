#include "final_reports.hpp"

#include <map>
#include <set>
#include <sstream>

namespace waferprov::cli {
namespace {

namespace rpt = host::report;

rpt::FinalOutcome outcome_of(host::FinalState s) {
    switch (s) {
        case host::FinalState::kVerified: return rpt::FinalOutcome::kVerified;
        case host::FinalState::kProvisioned: return rpt::FinalOutcome::kProvisioned;
        case host::FinalState::kFailed: return rpt::FinalOutcome::kFailed;
        case host::FinalState::kMismatch: return rpt::FinalOutcome::kMismatch;
        case host::FinalState::kChallenged: return rpt::FinalOutcome::kUnanswered;
    }
    return rpt::FinalOutcome::kUnanswered;
}

// What the join needs of a sort record.
struct SortPart {
    std::string lot, where;
    bool programmed = false;
    bool packaged = false;  // given its identity at final test: no sort record
};

rpt::FinalPart part_of(const host::FinalRecord& f, const SortPart* sort) {
    rpt::FinalPart p;
    p.uid_hex = to_hex(f.uid);
    p.outcome = outcome_of(f.state);
    // A part provisioned at final test stays so in the reports when a later insertion verified
    // it; a signature mismatch or an unanswered challenge of such a part still shows as that.
    if (sort != nullptr && sort->packaged && f.state == host::FinalState::kVerified)
        p.outcome = rpt::FinalOutcome::kProvisioned;
    p.handler = f.loc.handler;
    p.site = f.loc.site;
    p.carrier = f.loc.carrier;
    p.row = f.loc.row;
    p.column = f.loc.column;
    p.bin = f.bin;
    p.challenges = f.challenges;
    p.tester = f.tester;
    p.updated_us = f.updated_us;
    if (sort != nullptr && !sort->packaged) p.sort_where = sort->where;
    return p;
}

}  // namespace

bool FinalReports::ok() const {
    for (const auto& r : lots)
        if (!r.ok()) return false;
    return true;
}

std::string FinalReports::text() const {
    std::ostringstream o;
    for (const auto& r : lots) {
        o << "final test " << r.lot << ": " << r.verified.size() << " verified, "
          << r.provisioned.size() << " provisioned at final test, " << r.never_seen.size()
          << " never seen, " << r.mismatched.size() << " mismatched, " << r.failed.size()
          << " failed, " << r.unanswered.size()
          << " never answered: " << (r.ok() ? "OK" : "MISMATCH") << "\n";
        for (const auto& c : r.checks)
            if (!c.ok) o << "  MISMATCH " << c.name << ": " << c.detail << "\n";
    }
    return o.str();
}

nlohmann::json FinalReports::json() const {
    nlohmann::json all = nlohmann::json::array();
    for (const auto& r : lots)
        all.push_back(nlohmann::json::parse(rpt::final_reconciliation_json(r)));
    return {{"ok", ok()}, {"lots", all}};
}

Result<FinalReports> write_final_test_reports(host::Ledger& ledger,
                                              const std::filesystem::path& out,
                                              const std::vector<std::string>& lots,
                                              const std::string& job_id) {
    WP_ASSIGN_OR_RETURN(const auto finals, ledger.list_final());
    std::map<wpid1::Uid, SortPart> sort;
    WP_RETURN_IF_ERROR(ledger.for_each([&](const host::LedgerRecord& r) {
        sort[r.uid] = SortPart{r.loc.lot, r.loc.describe(), r.state == host::DieState::kProgrammed,
                               r.loc.packaged};
        return ok_status();
    }));

    std::map<std::string, rpt::FinalLot> by_lot;
    for (const auto& name : lots) by_lot[name].lot = name;
    for (const auto& f : finals) {
        auto it = sort.find(f.uid);
        const SortPart* s = it == sort.end() ? nullptr : &it->second;
        // The lot sort provisioned the part in; a part given its identity at final test (or
        // one sort never saw) belongs to the lot the handler named.
        const std::string lot = s != nullptr && !s->packaged ? s->lot : f.loc.lot;
        if (!lots.empty() && by_lot.count(lot) == 0) continue;
        by_lot[lot].parts.push_back(part_of(f, s));
    }
    if (by_lot.empty())
        return make_error(ErrorCode::kNotFound,
                          "the ledger holds no final-test record: nothing to report (name a lot "
                          "with --lot to list its parts as never seen at final test)");
    for (const auto& [uid, s] : sort) {
        auto lot = by_lot.find(s.lot);
        if (s.programmed && !s.packaged && lot != by_lot.end())
            lot->second.sorted_uids.push_back(to_hex(uid));
    }
    FinalReports result;
    const auto& config = ledger.config();
    for (auto& [name, lot] : by_lot) {
        lot.lot = name;
        lot.job = job_id;
        lot.product = config.product;
        lot.customer = config.customer;
        WP_ASSIGN_OR_RETURN(auto written, rpt::write_final_reports(out, lot));
        result.files.insert(result.files.end(), written.files.begin(), written.files.end());
        result.lots.push_back(rpt::reconcile_final(lot));
    }
    return result;
}

}  // namespace waferprov::cli
