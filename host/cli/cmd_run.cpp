// waferprov run --job FILE --map FILE [--map FILE ...]: pre-generate the identities of every die
// to provision, commit them to the ledger, and write the floor reports.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include "cli.hpp"
#include "maps.hpp"
#include "wafer_run.hpp"
#include "waferprov/host/job.hpp"
#include "waferprov/host/lot_run.hpp"
#include "waferprov/host/metrics.hpp"
#include "waferprov/host/report.hpp"
#include "waferprov/host/wafermap.hpp"

namespace waferprov::cli {
namespace {

namespace fs = std::filesystem;
namespace rpt = host::report;

constexpr const char* kUsage =
    "usage: waferprov run --job FILE --map FILE [--wafer N] [--map FILE [--wafer N] ...]\n"
    "                     [--threads N] [--ledger FILE] [--out DIR] [--batch N] [--no-progress]\n"
    "                     [--backend SPEC] [--metrics HOST:PORT]\n"
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
    "--metrics HOST:PORT: Prometheus metrics at http://HOST:PORT/metrics while the run lasts\n"
    "(identities issued, quota left, ledger commit latency, E10 state; docs/operations.md).\n"
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

// The wafer's reports: its map and the ledger's records, with what this run decided per die.
rpt::WaferRun wafer_report(const host::Job& job, const host::LotOutcome& lot,
                           const host::WaferOutcome& w) {
    rpt::WaferRun wr = wafer_run_from_ledger(job, w.map, w.records, w.selected, lot.retests);
    wr.start_unix = w.start_unix;
    wr.finish_unix = w.finish_unix;
    for (auto& d : wr.dies) {
        if (!d.selected) continue;
        if (auto it = w.verdicts.find({d.x, d.y}); it != w.verdicts.end()) {
            d.outcome = report_outcome(it->second.outcome);
            d.note = it->second.note;
        }
    }
    wr.run.elapsed_s = w.stats.elapsed.count();
    wr.run.dies_per_second = w.stats.dies_per_second();
    wr.run.quota = rpt::Quota{w.quota.quota, w.quota.used, w.quota.left()};
    return wr;
}

Result<int> run(const ParsedArgs& a) {
    WP_ASSIGN_OR_RETURN(host::Job job, host::load_job(a.get("job")));
    if (a.has("ledger")) job.ledger = host::ledger_argument(a.get("ledger"));
    if (a.has("backend")) WP_RETURN_IF_ERROR(host::override_job_backend(job, a.get("backend")));
    WP_ASSIGN_OR_RETURN(
        const size_t thread_count,
        number_option(a, "threads", 1, 1024, std::max(1u, std::thread::hardware_concurrency())));
    WP_ASSIGN_OR_RETURN(const size_t batch, number_option(a, "batch", 1, 4096, 512));
    const fs::path out =
        a.has("out") ? fs::absolute(a.get("out")) : job.file.parent_path() / "reports";

    // Read and check every map before anything is provisioned: a bad map provisions nothing.
    std::vector<host::LotMap> maps;
    WP_ASSIGN_OR_RETURN(const auto map_list, map_args(a));
    for (const auto& arg : map_list) {
        WP_ASSIGN_OR_RETURN(auto map, read_map(arg, map_options_of(job)));
        maps.push_back(host::LotMap{arg.file, std::move(map)});
    }

    // The exporter before the ledger: a bad address or a port in use changes nothing.
    std::unique_ptr<host::Metrics> metrics;
    if (a.has("metrics")) {
        metrics = std::make_unique<host::Metrics>();
        metrics->add_job(job);
        WP_RETURN_IF_ERROR(metrics->listen(a.get("metrics")));
        std::cout << "metrics on " << metrics->url() << std::endl;
    }

    host::LotRunOptions o;
    if (metrics)
        o.on_ledger = [m = metrics.get(), id = job.id](host::Ledger& ledger) -> Status {
            WP_ASSIGN_OR_RETURN(const uint64_t left, ledger.quota_left());
            m->job_opened(id, left);
            ledger.on_commit([m, id](const host::Ledger::CommitNote& n) {
                m->ledger_committed(id, n.seconds,
                                    n.quota_used >= n.quota ? 0 : n.quota - n.quota_used,
                                    n.requests);
            });
            return ok_status();
        };
    o.pipeline.threads = static_cast<int>(thread_count);
    o.pipeline.batch_size = batch;
    Progress bar(!a.has("no-progress") && ::isatty(STDERR_FILENO));
    o.pipeline.progress = [&bar](size_t done, size_t total) { bar.update(done, total); };
    o.say = [](const std::string& line) { std::cout << line << "\n" << std::flush; };
    auto ran = host::run_lot(job, std::move(maps), o);
    if (!ran.ok()) {
        if (metrics) metrics->request_failed(job.id, "");
        return ran.error();
    }
    const host::LotOutcome& lot = *ran;
    if (metrics) metrics->stopping();  // the identities are done; reports are not production

    std::vector<rpt::WaferRun> wafer_runs;
    bool all_ok = true;
    size_t conflicts = 0;
    std::string first_conflict;
    size_t total_generated = 0;
    double total_seconds = 0;
    for (const auto& w : lot.wafers) {
        total_generated += w.stats.dies;
        total_seconds += w.stats.elapsed.count();
        wafer_runs.push_back(wafer_report(job, lot, w));
        for (const auto& d : wafer_runs.back().dies) {
            if (!d.selected) continue;
            if (d.outcome != rpt::Outcome::kProvisioned && d.outcome != rpt::Outcome::kReissued)
                all_ok = false;
            if (d.outcome == rpt::Outcome::kRefusedConflict && ++conflicts == 1)
                first_conflict = d.note;
        }
    }

    // Reports, one lot at a time.
    std::map<std::string, std::vector<rpt::WaferRun>> lots;
    for (auto& wr : wafer_runs) lots[wr.lot].push_back(wr);
    for (const auto& [lot_id, lot_runs] : lots) {
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
    return run_command(
        args,
        {"run",
         kUsage,
         {"job", "map", "wafer", "threads", "ledger", "out", "batch", "backend", "metrics"},
         {"no-progress"},
         {"job", "map"}},
        run);
}

}  // namespace

WAFERPROV_COMMAND(run, "run: pre-generate, sign and record the identities of a wafer map", run_run);

}  // namespace waferprov::cli
