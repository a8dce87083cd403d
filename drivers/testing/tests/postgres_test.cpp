// The throwaway PostgreSQL server does what the ledger's PostgreSQL store tests rely on: it
// answers on its private socket (conninfo and URL both), keeps committed rows across a restart,
// ends another session's backend on request, and is gone, directory and processes, afterwards.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "waferprov/testing/postgres.hpp"
#include "waferprov/testing/process.hpp"
#include "waferprov/testing/temp_dir.hpp"

namespace waferprov::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Whether `pid` is a process that has not ended. The server is not our child (pg_ctl detaches
// it), and a container's init may never reap it: a zombie counts as ended.
bool process_alive(pid_t pid) {
    const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos || close + 2 >= stat.size()) return false;
    return stat[close + 2] != 'Z' && stat[close + 2] != 'X';
}

// Polls `done` every 50 ms for at most `limit`: a bound on waiting, not a timing assertion.
template <class Pred>
bool wait_until(Pred done, seconds limit = seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(milliseconds(50));
    }
    return true;
}

class PostgresServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (!PostgresServer::find_binaries())
            GTEST_SKIP() << "the PostgreSQL server binaries are absent (no "
                            "/usr/lib/postgresql/*/bin/initdb); tools/install-deps.sh installs "
                            "them (Debian package postgresql)";
        auto started = PostgresServer::start();
        ASSERT_TRUE(started.ok()) << started.error().describe();
        server_ = std::move(started).value();
    }

    std::unique_ptr<PostgresServer> server_;
};

TEST_F(PostgresServerTest, AnswersOnItsPrivateSocketInANewDatabase) {
    ASSERT_TRUE(server_->create_database("ledger").ok());
    auto two = server_->psql("ledger", "SELECT 1+1");
    ASSERT_TRUE(two.ok()) << two.error().describe();
    EXPECT_EQ(*two, "2");
    EXPECT_EQ(server_->psql("ledger", "SELECT current_database()").value(), "ledger");
    // Honest durability, and no TCP listener: only the socket in the server's directory.
    EXPECT_EQ(server_->psql("postgres", "SHOW fsync").value(), "on");
    EXPECT_EQ(server_->psql("postgres", "SHOW synchronous_commit").value(), "on");
    EXPECT_EQ(server_->psql("postgres", "SHOW listen_addresses").value(), "");
    EXPECT_EQ(server_->psql("postgres", "SHOW server_encoding").value(), "UTF8");
    EXPECT_EQ(server_->psql("postgres", "SELECT 1 UNION ALL SELECT 2").value(), "1\n2");
    EXPECT_TRUE(fs::exists(server_->dir() / (".s.PGSQL." + std::to_string(server_->port()))));
    EXPECT_TRUE(fs::is_regular_file(server_->data_dir() / "PG_VERSION"));
    EXPECT_TRUE(fs::is_regular_file(server_->log_file()));

    const std::string port = std::to_string(server_->port());
    EXPECT_EQ(server_->conninfo("ledger"),
              "host=" + server_->dir().string() + " port=" + port + " user=postgres dbname=ledger");
    EXPECT_EQ(server_->conninfo(), "host=" + server_->dir().string() + " port=" + port +
                                       " user=postgres dbname=postgres");
    std::string host;
    for (const char c : server_->dir().string())
        host += c == '/' ? std::string("%2F") : std::string(1, c);
    EXPECT_EQ(server_->url("ledger"),
              "postgresql:///ledger?host=" + host + "&port=" + port + "&user=postgres");

    // libpq (in psql) reads the URL as it reads the conninfo.
    TempDir dir("pg-url");
    const auto psql = *PostgresServer::find_binaries() / "psql";
    EXPECT_EQ(run_process({psql.string(), "-X", "-At", "-d", server_->url("ledger"), "-c",
                           "SELECT current_database()"},
                          dir / "log"),
              0)
        << read_text(dir / "log");
    EXPECT_EQ(read_text(dir / "log"), "ledger\n");
}

TEST_F(PostgresServerTest, QuotesNamesAndReportsTheServersErrors) {
    // A name that needs quoting is kept exactly as given, in SQL and in the conninfo.
    ASSERT_TRUE(server_->create_database("Ledger two").ok());
    EXPECT_EQ(server_->psql("Ledger two", "SELECT current_database()").value(), "Ledger two");
    EXPECT_NE(server_->conninfo("Ledger two").find("dbname='Ledger two'"), std::string::npos);

    auto bad = server_->psql("postgres", "SELECT * FROM no_such_table");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("no_such_table"), std::string::npos) << bad.error().message;
    auto nodb = server_->psql("no_such_db", "SELECT 1");
    ASSERT_FALSE(nodb.ok());
    EXPECT_EQ(nodb.error().code, ErrorCode::kUnavailable) << nodb.error().describe();
    // The same name twice: the server's error, not a silent success.
    auto twice = server_->create_database("Ledger two");
    ASSERT_FALSE(twice.ok());
    EXPECT_NE(twice.error().message.find("already exists"), std::string::npos)
        << twice.error().message;
}

TEST_F(PostgresServerTest, KeepsCommittedRowsAcrossARestart) {
    ASSERT_TRUE(server_->create_database("ledger").ok());
    auto made = server_->psql("ledger",
                              "CREATE TABLE serials (n bigint PRIMARY KEY, die text NOT NULL);"
                              "INSERT INTO serials VALUES (1, 'W1-x3y4'), (2, 'W1-x5y6')");
    ASSERT_TRUE(made.ok()) << made.error().describe();

    auto restarted = server_->restart();
    ASSERT_TRUE(restarted.ok()) << restarted.error().describe();
    EXPECT_EQ(server_->psql("ledger", "SELECT n, die FROM serials ORDER BY n").value(),
              "1|W1-x3y4\n2|W1-x5y6");

    // Stopped, the server refuses connections; started again, the rows are still there.
    ASSERT_TRUE(server_->stop().ok());
    auto down = server_->psql("ledger", "SELECT 1");
    ASSERT_FALSE(down.ok());
    EXPECT_EQ(down.error().code, ErrorCode::kUnavailable) << down.error().describe();
    // A failed step names itself and quotes pg_ctl and the server log.
    auto twice = server_->stop();
    ASSERT_FALSE(twice.ok());
    EXPECT_NE(twice.error().message.find("pg_ctl stop"), std::string::npos)
        << twice.error().message;
    EXPECT_NE(twice.error().message.find("server log: "), std::string::npos)
        << twice.error().message;
    auto again = server_->start_again();
    ASSERT_TRUE(again.ok()) << again.error().describe();
    EXPECT_EQ(server_->psql("ledger", "SELECT count(*) FROM serials").value(), "2");
}

TEST_F(PostgresServerTest, TerminateBackendsEndsAnotherSessionsBackend) {
    ASSERT_TRUE(server_->create_database("ledger").ok());
    TempDir dir("pg-sleeper");
    const auto psql = *PostgresServer::find_binaries() / "psql";
    const pid_t sleeper = spawn_process({psql.string(), "-X", "-At", "-d",
                                         server_->conninfo("ledger"), "-c", "SELECT pg_sleep(30)"},
                                        dir / "log");
    ASSERT_GT(sleeper, 0);
    const bool connected = wait_until([&] {
        auto n = server_->psql("postgres",
                               "SELECT count(*) FROM pg_stat_activity WHERE datname = 'ledger' "
                               "AND query LIKE '%pg_sleep(30)%' AND state = 'active'");
        return n.ok() && *n == "1";
    });
    ASSERT_TRUE(connected) << read_text(dir / "log");

    // A session in another database is left alone.
    auto other = server_->terminate_backends("postgres");
    ASSERT_TRUE(other.ok()) << other.error().describe();
    EXPECT_EQ(*other, 0);
    EXPECT_EQ(poll_process(sleeper), std::nullopt);

    auto ended = server_->terminate_backends("ledger");
    ASSERT_TRUE(ended.ok()) << ended.error().describe();
    EXPECT_EQ(*ended, 1);
    // Well before its 30 s sleep would have ended; kProcessTimedOut here means it was not killed.
    const int status = wait_process(sleeper, seconds(20));
    EXPECT_NE(status, kProcessTimedOut);
    EXPECT_NE(status, 0) << read_text(dir / "log");
    EXPECT_NE(read_text(dir / "log").find("terminat"), std::string::npos) << read_text(dir / "log");
    EXPECT_EQ(server_->terminate_backends("ledger").value(), 0);
}

TEST_F(PostgresServerTest, DestructorStopsTheServerAndRemovesItsDirectory) {
    const fs::path dir = server_->dir();
    std::ifstream pid_file(server_->data_dir() / "postmaster.pid");
    pid_t postmaster = -1;
    ASSERT_TRUE(pid_file >> postmaster);
    ASSERT_TRUE(process_alive(postmaster));

    server_.reset();
    EXPECT_FALSE(fs::exists(dir));
    EXPECT_TRUE(wait_until([&] { return !process_alive(postmaster); }))
        << "postmaster " << postmaster << " still runs";
}

}  // namespace
}  // namespace waferprov::testing
