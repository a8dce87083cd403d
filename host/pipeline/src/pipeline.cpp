#include "waferprov/host/pipeline.hpp"

#include <sys/random.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/parallel_pipeline.h>

#include "waferprov/backends.hpp"
#include "waferprov/host/ca_signers.hpp"
#include "waferprov/host/device_cert.hpp"
#include "waferprov/host/token_anchor.hpp"
#include "waferprov/p256_check.hpp"

namespace waferprov::host {
namespace {

// Device certificates start this long before they are issued (docs/certificates.md).
constexpr std::chrono::hours kNotBeforeBackdate{1};

Status os_entropy(uint8_t* out, size_t n) {
#if WAFERPROV_DEVELOPMENT_BUILD
    if (const char* fixed = std::getenv("WAFERPROV_DEV_FIXED_ENTROPY");
        fixed != nullptr && *fixed != '\0') {
        auto b = from_hex(fixed, "WAFERPROV_DEV_FIXED_ENTROPY");
        if (!b.ok()) return b.error();
        if (b->size() != n)
            return make_error(ErrorCode::kInvalidArgument,
                              "WAFERPROV_DEV_FIXED_ENTROPY must be " + std::to_string(n) +
                                  " bytes of hex, got " + std::to_string(b->size()));
        std::memcpy(out, b->data(), n);
        return ok_status();
    }
#endif
    size_t got = 0;
    while (got < n) {
        ssize_t r = ::getrandom(out + got, n - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0)
            return make_error(ErrorCode::kIo, std::string("getrandom: ") + std::strerror(errno));
        got += static_cast<size_t>(r);
    }
    return ok_status();
}

// One batch on its way through the pipeline.
struct Batch {
    size_t first = 0;  // index of its first die in the request span
    size_t count = 0;
    BatchTicket ticket;
    std::vector<NewIdentity> offers;                         // filled by the parallel stage
    std::vector<std::optional<std::string>> check_failures;  // per die, set if refused
    std::optional<Error> error;
    // With `error`: the index of the die whose record the backend refused (its own checks).
    std::optional<size_t> refused;
};

}  // namespace

const char* to_string(DieOutcome o) noexcept {
    switch (o) {
        case DieOutcome::kProvisioned: return "provisioned";
        case DieOutcome::kReissued: return "reissued";
        case DieOutcome::kConflict: return "refused-conflict";
        case DieOutcome::kQuotaExhausted: return "refused-quota";
        case DieOutcome::kCheckFailed: return "failed-check";
    }
    return "?";
}

Status override_job_backend(Job& job, const std::string& spec) {
    WP_ASSIGN_OR_RETURN(BackendOptions o, parse_backend_spec(spec));
    if (o.params.count("device_key") != 0)
        return make_error(ErrorCode::kInvalidArgument,
                          "--backend " + spec + ": the device key is the job's keys.device_key");
    job.backend = o.name;
    job.backend_params = o.params;
    return ok_status();
}

Result<std::unique_ptr<Accelerator>> open_job_backend(const Job& job) {
    BackendOptions options{job.backend, job.backend_params};
    if (job.device_key) options.params["device_key"] = job.device_key->string();
    auto made = make_backend(options);
    if (!made.ok()) return made.error().with_context("job " + job.id);
    std::unique_ptr<Accelerator> backend = std::move(*made);
    WP_ASSIGN_OR_RETURN(Bytes wrapped, read_wrapped_kik(job));
    if (auto st = backend->load_kik(wrapped); !st.ok())
        return st.error().with_context("job " + job.id + ": loading the KIK on backend " +
                                       job.backend);
    SecretArray<wpid1::kEntropySize> entropy;
    WP_RETURN_IF_ERROR(os_entropy(entropy.data(), entropy.size()));
    std::string pers = "waferprov " + job.id;
    if (pers.size() > wpid1::kMaxPersonalizationSize) pers.resize(wpid1::kMaxPersonalizationSize);
    WP_RETURN_IF_ERROR(backend->instantiate(
        entropy.span(), ByteSpan(reinterpret_cast<const uint8_t*>(pers.data()), pers.size()),
        job.reseed_interval));
    return backend;
}

Result<LedgerConfig> job_ledger_config(const Job& job) {
    LedgerConfig lc{job.id, job.customer, job.product, job.quota};
    if (job.anchor) lc.anchor_file = *job.anchor;
    if (job.ca.kind == JobCa::Kind::kPkcs11) {
        auto token = open_token_anchor(
            TokenAnchorConfig{job.ca.module, job.ca.token_label, job.ca.pin_env, job.id});
        if (!token.ok())
            return token.error().with_context("job " + job.id + ": opening the ledger's anchor");
        lc.token_anchor = std::move(*token);
    }
    return lc;
}

Result<std::unique_ptr<Signer>> open_job_signer(const Job& job, size_t parallel_signers) {
    SignerConfig config;
    if (job.ca.kind == JobCa::Kind::kPem) {
        config = PemSignerConfig{job.ca.key, job.ca.certificate};
    } else {
        Pkcs11SignerConfig p;
        p.module = job.ca.module;
        p.token_label = job.ca.token_label;
        p.key_label = job.ca.key_label;
        p.pin_env = job.ca.pin_env;
        p.certificate_pem = job.ca.certificate;
        p.pool_size = parallel_signers;
        config = p;
    }
    auto signer = make_signer(config);
    if (!signer.ok())
        return signer.error().with_context("job " + job.id + ": opening the CA signer");
    return signer;
}

std::vector<DieRequest> die_requests(const Job& job, const WaferMap& map,
                                     const std::vector<MapDie>& selected, size_t& without_uid) {
    std::vector<DieRequest> out;
    out.reserve(selected.size());
    without_uid = 0;
    for (const auto& d : selected) {
        DieRequest r;
        r.loc = DieLocation{map.lot, map.wafer, d.x, d.y, map.substrate_id};
        if (job.uid_policy == UidPolicy::kDerived) {
            r.uid = derive_uid(job.uid_salt, r.loc);
        } else if (d.uid) {
            r.uid = *d.uid;
        } else {
            ++without_uid;
            continue;
        }
        out.push_back(r);
    }
    return out;
}

namespace {

// One provision() call: the pipeline's three stages over the shared state. Submit (serial, in
// order: the DRBG draws scalars in request order) -> certificates (parallel: collect, check the
// curve, build and sign) -> commit (serial, in order: the ledger).
class Provisioning {
public:
    Provisioning(std::span<const DieRequest> dies, Accelerator& backend, Ledger& ledger,
                 DeviceCertBuilder& certs, const PipelineOptions& options,
                 std::vector<DieReport>& reports, PipelineStats& stats)
        : dies_(dies),
          backend_(backend),
          ledger_(ledger),
          certs_(certs),
          options_(options),
          subject_{options.certificate.organization, options.certificate.organizational_unit,
                   options.certificate.country},
          reports_(reports),
          stats_(stats) {}

    void run(size_t tokens) {
        tbb::parallel_pipeline(tokens,
                               tbb::make_filter<void, std::shared_ptr<Batch>>(
                                   tbb::filter_mode::serial_in_order,
                                   [this](tbb::flow_control& fc) { return submit_next(fc); }) &
                                   tbb::make_filter<std::shared_ptr<Batch>, std::shared_ptr<Batch>>(
                                       tbb::filter_mode::parallel,
                                       [this](std::shared_ptr<Batch> b) {
                                           if (b && !b->error) certify(*b);
                                           return b;
                                       }) &
                                   tbb::make_filter<std::shared_ptr<Batch>, void>(
                                       tbb::filter_mode::serial_in_order,
                                       [this](const std::shared_ptr<Batch>& b) { commit(b); }));
    }

    const std::optional<Error>& failure() const { return failure_; }

private:
    void fail(Error e) {
        std::lock_guard lock(failure_mu_);
        if (!failure_) failure_ = std::move(e);
    }
    bool failed() {
        std::lock_guard lock(failure_mu_);
        return failure_.has_value();
    }

    // The next batch to the backend; a DRBG at its reseed interval is reseeded from the OS.
    std::shared_ptr<Batch> submit_next(tbb::flow_control& fc) {
        if (next_ >= dies_.size() || failed()) {
            fc.stop();
            return nullptr;
        }
        auto b = std::make_shared<Batch>();
        b->first = next_;
        b->count = std::min(std::max<size_t>(1, options_.batch_size), dies_.size() - next_);
        next_ += b->count;
        std::vector<wpid1::Uid> uids(b->count);
        for (size_t i = 0; i < b->count; ++i) uids[i] = dies_[b->first + i].uid;
        auto t = backend_.submit(uids);
        if (!t.ok() && t.error().code == ErrorCode::kReseedRequired) {
            SecretArray<wpid1::kEntropySize> entropy;
            if (auto st = os_entropy(entropy.data(), entropy.size()); !st.ok()) {
                b->error = st.error();
                return b;
            }
            if (auto st = backend_.reseed(entropy.span()); !st.ok()) {
                b->error = st.error().with_context("reseeding the backend DRBG");
                return b;
            }
            t = backend_.submit(uids);
        }
        if (!t.ok())
            b->error = t.error().with_context("backend submit");
        else
            b->ticket = *t;
        return b;
    }

    // The batch's records: each checked on the curve, then its identity and certificate.
    void certify(Batch& b) {
        auto recs = backend_.collect(b.ticket);
        if (!recs.ok()) {
            b.error = recs.error().with_context("backend collect");
            b.refused = backend_.take_refused_index(b.ticket);
            return;
        }
        b.offers.resize(b.count);
        b.check_failures.resize(b.count);
        const auto now = std::chrono::system_clock::now();
        for (size_t i = 0; i < b.count; ++i) {
            const auto& rec = (*recs)[i];
            const DieRequest& req = dies_[b.first + i];
            if (rec.uid != req.uid) {
                b.error = make_error(ErrorCode::kInternal, "backend returned records out of order");
                return;
            }
            // A faulty accelerator must never get a certificate issued.
            if (auto st = p256_check_point(rec.x, rec.y); !st.ok()) {
                b.check_failures[i] = "backend public key rejected: " + st.error().message;
                continue;
            }
            if (auto st = identity(rec, req, now, b.offers[i]); !st.ok()) {
                b.error = st.error();
                return;
            }
        }
    }

    Status identity(const wpid1::IdentityRecord& rec, const DieRequest& req,
                    std::chrono::system_clock::time_point now, NewIdentity& n) {
        n.loc = req.loc;
        n.uid = req.uid;
        n.public_key = rec.public_key_sec1();
        n.wrapped = rec.wrapped;
        n.tester = options_.tester;
        n.serial = device_serial(certs_.ca_ski(), n.public_key);
        DeviceCertRequest cr;
        cr.uid = req.uid;
        cr.location = req.loc;
        cr.product = options_.product;
        cr.public_key = n.public_key;
        cr.serial = n.serial;
        // Backdated like the CA certificates: a verifier whose clock runs a little behind the
        // host's (or reads a coarse clock, as OpenSSL's time() does) must not see a certificate
        // from the future.
        cr.not_before = now - kNotBeforeBackdate;
        cr.subject_template = subject_;
        auto der = certs_.build(cr);
        if (!der.ok()) return der.error().with_context("certificate for " + req.loc.describe());
        n.certificate_der = std::move(*der);
        return ok_status();
    }

    // The batch's identities into the ledger in one transaction; each die's outcome reported.
    void commit(const std::shared_ptr<Batch>& b) {
        if (!b || failed()) return;
        if (b->error) {
            fail(refused(*b));
            return;
        }
        std::vector<NewIdentity> offers;
        std::vector<size_t> index;  // offer -> die index in the batch (then in dies_, below)
        for (size_t i = 0; i < b->count; ++i) {
            DieReport& r = reports_[b->first + i];
            r.request = dies_[b->first + i];
            if (b->check_failures[i]) {
                r.outcome = DieOutcome::kCheckFailed;
                r.message = *b->check_failures[i];
                ++stats_.check_failed;
                if (auto st = ledger_.alarm_backend_refused(r.request.loc, r.request.uid,
                                                            options_.tester);
                    !st.ok()) {
                    fail(st.error().with_context("recording the ALARM for " +
                                                 r.request.loc.describe()));
                    return;
                }
                continue;
            }
            offers.push_back(std::move(b->offers[i]));
            index.push_back(i);
        }
        if (options_.record_all) {
            // Held until the last batch, then recorded in one call (PipelineOptions::record_all).
            for (size_t k = 0; k < offers.size(); ++k) {
                held_.push_back(std::move(offers[k]));
                held_index_.push_back(b->first + index[k]);
            }
            if (b->first + b->count < dies_.size()) return;
            offers = std::move(held_);
            index = std::move(held_index_);
        } else {
            for (auto& i : index) i += b->first;
        }
        auto results =
            options_.record_all ? options_.record_all(offers) : ledger_.record_batch(offers);
        if (!results.ok()) {
            fail(results.error().with_context("ledger commit"));
            return;
        }
        if (results->size() != offers.size()) {
            fail(make_error(ErrorCode::kInternal,
                            "ledger commit: one result per identity expected"));
            return;
        }
        for (size_t k = 0; k < results->size(); ++k) {
            auto& res = (*results)[k];
            DieReport& r = reports_[index[k]];
            r.record = std::move(res.record);
            r.message = std::move(res.message);
            r.outcome = tally(res.outcome);
        }
        if (options_.progress) options_.progress(b->first + b->count, dies_.size());
    }

    // A batch that failed: where the backend refused one of its records, that die gets an
    // ALARM, so the ledger says which die the card failed, not only the log.
    Error refused(const Batch& b) {
        if (!b.refused || *b.refused >= b.count) return *b.error;
        const DieRequest& d = dies_[b.first + *b.refused];
        auto st = ledger_.alarm_backend_refused(d.loc, d.uid, options_.tester);
        return b.error->with_context(
            d.loc.describe() + ": " +
            (st.ok() ? std::string("ALARM backend-record-refused in the ledger")
                     : "the ALARM could not be recorded (" + st.error().message + ")"));
    }

    // Counts a ledger outcome in the stats; the die's outcome.
    DieOutcome tally(RecordOutcome o) {
        switch (o) {
            case RecordOutcome::kIssued: ++stats_.provisioned; return DieOutcome::kProvisioned;
            case RecordOutcome::kReissued: ++stats_.reissued; return DieOutcome::kReissued;
            case RecordOutcome::kConflict: ++stats_.conflicts; return DieOutcome::kConflict;
            case RecordOutcome::kQuotaExhausted:
                ++stats_.quota_refused;
                return DieOutcome::kQuotaExhausted;
        }
        return DieOutcome::kConflict;
    }

    std::span<const DieRequest> dies_;
    Accelerator& backend_;
    Ledger& ledger_;
    DeviceCertBuilder& certs_;
    const PipelineOptions& options_;
    CertTemplate subject_;
    std::vector<DieReport>& reports_;
    PipelineStats& stats_;
    size_t next_ = 0;  // submit stage only
    // record_all: the identities of the batches committed so far, and their die indexes.
    std::vector<NewIdentity> held_;
    std::vector<size_t> held_index_;
    std::optional<Error> failure_;  // the first failure
    std::mutex failure_mu_;
};

}  // namespace

Result<PipelineStats> provision(std::span<const DieRequest> dies, Accelerator& backend, Signer& ca,
                                Ledger& ledger, const PipelineOptions& options,
                                std::vector<DieReport>& reports) {
    const auto start = std::chrono::steady_clock::now();
    const int threads = options.threads > 0 ? options.threads : tbb::info::default_concurrency();
    // The commit stage spends most of its time blocked in fsync (synchronous=FULL). With more
    // than one thread, one extra arena thread keeps `threads` of them computing while the
    // commit waits; --threads 1 stays a strictly serial baseline.
    const size_t arena_threads = static_cast<size_t>(threads) + (threads > 1 ? 1 : 0);
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, arena_threads);
    WP_ASSIGN_OR_RETURN(DeviceCertBuilder certs,
                        DeviceCertBuilder::create(ca, options.certificate.location_oid));

    reports.assign(dies.size(), DieReport{});
    PipelineStats stats;
    stats.dies = dies.size();
    Provisioning p(dies, backend, ledger, certs, options, reports, stats);
    // About four batches in flight per thread: enough to keep every thread busy while the
    // serial stages run, few enough to keep memory and the uncommitted window small.
    p.run(arena_threads * 4);
    stats.elapsed = std::chrono::steady_clock::now() - start;
    if (p.failure()) return *p.failure();
    return stats;
}

}  // namespace waferprov::host
