// waferprov report --job FILE --map FILE [--map FILE ...] [--final-test] [--out DIR] [--json]:
// the floor reports of wafers, and of final test, from the ledger alone, e.g. after the testers
// took their identities through `serve`.
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "final_reports.hpp"
#include "maps.hpp"
#include "wafer_run.hpp"
#include "waferprov/host/job.hpp"
#include "waferprov/host/ledger.hpp"
#include "waferprov/host/report.hpp"
#include "waferprov/host/wafermap.hpp"

namespace waferprov::cli {
namespace {

namespace fs = std::filesystem;
namespace rpt = host::report;

constexpr const char* kUsage =
    "usage: waferprov report --job FILE [--map FILE [--wafer N] ...] [--final-test [--lot ID "
    "...]]\n"
    "                        [--ledger FILE] [--out DIR] [--json]\n"
    "\n"
    "Writes the reports of the wafers (summary, reconciliation, wafer map SVG/PNG, STDF; see\n"
    "docs/reports.md) from the ledger's records as they stand: every die of the job's provision\n"
    "bins that holds an identity counts as provisioned, with its ledger state (DELIVERED,\n"
    "PROGRAMMED, FAILED, ...); a VOID identity counts as failed. --out defaults to reports/ next\n"
    "to the job file.\n"
    "\n"
    "--final-test writes, per lot final test saw (or per --lot), <out>/<lot>/<lot>_final.stdf\n"
    "(a PRR per part: PART_ID the UID, no X/Y, SITE_NUM the handler's site) and\n"
    "final_reconciliation.txt|.json joining sort and final test: provisioned at sort and\n"
    "verified, provisioned at final test, provisioned at sort but never seen at final test,\n"
    "mismatched (swapped or counterfeit), failed at final test, challenged but never answered\n"
    "(docs/final-test.md). Give --map, --final-test or both.\n"
    "\n"
    "--json prints one JSON document instead of the text: {\"reports\": DIR, \"wafers\": the\n"
    "lot summary (with --map), \"final_test\": {\"ok\", \"lots\": [...]} (with --final-test),\n"
    "\"exit_status\"}.\n"
    "\n"
    "Exit status: 0 every selected die has an identity and every final-test reconciliation is\n"
    "OK; 1 some die has none (the reconciliation names them), a part failed to prove its\n"
    "identity at final test (a signature mismatch: swapped or counterfeit) or a final-test check\n"
    "failed (the output says which), or an error; 2 usage.\n";

// The wafer reports of the --map wafers; their summary goes to `text` and `j["wafers"]`.
Result<int> wafer_reports(const ParsedArgs& a, const host::Job& job, const fs::path& out,
                          std::ostream& text, nlohmann::json& j) {
    std::vector<host::WaferMap> maps;
    WP_ASSIGN_OR_RETURN(const auto map_list, map_args(a));
    for (const auto& arg : map_list) {
        WP_ASSIGN_OR_RETURN(auto map, read_map(arg, map_options_of(job)));
        maps.push_back(std::move(map));
    }
    WP_ASSIGN_OR_RETURN(auto ledger, host::Ledger::open_existing(job.ledger));
    if (ledger->config().job_id != job.id)
        return make_error(
            ErrorCode::kInvalidArgument,
            job.ledger.string() + " belongs to job " + ledger->config().job_id + ", not " + job.id);
    WP_ASSIGN_OR_RETURN(auto q, ledger->quota());
    WP_ASSIGN_OR_RETURN(const auto retests, ledger->retests());
    std::vector<rpt::WaferRun> runs;
    bool complete = true;
    for (const auto& map : maps) {
        WP_ASSIGN_OR_RETURN(auto selected_dies, host::select_dies(map, job.provision_bins));
        std::set<std::pair<int, int>> selected;
        for (const auto& d : selected_dies) selected.insert({d.x, d.y});
        WP_ASSIGN_OR_RETURN(auto records, ledger->list_wafer(map.lot, map.wafer));
        rpt::WaferRun wr = wafer_run_from_ledger(job, map, records, selected, retests);
        int64_t first = 0, last = 0;
        for (const auto& r : records) {
            if (r.loc.substrate != map.substrate_id) continue;  // another physical wafer
            first = first == 0 ? r.issued_us : std::min(first, r.issued_us);
            last = std::max(last, r.updated_us);
        }
        wr.start_unix = first / 1000000;
        wr.finish_unix = last / 1000000;
        // From the ledger alone, the wafer's work spans its first issue to its last change
        // (through `serve`, the touchdowns and results): elapsed and rate follow from the same
        // two times the summary prints, never from a pipeline run this command did not do.
        size_t with_identity = 0;
        for (const auto& r : records) with_identity += r.loc.substrate == map.substrate_id;
        wr.run.elapsed_s = last > first ? static_cast<double>(last - first) / 1e6 : 0.0;
        wr.run.dies_per_second =
            wr.run.elapsed_s > 0 ? static_cast<double>(with_identity) / wr.run.elapsed_s : 0.0;
        size_t missing = 0;
        for (auto& d : wr.dies) {
            if (!d.selected) continue;
            if (!d.state) {
                ++missing;
                continue;  // left kNotSelected: the reconciliation reports the gap
            }
            if (*d.state == host::DieState::kVoid) {
                d.outcome = rpt::Outcome::kFailedCheck;
                d.note = "identity VOID";
            } else {
                d.outcome = rpt::Outcome::kProvisioned;
            }
        }
        if (missing > 0) {
            complete = false;
            text << "wafer " << map.lot << "/" << map.wafer << ": " << missing
                 << " dies to provision have no identity in the ledger\n";
        }
        wr.run.quota = rpt::Quota{q.quota, q.used, q.left()};
        runs.push_back(std::move(wr));
    }
    std::map<std::string, std::vector<rpt::WaferRun>> lots;
    for (auto& wr : runs) lots[wr.lot].push_back(wr);
    for (const auto& [lot, lot_runs] : lots) {
        WP_ASSIGN_OR_RETURN(auto written, rpt::write_lot_reports(out, lot_runs));
        for (const auto& note : written.notes) std::cerr << "note: " << note << "\n";
    }
    text << rpt::summary_text(runs);
    j["wafers"] = nlohmann::json::parse(rpt::summary_json(runs));
    return complete ? kExitOk : kExitFailure;
}

Result<int> report(const ParsedArgs& a) {
    if (!a.has("map") && !a.has("final-test")) {
        std::cerr << "waferprov report: give --map FILE (wafer reports), --final-test, or both\n"
                  << kUsage;
        return kExitUsage;
    }
    if (a.has("lot") && !a.has("final-test")) {
        std::cerr << "waferprov report: --lot names the lots of --final-test\n" << kUsage;
        return kExitUsage;
    }
    WP_ASSIGN_OR_RETURN(host::Job job, host::load_job(a.get("job")));
    if (a.has("ledger")) job.ledger = host::ledger_argument(a.get("ledger"));
    const fs::path out =
        a.has("out") ? fs::absolute(a.get("out")) : job.file.parent_path() / "reports";
    std::ostringstream text;
    nlohmann::json j = {{"reports", out.string()}};
    int status = kExitOk;
    if (a.has("map")) {
        WP_ASSIGN_OR_RETURN(status, wafer_reports(a, job, out, text, j));
    }
    if (a.has("final-test")) {
        WP_ASSIGN_OR_RETURN(auto ledger, host::Ledger::open_existing(job.ledger));
        if (ledger->config().job_id != job.id)
            return make_error(ErrorCode::kInvalidArgument,
                              job.ledger.string() + " belongs to job " + ledger->config().job_id +
                                  ", not " + job.id);
        WP_ASSIGN_OR_RETURN(auto final_test,
                            write_final_test_reports(*ledger, out, a.all("lot"), job.id));
        text << final_test.text();
        j["final_test"] = final_test.json();
        if (!final_test.ok()) status = kExitFailure;
    }
    text << "reports in " << out.string() << "\n";
    j["exit_status"] = status;
    std::cout << (a.has("json") ? j.dump(1) + "\n" : text.str());
    return status;
}

int run_report(const Args& args) {
    return run_command(args,
                       {"report",
                        kUsage,
                        {"job", "map", "wafer", "ledger", "out", "lot"},
                        {"final-test", "json"},
                        {"job"}},
                       report);
}

}  // namespace

WAFERPROV_COMMAND(report,
                  "report: floor reports of wafers and of final test from the ledger as it stands",
                  run_report);

}  // namespace waferprov::cli
