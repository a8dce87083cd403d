// waferprov run --job FILE --map FILE [--map FILE ...]: pre-generate the identities of every die
// to provision, commit them to the ledger, and write the floor reports.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include <thread>

#include "cli.hpp"
#include "maps.hpp"
#include "wafer_run.hpp"
#include "waferprov/host/job.hpp"
#include "waferprov/host/ledger.hpp"
#include "waferprov/host/pipeline.hpp"
#include "waferprov/host/report.hpp"
#include "waferprov/host/wafermap.hpp"

namespace waferprov::cli {
namespace {

namespace fs = std::filesystem;
namespace rpt = host::report;

constexpr const char* kUsage =
    "usage: waferprov run --job FILE --map FILE [--wafer N] [--map FILE [--wafer N] ...]\n"
    "                     [--threads N] [--ledger FILE] [--out DIR] [--batch N] [--no-progress]\n"
    "                     [--backend SPEC]\n"
    "\n"
    "Pre-generates the identity of every die to provision (the job's provision_bins) on the\n"
    "job's backend, signs the device certificates with the job's CA and commits them to the\n"
    "ledger, then writes the reports (summary, reconciliation, wafer map SVG/PNG, STDF) to\n"
    "--out (default: reports/ next to the job file). Several --map files make a lot.\n"
    "--threads 1 is the serial baseline (default: all cores). --ledger overrides the job's\n"
    "ledger. --batch: dies per backend batch and per ledger transaction (default 512).\n"
    "--backend SPEC: the accelerator instead of the job's, NAME[:KEY=VALUE,...] (software,\n"
    "verilator[:engines=N], xdma[:device=PREFIX,...]; docs/drivers.md); the job's\n"
    "keys.device_key stays.\n"
    "--wafer N gives the wafer number of the --map before it, for a map whose own fields do\n"
    "not give one (E142 without SlotNumber, a SINF WAFER that is free text; docs/wafer-maps.md).\n"
    "The map's substrate id is part of every die's location: a wafer number already recorded\n"
    "under another substrate id is another physical wafer, refused with an ALARM.\n"
    "Rerunning the same command is idempotent: dies already in the ledger are kept.\n"
    "Exit status: 0 every selected die has its identity; 1 a die was refused or a check\n"
    "failed, or an error; 2 usage.\n";

// A one-line progress bar on a terminal: done/total, dies/s and time left.
class Progress {
public:
    explicit Progress(bool enabled) : enabled_(enabled), start_(std::chrono::steady_clock::now()) {}
    void update(size_t done, size_t total) {
        if (!enabled_ || total == 0) return;
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        const double rate = s > 0 ? static_cast<double>(done) / s : 0;
        const double left = rate > 0 ? static_cast<double>(total - done) / rate : 0;
        constexpr int kWidth = 30;
        const int filled =
            static_cast<int>(kWidth * static_cast<double>(done) / static_cast<double>(total));
        std::fprintf(stderr, "\r  [%s%s] %zu/%zu dies  %6.0f dies/s  %d:%02d left ",
                     std::string(static_cast<size_t>(filled), '#').c_str(),
                     std::string(static_cast<size_t>(kWidth - filled), '.').c_str(), done, total,
                     rate, static_cast<int>(left) / 60, static_cast<int>(left) % 60);
        if (done == total) std::fprintf(stderr, "\n");
    }

private:
    bool enabled_;
    std::chrono::steady_clock::time_point start_;
};

rpt::Outcome report_outcome(host::DieOutcome o) {
    switch (o) {
        case host::DieOutcome::kProvisioned: return rpt::Outcome::kProvisioned;
        case host::DieOutcome::kReissued: return rpt::Outcome::kReissued;
        case host::DieOutcome::kConflict: return rpt::Outcome::kRefusedConflict;
        case host::DieOutcome::kQuotaExhausted: return rpt::Outcome::kRefusedQuota;
        case host::DieOutcome::kCheckFailed: return rpt::Outcome::kFailedCheck;
    }
    return rpt::Outcome::kFailedCheck;
}

struct MapRun {
    host::WaferMap map;
    std::vector<host::DieRequest> todo;      // dies to run through the pipeline
    std::set<std::pair<int, int>> selected;  // every selected die
    std::map<std::pair<int, int>, std::pair<rpt::Outcome, std::string>>
        preset;  // decided before the pipeline
    size_t without_uid = 0;
    int64_t start_unix = 0, finish_unix = 0;
};

int64_t now_unix() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

Result<int> run(const ParsedArgs& a) {
    WP_ASSIGN_OR_RETURN(host::Job job, host::load_job(a.get("job")));
    if (a.has("ledger")) job.ledger = fs::absolute(a.get("ledger"));
    if (a.has("backend")) WP_RETURN_IF_ERROR(host::override_job_backend(job, a.get("backend")));
    WP_ASSIGN_OR_RETURN(
        const size_t thread_count,
        number_option(a, "threads", 1, 1024, std::max(1u, std::thread::hardware_concurrency())));
    const int threads = static_cast<int>(thread_count);
    WP_ASSIGN_OR_RETURN(const size_t batch, number_option(a, "batch", 1, 4096, 512));
    const fs::path out =
        a.has("out") ? fs::absolute(a.get("out")) : job.file.parent_path() / "reports";

    // Read and check every map before anything is provisioned: a bad map provisions nothing.
    std::vector<MapRun> runs;
    WP_ASSIGN_OR_RETURN(const auto map_list, map_args(a));
    const host::MapReadOptions map_options = map_options_of(job);
    std::map<std::pair<std::string, int>, std::pair<std::string, std::string>> seen;
    for (const auto& arg : map_list) {
        MapRun r;
        WP_ASSIGN_OR_RETURN(r.map, read_map(arg, map_options));
        auto [it, fresh] = seen.emplace(std::pair{r.map.lot, r.map.wafer},
                                        std::pair{arg.file, r.map.substrate_id});
        if (!fresh)
            return make_error(ErrorCode::kInvalidArgument,
                              arg.file + " and " + it->second.first + " are both " + r.map.lot +
                                  " wafer " + std::to_string(r.map.wafer) + " (substrate '" +
                                  r.map.substrate_id + "' and '" + it->second.second +
                                  "'): one run takes each wafer once; give a different wafer its "
                                  "own number with --wafer N");
        WP_ASSIGN_OR_RETURN(auto selected, host::select_dies(r.map, job.provision_bins));
        r.todo = host::die_requests(job, r.map, selected, r.without_uid);
        // Under the tester UID policy a die the map gives no UID for is not this run's to
        // provision: it gets its identity at touchdown, when the tester reads its UID.
        for (const auto& d : r.todo) r.selected.insert({d.loc.x, d.loc.y});
        if (r.without_uid > 0)
            std::cout << "wafer " << r.map.lot << "/" << r.map.wafer << " [" << r.map.substrate_id
                      << "]: " << r.without_uid
                      << " dies have no UID in the map; they get their identity at touchdown\n";
        runs.push_back(std::move(r));
    }

    // For a PKCS#11 job the head also goes into the CA's token, which a restored ledger cannot
    // roll back.
    WP_ASSIGN_OR_RETURN(const host::LedgerConfig lc, host::job_ledger_config(job));
    WP_ASSIGN_OR_RETURN(auto ledger, host::Ledger::open(job.ledger, lc));

    // Idempotent rerun: a die whose location already holds its own UID keeps its identity and
    // costs nothing; anything else goes through the pipeline (where a clash raises an alarm).
    size_t to_generate = 0;
    for (auto& r : runs) {
        WP_ASSIGN_OR_RETURN(auto existing, ledger->list_wafer(r.map.lot, r.map.wafer));
        // Only this physical wafer's records: the same number under another substrate id is
        // another wafer, left to the ledger to refuse (with an ALARM).
        std::map<std::pair<int, int>, wpid1::Uid> have;
        for (const auto& rec : existing)
            if (rec.loc.substrate == r.map.substrate_id) have[{rec.loc.x, rec.loc.y}] = rec.uid;
        std::vector<host::DieRequest> keep;
        for (const auto& d : r.todo) {
            auto it = have.find({d.loc.x, d.loc.y});
            // A ledger migrated from schema version 2 holds the UIDs derived before substrate
            // ids (derive_legacy_uid); those dies keep them.
            const bool legacy = it != have.end() && job.uid_policy == host::UidPolicy::kDerived &&
                                it->second == host::derive_legacy_uid(job.uid_salt, d.loc);
            if (it != have.end() && (it->second == d.uid || legacy))
                r.preset[{d.loc.x, d.loc.y}] = {rpt::Outcome::kReissued,
                                                "already provisioned by an earlier run"};
            else
                keep.push_back(d);
        }
        r.todo = std::move(keep);
        to_generate += r.todo.size();
    }
    // Spend no key generation or signature on dies the quota cannot cover; the ledger enforces
    // the quota again at commit time, under concurrency with other processes of the job.
    WP_ASSIGN_OR_RETURN(uint64_t quota_left, ledger->quota_left());
    uint64_t budget = quota_left;
    for (auto& r : runs) {
        if (r.todo.size() > budget) {
            for (size_t i = budget; i < r.todo.size(); ++i)
                r.preset[{r.todo[i].loc.x, r.todo[i].loc.y}] = {rpt::Outcome::kRefusedQuota,
                                                                "quota exhausted before the run"};
            r.todo.resize(budget);
        }
        budget -= r.todo.size();
    }

    std::cout << "job " << job.id << " (" << job.product << " for " << job.customer
              << "): " << to_generate << " dies to generate on " << runs.size()
              << " wafer(s), quota left " << quota_left << ", " << threads << " thread(s)\n";

    std::unique_ptr<Accelerator> backend;
    std::unique_ptr<host::Signer> signer;
    if (to_generate > 0) {
        WP_ASSIGN_OR_RETURN(backend, host::open_job_backend(job));
        WP_ASSIGN_OR_RETURN(signer, host::open_job_signer(job, static_cast<size_t>(threads)));
    }

    std::vector<rpt::WaferRun> wafer_runs;
    bool all_ok = true;
    size_t conflicts = 0;
    std::string first_conflict;
    size_t total_generated = 0;
    double total_seconds = 0;
    for (auto& r : runs) {
        r.start_unix = now_unix();
        std::vector<host::DieReport> reports;
        host::PipelineStats stats;
        if (!r.todo.empty()) {
            host::PipelineOptions po;
            po.threads = threads;
            po.batch_size = batch;
            po.product = job.product;
            po.certificate = job.certificate;
            Progress bar(!a.has("no-progress") && ::isatty(STDERR_FILENO));
            po.progress = [&bar](size_t done, size_t total) { bar.update(done, total); };
            std::cout << "wafer " << r.map.lot << "/" << r.map.wafer << " [" << r.map.substrate_id
                      << "]: " << r.todo.size() << " dies\n";
            WP_ASSIGN_OR_RETURN(stats,
                                host::provision(r.todo, *backend, *signer, *ledger, po, reports));
            total_generated += stats.dies;
            total_seconds += stats.elapsed.count();
        }
        r.finish_unix = now_unix();

        WP_ASSIGN_OR_RETURN(auto records, ledger->list_wafer(r.map.lot, r.map.wafer));
        WP_ASSIGN_OR_RETURN(const auto retests, ledger->retests());
        rpt::WaferRun wr = wafer_run_from_ledger(job, r.map, records, r.selected, retests);
        wr.start_unix = r.start_unix;
        wr.finish_unix = r.finish_unix;
        std::map<std::pair<int, int>, const host::DieReport*> by_loc;
        for (const auto& rep : reports) by_loc[{rep.request.loc.x, rep.request.loc.y}] = &rep;
        for (auto& d : wr.dies) {
            const std::pair<int, int> key{d.x, d.y};
            if (!d.selected) continue;
            if (auto it = by_loc.find(key); it != by_loc.end()) {
                d.outcome = report_outcome(it->second->outcome);
                d.note = it->second->message;
            } else if (auto p = r.preset.find(key); p != r.preset.end()) {
                d.outcome = p->second.first;
                d.note = p->second.second;
            }
            if (d.outcome != rpt::Outcome::kProvisioned && d.outcome != rpt::Outcome::kReissued)
                all_ok = false;
            if (d.outcome == rpt::Outcome::kRefusedConflict && ++conflicts == 1)
                first_conflict = d.note;
        }
        wr.run.elapsed_s = stats.elapsed.count();
        wr.run.dies_per_second = stats.dies_per_second();
        WP_ASSIGN_OR_RETURN(auto q, ledger->quota());
        wr.run.quota = rpt::Quota{q.quota, q.used, q.left()};
        wafer_runs.push_back(std::move(wr));
    }

    // The run's work into the database file now, so little stays in the write-ahead log only
    // (docs/ledger.md "The anchor").
    WP_RETURN_IF_ERROR(ledger->checkpoint_now());

    // Reports, one lot at a time.
    std::map<std::string, std::vector<rpt::WaferRun>> lots;
    for (auto& wr : wafer_runs) lots[wr.lot].push_back(wr);
    for (const auto& [lot, lot_runs] : lots) {
        WP_ASSIGN_OR_RETURN(auto written, rpt::write_lot_reports(out, lot_runs));
        for (const auto& note : written.notes) std::cout << "note: " << note << "\n";
    }
    std::cout << rpt::summary_text(wafer_runs);
    if (conflicts > 0)
        std::cout << "ALARM: " << conflicts
                  << " dies refused for a conflict (logged in the ledger); the first: "
                  << first_conflict << "\n";
    if (total_seconds > 0)
        std::cout << "generated " << total_generated << " identities in " << total_seconds << " s ("
                  << std::lround(static_cast<double>(total_generated) / total_seconds)
                  << " dies/s)\n";
    std::cout << "reports in " << out.string() << "\n";
    return all_ok ? kExitOk : kExitFailure;
}

int run_run(const Args& args) {
    ParsedArgs a;
    std::string err;
    if (!parse_args(args, {"job", "map", "wafer", "threads", "ledger", "out", "batch", "backend"},
                    {"no-progress", "help"}, a, err) ||
        !a.positionals.empty()) {
        std::cerr << "waferprov run: "
                  << (err.empty() ? "unexpected argument " + a.positionals[0] : err) << "\n"
                  << kUsage;
        return kExitUsage;
    }
    if (a.has("help")) {
        std::cout << kUsage;
        return kExitOk;
    }
    if (!a.has("job") || !a.has("map")) {
        std::cerr << "waferprov run: --job and --map are required\n" << kUsage;
        return kExitUsage;
    }
    auto r = run(a);
    if (!r.ok()) {
        std::cerr << "waferprov run: " << r.error().describe() << "\n";
        return kExitFailure;
    }
    return *r;
}

}  // namespace

WAFERPROV_COMMAND(run, "run: pre-generate, sign and record the identities of a wafer map", run_run);

}  // namespace waferprov::cli
