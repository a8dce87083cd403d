// waferprov serve: the tester link's host (docs/tester-protocol.md).
// waferprov keygen: a CurveZMQ key pair for a server or a tester.
#include <csignal>
#include <filesystem>
#include <iostream>

#include "cli.hpp"
#include "maps.hpp"
#include "waferprov/host/curve_keys.hpp"
#include "waferprov/host/job.hpp"
#include "waferprov/host/metrics.hpp"
#include "waferprov/host/pipeline.hpp"
#include "waferprov/host/service.hpp"
#include "waferprov/host/wafermap.hpp"

namespace waferprov::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kServeUsage =
    "usage: waferprov serve --job FILE [--map FILE [--wafer N] ...] [--job FILE [--map ...] ...]\n"
    "                       [--bind ENDPOINT] [--key FILE] [--insecure] [--max-sites N]\n"
    "                       [--threads N] [--workers N] [--shutdown-deadline SECONDS] [--verbose]\n"
    "                       [--backend SPEC] [--metrics HOST:PORT]\n"
    "\n"
    "Serves the jobs' identities to testers over ZeroMQ (WPTL 1.0, docs/tester-protocol.md).\n"
    "Each --job is served apart from the others (own ledger, backend, CA, quota); a tester may\n"
    "only open a session for a job whose [testers] table lists its id with its CURVE key.\n"
    "Identities `waferprov run` pre-generated are served from the ledger; other dies are\n"
    "generated on demand. --map FILE after a --job restricts that job to the dies of its maps\n"
    "in the job's provision bins (others are answered NOT_ON_MAP) and gives the host the\n"
    "wafer's substrate id, part of every die's location (--wafer N numbers the --map before\n"
    "it). Without maps a wafer is named by lot and number only.\n"
    "  --bind      endpoint to listen on (default tcp://127.0.0.1:7450; port 0 = any free port)\n"
    "  --key       the server's CURVE secret key file (default: server.key next to the first\n"
    "              job file; `waferprov keygen` or `job init` writes one)\n"
    "  --insecure  plain TCP without CurveZMQ: development only, never on a floor network\n"
    "  --max-sites sites per touchdown advertised to testers (1..1024, default 1024)\n"
    "  --threads   signing threads for on-demand generation (default: all cores)\n"
    "  --workers   threads running ledger work (default 16; concurrent requests share\n"
    "              ledger commits, at most one per worker)\n"
    "  --shutdown-deadline  seconds SIGINT/SIGTERM give the requests in flight to finish and\n"
    "              their answers to leave (default 5, 0..3600)\n"
    "  --verbose   log every request, not only sessions and refusals\n"
    "  --backend   the accelerator for every job, instead of the job file's: NAME[:KEY=VALUE,...]\n"
    "              (software, verilator[:engines=N], xdma[:device=PREFIX,...];\n"
    "              docs/drivers.md)\n"
    "  --metrics   Prometheus metrics at http://HOST:PORT/metrics (off by default; HOST an\n"
    "              IPv4 address, [IPv6] or localhost; PORT 0 = any free port); prints\n"
    "              'metrics on URL' (docs/operations.md, Metrics)\n"
    "Prints 'listening on ENDPOINT' once it accepts connections; SIGINT/SIGTERM refuse new\n"
    "requests (SHUTTING_DOWN), finish the ones in flight and send their answers within the\n"
    "deadline, log 'stopped: N answer(s) sent, M dropped after deadline Xs' and exit.\n"
    "Exit status: 0 stopped cleanly; 1 error; 2 usage.\n";

constexpr const char* kKeygenUsage =
    "usage: waferprov keygen --out NAME [--name TEXT]\n"
    "\n"
    "Writes a new CurveZMQ key pair: NAME.key (secret and public key, mode 0600) and NAME.pub\n"
    "(public key only), in CZMQ's zcert text format. Existing files are never overwritten.\n"
    "Prints the public key (Z85), the value a job's [testers] table lists for a tester.\n";

host::Service* g_service = nullptr;

extern "C" void on_stop_signal(int) {
    if (g_service != nullptr) g_service->stop();
}

Result<int> serve(const ParsedArgs& a) {
    // --job and --map in command-line order: a map belongs to the job before it.
    // --wafer N numbers the --map before it (docs/wafer-maps.md).
    std::vector<host::ServedJob> jobs;
    std::vector<ParsedArgs> job_args;  // each job's --map/--wafer options, in order
    for (const auto& [name, value] : a.options) {
        if (name == "job") {
            WP_ASSIGN_OR_RETURN(auto job, host::load_job(value));
            jobs.push_back(host::ServedJob{std::move(job), {}});
            job_args.emplace_back();
        } else if (name == "map" || name == "wafer") {
            if (jobs.empty())
                return make_error(ErrorCode::kInvalidArgument,
                                  "--" + name + " " + value + " comes before any --job");
            job_args.back().options.emplace_back(name, value);
        }
    }
    for (size_t j = 0; j < jobs.size(); ++j) {
        if (a.has("backend"))
            WP_RETURN_IF_ERROR(host::override_job_backend(jobs[j].job, a.get("backend")));
        WP_ASSIGN_OR_RETURN(const auto maps, map_args(job_args[j]));
        for (const auto& m : maps) {
            WP_ASSIGN_OR_RETURN(auto map, read_map(m, map_options_of(jobs[j].job)));
            jobs[j].maps.push_back(std::move(map));
        }
        if (maps.empty())
            std::cerr << "note: job " << jobs[j].job.id
                      << " is served without maps: the tester link names a wafer by lot and "
                         "number only, so the host cannot tell two physical wafers of one number "
                         "apart (give each wafer's --map)\n";
    }
    host::ServiceOptions opt;
    if (a.has("bind")) opt.bind = a.get("bind");
    opt.insecure = a.has("insecure");
    opt.verbose = a.has("verbose");
    WP_ASSIGN_OR_RETURN(opt.max_sites, number_option(a, "max-sites", 1, 1024, 1024));
    WP_ASSIGN_OR_RETURN(const size_t threads, number_option(a, "threads", 1, 1024, 0));
    opt.signing_threads = static_cast<int>(threads);
    WP_ASSIGN_OR_RETURN(opt.workers, number_option(a, "workers", 1, 64, 16));
    WP_ASSIGN_OR_RETURN(const size_t deadline, number_option(a, "shutdown-deadline", 0, 3600, 5));
    opt.shutdown_deadline = std::chrono::seconds(deadline);
    if (!opt.insecure) {
        const fs::path key = a.has("key") ? fs::path(a.get("key"))
                                          : jobs.front().job.file.parent_path() / "server.key";
        WP_ASSIGN_OR_RETURN(auto keys, host::protocol::read_curve_key_file(key, true));
        opt.server_keys = std::move(keys);
        std::cerr << "server public key " << opt.server_keys.public_z85 << " (" << key.string()
                  << ")\n";
    } else if (a.has("key")) {
        return make_error(ErrorCode::kInvalidArgument,
                          "--key and --insecure contradict each other");
    }

    // The exporter first: a bad address or a port in use fails before any ledger is opened. It
    // outlives the service, which reports to it until run() returns.
    std::unique_ptr<host::Metrics> metrics;
    if (a.has("metrics")) {
        host::MetricsOptions mo;
        mo.engineering = opt.insecure;
        metrics = std::make_unique<host::Metrics>(mo);
        for (const auto& j : jobs) metrics->add_job(j.job);
        WP_RETURN_IF_ERROR(metrics->listen(a.get("metrics")));
        opt.observer = metrics.get();
        std::cout << "metrics on " << metrics->url() << std::endl;
    }
    WP_ASSIGN_OR_RETURN(auto service, host::Service::create(std::move(jobs), std::move(opt)));
    g_service = service.get();
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    Status st = service->run(
        [](const std::string& endpoint) { std::cout << "listening on " << endpoint << std::endl; });
    const auto s = service->stats();
    g_service = nullptr;
    std::cerr << "served " << s.sessions_opened << " session(s), " << s.requests
              << " request(s): " << s.delivered << " delivered, " << s.reissued << " reissued ("
              << s.generated << " generated on demand), " << s.refused_sites << " sites refused, "
              << s.results << " results, " << s.refused_frames << " frames refused\n";
    WP_RETURN_IF_ERROR(st);
    return kExitOk;
}

int run_serve(const Args& args) {
    return run_command(args,
                       {"serve",
                        kServeUsage,
                        {"job", "map", "wafer", "bind", "key", "max-sites", "threads", "workers",
                         "shutdown-deadline", "backend", "metrics"},
                        {"insecure", "verbose"},
                        {"job"}},
                       serve);
}

Result<int> keygen(const ParsedArgs& a) {
    const std::string out = a.get("out");
    WP_ASSIGN_OR_RETURN(const auto keys, host::protocol::generate_curve_keys());
    WP_RETURN_IF_ERROR(host::protocol::write_curve_key_files(
        keys, a.has("name") ? a.get("name") : fs::path(out).filename().string(), out + ".key",
        out + ".pub"));
    std::cout << keys.public_z85 << "\n";
    return kExitOk;
}

int run_keygen(const Args& args) {
    return run_command(args, {"keygen", kKeygenUsage, {"out", "name"}, {}, {"out"}}, keygen);
}

}  // namespace

WAFERPROV_COMMAND(serve, "serve: the tester link (ZeroMQ + CurveZMQ) for one or more jobs",
                  run_serve);
WAFERPROV_COMMAND(keygen, "keygen: a CurveZMQ key pair for a server or a tester", run_keygen);

}  // namespace waferprov::cli
