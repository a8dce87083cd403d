#include "simulator.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "die_check.hpp"
#include "probe_card.hpp"
#include "waferprov/host/wafermap.hpp"
#include "waferprov/possession.hpp"
#include "waferprov_ate.h"

namespace waferprov::tester {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// The name of a status ("QUOTA_EXHAUSTED"), from the library's "NAME: meaning" text.
std::string status_name(int status) {
    if (status == WP_ATE_OK) return "OK";
    std::string s = wp_ate_strerror(status);
    if (const size_t colon = s.find(':'); colon != std::string::npos) s.resize(colon);
    if (s.empty() || s == "unknown status") s = "status " + std::to_string(status);
    return s;
}

// "QUOTA_EXHAUSTED (0x30): the job's quota is used up - <the handle's detail>"
std::string describe(int status, const char* detail) {
    std::ostringstream s;
    s << wp_ate_strerror(status);
    if (status > 0) s << " (0x" << std::hex << std::setw(2) << std::setfill('0') << status << ")";
    if (detail && *detail) s << " - " << detail;
    return s.str();
}

// Statuses after which the same request (same sequence) is sent again: the host is down or
// restarting (no answer), overloaded, or stopping.
bool retryable(int status) {
    return status == WP_ATE_E_TIMEOUT || status == WP_ATE_S_BUSY ||
           status == WP_ATE_S_SHUTTING_DOWN || status == WP_ATE_S_NO_SESSION;
}

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    // Nearest rank: the smallest value with at least p of the samples at or below it.
    const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

// A final-test answer's identity (status OK: a part provisioned at final test) in the form the
// die checks take.
wp_ate_site_identity identity_of(const wp_ate_part_answer& a) {
    wp_ate_site_identity id{};
    id.site = a.site;
    id.status = a.status;
    std::memcpy(id.uid, a.uid, sizeof id.uid);
    id.key_usage = a.key_usage;
    id.key_algorithm = a.key_algorithm;
    id.key_version = a.key_version;
    std::memcpy(id.wrapped_key, a.wrapped_key, sizeof id.wrapped_key);
    id.certificate_length = std::min(a.certificate_length, sizeof id.certificate);
    std::memcpy(id.certificate, a.certificate, id.certificate_length);
    std::memcpy(id.chain_id, a.chain_id, sizeof id.chain_id);
    return id;
}

bool same_identity(const wp_ate_site_identity& a, const wp_ate_site_identity& b) {
    return std::memcmp(a.uid, b.uid, sizeof a.uid) == 0 && a.key_usage == b.key_usage &&
           a.key_algorithm == b.key_algorithm && a.key_version == b.key_version &&
           std::memcmp(a.wrapped_key, b.wrapped_key, sizeof a.wrapped_key) == 0 &&
           a.certificate_length == b.certificate_length &&
           a.certificate_length <= sizeof a.certificate &&
           std::memcmp(a.certificate, b.certificate, a.certificate_length) == 0 &&
           std::memcmp(a.chain_id, b.chain_id, sizeof a.chain_id) == 0;
}

// Thrown when the run cannot go on (the host is gone for longer than --give-up-s); caught in
// run_simulation, which still prints the summary.
struct Abort {
    std::string message;
};

// What happened to one die to provision.
struct DieState {
    int x = 0, y = 0;
    std::optional<wpid1::Uid> map_uid;
    std::optional<wpid1::Uid> uid;  // as delivered
    int requests = 0;               // touchdowns that asked for it
    int deliveries = 0;             // answers with an identity (OK or REISSUED)
    std::optional<int> status;      // the last site status the host answered
    std::string refusal;            // the host's text for a refusal
    int outcome = 0;                // 0 none yet, WP_ATE_PROGRAMMED, WP_ATE_FAILED
    std::string bin;
    bool checked_ok = false;  // the last delivered payload passed every check
    std::string check;        // why it did not
    bool result_sent = false;
    bool acked = false;  // the last result was acknowledged
    std::string ack;     // the refusal of the last result, if any
    bool retested = false;
    std::unique_ptr<wp_ate_site_identity> first;  // kept for failed dies: the retest must match
    std::optional<wpid1::Scalar> key;  // PROGRAMMED: d, as the die unwrapped it (final test)
};

struct Totals {
    size_t touchdowns = 0, retest_touchdowns = 0;
    size_t requested = 0, ok = 0, reissued = 0;
    std::map<std::string, size_t> refused;  // by status name
    size_t programmed = 0, failed_programming = 0, check_failures = 0;
    size_t results_sent = 0, results_acked = 0;
    std::map<std::string, size_t> results_refused;
    size_t resends = 0;  // requests sent again after a timeout / BUSY / restart
    std::vector<double> latency_ms;
    // Handler mode (final test).
    size_t parts = 0, verified = 0, swaps_caught = 0, unsorted_refused = 0, final_failed = 0;
    size_t unsorted_provisioned = 0;  // given an identity at final test (`tester` UID policy)
    std::vector<std::string> final_problems;  // each names the part and what went wrong
};

class Simulation {
public:
    Simulation(const Options& o, std::ostream& out, std::ostream& err)
        : o_(o), out_(out), err_(err) {}
    ~Simulation() { wp_ate_close(handle_); }
    Simulation(const Simulation&) = delete;
    Simulation& operator=(const Simulation&) = delete;

    int run();

private:
    bool prepare();
    void open_session();
    void touchdown(const Touchdown& td, bool retest);
    void report_results(uint32_t sequence, const std::vector<size_t>& dies,
                        const std::vector<uint16_t>& sites);
    // Handler mode: the wafer's PROGRAMMED dies, packaged, plus --unsorted strangers, through
    // an --handler-sites handler; --swapped of them sign with another part's key.
    void final_test();
    // A packaged part in the handler.
    struct Part {
        wpid1::Uid uid{};
        const wpid1::Scalar* key = nullptr;  // the key it signs with (another's when swapped)
        bool swapped = false, sorted = true;
        bool fails = false;   // --final-fail: signs, and is reported FAILED
        uint16_t site = 0;    // the handler site it is tested in
        std::string carrier;  // its strip ("" = carrier unknown: no --strip-map)
        uint16_t row = 0, column = 0;
    };
    // A good position of a --strip-map strip: where the handler puts the next part.
    struct Slot {
        std::string strip;
        int row = 0, column = 0;
    };
    bool read_strip_maps();  // --strip-map files into slots_
    // Puts the parts in the strips' slots (when there are strip maps) and the handler sites.
    bool place_parts(std::vector<Part>& parts);
    // The parts of final_test(); false (with the problem noted) when --swapped asks too much.
    bool handler_parts(std::vector<Part>& parts);
    // One handler touchdown of parts[first, first + n) and, for the parts challenged, their
    // signed results.
    void final_touchdown(const std::vector<Part>& parts, size_t first, size_t n);
    void final_results(const std::vector<Part>& parts, uint32_t sequence, bool& resent,
                       const std::vector<wp_ate_part_result>& res,
                       const std::vector<size_t>& index);
    // Calls `call` until it returns something other than a retryable status or --give-up-s
    // has passed since the first attempt (then throws Abort naming `what`).
    template <class Call>
    int with_retries(const std::string& what, bool& resent, Call&& call);
    double uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }
    void progress(bool force);
    void print_summary(const std::string& abort_message, int exit_status);
    bool write_json(const std::string& abort_message, int exit_status, double wall_s);

    const Options& o_;
    std::ostream& out_;
    std::ostream& err_;
    std::string lot_;
    uint16_t wafer_ = 0;
    std::string substrate_;  // sent with every touchdown ("" = a 1.0 TOUCHDOWN)
    CardLayout card_;
    std::vector<DieState> dies_;
    std::vector<Touchdown> plan_;
    std::optional<DieChecker> checker_;
    wp_ate* handle_ = nullptr;
    char client_public_[41] = {}, client_secret_[41] = {}, server_public_[41] = {};
    uint32_t next_sequence_ = 1;
    std::mt19937_64 rng_;
    uint64_t seed_ = 0;
    Totals t_;
    std::vector<Slot> slots_;        // the strips' good positions, in file order
    size_t strips_ = 0;              // strips read from --strip-map
    std::vector<Part> final_parts_;  // as the handler tested them (for --json)
    Clock::time_point start_{}, end_{}, last_progress_{};
};

bool Simulation::read_strip_maps() {
    for (const auto& file : o_.strip_maps) {
        auto strips = host::read_carrier_file(file);
        if (!strips.ok()) {
            err_ << "waferprov-tester: --strip-map: " << strips.error().message << "\n";
            return false;
        }
        for (const auto& strip : *strips) {
            ++strips_;
            for (const auto& p : strip.positions)
                if (p.good) slots_.push_back(Slot{strip.strip_id, p.row, p.column});
        }
    }
    return true;
}

bool Simulation::prepare() {
    auto map = host::read_map_file(o_.map);
    if (!map.ok()) {
        err_ << "waferprov-tester: cannot read the wafer map: " << map.error().message << "\n";
        return false;
    }
    auto selected = host::select_dies(*map, o_.bins);
    if (!selected.ok()) {
        err_ << "waferprov-tester: " << o_.map.string() << ": " << selected.error().message << "\n";
        return false;
    }
    lot_ = o_.lot.value_or(map->lot);
    const int wafer = o_.wafer.value_or(map->wafer);
    if (wafer < 0 || wafer > 65535) {
        err_ << "waferprov-tester: wafer number " << wafer << " of " << o_.map.string()
             << " does not fit the protocol's u16; give --wafer\n";
        return false;
    }
    wafer_ = static_cast<uint16_t>(wafer);
    substrate_ = o_.no_substrate ? "" : o_.substrate.value_or(map->substrate_id);
    card_ = card_layout(o_.sites);
    auto plan = plan_touchdowns(*map, *selected, card_);
    if (!plan.ok()) {
        err_ << "waferprov-tester: " << o_.map.string() << ": " << plan.error().message << "\n";
        return false;
    }
    plan_ = std::move(*plan);
    dies_.resize(selected->size());
    for (size_t i = 0; i < selected->size(); ++i) {
        dies_[i].x = (*selected)[i].x;
        dies_[i].y = (*selected)[i].y;
        dies_[i].map_uid = (*selected)[i].uid;
    }
    if (o_.uid_from_map)
        for (auto& td : plan_)
            for (auto& s : td.sites) s.uid = dies_[s.die].map_uid;
    else
        for (auto& td : plan_)
            for (auto& s : td.sites) s.uid.reset();

    auto kik = read_kik_file(o_.kik);
    if (!kik.ok()) {
        err_ << "waferprov-tester: --kik: " << kik.error().message << "\n";
        return false;
    }
    auto checker = DieChecker::create(*kik, o_.ca, o_.root, o_.clock_skew_s);
    if (!checker.ok()) {
        err_ << "waferprov-tester: --ca/--root: " << checker.error().message << "\n";
        return false;
    }
    checker_.emplace(std::move(*checker));
    if (!read_strip_maps()) return false;

    if (!o_.key.empty() &&
        wp_ate_read_key_file(o_.key.c_str(), client_public_, client_secret_) != WP_ATE_OK) {
        err_ << "waferprov-tester: --key: " << wp_ate_last_error(nullptr) << "\n";
        return false;
    }
    if (!o_.insecure &&
        wp_ate_read_key_file(o_.server_key.c_str(), server_public_, nullptr) != WP_ATE_OK) {
        err_ << "waferprov-tester: --server-key: " << wp_ate_last_error(nullptr) << "\n";
        return false;
    }
    seed_ = o_.seed
                ? *o_.seed
                : (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
    rng_.seed(seed_);
    if (!o_.quiet) {
        err_ << "waferprov-tester: " << lot_ << " wafer " << wafer_ << ": " << dies_.size()
             << " dies to provision (bins";
        for (const auto& b : o_.bins) err_ << " " << b;
        err_ << "), " << o_.sites << "-site card (" << card_.columns << " x " << card_.rows << "), "
             << plan_.size() << " touchdowns planned, seed " << seed_ << "\n";
    }
    return true;
}

template <class Call>
int Simulation::with_retries(const std::string& what, bool& resent, Call&& call) {
    const auto first = Clock::now();
    for (int attempt = 1;; ++attempt) {
        const int rc = call();
        if (!retryable(rc)) return rc;
        const double waited = std::chrono::duration<double>(Clock::now() - first).count();
        if (waited >= o_.give_up_s)
            throw Abort{what + ": " + describe(rc, wp_ate_last_error(handle_)) +
                        "; gave up after " + std::to_string(attempt) + " attempts in " +
                        std::to_string(waited) + " s"};
        if (!o_.quiet)
            err_ << "waferprov-tester: " << what << ": " << describe(rc, wp_ate_last_error(handle_))
                 << "; sending it again (" << std::fixed << std::setprecision(1) << waited
                 << " s of " << o_.give_up_s << ")\n";
        ++t_.resends;
        resent = true;
        // A timeout has waited already; BUSY / SHUTTING_DOWN answer at once, so pause.
        if (rc != WP_ATE_E_TIMEOUT) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

void Simulation::open_session() {
    wp_ate_config cfg{};
    cfg.struct_size = sizeof cfg;
    cfg.endpoint = o_.endpoint.c_str();
    cfg.server_public_key = o_.insecure ? nullptr : server_public_;
    cfg.client_public_key = client_public_[0] ? client_public_ : nullptr;
    cfg.client_secret_key = client_secret_[0] ? client_secret_ : nullptr;
    cfg.tester_id = o_.tester_id.c_str();
    cfg.job_id = o_.job_id.c_str();
    cfg.node_name = nullptr;
    cfg.timeout_ms = o_.timeout_ms;
    cfg.retries = 0;  // the simulator resends itself, up to --give-up-s
    bool resent = false;
    const int rc = with_retries("opening a session with " + o_.endpoint, resent, [&] {
        const int r = wp_ate_open(&cfg, &handle_);
        if (r != WP_ATE_OK) handle_ = nullptr;
        return r;
    });
    if (rc != WP_ATE_OK)
        throw Abort{"opening a session with " + o_.endpoint + " as tester '" + o_.tester_id +
                    "' for job '" + o_.job_id + "': " + describe(rc, wp_ate_last_error(nullptr))};
    const int max_sites = wp_ate_max_sites(handle_);
    if (!o_.quiet)
        err_ << "waferprov-tester: session " << wp_ate_session_id(handle_) << " with "
             << o_.endpoint << " (host accepts " << max_sites << " sites per touchdown)\n";
    if (max_sites > 0 && o_.sites > max_sites)
        throw Abort{"--sites " + std::to_string(o_.sites) + " is more than the " +
                    std::to_string(max_sites) + " sites per touchdown the host accepts"};
}

void Simulation::touchdown(const Touchdown& td, bool retest) {
    const uint32_t sequence = next_sequence_++;
    ++(retest ? t_.retest_touchdowns : t_.touchdowns);
    const size_t n = td.sites.size();
    std::vector<wp_ate_site_request> req(n);
    for (size_t i = 0; i < n; ++i) {
        const SiteDie& s = td.sites[i];
        req[i].site = s.site;
        req[i].x = s.x;
        req[i].y = s.y;
        req[i].has_uid = s.uid ? 1 : 0;
        if (s.uid) std::memcpy(req[i].uid, s.uid->data(), WP_ATE_UID_SIZE);
        ++dies_[s.die].requests;
    }
    t_.requested += n;
    auto ids = std::make_unique<wp_ate_site_identity[]>(n);
    const std::string what = std::string(retest ? "retest touchdown" : "touchdown") + " " +
                             std::to_string(sequence) + " at (" + std::to_string(td.sites[0].x) +
                             ", " + std::to_string(td.sites[0].y) + ")";
    bool resent = false;
    double latency = 0;
    const int rc = with_retries(what, resent, [&] {
        const auto t0 = Clock::now();
        const int r = substrate_.empty() ? wp_ate_touchdown(handle_, lot_.c_str(), wafer_, sequence,
                                                            req.data(), n, ids.get())
                                         : wp_ate_touchdown_wafer(handle_, lot_.c_str(), wafer_,
                                                                  substrate_.c_str(), sequence,
                                                                  req.data(), n, ids.get());
        latency = ms_between(t0, Clock::now());
        return r;
    });
    if (rc != WP_ATE_OK) {
        // The host (or the library) refused the whole request: no die of it got an identity.
        const std::string text = describe(rc, wp_ate_last_error(handle_));
        err_ << "waferprov-tester: " << what << " refused: " << text << "\n";
        for (const auto& s : td.sites) {
            dies_[s.die].status = rc;
            dies_[s.die].refusal = text;
            dies_[s.die].checked_ok = false;
        }
        t_.refused[status_name(rc)] += n;
        return;
    }
    t_.latency_ms.push_back(latency);
    // Programming starts with the answer; the die's checks below are part of it, so the
    // results go back --program-ms after the answer (or when the checks end, if later).
    const auto programmed_at = Clock::now() + std::chrono::milliseconds(o_.program_ms);

    std::vector<size_t> delivered;
    std::vector<uint16_t> delivered_sites;
    for (size_t i = 0; i < n; ++i) {
        const SiteDie& s = td.sites[i];
        DieState& d = dies_[s.die];
        const wp_ate_site_identity& id = ids[i];
        d.status = id.status;
        if (id.site != s.site) {
            // The library promises the request's order; a mismatch is the host's or its bug.
            d.check = "the answer's entry " + std::to_string(i) + " is for site " +
                      std::to_string(id.site) + ", the request's for site " +
                      std::to_string(s.site);
            d.checked_ok = false;
            ++t_.check_failures;
            err_ << "waferprov-tester: " << what << ": " << d.check << "\n";
            continue;
        }
        if (id.status != WP_ATE_OK && id.status != WP_ATE_S_REISSUED) {
            d.refusal = std::string(id.text);
            d.checked_ok = false;
            t_.refused[status_name(id.status)] += 1;
            err_ << "waferprov-tester: " << what << ": site " << s.site << " die (" << s.x << ", "
                 << s.y << ") refused: " << status_name(id.status) << " - " << id.text << "\n";
            continue;
        }
        ++(id.status == WP_ATE_OK ? t_.ok : t_.reissued);
        ++d.deliveries;
        d.uid.emplace();
        std::memcpy(d.uid->data(), id.uid, WP_ATE_UID_SIZE);

        std::string problem;
        if (retest) {
            if (id.status != WP_ATE_S_REISSUED)
                problem = "a retest was answered " + status_name(id.status) + ", not REISSUED";
            else if (d.first && !same_identity(*d.first, id))
                problem = "the retest's identity differs from the one delivered first";
        }
        std::string check = checker_->check(id, s.uid);
        if (!check.empty()) problem += (problem.empty() ? "" : "; ") + check;

        d.check = problem;
        d.checked_ok = problem.empty();
        if (!problem.empty()) {
            ++t_.check_failures;
            d.outcome = WP_ATE_FAILED;
            d.bin = "CHK";
            err_ << "waferprov-tester: " << what << ": site " << s.site << " die (" << s.x << ", "
                 << s.y << ") UID " << to_hex(*d.uid) << " FAILED its checks: " << problem << "\n";
        } else if (uniform() < o_.fail_rate) {
            d.outcome = WP_ATE_FAILED;
            d.bin = "PF";
            ++t_.failed_programming;
            if (!d.first) d.first = std::make_unique<wp_ate_site_identity>(id);
        } else {
            d.outcome = WP_ATE_PROGRAMMED;
            d.bin = "01";
            ++t_.programmed;
            if (o_.handler_sites > 0) d.key = checker_->scalar(id);
        }
        delivered.push_back(s.die);
        delivered_sites.push_back(s.site);
    }
    if (o_.program_ms > 0) std::this_thread::sleep_until(programmed_at);
    if (!delivered.empty()) report_results(sequence, delivered, delivered_sites);
}

void Simulation::report_results(uint32_t sequence, const std::vector<size_t>& dies,
                                const std::vector<uint16_t>& sites) {
    const size_t n = dies.size();
    std::vector<wp_ate_site_result> res(n);
    for (size_t i = 0; i < n; ++i) {
        const DieState& d = dies_[dies[i]];
        res[i].site = sites[i];
        std::memcpy(res[i].uid, d.uid->data(), WP_ATE_UID_SIZE);
        res[i].outcome = d.outcome;
        res[i].bin = d.bin.c_str();
    }
    for (size_t i = 0; i < n; ++i) {
        dies_[dies[i]].result_sent = true;
        dies_[dies[i]].acked = false;
        dies_[dies[i]].ack.clear();
    }
    t_.results_sent += n;
    std::vector<wp_ate_result_ack> acks(n);
    bool resent = false;
    const std::string what = "results of touchdown " + std::to_string(sequence);
    const int rc = with_retries(what, resent, [&] {
        return wp_ate_results(handle_, sequence, res.data(), n, acks.data());
    });
    if (rc != WP_ATE_OK) {
        const std::string text = describe(rc, wp_ate_last_error(handle_));
        err_ << "waferprov-tester: " << what << " refused: " << text << "\n";
        for (size_t i = 0; i < n; ++i) dies_[dies[i]].ack = text;
        t_.results_refused[status_name(rc)] += n;
        return;
    }
    for (size_t i = 0; i < n; ++i) {
        DieState& d = dies_[dies[i]];
        const wp_ate_result_ack& a = acks[i];
        const bool matches =
            a.site == sites[i] && std::memcmp(a.uid, res[i].uid, WP_ATE_UID_SIZE) == 0;
        if (matches && a.status == WP_ATE_OK) {
            d.acked = true;
            ++t_.results_acked;
        } else {
            d.ack = matches ? status_name(a.status) + " - " + a.text
                            : "the ack is for site " + std::to_string(a.site) + " UID " +
                                  to_hex(ByteSpan(a.uid, WP_ATE_UID_SIZE));
            t_.results_refused[matches ? status_name(a.status) : "MISMATCHED_ACK"] += 1;
            err_ << "waferprov-tester: " << what << ": result for site " << sites[i] << " die ("
                 << d.x << ", " << d.y << ") not acknowledged: " << d.ack << "\n";
        }
    }
}

void Simulation::progress(bool force) {
    if (o_.quiet) return;
    const auto now = Clock::now();
    if (!force && now - last_progress_ < std::chrono::seconds(2)) return;
    last_progress_ = now;
    err_ << "waferprov-tester: " << t_.touchdowns << "/" << plan_.size() << " touchdowns, "
         << (t_.ok + t_.reissued) << " dies delivered, " << t_.programmed << " programmed\n";
}

int Simulation::run() {
    if (!prepare()) return kExitFailure;
    start_ = Clock::now();
    last_progress_ = start_;
    std::string abort_message;
    try {
        open_session();
        for (size_t i = 0; i < plan_.size(); ++i) {
            if (i > 0 && o_.index_ms > 0)
                std::this_thread::sleep_for(std::chrono::milliseconds(o_.index_ms));
            touchdown(plan_[i], false);
            progress(false);
        }
        // The prober comes back for the dies whose programming failed, touchdown position by
        // touchdown position, with only those sites.
        std::vector<Touchdown> retests;
        for (const auto& td : plan_) {
            Touchdown r{td.column, td.row, {}};
            for (const auto& s : td.sites) {
                DieState& d = dies_[s.die];
                if (d.outcome == WP_ATE_FAILED && d.bin == "PF" && uniform() < o_.retest_rate) {
                    d.retested = true;
                    r.sites.push_back(s);
                }
            }
            if (!r.sites.empty()) retests.push_back(std::move(r));
        }
        for (const auto& td : retests) {
            if (o_.index_ms > 0)
                std::this_thread::sleep_for(std::chrono::milliseconds(o_.index_ms));
            touchdown(td, true);
        }
        if (o_.handler_sites > 0) final_test();
    } catch (const Abort& a) {
        abort_message = a.message;
        err_ << "waferprov-tester: stopped: " << abort_message << "\n";
    }
    end_ = Clock::now();
    if (handle_) {
        wp_ate_close(handle_);
        handle_ = nullptr;
    }
    progress(true);

    bool all_good = abort_message.empty();
    for (const auto& d : dies_) all_good = all_good && d.deliveries > 0 && d.checked_ok && d.acked;
    all_good = all_good && t_.final_problems.empty();
    const int status = all_good ? kExitOk : kExitFailure;
    print_summary(abort_message, status);
    if (!o_.json.empty() &&
        !write_json(abort_message, status, std::chrono::duration<double>(end_ - start_).count()))
        return kExitFailure;
    return status;
}

void Simulation::print_summary(const std::string& abort_message, int exit_status) {
    const double wall = std::chrono::duration<double>(end_ - start_).count();
    const size_t delivered = t_.ok + t_.reissued;
    size_t refused = 0;
    for (const auto& [k, v] : t_.refused) refused += v;
    size_t never = 0, failed_checks_dies = 0, unacked = 0;
    for (const auto& d : dies_) {
        never += d.deliveries == 0;
        failed_checks_dies += d.deliveries > 0 && !d.checked_ok;
        unacked += d.result_sent && !d.acked;
    }
    std::ostream& o = out_;
    o << std::fixed;
    o << "waferprov-tester summary: " << lot_ << " wafer " << wafer_ << ", " << o_.sites
      << "-site card (" << card_.columns << " x " << card_.rows << "), seed " << seed_ << "\n";
    o << "  dies to provision   " << dies_.size() << "\n";
    o << "  touchdowns          " << t_.touchdowns << " (+ " << t_.retest_touchdowns
      << " retest)\n";
    o << "  dies requested      " << t_.requested << "\n";
    o << "    OK                " << t_.ok << "\n";
    o << "    REISSUED          " << t_.reissued << "\n";
    o << "    refused           " << refused;
    for (const auto& [k, v] : t_.refused) o << "  " << k << " " << v;
    o << "\n";
    o << "  programmed          " << t_.programmed << "\n";
    o << "  failed              " << (t_.failed_programming + t_.check_failures) << " (programming "
      << t_.failed_programming << ", checks " << t_.check_failures << ")\n";
    o << "  check failures      " << t_.check_failures << "\n";
    if (checker_ && checker_->not_before_ahead())
        o << "  clock               " << checker_->not_before_ahead()
          << " certificates valid only from a moment later than this clock (accepted: within the "
          << o_.clock_skew_s << " s allowed skew)\n";
    o << "  results             " << t_.results_sent << " sent, " << t_.results_acked
      << " acknowledged";
    for (const auto& [k, v] : t_.results_refused) o << ", " << k << " " << v;
    o << "\n";
    if (o_.handler_sites > 0)
        o << "  final test          " << t_.parts << " parts in a " << o_.handler_sites
          << "-site handler: " << t_.verified << " verified, " << t_.swaps_caught << " of "
          << o_.swapped << " swapped parts caught, " << t_.unsorted_refused << " of " << o_.unsorted
          << " unsorted parts refused, " << t_.unsorted_provisioned << " provisioned, "
          << (o_.final_fail > 0 ? std::to_string(t_.final_failed) + " of " +
                                      std::to_string(o_.final_fail) + " failing parts failed, "
                                : std::string())
          << t_.final_problems.size() << " problems\n";
    if (o_.handler_sites > 0 && !o_.strip_maps.empty())
        o << "  carriers            " << strips_ << " strips (" << slots_.size()
          << " good positions) from " << o_.strip_maps.size() << " --strip-map files\n";
    o << "  resends             " << t_.resends << "\n";
    o << std::setprecision(1) << "  dies/s              "
      << (wall > 0 ? static_cast<double>(delivered) / wall : 0) << " (" << delivered
      << " delivered in " << std::setprecision(3) << wall << " s)\n";
    o << std::setprecision(3) << "  touchdown latency   p50 " << percentile(t_.latency_ms, 0.50)
      << " ms, p99 " << percentile(t_.latency_ms, 0.99) << " ms, max "
      << (t_.latency_ms.empty() ? 0 : *std::max_element(t_.latency_ms.begin(), t_.latency_ms.end()))
      << " ms (" << t_.latency_ms.size() << " calls)\n";
    o << "  result              "
      << (exit_status == kExitOk ? "PASS: every die provisioned, checked and acknowledged"
                                 : "FAIL");
    if (exit_status != kExitOk) {
        std::string why;
        auto add = [&](const std::string& s) { why += (why.empty() ? ": " : "; ") + s; };
        if (!abort_message.empty()) add("stopped early");
        if (never) add(std::to_string(never) + " dies got no identity");
        if (failed_checks_dies)
            add(std::to_string(failed_checks_dies) + " dies failed their checks");
        if (unacked) add(std::to_string(unacked) + " results not acknowledged");
        for (const auto& p : t_.final_problems) add("final test: " + p);
        o << why;
    }
    o << "\n";
    o.unsetf(std::ios::fixed);
}

bool Simulation::write_json(const std::string& abort_message, int exit_status, double wall_s) {
    using nlohmann::json;
    json refused = json::object(), results_refused = json::object();
    for (const auto& [k, v] : t_.refused) refused[k] = v;
    for (const auto& [k, v] : t_.results_refused) results_refused[k] = v;
    const size_t delivered = t_.ok + t_.reissued;
    json j = {
        {"lot", lot_},
        {"wafer", wafer_},
        {"sites", o_.sites},
        {"card", {{"columns", card_.columns}, {"rows", card_.rows}}},
        {"seed", seed_},
        {"dies_to_provision", dies_.size()},
        {"touchdowns", t_.touchdowns},
        {"retest_touchdowns", t_.retest_touchdowns},
        {"requested", t_.requested},
        {"ok", t_.ok},
        {"reissued", t_.reissued},
        {"refused", refused},
        {"programmed", t_.programmed},
        {"failed_programming", t_.failed_programming},
        {"check_failures", t_.check_failures},
        {"results_sent", t_.results_sent},
        {"results_acked", t_.results_acked},
        {"results_refused", results_refused},
        {"resends", t_.resends},
        {"not_before_ahead", checker_ ? checker_->not_before_ahead() : 0},
        {"wall_s", wall_s},
        {"dies_per_s", wall_s > 0 ? static_cast<double>(delivered) / wall_s : 0.0},
        {"latency_ms",
         {{"p50", percentile(t_.latency_ms, 0.50)},
          {"p99", percentile(t_.latency_ms, 0.99)},
          {"max", t_.latency_ms.empty()
                      ? 0.0
                      : *std::max_element(t_.latency_ms.begin(), t_.latency_ms.end())},
          {"calls", t_.latency_ms.size()}}},
        {"stopped", abort_message},
        {"exit_status", exit_status},
    };
    json dies = json::array();
    for (const auto& d : dies_) {
        json e = {{"x", d.x},
                  {"y", d.y},
                  {"uid", d.uid ? to_hex(*d.uid) : ""},
                  {"status", d.status ? status_name(*d.status) : ""},
                  {"deliveries", d.deliveries},
                  {"outcome", d.outcome == WP_ATE_PROGRAMMED ? "PROGRAMMED"
                              : d.outcome == WP_ATE_FAILED   ? "FAILED"
                                                             : ""},
                  {"bin", d.bin},
                  {"checked_ok", d.checked_ok},
                  {"acked", d.acked},
                  {"retested", d.retested}};
        if (!d.check.empty()) e["check"] = d.check;
        if (!d.refusal.empty()) e["refusal"] = d.refusal;
        if (!d.ack.empty()) e["ack"] = d.ack;
        dies.push_back(std::move(e));
    }
    j["dies"] = std::move(dies);
    if (o_.handler_sites > 0) {
        json parts = json::array();
        for (const auto& p : final_parts_)
            parts.push_back({{"uid", to_hex(p.uid)},
                             {"site", p.site},
                             {"carrier", p.carrier},
                             {"row", p.carrier.empty() ? -1 : p.row},
                             {"column", p.carrier.empty() ? -1 : p.column},
                             {"sorted", p.sorted},
                             {"swapped", p.swapped},
                             {"fails", p.fails}});
        j["final_test"] = {{"parts", final_parts_.size()},
                           {"verified", t_.verified},
                           {"swaps_caught", t_.swaps_caught},
                           {"unsorted_refused", t_.unsorted_refused},
                           {"unsorted_provisioned", t_.unsorted_provisioned},
                           {"failed", t_.final_failed},
                           {"problems", t_.final_problems},
                           {"handler_parts", std::move(parts)}};
    }
    std::ofstream f(o_.json, std::ios::trunc);
    f << j.dump(1) << "\n";
    f.flush();
    if (f) return true;
    err_ << "waferprov-tester: cannot write --json " << o_.json.string() << "\n";
    return false;
}

}  // namespace

int run_simulation(const Options& options, std::ostream& out, std::ostream& err) {
    try {
        Simulation sim(options, out, err);
        return sim.run();
    } catch (const std::exception& e) {
        err << "waferprov-tester: internal error: " << e.what() << "\n";
        return kExitFailure;
    }
}

bool Simulation::handler_parts(std::vector<Part>& parts) {
    // Every die PROGRAMMED on the wafer (with its key), then the strangers.
    for (const auto& d : dies_)
        if (d.outcome == WP_ATE_PROGRAMMED && d.acked && d.uid && d.key) {
            Part p;
            p.uid = *d.uid;
            p.key = &*d.key;
            parts.push_back(std::move(p));
        }
    if (static_cast<size_t>(o_.swapped) > parts.size() || (o_.swapped > 0 && parts.size() < 2)) {
        t_.final_problems.push_back("--swapped " + std::to_string(o_.swapped) + " but only " +
                                    std::to_string(parts.size()) + " parts from sort");
        return false;
    }
    // A swapped part holds the next part's key (a valid UID, another part's secret).
    std::vector<size_t> order(parts.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng_);
    std::vector<const wpid1::Scalar*> own(parts.size());
    for (size_t i = 0; i < parts.size(); ++i) own[i] = parts[i].key;
    for (int k = 0; k < o_.swapped; ++k) {
        Part& p = parts[order[static_cast<size_t>(k)]];
        p.swapped = true;
        p.key = own[order[(static_cast<size_t>(k) + 1) % order.size()]];
    }
    // Parts that fail final test: the next ones in the shuffled order, never a swapped one.
    if (static_cast<size_t>(o_.swapped) + static_cast<size_t>(o_.final_fail) > parts.size()) {
        t_.final_problems.push_back("--swapped " + std::to_string(o_.swapped) +
                                    " and --final-fail " + std::to_string(o_.final_fail) +
                                    " but only " + std::to_string(parts.size()) +
                                    " parts from sort");
        return false;
    }
    for (int k = 0; k < o_.final_fail; ++k)
        parts[order[static_cast<size_t>(o_.swapped + k)]].fails = true;
    for (int k = 0; k < o_.unsorted; ++k) {
        Part p;
        for (auto& b : p.uid) b = static_cast<uint8_t>(rng_());
        p.sorted = false;
        parts.push_back(p);
    }
    return true;
}

bool Simulation::place_parts(std::vector<Part>& parts) {
    const size_t per = static_cast<size_t>(o_.handler_sites);
    for (size_t i = 0; i < parts.size(); ++i) parts[i].site = static_cast<uint16_t>(i % per + 1);
    if (o_.strip_maps.empty()) return true;  // carrier unknown: has_carrier = 0
    if (parts.size() > slots_.size()) {
        t_.final_problems.push_back(std::to_string(parts.size()) + " parts but the " +
                                    std::to_string(strips_) + " strips of --strip-map hold only " +
                                    std::to_string(slots_.size()) + " good positions");
        return false;
    }
    for (size_t i = 0; i < parts.size(); ++i) {
        parts[i].carrier = slots_[i].strip;
        parts[i].row = static_cast<uint16_t>(slots_[i].row);
        parts[i].column = static_cast<uint16_t>(slots_[i].column);
    }
    return true;
}

void Simulation::final_test() {
    std::vector<Part> parts;
    if (!handler_parts(parts) || !place_parts(parts)) return;
    t_.parts = parts.size();
    const size_t per = static_cast<size_t>(o_.handler_sites);
    for (size_t first = 0; first < parts.size(); first += per)
        final_touchdown(parts, first, std::min(per, parts.size() - first));
    final_parts_ = std::move(parts);
}

void Simulation::final_touchdown(const std::vector<Part>& parts, size_t first, size_t n) {
    const uint32_t sequence = next_sequence_++;
    std::vector<wp_ate_part_request> req(n);
    for (size_t i = 0; i < n; ++i) {
        const Part& p = parts[first + i];
        req[i] = wp_ate_part_request{};
        req[i].site = p.site;
        std::memcpy(req[i].uid, p.uid.data(), WP_ATE_UID_SIZE);
        // No strip map: the carrier is unknown, and the protocol says so (has_carrier = 0)
        // rather than naming a strip nobody has.
        req[i].carrier_id = p.carrier.empty() ? nullptr : p.carrier.c_str();
        req[i].row = p.row;
        req[i].column = p.column;
    }
    auto answers = std::make_unique<wp_ate_part_answer[]>(n);
    const std::string what = "final touchdown " + std::to_string(sequence);
    bool resent = false;
    int rc = with_retries(what, resent, [&] {
        return wp_ate_final_touchdown(handle_, lot_.c_str(), o_.handler_id.c_str(), sequence,
                                      req.data(), n, answers.get());
    });
    if (rc != WP_ATE_OK) throw Abort{what + ": " + describe(rc, wp_ate_last_error(handle_))};
    std::vector<wp_ate_part_result> res;
    std::vector<size_t> index;
    for (size_t i = 0; i < n; ++i) {
        const Part& p = parts[first + i];
        const wp_ate_part_answer& a = answers[i];
        if (!p.sorted) {
            // A `derived` job refuses a part sort never saw; a `tester` job provisions it here:
            // the part checks its payload as a die at sort does and reports PROGRAMMED, with no
            // challenge to sign.
            if (a.status == WP_ATE_S_NOT_PROVISIONED) {
                ++t_.unsorted_refused;
                continue;
            }
            if (a.status != WP_ATE_OK) {
                t_.final_problems.push_back("unsorted part " + to_hex(p.uid) + " was answered " +
                                            status_name(a.status) + ": " + a.text);
                continue;
            }
            const std::string problem = checker_->check(identity_of(a), p.uid);
            if (!problem.empty()) {
                t_.final_problems.push_back("unsorted part " + to_hex(p.uid) +
                                            " failed its checks: " + problem);
                continue;
            }
            wp_ate_part_result r{};
            r.site = a.site;
            std::memcpy(r.uid, a.uid, WP_ATE_UID_SIZE);
            r.outcome = WP_ATE_PROGRAMMED;
            r.bin = "01";
            res.push_back(r);
            index.push_back(first + i);
            continue;
        }
        if (a.status != WP_ATE_S_VERIFY) {
            t_.final_problems.push_back("part " + to_hex(p.uid) + " was answered " +
                                        status_name(a.status) + ": " + a.text);
            continue;
        }
        // The part signs the challenge with the key it holds.
        auto sig = possession::sign(*p.key, ByteSpan(a.message, sizeof a.message));
        if (!sig.ok()) {
            t_.final_problems.push_back("part " + to_hex(p.uid) +
                                        " could not sign: " + sig.error().message);
            continue;
        }
        wp_ate_part_result r{};
        r.site = a.site;
        std::memcpy(r.uid, a.uid, WP_ATE_UID_SIZE);
        r.outcome = p.fails ? WP_ATE_FAILED : WP_ATE_PROGRAMMED;
        r.bin = p.fails ? "FT" : "01";
        r.has_signature = 1;
        std::memcpy(r.signature, sig->data(), sig->size());
        res.push_back(r);
        index.push_back(first + i);
    }
    if (!res.empty()) final_results(parts, sequence, resent, res, index);
}

void Simulation::final_results(const std::vector<Part>& parts, uint32_t sequence, bool& resent,
                               const std::vector<wp_ate_part_result>& res,
                               const std::vector<size_t>& index) {
    std::vector<wp_ate_result_ack> acks(res.size());
    const int rc = with_retries("final results " + std::to_string(sequence), resent, [&] {
        return wp_ate_final_results(handle_, sequence, res.data(), res.size(), acks.data());
    });
    if (rc != WP_ATE_OK)
        throw Abort{"final results " + std::to_string(sequence) + ": " +
                    describe(rc, wp_ate_last_error(handle_))};
    for (size_t k = 0; k < acks.size(); ++k) {
        const Part& p = parts[index[k]];
        const int st = acks[k].status;
        if (!p.sorted && st == WP_ATE_OK)
            ++t_.unsorted_provisioned;
        else if (p.swapped && st == WP_ATE_S_SIGNATURE_MISMATCH)
            ++t_.swaps_caught;
        else if (!p.swapped && st == WP_ATE_OK)
            ++(p.fails ? t_.final_failed : t_.verified);
        else
            t_.final_problems.push_back(std::string(p.swapped ? "swapped " : "") + "part " +
                                        to_hex(p.uid) + ": result answered " + status_name(st) +
                                        " " + acks[k].text);
    }
}

}  // namespace waferprov::tester
