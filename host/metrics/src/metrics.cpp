#include "waferprov/host/metrics.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <set>
#include <sstream>
#include <tuple>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace waferprov::host {

namespace {

using protocol::StatusCode;
using Clock = std::chrono::steady_clock;

constexpr EquipmentState kAllStates[] = {
    EquipmentState::kProductive,    EquipmentState::kStandby,         EquipmentState::kEngineering,
    EquipmentState::kScheduledDown, EquipmentState::kUnscheduledDown, EquipmentState::kNonScheduled,
};

// Touchdown latency as a tester sees it (less the network): a few ms for identities the ledger
// holds, tens of ms when a 16-site card's are generated and signed on demand.
const prometheus::Histogram::BucketBoundaries kTouchdownBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
// A commit is one WAL fsync: well under a millisecond on NVMe, tens of ms on a slow disk.
const prometheus::Histogram::BucketBoundaries kCommitBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};

// Why binding `host`:`port` fails, asked of the kernel (civetweb only says that it failed).
std::string bind_failure(const std::string& host, int port) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family = AF_INET;
    if (!host.empty() && host.front() == '[') {
        family = AF_INET6;
        auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(static_cast<uint16_t>(port));
        inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a6->sin6_addr);
        len = sizeof *a6;
    } else {
        auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
        a4->sin_family = AF_INET;
        a4->sin_port = htons(static_cast<uint16_t>(port));
        inet_pton(AF_INET, host.c_str(), &a4->sin_addr);
        len = sizeof *a4;
    }
    const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::strerror(errno);
    std::string why = "the HTTP server did not start";
    if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        why = errno == EADDRINUSE      ? "the port is in use"
              : errno == EADDRNOTAVAIL ? "the address is not one of this host's"
                                       : std::strerror(errno);
    }
    ::close(fd);
    return why;
}

}  // namespace

const char* to_string(EquipmentState s) noexcept {
    switch (s) {
        case EquipmentState::kProductive: return "productive";
        case EquipmentState::kStandby: return "standby";
        case EquipmentState::kEngineering: return "engineering";
        case EquipmentState::kScheduledDown: return "scheduled_down";
        case EquipmentState::kUnscheduledDown: return "unscheduled_down";
        case EquipmentState::kNonScheduled: return "non_scheduled";
    }
    return "?";
}

Result<std::string> parse_metrics_address(const std::string& address) {
    const auto bad = [&](const std::string& why) -> Error {
        return make_error(ErrorCode::kInvalidArgument,
                          "--metrics '" + address + "': " + why +
                              " (HOST:PORT, HOST an IPv4 address, [IPv6] or localhost)");
    };
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0) return bad("no HOST:PORT");
    std::string host = address.substr(0, colon);
    const std::string port_text = address.substr(colon + 1);
    int port = -1;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
        port < 0 || port > 65535)
        return bad("the port must be a number 0..65535");
    if (host == "localhost") host = "127.0.0.1";
    if (host.front() == '[') {
        in6_addr a6{};
        if (host.size() < 3 || host.back() != ']' ||
            inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a6) != 1)
            return bad("'" + host + "' is not an IPv6 address in brackets");
    } else {
        in_addr a4{};
        if (inet_pton(AF_INET, host.c_str(), &a4) != 1)
            return bad("'" + host + "' is not a numeric IPv4 address");
    }
    return host + ":" + std::to_string(port);
}

// One job's series, created once (Family::Add takes a lock and hashes the labels; the hot
// path then only increments).
struct Metrics::JobSeries {
    std::set<std::string> testers;  // ids the job admits
    prometheus::Counter* issued = nullptr;
    prometheus::Counter* delivered = nullptr;
    prometheus::Counter* programmed = nullptr;
    prometheus::Counter* failed = nullptr;
    prometheus::Gauge* quota_left = nullptr;
    prometheus::Histogram* touchdown = nullptr;
    prometheus::Histogram* commit = nullptr;
    prometheus::Counter* commit_requests = nullptr;
    prometheus::Counter* errors = nullptr;  // code INTERNAL: the host failed a request
    bool quota_known = false;
    uint64_t last_quota_left = 0;
    bool fault = false;  // the job's last request failed on the host
};

// waferprov_equipment_state, worked out at each scrape.
class Metrics::StateCollector : public prometheus::Collectable {
public:
    explicit StateCollector(const Metrics& m) : m_(m) {}
    std::vector<prometheus::MetricFamily> Collect() const override {
        prometheus::MetricFamily f;
        f.name = "waferprov_equipment_state";
        f.help =
            "SEMI E10 equipment state of this host: 1 for the current state, 0 for the others "
            "(docs/operations.md)";
        f.type = prometheus::MetricType::Gauge;
        const EquipmentState now = m_.state();
        for (EquipmentState s : kAllStates) {
            prometheus::ClientMetric c;
            c.label.push_back({"state", to_string(s)});
            c.gauge.value = s == now ? 1 : 0;
            f.metric.push_back(std::move(c));
        }
        return {f};
    }

private:
    const Metrics& m_;
};

Metrics::Metrics(MetricsOptions options)
    : opt_(std::move(options)), registry_(std::make_shared<prometheus::Registry>()) {
    if (!opt_.now) opt_.now = [] { return Clock::now(); };
    state_ = std::make_shared<StateCollector>(*this);
    auto& r = *registry_;
    issued_ = &prometheus::BuildCounter()
                   .Name("waferprov_identities_issued_total")
                   .Help("Identities issued (ISSUE events: new, counted against the quota)")
                   .Register(r);
    delivered_ =
        &prometheus::BuildCounter()
             .Name("waferprov_identities_delivered_total")
             .Help(
                 "Identities delivered to testers (dies listed in DELIVER events; a retested die "
                 "is delivered again)")
             .Register(r);
    programmed_ = &prometheus::BuildCounter()
                       .Name("waferprov_identities_programmed_total")
                       .Help("Results recorded as PROGRAMMED")
                       .Register(r);
    failed_ = &prometheus::BuildCounter()
                   .Name("waferprov_identities_failed_total")
                   .Help("Results recorded as FAILED")
                   .Register(r);
    refusals_ = &prometheus::BuildCounter()
                     .Name("waferprov_refusals_total")
                     .Help("Sites, results and frames refused, by the protocol's status code")
                     .Register(r);
    errors_ = &prometheus::BuildCounter()
                   .Name("waferprov_errors_total")
                   .Help("Requests and sites the host failed (ledger, card, signer), by code")
                   .Register(r);
    quota_left_ = &prometheus::BuildGauge()
                       .Name("waferprov_quota_left_identities")
                       .Help("Identities the job may still issue (quota - used)")
                       .Register(r);
    sessions_ = &prometheus::BuildGauge()
                     .Name("waferprov_sessions_open")
                     .Help("Open tester sessions")
                     .Register(r);
    touchdown_ = &prometheus::BuildHistogram()
                      .Name("waferprov_touchdown_duration_seconds")
                      .Help("TOUCHDOWN arrival to answer, queueing included")
                      .Register(r);
    commit_ = &prometheus::BuildHistogram()
                   .Name("waferprov_ledger_commit_duration_seconds")
                   .Help("Ledger transaction COMMIT (WAL fsync, anchors)")
                   .Register(r);
    commit_requests_ =
        &prometheus::BuildCounter()
             .Name("waferprov_ledger_commit_requests_total")
             .Help(
                 "Calls the ledger's commits carried (group commit: touchdowns, results and "
                 "challenges of several testers in one transaction); divided by the commit "
                 "histogram's count, the mean group")
             .Register(r);
}

Metrics::~Metrics() = default;  // the exposer stops before the registry goes

Status Metrics::listen(const std::string& address) {
    WP_ASSIGN_OR_RETURN(const std::string bind, parse_metrics_address(address));
    const size_t colon = bind.rfind(':');
    const std::string host = bind.substr(0, colon);
    const int port = std::stoi(bind.substr(colon + 1));
    // prometheus-cpp reports a failed start by throwing (civetweb's CivetException): caught here
    // at the library's edge and turned into a Status naming the address.
    try {
        exposer_ = std::make_unique<prometheus::Exposer>(bind, 2);
    } catch (const std::exception& e) {
        return make_error(ErrorCode::kIo, "--metrics " + address + ": cannot listen on " + bind +
                                              ": " + bind_failure(host, port));
    }
    exposer_->RegisterCollectable(registry_);
    exposer_->RegisterCollectable(state_);
    const auto ports = exposer_->GetListeningPorts();
    url_ =
        "http://" + host + ":" + std::to_string(ports.empty() ? port : ports.front()) + "/metrics";
    return ok_status();
}

std::string Metrics::url() const { return url_; }

Metrics::JobSeries& Metrics::series(const std::string& job) {
    auto& js = jobs_[job];
    if (!js) {
        js = std::make_unique<JobSeries>();
        const prometheus::Labels l = {{"job", job}};
        js->issued = &issued_->Add(l);
        js->delivered = &delivered_->Add(l);
        js->programmed = &programmed_->Add(l);
        js->failed = &failed_->Add(l);
        js->quota_left = &quota_left_->Add(l);
        js->touchdown = &touchdown_->Add(l, kTouchdownBuckets);
        js->commit = &commit_->Add(l, kCommitBuckets);
        js->commit_requests = &commit_requests_->Add(l);
        // At zero from the start: a family without a series is not exposed at all (no HELP or
        // TYPE), and an alert on the errors' rate needs the series before the first error.
        js->errors =
            &errors_->Add({{"job", job}, {"code", protocol::to_string(StatusCode::kInternal)}});
    }
    return *js;
}

void Metrics::add_job(const Job& job) {
    std::lock_guard lock(mu_);
    auto& js = series(job.id);
    for (const auto& t : job.testers) {
        js.testers.insert(t.id);
        keys_.emplace(t.public_key, std::pair{job.id, t.id});
        sessions_->Add({{"job", job.id}, {"tester", t.id}});
    }
}

std::string Metrics::tester_label(const JobSeries& js, const std::string& tester) const {
    return js.testers.contains(tester) ? tester : "unlisted";
}

void Metrics::activity() {
    last_activity_ns_.store(opt_.now().time_since_epoch().count(), std::memory_order_relaxed);
}

void Metrics::job_opened(const std::string& job, uint64_t quota_left) {
    std::lock_guard lock(mu_);
    auto& js = series(job);
    js.quota_left->Set(static_cast<double>(quota_left));
    js.last_quota_left = quota_left;
    js.quota_known = true;
}

void Metrics::ledger_committed(const std::string& job, double seconds, uint64_t quota_left,
                               uint64_t requests) {
    std::lock_guard lock(mu_);
    auto& js = series(job);
    js.commit->Observe(seconds);
    js.commit_requests->Increment(static_cast<double>(requests));
    // Only an ISSUE uses quota, one per identity: the drop in quota left is what was issued.
    if (js.quota_known && quota_left < js.last_quota_left)
        js.issued->Increment(static_cast<double>(js.last_quota_left - quota_left));
    js.quota_left->Set(static_cast<double>(quota_left));
    js.last_quota_left = quota_left;
    js.quota_known = true;
    activity();
}

void Metrics::session_opened(const std::string& job, const std::string& tester) {
    std::lock_guard lock(mu_);
    auto& js = series(job);
    sessions_->Add({{"job", job}, {"tester", tester_label(js, tester)}}).Increment();
}

void Metrics::session_closed(const std::string& job, const std::string& tester) {
    std::lock_guard lock(mu_);
    auto& js = series(job);
    sessions_->Add({{"job", job}, {"tester", tester_label(js, tester)}}).Decrement();
}

void Metrics::refusal(const std::string& job, const std::string& tester, StatusCode code) {
    // INTERNAL is the host's failure, every other code a refusal of what was asked.
    auto* family = code == StatusCode::kInternal ? errors_ : refusals_;
    prometheus::Labels l = {{"job", job}, {"code", protocol::to_string(code)}};
    if (family == refusals_) l.emplace("tester", tester);
    family->Add(l).Increment();
}

void Metrics::touchdown_answered(const std::string& job, const std::string& tester,
                                 const protocol::TouchdownResult& answer, double seconds) {
    std::lock_guard lock(mu_);
    auto& js = series(job);
    const std::string t = tester_label(js, tester);
    js.touchdown->Observe(seconds);
    bool failed = false;
    for (const auto& s : answer.sites) {
        if (protocol::carries_identity(s.status)) {
            js.delivered->Increment();
        } else {
            refusal(job, t, s.status);
            failed = failed || s.status == StatusCode::kInternal;  // the card's key failed
        }
    }
    js.fault = failed;
    activity();
}

void Metrics::results_answered(const std::string& job, const std::string& tester,
                               const protocol::Results&, const protocol::ResultsAck& answer) {
    std::lock_guard lock(mu_);
    auto& js = series(job);
    const std::string t = tester_label(js, tester);
    for (const auto& a : answer.sites)
        if (a.status != StatusCode::kOk) refusal(job, t, a.status);
    js.fault = false;
    activity();
}

void Metrics::result_recorded(const std::string& job, bool programmed) {
    std::lock_guard lock(mu_);
    auto& js = series(job);
    (programmed ? js.programmed : js.failed)->Increment();
}

void Metrics::request_failed(const std::string& job, const std::string&) {
    std::lock_guard lock(mu_);
    auto& js = series(job);
    js.fault = true;
    js.errors->Increment();
}

void Metrics::frame_refused(const std::string& key_z85, StatusCode code) {
    std::lock_guard lock(mu_);
    // The key was admitted by ZAP, so it is one some job lists: label it by that tester. A
    // frame from an --insecure peer (no key) names nobody.
    std::string job, tester;
    if (auto it = keys_.find(key_z85); it != keys_.end()) std::tie(job, tester) = it->second;
    refusal(job, tester, code);
}

void Metrics::stopping() noexcept { stopping_.store(true); }

EquipmentState Metrics::state() const {
    if (stopping_.load()) return EquipmentState::kNonScheduled;
    bool fault = false, all_spent = true;
    {
        std::lock_guard lock(mu_);
        for (const auto& [id, js] : jobs_) {
            fault = fault || js->fault;
            all_spent = all_spent && js->quota_known && js->last_quota_left == 0;
        }
        all_spent = all_spent && !jobs_.empty();
    }
    if (fault) return EquipmentState::kUnscheduledDown;
    if (opt_.engineering) return EquipmentState::kEngineering;
    const int64_t last = last_activity_ns_.load(std::memory_order_relaxed);
    const int64_t now = opt_.now().time_since_epoch().count();
    const int64_t window =
        std::chrono::duration_cast<std::chrono::nanoseconds>(opt_.productive_window).count();
    if (last != INT64_MIN && now - last < window) return EquipmentState::kProductive;
    return all_spent ? EquipmentState::kScheduledDown : EquipmentState::kStandby;
}

std::string Metrics::text() const {
    auto families = registry_->Collect();
    for (auto& f : state_->Collect()) families.push_back(std::move(f));
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, families);
    return out.str();
}

}  // namespace waferprov::host
