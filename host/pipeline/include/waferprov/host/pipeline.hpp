// The provisioning pipeline (oneTBB parallel_pipeline):
//
//   die source + backend submit   serial, in order: DRBG output is consumed in die order
//   -> backend collect, curve check, serial, certificate build and signing   parallel
//   -> ledger commit               serial, in order, one transaction per batch (group commit)
//   -> outcomes / progress
//
// Work in flight is bounded by the pipeline's token count (4 batches per thread): there is no
// unbounded queue anywhere, so memory stays flat however large the wafer.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "waferprov/accelerator.hpp"
#include "waferprov/host/job.hpp"
#include "waferprov/host/ledger.hpp"
#include "waferprov/host/model.hpp"
#include "waferprov/host/signer.hpp"

namespace waferprov::host {

struct DieRequest {
    DieLocation loc;
    wpid1::Uid uid{};
};

enum class DieOutcome {
    kProvisioned,     // a new identity was issued and recorded
    kReissued,        // retest: the ledger returned the die's existing identity
    kConflict,        // refused by the ledger (UID/location clash); an alarm was logged
    kQuotaExhausted,  // refused: the job's quota is used up
    kCheckFailed,     // the backend's public key is not on the curve: nothing was signed,
                      // an ALARM backend-record-refused is in the ledger
};
const char* to_string(DieOutcome o) noexcept;

struct DieReport {
    DieRequest request;
    DieOutcome outcome = DieOutcome::kProvisioned;
    std::optional<LedgerRecord> record;  // as stored (for a reissue: the existing identity)
    std::string message;
};

struct PipelineOptions {
    int threads = 0;          // 0: all hardware threads; 1: the serial baseline
    size_t batch_size = 512;  // dies per backend batch and per ledger transaction
    std::string tester;       // recorded with every identity ("" for pre-generation)
    JobCertificateTemplate certificate;
    std::string product;
    // Called from the commit stage after every batch: (dies done, dies total).
    std::function<void(size_t, size_t)> progress;
    // When set, the commit stage records through this instead of Ledger::record_batch, and
    // only once: the identities of every batch are held until the last one is signed and then
    // handed over in one call (one ledger transaction for the whole provision() call, while
    // signing still runs batch-parallel). The tester link's on-demand generation records and
    // delivers a touchdown's dies in that one transaction (JobLink). It must return one result
    // per identity, as record_batch does.
    std::function<Result<std::vector<RecordResult>>(std::span<const NewIdentity>)> record_all;
};

struct PipelineStats {
    size_t dies = 0;
    size_t provisioned = 0, reissued = 0, conflicts = 0, quota_refused = 0, check_failed = 0;
    std::chrono::duration<double> elapsed{};
    double dies_per_second() const {
        return elapsed.count() > 0 ? static_cast<double>(dies) / elapsed.count() : 0;
    }
};

// Opens the job's backend (drivers/backends: [job] backend, its [backend] parameters and
// keys.device_key): loads the wrapped KIK and instantiates the DRBG with 48 bytes of fresh OS
// entropy and a personalization string naming the job.
//
// Development builds only: $WAFERPROV_DEV_FIXED_ENTROPY (96 hex digits) replaces the OS
// entropy of instantiate and every reseed, so that two runs of one job on two backends give
// byte-identical records (the equivalence tests). Production builds ignore it.
Result<std::unique_ptr<Accelerator>> open_job_backend(const Job& job);

// The ledger settings of a job: its binding (id, customer, product, quota) and, for a job whose
// CA lives in a PKCS#11 token, the token anchor (docs/ledger.md "The anchor"), which a restored
// ledger file cannot roll back. `run`, `serve` and `ledger verify --job` all open the ledger
// through this, so none of them can skip the token.
Result<LedgerConfig> job_ledger_config(const Job& job);

// `--backend SPEC` on the command line ("verilator:engines=2"): replaces the job's backend and
// its parameters (keys.device_key stays). kInvalidArgument for a malformed spec.
Status override_job_backend(Job& job, const std::string& spec);

// Opens the job's manufacturer CA signer (PEM key or PKCS#11 token, PIN from the environment
// variable the job names) with room for `parallel_signers` concurrent signatures.
Result<std::unique_ptr<Signer>> open_job_signer(const Job& job, size_t parallel_signers);

// The UIDs a job gives the dies of a map: derived from the location (UidPolicy::kDerived) or
// read from the map's DeviceIdMap (kTester; dies without one are left out and counted in
// `without_uid`).
std::vector<DieRequest> die_requests(const Job& job, const WaferMap& map,
                                     const std::vector<MapDie>& selected, size_t& without_uid);

// Runs `dies` through the pipeline. Per-die results go to `reports` (in die order). An Error
// means the run stopped (backend or ledger failure): what was committed before it stays
// committed, rerunning continues from there, and `reports` is not meaningful. When the backend
// itself refused a record (Accelerator::take_refused_index: a card's UID, sequence or curve
// check), that die gets an ALARM backend-record-refused in the ledger before the run stops.
Result<PipelineStats> provision(std::span<const DieRequest> dies, Accelerator& backend, Signer& ca,
                                Ledger& ledger, const PipelineOptions& options,
                                std::vector<DieReport>& reports);

}  // namespace waferprov::host
