// host/metrics on its own: the series it registers and what it counts, the E10 state rules on a
// stepped clock, the --metrics address checks, and the exposition text scraped over loopback
// HTTP with the real curl binary (the prometheus-cpp exposer is not stood in for).
#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include "waferprov/host/metrics.hpp"
#include "waferprov/testing/metrics_scrape.hpp"
#include "waferprov/testing/process.hpp"
#include "waferprov/testing/temp_dir.hpp"

using namespace waferprov;
using namespace waferprov::host;
using protocol::StatusCode;

namespace {

Job job_with_testers(const std::string& id, std::vector<TesterKey> testers) {
    Job j;
    j.id = id;
    j.testers = std::move(testers);
    return j;
}

protocol::TouchdownResult answer(std::vector<StatusCode> codes) {
    protocol::TouchdownResult r;
    uint16_t site = 0;
    for (auto c : codes) {
        protocol::SiteResponse s;
        s.site = site++;
        s.status = c;
        r.sites.push_back(s);
    }
    return r;
}

using waferprov::testing::exposition_sample;

// GET `url` with curl; the body ("" and a test failure if curl fails).
std::string scrape(const std::string& url) {
    waferprov::testing::TempDir tmp("metrics_scrape");
    std::string why;
    const std::string body = waferprov::testing::http_get(url, tmp.path(), &why);
    EXPECT_TRUE(why.empty()) << why;
    return body;
}

}  // namespace

TEST(MetricsAddress, AcceptsNumericHostsAndNamesWhatIsWrong) {
    EXPECT_EQ(*parse_metrics_address("127.0.0.1:9464"), "127.0.0.1:9464");
    EXPECT_EQ(*parse_metrics_address("localhost:0"), "127.0.0.1:0");
    EXPECT_EQ(*parse_metrics_address("[::1]:9464"), "[::1]:9464");
    EXPECT_EQ(*parse_metrics_address("0.0.0.0:65535"), "0.0.0.0:65535");
    const std::pair<const char*, const char*> bad[] = {
        {"9464", "no HOST:PORT"},
        {":9464", "no HOST:PORT"},
        {"127.0.0.1:", "port"},
        {"127.0.0.1:65536", "port"},
        {"127.0.0.1:94x", "port"},
        {"metrics.example:9464", "'metrics.example' is not a numeric IPv4 address"},
        {"[::1:9464", "not an IPv6 address"},
        {"300.1.1.1:80", "'300.1.1.1' is not a numeric IPv4 address"},
    };
    for (const auto& [text, why] : bad) {
        auto r = parse_metrics_address(text);
        ASSERT_FALSE(r.ok()) << text;
        EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << text;
        EXPECT_NE(r.error().message.find(text), std::string::npos) << r.error().message;
        EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
    }
}

TEST(Metrics, CountsWhatTheServiceReports) {
    Metrics m;
    m.add_job(job_with_testers("J1", {{"SIM-01", "KEY1"}, {"SIM-02", "KEY2"}}));
    // Registered at zero before anything happens.
    std::string t = m.text();
    EXPECT_EQ(exposition_sample(t, R"(waferprov_identities_delivered_total{job="J1"})"), 0) << t;
    EXPECT_EQ(exposition_sample(t, R"(waferprov_sessions_open{job="J1",tester="SIM-02"})"), 0) << t;

    m.job_opened("J1", 100);
    m.session_opened("J1", "SIM-01");
    m.session_opened("J1", "SIM-01");
    m.session_opened("J1", "SIM-02");
    m.session_closed("J1", "SIM-01");
    m.session_opened("J1", "NOT-LISTED");  // an --insecure link: bounded label
    // Two commits issuing 3 then 2 identities, one that issues none (a group commit of four
    // testers' deliveries).
    m.ledger_committed("J1", 0.002, 97, 1);
    m.ledger_committed("J1", 0.004, 95, 1);
    m.ledger_committed("J1", 0.0005, 95, 4);
    m.touchdown_answered(
        "J1", "SIM-01",
        answer({StatusCode::kOk, StatusCode::kReissued, StatusCode::kNotOnMap, StatusCode::kOk}),
        0.012);
    m.touchdown_answered("J1", "SIM-02", answer({StatusCode::kNotOnMap}), 0.003);
    protocol::ResultsAck ack;
    ack.sites.resize(2);
    ack.sites[1].status = StatusCode::kNotDelivered;
    m.results_answered("J1", "SIM-01", protocol::Results{}, ack);
    m.result_recorded("J1", true);
    m.result_recorded("J1", true);
    m.result_recorded("J1", false);
    m.frame_refused("KEY2", StatusCode::kSequenceReused);
    m.frame_refused("", StatusCode::kBadFrame);

    t = m.text();
    EXPECT_EQ(exposition_sample(t, R"(waferprov_identities_issued_total{job="J1"})"), 5) << t;
    EXPECT_EQ(exposition_sample(t, R"(waferprov_identities_delivered_total{job="J1"})"), 3) << t;
    EXPECT_EQ(exposition_sample(t, R"(waferprov_identities_programmed_total{job="J1"})"), 2) << t;
    EXPECT_EQ(exposition_sample(t, R"(waferprov_identities_failed_total{job="J1"})"), 1) << t;
    EXPECT_EQ(exposition_sample(t, R"(waferprov_quota_left_identities{job="J1"})"), 95) << t;
    EXPECT_EQ(exposition_sample(t, R"(waferprov_ledger_commit_requests_total{job="J1"})"), 6) << t;
    EXPECT_EQ(exposition_sample(t, R"(waferprov_ledger_commit_duration_seconds_count{job="J1"})"),
              3)
        << t;
    EXPECT_EQ(exposition_sample(t, R"(waferprov_sessions_open{job="J1",tester="SIM-01"})"), 1) << t;
    EXPECT_EQ(exposition_sample(t, R"(waferprov_sessions_open{job="J1",tester="SIM-02"})"), 1) << t;
    EXPECT_EQ(exposition_sample(t, R"(waferprov_sessions_open{job="J1",tester="unlisted"})"), 1)
        << t;
    EXPECT_EQ(exposition_sample(
                  t, R"(waferprov_refusals_total{code="NOT_ON_MAP",job="J1",tester="SIM-01"})"),
              1)
        << t;
    EXPECT_EQ(exposition_sample(
                  t, R"(waferprov_refusals_total{code="NOT_ON_MAP",job="J1",tester="SIM-02"})"),
              1)
        << t;
    EXPECT_EQ(exposition_sample(
                  t, R"(waferprov_refusals_total{code="NOT_DELIVERED",job="J1",tester="SIM-01"})"),
              1)
        << t;
    EXPECT_EQ(
        exposition_sample(
            t, R"(waferprov_refusals_total{code="SEQUENCE_REUSED",job="J1",tester="SIM-02"})"),
        1)
        << t;
    EXPECT_EQ(
        exposition_sample(t, R"(waferprov_refusals_total{code="BAD_FRAME",job="",tester=""})"), 1)
        << t;
    // Histograms: cumulative buckets, count and sum.
    EXPECT_EQ(exposition_sample(t, R"(waferprov_touchdown_duration_seconds_count{job="J1"})"), 2)
        << t;
    EXPECT_EQ(
        exposition_sample(t, R"(waferprov_touchdown_duration_seconds_bucket{job="J1",le="0.005"})"),
        1)
        << t;
    EXPECT_EQ(
        exposition_sample(t, R"(waferprov_touchdown_duration_seconds_bucket{job="J1",le="0.025"})"),
        2)
        << t;
    EXPECT_NEAR(exposition_sample(t, R"(waferprov_touchdown_duration_seconds_sum{job="J1"})"),
                0.015, 1e-9);
    EXPECT_EQ(exposition_sample(t, R"(waferprov_ledger_commit_duration_seconds_count{job="J1"})"),
              3)
        << t;
    EXPECT_EQ(exposition_sample(
                  t, R"(waferprov_ledger_commit_duration_seconds_bucket{job="J1",le="0.001"})"),
              1)
        << t;
    // Every metric has its HELP and TYPE.
    for (const char* name :
         {"waferprov_identities_issued_total", "waferprov_refusals_total", "waferprov_errors_total",
          "waferprov_quota_left_identities", "waferprov_sessions_open",
          "waferprov_touchdown_duration_seconds", "waferprov_ledger_commit_duration_seconds",
          "waferprov_equipment_state"})
        EXPECT_NE(t.find(std::string("# TYPE ") + name + " "), std::string::npos) << name;
}

TEST(Metrics, EquipmentStateFollowsTheE10Rules) {
    auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
    MetricsOptions o;
    o.productive_window = std::chrono::seconds(60);
    o.now = [&now] { return now; };
    Metrics m(o);
    m.add_job(job_with_testers("J1", {{"SIM-01", "KEY1"}}));
    EXPECT_EQ(m.state(), EquipmentState::kStandby);  // quota not known yet: not "spent"
    m.job_opened("J1", 10);
    EXPECT_EQ(m.state(), EquipmentState::kStandby);
    m.touchdown_answered("J1", "SIM-01", answer({StatusCode::kOk}), 0.01);
    EXPECT_EQ(m.state(), EquipmentState::kProductive);
    now += std::chrono::seconds(59);
    EXPECT_EQ(m.state(), EquipmentState::kProductive);
    now += std::chrono::seconds(2);
    EXPECT_EQ(m.state(), EquipmentState::kStandby);
    // A request the host failed: unscheduled down until the job answers one again.
    m.request_failed("J1", "SIM-01");
    EXPECT_EQ(m.state(), EquipmentState::kUnscheduledDown);
    now += std::chrono::hours(1);
    EXPECT_EQ(m.state(), EquipmentState::kUnscheduledDown);
    EXPECT_NE(m.text().find(R"(waferprov_errors_total{code="INTERNAL",job="J1"} 1)"),
              std::string::npos)
        << m.text();
    // A card whose key fails the curve check (a site answered INTERNAL) is a fault too.
    m.touchdown_answered("J1", "SIM-01", answer({StatusCode::kInternal}), 0.01);
    EXPECT_EQ(m.state(), EquipmentState::kUnscheduledDown);
    m.touchdown_answered("J1", "SIM-01", answer({StatusCode::kOk}), 0.01);
    EXPECT_EQ(m.state(), EquipmentState::kProductive);
    // The quota spent, and idle: scheduled down (nothing new can be issued).
    m.ledger_committed("J1", 0.001, 0, 1);
    EXPECT_EQ(m.state(), EquipmentState::kProductive);
    now += std::chrono::minutes(5);
    EXPECT_EQ(m.state(), EquipmentState::kScheduledDown);
    const std::string t = m.text();
    EXPECT_EQ(exposition_sample(t, R"(waferprov_equipment_state{state="scheduled_down"})"), 1) << t;
    for (const char* s :
         {"productive", "standby", "engineering", "unscheduled_down", "non_scheduled"})
        EXPECT_EQ(
            exposition_sample(t, std::string(R"(waferprov_equipment_state{state=")") + s + "\"}"),
            0)
            << s << "\n"
            << t;
    m.stopping();
    EXPECT_EQ(m.state(), EquipmentState::kNonScheduled);

    MetricsOptions eng = o;
    eng.engineering = true;
    Metrics dev(eng);
    dev.touchdown_answered("J1", "SIM-01", answer({StatusCode::kOk}), 0.01);
    EXPECT_EQ(dev.state(), EquipmentState::kEngineering);
}

TEST(Metrics, ServesTheExpositionFormatOverLoopbackHttp) {
    Metrics m;
    m.add_job(job_with_testers("J1", {{"SIM-01", "KEY1"}}));
    ASSERT_TRUE(m.listen("127.0.0.1:0").ok());
    const std::regex url(R"(http://127\.0\.0\.1:([0-9]+)/metrics)");
    std::smatch match;
    const std::string u = m.url();
    ASSERT_TRUE(std::regex_match(u, match, url)) << u;
    EXPECT_NE(match[1], "0");

    m.job_opened("J1", 50);
    m.ledger_committed("J1", 0.001, 42, 1);
    m.touchdown_answered("J1", "SIM-01", answer({StatusCode::kOk, StatusCode::kQuotaExhausted}),
                         0.02);
    const std::string body = scrape(u);
    EXPECT_EQ(exposition_sample(body, R"(waferprov_identities_issued_total{job="J1"})"), 8) << body;
    EXPECT_EQ(exposition_sample(body, R"(waferprov_quota_left_identities{job="J1"})"), 42) << body;
    EXPECT_EQ(exposition_sample(body, R"(waferprov_identities_delivered_total{job="J1"})"), 1)
        << body;
    EXPECT_EQ(
        exposition_sample(
            body, R"(waferprov_refusals_total{code="QUOTA_EXHAUSTED",job="J1",tester="SIM-01"})"),
        1)
        << body;
    EXPECT_EQ(exposition_sample(body, R"(waferprov_equipment_state{state="productive"})"), 1)
        << body;
    EXPECT_NE(body.find("# TYPE waferprov_touchdown_duration_seconds histogram"), std::string::npos)
        << body;

    // The port is taken now: a second exporter on it is refused, naming the address and why.
    const std::string taken = u.substr(7, u.size() - 7 - 8);  // "127.0.0.1:PORT"
    Metrics other;
    const auto st = other.listen(taken);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find(taken), std::string::npos) << st.error().message;
    EXPECT_NE(st.error().message.find("in use"), std::string::npos) << st.error().message;
    // An address that is not this host's.
    const auto foreign = other.listen("192.0.2.1:9464");
    ASSERT_FALSE(foreign.ok());
    EXPECT_NE(foreign.error().message.find("192.0.2.1:9464"), std::string::npos);
    EXPECT_NE(foreign.error().message.find("not one of this host's"), std::string::npos)
        << foreign.error().message;
}
