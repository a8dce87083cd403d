#include "waferprov/host/lot_run.hpp"

#include <chrono>
#include <memory>

#include "waferprov/host/wafermap.hpp"

namespace waferprov::host {
namespace {

using Loc = std::pair<int, int>;

int64_t now_unix() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// A wafer as planned: the outcome being filled, and the dies still to generate.
struct WaferPlan {
    WaferOutcome out;
    std::vector<DieRequest> todo;
};

// The provision bins and the UID policy: the dies of each map this run is to provision.
Result<std::vector<WaferPlan>> select(const Job& job, std::vector<LotMap>& maps,
                                      const LotRunOptions& o) {
    std::map<std::pair<std::string, int>, const LotMap*> seen;
    std::vector<WaferPlan> plans;
    for (auto& m : maps) {
        auto [it, fresh] = seen.emplace(std::pair{m.map.lot, m.map.wafer}, &m);
        if (!fresh)
            return make_error(ErrorCode::kInvalidArgument,
                              m.source + " and " + it->second->source + " are both " + m.map.lot +
                                  " wafer " + std::to_string(m.map.wafer) + " (substrate '" +
                                  m.map.substrate_id + "' and '" + it->second->map.substrate_id +
                                  "'): one run takes each wafer once; give a different wafer its "
                                  "own number with --wafer N");
        WaferPlan p;
        WP_ASSIGN_OR_RETURN(auto selected, select_dies(m.map, job.provision_bins));
        p.todo = die_requests(job, m.map, selected, p.out.without_uid);
        // Under the tester UID policy a die the map gives no UID for is not this run's to
        // provision: it gets its identity at touchdown, when the tester reads its UID.
        for (const auto& d : p.todo) p.out.selected.insert({d.loc.x, d.loc.y});
        if (p.out.without_uid > 0 && o.say)
            o.say("wafer " + m.map.lot + "/" + std::to_string(m.map.wafer) + " [" +
                  m.map.substrate_id + "]: " + std::to_string(p.out.without_uid) +
                  " dies have no UID in the map; they get their identity at touchdown");
        p.out.map = std::move(m.map);
        plans.push_back(std::move(p));
    }
    return plans;
}

// Idempotent rerun: a die whose location already holds its own UID keeps its identity and costs
// nothing; anything else goes through the pipeline (where a clash raises an alarm).
Status drop_provisioned(const Job& job, Ledger& ledger, WaferPlan& p) {
    WP_ASSIGN_OR_RETURN(auto existing, ledger.list_wafer(p.out.map.lot, p.out.map.wafer));
    // Only this physical wafer's records: the same number under another substrate id is
    // another wafer, left to the ledger to refuse (with an ALARM).
    std::map<Loc, wpid1::Uid> have;
    for (const auto& rec : existing)
        if (rec.loc.substrate == p.out.map.substrate_id) have[{rec.loc.x, rec.loc.y}] = rec.uid;
    std::vector<DieRequest> keep;
    for (const auto& d : p.todo) {
        auto it = have.find({d.loc.x, d.loc.y});
        // A ledger migrated from schema version 2 holds the UIDs derived before substrate ids
        // (derive_legacy_uid); those dies keep them.
        const bool legacy = it != have.end() && job.uid_policy == UidPolicy::kDerived &&
                            it->second == derive_legacy_uid(job.uid_salt, d.loc);
        if (it != have.end() && (it->second == d.uid || legacy))
            p.out.verdicts[{d.loc.x, d.loc.y}] = {DieOutcome::kReissued,
                                                  "already provisioned by an earlier run"};
        else
            keep.push_back(d);
    }
    p.todo = std::move(keep);
    return Status{};
}

// Spends no key generation or signature on dies the quota cannot cover; the ledger enforces the
// quota again at commit time, under concurrency with other processes of the job.
void apply_quota(uint64_t quota_left, std::vector<WaferPlan>& plans) {
    uint64_t budget = quota_left;
    for (auto& p : plans) {
        if (p.todo.size() > budget) {
            for (size_t i = budget; i < p.todo.size(); ++i)
                p.out.verdicts[{p.todo[i].loc.x, p.todo[i].loc.y}] = {
                    DieOutcome::kQuotaExhausted, "quota exhausted before the run"};
            p.todo.resize(budget);
        }
        budget -= p.todo.size();
    }
}

// One wafer through the pipeline, then the ledger's view of it.
Status run_wafer(const Job& job, Ledger& ledger, Accelerator* backend, Signer* signer,
                 const LotRunOptions& o, WaferPlan& p) {
    p.out.start_unix = now_unix();
    if (!p.todo.empty()) {
        PipelineOptions po = o.pipeline;
        po.product = job.product;
        po.certificate = job.certificate;
        if (o.say)
            o.say("wafer " + p.out.map.lot + "/" + std::to_string(p.out.map.wafer) + " [" +
                  p.out.map.substrate_id + "]: " + std::to_string(p.todo.size()) + " dies");
        std::vector<DieReport> reports;
        WP_ASSIGN_OR_RETURN(p.out.stats, provision(p.todo, *backend, *signer, ledger, po, reports));
        for (auto& r : reports)
            p.out.verdicts[{r.request.loc.x, r.request.loc.y}] = {r.outcome, std::move(r.message)};
    }
    p.out.finish_unix = now_unix();
    WP_ASSIGN_OR_RETURN(p.out.records, ledger.list_wafer(p.out.map.lot, p.out.map.wafer));
    WP_ASSIGN_OR_RETURN(p.out.quota, ledger.quota());
    return Status{};
}

}  // namespace

Result<LotOutcome> run_lot(const Job& job, std::vector<LotMap> maps, const LotRunOptions& o) {
    // Every map is checked before anything is provisioned: a bad map provisions nothing.
    WP_ASSIGN_OR_RETURN(auto plans, select(job, maps, o));

    // For a PKCS#11 job the head also goes into the CA's token, which a restored ledger cannot
    // roll back.
    WP_ASSIGN_OR_RETURN(const LedgerConfig lc, job_ledger_config(job));
    WP_ASSIGN_OR_RETURN(auto ledger, Ledger::open(job.ledger, lc));
    if (o.on_ledger) WP_RETURN_IF_ERROR(o.on_ledger(*ledger));

    LotOutcome lot;
    for (auto& p : plans) {
        WP_RETURN_IF_ERROR(drop_provisioned(job, *ledger, p));
        lot.to_generate += p.todo.size();
    }
    WP_ASSIGN_OR_RETURN(lot.quota_left_before, ledger->quota_left());
    apply_quota(lot.quota_left_before, plans);

    if (o.say)
        o.say("job " + job.id + " (" + job.product + " for " + job.customer +
              "): " + std::to_string(lot.to_generate) + " dies to generate on " +
              std::to_string(plans.size()) + " wafer(s), quota left " +
              std::to_string(lot.quota_left_before) + ", " + std::to_string(o.pipeline.threads) +
              " thread(s)");

    std::unique_ptr<Accelerator> backend;
    std::unique_ptr<Signer> signer;
    if (lot.to_generate > 0) {
        WP_ASSIGN_OR_RETURN(backend, open_job_backend(job));
        WP_ASSIGN_OR_RETURN(
            signer, open_job_signer(job, static_cast<size_t>(std::max(1, o.pipeline.threads))));
    }
    for (auto& p : plans) {
        WP_RETURN_IF_ERROR(run_wafer(job, *ledger, backend.get(), signer.get(), o, p));
        lot.wafers.push_back(std::move(p.out));
    }
    WP_ASSIGN_OR_RETURN(lot.retests, ledger->retests());
    // The run's work into the database file now, so little stays in the write-ahead log only
    // (docs/ledger.md "The anchor").
    WP_RETURN_IF_ERROR(ledger->checkpoint_now());
    return lot;
}

}  // namespace waferprov::host
