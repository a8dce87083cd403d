#include "waferprov/sim/isolated.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>

namespace waferprov::sim {

namespace {

bool write_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
        const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        off += static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace

Result<std::string> run_isolated(const std::function<Result<std::string>()>& body) {
    int fds[2];
    if (::pipe(fds) != 0)
        return make_error(ErrorCode::kIo, std::string("pipe: ") + std::strerror(errno));
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        return make_error(ErrorCode::kIo, std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        ::close(fds[0]);
        // First byte: 'O' ok or 'E' error, then the text.
        std::string out;
        try {
            auto r = body();
            out = r.ok() ? "O" + *r : "E" + r.error().describe();
        } catch (const std::exception& e) {
            out = std::string("Esimulation threw: ") + e.what();
        }
        const bool ok = write_all(fds[1], out);
        ::close(fds[1]);
        ::_exit(ok ? 0 : 3);
    }
    ::close(fds[1]);
    std::string got;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got.empty())
        return make_error(ErrorCode::kInternal,
                          "the model's process died (status " + std::to_string(status) + ")");
    if (got[0] == 'E') return make_error(ErrorCode::kInternal, got.substr(1));
    return got.substr(1);
}

}  // namespace waferprov::sim

// libsystemc's own main() calls sc_main(); our programs have their own main() and start the
// kernel with sc_start() from a forked child, so this definition only satisfies the
// library's reference. No program of ours defines sc_main.
extern "C" int sc_main(int /*argc*/, char* /*argv*/[]) { return 1; }
