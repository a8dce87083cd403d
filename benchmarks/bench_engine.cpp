// Cost per identity of the software engine (KDF + DRBG + d*G + key wrap), beside OpenSSL's own
// P-256 key generation measured in the same run as the baseline.
#include <benchmark/benchmark.h>

#include <openssl/evp.h>

#include "waferprov/ossl.hpp"
#include "waferprov/p256_check.hpp"
#include "waferprov/reference.hpp"
#include "waferprov/software/aes.hpp"
#include "waferprov/software/p256.hpp"
#include "waferprov/software/software_engine.hpp"
#include "waferprov/test_vectors.hpp"

using namespace waferprov;
namespace ref = waferprov::reference;

namespace {

software::SoftwareEngine& engine() {
    static software::SoftwareEngine* e = [] {
        software::DeviceKey dk;
        auto* eng = new software::SoftwareEngine(dk);
        Bytes kik = ref::random_bytes(32);
        if (!eng->load_kik(ref::kw_wrap(dk.span(), kik)).ok() ||
            !eng->instantiate(ref::random_bytes(48), {}, wpid1::kMaxReseedInterval).ok())
            std::abort();
        return eng;
    }();
    return *e;
}

// Identities per second through submit+collect, batch size from the argument; with
// ->Threads(N) several threads submit and collect concurrently, as the host pipeline does.
void BM_SoftwareEngineIdentity(benchmark::State& state) {
    auto& e = engine();
    std::vector<wpid1::Uid> uids(static_cast<size_t>(state.range(0)));
    for (size_t i = 0; i < uids.size(); ++i) uids[i][15] = static_cast<uint8_t>(i);
    for (auto _ : state) {
        auto t = e.submit(uids);
        if (!t.ok()) {
            state.SkipWithError(t.error().message.c_str());
            break;
        }
        auto r = e.collect(*t);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_SoftwareEngineIdentity)->Arg(1)->Arg(64)->UseRealTime();
BENCHMARK(BM_SoftwareEngineIdentity)->Arg(64)->Threads(2)->UseRealTime();

// The parts of one identity, to show where the time goes.
void BM_Part_BaseMul(benchmark::State& state) {
    Bytes d = ref::random_bytes(32);
    d[0] &= 0x7f;
    for (auto _ : state) benchmark::DoNotOptimize(software::p256_base_mul(d));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Part_BaseMul);

void BM_Part_KdfAndWrap(benchmark::State& state) {
    Bytes kik = ref::random_bytes(32), d = ref::random_bytes(32);
    wpid1::Uid uid{};
    auto cmac = software::Cmac::create(kik);
    for (auto _ : state) {
        auto kek = software::derive_kek(*cmac, uid);
        benchmark::DoNotOptimize(software::kw_wrap(kek->span(), d));
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Part_KdfAndWrap);

// The host's check that a backend's public key is on the curve (once per die, before signing).
void BM_Part_CurveCheck(benchmark::State& state) {
    Bytes d(32, 0);
    d[31] = 5;
    auto q = software::p256_base_mul(d);
    for (auto _ : state) benchmark::DoNotOptimize(p256_check_point(q->x, q->y));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Part_CurveCheck);

// Baseline: OpenSSL's own P-256 key generation (EVP_PKEY_keygen: RNG + d*G), the figure
// `openssl speed` users know; the README gives the ratio of the engine to it.
void BM_Baseline_OpenSslP256Keygen(benchmark::State& state) {
    ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY_keygen_init(ctx.get());
    EVP_PKEY_CTX_set_group_name(ctx.get(), "P-256");
    for (auto _ : state) {
        EVP_PKEY* k = nullptr;
        EVP_PKEY_keygen(ctx.get(), &k);
        ossl::Pkey hold(k);
        benchmark::DoNotOptimize(hold);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Baseline_OpenSslP256Keygen);

}  // namespace

BENCHMARK_MAIN();
