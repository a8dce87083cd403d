// libwaferprov_ate.so against a real `waferprov serve` child process over CurveZMQ: a job from
// `waferprov job init`, the server started on an ephemeral port, killed -9 and restarted, and
// the example C program run against it. No mocks.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "serve_process.hpp"
#include "waferprov/bytes.hpp"
#include "waferprov/host/curve_keys.hpp"
#include "waferprov/ossl.hpp"
#include "waferprov/possession.hpp"
#include "waferprov/reference.hpp"
#include "waferprov/test_vectors.hpp"
#include "waferprov/testing/temp_dir.hpp"
#include "waferprov_ate.h"

namespace waferprov::ate_test {
namespace {

namespace proto = waferprov::host::protocol;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const fs::path kWaferprov = WAFERPROV_BINARY;
const fs::path kExample = WAFERPROV_ATE_EXAMPLE;
constexpr int kServerMaxSites = 16;

using ossl::X509Ptr;

X509Ptr read_pem(const fs::path& p) {
    FILE* f = std::fopen(p.c_str(), "r");
    if (f == nullptr) return nullptr;
    X509Ptr x(PEM_read_X509(f, nullptr, nullptr, nullptr));
    std::fclose(f);
    return x;
}

Bytes der_of(const X509* x) {
    auto der = ossl::der_of(x);
    EXPECT_TRUE(der.ok()) << der.error().describe();
    return der.ok() ? std::move(der).value() : Bytes{};
}

// The open handle is closed at the end of the scope.
struct Handle {
    explicit Handle(wp_ate* handle = nullptr) : h(handle) {}
    ~Handle() { wp_ate_close(h); }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    wp_ate* h;
};

// A row of dies under a probe card: sites[i] = die (x0 + i, y), site numbers `first` + i.
std::vector<wp_ate_site_request> row(int32_t x0, int32_t y, size_t n, uint16_t first = 0) {
    std::vector<wp_ate_site_request> v(n);
    for (size_t i = 0; i < n; ++i) {
        v[i] = wp_ate_site_request{};
        v[i].site = static_cast<uint16_t>(first + i);
        v[i].x = x0 + static_cast<int32_t>(i);
        v[i].y = y;
        v[i].has_uid = 0;
    }
    return v;
}

std::vector<wp_ate_site_result> programmed(const std::vector<wp_ate_site_identity>& ids,
                                           const char* bin = "1") {
    std::vector<wp_ate_site_result> v;
    for (const auto& id : ids) {
        wp_ate_site_result r{};
        r.site = id.site;
        std::memcpy(r.uid, id.uid, sizeof r.uid);
        r.outcome = WP_ATE_PROGRAMMED;
        r.bin = bin;
        v.push_back(r);
    }
    return v;
}

class AteServer : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(serve_available(kWaferprov, dir_.path()))
            << kWaferprov << " has no 'serve' command";
        const std::string err =
            make_dev_job(kWaferprov, dir_.path() / "job", "J1", {"ATE-1", "ATE-2"}, job_);
        ASSERT_EQ(err, "");
        ASSERT_EQ(read_tester_keys(job_.tester_key("ATE-1"), ate1_), "");
        ASSERT_EQ(read_tester_keys(job_.tester_key("ATE-2"), ate2_), "");
        start_server();
    }

    void start_server(const std::string& bind = "tcp://127.0.0.1:0",
                      std::vector<std::string> extra = {}) {
        std::vector<std::string> args = {
            "--job",       job_.job_file().string(),        "--bind",    bind,
            "--max-sites", std::to_string(kServerMaxSites), "--threads", "2"};
        args.insert(args.end(), extra.begin(), extra.end());
        std::string err;
        server_.reset();
        server_ = ServeProcess::start(kWaferprov, args,
                                      dir_.path() / ("serve-" + std::to_string(++starts_)), err);
        ASSERT_NE(server_, nullptr) << err;
    }

    wp_ate_config config(const TesterKeys& keys, const char* tester_id, const char* job_id = "J1",
                         int timeout_ms = 10000, int retries = 1) {
        wp_ate_config c{};
        c.struct_size = sizeof c;
        endpoint_ = server_->endpoint();
        c.endpoint = endpoint_.c_str();
        c.server_public_key = job_.server_public;
        c.client_public_key = keys.public_z85;
        c.client_secret_key = keys.secret_z85;
        c.tester_id = tester_id;
        c.job_id = job_id;
        c.node_name = "gtest";
        c.timeout_ms = timeout_ms;
        c.retries = retries;
        return c;
    }

    // Opens as ATE-1 (or as given); fails the test on any error.
    wp_ate* open(const TesterKeys* keys = nullptr, const char* tester = "ATE-1") {
        const wp_ate_config c = config(keys != nullptr ? *keys : ate1_, tester);
        wp_ate* h = nullptr;
        const int rc = wp_ate_open(&c, &h);
        EXPECT_EQ(rc, WP_ATE_OK) << wp_ate_strerror(rc) << ": " << wp_ate_last_error(nullptr)
                                 << "\nserver log:\n"
                                 << server_->log();
        return h;
    }

    // One touchdown naming the wafer (substrate id "<lot>-<wafer>", as a prober reads it);
    // fails the test unless the call succeeds.
    std::vector<wp_ate_site_identity> touchdown(wp_ate* h, const char* lot, uint32_t sequence,
                                                const std::vector<wp_ate_site_request>& sites,
                                                uint16_t wafer = 1) {
        std::vector<wp_ate_site_identity> ids(sites.size());
        const std::string substrate = std::string(lot) + "-" + std::to_string(wafer);
        const int rc = wp_ate_touchdown_wafer(h, lot, wafer, substrate.c_str(), sequence,
                                              sites.data(), sites.size(), ids.data());
        EXPECT_EQ(rc, WP_ATE_OK) << wp_ate_strerror(rc) << ": " << wp_ate_last_error(h)
                                 << "\nserver log:\n"
                                 << server_->log();
        if (rc != WP_ATE_OK) ids.clear();
        return ids;
    }

    std::vector<wp_ate_result_ack> results(wp_ate* h, uint32_t sequence,
                                           const std::vector<wp_ate_site_result>& res) {
        std::vector<wp_ate_result_ack> acks(res.size());
        const int rc = wp_ate_results(h, sequence, res.data(), res.size(), acks.data());
        EXPECT_EQ(rc, WP_ATE_OK) << wp_ate_strerror(rc) << ": " << wp_ate_last_error(h)
                                 << "\nserver log:\n"
                                 << server_->log();
        if (rc != WP_ATE_OK) acks.clear();
        return acks;
    }

    waferprov::testing::TempDir dir_{"ate_server"};
    DevJob job_;
    TesterKeys ate1_, ate2_;
    std::string endpoint_;
    int starts_ = 0;
    std::unique_ptr<ServeProcess> server_;
};

bool same_identity(const wp_ate_site_identity& a, const wp_ate_site_identity& b) {
    return std::memcmp(a.uid, b.uid, sizeof a.uid) == 0 &&
           std::memcmp(a.wrapped_key, b.wrapped_key, sizeof a.wrapped_key) == 0 &&
           a.certificate_length == b.certificate_length &&
           std::memcmp(a.certificate, b.certificate, a.certificate_length) == 0 &&
           std::memcmp(a.chain_id, b.chain_id, sizeof a.chain_id) == 0;
}

// The whole flow over CURVE, and every identity checked as the die and the customer would:
// the certificate is signed by the job's CA, the chain id is SHA-256(ca.der || root.der), and
// the wrapped key unwraps (WPID-1 KEK from the job's KIK and the UID) to the private key of
// the certificate's public key.
TEST_F(AteServer, OpenTouchdownResultsCloseOverCurve) {
    Handle h(open());
    ASSERT_NE(h.h, nullptr);
    EXPECT_NE(wp_ate_session_id(h.h), 0u);
    EXPECT_EQ(wp_ate_max_sites(h.h), kServerMaxSites);

    auto sites = row(10, 5, 4);
    sites[0].site = 3;  // the answer comes back in this order, whatever the host's
    sites[3].site = 0;
    const auto ids = touchdown(h.h, "LOT-HAPPY", 1, sites);
    ASSERT_EQ(ids.size(), 4u);

    X509Ptr ca = read_pem(job_.dir / "ca.pem");
    X509Ptr root = read_pem(job_.dir / "root.pem");
    ASSERT_TRUE(ca && root);
    Bytes chain = der_of(ca.get());
    const Bytes root_der = der_of(root.get());
    chain.insert(chain.end(), root_der.begin(), root_der.end());
    uint8_t chain_id[SHA256_DIGEST_LENGTH];
    SHA256(chain.data(), chain.size(), chain_id);
    std::ifstream kik_file(job_.dir / "kik.hex");
    std::string kik_hex;
    kik_file >> kik_hex;
    auto kik = from_hex(kik_hex, "kik.hex");
    ASSERT_TRUE(kik.ok());

    std::set<std::string> uids;
    for (size_t i = 0; i < ids.size(); ++i) {
        const auto& id = ids[i];
        SCOPED_TRACE("site " + std::to_string(id.site));
        EXPECT_EQ(id.site, sites[i].site);
        ASSERT_EQ(id.status, WP_ATE_OK) << id.text;
        EXPECT_STREQ(id.text, "");
        EXPECT_EQ(id.key_usage, 1);
        EXPECT_EQ(id.key_algorithm, 1);
        EXPECT_EQ(id.key_version, 1);
        uids.insert(to_hex(ByteSpan(id.uid, 16)));
        EXPECT_EQ(std::memcmp(id.chain_id, chain_id, 32), 0);
        ASSERT_GT(id.certificate_length, 0u);
        ASSERT_LE(id.certificate_length, size_t{WP_ATE_MAX_CERTIFICATE});
        const unsigned char* p = id.certificate;
        X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(id.certificate_length)));
        ASSERT_TRUE(cert);
        EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(ca.get())), 1);

        const Bytes kek = reference::kek(*kik, ByteSpan(id.uid, 16));
        const auto d = reference::kw_unwrap(kek, ByteSpan(id.wrapped_key, 40));
        ASSERT_TRUE(d.has_value()) << "the wrapped key does not unwrap under the die's KEK";
        const auto q = reference::base_mul(*d);
        ASSERT_TRUE(q.has_value());
        uint8_t encoded[65];
        size_t len = 0;
        ASSERT_EQ(EVP_PKEY_get_octet_string_param(X509_get0_pubkey(cert.get()), "encoded-pub-key",
                                                  encoded, sizeof encoded, &len),
                  1);
        ASSERT_EQ(len, 65u);
        EXPECT_EQ(std::memcmp(encoded + 1, q->x.data(), 32), 0);
        EXPECT_EQ(std::memcmp(encoded + 33, q->y.data(), 32), 0);
    }
    EXPECT_EQ(uids.size(), 4u);

    const auto acks = results(h.h, 1, programmed(ids));
    ASSERT_EQ(acks.size(), 4u);
    for (size_t i = 0; i < acks.size(); ++i) {
        EXPECT_EQ(acks[i].site, ids[i].site);
        EXPECT_EQ(acks[i].status, WP_ATE_OK) << acks[i].text;
        EXPECT_EQ(std::memcmp(acks[i].uid, ids[i].uid, 16), 0);
    }
    wp_ate_close(h.h);
    h.h = nullptr;
    EXPECT_EQ(server_->stop(), 0) << server_->log();
}

TEST_F(AteServer, InsecureServerWithoutCurve) {
    server_->stop();
    start_server("tcp://127.0.0.1:0", {"--insecure"});
    wp_ate_config c = config(ate1_, "ATE-1");
    c.server_public_key = nullptr;
    c.client_public_key = nullptr;
    c.client_secret_key = nullptr;
    wp_ate* raw = nullptr;
    const int rc = wp_ate_open(&c, &raw);
    Handle h(raw);
    ASSERT_EQ(rc, WP_ATE_OK) << wp_ate_strerror(rc) << ": " << wp_ate_last_error(nullptr);
    const auto ids = touchdown(h.h, "LOT-PLAIN", 1, row(0, 0, 2));
    ASSERT_EQ(ids.size(), 2u);
    EXPECT_EQ(ids[0].status, WP_ATE_OK) << ids[0].text;
    // Without CURVE the host still only takes the testers the job lists.
    c.tester_id = "ATE-NOT-LISTED";
    wp_ate* other = nullptr;
    EXPECT_EQ(wp_ate_open(&c, &other), WP_ATE_S_NOT_ADMITTED) << wp_ate_last_error(nullptr);
}

// A retest: the same die in a later touchdown gets its identity again, REISSUED.
TEST_F(AteServer, RetestIsReissuedWithTheSameIdentity) {
    Handle h(open());
    ASSERT_NE(h.h, nullptr);
    const auto first = touchdown(h.h, "LOT-RETEST", 1, row(20, 1, 3));
    ASSERT_EQ(first.size(), 3u);
    for (const auto& id : first) ASSERT_EQ(id.status, WP_ATE_OK) << id.text;
    // The middle die again, under another site, in a new touchdown with a new die next to it.
    auto again = row(21, 1, 2, 7);
    again[1].x = 30;
    const auto second = touchdown(h.h, "LOT-RETEST", 2, again);
    ASSERT_EQ(second.size(), 2u);
    EXPECT_EQ(second[0].status, WP_ATE_S_REISSUED) << second[0].text;
    EXPECT_TRUE(same_identity(second[0], first[1]));
    EXPECT_EQ(second[1].status, WP_ATE_OK) << second[1].text;

    // Once PROGRAMMED, a die is not delivered again.
    const auto acks = results(h.h, 2, programmed({second[0]}));
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].status, WP_ATE_OK) << acks[0].text;
    const auto third = touchdown(h.h, "LOT-RETEST", 3, row(21, 1, 1));
    ASSERT_EQ(third.size(), 1u);
    EXPECT_EQ(third[0].status, WP_ATE_S_ALREADY_PROGRAMMED) << third[0].text;
}

// A repeated touchdown (same sequence, same sites: what a tester does after a timeout) gets
// byte-identical identities; the same sequence with other sites is SEQUENCE_REUSED.
TEST_F(AteServer, RepeatedSequenceGetsTheSameAnswer) {
    Handle h(open());
    ASSERT_NE(h.h, nullptr);
    const auto sites = row(30, 2, 4);
    const auto a = touchdown(h.h, "LOT-REPEAT", 5, sites);
    const auto b = touchdown(h.h, "LOT-REPEAT", 5, sites);
    ASSERT_EQ(a.size(), 4u);
    ASSERT_EQ(b.size(), 4u);
    for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].status, WP_ATE_OK) << a[i].text;
        EXPECT_EQ(b[i].status, a[i].status);
        EXPECT_TRUE(same_identity(a[i], b[i])) << "site " << a[i].site;
        // The library zeroes every entry before filling it, so the bytes compare too.
        EXPECT_EQ(std::memcmp(&a[i], &b[i], sizeof a[i]), 0) << "site " << a[i].site;
    }
    auto other = row(40, 2, 4);
    std::vector<wp_ate_site_identity> ids(4);
    EXPECT_EQ(wp_ate_touchdown(h.h, "LOT-REPEAT", 1, 5, other.data(), 4, ids.data()),
              WP_ATE_S_SEQUENCE_REUSED)
        << wp_ate_last_error(h.h);
    EXPECT_STRNE(wp_ate_last_error(h.h), "");
}

// Results: acknowledged; the same RESULTS again is answered as the first time; a RESULTS for
// dies that already have their result, in a new frame, is DUPLICATE_RESULT per die. (Another
// RESULTS under the same sequence with other content is the whole frame's SEQUENCE_REUSED.)
TEST_F(AteServer, DuplicateResultsAreRefusedPerDie) {
    Handle h(open());
    ASSERT_NE(h.h, nullptr);
    const auto ids = touchdown(h.h, "LOT-RESULTS", 1, row(50, 3, 2));
    ASSERT_EQ(ids.size(), 2u);
    const auto res = programmed(ids);
    const auto first = results(h.h, 1, res);
    ASSERT_EQ(first.size(), 2u);
    EXPECT_EQ(first[0].status, WP_ATE_OK) << first[0].text;
    EXPECT_EQ(first[1].status, WP_ATE_OK) << first[1].text;
    const auto repeat = results(h.h, 1, res);
    ASSERT_EQ(repeat.size(), 2u);
    EXPECT_EQ(repeat[0].status, WP_ATE_OK)
        << "a resent RESULTS is answered as the first: " << repeat[0].text;
    EXPECT_EQ(repeat[1].status, WP_ATE_OK) << repeat[1].text;

    // The second die again, now FAILED, in a new RESULTS frame.
    auto again = std::vector<wp_ate_site_result>{res[1]};
    again[0].outcome = WP_ATE_FAILED;
    again[0].bin = "9";
    std::vector<wp_ate_result_ack> acks(1);
    int rc = wp_ate_results(h.h, 2, again.data(), 1, acks.data());
    ASSERT_EQ(rc, WP_ATE_OK) << wp_ate_strerror(rc) << ": " << wp_ate_last_error(h.h);
    EXPECT_EQ(acks[0].status, WP_ATE_S_DUPLICATE_RESULT) << acks[0].text;
    EXPECT_EQ(acks[0].site, res[1].site);
    EXPECT_STRNE(acks[0].text, "");

    // Other entries under touchdown 1's sequence are more results of that touchdown (not a
    // reused sequence): the die is refused on its own.
    rc = wp_ate_results(h.h, 1, again.data(), 1, acks.data());
    ASSERT_EQ(rc, WP_ATE_OK) << wp_ate_strerror(rc) << ": " << wp_ate_last_error(h.h);
    EXPECT_EQ(acks[0].status, WP_ATE_S_DUPLICATE_RESULT) << acks[0].text;
}

TEST_F(AteServer, ResultForAnUnknownUidIsRefused) {
    Handle h(open());
    ASSERT_NE(h.h, nullptr);
    wp_ate_site_result r{};
    r.site = 0;
    std::memset(r.uid, 0x5a, sizeof r.uid);
    r.outcome = WP_ATE_PROGRAMMED;
    const auto acks = results(h.h, 1, {r});
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].status, WP_ATE_S_UNKNOWN_UID) << acks[0].text;
}

// CurveZMQ drops a client whose key the job does not list: no answer at all.
TEST_F(AteServer, KeyNotInTheJobTimesOutQuickly) {
    auto fresh = proto::generate_curve_keys();
    ASSERT_TRUE(fresh.ok());
    TesterKeys stranger;
    std::memcpy(stranger.public_z85, fresh->public_z85.c_str(), 41);
    std::memcpy(stranger.secret_z85, fresh->secret_z85.c_str(), 41);
    const wp_ate_config c = config(stranger, "ATE-1", "J1", 300, 0);
    wp_ate* h = nullptr;
    const auto t0 = Clock::now();
    EXPECT_EQ(wp_ate_open(&c, &h), WP_ATE_E_TIMEOUT);
    EXPECT_LT(Clock::now() - t0, milliseconds(2000));
    EXPECT_EQ(h, nullptr);
}

TEST_F(AteServer, RightKeyWrongTesterIdIsNotAdmitted) {
    const wp_ate_config c = config(ate1_, "ATE-2");
    wp_ate* h = nullptr;
    EXPECT_EQ(wp_ate_open(&c, &h), WP_ATE_S_NOT_ADMITTED) << wp_ate_last_error(nullptr);
    EXPECT_EQ(h, nullptr);
    EXPECT_NE(std::string(wp_ate_last_error(nullptr)).find("NOT_ADMITTED"), std::string::npos)
        << wp_ate_last_error(nullptr);
}

TEST_F(AteServer, UnknownJobIsRefused) {
    const wp_ate_config c = config(ate1_, "ATE-1", "NO-SUCH-JOB");
    wp_ate* h = nullptr;
    EXPECT_EQ(wp_ate_open(&c, &h), WP_ATE_S_UNKNOWN_JOB) << wp_ate_last_error(nullptr);
    EXPECT_EQ(h, nullptr);
}

// Issue #10: a derived-UID job served without maps cannot tell two wafers of one lot and number
// apart unless the touchdown names the wafer. A 1.0 touchdown is refused per site (CONFLICT,
// naming what to do); the 1.1 call with the substrate id is served; a bad id never leaves.
TEST_F(AteServer, WithoutMapsADerivedJobNeedsTheWafersSubstrateId) {
    Handle h(open());
    ASSERT_NE(h.h, nullptr);
    auto sites = row(60, 5, 2);
    std::vector<wp_ate_site_identity> ids(sites.size());
    ASSERT_EQ(wp_ate_touchdown(h.h, "LOT-OLD", 1, 1, sites.data(), sites.size(), ids.data()),
              WP_ATE_OK)
        << wp_ate_last_error(h.h);
    for (const auto& id : ids) {
        EXPECT_EQ(id.status, WP_ATE_S_CONFLICT);
        EXPECT_NE(std::string(id.text).find("substrate id"), std::string::npos) << id.text;
    }
    auto named = touchdown(h.h, "LOT-OLD", 2, sites);
    ASSERT_EQ(named.size(), sites.size());
    for (const auto& id : named) EXPECT_EQ(id.status, WP_ATE_OK) << id.text;
    EXPECT_EQ(wp_ate_touchdown_wafer(h.h, "LOT-OLD", 1, "bad\tid", 3, sites.data(), sites.size(),
                                     ids.data()),
              WP_ATE_E_INVALID_ARGUMENT);
    EXPECT_EQ(wp_ate_touchdown_wafer(h.h, "LOT-OLD", 1, nullptr, 3, sites.data(), sites.size(),
                                     ids.data()),
              WP_ATE_E_INVALID_ARGUMENT);
    EXPECT_NE(std::string(wp_ate_last_error(h.h)).find("substrate_id is NULL"), std::string::npos)
        << wp_ate_last_error(h.h);
}

TEST_F(AteServer, InvalidArgumentsNeverReachTheHost) {
    Handle h(open());
    ASSERT_NE(h.h, nullptr);
    auto too_many = row(0, 0, kServerMaxSites + 1);
    std::vector<wp_ate_site_identity> ids(too_many.size());
    EXPECT_EQ(wp_ate_touchdown(h.h, "LOT", 1, 1, too_many.data(), too_many.size(), ids.data()),
              WP_ATE_E_INVALID_ARGUMENT);
    EXPECT_NE(std::string(wp_ate_last_error(h.h)).find("1..16"), std::string::npos)
        << wp_ate_last_error(h.h);
    auto dup = row(0, 0, 2);
    dup[1].site = dup[0].site;
    EXPECT_EQ(wp_ate_touchdown(h.h, "LOT", 1, 1, dup.data(), 2, ids.data()),
              WP_ATE_E_INVALID_ARGUMENT);
    EXPECT_EQ(wp_ate_touchdown(h.h, "LOT\xff", 1, 1, dup.data(), 1, ids.data()),
              WP_ATE_E_INVALID_ARGUMENT);
    // The session is intact: a valid call afterwards works, at the limit.
    const auto ok = touchdown(h.h, "LOT-ARGS", 1, row(0, 0, kServerMaxSites));
    EXPECT_EQ(ok.size(), size_t{kServerMaxSites});
}

// The host dies (SIGKILL) mid-session and comes back on the same port: ZeroMQ reconnects, the
// host answers NO_SESSION, the library says HELLO again and resends, and the call succeeds.
TEST_F(AteServer, ServerKilledAndRestartedMidSession) {
    Handle h(open());
    ASSERT_NE(h.h, nullptr);
    const uint64_t session = wp_ate_session_id(h.h);
    const auto before = touchdown(h.h, "LOT-RESTART", 1, row(0, 0, 2));
    ASSERT_EQ(before.size(), 2u);

    const std::string endpoint = server_->endpoint();
    server_->kill_hard();
    start_server(endpoint);
    ASSERT_EQ(server_->endpoint(), endpoint);

    const auto after = touchdown(h.h, "LOT-RESTART", 2, row(2, 0, 2));
    ASSERT_EQ(after.size(), 2u);
    EXPECT_EQ(after[0].status, WP_ATE_OK) << after[0].text;
    EXPECT_NE(wp_ate_session_id(h.h), session);
    // What the first server recorded survived it: a retest is REISSUED with the same identity.
    const auto retest = touchdown(h.h, "LOT-RESTART", 3, row(0, 0, 1));
    ASSERT_EQ(retest.size(), 1u);
    EXPECT_EQ(retest[0].status, WP_ATE_S_REISSUED) << retest[0].text;
    EXPECT_TRUE(same_identity(retest[0], before[0]));
    const auto acks = results(h.h, 2, programmed(after));
    ASSERT_EQ(acks.size(), 2u);
    EXPECT_EQ(acks[0].status, WP_ATE_OK) << acks[0].text;
}

// The host is down for a while: calls time out; once it is back, the same call (same sequence)
// goes through on the same handle.
TEST_F(AteServer, TimeoutWhileTheServerIsDownThenTheSameCallSucceeds) {
    const wp_ate_config c = config(ate1_, "ATE-1", "J1", 400, 0);
    wp_ate* raw = nullptr;
    ASSERT_EQ(wp_ate_open(&c, &raw), WP_ATE_OK) << wp_ate_last_error(nullptr);
    Handle h(raw);
    const std::string endpoint = server_->endpoint();
    server_->kill_hard();
    auto sites = row(60, 0, 2);
    std::vector<wp_ate_site_identity> ids(2);
    EXPECT_EQ(
        wp_ate_touchdown_wafer(h.h, "LOT-DOWN", 1, "LOT-DOWN-1", 1, sites.data(), 2, ids.data()),
        WP_ATE_E_TIMEOUT);
    start_server(endpoint);
    int rc = WP_ATE_E_TIMEOUT;
    for (int attempt = 0; attempt < 10 && rc == WP_ATE_E_TIMEOUT; ++attempt)
        rc = wp_ate_touchdown_wafer(h.h, "LOT-DOWN", 1, "LOT-DOWN-1", 1, sites.data(), 2,
                                    ids.data());
    EXPECT_EQ(rc, WP_ATE_OK) << wp_ate_last_error(h.h);
    EXPECT_EQ(ids[0].status, WP_ATE_OK) << ids[0].text;
}

// Two testers, each with its own handle on its own thread, at once.
TEST_F(AteServer, TwoHandlesOnTwoThreadsAtOnce) {
    Handle a(open(&ate1_, "ATE-1"));
    Handle b(open(&ate2_, "ATE-2"));
    ASSERT_NE(a.h, nullptr);
    ASSERT_NE(b.h, nullptr);
    EXPECT_NE(wp_ate_session_id(a.h), wp_ate_session_id(b.h));
    constexpr int kTouchdowns = 8;
    std::atomic<int> failures{0};
    std::string why_a, why_b;
    auto run = [&](wp_ate* h, const char* lot, std::string& why) {
        for (int t = 0; t < kTouchdowns; ++t) {
            auto sites = row(4 * t, 7, 4);
            std::vector<wp_ate_site_identity> ids(4);
            std::vector<wp_ate_result_ack> acks(4);
            const uint32_t seq = static_cast<uint32_t>(t) + 1;
            const std::string substrate = std::string(lot) + "-2";
            int rc = wp_ate_touchdown_wafer(h, lot, 2, substrate.c_str(), seq, sites.data(), 4,
                                            ids.data());
            for (const auto& id : ids)
                if (rc == WP_ATE_OK && id.status != WP_ATE_OK) rc = id.status;
            if (rc == WP_ATE_OK) {
                const auto res = programmed(ids);
                rc = wp_ate_results(h, seq, res.data(), 4, acks.data());
                for (const auto& ack : acks)
                    if (rc == WP_ATE_OK && ack.status != WP_ATE_OK) rc = ack.status;
            }
            if (rc != WP_ATE_OK) {
                ++failures;
                why = std::string(wp_ate_strerror(rc)) + ": " + wp_ate_last_error(h);
            }
        }
    };
    std::thread ta(run, a.h, "LOT-THREAD-A", std::ref(why_a));
    std::thread tb(run, b.h, "LOT-THREAD-B", std::ref(why_b));
    ta.join();
    tb.join();
    EXPECT_EQ(failures.load(), 0) << why_a << " / " << why_b;
}

// The example C program, as a test program engineer would run it.
// Final test through the C API (protocol 1.2): dies provisioned at sort come back VERIFY with
// their certificate and the exact bytes to sign; each part signs with the scalar its wrapped
// key unwraps to (the OpenSSL reference, as the die would), one swapped part signs with
// another's key and is caught, and the same answer sent again is refused.
TEST_F(AteServer, FinalTestVerifiesPartsFromSortThroughTheCApi) {
    Handle h(open());
    ASSERT_NE(h.h, nullptr);
    const auto ids = touchdown(h.h, "LOT-FT", 1, row(0, 0, 3));
    ASSERT_EQ(ids.size(), 3u);
    for (const auto& a : results(h.h, 1, programmed(ids))) ASSERT_EQ(a.status, WP_ATE_OK);
    std::ifstream kik_file(job_.dir / "kik.hex");
    std::string kik_hex;
    kik_file >> kik_hex;
    const Bytes kik = from_hex(kik_hex, "kik.hex").value();
    std::vector<SecretArray<32>> d(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
        auto plain = reference::kw_unwrap(reference::kek(kik, ByteSpan(ids[i].uid, 16)),
                                          ByteSpan(ids[i].wrapped_key, 40));
        ASSERT_TRUE(plain && plain->size() == 32);
        std::memcpy(d[i].data(), plain->data(), 32);
    }

    std::vector<wp_ate_part_request> parts(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
        parts[i] = wp_ate_part_request{};
        parts[i].site = static_cast<uint16_t>(10 + i);
        std::memcpy(parts[i].uid, ids[i].uid, 16);
        parts[i].carrier_id = i == 0 ? nullptr : "STRIP-1";
        parts[i].row = 1;
        parts[i].column = static_cast<uint16_t>(i);
    }
    std::vector<wp_ate_part_answer> answers(parts.size());
    int rc = wp_ate_final_touchdown(h.h, "LOT-FT", "HDL-7", 2, parts.data(), parts.size(),
                                    answers.data());
    ASSERT_EQ(rc, WP_ATE_OK) << wp_ate_last_error(h.h) << "\n" << server_->log();
    std::vector<wp_ate_part_result> res(parts.size());
    for (size_t i = 0; i < answers.size(); ++i) {
        const auto& a = answers[i];
        ASSERT_EQ(a.status, WP_ATE_S_VERIFY) << a.text;
        EXPECT_EQ(a.certificate_length, ids[i].certificate_length);
        EXPECT_EQ(std::memcmp(a.certificate, ids[i].certificate, a.certificate_length), 0);
        // The bytes to sign are the documented message for this part and this session.
        possession::Nonce nonce{};
        std::memcpy(nonce.data(), a.challenge, nonce.size());
        wpid1::Uid uid{};
        std::memcpy(uid.data(), a.uid, uid.size());
        const Bytes msg = possession::challenge_message(uid, wp_ate_session_id(h.h), nonce);
        ASSERT_EQ(msg.size(), sizeof a.message);
        EXPECT_EQ(std::memcmp(msg.data(), a.message, msg.size()), 0);
        // Part 1 was swapped for a part holding part 2's key.
        auto sig = possession::sign(d[i == 1 ? 2 : i], ByteSpan(a.message, sizeof a.message));
        ASSERT_TRUE(sig.ok());
        res[i] = wp_ate_part_result{};
        res[i].site = a.site;
        std::memcpy(res[i].uid, a.uid, 16);
        res[i].outcome = WP_ATE_PROGRAMMED;
        res[i].bin = "1";
        res[i].has_signature = 1;
        std::memcpy(res[i].signature, sig->data(), sig->size());
    }
    std::vector<wp_ate_result_ack> acks(res.size());
    rc = wp_ate_final_results(h.h, 2, res.data(), res.size(), acks.data());
    ASSERT_EQ(rc, WP_ATE_OK) << wp_ate_last_error(h.h);
    EXPECT_EQ(acks[0].status, WP_ATE_OK) << acks[0].text;
    EXPECT_EQ(acks[1].status, WP_ATE_S_SIGNATURE_MISMATCH) << acks[1].text;
    EXPECT_EQ(acks[2].status, WP_ATE_OK) << acks[2].text;
    // The same answers under a new sequence: a replay, refused for every part.
    rc = wp_ate_final_results(h.h, 3, res.data(), res.size(), acks.data());
    ASSERT_EQ(rc, WP_ATE_OK) << wp_ate_last_error(h.h);
    for (const auto& a : acks) EXPECT_EQ(a.status, WP_ATE_S_CHALLENGE_REFUSED) << a.text;
    EXPECT_STRNE(wp_ate_strerror(WP_ATE_S_CHALLENGE_REFUSED), "unknown status");
}

TEST_F(AteServer, ExampleProgramRunsToCompletion) {
    const RunResult r =
        run_command({kExample.string(), server_->endpoint(), (job_.dir / "server.pub").string(),
                     job_.tester_key("ATE-1").string(), "J1", "ATE-1", "LOT-EXAMPLE", "3"},
                    dir_.path() / "example.log", std::chrono::seconds(120));
    EXPECT_EQ(r.exit_status, 0) << r.output << "\nserver log:\n" << server_->log();
    EXPECT_NE(r.output.find("done: 3 touchdowns, 0 refusals"), std::string::npos) << r.output;
    // With --final-test the same program's dies come back at final test (another lot, so the
    // run above does not matter): each is challenged, and reported FAILED without a signature.
    const RunResult ft = run_command(
        {kExample.string(), server_->endpoint(), (job_.dir / "server.pub").string(),
         job_.tester_key("ATE-1").string(), "J1", "ATE-1", "LOT-EXAMPLE-FT", "3", "--final-test"},
        dir_.path() / "example-ft.log", std::chrono::seconds(120));
    EXPECT_EQ(ft.exit_status, 0) << ft.output << "\nserver log:\n" << server_->log();
    EXPECT_NE(ft.output.find("final test: 12 parts challenged, 12 reported"), std::string::npos)
        << ft.output;
    // And its failure path: the wrong tester id for the key.
    const RunResult bad =
        run_command({kExample.string(), server_->endpoint(), (job_.dir / "server.pub").string(),
                     job_.tester_key("ATE-1").string(), "J1", "ATE-2"},
                    dir_.path() / "example-bad.log", std::chrono::seconds(60));
    EXPECT_EQ(bad.exit_status, 2) << bad.output;
    EXPECT_NE(bad.output.find("NOT_ADMITTED"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace waferprov::ate_test
