// libwaferprov_ate.so without a real server: status texts, key files, argument checks, timeouts
// against an endpoint nobody listens on, and the client's protocol logic against a scripted
// host (request-id matching, resends, answer checks, re-HELLO). ate_server_test runs it
// against `waferprov serve`.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "scripted_host.hpp"
#include "waferprov/host/curve_keys.hpp"
#include "waferprov/test_vectors.hpp"
#include "waferprov/testing/temp_dir.hpp"
#include "waferprov_ate.h"

namespace waferprov::ate_test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const int kAllStatuses[] = {
    WP_ATE_OK,
    WP_ATE_E_INVALID_ARGUMENT,
    WP_ATE_E_TIMEOUT,
    WP_ATE_E_CONNECT,
    WP_ATE_E_PROTOCOL,
    WP_ATE_E_NO_MEMORY,
    WP_ATE_E_IO,
    WP_ATE_E_CLOSED,
    WP_ATE_E_INTERNAL,
    WP_ATE_S_REISSUED,
    WP_ATE_S_BAD_FRAME,
    WP_ATE_S_TRUNCATED,
    WP_ATE_S_OVERSIZED,
    WP_ATE_S_UNKNOWN_KIND,
    WP_ATE_S_UNSUPPORTED_VERSION,
    WP_ATE_S_BAD_FIELD,
    WP_ATE_S_UNEXPECTED_KIND,
    WP_ATE_S_NOT_ADMITTED,
    WP_ATE_S_UNKNOWN_JOB,
    WP_ATE_S_NO_SESSION,
    WP_ATE_S_BUSY,
    WP_ATE_S_SHUTTING_DOWN,
    WP_ATE_S_SEQUENCE_REUSED,
    WP_ATE_S_QUOTA_EXHAUSTED,
    WP_ATE_S_CONFLICT,
    WP_ATE_S_UNKNOWN_UID,
    WP_ATE_S_NOT_DELIVERED,
    WP_ATE_S_DUPLICATE_RESULT,
    WP_ATE_S_VOIDED,
    WP_ATE_S_NO_UID,
    WP_ATE_S_ALREADY_PROGRAMMED,
    WP_ATE_S_NOT_ON_MAP,
    WP_ATE_S_DELIVERY_CAP,
    WP_ATE_S_INTERNAL,
};

// ---- Status texts, version --------------------------------------------------------------------

TEST(AteStatus, EveryCodeHasItsOwnStrerrorText) {
    std::set<std::string> texts;
    for (int s : kAllStatuses) {
        const char* t = wp_ate_strerror(s);
        ASSERT_NE(t, nullptr);
        EXPECT_STRNE(t, "unknown status") << s;
        EXPECT_NE(std::strchr(t, ':'), nullptr) << "NAME: meaning, got " << t;
        texts.insert(t);
    }
    EXPECT_EQ(texts.size(), std::size(kAllStatuses));
    // Every code the protocol defines is one of ours, under the same number and name.
    for (uint16_t c = 0; c < 0x100; ++c) {
        const auto code = static_cast<proto::StatusCode>(c);
        if (!proto::is_known(code) || c == 0) continue;
        const std::string name = proto::to_string(code);
        EXPECT_EQ(std::string(wp_ate_strerror(c)).rfind(name + ":", 0), 0u) << name;
    }
}

TEST(AteStatus, UnknownNumbersAreUnknownStatus) {
    for (int s : {3, 0x17, 0x3d, 0xfe, 0x100, -9, -100, 12345})  // 2, 0x3a..0x3c: 1.2
        EXPECT_STREQ(wp_ate_strerror(s), "unknown status") << s;
}

TEST(AteStatus, VersionAndAbi) {
    EXPECT_EQ(wp_ate_abi_version(), WP_ATE_ABI_VERSION);
    ASSERT_NE(wp_ate_version(), nullptr);
    EXPECT_GT(std::strlen(wp_ate_version()), 0u);
}

TEST(AteStatus, NullHandleCallsAreSafe) {
    wp_ate_close(nullptr);
    EXPECT_EQ(wp_ate_session_id(nullptr), 0u);
    EXPECT_EQ(wp_ate_max_sites(nullptr), 0);
    ASSERT_NE(wp_ate_last_error(nullptr), nullptr);
    wp_ate_site_request site{};
    wp_ate_site_identity id{};
    EXPECT_EQ(wp_ate_touchdown(nullptr, "LOT", 1, 1, &site, 1, &id), WP_ATE_E_INVALID_ARGUMENT);
    EXPECT_STREQ(wp_ate_last_error(nullptr), "handle is NULL");
    wp_ate_site_result result{};
    wp_ate_result_ack ack{};
    EXPECT_EQ(wp_ate_results(nullptr, 1, &result, 1, &ack), WP_ATE_E_INVALID_ARGUMENT);
}

// ---- Key files --------------------------------------------------------------------------------

class AteKeyFile : public ::testing::Test {
protected:
    void SetUp() override {
        auto k = proto::generate_curve_keys();
        ASSERT_TRUE(k.ok());
        keys_ = std::move(k).value();
        ASSERT_TRUE(
            proto::write_curve_key_files(keys_, "ATE-9", secret_file(), public_file()).ok());
    }
    std::filesystem::path secret_file() const { return dir_.path() / "t.key"; }
    std::filesystem::path public_file() const { return dir_.path() / "t.pub"; }

    waferprov::testing::TempDir dir_{"ate_keys"};
    proto::CurveKeyPair keys_;
};

TEST_F(AteKeyFile, ReadsBothKeysFromTheSecretFile) {
    char pub[41], sec[41];
    ASSERT_EQ(wp_ate_read_key_file(secret_file().c_str(), pub, sec), WP_ATE_OK);
    EXPECT_EQ(std::string(pub), keys_.public_z85);
    EXPECT_EQ(std::string(sec), keys_.secret_z85);
}

TEST_F(AteKeyFile, ReadsThePublicKeyOnlyWhenSecretIsNull) {
    char pub[41];
    ASSERT_EQ(wp_ate_read_key_file(public_file().c_str(), pub, nullptr), WP_ATE_OK);
    EXPECT_EQ(std::string(pub), keys_.public_z85);
    ASSERT_EQ(wp_ate_read_key_file(secret_file().c_str(), pub, nullptr), WP_ATE_OK);
    EXPECT_EQ(std::string(pub), keys_.public_z85);
}

TEST_F(AteKeyFile, PublicFileHasNoSecretKey) {
    char pub[41], sec[41];
    EXPECT_EQ(wp_ate_read_key_file(public_file().c_str(), pub, sec), WP_ATE_E_IO);
    EXPECT_NE(std::string(wp_ate_last_error(nullptr)).find("secret-key"), std::string::npos)
        << wp_ate_last_error(nullptr);
    EXPECT_STREQ(sec, "");
}

TEST_F(AteKeyFile, SecretFileReadableByOthersIsRefused) {
    ASSERT_EQ(::chmod(secret_file().c_str(), 0644), 0);
    char pub[41], sec[41];
    EXPECT_EQ(wp_ate_read_key_file(secret_file().c_str(), pub, sec), WP_ATE_E_IO);
    EXPECT_NE(std::string(wp_ate_last_error(nullptr)).find("chmod 600"), std::string::npos)
        << wp_ate_last_error(nullptr);
}

TEST_F(AteKeyFile, MissingOrEmptyFileIsAnIoErrorNamingTheFile) {
    char pub[41];
    const auto missing = dir_.path() / "nope.pub";
    EXPECT_EQ(wp_ate_read_key_file(missing.c_str(), pub, nullptr), WP_ATE_E_IO);
    EXPECT_NE(std::string(wp_ate_last_error(nullptr)).find(missing.string()), std::string::npos);
    const auto empty = dir_.path() / "empty.pub";
    { std::ofstream(empty.string()); }
    EXPECT_EQ(wp_ate_read_key_file(empty.c_str(), pub, nullptr), WP_ATE_E_IO);
    EXPECT_NE(std::string(wp_ate_last_error(nullptr)).find("public-key"), std::string::npos);
}

TEST_F(AteKeyFile, NullArgumentsAreInvalid) {
    char pub[41], sec[41];
    EXPECT_EQ(wp_ate_read_key_file(nullptr, pub, sec), WP_ATE_E_INVALID_ARGUMENT);
    EXPECT_STREQ(wp_ate_last_error(nullptr), "path is NULL");
    EXPECT_EQ(wp_ate_read_key_file(secret_file().c_str(), nullptr, sec), WP_ATE_E_INVALID_ARGUMENT);
    EXPECT_STREQ(wp_ate_last_error(nullptr), "public_z85 is NULL");
}

TEST_F(AteKeyFile, LastErrorIsPerThread) {
    char pub[41];
    EXPECT_EQ(wp_ate_read_key_file(nullptr, pub, nullptr), WP_ATE_E_INVALID_ARGUMENT);
    std::string other;
    std::thread([&] {
        other = wp_ate_last_error(nullptr);
        (void)wp_ate_read_key_file((dir_.path() / "x").c_str(), pub, nullptr);
    }).join();
    EXPECT_EQ(other, "");
    EXPECT_STREQ(wp_ate_last_error(nullptr), "path is NULL");
}

// ---- wp_ate_open without a server -------------------------------------------------------------

// A config with valid CURVE keys for `endpoint`; the strings live as long as the object.
struct Config {
    explicit Config(std::string endpoint_text) : endpoint(std::move(endpoint_text)) {
        auto s = proto::generate_curve_keys();
        auto c = proto::generate_curve_keys();
        server_pub = s->public_z85;
        client_pub = c->public_z85;
        client_sec = c->secret_z85;
        cfg.struct_size = sizeof cfg;
        cfg.endpoint = endpoint.c_str();
        cfg.server_public_key = server_pub.c_str();
        cfg.client_public_key = client_pub.c_str();
        cfg.client_secret_key = client_sec.c_str();
        cfg.tester_id = "ATE-1";
        cfg.job_id = "J1";
        cfg.node_name = "node-1";
        cfg.timeout_ms = 2000;
        cfg.retries = 0;
    }
    // Plain TCP, as against a scripted host without CURVE.
    Config& insecure() {
        cfg.server_public_key = nullptr;
        return *this;
    }
    std::string endpoint, server_pub, client_pub, client_sec;
    wp_ate_config cfg{};
};

// An endpoint on which a connection is refused: a port bound but not listening.
class DeadEndpoint {
public:
    DeadEndpoint() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0)
            endpoint = "tcp://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    }
    ~DeadEndpoint() { ::close(fd_); }
    std::string endpoint;

private:
    int fd_ = -1;
};

TEST(AteOpen, NullOutOrConfigIsInvalid) {
    Config c("tcp://127.0.0.1:1");
    EXPECT_EQ(wp_ate_open(&c.cfg, nullptr), WP_ATE_E_INVALID_ARGUMENT);
    EXPECT_STREQ(wp_ate_last_error(nullptr), "out is NULL");
    wp_ate* h = reinterpret_cast<wp_ate*>(&c);  // not NULL: open must set it to NULL
    EXPECT_EQ(wp_ate_open(nullptr, &h), WP_ATE_E_INVALID_ARGUMENT);
    EXPECT_EQ(h, nullptr);
    EXPECT_STREQ(wp_ate_last_error(nullptr), "config is NULL");
}

// Each bad field of the config is refused before anything is sent, with a text naming it.
TEST(AteOpen, EachBadConfigFieldIsNamed) {
    const std::string long_text(256, 'a');
    const std::string max_text(255, 'a');
    struct Case {
        const char* what;
        std::function<void(wp_ate_config&)> mutate;
        const char* named;
    };
    const std::vector<Case> cases = {
        {"struct_size", [](wp_ate_config& c) { c.struct_size = 8; }, "struct_size"},
        {"endpoint NULL", [](wp_ate_config& c) { c.endpoint = nullptr; }, "endpoint"},
        {"endpoint empty", [](wp_ate_config& c) { c.endpoint = ""; }, "endpoint"},
        {"client public NULL", [](wp_ate_config& c) { c.client_public_key = nullptr; },
         "client_public_key"},
        {"client secret NULL", [](wp_ate_config& c) { c.client_secret_key = nullptr; },
         "client_secret_key"},
        {"server key short", [](wp_ate_config& c) { c.server_public_key = "abc"; },
         "server_public_key"},
        {"client key not Z85",
         [](wp_ate_config& c) { c.client_public_key = "~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~"; },
         "client_public_key"},
        {"secret key 41 chars",
         [](wp_ate_config& c) {
             c.client_secret_key = "0000000000000000000000000000000000000000A";
         },
         "client_secret_key"},
        {"tester NULL", [](wp_ate_config& c) { c.tester_id = nullptr; }, "tester_id"},
        {"tester empty", [](wp_ate_config& c) { c.tester_id = ""; }, "tester_id"},
        {"tester long", [&](wp_ate_config& c) { c.tester_id = long_text.c_str(); }, "tester_id"},
        {"tester not UTF-8", [](wp_ate_config& c) { c.tester_id = "ATE-\xff"; }, "tester_id"},
        {"tester overlong UTF-8", [](wp_ate_config& c) { c.tester_id = "\xc0\xaf"; }, "tester_id"},
        {"job NULL", [](wp_ate_config& c) { c.job_id = nullptr; }, "job_id"},
        {"job empty", [](wp_ate_config& c) { c.job_id = ""; }, "job_id"},
        {"job surrogate", [](wp_ate_config& c) { c.job_id = "J\xed\xa0\x80"; }, "job_id"},
        {"node long", [&](wp_ate_config& c) { c.node_name = long_text.c_str(); }, "node_name"},
        {"node not UTF-8", [](wp_ate_config& c) { c.node_name = "\x80"; }, "node_name"},
    };
    for (const Case& k : cases) {
        Config c("tcp://127.0.0.1:1");
        k.mutate(c.cfg);
        wp_ate* h = nullptr;
        EXPECT_EQ(wp_ate_open(&c.cfg, &h), WP_ATE_E_INVALID_ARGUMENT) << k.what;
        EXPECT_EQ(h, nullptr);
        EXPECT_NE(std::string(wp_ate_last_error(nullptr)).find(k.named), std::string::npos)
            << k.what << ": " << wp_ate_last_error(nullptr);
    }
    // 255 bytes is the protocol's limit, not beyond it: this one gets as far as connecting.
    Config c("not-an-endpoint");
    c.cfg.tester_id = max_text.c_str();
    wp_ate* h = nullptr;
    EXPECT_EQ(wp_ate_open(&c.cfg, &h), WP_ATE_E_CONNECT);
}

TEST(AteOpen, BadEndpointIsAConnectError) {
    for (const char* e :
         {"not-an-endpoint", "tcp://", "tcp://no.such.host.invalid:-5", "bogus://127.0.0.1:5"}) {
        Config c(e);
        wp_ate* h = nullptr;
        EXPECT_EQ(wp_ate_open(&c.cfg, &h), WP_ATE_E_CONNECT) << e;
        EXPECT_EQ(h, nullptr);
        EXPECT_NE(std::string(wp_ate_last_error(nullptr)).find(e), std::string::npos)
            << wp_ate_last_error(nullptr);
    }
}

TEST(AteOpen, TimesOutAfterEveryRetryWhenNobodyListens) {
    DeadEndpoint dead;
    ASSERT_FALSE(dead.endpoint.empty());
    Config c(dead.endpoint);
    c.cfg.timeout_ms = 200;
    c.cfg.retries = 2;
    wp_ate* h = nullptr;
    const auto t0 = Clock::now();
    EXPECT_EQ(wp_ate_open(&c.cfg, &h), WP_ATE_E_TIMEOUT);
    const auto took = Clock::now() - t0;
    EXPECT_EQ(h, nullptr);
    EXPECT_GE(took, milliseconds(580));  // 3 attempts of 200 ms
    EXPECT_LT(took, milliseconds(3000));
    const std::string text = wp_ate_last_error(nullptr);
    EXPECT_NE(text.find("HELLO"), std::string::npos) << text;
    EXPECT_NE(text.find(dead.endpoint), std::string::npos) << text;
    EXPECT_NE(text.find("3 attempts"), std::string::npos) << text;
}

// ---- Against a scripted host -------------------------------------------------------------------

using Message = ScriptedHost::Message;

proto::Frame answer_for(const proto::Frame& request) { return ScriptedHost::answer(request); }

// Opens a handle on `host` (plain TCP unless the host speaks CURVE).
wp_ate* open_on(const ScriptedHost& host, int timeout_ms = 2000, int retries = 0) {
    Config c(host.endpoint());
    if (host.server_public().empty()) {
        c.insecure();
    } else {
        c.server_pub = host.server_public();
        c.cfg.server_public_key = c.server_pub.c_str();
    }
    c.cfg.timeout_ms = timeout_ms;
    c.cfg.retries = retries;
    wp_ate* h = nullptr;
    const int rc = wp_ate_open(&c.cfg, &h);
    EXPECT_EQ(rc, WP_ATE_OK) << wp_ate_strerror(rc) << ": " << wp_ate_last_error(nullptr);
    return h;
}

struct Handle {
    explicit Handle(wp_ate* handle) : h(handle) {}
    ~Handle() { wp_ate_close(h); }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    wp_ate* h;
};

std::vector<wp_ate_site_request> sites_at(std::initializer_list<uint16_t> numbers) {
    std::vector<wp_ate_site_request> v;
    for (uint16_t n : numbers) {
        wp_ate_site_request s{};
        s.site = n;
        s.x = 10 + n;
        s.y = -3;
        v.push_back(s);
    }
    return v;
}

template <class T>
std::vector<proto::Frame> of_kind(const std::vector<proto::Frame>& frames) {
    std::vector<proto::Frame> out;
    for (const auto& f : frames)
        if (std::holds_alternative<T>(f.message)) out.push_back(f);
    return out;
}

TEST(AteScripted, HelloCarriesTheConfigAndHelloOkSetsTheSession) {
    ScriptedHost host(ScriptedHost::well_behaved);
    Handle h(open_on(host));
    ASSERT_NE(h.h, nullptr);
    EXPECT_EQ(wp_ate_session_id(h.h), ScriptedHost::kSessionId);
    EXPECT_EQ(wp_ate_max_sites(h.h), ScriptedHost::kMaxSites);
    EXPECT_STREQ(wp_ate_last_error(h.h), "");
    const auto hellos = of_kind<proto::Hello>(host.requests());
    ASSERT_EQ(hellos.size(), 1u);
    EXPECT_EQ(hellos[0].minor, proto::kVersionMinor);
    EXPECT_NE(hellos[0].request_id, 0u);
    const auto& hello = std::get<proto::Hello>(hellos[0].message);
    EXPECT_EQ(hello.tester_id, "ATE-1");
    EXPECT_EQ(hello.job_id, "J1");
    EXPECT_EQ(hello.node_name, "node-1");
    EXPECT_EQ(hello.client_version, wp_ate_version());
}

TEST(AteScripted, NullNodeNameIsThisHostsName) {
    ScriptedHost host(ScriptedHost::well_behaved);
    Config c(host.endpoint());
    c.insecure();
    c.cfg.node_name = nullptr;
    wp_ate* raw = nullptr;
    ASSERT_EQ(wp_ate_open(&c.cfg, &raw), WP_ATE_OK) << wp_ate_last_error(nullptr);
    Handle h(raw);
    char name[256] = {};
    ASSERT_EQ(gethostname(name, sizeof name - 1), 0);
    EXPECT_EQ(std::get<proto::Hello>(host.requests().at(0).message).node_name, name);
}

TEST(AteScripted, CurveHandshakeAndTouchdown) {
    ScriptedHost host(ScriptedHost::well_behaved, /*curve=*/true);
    Handle h(open_on(host));
    ASSERT_NE(h.h, nullptr);
    auto sites = sites_at({0, 1});
    wp_ate_site_identity ids[2];
    EXPECT_EQ(wp_ate_touchdown(h.h, "LOT1", 3, 1, sites.data(), sites.size(), ids), WP_ATE_OK)
        << wp_ate_last_error(h.h);
}

TEST(AteScripted, CurveWithTheWrongServerKeyTimesOut) {
    ScriptedHost host(ScriptedHost::well_behaved, /*curve=*/true);
    Config c(host.endpoint());  // a server key that is not the host's
    c.cfg.timeout_ms = 300;
    wp_ate* h = nullptr;
    EXPECT_EQ(wp_ate_open(&c.cfg, &h), WP_ATE_E_TIMEOUT);
    EXPECT_EQ(h, nullptr);
    EXPECT_NE(std::string(wp_ate_last_error(nullptr)).find("CURVE key"), std::string::npos)
        << wp_ate_last_error(nullptr);
}

TEST(AteScripted, TouchdownSendsWhatWasAskedAndFillsEveryField) {
    ScriptedHost host(ScriptedHost::well_behaved);
    Handle h(open_on(host));
    ASSERT_NE(h.h, nullptr);
    auto sites = sites_at({5, 2});
    sites[1].has_uid = 1;
    for (int i = 0; i < 16; ++i) sites[1].uid[i] = static_cast<uint8_t>(i);
    wp_ate_site_identity ids[2];
    std::memset(ids, 0xee, sizeof ids);
    ASSERT_EQ(wp_ate_touchdown(h.h, "LOT-α", 7, 42, sites.data(), 2, ids), WP_ATE_OK)
        << wp_ate_last_error(h.h);

    const auto tds = of_kind<proto::Touchdown>(host.requests());
    ASSERT_EQ(tds.size(), 1u);
    const auto& td = std::get<proto::Touchdown>(tds[0].message);
    EXPECT_EQ(td.session_id, ScriptedHost::kSessionId);
    EXPECT_EQ(td.lot, "LOT-α");
    EXPECT_EQ(td.wafer, 7);
    EXPECT_EQ(td.sequence, 42u);
    ASSERT_EQ(td.sites.size(), 2u);
    EXPECT_EQ(td.sites[0].site, 5);
    EXPECT_EQ(td.sites[0].x, 15);
    EXPECT_EQ(td.sites[0].y, -3);
    EXPECT_FALSE(td.sites[0].uid.has_value());
    ASSERT_TRUE(td.sites[1].uid.has_value());
    EXPECT_EQ((*td.sites[1].uid)[15], 15);

    EXPECT_EQ(ids[0].site, 5);
    EXPECT_EQ(ids[0].status, WP_ATE_OK);
    EXPECT_STREQ(ids[0].text, "");
    EXPECT_EQ(ids[0].uid[0], 5);
    EXPECT_EQ(ids[0].key_usage, 1);
    EXPECT_EQ(ids[0].key_algorithm, 1);
    EXPECT_EQ(ids[0].key_version, 1);
    EXPECT_EQ(ids[0].wrapped_key[39], 0xa5);
    EXPECT_EQ(ids[0].certificate_length, 5u);
    EXPECT_EQ(ids[0].certificate[4], 5);
    EXPECT_EQ(ids[0].certificate[5], 0);  // the rest of the struct is zeroed, not stale
    EXPECT_EQ(ids[0].chain_id[31], 0xc0);
    EXPECT_EQ(ids[1].site, 2);
    EXPECT_EQ(std::memcmp(ids[1].uid, sites[1].uid, 16), 0);
}

TEST(AteScripted, AnswersInAnyOrderComeBackInRequestOrder) {
    ScriptedHost host([](const proto::Frame& req, size_t) {
        proto::Frame f = answer_for(req);
        if (auto* r = std::get_if<proto::TouchdownResult>(&f.message))
            std::reverse(r->sites.begin(), r->sites.end());
        if (auto* a = std::get_if<proto::ResultsAck>(&f.message))
            std::reverse(a->sites.begin(), a->sites.end());
        return std::vector<Message>{ScriptedHost::message(f)};
    });
    Handle h(open_on(host));
    ASSERT_NE(h.h, nullptr);
    auto sites = sites_at({3, 0, 7, 1});
    wp_ate_site_identity ids[4];
    ASSERT_EQ(wp_ate_touchdown(h.h, "LOT1", 1, 1, sites.data(), 4, ids), WP_ATE_OK)
        << wp_ate_last_error(h.h);
    wp_ate_site_result results[4];
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(ids[i].site, sites[i].site);
        EXPECT_EQ(ids[i].uid[0], sites[i].site);
        results[i] = wp_ate_site_result{};
        results[i].site = ids[i].site;
        std::memcpy(results[i].uid, ids[i].uid, 16);
        results[i].outcome = i == 2 ? WP_ATE_FAILED : WP_ATE_PROGRAMMED;
        results[i].bin = i == 2 ? "7" : nullptr;
    }
    wp_ate_result_ack acks[4];
    ASSERT_EQ(wp_ate_results(h.h, 1, results, 4, acks), WP_ATE_OK) << wp_ate_last_error(h.h);
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(acks[i].site, sites[i].site);
        EXPECT_EQ(acks[i].status, WP_ATE_OK);
        EXPECT_EQ(std::memcmp(acks[i].uid, ids[i].uid, 16), 0);
    }
    const auto res = of_kind<proto::Results>(host.requests());
    ASSERT_EQ(res.size(), 1u);
    const auto& r = std::get<proto::Results>(res[0].message);
    EXPECT_EQ(r.sites[2].outcome, proto::DieOutcome::kFailed);
    EXPECT_EQ(r.sites[2].bin, "7");
    EXPECT_EQ(r.sites[0].bin, "");
}

TEST(AteScripted, LateAnswersToEarlierRequestsAreDiscarded) {
    ScriptedHost host([](const proto::Frame& req, size_t) {
        std::vector<Message> out;
        if (std::holds_alternative<proto::Touchdown>(req.message)) {
            // First an answer to an older request (a stale one for another sequence), then
            // something that is not WPTL at all, then the real answer.
            proto::Frame stale = answer_for(req);
            stale.request_id = req.request_id - 1;
            std::get<proto::TouchdownResult>(stale.message).sequence = 999;
            out.push_back(ScriptedHost::message(stale));
            out.push_back(Message{Bytes{'j', 'u', 'n', 'k'}});
        }
        out.push_back(ScriptedHost::message(answer_for(req)));
        return out;
    });
    Handle h(open_on(host));
    ASSERT_NE(h.h, nullptr);
    auto sites = sites_at({0});
    wp_ate_site_identity id;
    for (uint32_t seq = 1; seq <= 3; ++seq)
        EXPECT_EQ(wp_ate_touchdown(h.h, "LOT1", 1, seq, sites.data(), 1, &id), WP_ATE_OK)
            << wp_ate_last_error(h.h);
}

TEST(AteScripted, ATimedOutRequestIsResentWithTheSameBytes) {
    // The host ignores the first TOUCHDOWN, answers its resend, then answers the first one
    // late when the next call runs: that late answer must not be taken for the next call's.
    ScriptedHost host([](const proto::Frame& req, size_t index) {
        if (std::holds_alternative<proto::Touchdown>(req.message) && index == 1)
            return std::vector<Message>{};
        return ScriptedHost::well_behaved(req, index);
    });
    Handle h(open_on(host, 300, 1));
    ASSERT_NE(h.h, nullptr);
    auto sites = sites_at({0});
    wp_ate_site_identity id;
    const auto t0 = Clock::now();
    ASSERT_EQ(wp_ate_touchdown(h.h, "LOT1", 1, 1, sites.data(), 1, &id), WP_ATE_OK)
        << wp_ate_last_error(h.h);
    EXPECT_GE(Clock::now() - t0, milliseconds(290));
    const auto tds = of_kind<proto::Touchdown>(host.requests());
    ASSERT_EQ(tds.size(), 2u);
    EXPECT_EQ(tds[0], tds[1]);  // same request id, same content
}

TEST(AteScripted, TimeoutAfterEveryRetry) {
    ScriptedHost host([](const proto::Frame& req, size_t index) {
        if (std::holds_alternative<proto::Touchdown>(req.message)) return std::vector<Message>{};
        return ScriptedHost::well_behaved(req, index);
    });
    Handle h(open_on(host, 150, 2));
    ASSERT_NE(h.h, nullptr);
    auto sites = sites_at({0});
    wp_ate_site_identity id;
    const auto t0 = Clock::now();
    EXPECT_EQ(wp_ate_touchdown(h.h, "LOT1", 1, 1, sites.data(), 1, &id), WP_ATE_E_TIMEOUT);
    const auto took = Clock::now() - t0;
    EXPECT_GE(took, milliseconds(440));
    EXPECT_LT(took, milliseconds(2000));
    EXPECT_EQ(of_kind<proto::Touchdown>(host.requests()).size(), 3u);
    const std::string text = wp_ate_last_error(h.h);
    EXPECT_NE(text.find("TOUCHDOWN: no answer"), std::string::npos) << text;
}

TEST(AteScripted, AHostErrorIsReturnedWithItsText) {
    ScriptedHost host([](const proto::Frame& req, size_t index) {
        if (std::holds_alternative<proto::Touchdown>(req.message)) {
            proto::Frame f{req.request_id, 0,
                           proto::ErrorReply{proto::StatusCode::kBusy, "try again later"}};
            return std::vector<Message>{ScriptedHost::message(f)};
        }
        return ScriptedHost::well_behaved(req, index);
    });
    Handle h(open_on(host));
    ASSERT_NE(h.h, nullptr);
    auto sites = sites_at({0});
    wp_ate_site_identity id;
    EXPECT_EQ(wp_ate_touchdown(h.h, "LOT1", 1, 1, sites.data(), 1, &id), WP_ATE_S_BUSY);
    const std::string text = wp_ate_last_error(h.h);
    EXPECT_NE(text.find("BUSY"), std::string::npos) << text;
    EXPECT_NE(text.find("try again later"), std::string::npos) << text;
}

TEST(AteScripted, AnErrorWithRequestIdZeroAnswersTheRequestInFlight) {
    ScriptedHost host([](const proto::Frame& req, size_t index) {
        if (std::holds_alternative<proto::Touchdown>(req.message)) {
            proto::Frame f{0, 0, proto::ErrorReply{proto::StatusCode::kBadFrame, "bad magic"}};
            return std::vector<Message>{ScriptedHost::message(f)};
        }
        return ScriptedHost::well_behaved(req, index);
    });
    Handle h(open_on(host));
    ASSERT_NE(h.h, nullptr);
    auto sites = sites_at({0});
    wp_ate_site_identity id;
    EXPECT_EQ(wp_ate_touchdown(h.h, "LOT1", 1, 1, sites.data(), 1, &id), WP_ATE_S_BAD_FRAME);
}

// Answers that do not fit their request are WP_ATE_E_PROTOCOL, never filled in.
TEST(AteScripted, MismatchedOrMalformedAnswersAreProtocolErrors) {
    using Mutation = std::function<std::vector<Message>(const proto::Frame& req)>;
    auto td_answer = [](const proto::Frame& req, auto&& change) {
        proto::Frame f = answer_for(req);
        change(std::get<proto::TouchdownResult>(f.message));
        return std::vector<Message>{ScriptedHost::message(f)};
    };
    const std::vector<std::pair<const char*, Mutation>> cases = {
        {"another sequence",
         [&](const proto::Frame& r) {
             return td_answer(r, [](proto::TouchdownResult& a) { a.sequence += 1; });
         }},
        {"a site missing",
         [&](const proto::Frame& r) {
             return td_answer(r, [](proto::TouchdownResult& a) { a.sites.pop_back(); });
         }},
        {"a site not requested",
         [&](const proto::Frame& r) {
             return td_answer(r, [](proto::TouchdownResult& a) { a.sites[0].site = 99; });
         }},
        {"an extra site",
         [&](const proto::Frame& r) {
             return td_answer(r, [](proto::TouchdownResult& a) {
                 a.sites.push_back(a.sites[0]);
                 a.sites.back().site = 98;
             });
         }},
        {"another UID for a die with its own",
         [&](const proto::Frame& r) {
             return td_answer(r, [](proto::TouchdownResult& a) {
                 for (auto& s : a.sites)
                     if (s.site == 1) s.identity->uid[0] ^= 1;
             });
         }},
        {"the wrong kind",
         [](const proto::Frame& r) {
             proto::Frame f{r.request_id, 0, proto::ResultsAck{1, {}}};
             std::get<proto::ResultsAck>(f.message).sites.push_back(
                 proto::ResultAck{0, {}, proto::StatusCode::kOk, ""});
             return std::vector<Message>{ScriptedHost::message(f)};
         }},
        {"truncated bytes",
         [](const proto::Frame& r) {
             Message m = ScriptedHost::message(answer_for(r));
             m[0].resize(m[0].size() - 3);
             return std::vector<Message>{m};
         }},
        {"two message parts",
         [](const proto::Frame& r) {
             Message m = ScriptedHost::message(answer_for(r));
             m.push_back(Bytes{1, 2, 3});
             return std::vector<Message>{m};
         }},
    };
    for (const auto& [what, mutation] : cases) {
        ScriptedHost host([&mutation](const proto::Frame& req, size_t index) {
            if (std::holds_alternative<proto::Touchdown>(req.message)) return mutation(req);
            return ScriptedHost::well_behaved(req, index);
        });
        Handle h(open_on(host));
        ASSERT_NE(h.h, nullptr);
        auto sites = sites_at({0, 1});
        sites[1].has_uid = 1;
        wp_ate_site_identity ids[2];
        EXPECT_EQ(wp_ate_touchdown(h.h, "LOT1", 1, 1, sites.data(), 2, ids), WP_ATE_E_PROTOCOL)
            << what;
        EXPECT_STRNE(wp_ate_last_error(h.h), "") << what;
    }
}

TEST(AteScripted, AnAckForAnotherUidIsAProtocolError) {
    ScriptedHost host([](const proto::Frame& req, size_t index) {
        proto::Frame f = answer_for(req);
        if (auto* a = std::get_if<proto::ResultsAck>(&f.message)) a->sites[0].uid[3] ^= 0xff;
        (void)index;
        return std::vector<Message>{ScriptedHost::message(f)};
    });
    Handle h(open_on(host));
    ASSERT_NE(h.h, nullptr);
    wp_ate_site_result r{};
    r.outcome = WP_ATE_PROGRAMMED;
    wp_ate_result_ack ack;
    EXPECT_EQ(wp_ate_results(h.h, 1, &r, 1, &ack), WP_ATE_E_PROTOCOL);
    EXPECT_NE(std::string(wp_ate_last_error(h.h)).find("UID"), std::string::npos);
}

TEST(AteScripted, AnAnswerBeyondTheFrameLimitIsNeverTaken) {
    // 5 MiB: ZeroMQ drops the connection (ZMQ_MAXMSGSIZE) instead of buffering it.
    ScriptedHost host([](const proto::Frame& req, size_t index) {
        if (std::holds_alternative<proto::Touchdown>(req.message)) {
            Message m = ScriptedHost::message(answer_for(req));
            m[0].resize(size_t{5} << 20);
            return std::vector<Message>{m};
        }
        return ScriptedHost::well_behaved(req, index);
    });
    Handle h(open_on(host, 500, 0));
    ASSERT_NE(h.h, nullptr);
    auto sites = sites_at({0});
    wp_ate_site_identity id;
    EXPECT_EQ(wp_ate_touchdown(h.h, "LOT1", 1, 1, sites.data(), 1, &id), WP_ATE_E_TIMEOUT);
}

// The host restarted: NO_SESSION, a new HELLO, the request resent under the new session with a
// new request id.
TEST(AteScripted, NoSessionOpensANewSessionAndResendsOnce) {
    ScriptedHost host([](const proto::Frame& req, size_t index) {
        proto::Frame f = answer_for(req);
        if (std::holds_alternative<proto::Hello>(req.message) && index > 0)
            std::get<proto::HelloOk>(f.message).session_id = 77;
        if (const auto* td = std::get_if<proto::Touchdown>(&req.message);
            td && td->session_id != 77)
            f.message = proto::ErrorReply{proto::StatusCode::kNoSession, "unknown session"};
        return std::vector<Message>{ScriptedHost::message(f)};
    });
    Handle h(open_on(host));
    ASSERT_NE(h.h, nullptr);
    auto sites = sites_at({0});
    wp_ate_site_identity id;
    ASSERT_EQ(wp_ate_touchdown(h.h, "LOT1", 1, 9, sites.data(), 1, &id), WP_ATE_OK)
        << wp_ate_last_error(h.h);
    EXPECT_EQ(wp_ate_session_id(h.h), 77u);
    const auto reqs = host.requests();
    ASSERT_EQ(reqs.size(), 4u);  // HELLO, TOUCHDOWN, HELLO, TOUCHDOWN
    ASSERT_TRUE(std::holds_alternative<proto::Hello>(reqs[2].message));
    const auto& first = std::get<proto::Touchdown>(reqs[1].message);
    const auto& again = std::get<proto::Touchdown>(reqs[3].message);
    EXPECT_EQ(first.session_id, ScriptedHost::kSessionId);
    EXPECT_EQ(again.session_id, 77u);
    EXPECT_EQ(again.sequence, 9u);
    EXPECT_EQ(again.sites, first.sites);
    EXPECT_NE(reqs[3].request_id, reqs[1].request_id);
}

TEST(AteScripted, NoSessionAgainAfterTheNewHelloIsReturned) {
    ScriptedHost host([](const proto::Frame& req, size_t) {
        proto::Frame f = answer_for(req);
        if (std::holds_alternative<proto::Results>(req.message))
            f.message = proto::ErrorReply{proto::StatusCode::kNoSession, "never"};
        return std::vector<Message>{ScriptedHost::message(f)};
    });
    Handle h(open_on(host));
    ASSERT_NE(h.h, nullptr);
    wp_ate_site_result r{};
    r.outcome = WP_ATE_PROGRAMMED;
    wp_ate_result_ack ack;
    EXPECT_EQ(wp_ate_results(h.h, 1, &r, 1, &ack), WP_ATE_S_NO_SESSION);
    EXPECT_EQ(host.requests().size(), 4u);  // HELLO, RESULTS, HELLO, RESULTS: one resend only
}

TEST(AteScripted, ARefusedNewSessionClosesTheHandle) {
    ScriptedHost host([](const proto::Frame& req, size_t index) {
        proto::Frame f = answer_for(req);
        if (std::holds_alternative<proto::Touchdown>(req.message))
            f.message = proto::ErrorReply{proto::StatusCode::kNoSession, "restarted"};
        if (std::holds_alternative<proto::Hello>(req.message) && index > 0)
            f.message = proto::ErrorReply{proto::StatusCode::kNotAdmitted, "tester revoked"};
        return std::vector<Message>{ScriptedHost::message(f)};
    });
    Handle h(open_on(host));
    ASSERT_NE(h.h, nullptr);
    auto sites = sites_at({0});
    wp_ate_site_identity id;
    EXPECT_EQ(wp_ate_touchdown(h.h, "LOT1", 1, 1, sites.data(), 1, &id), WP_ATE_S_NOT_ADMITTED);
    EXPECT_NE(std::string(wp_ate_last_error(h.h)).find("tester revoked"), std::string::npos)
        << wp_ate_last_error(h.h);
    const size_t sent = host.requests().size();
    EXPECT_EQ(wp_ate_touchdown(h.h, "LOT1", 1, 2, sites.data(), 1, &id), WP_ATE_E_CLOSED);
    EXPECT_NE(std::string(wp_ate_last_error(h.h)).find("tester revoked"), std::string::npos);
    EXPECT_EQ(host.requests().size(), sent);  // nothing more went out
}

TEST(AteScripted, TouchdownArgumentsAreCheckedBeforeSending) {
    ScriptedHost host(ScriptedHost::well_behaved);
    Handle h(open_on(host));
    ASSERT_NE(h.h, nullptr);
    const std::string long_lot(256, 'L');
    auto nine = sites_at({0, 1, 2, 3, 4, 5, 6, 7, 8});  // the host takes 8
    auto dup = sites_at({0, 4, 0});
    auto bad_uid = sites_at({0});
    bad_uid[0].has_uid = 2;
    auto ok = sites_at({0});
    wp_ate_site_identity ids[9];
    struct Case {
        const char* what;
        const char* lot;
        const wp_ate_site_request* sites;
        size_t count;
        wp_ate_site_identity* ids;
        const char* named;
    };
    const Case cases[] = {
        {"lot NULL", nullptr, ok.data(), 1, ids, "lot"},
        {"lot empty", "", ok.data(), 1, ids, "lot"},
        {"lot 256 bytes", long_lot.c_str(), ok.data(), 1, ids, "lot"},
        {"lot not UTF-8", "LOT\xfe", ok.data(), 1, ids, "lot"},
        {"sites NULL", "LOT", nullptr, 1, ids, "sites"},
        {"identities NULL", "LOT", ok.data(), 1, nullptr, "identities"},
        {"count 0", "LOT", ok.data(), 0, ids, "count"},
        {"count above max_sites", "LOT", nine.data(), 9, ids, "count"},
        {"duplicate site", "LOT", dup.data(), 3, ids, "site 0"},
        {"has_uid 2", "LOT", bad_uid.data(), 1, ids, "sites[0].has_uid"},
    };
    for (const Case& c : cases) {
        EXPECT_EQ(wp_ate_touchdown(h.h, c.lot, 1, 1, c.sites, c.count, c.ids),
                  WP_ATE_E_INVALID_ARGUMENT)
            << c.what;
        EXPECT_NE(std::string(wp_ate_last_error(h.h)).find(c.named), std::string::npos)
            << c.what << ": " << wp_ate_last_error(h.h);
    }
    EXPECT_EQ(host.requests().size(), 1u);  // the HELLO only
    // The handle still works, and 8 sites are fine.
    EXPECT_EQ(wp_ate_touchdown(h.h, "LOT", 1, 1, nine.data(), 8, ids), WP_ATE_OK);
}

TEST(AteScripted, ResultsArgumentsAreCheckedBeforeSending) {
    ScriptedHost host(ScriptedHost::well_behaved);
    Handle h(open_on(host));
    ASSERT_NE(h.h, nullptr);
    const std::string long_bin(256, 'b');
    auto make = [](std::initializer_list<uint16_t> sites) {
        std::vector<wp_ate_site_result> v;
        for (uint16_t s : sites) {
            wp_ate_site_result r{};
            r.site = s;
            r.outcome = WP_ATE_PROGRAMMED;
            r.bin = "1";
            v.push_back(r);
        }
        return v;
    };
    auto ok = make({0});
    auto outcome0 = make({0, 1});
    outcome0[1].outcome = 0;
    auto outcome3 = make({0});
    outcome3[0].outcome = 3;
    auto bad_bin = make({0});
    bad_bin[0].bin = "\xc3";
    auto long_b = make({0, 1, 2});
    long_b[2].bin = long_bin.c_str();
    auto dup = make({2, 2});
    wp_ate_result_ack acks[3];
    struct Case {
        const char* what;
        const wp_ate_site_result* results;
        size_t count;
        wp_ate_result_ack* acks;
        const char* named;
    };
    const Case cases[] = {
        {"results NULL", nullptr, 1, acks, "results"},
        {"acks NULL", ok.data(), 1, nullptr, "acks"},
        {"count 0", ok.data(), 0, acks, "count"},
        {"outcome 0", outcome0.data(), 2, acks, "results[1].outcome"},
        {"outcome 3", outcome3.data(), 1, acks, "results[0].outcome"},
        {"bin not UTF-8", bad_bin.data(), 1, acks, "results[0].bin"},
        {"bin 256 bytes", long_b.data(), 3, acks, "results[2].bin"},
        {"duplicate site", dup.data(), 2, acks, "site 2"},
    };
    for (const Case& c : cases) {
        EXPECT_EQ(wp_ate_results(h.h, 1, c.results, c.count, c.acks), WP_ATE_E_INVALID_ARGUMENT)
            << c.what;
        EXPECT_NE(std::string(wp_ate_last_error(h.h)).find(c.named), std::string::npos)
            << c.what << ": " << wp_ate_last_error(h.h);
    }
    EXPECT_EQ(host.requests().size(), 1u);
    EXPECT_EQ(wp_ate_results(h.h, 1, ok.data(), 1, acks), WP_ATE_OK);
}

TEST(AteScripted, CloseSaysByeForTheSession) {
    ScriptedHost host(ScriptedHost::well_behaved);
    wp_ate* h = open_on(host);
    ASSERT_NE(h, nullptr);
    wp_ate_close(h);
    const auto byes = of_kind<proto::Bye>(host.requests());
    ASSERT_EQ(byes.size(), 1u);
    EXPECT_EQ(std::get<proto::Bye>(byes[0].message).session_id, ScriptedHost::kSessionId);
}

TEST(AteScripted, CloseWaitsAtMostTheTimeoutForASilentHost) {
    ScriptedHost host([](const proto::Frame& req, size_t index) {
        if (std::holds_alternative<proto::Bye>(req.message)) return std::vector<Message>{};
        return ScriptedHost::well_behaved(req, index);
    });
    wp_ate* h = open_on(host, 300, 5);
    ASSERT_NE(h, nullptr);
    const auto t0 = Clock::now();
    wp_ate_close(h);
    const auto took = Clock::now() - t0;
    EXPECT_GE(took, milliseconds(250));
    EXPECT_LT(took, milliseconds(1500));  // one attempt: BYE is not retried
}

TEST(AteScripted, OneHandleSharedByTwoThreadsSerializesTheCalls) {
    ScriptedHost host(ScriptedHost::well_behaved);
    Handle h(open_on(host));
    ASSERT_NE(h.h, nullptr);
    constexpr int kEach = 25;
    std::atomic<int> failures{0};
    auto worker = [&](uint32_t base) {
        auto sites = sites_at({0, 1, 2});
        wp_ate_site_identity ids[3];
        for (int i = 0; i < kEach; ++i) {
            const uint32_t seq = base + static_cast<uint32_t>(i);
            if (wp_ate_touchdown(h.h, "LOT1", 1, seq, sites.data(), 3, ids) != WP_ATE_OK ||
                ids[2].site != 2 || ids[2].status != WP_ATE_OK)
                ++failures;
        }
    };
    std::thread a(worker, 1000), b(worker, 2000);
    a.join();
    b.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(of_kind<proto::Touchdown>(host.requests()).size(), 2u * kEach);
}

}  // namespace
}  // namespace waferprov::ate_test
