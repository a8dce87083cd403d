// End-to-end `run` throughput on a synthesized wafer (default 300 mm, 2 mm x 2 mm dies: ~16k
// dies to provision), software backend, PEM CA, SQLite ledger with synchronous=FULL:
//   BM_Run/threads:1        the serial baseline (--threads 1)
//   BM_Run/threads:N        all hardware threads
//   BM_CryptoCeiling        per-die key generation + wrap + signature at full parallelism, no
//                           ledger: the most the pipeline could reach on this machine
// All three in the same run; benchmarks/README.md gives the ratios.
// Extra flag: --diameter=MM (default 300) to run on a smaller wafer.
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <thread>

#include <benchmark/benchmark.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>

#include "waferprov/host/ca_init.hpp"
#include "waferprov/host/ca_signers.hpp"
#include "waferprov/host/device_cert.hpp"
#include "waferprov/host/pipeline.hpp"
#include "waferprov/host/wafer_synth.hpp"
#include "waferprov/host/wafermap.hpp"
#include "waferprov/reference.hpp"
#include "waferprov/software/p256.hpp"
#include "waferprov/software/software_engine.hpp"
#include "waferprov/test_vectors.hpp"

using namespace waferprov;
using namespace waferprov::host;
namespace ref = waferprov::reference;
namespace fs = std::filesystem;

namespace {

double g_diameter = 300;

struct Setup {
    fs::path dir;
    std::unique_ptr<Signer> signer;
    std::vector<DieRequest> dies;
    Bytes kik = ref::random_bytes(32);
    software::DeviceKey dk;

    Setup() {
        dir = fs::temp_directory_path() / ("waferprov_bench_" + std::to_string(::getpid()));
        fs::remove_all(dir);
        auto files = init_pem_chain(dir / "ca", ChainOptions{});
        if (!files.ok()) std::abort();
        signer = std::move(make_signer(files->signer).value());
        SynthOptions so;
        so.diameter_mm = g_diameter;
        auto map = synthesize_wafer(so);
        auto selected = select_dies(*map, {"01"});
        Bytes salt(16, 3);
        for (const auto& d : *selected) {
            DieRequest r;
            r.loc = DieLocation{map->lot, map->wafer, d.x, d.y, map->substrate_id};
            r.uid = derive_uid(salt, r.loc);
            dies.push_back(r);
        }
        Bytes k = ref::random_bytes(32);
        std::copy(k.begin(), k.end(), dk.bytes.begin());
    }
    ~Setup() { fs::remove_all(dir); }

    std::unique_ptr<software::SoftwareEngine> engine() {
        auto e = std::make_unique<software::SoftwareEngine>(dk);
        if (!e->load_kik(ref::kw_wrap(dk.span(), kik)).ok() ||
            !e->instantiate(ref::random_bytes(48), {}, wpid1::kMaxReseedInterval).ok())
            std::abort();
        return e;
    }
};

Setup& setup() {
    static Setup s;
    return s;
}

int all_threads() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

void BM_Run(benchmark::State& state) {
    auto& s = setup();
    const int threads = state.range(0) == 0 ? all_threads() : static_cast<int>(state.range(0));
    int run = 0;
    for (auto _ : state) {
        state.PauseTiming();
        auto engine = s.engine();
        const fs::path ledger_path =
            s.dir / ("ledger_" + std::to_string(threads) + "_" + std::to_string(run++) + ".sqlite");
        auto ledger = Ledger::open(ledger_path, LedgerConfig{"BENCH", "C", "P", 10'000'000});
        if (!ledger.ok()) {
            state.SkipWithError(ledger.error().message.c_str());
            break;
        }
        PipelineOptions po;
        po.threads = threads;
        po.batch_size = static_cast<size_t>(state.range(1));
        po.product = "WPDEMO";
        std::vector<DieReport> reports;
        state.ResumeTiming();
        auto stats = provision(s.dies, *engine, *s.signer, **ledger, po, reports);
        state.PauseTiming();
        if (!stats.ok() || stats->provisioned != s.dies.size()) {
            state.SkipWithError(stats.ok() ? "not every die provisioned"
                                           : stats.error().message.c_str());
            break;
        }
        ledger->reset();
        fs::remove(ledger_path);
        fs::remove(ledger_path.string() + "-wal");
        fs::remove(ledger_path.string() + "-shm");
        // Its anchor too: a new ledger beside an old ledger's anchor is refused (docs/ledger.md).
        fs::remove(ledger_path.string() + ".anchor");
        state.ResumeTiming();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(s.dies.size()));
    state.counters["threads"] = threads;
    state.counters["dies"] = static_cast<double>(s.dies.size());
}
// Args: threads (0 = all), batch size (512 is the default of waferprov run).
BENCHMARK(BM_Run)
    ->Args({1, 512})
    ->Args({0, 512})
    ->Args({0, 256})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1)
    ->Repetitions(2)
    ->ReportAggregatesOnly(false);

// The crypto ceiling: what key generation + wrap (the engine) and the certificate signature
// cost per die when every thread does nothing else.
void BM_CryptoCeiling(benchmark::State& state) {
    auto& s = setup();
    const int threads = all_threads();
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
                              static_cast<size_t>(threads));
    auto builder = DeviceCertBuilder::create(*s.signer);
    if (!builder.ok()) {
        state.SkipWithError(builder.error().message.c_str());
        return;
    }
    for (auto _ : state) {
        auto engine = s.engine();
        std::atomic<bool> ok{true};
        const size_t chunk = 64;
        tbb::parallel_for(size_t{0}, (s.dies.size() + chunk - 1) / chunk, [&](size_t c) {
            const size_t first = c * chunk, n = std::min(chunk, s.dies.size() - first);
            std::vector<wpid1::Uid> uids(n);
            for (size_t i = 0; i < n; ++i) uids[i] = s.dies[first + i].uid;
            auto t = engine->submit(uids);
            auto recs = t.ok() ? engine->collect(*t)
                               : Result<std::vector<wpid1::IdentityRecord>>(t.error());
            if (!recs.ok()) {
                ok = false;
                return;
            }
            for (size_t i = 0; i < n; ++i) {
                const auto& rec = (*recs)[i];
                DeviceCertRequest cr;
                cr.uid = rec.uid;
                cr.location = s.dies[first + i].loc;
                cr.product = "WPDEMO";
                cr.public_key = rec.public_key_sec1();
                cr.serial = device_serial(builder->ca_ski(), cr.public_key);
                cr.not_before = std::chrono::system_clock::now();
                auto der = builder->build(cr);
                if (!der.ok()) ok = false;
                benchmark::DoNotOptimize(der);
            }
        });
        if (!ok) {
            state.SkipWithError("ceiling run failed");
            break;
        }
    }
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(s.dies.size()));
    state.counters["threads"] = threads;
}
BENCHMARK(BM_CryptoCeiling)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1)
    ->Repetitions(2);

// Where a die's host-side time goes: one CA signature, one whole device certificate.
void BM_Part_CaSignature(benchmark::State& state) {
    auto& s = setup();
    std::array<uint8_t, 32> digest{};
    for (auto _ : state) benchmark::DoNotOptimize(s.signer->sign_sha256_digest(digest));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Part_CaSignature);

DeviceCertRequest bench_request(const Setup& s, const DeviceCertBuilder& builder) {
    auto pub = software::p256_base_mul(Bytes(32, 1));
    DeviceCertRequest cr;
    cr.location = s.dies[0].loc;
    cr.product = "WPDEMO";
    cr.public_key[0] = 4;
    std::copy(pub->x.begin(), pub->x.end(), cr.public_key.begin() + 1);
    std::copy(pub->y.begin(), pub->y.end(), cr.public_key.begin() + 33);
    cr.serial = device_serial(builder.ca_ski(), cr.public_key);
    cr.not_before = std::chrono::system_clock::now();
    cr.subject_template = CertTemplate{"Example Semiconductor", "Provisioning", "DE"};
    return cr;
}

// The whole certificate: TBS from the job's template, SHA-256, signature, assembly. Compare with
// BM_Part_CaSignature (the floor: one signature) in the same run.
void BM_Part_DeviceCertificate(benchmark::State& state) {
    auto& s = setup();
    auto builder = DeviceCertBuilder::create(*s.signer);
    const DeviceCertRequest cr = bench_request(s, *builder);
    for (auto _ : state) benchmark::DoNotOptimize(builder->build(cr));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Part_DeviceCertificate);

// The TBS alone, from the template and through OpenSSL's X509 API (the way it was built before,
// kept as the tests' reference): what the template saves per die.
void BM_Part_TbsFromTemplate(benchmark::State& state) {
    auto& s = setup();
    auto builder = DeviceCertBuilder::create(*s.signer);
    const DeviceCertRequest cr = bench_request(s, *builder);
    for (auto _ : state) benchmark::DoNotOptimize(builder->tbs(cr));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Part_TbsFromTemplate);

void BM_Part_TbsThroughOpenssl(benchmark::State& state) {
    auto& s = setup();
    auto builder = DeviceCertBuilder::create(*s.signer);
    const DeviceCertRequest cr = bench_request(s, *builder);
    for (auto _ : state) benchmark::DoNotOptimize(builder->reference_tbs(cr));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Part_TbsThroughOpenssl);

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    for (int i = 1; i < argc; ++i)
        if (std::strncmp(argv[i], "--diameter=", 11) == 0) g_diameter = std::atof(argv[i] + 11);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
