// waferprov kat [--backend SPEC] [--device-key FILE] [FILE...]
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>

#include "cli.hpp"
#include "waferprov/backends.hpp"
#include "waferprov/kat.hpp"

namespace waferprov::cli {
namespace {

constexpr const char* kUsage =
    "usage: waferprov kat [--backend SPEC]... [--device-key FILE] [FILE...]\n"
    "\n"
    "Runs known-answer files on a backend and prints, per file, the cases passed, failed and\n"
    "skipped (cases the backend cannot run, with the reason). Without --backend, every backend\n"
    "of this build (a card that is not there, such as xdma without /dev/xdma0_user, is skipped\n"
    "saying so). SPEC is NAME[:KEY=VALUE,...], e.g. software, verilator:engines=2,\n"
    "xdma:device=/dev/xdma0 (docs/drivers.md). On a card, WPID-1 cases run through the card;\n"
    "the primitive cases a card without self-test primitives cannot run are skipped, never\n"
    "passed.\n"
    "Without FILE, the built-in vectors: $WAFERPROV_VECTOR_DIR if set, else\n"
    "<prefix>/share/waferprov/vectors next to an installed waferprov, else the source tree's.\n"
    "Formats: Wycheproof AES-WRAP and AES-CMAC, and P256-BASEMUL and WPID-1 "
    "(docs/kat-formats.md).\n"
    "--device-key FILE: the engine's device key file; WPID-1 KIKs are wrapped under it.\n"
    "Exit status: 0 all passed; 1 a case failed, a file was unusable, or nothing ran; 2 usage.\n";

// $WAFERPROV_VECTOR_DIR; the installed copy (<prefix>/bin/waferprov ->
// <prefix>/share/waferprov/vectors, as the package lays it out); the source tree's.
std::filesystem::path vector_dir() {
    if (const char* env = std::getenv("WAFERPROV_VECTOR_DIR")) return env;
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const auto installed = exe.parent_path().parent_path() / "share/waferprov/vectors";
        if (std::filesystem::is_directory(installed, ec)) return installed;
    }
    return WAFERPROV_VECTOR_DIR;
}

std::vector<std::filesystem::path> builtin_files() {
    const std::filesystem::path dir = vector_dir();
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
        if (it->is_regular_file() && it->path().extension() == ".json") files.push_back(it->path());
    std::sort(files.begin(), files.end());
    return files;
}

}  // namespace

static int run_kat(const Args& args) {
    std::vector<std::string> backends;
    std::optional<std::filesystem::path> device_key_file;
    std::vector<std::filesystem::path> files;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--help" || a == "-h") {
            std::cout << kUsage;
            return kExitOk;
        } else if (a == "--backend" || a == "--device-key") {
            if (i + 1 >= args.size()) {
                std::cerr << "waferprov kat: " << a << " needs a value\n" << kUsage;
                return kExitUsage;
            }
            if (a == "--backend")
                backends.push_back(args[++i]);
            else
                device_key_file = args[++i];
        } else if (a.rfind("--", 0) == 0) {
            std::cerr << "waferprov kat: unknown option " << a << "\n" << kUsage;
            return kExitUsage;
        } else {
            files.emplace_back(a);
        }
    }
    // Without --backend: every backend built, a card that is not there (no /dev/xdma0)
    // skipped with the reason. Named explicitly, a missing card is a failure.
    const bool every_backend = backends.empty();
    if (every_backend) backends = available_backends();
    if (files.empty()) {
        files = builtin_files();
        std::cout << "built-in vectors from " << vector_dir().string() << "\n";
    }

    size_t total_ran = 0, total_failed = 0, unusable = 0;
    for (const auto& name : backends) {
        auto spec = parse_backend_spec(name);
        if (!spec.ok()) {
            std::cerr << "waferprov kat: " << spec.error().describe() << "\n";
            ++unusable;
            continue;
        }
        BackendOptions opts = *spec;
        if (device_key_file) opts.params["device_key"] = device_key_file->string();
        auto backend = make_backend(opts);
        if (!backend.ok() && every_backend && backend.error().code == ErrorCode::kUnavailable) {
            // The registry's error already names the backend; say it once.
            std::string why = backend.error().message;
            if (const std::string named = "backend " + opts.name + ": "; why.rfind(named, 0) == 0)
                why.erase(0, named.size());
            std::cout << "backend " << name << " skipped: " << why << "\n";
            continue;
        }
        if (!backend.ok()) {
            std::cerr << "waferprov kat: " << backend.error().describe() << "\n";
            ++unusable;
            continue;
        }
        kat::Options kopts;
        kopts.wrap_kik = [opts](ByteSpan kik) { return wrap_kik_for(opts, kik); };
        std::cout << "backend " << name << "\n";
        for (const auto& f : files) {
            auto algo = kat::algorithm_of(f);
            auto counts = kat::run_file(**backend, f, kopts);
            std::cout << "  " << std::left << std::setw(44) << f.filename().string() << " "
                      << std::setw(13) << (algo.ok() ? *algo : "?");
            if (!counts.ok()) {
                std::cout << "ERROR " << counts.error().describe() << "\n";
                ++unusable;
                continue;
            }
            std::cout << counts->passed << " passed, " << counts->failed << " failed, "
                      << counts->skipped << " skipped\n";
            for (const auto& line : counts->failures) std::cout << "      FAIL " << line << "\n";
            for (const auto& why : counts->skip_reasons) std::cout << "      SKIP " << why << "\n";
            total_ran += counts->ran();
            total_failed += counts->failed;
        }
    }
    if (total_ran == 0) {
        std::cerr << "waferprov kat: no known-answer case ran\n";
        return kExitFailure;
    }
    std::cout << "summary over all backends and files - " << total_ran - total_failed << " passed, "
              << total_failed << " failed\n";
    return total_failed == 0 && unusable == 0 ? kExitOk : kExitFailure;
}

WAFERPROV_COMMAND(kat,
                  "run known-answer test files (default: the built-in vectors on every backend)",
                  run_kat);

}  // namespace waferprov::cli
