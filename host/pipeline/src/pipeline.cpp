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

Result<PipelineStats> provision(std::span<const DieRequest> dies, Accelerator& backend, Signer& ca,
                                Ledger& ledger, const PipelineOptions& options,
                                std::vector<DieReport>& reports) {
    const auto start = std::chrono::steady_clock::now();
    const int threads = options.threads > 0 ? options.threads : tbb::info::default_concurrency();
    const size_t batch_size = std::max<size_t>(1, options.batch_size);
    // The commit stage spends most of its time blocked in fsync (synchronous=FULL). With more
    // than one thread, one extra arena thread keeps `threads` of them computing while the
    // commit waits; --threads 1 stays a strictly serial baseline.
    const size_t arena_threads = static_cast<size_t>(threads) + (threads > 1 ? 1 : 0);
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, arena_threads);
    WP_ASSIGN_OR_RETURN(DeviceCertBuilder certs,
                        DeviceCertBuilder::create(ca, options.certificate.location_oid));
    CertTemplate subject{options.certificate.organization, options.certificate.organizational_unit,
                         options.certificate.country};

    reports.assign(dies.size(), DieReport{});
    PipelineStats stats;
    stats.dies = dies.size();
    std::optional<Error> failure;  // first failure; written only by serial stages or under mu
    std::mutex failure_mu;
    auto fail = [&](Error e) {
        std::lock_guard lock(failure_mu);
        if (!failure) failure = std::move(e);
    };
    auto failed = [&] {
        std::lock_guard lock(failure_mu);
        return failure.has_value();
    };

    size_t next = 0;
    // About four batches in flight per thread: enough to keep every thread busy while the
    // serial stages run, few enough to keep memory and the uncommitted window small.
    const size_t tokens = arena_threads * 4;
    tbb::parallel_pipeline(
        tokens,
        tbb::make_filter<void, std::shared_ptr<Batch>>(
            tbb::filter_mode::serial_in_order,
            [&](tbb::flow_control& fc) -> std::shared_ptr<Batch> {
                if (next >= dies.size() || failed()) {
                    fc.stop();
                    return nullptr;
                }
                auto b = std::make_shared<Batch>();
                b->first = next;
                b->count = std::min(batch_size, dies.size() - next);
                next += b->count;
                std::vector<wpid1::Uid> uids(b->count);
                for (size_t i = 0; i < b->count; ++i) uids[i] = dies[b->first + i].uid;
                auto t = backend.submit(uids);
                if (!t.ok() && t.error().code == ErrorCode::kReseedRequired) {
                    SecretArray<wpid1::kEntropySize> entropy;
                    if (auto st = os_entropy(entropy.data(), entropy.size()); !st.ok()) {
                        b->error = st.error();
                        return b;
                    }
                    if (auto st = backend.reseed(entropy.span()); !st.ok()) {
                        b->error = st.error().with_context("reseeding the backend DRBG");
                        return b;
                    }
                    t = backend.submit(uids);
                }
                if (!t.ok())
                    b->error = t.error().with_context("backend submit");
                else
                    b->ticket = *t;
                return b;
            }) &
            tbb::make_filter<std::shared_ptr<Batch>, std::shared_ptr<Batch>>(
                tbb::filter_mode::parallel,
                [&](std::shared_ptr<Batch> b) -> std::shared_ptr<Batch> {
                    if (!b || b->error) return b;
                    auto recs = backend.collect(b->ticket);
                    if (!recs.ok()) {
                        b->error = recs.error().with_context("backend collect");
                        b->refused = backend.take_refused_index(b->ticket);
                        return b;
                    }
                    b->offers.resize(b->count);
                    b->check_failures.resize(b->count);
                    const auto now = std::chrono::system_clock::now();
                    for (size_t i = 0; i < b->count; ++i) {
                        const auto& rec = (*recs)[i];
                        const DieRequest& req = dies[b->first + i];
                        if (rec.uid != req.uid) {
                            b->error = make_error(ErrorCode::kInternal,
                                                  "backend returned records out of order");
                            return b;
                        }
                        // A faulty accelerator must never get a certificate issued.
                        if (auto st = p256_check_point(rec.x, rec.y); !st.ok()) {
                            b->check_failures[i] =
                                "backend public key rejected: " + st.error().message;
                            continue;
                        }
                        NewIdentity& n = b->offers[i];
                        n.loc = req.loc;
                        n.uid = req.uid;
                        n.public_key = rec.public_key_sec1();
                        n.wrapped = rec.wrapped;
                        n.tester = options.tester;
                        n.serial = device_serial(certs.ca_ski(), n.public_key);
                        DeviceCertRequest cr;
                        cr.uid = req.uid;
                        cr.location = req.loc;
                        cr.product = options.product;
                        cr.public_key = n.public_key;
                        cr.serial = n.serial;
                        // Backdated like the CA certificates: a verifier whose clock runs a
                        // little behind the host's (or reads a coarse clock, as OpenSSL's
                        // time() does) must not see a certificate from the future.
                        cr.not_before = now - kNotBeforeBackdate;
                        cr.subject_template = subject;
                        auto der = certs.build(cr);
                        if (!der.ok()) {
                            b->error =
                                der.error().with_context("certificate for " + req.loc.describe());
                            return b;
                        }
                        n.certificate_der = std::move(*der);
                    }
                    return b;
                }) &
            tbb::make_filter<std::shared_ptr<Batch>, void>(
                tbb::filter_mode::serial_in_order, [&](std::shared_ptr<Batch> b) {
                    if (!b || failed()) return;
                    if (b->error) {
                        // A record the backend refused: its die gets an ALARM, so the
                        // ledger says which die the card failed, not only the log.
                        if (b->refused && *b->refused < b->count) {
                            const DieRequest& d = dies[b->first + *b->refused];
                            auto st = ledger.alarm_backend_refused(d.loc, d.uid, options.tester);
                            fail(b->error->with_context(
                                d.loc.describe() + ": " +
                                (st.ok() ? std::string("ALARM backend-record-refused "
                                                       "in the ledger")
                                         : "the ALARM could not be recorded (" +
                                               st.error().message + ")")));
                            return;
                        }
                        fail(*b->error);
                        return;
                    }
                    std::vector<NewIdentity> offers;
                    std::vector<size_t> index;  // offer -> die index within the batch
                    for (size_t i = 0; i < b->count; ++i) {
                        DieReport& r = reports[b->first + i];
                        r.request = dies[b->first + i];
                        if (b->check_failures[i]) {
                            r.outcome = DieOutcome::kCheckFailed;
                            r.message = *b->check_failures[i];
                            ++stats.check_failed;
                            auto st = ledger.alarm_backend_refused(r.request.loc, r.request.uid,
                                                                   options.tester);
                            if (!st.ok()) {
                                fail(st.error().with_context("recording the ALARM for " +
                                                             r.request.loc.describe()));
                                return;
                            }
                            continue;
                        }
                        offers.push_back(std::move(b->offers[i]));
                        index.push_back(i);
                    }
                    auto results = ledger.record_batch(offers);
                    if (!results.ok()) {
                        fail(results.error().with_context("ledger commit"));
                        return;
                    }
                    for (size_t k = 0; k < results->size(); ++k) {
                        auto& res = (*results)[k];
                        DieReport& r = reports[b->first + index[k]];
                        r.record = std::move(res.record);
                        r.message = std::move(res.message);
                        switch (res.outcome) {
                            case RecordOutcome::kIssued:
                                r.outcome = DieOutcome::kProvisioned;
                                ++stats.provisioned;
                                break;
                            case RecordOutcome::kReissued:
                                r.outcome = DieOutcome::kReissued;
                                ++stats.reissued;
                                break;
                            case RecordOutcome::kConflict:
                                r.outcome = DieOutcome::kConflict;
                                ++stats.conflicts;
                                break;
                            case RecordOutcome::kQuotaExhausted:
                                r.outcome = DieOutcome::kQuotaExhausted;
                                ++stats.quota_refused;
                                break;
                        }
                    }
                    if (options.progress) options.progress(b->first + b->count, dies.size());
                }));
    stats.elapsed = std::chrono::steady_clock::now() - start;
    if (failure) return *failure;
    return stats;
}

}  // namespace waferprov::host
