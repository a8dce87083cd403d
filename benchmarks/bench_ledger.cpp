// What the ledger's anchor (docs/ledger.md "The anchor") costs per commit: the same commits with
// the head appended and fsynced to `<ledger>.anchor` (AnchorMode::kFile, the default) and
// without it (AnchorMode::kNone), in the same run, on a real file system (the temporary
// directory; on tmpfs fsync is free and the figures mean nothing).
//
// BM_Deliver/<anchor>/<sites>: one transaction delivering `sites` dies (a touchdown on the
// tester link: `serve` commits one per touchdown, and one per result batch).
// BM_Record/<anchor>/<dies>: one transaction recording `dies` new identities (`run` commits one
// per batch of 512 by default).
#include <benchmark/benchmark.h>

#include <memory>

#include "test_support.hpp"

namespace {

using namespace waferprov::host;           // NOLINT(google-build-using-namespace)
using namespace waferprov::host::testing;  // NOLINT(google-build-using-namespace)

LedgerConfig config(bool anchored) {
    LedgerConfig c = test_config(100000000);
    c.anchor = anchored ? AnchorMode::kFile : AnchorMode::kNone;
    return c;
}

void BM_Deliver(benchmark::State& state) {
    const bool anchored = state.range(0) != 0;
    const auto sites = static_cast<uint64_t>(state.range(1));
    TempDir dir("bench-ledger");
    auto l = Ledger::open(dir / "l.db", config(anchored));
    if (!l.ok()) {
        state.SkipWithError(l.error().describe().c_str());
        return;
    }
    std::vector<NewIdentity> batch;
    for (uint64_t i = 0; i < sites; ++i) batch.push_back(fake_identity(i));
    if (!(*l)->record_batch(batch).ok()) {
        state.SkipWithError("record_batch failed");
        return;
    }
    std::vector<waferprov::wpid1::Uid> uids;
    for (uint64_t i = 0; i < sites; ++i) uids.push_back(uid_of(i));
    for (auto _ : state) {
        // A retest delivery (DELIVERED -> DELIVERED) is a full commit every time.
        auto r = (*l)->mark_delivered(uids, "T1");
        if (!r.ok()) {
            state.SkipWithError(r.error().describe().c_str());
            break;
        }
    }
    state.SetItemsProcessed(state.iterations() * state.range(1));
}

void BM_Record(benchmark::State& state) {
    const bool anchored = state.range(0) != 0;
    const auto dies = static_cast<uint64_t>(state.range(1));
    TempDir dir("bench-ledger");
    auto l = Ledger::open(dir / "l.db", config(anchored));
    if (!l.ok()) {
        state.SkipWithError(l.error().describe().c_str());
        return;
    }
    uint64_t next = 0;
    std::vector<NewIdentity> batch;
    for (auto _ : state) {
        state.PauseTiming();
        batch.clear();
        for (uint64_t i = 0; i < dies; ++i) batch.push_back(fake_identity(next++));
        state.ResumeTiming();
        auto r = (*l)->record_batch(batch);
        if (!r.ok()) {
            state.SkipWithError(r.error().describe().c_str());
            break;
        }
    }
    state.SetItemsProcessed(state.iterations() * state.range(1));
}

}  // namespace

BENCHMARK(BM_Deliver)
    ->ArgNames({"anchor", "sites"})
    ->ArgsProduct({{0, 1}, {1, 16}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Record)
    ->ArgNames({"anchor", "dies"})
    ->ArgsProduct({{0, 1}, {512}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
