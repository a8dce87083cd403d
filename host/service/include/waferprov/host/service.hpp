// The tester link's host side: `waferprov serve` (docs/tester-protocol.md).
//
//   testers (DEALER, CurveZMQ) ──► ROUTER ── I/O thread ── decode, admission, sessions, answer
//   cache
//                                                │  ▲
//                                   work queue   ▼  │  answers (eventfd-signalled queue)
//                                         worker threads: ledger deliver / results,
//                                         on-demand generation (host::provision, oneTBB)
//
// One I/O thread owns every socket (the ROUTER and the ZAP handler) and never blocks on
// anything but zmq_poll; the workers never touch a socket. So network I/O never waits on a
// signature or an fsync, and a slow tester never holds up signing.
//
// Several jobs are served at once, each with its own ledger, backend and CA signer. A tester's
// CURVE key is admitted by the jobs that list it (ZAP), a session is bound to one job and one
// key, and every ledger call goes to the session's job: a tester admitted for one job can never
// reach another job's identities, records or quota.
//
// Thread-safety: run() on one thread; stop() from any thread or from a signal handler.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "waferprov/host/curve_keys.hpp"
#include "waferprov/host/job.hpp"
#include "waferprov/host/model.hpp"
#include "waferprov/host/protocol.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host {

// What `serve` reports as it works, for monitoring (host/metrics implements it with Prometheus;
// docs/operations.md "Metrics"). An interface rather than metrics calls in the service, so the
// service links no exporter and a test can count what it is told. Called from the I/O thread
// and the worker threads at once: an implementation is thread-safe and never blocks.
// `job` is a served job's id; `tester` a tester id the job admitted (HELLO checked it), or ""
// where the request is not yet tied to a session.
class ServiceObserver {
public:
    virtual ~ServiceObserver() = default;
    // A job's ledger is open: its quota left. Then after every ledger commit: how long the
    // commit took, the quota left after it, and how many calls it carried (the group commit's
    // group: deliveries, results and challenges of several testers; 1 for a batch of `run`).
    virtual void job_opened(const std::string& job, uint64_t quota_left) = 0;
    virtual void ledger_committed(const std::string& job, double seconds, uint64_t quota_left,
                                  uint64_t requests) = 0;
    virtual void session_opened(const std::string& job, const std::string& tester) = 0;
    virtual void session_closed(const std::string& job, const std::string& tester) = 0;
    // A TOUCHDOWN answered, `seconds` after it arrived (queueing included).
    virtual void touchdown_answered(const std::string& job, const std::string& tester,
                                    const protocol::TouchdownResult& answer, double seconds) = 0;
    virtual void results_answered(const std::string& job, const std::string& tester,
                                  const protocol::Results& request,
                                  const protocol::ResultsAck& answer) = 0;
    // A die's result recorded: DELIVERED -> PROGRAMMED (programmed) or FAILED. Not called for
    // a result repeated with the same outcome (OK in the answer, but the ledger records
    // nothing), so these counts are the ledger's.
    virtual void result_recorded(const std::string& job, bool programmed) = 0;
    // A request the host could not carry out (ledger, backend or signer failure): ERROR
    // INTERNAL was answered.
    virtual void request_failed(const std::string& job, const std::string& tester) = 0;
    // A frame refused as a whole (an ERROR answer) from the connection with CURVE key
    // `key_z85` ("" on an --insecure link).
    virtual void frame_refused(const std::string& key_z85, protocol::StatusCode code) = 0;
    // stop() was called: new requests are refused from now on.
    virtual void stopping() = 0;
};

struct ServiceOptions {
    std::string bind = "tcp://127.0.0.1:7450";  // a ZeroMQ endpoint; port 0 picks a free one
    bool insecure = false;                      // plain TCP, no CURVE (development only)
    protocol::CurveKeyPair server_keys;         // required unless insecure
    size_t max_sites = 1024;                    // advertised in HELLO_OK (1..1024)
    int signing_threads = 0;                    // on-demand generation; 0 = all cores
    // Threads running ledger work. Concurrent requests share ledger commits (group commit), at
    // most one request per worker: 16 testers at once reach 1.5x the dies/s of 4 workers.
    size_t workers = 16;
    size_t max_pending = 256;    // requests queued for the workers before BUSY
    size_t max_sessions = 1024;  // oldest idle session is dropped beyond this
    size_t answers_kept = 8;     // answers cached per session (idempotent retries)
    bool verbose = false;        // log every request, not only refusals
    // After stop(): how long in-flight work may take to finish and its answers to leave.
    std::chrono::milliseconds shutdown_deadline{5000};
    // Refused connections, frames and sites: one line per kind, then one summary per window
    // ("N more like this in the last Ts"), so a misbehaving peer cannot flood the log.
    std::chrono::milliseconds log_window{10000};
    // Log sink (one line, no newline); default: stderr with a UTC timestamp.
    std::function<void(const std::string&)> log;
    // Told what the service does (metrics); not owned, outlives the Service. nullptr: nobody.
    ServiceObserver* observer = nullptr;
};

// A job to serve. With maps, a touchdown site that is not a die of its wafer's map in one of
// the job's provision bins (or on a wafer without a map) is answered NOT_ON_MAP; a job served
// without maps accepts any (x, y).
struct ServedJob {
    Job job;
    std::vector<WaferMap> maps;
};

struct ServiceStats {
    uint64_t sessions_opened = 0, requests = 0, refused_frames = 0, refused_connections = 0;
    uint64_t delivered = 0, reissued = 0, generated = 0, refused_sites = 0, results = 0;
    uint64_t working = 0;  // requests a worker is carrying out right now
};

class Service {
public:
    // Opens every job's ledger, backend and signer, and checks the jobs are apart (distinct ids
    // and ledgers). Nothing listens yet.
    static Result<std::unique_ptr<Service>> create(std::vector<ServedJob> jobs,
                                                   ServiceOptions options);
    ~Service();
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    // Binds and serves until stop(). `on_listening` is called once with the bound endpoint
    // (port resolved) when connections are accepted. Returns an error if the bind fails.
    Status run(const std::function<void(const std::string&)>& on_listening = {});

    // Asks run() to finish: new requests get SHUTTING_DOWN, work in flight completes and is
    // answered, then run() returns. Async-signal-safe (one write to an eventfd).
    void stop() noexcept;

    ServiceStats stats() const;

    struct Impl;

private:
    explicit Service(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace waferprov::host
