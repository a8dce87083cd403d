// The service's session table, answer cache and ZAP decision on their own, without sockets
// (host/service/src/sessions.hpp, admission.hpp): the rules docs/tester-protocol.md gives for
// retries, sequence reuse, session ownership and admission. service_test checks the same rules
// through real sockets; these pin each one down where it is decided.
#include <zmq.h>

#include <gtest/gtest.h>

#include "../src/admission.hpp"
#include "../src/sessions.hpp"
#include "waferprov/host/protocol.hpp"

namespace waferprov::host::svc {
namespace {

namespace pr = protocol;
using Lookup = SessionTable::Lookup;

Bytes encoded(pr::Message m) {
    auto b = pr::encode(pr::Frame{7, pr::kVersionMinor, std::move(m)});
    EXPECT_TRUE(b.ok());
    return b.ok() ? *b : Bytes{};
}

Bytes body(std::initializer_list<uint8_t> b) { return Bytes(b); }

SessionTable table(size_t max_sessions = 1024, size_t per_key = 16, size_t kept = 8) {
    return SessionTable({max_sessions, per_key, kept}, /*per_key_limit=*/true, nullptr);
}

TEST(SessionTable, ARepeatWhileWorkedOnWaitsAndThenGetsTheFirstAnswer) {
    auto t = table();
    Session* s = *t.open(nullptr, "T1", "keyA", 1);
    const Bytes req = body({1, 2, 3});
    ASSERT_EQ(t.lookup(*s, pr::Kind::kTouchdown, 5, req, {}).what, Lookup::kNew);
    t.remember(*s, 1, pr::Kind::kTouchdown, 5, req);
    EXPECT_EQ(t.lookup(*s, pr::Kind::kTouchdown, 5, req, Recipient{body({9}), 42}).what,
              Lookup::kPending);
    const Bytes answer = encoded(pr::ByeOk{});
    Bytes sent = answer;
    const auto waiters = t.complete(s->id, 1, sent).waiters;
    ASSERT_EQ(waiters.size(), 1u);
    EXPECT_EQ(waiters[0].routing_id, body({9}));
    EXPECT_EQ(waiters[0].request_id, 42u);
    const auto hit = t.lookup(*s, pr::Kind::kTouchdown, 5, req, {});
    ASSERT_EQ(hit.what, Lookup::kAnswered);
    EXPECT_EQ(*hit.answer, answer);
}

TEST(SessionTable, ATouchdownSequenceWithOtherContentIsRefusedButResultsMayShareOne) {
    auto t = table();
    Session* s = *t.open(nullptr, "T1", "keyA", 1);
    t.remember(*s, 1, pr::Kind::kTouchdown, 5, body({1}));
    t.remember(*s, 2, pr::Kind::kResults, 5, body({1}));
    EXPECT_EQ(t.lookup(*s, pr::Kind::kTouchdown, 5, body({2}), {}).what, Lookup::kSequenceReused);
    EXPECT_EQ(t.lookup(*s, pr::Kind::kResults, 5, body({2}), {}).what, Lookup::kNew);
    EXPECT_EQ(t.lookup(*s, pr::Kind::kTouchdown, 6, body({2}), {}).what, Lookup::kNew);
}

TEST(SessionTable, AFailureIsNotKeptSoARetryTriesAgain) {
    auto t = table();
    Session* s = *t.open(nullptr, "T1", "keyA", 1);
    t.remember(*s, 1, pr::Kind::kTouchdown, 5, body({1}));
    Bytes failure = encoded(pr::ErrorReply{pr::StatusCode::kInternal, "ledger"});
    t.complete(s->id, 1, failure);
    EXPECT_EQ(t.lookup(*s, pr::Kind::kTouchdown, 5, body({1}), {}).what, Lookup::kNew);
}

TEST(SessionTable, OnlyTheLastAnswersKeptAreRemembered) {
    auto t = table(1024, 16, /*kept=*/3);
    Session* s = *t.open(nullptr, "T1", "keyA", 1);
    for (uint32_t seq = 1; seq <= 4; ++seq)
        t.remember(*s, seq, pr::Kind::kTouchdown, seq, body({1}));
    EXPECT_EQ(t.lookup(*s, pr::Kind::kTouchdown, 1, body({2}), {}).what, Lookup::kNew);
    EXPECT_EQ(t.lookup(*s, pr::Kind::kTouchdown, 2, body({2}), {}).what, Lookup::kSequenceReused);
    // The answer to a forgotten request finds nothing to complete.
    Bytes late = encoded(pr::ByeOk{});
    EXPECT_TRUE(t.complete(s->id, 1, late).waiters.empty());
}

TEST(SessionTable, ASessionBelongsToItsKeyNotToAConnection) {
    auto t = table();
    Session* s = *t.open(nullptr, "T1", "keyA", 1);
    const uint64_t id = s->id;
    EXPECT_NE(id, 0u);
    EXPECT_EQ(t.find(id, "keyA"), s);
    EXPECT_EQ(t.find(id, "keyB"), nullptr);
    EXPECT_EQ(t.find(id + 1, "keyA"), nullptr);
    t.close(id);
    EXPECT_EQ(t.find(id, "keyA"), nullptr);
}

TEST(SessionTable, AKeyAtItsLimitPushesOutOnlyItsOwnOldestSession) {
    auto t = table(1024, /*per_key=*/2);
    const uint64_t a1 = (*t.open(nullptr, "TA", "keyA", 1))->id;
    const uint64_t b1 = (*t.open(nullptr, "TB", "keyB", 1))->id;
    const uint64_t a2 = (*t.open(nullptr, "TA", "keyA", 1))->id;
    const uint64_t a3 = (*t.open(nullptr, "TA", "keyA", 1))->id;
    EXPECT_EQ(t.find(a1, "keyA"), nullptr);
    EXPECT_NE(t.find(a2, "keyA"), nullptr);
    EXPECT_NE(t.find(a3, "keyA"), nullptr);
    EXPECT_NE(t.find(b1, "keyB"), nullptr);
    EXPECT_EQ(t.size(), 3u);
}

TEST(SessionTable, AFullTableDropsTheLeastRecentlyUsed) {
    auto t = table(/*max_sessions=*/2);
    Session* first = *t.open(nullptr, "T1", "k1", 1);
    const uint64_t id1 = first->id;
    Session* second = *t.open(nullptr, "T2", "k2", 1);
    const uint64_t id2 = second->id;
    first->last_used = Clock::now() + std::chrono::seconds(1);  // T1 used since
    const uint64_t id3 = (*t.open(nullptr, "T3", "k3", 1))->id;
    EXPECT_NE(t.find(id1, "k1"), nullptr);
    EXPECT_EQ(t.find(id2, "k2"), nullptr);
    EXPECT_NE(t.find(id3, "k3"), nullptr);
}

std::vector<Bytes> zap_request(const std::string& mechanism, const Bytes& key) {
    auto part = [](const std::string& s) { return Bytes(s.begin(), s.end()); };
    return {
        part("1.0"), part("req-1"), part("waferprov"), part("10.0.0.7"), part(""), part(mechanism),
        key};
}

TEST(Admission, AListedCurveKeyIsAdmittedAsItself) {
    Bytes key(32);
    for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i * 7 + 1);
    char z85[41] = {};
    ASSERT_NE(zmq_z85_encode(z85, key.data(), key.size()), nullptr);  // libzmq's own encoding
    const auto d =
        decide_zap(zap_request("CURVE", key), [&](const std::string& k) { return k == z85; });
    EXPECT_TRUE(d.admitted);
    EXPECT_EQ(d.reply, (std::vector<std::string>{"1.0", "req-1", "200", "OK", z85, ""}));
}

TEST(Admission, AnUnlistedKeyAnotherMechanismOrAShortKeyIsRefused) {
    const Bytes key(32, 0x11);
    const auto none = [](const std::string&) { return false; };
    const auto all = [](const std::string&) { return true; };
    const auto unlisted = decide_zap(zap_request("CURVE", key), none);
    EXPECT_FALSE(unlisted.admitted);
    EXPECT_EQ(unlisted.reply[2], "400");
    EXPECT_NE(unlisted.refusal.find("not admitted by any served job"), std::string::npos);
    EXPECT_NE(unlisted.refusal.find("10.0.0.7"), std::string::npos);
    const auto plain = decide_zap(zap_request("PLAIN", key), all);
    EXPECT_FALSE(plain.admitted);
    EXPECT_NE(plain.refusal.find("mechanism 'PLAIN'"), std::string::npos);
    EXPECT_FALSE(decide_zap(zap_request("CURVE", Bytes(31, 0x11)), all).admitted);
    auto old = zap_request("CURVE", key);
    old[0] = Bytes{'0', '.', '9'};
    EXPECT_FALSE(decide_zap(old, all).admitted);
    EXPECT_EQ(decide_zap(old, all).reply[4], "");
}

}  // namespace
}  // namespace waferprov::host::svc
