// Prometheus metrics of `serve` and `run` (`--metrics HOST:PORT`; docs/operations.md "Metrics").
//
// Metrics owns the prometheus-cpp registry and, once listen() is called, the exposer (civetweb,
// serving GET /metrics). It is the service's ServiceObserver: the service tells it what happens
// (sessions, answers, ledger commits, refusals) and it turns that into counters, gauges and
// histograms named waferprov_*. `run` feeds it the same ledger commits and its own state.
//
// The SEMI E10 equipment state is not stored but worked out at each scrape from what the host
// did last (MetricsOptions::productive_window), so it never goes stale between events.
//
// Thread-safety: every member may be called from any thread at once, except listen() (once,
// before the service runs). stopping() is also async-signal-safe (it sets one atomic flag).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "waferprov/host/job.hpp"
#include "waferprov/host/service.hpp"
#include "waferprov/result.hpp"

namespace prometheus {
class Registry;
class Exposer;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace waferprov::host {

// The SEMI E10 equipment states, as the label `state` of waferprov_equipment_state names them.
enum class EquipmentState {
    kProductive,       // requests answered within the productive window
    kStandby,          // serving, idle
    kEngineering,      // serving a development (--insecure) link
    kScheduledDown,    // idle with every job's quota spent: nothing new can be issued
    kUnscheduledDown,  // the last request of a job failed on the host (ledger, card, signer)
    kNonScheduled,     // stopping (SIGTERM) or, for `run`, the work is done
};
const char* to_string(EquipmentState s) noexcept;

struct MetricsOptions {
    // A request answered (or, for `run`, a ledger commit) within this long makes the host
    // productive; after it the host is standby.
    std::chrono::seconds productive_window{60};
    // The host serves a development link (serve --insecure): E10 engineering, not production.
    bool engineering = false;
    // The clock the productive window is measured on (tests step it); default steady_clock.
    std::function<std::chrono::steady_clock::time_point()> now;
};

// "HOST:PORT" as `--metrics` takes it: HOST a numeric IPv4 address, an [IPv6] address in
// brackets, or "localhost" (127.0.0.1); PORT 0..65535 (0: any free port). Returns the address
// in civetweb's spelling; kInvalidArgument naming what is wrong otherwise.
Result<std::string> parse_metrics_address(const std::string& address);

class Metrics final : public ServiceObserver {
public:
    explicit Metrics(MetricsOptions options = {});
    ~Metrics() override;
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    // Serves GET /metrics on `address` (see parse_metrics_address) until destroyed. An error
    // names the address and why (malformed, not an address of this host, port in use).
    Status listen(const std::string& address);
    // The URL scraped, e.g. "http://127.0.0.1:9464/metrics" (port resolved); "" before listen().
    std::string url() const;

    // Registers a job's series at zero (so a dashboard sees them before the first event): its
    // id, and the testers its [testers] table admits (their ids label the per-tester series).
    void add_job(const Job& job);

    // The exposition text a scrape returns (the registry and the E10 state).
    std::string text() const;
    EquipmentState state() const;

    // ServiceObserver (`run` calls job_opened, ledger_committed, request_failed and stopping).
    void job_opened(const std::string& job, uint64_t quota_left) override;
    void ledger_committed(const std::string& job, double seconds, uint64_t quota_left,
                          uint64_t requests) override;
    void session_opened(const std::string& job, const std::string& tester) override;
    void session_closed(const std::string& job, const std::string& tester) override;
    void touchdown_answered(const std::string& job, const std::string& tester,
                            const protocol::TouchdownResult& answer, double seconds) override;
    void results_answered(const std::string& job, const std::string& tester,
                          const protocol::Results& request,
                          const protocol::ResultsAck& answer) override;
    void result_recorded(const std::string& job, bool programmed) override;
    void request_failed(const std::string& job, const std::string& tester) override;
    void frame_refused(const std::string& key_z85, protocol::StatusCode code) override;
    void stopping() noexcept override;

private:
    struct JobSeries;
    class StateCollector;

    JobSeries& series(const std::string& job);  // under mu_
    // The label value for a tester: its id if the job lists it, else "unlisted" (an --insecure
    // link may name any tester; the label set must stay bounded).
    std::string tester_label(const JobSeries& js, const std::string& tester) const;
    void refusal(const std::string& job, const std::string& tester, protocol::StatusCode code);
    void activity();

    MetricsOptions opt_;
    std::shared_ptr<prometheus::Registry> registry_;
    std::shared_ptr<StateCollector> state_;
    std::unique_ptr<prometheus::Exposer> exposer_;
    std::string url_;

    prometheus::Family<prometheus::Counter>* issued_ = nullptr;
    prometheus::Family<prometheus::Counter>* delivered_ = nullptr;
    prometheus::Family<prometheus::Counter>* programmed_ = nullptr;
    prometheus::Family<prometheus::Counter>* failed_ = nullptr;
    prometheus::Family<prometheus::Counter>* refusals_ = nullptr;
    prometheus::Family<prometheus::Counter>* errors_ = nullptr;
    prometheus::Family<prometheus::Gauge>* quota_left_ = nullptr;
    prometheus::Family<prometheus::Gauge>* sessions_ = nullptr;
    prometheus::Family<prometheus::Histogram>* touchdown_ = nullptr;
    prometheus::Family<prometheus::Histogram>* commit_ = nullptr;
    prometheus::Family<prometheus::Counter>* commit_requests_ = nullptr;

    mutable std::mutex mu_;
    std::map<std::string, std::unique_ptr<JobSeries>> jobs_;
    std::map<std::string, std::pair<std::string, std::string>> keys_;  // CURVE key -> job, tester
    std::atomic<int64_t> last_activity_ns_{INT64_MIN};
    std::atomic<bool> stopping_{false};
};

}  // namespace waferprov::host
