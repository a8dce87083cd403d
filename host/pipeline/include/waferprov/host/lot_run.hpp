// One `waferprov run`: the wafers of a lot through the pipeline, with the rules that decide
// which dies are generated at all — the provision bins, the job's UID policy, the idempotent
// rerun (a die already in the ledger with its own UID keeps its identity and costs nothing) and
// the quota (no key generation or signature is spent on dies the quota cannot cover).
//
// The command only parses its options, calls run_lot() and prints what comes back; everything
// that meets the ledger is here.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "waferprov/host/job.hpp"
#include "waferprov/host/ledger.hpp"
#include "waferprov/host/pipeline.hpp"

namespace waferprov::host {

// What this run decided for one selected die: by the pipeline, or before it (already
// provisioned by an earlier run: kReissued; past the quota: kQuotaExhausted).
struct DieVerdict {
    DieOutcome outcome = DieOutcome::kProvisioned;
    std::string note;
};

// One wafer of the run, after it: what was selected and decided, and the ledger's view of it
// (the input of the wafer's reports).
struct WaferOutcome {
    WaferMap map;
    std::set<std::pair<int, int>> selected;  // every die this run was to provision (x, y)
    size_t without_uid = 0;  // tester UID policy: selected by bin, but no UID in the map
    std::map<std::pair<int, int>, DieVerdict> verdicts;
    PipelineStats stats;  // empty when nothing of the wafer needed generating
    int64_t start_unix = 0, finish_unix = 0;
    std::vector<LedgerRecord> records;  // the ledger's records of the map's lot and wafer number
    QuotaStatus quota;                  // the job's quota once the wafer was done
};

struct LotOutcome {
    std::vector<WaferOutcome> wafers;        // in the order of the maps
    std::map<wpid1::Uid, uint32_t> retests;  // Ledger::retests() after the run
    uint64_t quota_left_before = 0;
    size_t to_generate = 0;  // dies not yet in the ledger (before the quota is applied)
};

// A map of the run and where it came from (its file, named in errors).
struct LotMap {
    std::string source;
    WaferMap map;
};

struct LotRunOptions {
    // threads, batch_size, progress and the commit hooks; product and certificate are the job's.
    PipelineOptions pipeline;
    // Lines for the operator as the run goes (dies without a UID, the plan, each wafer's start).
    std::function<void(const std::string&)> say;
    // Called once the ledger is open, before any work (the metrics read the quota left and
    // hook the ledger's commits); an error stops the run before anything is provisioned.
    std::function<Status(Ledger&)> on_ledger;
};

// Runs the maps (already read, each naming one physical wafer) as one lot: opens the job's
// ledger (job_ledger_config: the token anchor for a PKCS#11 job), and the backend and signer
// only if any die needs generating; checkpoints the ledger at the end.
//
// Errors: kInvalidArgument when two maps are the same lot and wafer number (one run takes each
// wafer once); any error of the ledger, the backend or the signer stops the run, and what was
// committed before stays committed (a rerun continues from there).
Result<LotOutcome> run_lot(const Job& job, std::vector<LotMap> maps, const LotRunOptions& options);

}  // namespace waferprov::host
