#include "waferprov/testing/postgres.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "waferprov/testing/process.hpp"

namespace waferprov::testing {
namespace {

namespace fs = std::filesystem;

// How long one server tool may take before run_process() kills it: above pg_ctl's own -t, so
// pg_ctl reports its timeout itself.
constexpr auto kToolTimeout = std::chrono::minutes(3);
constexpr const char* kPgCtlWait = "60";  // pg_ctl -t: seconds to wait for start or stop

// How much of a log an error quotes.
constexpr std::size_t kTailBytes = 2000;

bool is_executable(const fs::path& p) { return ::access(p.c_str(), X_OK) == 0; }

// "15" -> {15}, "9.6" -> {9, 6}; nullopt for a name that is not a version.
std::optional<std::vector<int>> parse_version(const std::string& name) {
    std::vector<int> parts;
    std::stringstream in(name);
    std::string part;
    while (std::getline(in, part, '.')) {
        if (part.empty() || part.size() > 6 ||
            !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return std::nullopt;
        parts.push_back(std::stoi(part));
    }
    if (parts.empty()) return std::nullopt;
    return parts;
}

// The last kTailBytes of `text` from `from` on, or "(empty)".
std::string tail(const std::string& text, std::size_t from = 0) {
    if (from >= text.size()) return "(empty)";
    const std::size_t start = std::max(from, text.size() - std::min(text.size(), kTailBytes));
    return (start > from ? "..." : "") + text.substr(start);
}

std::uintmax_t file_size_or_zero(const fs::path& p) {
    std::error_code ec;
    const auto n = fs::file_size(p, ec);
    return ec ? 0 : n;
}

// A port number no local TCP listener holds right now (the kernel's choice for bind(0)). The
// server listens on no TCP port; the number names its socket, .s.PGSQL.<port>, and seeds its
// System V shared memory key, so distinct numbers keep concurrent servers apart.
int pick_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int port = 0;
    if (fd >= 0) {
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(addr);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
            port = ntohs(addr.sin_port);
        ::close(fd);
    }
    // No loopback (an unusual sandbox): any number works for a socket in a private directory.
    return port > 0 ? port : 20000 + static_cast<int>(::getpid() % 20000);
}

// A conninfo value: as is when it is plain, else single-quoted with ' and \ escaped.
std::string conninfo_value(const std::string& v) {
    if (!v.empty() && v.find_first_of(" \t\n\r'\\") == std::string::npos) return v;
    std::string q = "'";
    for (const char c : v) {
        if (c == '\'' || c == '\\') q += '\\';
        q += c;
    }
    return q + "'";
}

// Percent-encodes every byte but the URL's unreserved characters.
std::string percent_encode(const std::string& v) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (const char ch : v) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out += ch;
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
        }
    }
    return out;
}

// SQL literals and identifiers (standard_conforming_strings is on, the default).
std::string quote_literal(const std::string& v) {
    std::string q = "'";
    for (const char c : v) q += c == '\'' ? std::string("''") : std::string(1, c);
    return q + "'";
}

std::string quote_ident(const std::string& v) {
    std::string q = "\"";
    for (const char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
}

// The postmaster's pid from the first line of postmaster.pid; -1 if there is none.
pid_t postmaster_pid(const fs::path& data_dir) {
    std::ifstream in(data_dir / "postmaster.pid");
    long pid = -1;
    if (!(in >> pid) || pid <= 0) return -1;
    return static_cast<pid_t>(pid);
}

// Whether `pid` is a running process whose name is "postgres" (so a stale pid file that now
// names some other process is never acted on).
bool is_live_postgres(pid_t pid) {
    if (pid <= 0) return false;
    const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
    // "<pid> (<comm>) <state> ...": a zombie (Z) has ended; it is only waiting to be reaped.
    const auto close = stat.rfind(')');
    return stat.find("(postgres)") != std::string::npos && close != std::string::npos &&
           close + 2 < stat.size() && stat[close + 2] != 'Z' && stat[close + 2] != 'X';
}

}  // namespace

std::optional<fs::path> PostgresServer::find_binaries() {
    std::optional<std::vector<int>> best_version;
    std::optional<fs::path> best;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
        const auto version = parse_version(entry.path().filename().string());
        if (!version) continue;
        const fs::path bin = entry.path() / "bin";
        if (!is_executable(bin / "initdb") || !is_executable(bin / "pg_ctl") ||
            !is_executable(bin / "postgres") || !is_executable(bin / "psql"))
            continue;
        if (!best_version || *version > *best_version) {
            best_version = version;
            best = bin;
        }
    }
    return best;
}

Result<std::unique_ptr<PostgresServer>> PostgresServer::start() {
    const auto bin = find_binaries();
    if (!bin)
        return make_error(ErrorCode::kNotFound,
                          "PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) are not "
                          "installed under /usr/lib/postgresql/*/bin (Debian package postgresql)");

    std::unique_ptr<PostgresServer> s(new PostgresServer());
    s->bin_dir_ = *bin;
    uid_t uid = 0;
    gid_t gid = 0;
    if (::geteuid() == 0) {
        // initdb and postgres refuse to run as root: run them as Debian's postgres user.
        passwd pw{};
        passwd* found = nullptr;
        std::vector<char> buf(16384);
        if (::getpwnam_r("postgres", &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr)
            return make_error(ErrorCode::kUnavailable,
                              "running as root, and there is no 'postgres' user to run the "
                              "server as (Debian's postgresql package creates it)");
        uid = pw.pw_uid;
        gid = pw.pw_gid;
        for (const char* p : {"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"}) {
            if (is_executable(p)) {
                s->runuser_ = p;
                break;
            }
        }
        if (s->runuser_.empty())
            return make_error(ErrorCode::kUnavailable,
                              "running as root, and runuser (util-linux) is not installed to "
                              "run the server as the 'postgres' user");
        s->as_postgres_user_ = true;
    }

    // /tmp, not $TMPDIR: the socket path must stay under 108 bytes, and the postgres user must
    // be able to reach the directory (mkdtemp makes it 0700; it is chowned below).
    std::string templ = "/tmp/waferprov-pg-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr)
        return make_error(ErrorCode::kIo, "mkdtemp " + templ + ": " + std::strerror(errno));
    s->dir_ = templ;  // from here on the destructor removes it
    s->data_dir_ = s->dir_ / "data";
    s->log_file_ = s->dir_ / "server.log";
    s->port_ = pick_port();
    if (s->as_postgres_user_ && ::chown(s->dir_.c_str(), uid, gid) != 0)
        return make_error(ErrorCode::kIo, "chown " + s->dir_.string() +
                                              " to the postgres user: " + std::strerror(errno));

    // --no-sync: initdb's one-off fsync of the new cluster (seconds); the server's own fsync
    // stays on.
    WP_RETURN_IF_ERROR(s->run_server_tool(
        "initdb", {(s->bin_dir_ / "initdb").string(), "-D", s->data_dir_.string(), "-U", "postgres",
                   "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"}));

    // In postgresql.conf rather than on pg_ctl's command line: start_again() reads the same.
    const fs::path conf = s->data_dir_ / "postgresql.conf";
    {
        std::ofstream out(conf, std::ios::app);
        out << "\n# waferprov::testing::PostgresServer: a private Unix socket, no TCP\n"
            << "listen_addresses = ''\n"
            << "port = " << s->port_ << "\n"
            << "unix_socket_directories = '" << s->dir_.string() << "'\n"
            << "fsync = on\n"
            << "synchronous_commit = on\n";
        if (!out) return make_error(ErrorCode::kIo, "appending to " + conf.string());
    }

    WP_RETURN_IF_ERROR(s->start_again());
    return s;
}

PostgresServer::~PostgresServer() {
    if (dir_.empty()) return;
    // Whatever state the server is in (even a start() that failed half-way): stop it if its
    // pid file says it runs.
    const pid_t pid = postmaster_pid(data_dir_);
    if (pid > 0) {
        const Status stopped =
            pg_ctl("pg_ctl stop", {"-m", "immediate", "-w", "-t", kPgCtlWait, "stop"});
        // The backends notice their postmaster's death and exit by themselves.
        if (!stopped.ok() && is_live_postgres(pid)) ::kill(pid, SIGKILL);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);  // best effort: a destructor cannot report
}

Status PostgresServer::run_server_tool(const std::string& what,
                                       const std::vector<std::string>& args) {
    std::vector<std::string> argv;
    if (as_postgres_user_) argv = {runuser_.string(), "-u", "postgres", "--"};
    argv.insert(argv.end(), args.begin(), args.end());
    const fs::path log = dir_ / "commands.log";
    const auto before = file_size_or_zero(log);
    const int status = run_process(argv, log, kToolTimeout);
    if (status == 0) return ok_status();
    std::string why = status == kSpawnFailed       ? "could not be started"
                      : status == kProcessTimedOut ? "timed out"
                      : status == kProcessSignaled ? "was killed by a signal"
                                                   : "exited with " + std::to_string(status);
    return make_error(status == kProcessTimedOut ? ErrorCode::kTimeout : ErrorCode::kInternal,
                      what + " (" + args.front() + (as_postgres_user_ ? ", as user postgres" : "") +
                          ") " + why + "; its output: " + tail(read_text(log), before) +
                          "; server log: " + tail(read_text(log_file_)));
}

Status PostgresServer::pg_ctl(const std::string& what, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {(bin_dir_ / "pg_ctl").string(), "-D", data_dir_.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_server_tool(what, argv);
}

std::string PostgresServer::conninfo(const std::string& db) const {
    return "host=" + conninfo_value(dir_.string()) + " port=" + std::to_string(port_) +
           " user=postgres dbname=" + conninfo_value(db);
}

std::string PostgresServer::url(const std::string& db) const {
    return "postgresql:///" + percent_encode(db) + "?host=" + percent_encode(dir_.string()) +
           "&port=" + std::to_string(port_) + "&user=postgres";
}

Status PostgresServer::create_database(const std::string& name) {
    WP_ASSIGN_OR_RETURN(const std::string out,
                        psql("postgres", "CREATE DATABASE " + quote_ident(name)));
    (void)out;
    return ok_status();
}

Status PostgresServer::stop() {
    return pg_ctl("pg_ctl stop", {"-m", "fast", "-w", "-t", kPgCtlWait, "stop"});
}

Status PostgresServer::start_again() {
    return pg_ctl("pg_ctl start", {"-l", log_file_.string(), "-w", "-t", kPgCtlWait, "start"});
}

Status PostgresServer::restart() {
    WP_RETURN_IF_ERROR(stop());
    return start_again();
}

Result<int> PostgresServer::terminate_backends(const std::string& db) {
    // The victims are chosen in a materialized CTE so that pg_terminate_backend() runs only on
    // them: as a plain WHERE clause the planner could evaluate it before the database filter.
    WP_ASSIGN_OR_RETURN(
        const std::string out,
        psql("postgres",
             "WITH victims AS MATERIALIZED (SELECT pid FROM pg_stat_activity WHERE datname = " +
                 quote_literal(db) +
                 " AND backend_type = 'client backend' AND pid <> pg_backend_pid()) "
                 "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) FROM victims"));
    int n = -1;
    const auto [end, ec] = std::from_chars(out.data(), out.data() + out.size(), n);
    if (ec != std::errc() || end != out.data() + out.size() || n < 0)
        return make_error(ErrorCode::kInternal,
                          "terminate_backends: psql printed '" + out + "', not a count");
    return n;
}

Result<std::string> PostgresServer::psql(const std::string& db, const std::string& sql) {
    static std::atomic<unsigned> counter{0};
    const std::string stem = "psql-" + std::to_string(counter++);
    const fs::path out = dir_ / (stem + ".out");
    const fs::path err = dir_ / (stem + ".err");
    const pid_t pid = spawn_process({(bin_dir_ / "psql").string(), "-X", "-q", "-v",
                                     "ON_ERROR_STOP=1", "-At", "-d", conninfo(db), "-c", sql},
                                    out, err, /*append=*/false);
    const int status = pid < 0 ? kSpawnFailed : wait_process(pid, kToolTimeout);
    std::string text = read_text(out);
    const std::string errors = read_text(err);
    std::error_code ec;
    fs::remove(out, ec);
    fs::remove(err, ec);
    if (status == 0) {
        if (!text.empty() && text.back() == '\n') text.pop_back();
        return text;
    }
    // psql: 2 = the connection failed or was lost; 1 and 3 = an error of its own or of the SQL.
    const ErrorCode code = status == 2                  ? ErrorCode::kUnavailable
                           : status == kProcessTimedOut ? ErrorCode::kTimeout
                                                        : ErrorCode::kInternal;
    return make_error(code, "psql in database '" + db + "' exited with " + std::to_string(status) +
                                ": " + tail(errors));
}

}  // namespace waferprov::testing
