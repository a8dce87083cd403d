// waferprov report --job FILE --map FILE [--map FILE ...] [--out DIR]: the floor reports of
// wafers from the ledger alone, e.g. after the testers took their identities through `serve`.
#include <filesystem>
#include <iostream>
#include <map>

#include "cli.hpp"
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
    "usage: waferprov report --job FILE --map FILE [--wafer N] [--map FILE [--wafer N] ...]\n"
    "                        [--ledger FILE] [--out DIR]\n"
    "\n"
    "Writes the reports of the wafers (summary, reconciliation, wafer map SVG/PNG, STDF; see\n"
    "docs/reports.md) from the ledger's records as they stand: every die of the job's provision\n"
    "bins that holds an identity counts as provisioned, with its ledger state (DELIVERED,\n"
    "PROGRAMMED, FAILED, ...); a VOID identity counts as failed. --out defaults to reports/ next\n"
    "to the job file. Exit status: 0 every selected die has an identity; 1 some have none (the\n"
    "reconciliation names them) or an error; 2 usage.\n";

Result<int> report(const ParsedArgs& a) {
    WP_ASSIGN_OR_RETURN(host::Job job, host::load_job(a.get("job")));
    if (a.has("ledger")) job.ledger = fs::absolute(a.get("ledger"));
    const fs::path out =
        a.has("out") ? fs::absolute(a.get("out")) : job.file.parent_path() / "reports";
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
            std::cout << "wafer " << map.lot << "/" << map.wafer << ": " << missing
                      << " dies to provision have no identity in the ledger\n";
        }
        wr.run.quota = rpt::Quota{q.quota, q.used, q.left()};
        runs.push_back(std::move(wr));
    }
    std::map<std::string, std::vector<rpt::WaferRun>> lots;
    for (auto& wr : runs) lots[wr.lot].push_back(wr);
    for (const auto& [lot, lot_runs] : lots) {
        WP_ASSIGN_OR_RETURN(auto written, rpt::write_lot_reports(out, lot_runs));
        for (const auto& note : written.notes) std::cout << "note: " << note << "\n";
    }
    std::cout << rpt::summary_text(runs);
    std::cout << "reports in " << out.string() << "\n";
    return complete ? kExitOk : kExitFailure;
}

int run_report(const Args& args) {
    return run_command(
        args, {"report", kUsage, {"job", "map", "wafer", "ledger", "out"}, {}, {"job", "map"}},
        report);
}

}  // namespace

WAFERPROV_COMMAND(report, "report: floor reports of wafers from the ledger as it stands",
                  run_report);

}  // namespace waferprov::cli
