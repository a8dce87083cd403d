// waferprov-cardsim MOUNTDIR [--engines N] [--name xdma0] [--fault KIND@N]...
//
// The emulated card: a FUSE filesystem presenting <name>_user, <name>_h2c_0, <name>_c2h_0 and
// <name>_events_0 in MOUNTDIR, served by one Verilated card (sim/card_rtl) clocked by its own
// thread, so that the xdma transport (drivers/xdma) runs unchanged with prefix MOUNTDIR/<name>.
// Runs in the foreground; SIGTERM or SIGINT unmounts and exits 0.
#define FUSE_USE_VERSION 312
#include <fuse3/fuse.h>
#include <fuse3/fuse_lowlevel.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "emulator.hpp"
#include "waferprov/software/device_key.hpp"

namespace {

using waferprov::cardsim::Emulator;

enum class Node { kUser, kH2c, kC2h, kEvents };

struct Fs {
    std::string name;
    std::unique_ptr<Emulator> emu;
    std::mutex poll_mu;
    fuse_pollhandle* c2h_ph = nullptr;
    fuse_pollhandle* events_ph = nullptr;
};

Fs* g_fs = nullptr;  // the one filesystem this process serves (FUSE's C callbacks reach it here)

const char* const kSuffix[] = {"_user", "_h2c_0", "_c2h_0", "_events_0"};

bool node_of(const char* path, Node& node) {
    if (path[0] != '/') return false;
    const std::string p(path + 1);
    for (int i = 0; i < 4; ++i)
        if (p == g_fs->name + kSuffix[i]) {
            node = static_cast<Node>(i);
            return true;
        }
    return false;
}

bool aborted() {
    if (fuse_interrupted() != 0) return true;
    fuse_context* c = fuse_get_context();
    return c != nullptr && c->fuse != nullptr && fuse_session_exited(fuse_get_session(c->fuse));
}

void* fs_init(fuse_conn_info* /*conn*/, fuse_config* cfg) {
    cfg->direct_io = 1;  // every read and write reaches the emulator: nothing is cached
    cfg->attr_timeout = 0;
    cfg->entry_timeout = 0;
    return nullptr;
}

int fs_getattr(const char* path, struct stat* st, fuse_file_info* /*fi*/) {
    std::memset(st, 0, sizeof(*st));
    if (std::strcmp(path, "/") == 0) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
        return 0;
    }
    Node node{};
    if (!node_of(path, node)) return -ENOENT;
    st->st_mode = S_IFREG | (node == Node::kUser ? 0600 : node == Node::kH2c ? 0200 : 0400);
    st->st_nlink = 1;
    st->st_size = node == Node::kUser ? 0x10000 : 0;
    return 0;
}

int fs_readdir(const char* path, void* buf, fuse_fill_dir_t fill, off_t /*off*/,
               fuse_file_info* /*fi*/, fuse_readdir_flags /*flags*/) {
    if (std::strcmp(path, "/") != 0) return -ENOENT;
    fill(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
    fill(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
    for (const char* s : kSuffix)
        fill(buf, (g_fs->name + s).c_str(), nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
    return 0;
}

int fs_open(const char* path, fuse_file_info* fi) {
    Node node{};
    if (!node_of(path, node)) return -ENOENT;
    const int acc = fi->flags & O_ACCMODE;
    if ((node == Node::kH2c && acc == O_RDONLY) ||
        ((node == Node::kC2h || node == Node::kEvents) && acc != O_RDONLY))
        return -EACCES;
    fi->direct_io = 1;
    fi->keep_cache = 0;
    fi->fh = static_cast<uint64_t>(node);
    return 0;
}

int fs_truncate(const char* path, off_t /*size*/, fuse_file_info* /*fi*/) {
    Node node{};
    return node_of(path, node) ? 0 : -ENOENT;
}

int fs_read(const char* /*path*/, char* buf, size_t size, off_t off, fuse_file_info* fi) {
    auto* out = reinterpret_cast<uint8_t*>(buf);
    switch (static_cast<Node>(fi->fh)) {
        case Node::kUser:
            return g_fs->emu->read_reg(static_cast<uint64_t>(off), std::span<uint8_t>(out, size));
        case Node::kC2h: return g_fs->emu->c2h_read(std::span<uint8_t>(out, size), aborted);
        case Node::kEvents: return g_fs->emu->events_read(std::span<uint8_t>(out, size), aborted);
        case Node::kH2c: return -EBADF;
    }
    return -EBADF;
}

int fs_write(const char* /*path*/, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
    const auto* in = reinterpret_cast<const uint8_t*>(buf);
    switch (static_cast<Node>(fi->fh)) {
        case Node::kUser:
            return g_fs->emu->write_reg(static_cast<uint64_t>(off),
                                        std::span<const uint8_t>(in, size));
        case Node::kH2c: return g_fs->emu->h2c_write(std::span<const uint8_t>(in, size), aborted);
        case Node::kC2h:
        case Node::kEvents: return -EBADF;
    }
    return -EBADF;
}

// Readiness: user and h2c always (their calls complete on their own); c2h when a transfer's end
// is buffered; events when an interrupt is pending. The handle is stored BEFORE readiness is
// checked, under poll_mu, so a change between the two is never missed.
int fs_poll(const char* /*path*/, fuse_file_info* fi, fuse_pollhandle* ph, unsigned* revents) {
    const auto node = static_cast<Node>(fi->fh);
    std::lock_guard lk(g_fs->poll_mu);
    fuse_pollhandle** slot = node == Node::kC2h      ? &g_fs->c2h_ph
                             : node == Node::kEvents ? &g_fs->events_ph
                                                     : nullptr;
    if (slot == nullptr) {
        if (ph != nullptr) fuse_pollhandle_destroy(ph);
        *revents = node == Node::kUser ? unsigned{POLLIN | POLLOUT} : unsigned{POLLOUT};
        return 0;
    }
    if (ph != nullptr) {
        if (*slot != nullptr) fuse_pollhandle_destroy(*slot);
        *slot = ph;
    }
    const bool ready = node == Node::kC2h ? g_fs->emu->c2h_ready() : g_fs->emu->events_ready();
    *revents = ready ? unsigned{POLLIN} : 0u;
    return 0;
}

void notify_pollers() {
    std::lock_guard lk(g_fs->poll_mu);
    for (fuse_pollhandle** slot : {&g_fs->c2h_ph, &g_fs->events_ph}) {
        if (*slot == nullptr) continue;
        fuse_notify_poll(*slot);
        fuse_pollhandle_destroy(*slot);
        *slot = nullptr;
    }
}

void usage(std::ostream& os) {
    os << "usage: waferprov-cardsim MOUNTDIR [--engines N] [--name NAME] [--fault KIND@N]...\n"
          "\n"
          "Emulates an XDMA card carrying wp_card: NAME_user (registers, 4-byte pread/pwrite),\n"
          "NAME_h2c_0 (requests), NAME_c2h_0 (records) and NAME_events_0 (user interrupt) in\n"
          "MOUNTDIR, served by the Verilated card with the development device key. Point the\n"
          "xdma backend at MOUNTDIR/NAME. Runs in the foreground; SIGTERM/SIGINT unmount.\n"
          "\n"
          "  --engines N   P-256 engines on the card: "
       << waferprov::cardsim::supported_engine_counts()
       << " (default 4)\n"
          "  --name NAME   node prefix (default xdma0)\n"
          "  --fault F     inject a fault (repeatable), F one of\n"
       << waferprov::cardsim::fault_help() << "\n";
}

int fail(const std::string& msg) {
    std::cerr << "waferprov-cardsim: " << msg << "\n";
    return 2;
}

// The command line. parse_args() returns the exit code when the command ends there (--help, an
// error), nothing when the card should run.
struct CommandLine {
    std::string mountdir;
    std::string name = "xdma0";
    Emulator::Options options;
};

std::optional<int> parse_args(const std::vector<std::string>& args, CommandLine& c) {
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&](std::string& out) {
            if (i + 1 >= args.size()) return false;
            out = args[++i];
            return true;
        };
        std::string v;
        if (a == "--help" || a == "-h") {
            usage(std::cout);
            return 0;
        } else if (a == "--engines") {
            if (!value(v)) return fail("--engines needs a value");
            if (v.empty() || v.size() > 2 || v.find_first_not_of("0123456789") != std::string::npos)
                return fail("--engines " + v + ": not a number");
            c.options.engines = static_cast<unsigned>(std::stoul(v));
        } else if (a == "--name") {
            if (!value(c.name)) return fail("--name needs a value");
            if (c.name.empty() || c.name.find('/') != std::string::npos)
                return fail("--name '" + c.name + "': a node prefix, without '/'");
        } else if (a == "--fault") {
            if (!value(v)) return fail("--fault needs a value (" + std::string("KIND@N") + ")");
            auto f = waferprov::cardsim::parse_fault(v);
            if (!f.ok()) return fail(f.error().message);
            c.options.faults.push_back(*f);
        } else if (!a.empty() && a[0] == '-') {
            return fail("unknown option " + a + " (--help lists them)");
        } else if (c.mountdir.empty()) {
            c.mountdir = a;
        } else {
            return fail("one MOUNTDIR only (got " + c.mountdir + " and " + a + ")");
        }
    }
    if (c.mountdir.empty()) {
        usage(std::cerr);
        return 2;
    }
    return std::nullopt;
}

// Mounts the card's nodes in `mountdir`, serves them until a signal ends the loop, unmounts and
// stops the card; returns the exit code.
int serve_nodes(Fs& fs, const std::string& mountdir) {
    fuse_operations ops{};
    ops.init = fs_init;
    ops.getattr = fs_getattr;
    ops.readdir = fs_readdir;
    ops.open = fs_open;
    ops.truncate = fs_truncate;
    ops.read = fs_read;
    ops.write = fs_write;
    ops.poll = fs_poll;

    std::vector<std::string> fargv = {"waferprov-cardsim", "-o", "fsname=waferprov-cardsim"};
    std::vector<char*> cargv;
    for (auto& s : fargv) cargv.push_back(s.data());
    fuse_args fa = FUSE_ARGS_INIT(static_cast<int>(cargv.size()), cargv.data());
    // fuse_new adds arguments of its own to `fa` (heap copies): freed on every way out.
    struct ArgsGuard {
        fuse_args* a;
        ~ArgsGuard() { fuse_opt_free_args(a); }
    } args_guard{&fa};
    fuse* f = fuse_new(&fa, &ops, sizeof(ops), nullptr);
    if (f == nullptr) return fail("fuse_new failed");
    if (fuse_mount(f, mountdir.c_str()) != 0) {
        fuse_destroy(f);
        return fail(mountdir +
                    ": cannot mount (is /dev/fuse there? a stale mount: fusermount3 -u " +
                    mountdir + ")");
    }
    fuse_session* se = fuse_get_session(f);
    if (fuse_set_signal_handlers(se) != 0) {
        fuse_unmount(f);
        fuse_destroy(f);
        return fail("cannot install the signal handlers");
    }
    std::cout << "waferprov-cardsim: " << mountdir << "/" << fs.name << " (" << fs.emu->describe()
              << ")" << std::endl;

    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(cfg, 16);
    const int rc = fuse_loop_mt(f, cfg);
    fuse_loop_cfg_destroy(cfg);

    fuse_remove_signal_handlers(se);
    fuse_unmount(f);
    fs.emu->shutdown();
    {
        std::lock_guard lk(fs.poll_mu);
        for (fuse_pollhandle* ph : {fs.c2h_ph, fs.events_ph})
            if (ph != nullptr) fuse_pollhandle_destroy(ph);
        fs.c2h_ph = fs.events_ph = nullptr;
    }
    fuse_destroy(f);
    std::cout << "waferprov-cardsim: unmounted " << mountdir << std::endl;
    // FUSE's signal handlers record the signal as the loop's result: a clean stop.
    return rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    CommandLine c;
    if (auto rc = parse_args(args, c)) return *rc;
    const std::string& mountdir = c.mountdir;
    struct stat st {};
    if (::stat(mountdir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return fail(mountdir + ": not a directory");

    auto dk = waferprov::software::test_device_key();
    if (!dk.ok())
        return fail("no device key: " + dk.error().describe() +
                    " (the emulated card carries the development test key)");

    // The clock thread must not take SIGTERM/SIGINT: FUSE's handlers end the loop from the
    // threads that wait in it.
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    auto emu = Emulator::create(c.options, dk->bytes);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (!emu.ok()) return fail(emu.error().message);

    Fs fs;
    fs.name = c.name;
    fs.emu = std::move(*emu);
    g_fs = &fs;
    fs.emu->set_notify(notify_pollers);

    const int rc = serve_nodes(fs, mountdir);
    g_fs = nullptr;
    return rc;
}
