#include "job_link.hpp"

#include <openssl/evp.h>

#include <thread>

#include "waferprov/host/ca_signers.hpp"
#include "waferprov/host/pipeline.hpp"
#include "waferprov/host/wafermap.hpp"

namespace waferprov::host::link {
namespace {

using protocol::StatusCode;

protocol::SiteIdentity identity_of(LedgerRecord&& r, const protocol::ChainId& chain_id) {
    protocol::SiteIdentity id;
    id.uid = r.uid;
    id.key.wrapped = r.wrapped;
    id.certificate_der = std::move(r.certificate_der);
    id.chain_id = chain_id;
    return id;
}

void refuse(protocol::SiteResponse& s, StatusCode code, std::string text, Counters& c) {
    s.status = code;
    s.text = protocol::clip_text(std::move(text));
    s.identity.reset();
    c.refused_sites.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

void apply_delivery(protocol::SiteResponse& s, TransitionResult&& tr,
                    const protocol::ChainId& chain_id, Counters& c) {
    if (tr.status == TransitionStatus::kOk && tr.record) {
        s.status = tr.again ? StatusCode::kReissued : StatusCode::kOk;
        s.text.clear();
        s.identity = identity_of(std::move(*tr.record), chain_id);
        (tr.again ? c.reissued : c.delivered).fetch_add(1, std::memory_order_relaxed);
        return;
    }
    refuse(s, status_for(tr.status), std::move(tr.message), c);
}

StatusCode status_for(TransitionStatus s) noexcept {
    switch (s) {
        case TransitionStatus::kOk: return StatusCode::kOk;
        case TransitionStatus::kUnknownUid: return StatusCode::kUnknownUid;
        case TransitionStatus::kNotDelivered: return StatusCode::kNotDelivered;
        case TransitionStatus::kDuplicateResult: return StatusCode::kDuplicateResult;
        case TransitionStatus::kAlreadyProgrammed: return StatusCode::kAlreadyProgrammed;
        case TransitionStatus::kVoided: return StatusCode::kVoided;
        case TransitionStatus::kInvalidArgument: return StatusCode::kBadField;
        case TransitionStatus::kLocationMismatch: return StatusCode::kConflict;
    }
    return StatusCode::kInternal;
}

Result<std::unique_ptr<JobLink>> JobLink::open(const Job& job, const std::vector<WaferMap>& maps,
                                               int signing_threads, ServiceObserver* observer) {
    std::unique_ptr<JobLink> l(new JobLink());
    l->job_ = job;
    l->signing_threads_ = signing_threads > 0
                              ? signing_threads
                              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (const auto& m : maps) {
        WP_ASSIGN_OR_RETURN(auto dies, select_dies(m, job.provision_bins));
        // The tester link names a wafer by lot and number: two maps under one name would leave
        // the host unable to tell which physical wafer is under the probe card.
        auto [it, fresh] = l->provisionable_.try_emplace({m.lot, m.wafer});
        if (!fresh)
            return make_error(ErrorCode::kInvalidArgument,
                              "job " + job.id + ": two maps are " + m.lot + " wafer " +
                                  std::to_string(m.wafer) + " (substrate '" + it->second.substrate +
                                  "' and '" + m.substrate_id +
                                  "'); serve one of them, or give it its own number (--wafer N)");
        it->second.substrate = m.substrate_id;
        for (const auto& d : dies) it->second.dies.insert({d.x, d.y});
        l->have_maps_ = true;
    }
    WP_ASSIGN_OR_RETURN(LedgerConfig lc, job_ledger_config(job));
    // serve runs for weeks on what it opens: the full check, indexes against their tables.
    lc.full_integrity_check = true;
    WP_ASSIGN_OR_RETURN(l->ledger_, Ledger::open(job.ledger, lc));
    WP_RETURN_IF_ERROR(l->ledger_->defer_checkpoints());
    l->observer_ = observer;
    if (observer != nullptr) {
        WP_ASSIGN_OR_RETURN(const uint64_t left, l->ledger_->quota_left());
        observer->job_opened(job.id, left);
        l->ledger_->on_commit([observer, id = job.id](const Ledger::CommitNote& n) {
            observer->ledger_committed(
                id, n.seconds, n.quota_used >= n.quota ? 0 : n.quota - n.quota_used, n.requests);
        });
    }
    if (job.uid_policy == UidPolicy::kDerived) {
        WP_ASSIGN_OR_RETURN(l->legacy_uids_, l->ledger_->migrated());
    }
    {
        WP_ASSIGN_OR_RETURN(auto tally, l->ledger_->delivery_tally());
        l->deliveries_ = std::move(tally.deliveries);
        l->capped_ = std::move(tally.capped);
    }
    WP_ASSIGN_OR_RETURN(l->backend_, open_job_backend(job));
    WP_ASSIGN_OR_RETURN(l->signer_, open_job_signer(job, static_cast<size_t>(l->signing_threads_)));

    // chain_id = SHA-256(DER(manufacturer CA) || DER(root)): the chain a die stores its
    // certificate against, named in every answer.
    WP_ASSIGN_OR_RETURN(Bytes root_der, read_certificate_der(job.ca.root));
    Bytes chain = l->signer_->certificate_der();
    chain.insert(chain.end(), root_der.begin(), root_der.end());
    unsigned int len = 0;
    if (EVP_Digest(chain.data(), chain.size(), l->chain_id_.data(), &len, EVP_sha256(), nullptr) !=
        1)
        return make_error(ErrorCode::kCrypto, "SHA-256 of the CA chain failed");
    return l;
}

std::optional<std::string> JobLink::tester_for_key(const std::string& public_z85) const {
    for (const auto& t : job_.testers)
        if (t.public_key == public_z85) return t.id;
    return std::nullopt;
}

bool JobLink::lists_tester(const std::string& tester_id) const {
    for (const auto& t : job_.testers)
        if (t.id == tester_id) return true;
    return false;
}

Result<JobLink::Wafer> JobLink::wafer_of(const protocol::Touchdown& td) {
    const std::string name = td.lot + " wafer " + std::to_string(td.wafer);
    if (auto it = provisionable_.find({td.lot, td.wafer}); it != provisionable_.end()) {
        // The served map names the wafer; a tester that says otherwise probes another one.
        if (!td.substrate_id.empty() && td.substrate_id != it->second.substrate)
            return Wafer{"", "the tester's wafer is substrate '" + td.substrate_id +
                                 "'; the map served for " + name + " is substrate '" +
                                 it->second.substrate + "'"};
        return Wafer{it->second.substrate, ""};
    }
    // No map: the tester's id names the wafer (the ledger refuses, with an ALARM, a second
    // substrate under one lot and wafer number).
    if (!td.substrate_id.empty()) return Wafer{td.substrate_id, ""};
    // A 1.0 TOUCHDOWN carries no id. Derived UIDs would then make every wafer that shares
    // this lot and number one wafer: refused. UIDs from fuses tell dies apart themselves.
    if (job_.uid_policy == UidPolicy::kDerived)
        return Wafer{"", "the job derives UIDs from the wafer and no map is served for " + name +
                             ": the touchdown must name the wafer's substrate id "
                             "(TOUCHDOWN_WAFER, protocol 1.1), or serve the map with --map"};
    WP_ASSIGN_OR_RETURN(auto bound, ledger_->substrate_of(td.lot, td.wafer));
    return Wafer{bound.value_or(""), ""};
}

std::string JobLink::off_map(const DieLocation& loc) const {
    if (!have_maps_) return "";
    auto it = provisionable_.find({loc.lot, loc.wafer});
    if (it == provisionable_.end())
        return "no wafer map is served for lot " + loc.lot + " wafer " + std::to_string(loc.wafer);
    if (!it->second.dies.contains({loc.x, loc.y}))
        return loc.describe() + " is not a die of the map in the job's provision bins";
    return "";
}

Status JobLink::plan_sites(const protocol::Touchdown& td, protocol::TouchdownResult& out,
                           std::vector<size_t>& index, std::vector<Delivery>& want, Counters& c) {
    std::set<std::pair<int, int>> locs_seen;
    std::set<wpid1::Uid> uids_seen;
    std::optional<Wafer> wafer;  // looked up once, for the first site on the map
    for (size_t i = 0; i < td.sites.size(); ++i) {
        const auto& s = td.sites[i];
        auto& r = out.sites[i];
        r.site = s.site;
        DieLocation loc{td.lot, td.wafer, s.x, s.y, ""};
        if (auto why = off_map(loc); !why.empty()) {
            refuse(r, StatusCode::kNotOnMap, why, c);
            continue;
        }
        if (!wafer) {
            WP_ASSIGN_OR_RETURN(wafer, wafer_of(td));
        }
        if (!wafer->refused.empty()) {
            refuse(r, StatusCode::kConflict, wafer->refused, c);
            continue;
        }
        loc.substrate = wafer->substrate;
        wpid1::Uid uid{};
        if (job_.uid_policy == UidPolicy::kDerived) {
            uid = derive_uid(job_.uid_salt, loc);
            if (s.uid && *s.uid != uid) {
                refuse(r, StatusCode::kConflict,
                       "the job derives UIDs from the die location; the UID sent is not " +
                           loc.describe() + "'s",
                       c);
                continue;
            }
        } else {
            if (!s.uid) {
                refuse(r, StatusCode::kNoUid,
                       "the job takes UIDs from the dies; site " + std::to_string(s.site) +
                           " sent none",
                       c);
                continue;
            }
            uid = *s.uid;
        }
        if (!locs_seen.insert({s.x, s.y}).second || !uids_seen.insert(uid).second) {
            refuse(r, StatusCode::kConflict,
                   "another site of this touchdown names the same die or UID", c);
            continue;
        }
        index.push_back(i);
        want.push_back(Delivery{uid, std::move(loc), s.site});
    }
    return ok_status();
}

// The delivery cap: a misbehaving tester repeating touchdowns must not grow the ledger without
// bound. Each delivery reserves its count here; settle() gives back the count of every site
// that did not get its identity, and on an error return (no settle) all of them are given back
// (a delivery committed before a later step failed is then not counted: the cap errs on the
// tester's side, and only after a storage failure).
class JobLink::Reservation {
public:
    explicit Reservation(JobLink& l) : l_(l) {}
    Reservation(const Reservation&) = delete;
    Reservation& operator=(const Reservation&) = delete;
    ~Reservation() {
        if (settled_) return;
        std::lock_guard lock(l_.tally_mu_);
        for (const auto& uid : reserved_) --l_.deliveries_[uid];
    }

    // Reserves a delivery of each of `want` (at `index`) under the cap; a die at the cap is
    // refused (DELIVERY_CAP) and dropped from `want`, and gets its one ALARM.
    Status reserve(std::vector<Delivery>& want, std::vector<size_t>& index,
                   protocol::TouchdownResult& out, const std::string& tester, Counters& c) {
        std::vector<std::pair<wpid1::Uid, std::string>> alarms;  // (UID, text) newly capped
        std::vector<Delivery> keep;
        std::vector<size_t> keep_index;
        {
            std::lock_guard lock(l_.tally_mu_);
            for (size_t k = 0; k < want.size(); ++k) {
                const wpid1::Uid uid = counted_uid(want[k]);
                auto it = l_.deliveries_.find(uid);
                const uint32_t n = it == l_.deliveries_.end() ? 0 : it->second;
                if (n >= l_.job_.max_deliveries) {
                    const std::string text = want[k].loc.describe() + " was delivered " +
                                             std::to_string(n) + " times, the job's max_deliveries";
                    refuse(out.sites[index[k]], StatusCode::kDeliveryCap, text, c);
                    if (l_.capped_.insert(uid).second) alarms.emplace_back(uid, text);
                    continue;
                }
                ++l_.deliveries_[uid];
                out.sites[index[k]].status = StatusCode::kInternal;  // until the ledger says
                keep.push_back(std::move(want[k]));
                keep_index.push_back(index[k]);
                reserved_.push_back(uid);
            }
        }
        want = std::move(keep);
        index = std::move(keep_index);
        index_ = index;
        for (const auto& [uid, text] : alarms) {
            if (auto st = l_.ledger_->alarm_delivery_cap(uid, tester); !st.ok()) {
                std::lock_guard lock(l_.tally_mu_);
                l_.capped_.erase(uid);  // the next refusal tries again
                return st.error();
            }
        }
        return ok_status();
    }

    void settle(const protocol::TouchdownResult& out) {
        std::lock_guard lock(l_.tally_mu_);
        for (size_t k = 0; k < reserved_.size(); ++k)
            if (!protocol::carries_identity(out.sites[index_[k]].status))
                --l_.deliveries_[reserved_[k]];
        settled_ = true;
    }

private:
    // The UID a die's deliveries are counted under (under tally_mu_): a migrated ledger may
    // hold the die under its legacy UID.
    wpid1::Uid counted_uid(const Delivery& d) const {
        auto it = l_.deliveries_.find(d.uid);
        if (l_.legacy_uids_ && (it == l_.deliveries_.end() || it->second == 0)) {
            const auto legacy = derive_legacy_uid(l_.job_.uid_salt, d.loc);
            if (auto lt = l_.deliveries_.find(legacy); lt != l_.deliveries_.end() && lt->second > 0)
                return legacy;
        }
        return d.uid;
    }

    JobLink& l_;
    std::vector<size_t> index_;         // out.sites index of each reservation
    std::vector<wpid1::Uid> reserved_;  // the UID counted for each
    bool settled_ = false;
};

Result<std::vector<TransitionResult>> JobLink::deliver_held(const std::vector<Delivery>& want,
                                                            const std::string& tester) {
    WP_ASSIGN_OR_RETURN(auto delivered, ledger_->deliver(want, tester));
    if (!legacy_uids_) return delivered;
    // A ledger migrated from schema version 2: a die issued before substrate ids holds the UID
    // derived without one. deliver() still checks the whole location, substrate id included, so
    // another wafer's die never takes it.
    std::vector<Delivery> legacy;
    std::vector<size_t> legacy_k;
    for (size_t k = 0; k < delivered.size(); ++k)
        if (delivered[k].status == TransitionStatus::kUnknownUid) {
            legacy.push_back(
                Delivery{derive_legacy_uid(job_.uid_salt, want[k].loc), want[k].loc, want[k].site});
            legacy_k.push_back(k);
        }
    if (!legacy.empty()) {
        WP_ASSIGN_OR_RETURN(auto again, ledger_->deliver(legacy, tester));
        for (size_t i = 0; i < again.size(); ++i)
            if (again[i].status != TransitionStatus::kUnknownUid)
                delivered[legacy_k[i]] = std::move(again[i]);
    }
    return delivered;
}

Status JobLink::generate_and_deliver(const std::string& tester,
                                     const std::vector<DieRequest>& generate,
                                     const std::vector<size_t>& generate_index,
                                     const std::vector<int>& sites,
                                     const std::vector<FinalLocation>& packages,
                                     protocol::TouchdownResult& out, Counters& c) {
    std::vector<DieReport> reports;
    // Recorded and delivered in one ledger transaction (Ledger::record_and_deliver): the
    // pipeline hands over every identity it made for this touchdown at once.
    std::map<wpid1::Uid, int> site_of;
    std::map<wpid1::Uid, FinalLocation> package_of;
    for (size_t k = 0; k < generate.size(); ++k) {
        site_of[generate[k].uid] = sites[k];
        if (!packages.empty()) package_of[generate[k].uid] = packages[k];
    }
    std::map<wpid1::Uid, TransitionResult> delivered;
    {
        std::lock_guard lock(generate_mu_);
        PipelineOptions po;
        po.threads = signing_threads_;
        po.batch_size =
            std::max<size_t>(8, generate.size() / static_cast<size_t>(signing_threads_) + 1);
        po.tester = tester;
        po.certificate = job_.certificate;
        po.product = job_.product;
        po.record_all =
            [&](std::span<const NewIdentity> offers) -> Result<std::vector<RecordResult>> {
            std::vector<int> offer_sites;
            std::vector<FinalLocation> offer_packages;
            for (const auto& n : offers) {
                offer_sites.push_back(site_of.at(n.uid));
                if (!package_of.empty()) offer_packages.push_back(package_of.at(n.uid));
            }
            WP_ASSIGN_OR_RETURN(auto done, ledger_->record_and_deliver(offers, offer_sites, tester,
                                                                       offer_packages));
            std::vector<RecordResult> recorded;
            for (auto& d : done) {
                if (d.delivered) delivered.emplace(d.delivered->uid, std::move(*d.delivered));
                recorded.push_back(std::move(d.recorded));
            }
            return recorded;
        };
        WP_ASSIGN_OR_RETURN(auto stats,
                            provision(generate, *backend_, *signer_, *ledger_, po, reports));
        c.generated.fetch_add(stats.provisioned, std::memory_order_relaxed);
    }
    for (size_t k = 0; k < reports.size(); ++k) {
        auto& site = out.sites[generate_index[k]];
        const auto& rep = reports[k];
        switch (rep.outcome) {
            case DieOutcome::kProvisioned:
            case DieOutcome::kReissued:
                if (auto it = delivered.find(rep.record ? rep.record->uid : generate[k].uid);
                    it != delivered.end())
                    apply_delivery(site, std::move(it->second), chain_id_, c);
                else
                    refuse(site, StatusCode::kInternal, "the ledger did not deliver the die", c);
                break;
            case DieOutcome::kConflict:
                refuse(site,
                       rep.record && rep.record->state == DieState::kVoid ? StatusCode::kVoided
                                                                          : StatusCode::kConflict,
                       rep.message, c);
                break;
            case DieOutcome::kQuotaExhausted:
                refuse(site, StatusCode::kQuotaExhausted, "the job's quota is used up", c);
                break;
            case DieOutcome::kCheckFailed:
                refuse(site, StatusCode::kInternal,
                       "the backend's public key failed the curve check; nothing was signed", c);
                break;
        }
    }
    return ok_status();
}

Result<protocol::TouchdownResult> JobLink::touchdown(const protocol::Touchdown& td,
                                                     const std::string& tester, Counters& c) {
    protocol::TouchdownResult out;
    out.sequence = td.sequence;
    out.sites.resize(td.sites.size());
    std::vector<size_t> index;  // out.sites index of each delivery
    std::vector<Delivery> want;
    WP_RETURN_IF_ERROR(plan_sites(td, out, index, want, c));
    Reservation reservation(*this);
    WP_RETURN_IF_ERROR(reservation.reserve(want, index, out, tester, c));

    // 1. What the ledger holds (pre-generated by `run`, or delivered before): one transaction.
    std::vector<DieRequest> generate;
    std::vector<size_t> generate_index;
    if (!want.empty()) {
        WP_ASSIGN_OR_RETURN(auto delivered, deliver_held(want, tester));
        for (size_t k = 0; k < delivered.size(); ++k) {
            if (delivered[k].status == TransitionStatus::kUnknownUid) {
                generate.push_back(DieRequest{want[k].loc, want[k].uid});
                generate_index.push_back(index[k]);
                continue;
            }
            apply_delivery(out.sites[index[k]], std::move(delivered[k]), chain_id_, c);
        }
    }
    // 2. The rest is generated on demand through the provisioning pipeline, recorded and
    // delivered in one transaction.
    if (!generate.empty()) {
        std::vector<int> sites;
        for (size_t i : generate_index) sites.push_back(td.sites[i].site);
        WP_RETURN_IF_ERROR(
            generate_and_deliver(tester, generate, generate_index, sites, {}, out, c));
    }
    reservation.settle(out);
    return out;
}

Result<protocol::ResultsAck> JobLink::results(const protocol::Results& r, const std::string& tester,
                                              Counters& c) {
    protocol::ResultsAck ack;
    ack.sequence = r.sequence;
    ack.sites.resize(r.sites.size());
    std::vector<DieResult> todo;
    std::vector<size_t> index;
    for (size_t i = 0; i < r.sites.size(); ++i) {
        const auto& s = r.sites[i];
        auto& a = ack.sites[i];
        a.site = s.site;
        a.uid = s.uid;
        if (!printable_ascii(s.bin)) {
            a.status = StatusCode::kBadField;
            a.text = "bin must be printable ASCII";
            continue;
        }
        todo.push_back(DieResult{s.uid, s.outcome == protocol::DieOutcome::kProgrammed, s.bin});
        index.push_back(i);
    }
    if (todo.empty()) return ack;
    WP_ASSIGN_OR_RETURN(auto done, ledger_->mark_results(todo, tester));
    for (size_t k = 0; k < done.size(); ++k) {
        auto& a = ack.sites[index[k]];
        a.status = status_for(done[k].status);
        if (a.status == StatusCode::kOk) {
            c.results.fetch_add(1, std::memory_order_relaxed);
            if (observer_ != nullptr && !done[k].again)
                observer_->result_recorded(job_.id, todo[k].programmed);
        } else {
            a.text = protocol::clip_text(done[k].message);
        }
    }
    return ack;
}

}  // namespace waferprov::host::link
