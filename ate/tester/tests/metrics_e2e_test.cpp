// `serve --metrics` end to end (no mocks): a real `waferprov serve` with its Prometheus
// exporter, the real tester simulator programming a wafer with failures and retests, the
// endpoint scraped with curl while the wafer runs and after, and every counter checked against
// what the ledger file itself records (SQLite, read independently of the ledger code).
#include <sqlite3.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <regex>
#include <sstream>

#include "e2e_support.hpp"
#include "waferprov/testing/metrics_scrape.hpp"

using namespace waferprov;
using namespace waferprov::tester::e2e;

namespace {

using waferprov::testing::exposition_sample;

std::string scrape(const std::string& url, const fs::path& dir, std::string* why = nullptr) {
    return waferprov::testing::http_get(url, dir, why);
}

// The URL serve printed ("metrics on URL").
std::string metrics_url(const std::string& logs) {
    std::smatch m;
    static const std::regex re(R"(metrics on (http://127\.0\.0\.1:[0-9]+/metrics))");
    return std::regex_search(logs, m, re) ? m[1].str() : "";
}

// One number from the ledger file: SQL giving one integer.
int64_t ledger_count(const fs::path& ledger, const std::string& sql) {
    sqlite3* db = nullptr;
    int64_t n = -1;
    if (sqlite3_open_v2(ledger.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

constexpr const char* kJob = R"({job="J1"})";

}  // namespace

TEST(MetricsE2E, CountersMatchTheLedgerAfterAWaferWithFailuresAndRetests) {
    JobSetup job("metrics_e2e", 50);
    ASSERT_GT(job.dies, 100u);
    Server server(job.job_toml(), job.tmp.path());
    ASSERT_FALSE(server.start("tcp://127.0.0.1:0", {"--metrics", "127.0.0.1:0"}).empty())
        << server.failure();
    const std::string url = metrics_url(server.logs());
    ASSERT_FALSE(url.empty()) << server.logs();

    // Before any tester: the series exist at zero, the quota is the ledger's, nobody works.
    std::string why;
    std::string text = scrape(url, job.tmp.path(), &why);
    ASSERT_FALSE(text.empty()) << why;
    const int64_t left_before = ledger_count(job.ledger(), "SELECT quota - quota_used FROM job");
    ASSERT_GT(left_before, 0);
    EXPECT_EQ(exposition_sample(text, std::string("waferprov_quota_left_identities") + kJob),
              left_before)
        << text;
    EXPECT_EQ(exposition_sample(text, std::string("waferprov_identities_delivered_total") + kJob),
              0)
        << text;
    EXPECT_EQ(exposition_sample(text, R"(waferprov_sessions_open{job="J1",tester="SIM-01"})"), 0)
        << text;
    EXPECT_EQ(exposition_sample(text, R"(waferprov_equipment_state{state="standby"})"), 1) << text;

    // The wafer, scraped while it runs: every counter only grows.
    const fs::path log = job.tmp.path() / "tester.log";
    Child tester(spawn(kTester,
                       job.tester_args(server.endpoint(), 8,
                                       {"--fail-rate", "0.3", "--retest-rate", "1", "--seed", "7"}),
                       log));
    ASSERT_GT(tester.pid(), 0);
    const char* counters[] = {
        "waferprov_identities_issued_total", "waferprov_identities_delivered_total",
        "waferprov_identities_programmed_total", "waferprov_identities_failed_total"};
    std::map<std::string, double> last;
    int scrapes_during = 0;
    while (tester.running()) {
        const std::string during = scrape(url, job.tmp.path(), &why);
        ASSERT_FALSE(during.empty()) << why;
        ++scrapes_during;
        for (const char* c : counters) {
            const double v = exposition_sample(during, std::string(c) + kJob);
            EXPECT_GE(v, last[c]) << c << " went down";
            last[c] = v;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(tester.wait(std::chrono::seconds(10)), 0) << read_text(log) << server.logs();
    std::cout << scrapes_during << " scrape(s) while the tester ran\n";

    // After the wafer: the counters against the ledger's own records.
    text = scrape(url, job.tmp.path(), &why);
    ASSERT_FALSE(text.empty()) << why;
    EXPECT_EQ(server.stop(), 0) << server.logs();

    const fs::path ledger = job.ledger();
    const int64_t issue = ledger_count(ledger, "SELECT count(*) FROM events WHERE type = 'ISSUE'");
    // Deliveries of dies: each DELIVER event lists its touchdown's dies.
    const int64_t deliver =
        ledger_count(ledger,
                     "SELECT count(*) FROM events, json_each(events.payload, '$.dies') "
                     "WHERE events.type = 'DELIVER'");
    const int64_t programmed =
        ledger_count(ledger,
                     "SELECT count(*) FROM events WHERE type = 'RESULT' AND "
                     "CAST(payload AS TEXT) LIKE '%\"state\":\"PROGRAMMED\"%'");
    const int64_t failed = ledger_count(ledger,
                                        "SELECT count(*) FROM events WHERE type = 'RESULT' AND "
                                        "CAST(payload AS TEXT) LIKE '%\"state\":\"FAILED\"%'");
    const int64_t quota = ledger_count(ledger, "SELECT quota FROM job");
    const int64_t used = ledger_count(ledger, "SELECT quota_used FROM job");
    ASSERT_GT(issue, 0);
    ASSERT_GT(failed, 0) << "the simulator's --fail-rate should fail some dies";
    EXPECT_GT(deliver, static_cast<int64_t>(job.dies)) << "retested dies are delivered again";

    EXPECT_EQ(exposition_sample(text, std::string("waferprov_identities_issued_total") + kJob),
              issue)
        << text;
    EXPECT_EQ(used, issue);
    EXPECT_EQ(exposition_sample(text, std::string("waferprov_quota_left_identities") + kJob),
              quota - used)
        << text;
    EXPECT_EQ(exposition_sample(text, std::string("waferprov_identities_delivered_total") + kJob),
              deliver)
        << text;
    EXPECT_EQ(exposition_sample(text, std::string("waferprov_identities_programmed_total") + kJob),
              programmed)
        << text;
    EXPECT_EQ(exposition_sample(text, std::string("waferprov_identities_failed_total") + kJob),
              failed)
        << text;
    // Every delivery got its result: delivered = programmed + failed, as the ledger counts them.
    EXPECT_EQ(deliver, programmed + failed);
    // The counts the simulator made on its side agree (dies it programmed at their last test).
    const json s = job.summary();
    EXPECT_EQ(static_cast<int64_t>(job.counts().programmed), s["programmed"].get<int64_t>());
    // One latency sample per TOUCHDOWN the simulator sent.
    EXPECT_EQ(
        exposition_sample(text, std::string("waferprov_touchdown_duration_seconds_count") + kJob),
        s["latency_ms"]["calls"].get<double>())
        << text;
    // Every commit that issued, delivered or recorded a result was timed.
    EXPECT_GE(exposition_sample(
                  text, std::string("waferprov_ledger_commit_duration_seconds_count") + kJob),
              1)
        << text;
    // Refusals by code, as the simulator counted the sites refused to it.
    for (const auto& [code, n] : s["refused"].items())
        EXPECT_EQ(exposition_sample(text, R"(waferprov_refusals_total{code=")" + code +
                                              R"(",job="J1",tester="SIM-01"})"),
                  n.get<double>())
            << code << "\n"
            << text;
    // The tester said BYE; exactly one E10 state holds, and the host did work just now.
    EXPECT_EQ(exposition_sample(text, R"(waferprov_sessions_open{job="J1",tester="SIM-01"})"), 0)
        << text;
    double states = 0;
    for (const char* st : {"productive", "standby", "engineering", "scheduled_down",
                           "unscheduled_down", "non_scheduled"})
        states += exposition_sample(
            text, std::string(R"(waferprov_equipment_state{state=")") + st + "\"}");
    EXPECT_EQ(states, 1) << text;
    EXPECT_EQ(exposition_sample(text, R"(waferprov_equipment_state{state="unscheduled_down"})"), 0)
        << text;
}

TEST(MetricsE2E, ABadAddressOrAPortInUseIsNamed) {
    JobSetup job("metrics_e2e_bad", 20);
    const bool had_ledger = fs::exists(job.ledger());
    // A port this test holds open.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(fd, 1), 0);
    socklen_t len = sizeof a;
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
    const std::string taken = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));

    const fs::path log = job.tmp.path() / "serve.log";
    EXPECT_EQ(run(kWaferprov,
                  {"serve", "--job", job.job_toml().string(), "--bind", "tcp://127.0.0.1:0",
                   "--metrics", taken},
                  log),
              1)
        << read_text(log);
    EXPECT_NE(read_text(log).find("cannot listen on " + taken + ": the port is in use"),
              std::string::npos)
        << read_text(log);
    ::close(fd);

    fs::remove(log);
    EXPECT_EQ(run(kWaferprov,
                  {"serve", "--job", job.job_toml().string(), "--bind", "tcp://127.0.0.1:0",
                   "--metrics", "prometheus.example:9464"},
                  log),
              1)
        << read_text(log);
    EXPECT_NE(read_text(log).find("'prometheus.example' is not a numeric IPv4 address"),
              std::string::npos)
        << read_text(log);
    // run takes --metrics too, and checks it before it opens the ledger.
    fs::remove(log);
    EXPECT_EQ(run(kWaferprov,
                  {"run", "--job", job.job_toml().string(), "--map", job.map.string(),
                   "--no-progress", "--metrics", "127.0.0.1:99999"},
                  log),
              1)
        << read_text(log);
    EXPECT_NE(read_text(log).find("the port must be a number 0..65535"), std::string::npos)
        << read_text(log);
    EXPECT_EQ(fs::exists(job.ledger()), had_ledger) << "a refused --metrics must open no ledger";
}
