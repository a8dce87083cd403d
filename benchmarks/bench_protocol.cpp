// The tester link codec (host/protocol): encode and decode of TOUCHDOWN and TOUCHDOWN_RESULT at
// 1, 16 and 64 sites (600-byte certificates, as the device profile produces). items/s = sites/s;
// the link's goal is p99 <= 2 ms per 64-site touchdown and >= 20k dies/s, which the codec must
// leave almost all of to the ledger and the signer.
#include <benchmark/benchmark.h>

#include "samples.hpp"
#include "waferprov/host/protocol.hpp"

namespace {

using namespace waferprov::host::protocol;  // NOLINT(google-build-using-namespace)

waferprov::Bytes bytes_of(const Frame& f) {
    auto b = encode(f);
    return b.ok() ? *b : waferprov::Bytes{};
}

void run_encode(benchmark::State& state, const Frame& f) {
    waferprov::Bytes out;
    for (auto _ : state) {
        if (!encode_to(f, out).ok()) {
            state.SkipWithError("encode failed");
            break;
        }
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
    state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}

void run_decode(benchmark::State& state, const waferprov::Bytes& b) {
    for (auto _ : state) {
        auto d = decode(b);
        if (!d.ok()) {
            state.SkipWithError(d.error().text.c_str());
            break;
        }
        benchmark::DoNotOptimize(d.value().request_id);
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
    state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(b.size()));
}

void BM_EncodeTouchdown(benchmark::State& state) {
    run_encode(state, samples::touchdown(static_cast<size_t>(state.range(0))));
}
void BM_DecodeTouchdown(benchmark::State& state) {
    run_decode(state, bytes_of(samples::touchdown(static_cast<size_t>(state.range(0)))));
}
void BM_EncodeTouchdownResult(benchmark::State& state) {
    run_encode(state, samples::touchdown_result(static_cast<size_t>(state.range(0)), 600));
}
void BM_DecodeTouchdownResult(benchmark::State& state) {
    run_decode(state,
               bytes_of(samples::touchdown_result(static_cast<size_t>(state.range(0)), 600)));
}

BENCHMARK(BM_EncodeTouchdown)->Arg(1)->Arg(16)->Arg(64);
BENCHMARK(BM_DecodeTouchdown)->Arg(1)->Arg(16)->Arg(64);
BENCHMARK(BM_EncodeTouchdownResult)->Arg(1)->Arg(16)->Arg(64);
BENCHMARK(BM_DecodeTouchdownResult)->Arg(1)->Arg(16)->Arg(64);

}  // namespace

BENCHMARK_MAIN();
