// Host CPU per die spent in the driver, per backend, at batch 64 and 512 (issue 15), beyond the
// simulation itself.
//
// The driver's thread CPU time (CLOCK_THREAD_CPUTIME_ID: user + system, so the syscalls and the
// kernel's FUSE round trips made on the driver's behalf count) is measured around
// submit + collect:
//   - xdma: the card driver over XdmaTransport against waferprov-cardsim. The emulated card runs
//     in another process, so its simulation is not in the figure; while the driver waits in
//     poll(2) it uses no CPU. What remains is the driver: request packing, the DMA-buffer copies,
//     the reads, the record parse and checks (sequence, UID, the curve check with OpenSSL).
//   - verilator: the card is clocked on the driver's own thread, so the figure is dominated by
//     the simulation; it is reported for scale, not as driver cost.
//   - software: the key generation itself (the engine is the "card").
// Baseline in the same run: the curve check of one point (p256_check_point), the one piece of
// per-die work the driver must do whatever the transport.
#include <benchmark/benchmark.h>
#include <time.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cardsim_fixture.hpp"
#include "waferprov/backends.hpp"
#include "waferprov/p256_check.hpp"
#include "waferprov/reference.hpp"
#include "waferprov/software/device_key.hpp"
#include "waferprov/test_vectors.hpp"

using namespace waferprov;
namespace ref = waferprov::reference;

namespace {

double thread_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// One emulated card for the whole run (mounting costs a second or two), stopped and unmounted
// when the program ends.
cardsim_test::CardSim* cardsim() {
    static std::unique_ptr<cardsim_test::CardSim> sim = []() {
        std::unique_ptr<cardsim_test::CardSim> s;
        if (!cardsim_test::fuse_missing()) s = std::make_unique<cardsim_test::CardSim>();
        if (s && !s->ok()) s.reset();
        return s;
    }();
    return sim.get();
}

// A backend with a KIK (wrapped under the development key: the one the emulated card and, with
// no device_key parameter, the other backends use) and an instantiated DRBG.
Result<std::unique_ptr<Accelerator>> open_backend(const BackendOptions& o) {
    WP_ASSIGN_OR_RETURN(auto b, make_backend(o));
    const Bytes kik = ref::random_bytes(32);
    WP_ASSIGN_OR_RETURN(Bytes wrapped, wrap_kik_for(o, kik));
    WP_RETURN_IF_ERROR(b->load_kik(wrapped));
    WP_RETURN_IF_ERROR(b->instantiate(ref::random_bytes(48), {}, wpid1::kMaxReseedInterval));
    return b;
}

void run_driver(benchmark::State& state, const BackendOptions& o) {
    auto b = open_backend(o);
    if (!b.ok()) {
        state.SkipWithError(b.error().describe().c_str());
        return;
    }
    std::vector<wpid1::Uid> uids(static_cast<size_t>(state.range(0)));
    uint64_t next = 0;
    double cpu = 0;
    for (auto _ : state) {
        for (auto& u : uids) {
            ++next;
            for (int i = 0; i < 8; ++i) u[15 - i] = static_cast<uint8_t>(next >> (8 * i));
        }
        const double t0 = thread_cpu_seconds();
        auto t = (*b)->submit(uids);
        if (!t.ok()) {
            state.SkipWithError(t.error().describe().c_str());
            break;
        }
        auto r = (*b)->collect(*t);
        cpu += thread_cpu_seconds() - t0;
        if (!r.ok()) {
            state.SkipWithError(r.error().describe().c_str());
            break;
        }
        benchmark::DoNotOptimize(r);
    }
    const double dies = static_cast<double>(state.iterations()) * static_cast<double>(uids.size());
    state.SetItemsProcessed(static_cast<int64_t>(dies));
    if (dies > 0) state.counters["host_cpu_us_per_die"] = cpu / dies * 1e6;
}

void BM_Driver_Xdma(benchmark::State& state) {
    auto* sim = cardsim();
    if (sim == nullptr) {
        state.SkipWithError("no emulated card: /dev/fuse is absent or waferprov-cardsim failed");
        return;
    }
    run_driver(state,
               BackendOptions{"xdma", {{"device", sim->prefix()}, {"per_die_us", "200000"}}});
}
BENCHMARK(BM_Driver_Xdma)->Arg(64)->Arg(512)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Driver_Verilator(benchmark::State& state) {
    run_driver(state, BackendOptions{"verilator", {}});
}
BENCHMARK(BM_Driver_Verilator)->Arg(64)->Arg(512)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Driver_Software(benchmark::State& state) {
    run_driver(state, BackendOptions{"software", {}});
}
BENCHMARK(BM_Driver_Software)->Arg(64)->Arg(512)->UseRealTime()->Unit(benchmark::kMillisecond);

// The baseline: one curve check (OpenSSL), the per-die floor of any driver that checks keys.
void BM_Baseline_CurveCheck(benchmark::State& state) {
    auto e = open_backend(BackendOptions{"software", {}});
    if (!e.ok()) {
        state.SkipWithError(e.error().describe().c_str());
        return;
    }
    std::vector<wpid1::Uid> uids(1);
    auto t = (*e)->submit(uids);
    auto r = t.ok() ? (*e)->collect(*t) : Result<std::vector<wpid1::IdentityRecord>>(t.error());
    if (!r.ok()) {
        state.SkipWithError(r.error().describe().c_str());
        return;
    }
    const auto& rec = (*r)[0];
    for (auto _ : state) benchmark::DoNotOptimize(p256_check_point(rec.x, rec.y));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Baseline_CurveCheck);

}  // namespace

BENCHMARK_MAIN();
