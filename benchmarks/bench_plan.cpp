// What `waferprov plan` costs (issue 16: "fast enough to use interactively", a 25-wafer lot on
// a 64-tester floor in under 10 s): the floor model on the worked floor's wafer (300 mm, 2 x 2
// mm dies, 64 sites, one card of 8 engines per host), run as the command runs it
// (waferprov::sim::run_floor, one child process per run).
//
// BM_Plan/<testers>/<wafers per tester>: the whole lot, wall time (the model runs in a child).
// The baseline is BM_Plan/1/1, one wafer on one tester, in the same run: the lot's time over
// the baseline's against the lot's size (1,600 wafers) says how the model scales.
// The smoke run (CTest) uses a 100 mm wafer (--diameter=100).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "waferprov/sim/floor.hpp"

namespace {

double g_diameter_mm = 300;

waferprov::sim::FloorConfig floor_of(int testers, int wafers) {
    waferprov::sim::FloorConfig c;
    c.testers = testers;
    c.wafers_per_tester = wafers;
    c.sites = 64;
    c.diameter_mm = g_diameter_mm;
    c.die_width_mm = c.die_height_mm = 2;
    c.index_time_s = 0.8;
    c.program_time_s = 0.05;
    c.wafer_change_s = 30;
    c.fail_rate = 0.01;
    // One host per 8 testers, one 8-engine card each: a floor that is not starved, so every
    // touchdown goes through the hosts' and cards' servers as it would in a real plan.
    c.hosts = std::max(1, testers / 8);
    c.cards_per_host = 1;
    c.engines = 8;
    return c;
}

void BM_Plan(benchmark::State& state) {
    const auto c = floor_of(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
    uint64_t dies = 0, wafers = 0;
    for (auto _ : state) {
        auto r = waferprov::sim::run_floor(c);
        if (!r.ok()) {
            state.SkipWithError(r.error().describe().c_str());
            return;
        }
        dies += r->dies;
        wafers += r->wafers;
        state.counters["dies_per_hour"] = r->dies_per_hour;
    }
    state.SetItemsProcessed(static_cast<int64_t>(dies));  // dies simulated per second
    state.counters["wafers"] = static_cast<double>(wafers);
}
BENCHMARK(BM_Plan)->Args({1, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Plan)
    ->Args({64, 25})
    ->Iterations(1)
    ->Repetitions(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

// --diameter=MM (before Google Benchmark's own flags): a smaller wafer for the smoke run.
int main(int argc, char** argv) {
    int kept = 1;
    for (int i = 1; i < argc; ++i) {
        if (std::strncmp(argv[i], "--diameter=", 11) == 0)
            g_diameter_mm = std::atof(argv[i] + 11);
        else
            argv[kept++] = argv[i];
    }
    argc = kept;
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
