#include "waferprov/sim/floor.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <sstream>
#include <systemc>

#include "probe_card.hpp"
#include "waferprov/host/wafer_synth.hpp"
#include "waferprov/host/wafermap.hpp"
#include "waferprov/sim/card_timing.hpp"
#include "waferprov/sim/isolated.hpp"

namespace waferprov::sim {

namespace {

using sc_core::SC_SEC;
using sc_core::sc_time;

double now_s() { return sc_core::sc_time_stamp().to_seconds(); }

// A FIFO server with `k` identical units, booked in simulation-time order.
class Server {
public:
    explicit Server(int k = 1) : free_(static_cast<std::size_t>(std::max(1, k)), 0.0) {}
    // A job arriving at `at` needing `dur` seconds on one unit: returns when it is done.
    double book(double at, double dur) {
        auto u = std::min_element(free_.begin(), free_.end());
        const double start = std::max(at, *u);
        *u = start + dur;
        busy_ += dur;
        return *u;
    }
    double busy() const { return busy_; }
    std::size_t units() const { return free_.size(); }

private:
    std::vector<double> free_;
    double busy_ = 0;
};

// A card: the calibrated timing core plus its PCIe link (one DMA each way per batch).
struct Card {
    CardTiming timing;
    double hz;
    double link_busy = 0;
    Card(const CardCalibration& cal, const FloorConfig& c)
        : timing(cal, c.engines, c.stream_bits), hz(c.clock_mhz * 1e6) {}
    // `n` UIDs sent at `at`; returns when the records are in host memory.
    double generate(double at, std::size_t n, const PcieLink& link) {
        const double h2c = link.transfer_seconds(16.0 * static_cast<double>(n));
        const double start = std::max(at, timing.idle_at() / hz - h2c);
        const auto out = timing.submit((start + h2c) * hz, n);
        const double c2h = link.transfer_seconds(128.0 * static_cast<double>(n));
        link_busy += h2c + c2h;
        return out.back() / hz + c2h;
    }
};

struct Host {
    Server signing;
    Server ledger;  // one SQLite writer
    Server keygen;  // the CPU generating keys when there is no card
    std::vector<std::unique_ptr<Card>> cards;
    Host(const FloorConfig& c, const CardCalibration* cal)
        : signing(c.signing_threads), ledger(1), keygen(c.signing_threads) {
        if (!c.generate_on_host)
            for (int i = 0; i < c.cards_per_host; ++i)
                cards.push_back(std::make_unique<Card>(*cal, c));
    }
};

struct Floor : sc_core::sc_module {
    const FloorConfig& c;
    const std::vector<std::size_t>& touchdown_dies;  // dies under the card per touchdown
    std::vector<std::unique_ptr<Host>> hosts;
    std::mt19937_64 rng;
    std::lognormal_distribution<double> spread;
    double prober_busy = 0, tester_busy = 0, makespan = 0, wafer_time_sum = 0;
    uint64_t dies = 0, wafers = 0, touchdowns = 0, retests = 0;

    SC_HAS_PROCESS(Floor);
    Floor(const sc_core::sc_module_name& nm, const FloorConfig& cfg,
          const std::vector<std::size_t>& tds, const CardCalibration* cal)
        : sc_module(nm), c(cfg), touchdown_dies(tds), rng(cfg.seed), spread(0.0, cfg.ledger_sigma) {
        for (int h = 0; h < c.hosts; ++h) hosts.push_back(std::make_unique<Host>(c, cal));
        for (int t = 0; t < c.testers; ++t) sc_core::sc_spawn(sc_bind(&Floor::tester, this, t));
    }

    double ledger_txn(std::size_t n) {
        return (c.ledger_fixed_ms + c.ledger_per_die_ms * static_cast<double>(n)) * 1e-3 *
               spread(rng);
    }

    // The host's answer to a touchdown of n dies arriving at `at`: keys (card or CPU), the
    // device certificates on the signing threads, then one ledger transaction.
    double serve(Host& h, double at, std::size_t n) {
        double keys = at;
        if (c.generate_on_host) {
            for (std::size_t i = 0; i < n; ++i)
                keys = std::max(keys, h.keygen.book(at, 1.0 / c.host_keygen_per_s));
        } else {
            Card* best = h.cards.front().get();
            for (auto& k : h.cards)
                if (k->timing.idle_at() < best->timing.idle_at()) best = k.get();
            keys = best->generate(at, n, c.pcie);
        }
        double signed_at = keys;
        for (std::size_t i = 0; i < n; ++i)
            signed_at = std::max(signed_at, h.signing.book(keys, 1.0 / c.sign_per_s));
        return h.ledger.book(signed_at, ledger_txn(n));
    }

    void wait_until(double t) {
        const double n = now_s();
        if (t > n) wait(sc_time(t - n, SC_SEC));
    }

    void tester(int t) {
        Host& h = *hosts[static_cast<std::size_t>(t % c.hosts)];
        const double half = c.transport_ms * 1e-3 / 2;
        std::binomial_distribution<int> fails_of;
        for (int w = 0; w < c.wafers_per_tester; ++w) {
            const double w0 = now_s();
            prober_busy += c.wafer_change_s;
            wait(sc_time(c.wafer_change_s, SC_SEC));
            for (std::size_t n : touchdown_dies) {
                prober_busy += c.index_time_s;
                wait(sc_time(c.index_time_s, SC_SEC));
                // TOUCHDOWN: the identities of the dies under the card
                wait_until(serve(h, now_s() + half, n) + half);
                tester_busy += c.program_time_s;
                wait(sc_time(c.program_time_s, SC_SEC));
                // failures retested once in place: the identity delivered again, programmed
                const int k = c.fail_rate > 0
                                  ? fails_of(rng, std::binomial_distribution<int>::param_type(
                                                      static_cast<int>(n), c.fail_rate))
                                  : 0;
                if (k > 0) {
                    retests += static_cast<uint64_t>(k);
                    wait_until(
                        h.ledger.book(now_s() + half, ledger_txn(static_cast<std::size_t>(k))) +
                        half);
                    tester_busy += c.program_time_s;
                    wait(sc_time(c.program_time_s, SC_SEC));
                }
                // RESULTS: one ledger transaction, acknowledged before the prober steps
                wait_until(h.ledger.book(now_s() + half, ledger_txn(n)) + half);
                dies += n;
                ++touchdowns;
            }
            ++wafers;
            wafer_time_sum += now_s() - w0;
        }
        makespan = std::max(makespan, now_s());
    }
};

Result<std::vector<std::size_t>> plan_wafer(const FloorConfig& c) {
    host::WaferMap map;
    if (!c.map.empty()) {
        auto m = host::read_map_file(c.map);
        if (!m.ok()) return m.error().with_context("wafer.map " + c.map.string());
        map = std::move(*m);
    } else {
        host::SynthOptions o;
        o.diameter_mm = c.diameter_mm;
        o.die_width_mm = c.die_width_mm;
        o.die_height_mm = c.die_height_mm;
        o.seed = c.seed;
        auto m = host::synthesize_wafer(o);
        if (!m.ok()) return m.error().with_context("wafer.diameter_mm/die_mm");
        map = std::move(*m);
    }
    auto dies = host::select_dies(map, c.bins);
    if (!dies.ok()) return dies.error().with_context("wafer.bins");
    auto plan = tester::plan_touchdowns(map, *dies, tester::card_layout(c.sites));
    if (!plan.ok()) return plan.error().with_context("probe card stepping");
    std::vector<std::size_t> out;
    for (const auto& td : *plan) out.push_back(td.sites.size());
    return out;
}

Result<FloorResult> simulate(const FloorConfig& c, const std::vector<std::size_t>& tds,
                             const CardCalibration* cal) {
    Floor floor("floor", c, tds, cal);
    sc_core::sc_start();
    FloorResult r;
    r.makespan_s = floor.makespan;
    r.dies = floor.dies;
    r.wafers = floor.wafers;
    r.touchdowns = floor.touchdowns;
    r.retests = floor.retests;
    r.wafer_time_s = floor.wafers ? floor.wafer_time_sum / static_cast<double>(floor.wafers) : 0;
    const double T = std::max(r.makespan_s, 1e-9);
    r.dies_per_hour = static_cast<double>(r.dies) / T * 3600;
    r.wafers_per_hour = static_cast<double>(r.wafers) / T * 3600;
    double sign = 0, ledger = 0, keygen = 0, engines = 0, link = 0;
    std::size_t ncards = 0;
    for (auto& h : floor.hosts) {
        sign += h->signing.busy() / static_cast<double>(h->signing.units());
        ledger += h->ledger.busy();
        keygen += h->keygen.busy() / static_cast<double>(h->keygen.units());
        for (auto& k : h->cards) {
            engines += k->timing.engine_busy_cycles() / k->hz / k->timing.engines();
            link += k->link_busy;
            ++ncards;
        }
    }
    const double nh = static_cast<double>(c.hosts);
    r.utilization.push_back({"probers (index, wafer change)", floor.prober_busy / (T * c.testers)});
    r.utilization.push_back({"testers (programming)", floor.tester_busy / (T * c.testers)});
    r.utilization.push_back({"host signing", sign / (T * nh)});
    r.utilization.push_back({"host ledger", ledger / (T * nh)});
    if (c.generate_on_host) {
        r.utilization.push_back({"host key generation", keygen / (T * nh)});
    } else if (ncards > 0) {
        r.utilization.push_back({"card engines", engines / (T * static_cast<double>(ncards))});
        r.utilization.push_back({"card PCIe link", link / (T * static_cast<double>(ncards))});
    }
    // The bottleneck: the busiest shared resource once it is near saturation; otherwise the
    // testers' own cycle (prober + programming) sets the pace.
    const Utilization* top = nullptr;
    for (std::size_t i = 2; i < r.utilization.size(); ++i)
        if (top == nullptr || r.utilization[i].busy > top->busy) top = &r.utilization[i];
    if (top != nullptr && top->busy >= 0.7)
        r.bottleneck = top->resource;
    else
        r.bottleneck = "testers (prober index and programming; hosts and cards have headroom)";
    return r;
}

}  // namespace

std::string FloorResult::serialize() const {
    std::ostringstream o;
    o.precision(17);
    o << makespan_s << '\n'
      << dies << '\n'
      << wafers << '\n'
      << touchdowns << '\n'
      << retests << '\n'
      << wafer_time_s << '\n'
      << dies_per_hour << '\n'
      << wafers_per_hour << '\n'
      << bottleneck << '\n'
      << utilization.size() << '\n';
    for (const auto& u : utilization) o << u.busy << ' ' << u.resource << '\n';
    return o.str();
}

Result<FloorResult> FloorResult::parse(const std::string& text) {
    std::istringstream in(text);
    FloorResult r;
    std::size_t n = 0;
    in >> r.makespan_s >> r.dies >> r.wafers >> r.touchdowns >> r.retests >> r.wafer_time_s >>
        r.dies_per_hour >> r.wafers_per_hour;
    in.ignore(1);
    std::getline(in, r.bottleneck);
    in >> n;
    for (std::size_t i = 0; i < n && in; ++i) {
        Utilization u;
        in >> u.busy;
        in.ignore(1);
        std::getline(in, u.resource);
        r.utilization.push_back(u);
    }
    if (!in) return make_error(ErrorCode::kInternal, "the floor model's result is malformed");
    return r;
}

Result<FloorResult> run_floor(const FloorConfig& c) {
    WP_RETURN_IF_ERROR(validate_floor(c));
    // Everything that can fail on the user's input is checked here, in the parent, so the
    // errors are the reader's own.
    WP_ASSIGN_OR_RETURN(auto tds, plan_wafer(c));
    if (tds.empty()) return make_error(ErrorCode::kInvalidArgument, "wafer: no dies to provision");
    std::optional<CardCalibration> cal;
    if (!c.generate_on_host) {
        const auto path = c.calibration.empty() ? default_card_calibration_path() : c.calibration;
        auto k = load_card_calibration(path);
        if (!k.ok()) return k.error().with_context("cards.calibration");
        cal = *k;
    }
    auto text = run_isolated([&]() -> Result<std::string> {
        WP_ASSIGN_OR_RETURN(auto r, simulate(c, tds, cal ? &*cal : nullptr));
        return r.serialize();
    });
    if (!text.ok()) return text.error();
    return FloorResult::parse(*text);
}

}  // namespace waferprov::sim
