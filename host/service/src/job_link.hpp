// One served job: its ledger, backend and CA signer, and the two requests that reach the
// ledger (TOUCHDOWN, RESULTS), answered as protocol messages. No sockets here: the service's
// workers call these, and so do the tests directly.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "waferprov/accelerator.hpp"
#include "waferprov/host/job.hpp"
#include "waferprov/host/ledger.hpp"
#include "waferprov/host/pipeline.hpp"
#include "waferprov/host/protocol.hpp"
#include "waferprov/host/service.hpp"
#include "waferprov/host/signer.hpp"

namespace waferprov::host::link {

struct Counters {
    std::atomic<uint64_t> delivered{0}, reissued{0}, generated{0}, refused_sites{0}, results{0};
};

class JobLink {
public:
    // Opens the job's ledger, backend and signer; indexes the maps (by lot and wafer).
    // `observer` (may be null) hears of the job's quota and of every ledger commit.
    static Result<std::unique_ptr<JobLink>> open(const Job& job, const std::vector<WaferMap>& maps,
                                                 int signing_threads,
                                                 ServiceObserver* observer = nullptr);

    const Job& job() const { return job_; }
    // The tester id bound to a CURVE public key (Z85) by this job, if it admits the key.
    std::optional<std::string> tester_for_key(const std::string& public_z85) const;
    bool lists_tester(const std::string& tester_id) const;

    // The identities for one touchdown: served from the ledger where they exist (pre-generated
    // or delivered before), generated on demand otherwise; every one is DELIVERED in the ledger
    // before this returns. An Error (storage, backend, signer) means the whole request failed
    // and the tester retries it: deliveries committed before the failing step are REISSUED by
    // the retry, and identities generated on the way were recorded only together with their
    // delivery (Ledger::record_and_deliver), or not at all. `tester` is printable ASCII (checked at
    // HELLO), `td.lot` is checked by the caller.
    Result<protocol::TouchdownResult> touchdown(const protocol::Touchdown& td,
                                                const std::string& tester, Counters& counters);

    // The tester's results: DELIVERED -> PROGRAMMED / FAILED, in one ledger transaction.
    Result<protocol::ResultsAck> results(const protocol::Results& r, const std::string& tester,
                                         Counters& counters);

    // ---- Final test (final_test.cpp, docs/final-test.md) -----------------------------------
    // Packaged parts in handler sites: a part PROGRAMMED at sort gets VERIFY with its
    // certificate and a fresh challenge bound to `session` (opened in the ledger before this
    // returns); verifications issue nothing and use no quota. A UID the job never provisioned
    // is NOT_PROVISIONED under the `derived` UID policy; under `tester` it is provisioned here
    // (OK with a new identity whose location is the package, counted against the quota), and
    // such a part not yet PROGRAMMED is delivered again (REISSUED). An Error means nothing was
    // opened or issued by the failing step.
    Result<protocol::TouchdownResult> final_touchdown(const protocol::FinalTouchdown& ft,
                                                      uint64_t session, const std::string& tester,
                                                      Counters& counters);
    // FINAL_RESULTS: each signature is verified against the part's certificate in the ledger
    // (OpenSSL); the verdict answers the part's open challenge of `session` in one ledger
    // transaction. A bad signature is SIGNATURE_MISMATCH and an ALARM; an answer to no open
    // challenge of this session (replayed, foreign) is CHALLENGE_REFUSED. A part provisioned
    // at final test reports PROGRAMMED / FAILED without a signature, as at sort.
    Result<protocol::ResultsAck> final_results(const protocol::Results& r, uint64_t session,
                                               const std::string& tester, Counters& counters);

    // Copies the ledger's write-ahead log into its database (see Ledger::defer_checkpoints):
    // the service calls this from a thread of its own so that no touchdown pays for it.
    Status checkpoint() { return ledger_->checkpoint(); }
    int wal_pages() const { return ledger_->wal_pages(); }

private:
    JobLink() = default;
    // NOT_ON_MAP text for a site the maps rule out; "" if it is a die to provision (or no maps).
    std::string off_map(const DieLocation& loc) const;

    Job job_;
    protocol::ChainId chain_id_{};
    std::unique_ptr<Ledger> ledger_;
    std::unique_ptr<Accelerator> backend_;
    std::unique_ptr<Signer> signer_;
    int signing_threads_ = 0;
    ServiceObserver* observer_ = nullptr;
    std::mutex generate_mu_;  // the backend's DRBG serves one provision() at a time
    // The physical wafer a touchdown names: its served map's substrate id (a different one
    // from the tester refuses the touchdown), else the tester's (TOUCHDOWN_WAFER), else -- for
    // UIDs from fuses only -- the one the ledger has bound to (lot, wafer) ("" if none).
    // `refused` says why the touchdown's sites are refused (a derived-UID job without a map
    // needs the substrate id).
    struct Wafer {
        std::string substrate;
        std::string refused;
    };
    Result<Wafer> wafer_of(const protocol::Touchdown& td);

    // touchdown()'s steps. The sites to deliver (`want`, at `index` in out.sites), after the
    // refusals decided before the ledger: off the map, the wafer, the UID, two sites naming one
    // die.
    Status plan_sites(const protocol::Touchdown& td, protocol::TouchdownResult& out,
                      std::vector<size_t>& index, std::vector<Delivery>& want, Counters& c);
    // Delivers what the ledger holds (a migrated ledger's legacy UIDs tried again).
    Result<std::vector<TransitionResult>> deliver_held(const std::vector<Delivery>& want,
                                                       const std::string& tester);
    // Generates the dies the ledger does not hold (generate[k] for out.sites[generate_index[k]],
    // under probe-card or handler site sites[k]), and records and delivers them in one ledger
    // transaction. `packages`: empty at wafer sort; at final test each packaged part's handler
    // location (Ledger::record_and_deliver).
    Status generate_and_deliver(const std::string& tester, const std::vector<DieRequest>& generate,
                                const std::vector<size_t>& generate_index,
                                const std::vector<int>& sites,
                                const std::vector<FinalLocation>& packages,
                                protocol::TouchdownResult& out, Counters& c);
    // The delivery cap's reservation for one touchdown (job_link.cpp).
    class Reservation;

    struct ServedWafer {
        std::string substrate;               // the map's substrate id
        std::set<std::pair<int, int>> dies;  // dies to provision on it
    };
    // (lot, wafer) -> its map; empty when the job is served without maps.
    std::map<std::pair<std::string, int>, ServedWafer> provisionable_;
    bool have_maps_ = false;
    bool legacy_uids_ = false;  // the ledger was migrated: older dies hold derive_legacy_uid UIDs

    // The delivery cap (job.max_deliveries): deliveries per die, seeded from the ledger's event
    // log at open and counted here after (a delivery reserves its count before the ledger
    // call, so concurrent touchdowns cannot pass the cap together), and the dies that have
    // their one ALARM "delivery-cap".
    std::mutex tally_mu_;
    std::map<wpid1::Uid, uint32_t> deliveries_;
    std::set<wpid1::Uid> capped_;
};

// Protocol status for a ledger transition refusal (docs/tester-protocol.md, the mapping table).
protocol::StatusCode status_for(TransitionStatus s) noexcept;
// Fills site `s` from a deliver() outcome: OK / REISSUED with the record's identity (its
// certificate moved into the answer), else the refusal; counted in `c`.
void apply_delivery(protocol::SiteResponse& s, TransitionResult&& tr,
                    const protocol::ChainId& chain_id, Counters& c);

}  // namespace waferprov::host::link
