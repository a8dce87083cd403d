// Atomic file output, the PNG converter and the directory layout (docs/reports.md).
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "report_internal.hpp"
#include "waferprov/files.hpp"
#include "waferprov/host/report.hpp"

extern char** environ;

namespace waferprov::host::report {

namespace fs = std::filesystem;

namespace {

Error io_error(const std::string& what, const fs::path& p, int err) {
    return make_error(ErrorCode::kIo, what + " " + p.string() + ": " + std::strerror(err));
}

// A unique temporary name next to `path` (same directory, so rename() is atomic).
fs::path temp_name(const fs::path& path, std::string_view suffix = ".tmp") {
    static std::atomic<unsigned> counter{0};
    return path.parent_path() / ("." + path.filename().string() + "." + std::to_string(::getpid()) +
                                 "." + std::to_string(counter.fetch_add(1)) + std::string(suffix));
}

Status sync_and_rename(const fs::path& tmp, const fs::path& path) {
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return io_error("renaming to", path, err);
    }
    // Make the rename itself durable.
    int dfd = ::open(path.parent_path().empty() ? "." : path.parent_path().c_str(),
                     O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    return ok_status();
}

}  // namespace

Status write_file_atomic(const fs::path& path, std::string_view data) {
    std::error_code ec;
    if (!path.parent_path().empty()) {
        fs::create_directories(path.parent_path(), ec);
        if (ec)
            return make_error(ErrorCode::kIo,
                              "creating " + path.parent_path().string() + ": " + ec.message());
    }
    const fs::path tmp = temp_name(path);
    WP_RETURN_IF_ERROR(write_new_file(tmp, data, 0644));
    return sync_and_rename(tmp, path);
}

namespace {

std::optional<fs::path> on_path(std::string_view name) {
    const char* path = std::getenv("PATH");
    if (path == nullptr) return std::nullopt;
    std::string_view rest(path);
    while (true) {
        size_t colon = rest.find(':');
        std::string_view dir = rest.substr(0, colon);
        if (!dir.empty()) {
            fs::path candidate = fs::path(dir) / name;
            if (::access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate))
                return candidate;
        }
        if (colon == std::string_view::npos) break;
        rest.remove_prefix(colon + 1);
    }
    return std::nullopt;
}

// Runs argv[0] with no shell, stdout/stderr to /dev/null; returns the exit status or -1.
int run_quietly(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return -1;
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

std::optional<fs::path> find_svg_converter() {
    if (auto p = on_path("rsvg-convert")) return p;
    return on_path("convert");
}

bool svg_to_png(const fs::path& svg, const fs::path& png, std::string& note) {
    std::optional<fs::path> tool = find_svg_converter();
    if (!tool) {
        note =
            "PNG skipped: neither rsvg-convert (librsvg2-bin) nor ImageMagick convert is on "
            "PATH";
        return false;
    }
    const fs::path tmp = temp_name(png, ".png");
    std::vector<std::string> argv;
    if (tool->filename() == "rsvg-convert")
        argv = {tool->string(), "-f", "png", "-o", tmp.string(), svg.string()};
    else
        argv = {tool->string(), svg.string(), tmp.string()};
    int rc = run_quietly(argv);
    std::error_code ec;
    if (rc != 0 || !fs::exists(tmp, ec) || fs::file_size(tmp, ec) == 0) {
        fs::remove(tmp, ec);
        note = "PNG not written: " + tool->string() + " failed (exit " + std::to_string(rc) + ")";
        return false;
    }
    if (Status s = sync_and_rename(tmp, png); !s.ok()) {
        note = "PNG not written: " + s.error().describe();
        return false;
    }
    return true;
}

std::string safe_path_component(std::string_view s) {
    std::string out;
    for (char c : s) {
        bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
        out += keep ? c : '_';
    }
    if (out.empty() || out == "." || out == "..") out = "_" + out;
    if (out.size() > kMaxPathComponent) {
        // FNV-1a over the original text: not a security measure, only a tie-breaker.
        uint64_t h = 0xcbf29ce484222325ULL;
        for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ULL;
        static constexpr char kHex[] = "0123456789abcdef";
        std::string tail = "~";
        for (int i = 60; i >= 0; i -= 4) tail += kHex[(h >> i) & 0xf];
        out = out.substr(0, kMaxPathComponent - tail.size()) + tail;
    }
    return out;
}

fs::path wafer_dir(const fs::path& out, const WaferRun& run) {
    return out / safe_path_component(run.lot) / wafer_label(run.wafer);
}

namespace {

Status put(Written& w, const fs::path& p, std::string_view data) {
    WP_RETURN_IF_ERROR(write_file_atomic(p, data));
    w.files.push_back(p);
    return ok_status();
}

Status write_one(Written& w, const fs::path& out, const WaferRun& run,
                 const WriteOptions& options) {
    WP_RETURN_IF_ERROR(validate(run));
    const fs::path dir = wafer_dir(out, run);
    const std::span<const WaferRun> one(&run, 1);
    WP_RETURN_IF_ERROR(put(w, dir / "summary.txt", summary_text(one)));
    WP_RETURN_IF_ERROR(put(w, dir / "summary.json", summary_json(one)));
    Reconciliation rec = reconcile(run);
    WP_RETURN_IF_ERROR(put(w, dir / "reconciliation.txt", reconciliation_text(rec, run)));
    WP_RETURN_IF_ERROR(put(w, dir / "reconciliation.csv", reconciliation_csv(std::span(&rec, 1))));
    const fs::path svg = dir / "wafer.svg";
    WP_RETURN_IF_ERROR(put(w, svg, wafer_svg(run, options.svg)));
    if (options.png) {
        std::string note;
        if (svg_to_png(svg, dir / "wafer.png", note))
            w.files.push_back(dir / "wafer.png");
        else
            w.notes.push_back(note);
    }
    Bytes stdf = stdf_bytes(run, options.stdf);
    const std::string name = safe_path_component(run.lot) + "_" + wafer_label(run.wafer) + ".stdf";
    WP_RETURN_IF_ERROR(put(
        w, dir / name, std::string_view(reinterpret_cast<const char*>(stdf.data()), stdf.size())));
    return ok_status();
}

}  // namespace

Result<Written> write_wafer_reports(const fs::path& out, const WaferRun& run,
                                    const WriteOptions& options) {
    Written w;
    if (Status s = write_one(w, out, run, options); !s.ok())
        return s.error().with_context("writing reports of " + run.lot + " wafer " +
                                      wafer_label(run.wafer));
    return w;
}

Result<Written> write_lot_reports(const fs::path& out, std::span<const WaferRun> runs,
                                  const WriteOptions& options) {
    if (runs.empty()) return make_error(ErrorCode::kInvalidArgument, "no wafers to report");
    Written w;
    for (const WaferRun& run : runs)
        if (Status s = write_one(w, out, run, options); !s.ok())
            return s.error().with_context("writing reports of " + run.lot + " wafer " +
                                          wafer_label(run.wafer));
    const fs::path dir = out / safe_path_component(runs.front().lot);
    LotReconciliation lot = reconcile_lot(runs);
    for (auto [name, text] : {std::pair{"lot_reconciliation.txt", lot_reconciliation_text(lot)},
                              std::pair{"lot_reconciliation.csv", lot_reconciliation_csv(lot)},
                              std::pair{"lot_summary.txt", summary_text(runs)},
                              std::pair{"lot_summary.json", summary_json(runs)}})
        if (Status s = put(w, dir / name, text); !s.ok())
            return s.error().with_context("writing lot reports of " + runs.front().lot);
    return w;
}

}  // namespace waferprov::host::report
