// Test-only: a private, throwaway PostgreSQL server for the tests of the ledger's PostgreSQL store
// (and anything else that needs a real server). It is Debian's server (`postgresql`, installed
// by tools/install-deps.sh) run from its own binaries: initdb, pg_ctl and psql through
// run_process(), so this library does not link libpq.
//
// The server lives in a fresh directory /tmp/waferprov-pg-XXXXXX (always /tmp, not $TMPDIR: a
// Unix socket path has at most 107 bytes, and the postgres user must be able to reach it):
//   data/        the cluster (initdb: trust authentication, superuser "postgres", UTF8, C locale)
//   server.log   the server's log (log_file())
//   .s.PGSQL.N   the only listening socket (listen_addresses = '', N = port())
// fsync and synchronous_commit keep their defaults (on), so commit figures measured against it
// are honest; only initdb skips its one-off sync of the files it writes (--no-sync), which
// changes nothing the server does afterwards.
//
// initdb, pg_ctl and postgres refuse to run as root. When this process runs as root (geteuid()
// 0) they run as Debian's `postgres` system user (`runuser -u postgres --`) and the directory
// is chowned to it; clients (psql here, libpq in the tests) still run as the calling user and
// connect over the socket as database user "postgres" with trust authentication.
//
// A server outlives a test program that crashes before the destructor runs; it shuts itself down
// within about a minute of its directory being removed (the postmaster rechecks its lock file).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "waferprov/result.hpp"

namespace waferprov::testing {

class PostgresServer {
public:
    // The directory of Debian's server binaries (initdb, pg_ctl, postgres and psql all present),
    // e.g. /usr/lib/postgresql/15/bin: the highest version under /usr/lib/postgresql/*/bin.
    // nullopt when none is installed (tests GTEST_SKIP() then).
    static std::optional<std::filesystem::path> find_binaries();

    // initdb into a fresh directory, then `pg_ctl start -w`: a server listening only on a Unix
    // socket in that directory, with a port number that no local TCP listener holds for the
    // socket's name. Errors name the step that failed and include the tail of its output and of
    // the server log; the directory is removed (and a started server stopped) on every error.
    // kNotFound when the binaries are absent; kUnavailable when running as root without a
    // `postgres` user or `runuser`.
    static Result<std::unique_ptr<PostgresServer>> start();

    // `pg_ctl stop -m immediate` (nothing in the cluster is kept), then removes the directory.
    // Best effort: a destructor cannot report; if pg_ctl fails the postmaster is SIGKILLed.
    ~PostgresServer();
    PostgresServer(const PostgresServer&) = delete;
    PostgresServer& operator=(const PostgresServer&) = delete;

    // The libpq connection string for database `db`:
    // "host=<socket dir> port=<port> user=postgres dbname=<db>" (a value with a space, a quote or
    // a backslash in it is single-quoted as libpq reads it).
    std::string conninfo(const std::string& db = "postgres") const;

    // The same as a URL: postgresql:///<db>?host=<socket dir>&port=<port>&user=postgres, with
    // the database name and the socket directory percent-encoded (every byte but A-Z a-z 0-9
    // - . _ ~).
    std::string url(const std::string& db = "postgres") const;

    // CREATE DATABASE "<name>" (the name quoted as an identifier: exactly as given, case kept).
    Status create_database(const std::string& name);

    // `pg_ctl stop -m fast -w`: sessions are ended, the server shuts down cleanly. The directory
    // and the data stay; start_again() brings the server back.
    Status stop();

    // `pg_ctl start -w` on the same data directory, socket and port (after stop(), for tests that
    // restart the server in the middle of a run).
    Status start_again();

    // stop() then start_again().
    Status restart();

    // Ends every other client session connected to database `db` (pg_terminate_backend(), which
    // here waits up to 10 s for each to be gone) and returns how many ended. The session that
    // asks connects to database "postgres" and is never counted.
    Result<int> terminate_backends(const std::string& db);

    // Runs `sql` in database `db` with psql (-X -q -v ON_ERROR_STOP=1 -At -c: several statements
    // in one string are sent as one request, in one implicit transaction, so a statement that
    // cannot run in a transaction, such as CREATE DATABASE, must be alone) and returns what it
    // printed: one line per row, columns separated by '|', without the final newline. An error
    // carries psql's message (kUnavailable when psql could not connect or lost the connection).
    Result<std::string> psql(const std::string& db, const std::string& sql);

    const std::filesystem::path& dir() const { return dir_; }  // socket directory, holds the rest
    const std::filesystem::path& data_dir() const { return data_dir_; }
    const std::filesystem::path& log_file() const { return log_file_; }
    int port() const { return port_; }

    // Thread-safety: conninfo(), url(), psql(), create_database() and terminate_backends() may
    // be called from several threads at once; stop(), start_again() and restart() must not run
    // concurrently with anything else on the same server.

private:
    PostgresServer() = default;

    // Runs a server binary (as the postgres user when root) with its output in commands.log;
    // on failure, an error naming `what` with the tail of that output and of the server log.
    Status run_server_tool(const std::string& what, const std::vector<std::string>& args);
    // pg_ctl with `args` after "-D <data dir>".
    Status pg_ctl(const std::string& what, const std::vector<std::string>& args);

    std::filesystem::path bin_dir_;
    std::filesystem::path dir_;
    std::filesystem::path data_dir_;
    std::filesystem::path log_file_;
    int port_ = 0;
    bool as_postgres_user_ = false;  // root: server tools run through runuser
    std::filesystem::path runuser_;
};

}  // namespace waferprov::testing
