// The ledger's storage, quota, retest/alarm rules, state machine and tamper evidence.
#include <sqlite3.h>
#include <sys/resource.h>

#include <chrono>
#include <iostream>
#include <thread>

#include <gtest/gtest.h>

#include "../src/chain.hpp"
#include "test_support.hpp"

namespace waferprov::host {
namespace {

using namespace testing;

std::vector<NewIdentity> fakes(uint64_t from, uint64_t count, const std::string& lot = "LOT1") {
    std::vector<NewIdentity> v;
    for (uint64_t i = from; i < from + count; ++i) v.push_back(fake_identity(i, lot));
    return v;
}

std::unique_ptr<Ledger> open_ok(const fs::path& p, const LedgerConfig& c = test_config()) {
    auto l = open_ledger(p, c);
    EXPECT_TRUE(l.ok()) << (l.ok() ? "" : l.error().describe());
    return l.ok() ? std::move(*l) : nullptr;
}

std::vector<RecordResult> record_ok(Ledger& l, const std::vector<NewIdentity>& batch) {
    auto r = l.record_batch(batch);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
    return r.ok() ? *r : std::vector<RecordResult>{};
}

// Raw SQL on the ledger, as someone editing it behind the ledger's back would (the event log's
// append-only guard removed first).
void tamper(const fs::path& p, const std::string& sql) {
    EXPECT_EQ(raw_sql(p, sql, true), SQLITE_OK);
}

std::vector<std::string> verify_problems(const fs::path& p) {
    auto l = open_existing_ledger(p);
    EXPECT_TRUE(l.ok());
    if (!l.ok()) return {"open failed"};
    auto rep = (*l)->verify(verify_options(p));
    EXPECT_TRUE(rep.ok());
    return rep.ok() ? rep->problems : std::vector<std::string>{"verify failed"};
}

TEST(Ledger, CreatesThenReopensUnderTheSameJob) {
    TempDir dir;
    {
        auto l = open_ok(dir / "l.db");
        ASSERT_TRUE(l);
        record_ok(*l, fakes(0, 3));
    }
    auto l = open_ok(dir / "l.db");
    ASSERT_TRUE(l);
    EXPECT_EQ(l->counts()->issued, 3u);
    EXPECT_EQ(l->quota()->used, 3u);
    EXPECT_EQ(l->config().job_id, "JOB-1");
}

TEST(Ledger, RefusesToOpenALedgerOfAnotherJob) {
    TempDir dir;
    ASSERT_TRUE(open_ok(dir / "l.db"));
    for (auto c : {test_config(1000, "JOB-2"), LedgerConfig{"JOB-1", "OTHER", "WP-TEST", 1000},
                   LedgerConfig{"JOB-1", "ACME", "OTHER", 1000}, test_config(999)}) {
        auto l = open_ledger(dir / "l.db", c);
        ASSERT_FALSE(l.ok());
        EXPECT_EQ(l.error().code, ErrorCode::kInvalidArgument);
        EXPECT_NE(l.error().message.find("belongs to job 'JOB-1'"), std::string::npos)
            << l.error().message;
    }
}

TEST(Ledger, OpenExistingReadsTheJobBindingAndNeverCreates) {
    TempDir dir;
    EXPECT_EQ(open_existing_ledger(dir / "none.db").error().code, ErrorCode::kNotFound);
    EXPECT_FALSE(fs::exists(dir / "none.db"));
    ASSERT_TRUE(open_ok(dir / "l.db", test_config(77)));
    auto l = open_existing_ledger(dir / "l.db");
    ASSERT_TRUE(l.ok());
    EXPECT_EQ((*l)->config().quota, 77u);
    EXPECT_EQ((*l)->config().customer, "ACME");
    write_text(dir / "junk.db", "not a database at all, just some text that is long enough....");
    EXPECT_FALSE(open_existing_ledger(dir / "junk.db").ok());
}

TEST(Ledger, RejectsNonAsciiJobText) {
    TempDir dir;
    EXPECT_FALSE(open_ledger(dir / "l.db", LedgerConfig{"", "ACME", "P", 1}).ok());
    EXPECT_FALSE(open_ledger(dir / "l.db", LedgerConfig{"J\n", "ACME", "P", 1}).ok());
}

TEST(Ledger, NewIdentitiesAreIssuedAndCountedAgainstTheQuota) {
    TempDir dir;
    auto l = open_ok(dir / "l.db", test_config(10));
    auto batch = fakes(0, 4);
    auto res = record_ok(*l, batch);
    ASSERT_EQ(res.size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(res[i].outcome, RecordOutcome::kIssued);
        ASSERT_TRUE(res[i].record);
        EXPECT_EQ(res[i].record->uid, batch[i].uid);
        EXPECT_EQ(res[i].record->state, DieState::kIssued);
        EXPECT_EQ(res[i].record->certificate_der, batch[i].certificate_der);
        EXPECT_NE(res[i].record->issued_us, 0);
    }
    EXPECT_EQ(l->quota()->used, 4u);
    EXPECT_EQ(*l->quota_left(), 6u);
    auto found = l->find_uid(batch[2].uid);
    ASSERT_TRUE(found.ok() && found->has_value());
    EXPECT_EQ(**found, *res[2].record);
}

TEST(Ledger, RetestReturnsTheExistingIdentityAndIsNotCountedAgain) {
    TempDir dir;
    auto l = open_ok(dir / "l.db", test_config(10));
    const auto first = fake_identity(5);
    auto issued = record_ok(*l, {first});
    NewIdentity again = fake_identity(5);
    again.serial = serial_of(999);
    again.wrapped.fill(0xee);
    again.certificate_der.assign(100, 0xcc);
    again.tester = "T2";
    auto res = record_ok(*l, {again});
    ASSERT_EQ(res.size(), 1u);
    EXPECT_EQ(res[0].outcome, RecordOutcome::kReissued);
    ASSERT_TRUE(res[0].record);
    EXPECT_EQ(res[0].record->wrapped, first.wrapped);
    EXPECT_EQ(res[0].record->serial, first.serial);
    EXPECT_EQ(res[0].record->certificate_der, first.certificate_der);
    EXPECT_EQ(res[0].record->reissues, 1u);
    EXPECT_EQ(res[0].record->tester, "T2");
    EXPECT_EQ(l->quota()->used, 1u);
    EXPECT_EQ(l->head()->events, 3u);  // GENESIS, ISSUE, REISSUE
    EXPECT_TRUE(l->verify()->ok());
}

TEST(Ledger, SameUidAtAnotherLocationIsAConflictAndRaisesAnAlarm) {
    TempDir dir;
    auto l = open_ok(dir / "l.db");
    const auto a = fake_identity(1);
    record_ok(*l, {a});
    NewIdentity moved = fake_identity(2);
    moved.uid = a.uid;
    auto res = record_ok(*l, {moved});
    EXPECT_EQ(res[0].outcome, RecordOutcome::kConflict);
    ASSERT_TRUE(res[0].record);
    EXPECT_EQ(res[0].record->loc, a.loc);
    EXPECT_NE(res[0].message.find(a.loc.describe()), std::string::npos) << res[0].message;
    EXPECT_EQ(l->quota()->used, 1u);
    EXPECT_FALSE(l->find_location(moved.loc)->has_value());
    EXPECT_EQ(l->head()->events, 3u);  // GENESIS, ISSUE, ALARM
    EXPECT_TRUE(l->verify()->ok());
}

TEST(Ledger, AnotherUidAtAProvisionedLocationIsAConflict) {
    TempDir dir;
    auto l = open_ok(dir / "l.db");
    const auto a = fake_identity(1);
    record_ok(*l, {a});
    NewIdentity b = fake_identity(2);
    b.loc = a.loc;
    auto res = record_ok(*l, {b});
    EXPECT_EQ(res[0].outcome, RecordOutcome::kConflict);
    EXPECT_EQ(res[0].record->uid, a.uid);
    EXPECT_FALSE(l->find_uid(b.uid)->has_value());
    EXPECT_EQ(l->quota()->used, 1u);
}

// The defect of issue #10: two physical wafers of one lot whose wafer numbers came out equal
// were one wafer to the ledger, so the second was "retested" with the first one's identities.
// Even an offer with the very same UID (a UID that does not depend on the substrate) is refused.
TEST(Ledger, TheSameLocationUnderAnotherSubstrateIdIsAConflictNeverARetest) {
    TempDir dir;
    auto l = open_ok(dir / "l.db");
    const auto a = fake_identity(1);  // LOT1 wafer 1, substrate "LOT1-1"
    record_ok(*l, {a});
    for (bool same_uid : {true, false}) {
        NewIdentity other = fake_identity(2);
        other.loc = a.loc;
        other.loc.substrate = "PH8Q66-02B6";
        if (same_uid) other.uid = a.uid;
        const uint64_t events = l->head()->events;
        auto res = record_ok(*l, {other});
        EXPECT_EQ(res[0].outcome, RecordOutcome::kConflict) << same_uid;
        EXPECT_NE(res[0].message.find("is substrate 'LOT1-1' in the ledger; substrate "
                                      "'PH8Q66-02B6' under the same lot and wafer number"),
                  std::string::npos)
            << res[0].message;
        ASSERT_TRUE(res[0].record);
        EXPECT_EQ(res[0].record->uid, a.uid);
        EXPECT_EQ(l->head()->events, events + 1);  // the ALARM
    }
    // Another die of the other wafer (a location the first has no record for) is refused too.
    NewIdentity elsewhere = fake_identity(3);
    elsewhere.loc.x = 77;
    elsewhere.loc.substrate = "PH8Q66-02B6";
    EXPECT_EQ(record_ok(*l, {elsewhere})[0].outcome, RecordOutcome::kConflict);
    EXPECT_EQ(l->quota()->used, 1u);
    EXPECT_EQ(l->find_uid(a.uid)->value().reissues, 0u);
    auto rep = l->verify();
    ASSERT_TRUE(rep.ok());
    EXPECT_TRUE(rep->ok()) << join(rep->problems);
}

TEST(Ledger, ASubstrateIdKeepsItsWaferNumber) {
    TempDir dir;
    auto l = open_ok(dir / "l.db");
    const auto a = fake_identity(1);  // LOT1 wafer 1, substrate "LOT1-1"
    record_ok(*l, {a});
    NewIdentity renumbered = fake_identity(2, "LOT1", 2);
    renumbered.loc.substrate = "LOT1-1";
    auto res = record_ok(*l, {renumbered});
    EXPECT_EQ(res[0].outcome, RecordOutcome::kConflict);
    EXPECT_NE(res[0].message.find("substrate 'LOT1-1' is LOT1 wafer 1 in the ledger, not LOT1 "
                                  "wafer 2"),
              std::string::npos)
        << res[0].message;
    // Other wafers of the lot, each with its own substrate id, are issued as usual.
    auto ok = record_ok(*l, {fake_identity(3, "LOT1", 2), fake_identity(4, "LOT1", 3)});
    EXPECT_EQ(ok[0].outcome, RecordOutcome::kIssued);
    EXPECT_EQ(ok[1].outcome, RecordOutcome::kIssued);
    EXPECT_EQ(l->quota()->used, 3u);
    EXPECT_TRUE(l->verify()->ok());
}

TEST(Ledger, DeliveryChecksTheSubstrateId) {
    TempDir dir;
    auto l = open_ok(dir / "l.db");
    const auto a = fake_identity(1);
    record_ok(*l, {a});
    DieLocation other = a.loc;
    other.substrate = "OTHER";
    auto res = l->deliver(std::vector<Delivery>{Delivery{a.uid, other}}, "T1");
    ASSERT_TRUE(res.ok());
    EXPECT_EQ((*res)[0].status, TransitionStatus::kLocationMismatch);
    EXPECT_EQ(l->find_uid(a.uid)->value().state, DieState::kIssued);
}

TEST(Ledger, AReusedCertificateSerialIsAConflict) {
    TempDir dir;
    auto l = open_ok(dir / "l.db");
    const auto a = fake_identity(1);
    NewIdentity b = fake_identity(2);
    b.serial = a.serial;
    auto res = record_ok(*l, {a, b});
    EXPECT_EQ(res[0].outcome, RecordOutcome::kIssued);
    EXPECT_EQ(res[1].outcome, RecordOutcome::kConflict);
    EXPECT_EQ(l->counts()->total(), 1u);
}

TEST(Ledger, TheQuotaIsNeverExceededWithinABatchAndRetestsStillWork) {
    TempDir dir;
    auto l = open_ok(dir / "l.db", test_config(5));
    auto res = record_ok(*l, fakes(0, 8));
    for (size_t i = 0; i < 8; ++i)
        EXPECT_EQ(res[i].outcome, i < 5 ? RecordOutcome::kIssued : RecordOutcome::kQuotaExhausted);
    EXPECT_FALSE(res[7].record);
    EXPECT_EQ(l->counts()->total(), 5u);
    EXPECT_EQ(*l->quota_left(), 0u);
    auto retest = record_ok(*l, {fake_identity(3)});
    EXPECT_EQ(retest[0].outcome, RecordOutcome::kReissued);
    EXPECT_TRUE(l->verify()->ok());
}

TEST(Ledger, AnInvalidItemRejectsTheWholeBatch) {
    TempDir dir;
    auto l = open_ok(dir / "l.db");
    auto batch = fakes(0, 3);
    batch[2].serial.clear();
    auto r = l->record_batch(batch);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find("item 2"), std::string::npos);
    EXPECT_EQ(l->counts()->total(), 0u);
    batch = fakes(0, 1);
    batch[0].loc.lot = "L\xc3\xa9";
    EXPECT_FALSE(l->record_batch(batch).ok());
}

TEST(Ledger, LooksUpByLocationAndListsAWaferInOrder) {
    TempDir dir;
    auto l = open_ok(dir / "l.db");
    auto batch = fakes(0, 250);
    std::reverse(batch.begin(), batch.end());
    record_ok(*l, batch);
    record_ok(*l, fakes(1000, 5, "LOT2"));
    auto at = l->find_location(DieLocation{"LOT1", 1, 3, 2, "LOT1-1"});
    ASSERT_TRUE(at.ok() && at->has_value());
    EXPECT_EQ((*at)->uid, uid_of(203));
    EXPECT_FALSE(l->find_location(DieLocation{"LOT1", 2, 3, 2, "LOT1-2"})->has_value());
    auto wafer = l->list_wafer("LOT1", 1);
    ASSERT_TRUE(wafer.ok());
    ASSERT_EQ(wafer->size(), 250u);
    for (size_t i = 1; i < wafer->size(); ++i)
        EXPECT_LT(std::make_pair((*wafer)[i - 1].loc.y, (*wafer)[i - 1].loc.x),
                  std::make_pair((*wafer)[i].loc.y, (*wafer)[i].loc.x));
    std::vector<std::string> lots;
    ASSERT_TRUE(l->for_each([&](const LedgerRecord& r) {
                     lots.push_back(r.loc.lot);
                     return ok_status();
                 }).ok());
    EXPECT_EQ(lots.size(), 255u);
    EXPECT_TRUE(std::is_sorted(lots.begin(), lots.end()));
}

// The tester link's delivery: the UID must belong to the die the tester says it is at, and a
// second delivery is flagged as a retest.
TEST(Ledger, DeliverChecksTheLocationAndFlagsRedeliveries) {
    TempDir dir;
    auto l = open_ok(dir / "l.db");
    auto ids = fakes(0, 2);
    record_ok(*l, ids);
    std::vector<Delivery> want{{ids[0].uid, ids[0].loc}, {ids[1].uid, ids[0].loc}};
    auto d = l->deliver(want, "T1");
    ASSERT_TRUE(d.ok());
    EXPECT_EQ((*d)[0].status, TransitionStatus::kOk);
    EXPECT_FALSE((*d)[0].again);
    EXPECT_EQ((*d)[1].status, TransitionStatus::kLocationMismatch);
    EXPECT_NE((*d)[1].message.find(ids[1].loc.describe()), std::string::npos) << (*d)[1].message;
    EXPECT_EQ(l->find_uid(ids[1].uid).value()->state, DieState::kIssued);  // left alone
    auto again = l->deliver(std::vector<Delivery>{{ids[0].uid, ids[0].loc}}, "T1");
    EXPECT_EQ((*again)[0].status, TransitionStatus::kOk);
    EXPECT_TRUE((*again)[0].again);
    EXPECT_TRUE(l->verify()->ok());
}

// With checkpoints deferred, commits leave the write-ahead log to grow (no request pays for a
// checkpoint) until checkpoint() copies it back; the log is then reused from its start.
TEST(Ledger, DeferredCheckpointsRunOnlyWhenAsked) {
    if (on_postgres())
        GTEST_SKIP() << "SQLite's write-ahead log only: PostgreSQL checkpoints itself";
    TempDir dir;
    auto l = open_ok(dir / "l.db");
    EXPECT_EQ(l->wal_pages(), 0);
    ASSERT_TRUE(l->defer_checkpoints().ok());
    const fs::path wal = dir / "l.db-wal";
    auto wal_size = [&] { return fs::exists(wal) ? fs::file_size(wal) : 0; };
    uint64_t n = 0;
    // Well past SQLite's automatic checkpoint (1000 pages, 4 MB).
    while (wal_size() < 6u << 20) {
        record_ok(*l, fakes(n, 200));
        n += 200;
        ASSERT_LT(n, 100000u) << "the log never grew: automatic checkpoints still on?";
    }
    EXPECT_GE(static_cast<uint64_t>(l->wal_pages()) * 4096, 6u << 20);  // the commit hook counts
    ASSERT_TRUE(l->checkpoint().ok());
    const auto after = wal_size();
    record_ok(*l, fakes(n, 200));  // written at the log's start again
    EXPECT_EQ(wal_size(), after);
    EXPECT_LT(l->wal_pages(), 1000);
    EXPECT_TRUE(l->verify()->ok());
    const auto head = l->head().value();
    l.reset();
    auto again = open_ok(dir / "l.db");
    EXPECT_EQ(again->head().value().events, head.events);
    EXPECT_EQ(again->head().value().hash, head.hash);
    EXPECT_TRUE(again->verify()->ok());
}

// The tester link's retests, as the reports read them: a die delivered again after a FAILED
// result. A redelivery without a result in between (a retry) is not a retest.
TEST(Ledger, RetestsCountDeliveriesAgainAfterAFailedResult) {
    TempDir dir;
    auto l = open_ok(dir / "l.db");
    const auto batch = fakes(0, 3);
    record_ok(*l, batch);
    const auto u = [&](size_t i) { return batch[i].uid; };
    ASSERT_TRUE(l->mark_delivered(std::vector<wpid1::Uid>{u(0), u(1), u(2)}, "T1").ok());
    ASSERT_TRUE(mark_result(*l, u(0), false, "07", "T1").ok());
    ASSERT_TRUE(mark_result(*l, u(1), true, "01", "T1").ok());
    ASSERT_TRUE(l->mark_delivered(std::vector<wpid1::Uid>{u(2)}, "T1").ok());  // a retry
    EXPECT_TRUE(l->retests()->empty());
    ASSERT_TRUE(l->mark_delivered(std::vector<wpid1::Uid>{u(0)}, "T2").ok());  // retest
    ASSERT_TRUE(l->mark_delivered(std::vector<wpid1::Uid>{u(0)}, "T2").ok());  // its retry
    auto r = l->retests();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, (std::map<wpid1::Uid, uint32_t>{{u(0), 1}}));
    ASSERT_TRUE(mark_result(*l, u(0), false, "07", "T2").ok());
    ASSERT_TRUE(l->mark_delivered(std::vector<wpid1::Uid>{u(0)}, "T3").ok());
    EXPECT_EQ(l->retests()->at(u(0)), 2u);
}

TEST(Ledger, DeliveryRecordsTheSiteAndTheChainBindsIt) {
    TempDir dir;
    auto l = open_ok(dir / "l.db");
    const auto a = fake_identity(1);
    record_ok(*l, {a});
    EXPECT_EQ(l->find_uid(a.uid)->value().site, -1);
    ASSERT_TRUE(l->deliver(std::vector<Delivery>{Delivery{a.uid, a.loc, 7}}, "T1").ok());
    EXPECT_EQ(l->find_uid(a.uid)->value().site, 7);
    auto rep = l->verify();
    ASSERT_TRUE(rep.ok());
    EXPECT_TRUE(rep->ok()) << join(rep->problems);
    l.reset();
    tamper(dir / "l.db", "UPDATE records SET site = 3;");
    auto problems = verify_problems(dir / "l.db");
    EXPECT_TRUE(any_contains(problems, "site")) << join(problems);
}

TEST(Ledger, StateMachineDeliverResultVoid) {
    TempDir dir;
    auto l = open_ok(dir / "l.db");
    record_ok(*l, fakes(0, 6));
    const auto u = [](uint64_t n) { return uid_of(n); };

    // A result before delivery, and unknown UIDs.
    auto r = mark_result(*l, u(0), true, "01", "T1");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, TransitionStatus::kNotDelivered);
    EXPECT_EQ(mark_result(*l, u(77), true, "01", "T1")->status, TransitionStatus::kUnknownUid);

    std::vector<wpid1::Uid> uids{u(0), u(1), u(2), u(3), u(77)};
    auto d = l->mark_delivered(uids, "T9");
    ASSERT_TRUE(d.ok());
    for (size_t i = 0; i < 4; ++i) {
        EXPECT_EQ((*d)[i].status, TransitionStatus::kOk);
        EXPECT_EQ((*d)[i].record->state, DieState::kDelivered);
        EXPECT_EQ((*d)[i].record->tester, "T9");
        EXPECT_NE((*d)[i].record->delivered_us, 0);
    }
    EXPECT_EQ((*d)[4].status, TransitionStatus::kUnknownUid);
    // Delivered again (retest): allowed and logged.
    auto again = l->mark_delivered(std::vector<wpid1::Uid>{u(0)}, "T9");
    EXPECT_EQ((*again)[0].status, TransitionStatus::kOk);
    EXPECT_NE((*again)[0].message.find("again"), std::string::npos);

    std::vector<DieResult> results{{u(0), true, "01"}, {u(1), false, "07"}, {u(4), true, "01"}};
    auto res = l->mark_results(results, "T9");
    ASSERT_TRUE(res.ok());
    EXPECT_EQ((*res)[0].status, TransitionStatus::kOk);
    EXPECT_EQ((*res)[0].record->state, DieState::kProgrammed);
    EXPECT_EQ((*res)[0].record->bin, "01");
    EXPECT_EQ((*res)[1].record->state, DieState::kFailed);
    EXPECT_EQ((*res)[2].status, TransitionStatus::kNotDelivered);
    // The same result again is acknowledged without a change; another one is a duplicate.
    const auto head = l->head().value();
    auto same = mark_result(*l, u(0), true, "01", "T9");
    EXPECT_EQ(same->status, TransitionStatus::kOk);
    EXPECT_TRUE(same->again);
    EXPECT_EQ(l->head().value().events, head.events);
    EXPECT_EQ(mark_result(*l, u(0), true, "02", "T9")->status, TransitionStatus::kDuplicateResult);
    EXPECT_EQ(mark_result(*l, u(0), false, "01", "T9")->status, TransitionStatus::kDuplicateResult);
    EXPECT_EQ(mark_result(*l, u(1), true, "01", "T9")->status, TransitionStatus::kDuplicateResult);
    EXPECT_EQ((*l->mark_delivered(std::vector<wpid1::Uid>{u(0)}, "T9"))[0].status,
              TransitionStatus::kAlreadyProgrammed);
    // A FAILED die may be delivered again for a retest, then report a new result.
    auto retry = l->mark_delivered(std::vector<wpid1::Uid>{u(1)}, "T9");
    EXPECT_EQ((*retry)[0].status, TransitionStatus::kOk);
    EXPECT_EQ((*retry)[0].record->bin, "");
    EXPECT_EQ(mark_result(*l, u(1), true, "01", "T9")->status, TransitionStatus::kOk);

    // VOID.
    EXPECT_EQ(l->void_identity(u(2), "")->status, TransitionStatus::kInvalidArgument);
    auto v = l->void_identity(u(2), "die scrapped");
    EXPECT_EQ(v->status, TransitionStatus::kOk);
    EXPECT_EQ(v->record->state, DieState::kVoid);
    EXPECT_EQ(l->void_identity(u(2), "again")->status, TransitionStatus::kVoided);
    EXPECT_EQ(mark_result(*l, u(2), true, "01", "T9")->status, TransitionStatus::kVoided);
    EXPECT_EQ((*l->mark_delivered(std::vector<wpid1::Uid>{u(2)}, "T9"))[0].status,
              TransitionStatus::kVoided);
    EXPECT_EQ(l->void_identity(u(99), "x")->status, TransitionStatus::kUnknownUid);
    // A retest of a VOID die is refused (not reissued) with an alarm.
    auto rt = record_ok(*l, {fake_identity(2)});
    EXPECT_EQ(rt[0].outcome, RecordOutcome::kConflict);
    EXPECT_EQ(rt[0].record->state, DieState::kVoid);

    const auto c = *l->counts();
    EXPECT_EQ(c.programmed, 2u);
    EXPECT_EQ(c.failed, 0u);
    EXPECT_EQ(c.delivered, 1u);
    EXPECT_EQ(c.voided, 1u);
    EXPECT_EQ(c.issued, 2u);
    EXPECT_EQ(l->quota()->used, 6u);  // a VOID identity still counts
    auto rep = l->verify();
    ASSERT_TRUE(rep.ok());
    EXPECT_TRUE(rep->ok()) << join(rep->problems);
}

// ---- tamper evidence ------------------------------------------------------------------------

class LedgerTamper : public ::testing::Test {
protected:
    void SetUp() override {
        auto l = open_ok(path());
        ASSERT_TRUE(l);
        record_ok(*l, fakes(0, 5));
        ASSERT_TRUE(l->mark_delivered(std::vector<wpid1::Uid>{uid_of(1), uid_of(2)}, "T1").ok());
        ASSERT_TRUE(mark_result(*l, uid_of(1), true, "01", "T1").ok());
        record_ok(*l, {fake_identity(3)});  // REISSUE
        NewIdentity b = fake_identity(9);
        b.loc = fake_identity(0).loc;
        record_ok(*l, {b});  // ALARM
        auto rep = l->verify();
        ASSERT_TRUE(rep.ok() && rep->ok()) << join(rep->problems);
        events_ = rep->events;
    }
    fs::path path() const { return dir_ / "l.db"; }
    TempDir dir_;
    uint64_t events_ = 0;
};

TEST_F(LedgerTamper, UntouchedLedgerVerifies) {
    EXPECT_TRUE(verify_problems(path()).empty());
    EXPECT_EQ(events_, 10u);  // GENESIS, 5 ISSUE, one DELIVER for two dies, RESULT, REISSUE, ALARM
}

TEST_F(LedgerTamper, EditedRecordFieldsAreDetectedAndNamed) {
    const std::string uid1 = to_hex(uid_of(1));
    const std::vector<std::pair<std::string, std::string>> edits = {
        {"state = 'ISSUED'", "state"},
        {"wrapped_key = zeroblob(40)", "wrapped_key"},
        {"certificate = x'00'", "certificate"},
        {"bin = '02'", "bin"},
        {"x = 42", "location"},
        {"reissues = 3", "reissues"},
        {"tester = 'T7'", "tester"},
        {"updated_us = 5", "times"},
        {"public_key = zeroblob(65)", "public_key"}};
    for (const auto& [set, name] : edits) {
        TempDir copy;
        copy_ledger(path(), copy / "l.db");
        tamper(copy / "l.db", "UPDATE records SET " + set + " WHERE uid = x'" + uid1 + "';");
        auto problems = verify_problems(copy / "l.db");
        ASSERT_FALSE(problems.empty()) << set;
        EXPECT_TRUE(any_contains(problems, "record UID " + uid1)) << join(problems);
        EXPECT_TRUE(any_contains(problems, name)) << join(problems);
    }
}

TEST_F(LedgerTamper, DeletedAndInsertedRecordsAreDetected) {
    tamper(path(), "DELETE FROM records WHERE uid = x'" + to_hex(uid_of(4)) + "';");
    auto problems = verify_problems(path());
    EXPECT_TRUE(any_contains(problems, "missing from the records table")) << join(problems);
    tamper(path(), "INSERT INTO records SELECT 99, x'" + to_hex(uid_of(50)) +
                       "', lot, wafer, 50, 50, x'99', public_key, wrapped_key, certificate, "
                       "state, issued_us, delivered_us, result_us, updated_us, tester, bin, "
                       "reissues, void_reason, substrate, site FROM records WHERE uid = x'" +
                       to_hex(uid_of(3)) + "';");
    problems = verify_problems(path());
    EXPECT_TRUE(any_contains(problems, "record UID " + to_hex(uid_of(50)) +
                                           " (LOT1 wafer 1 [LOT1-1] (50, 50)) has no ISSUE event"))
        << join(problems);
}

TEST_F(LedgerTamper, DeletedEventIsDetected) {
    tamper(path(), "DELETE FROM events WHERE seq = 9;");
    auto problems = verify_problems(path());
    EXPECT_TRUE(any_contains(problems, "event row seq 10: expected seq 9")) << join(problems);
}

TEST_F(LedgerTamper, DeletedLastEventWithItsRecordChangeIsDetected) {
    // The last record change (the REISSUE, event 9) removed and the head rewound to event 8:
    // the chain is self-consistent but no longer replays to the records table.
    tamper(path(),
           "DELETE FROM events WHERE seq >= 9;"
           "UPDATE job SET head_seq = 8, head_hash = (SELECT hash FROM events WHERE seq = 8);");
    auto problems = verify_problems(path());
    EXPECT_TRUE(any_contains(problems, "record UID " + to_hex(uid_of(3)))) << join(problems);
}

TEST_F(LedgerTamper, InsertedEventIsDetected) {
    tamper(path(),
           "INSERT INTO events SELECT 100, type, uid, time_us, payload, hash FROM events "
           "WHERE seq = 5;");
    auto problems = verify_problems(path());
    EXPECT_TRUE(any_contains(problems, "event row seq 100")) << join(problems);
}

TEST_F(LedgerTamper, ReorderedEventsAreDetected) {
    tamper(path(),
           "UPDATE events SET seq = 1000 WHERE seq = 3;"
           "UPDATE events SET seq = 3 WHERE seq = 4;"
           "UPDATE events SET seq = 4 WHERE seq = 1000;");
    auto problems = verify_problems(path());
    EXPECT_TRUE(any_contains(problems, "event 3")) << join(problems);
}

TEST_F(LedgerTamper, EditedEventHashIsDetected) {
    tamper(path(), "UPDATE events SET hash = zeroblob(32) WHERE seq = 6;");
    auto problems = verify_problems(path());
    EXPECT_TRUE(any_contains(problems, "event 6: stored hash")) << join(problems);
}

TEST_F(LedgerTamper, EditedPayloadIsDetectedEvenWithItsHashRecomputed) {
    // Change the bin of the RESULT event and the record alike, recomputing that event's hash:
    // the next event's hash no longer links.
    auto l = open_existing_ledger(path());
    tamper(path(),
           "UPDATE events SET payload = replace(payload, '\"bin\":\"01\"', "
           "'\"bin\":\"09\"') WHERE type = 'RESULT';"
           "UPDATE records SET bin = '09' WHERE uid = x'" +
               to_hex(uid_of(1)) + "';");
    auto problems = verify_problems(path());
    EXPECT_TRUE(any_contains(problems, "stored hash")) << join(problems);
    EXPECT_TRUE(any_contains(problems, "stored chain head")) << join(problems);
}

TEST_F(LedgerTamper, EditedHeadAndQuotaCounterAreDetected) {
    tamper(path(), "UPDATE job SET head_hash = zeroblob(32);");
    EXPECT_TRUE(any_contains(verify_problems(path()), "stored chain head"));
    TempDir copy;
    copy_ledger(path(), copy / "l.db");
    tamper(copy / "l.db", "UPDATE job SET quota_used = quota_used - 1;");
    EXPECT_TRUE(any_contains(verify_problems(copy / "l.db"), "quota counter"));
}

TEST_F(LedgerTamper, TheEventLogRefusesUpdatesThroughSql) {
    EXPECT_NE(raw_sql(path(), "DELETE FROM events WHERE seq = 2"), SQLITE_OK);
    EXPECT_NE(raw_sql(path(), "UPDATE events SET type = 'X'"), SQLITE_OK);
    if (on_postgres()) {
        EXPECT_NE(raw_sql(path(), "TRUNCATE events"), SQLITE_OK);
    }
    EXPECT_TRUE(verify_problems(path()).empty());
}

// ---- threads and throughput -----------------------------------------------------------------

TEST(Ledger, ThreadsShareOneLedger) {
    TempDir dir;
    auto l = open_ok(dir / "l.db", test_config(300));
    std::vector<std::thread> threads;
    std::atomic<int> issued{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int b = 0; b < 10; ++b) {
                std::vector<NewIdentity> batch;
                for (int i = 0; i < 10; ++i)
                    batch.push_back(fake_identity(static_cast<uint64_t>(t * 1000 + b * 10 + i),
                                                  "LOT" + std::to_string(t)));
                auto r = l->record_batch(batch);
                ASSERT_TRUE(r.ok());
                for (const auto& x : *r) issued += x.outcome == RecordOutcome::kIssued;
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(issued.load(), 300);
    EXPECT_EQ(l->counts()->total(), 300u);
    EXPECT_TRUE(l->verify()->ok());
}

TEST(Ledger, RecordBatchThroughputWithFullSync) {
    TempDir dir;
    auto l = open_ok(dir / "l.db", test_config(1000000));
    constexpr int kBatches = 40, kBatch = 128;
    std::vector<std::vector<NewIdentity>> batches;
    for (int b = 0; b < kBatches; ++b)
        batches.push_back(fakes(static_cast<uint64_t>(b) * kBatch, kBatch));
    for (auto& b : batches)
        for (auto& id : b) id.certificate_der.assign(480, 0x30);  // about a real certificate's size
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& b : batches) ASSERT_TRUE(l->record_batch(b).ok());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double rate = kBatches * kBatch / s;
    std::cout << "record_batch: " << kBatches << " batches of " << kBatch << " in " << s
              << " s = " << static_cast<long>(rate) << " records/s (synchronous=FULL, WAL)\n";
    RecordProperty("records_per_second", static_cast<int>(rate));
    EXPECT_EQ(l->counts()->total(), static_cast<uint64_t>(kBatches * kBatch));
}

// The hand-written ISSUE payload must be byte-identical to the canonical nlohmann form (which
// the replayer requires), for any valid field values.
TEST(Ledger, IssuePayloadMatchesCanonicalJson) {
    auto recs = fakes(7, 4);
    const char* texts[] = {"LOT1", "a\"b\\c", "\\", "~ !\"#"};
    for (size_t i = 0; i < recs.size(); ++i) {
        LedgerRecord r;
        r.uid = recs[i].uid;
        r.loc = recs[i].loc;
        r.loc.lot = texts[i];
        r.loc.x = i % 2 ? -5 : 2147483647;
        r.loc.y = i % 2 ? -2147483647 - 1 : 0;
        r.loc.wafer = static_cast<int>(i) * 13;
        r.serial = recs[i].serial;
        r.public_key = recs[i].public_key;
        r.wrapped = recs[i].wrapped;
        r.certificate_der = recs[i].certificate_der;
        r.tester = texts[(i + 1) % 4];
        r.bin = i == 3 ? "b\"" : "";
        r.void_reason = i == 2 ? "v\\" : "";
        r.reissues = static_cast<uint32_t>(i * 1000000);
        r.issued_us = r.updated_us = i % 2 ? -1 : INT64_MAX;
        r.delivered_us = static_cast<int64_t>(i);
        const uint64_t seq = i == 0 ? UINT64_MAX / 2 : i + 2;
        const int64_t time = i == 1 ? INT64_MIN : 1716800000000000;
        nlohmann::json j{{"uid", to_hex(r.uid)},
                         {"record", chain::record_json(r)},
                         {"quota_used", uint64_t{i} * 77},
                         {"seq", seq},
                         {"type", "ISSUE"},
                         {"time", time}};
        std::string got;
        chain::issue_payload(got, r, seq, time, uint64_t{i} * 77);
        EXPECT_EQ(got, chain::canonical(j));
        for (const char* type : {"DELIVER", "RESULT"}) {
            nlohmann::json t{{"uid", to_hex(r.uid)},
                             {"after", chain::mutable_json(r)},
                             {"seq", seq},
                             {"type", type},
                             {"time", time}};
            chain::transition_payload(got, type, r, seq, time);
            EXPECT_EQ(got, chain::canonical(t));
        }
        // A touchdown's DELIVER event: this record and its neighbour, in the order given.
        LedgerRecord other = r;
        other.uid[0] ^= 0xff;
        other.bin = "\x7e";
        const std::vector<LedgerRecord> dies{r, other};
        nlohmann::json d{
            {"dies", nlohmann::json::array()}, {"seq", seq}, {"type", "DELIVER"}, {"time", time}};
        for (const auto& die : dies)
            d["dies"].push_back({{"uid", to_hex(die.uid)}, {"after", chain::mutable_json(die)}});
        chain::deliver_payload(got, dies, seq, time);
        EXPECT_EQ(got, chain::canonical(d));
        EXPECT_EQ(chain::delivered_uids(got), (std::vector<wpid1::Uid>{r.uid, other.uid}));
    }
}

// CPU cost of record_batch per new identity, batches of 256 (the pipeline's batch size). User
// time is the ledger's own work; system time includes the WAL writes and fsync.
TEST(Ledger, RecordBatchThroughputCpuPerRecord) {
    TempDir dir;
    auto l = open_ok(dir / "l.db", test_config(1000000));
    constexpr int kBatches = 40, kBatch = 256;
    std::vector<std::vector<NewIdentity>> batches;
    for (int b = 0; b < kBatches; ++b)
        batches.push_back(fakes(static_cast<uint64_t>(b) * kBatch, kBatch));
    for (auto& b : batches)
        for (auto& id : b) id.certificate_der.assign(480, 0x30);
    auto cpu = [] {
        rusage ru{};
        getrusage(RUSAGE_SELF, &ru);
        auto us = [](const timeval& t) { return double(t.tv_sec) * 1e6 + double(t.tv_usec); };
        return std::pair<double, double>(us(ru.ru_utime), us(ru.ru_stime));
    };
    const auto c0 = cpu();
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& b : batches) ASSERT_TRUE(l->record_batch(b).ok());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto c1 = cpu();
    const double n = kBatches * kBatch;
    const double user = (c1.first - c0.first) / n, sys = (c1.second - c0.second) / n;
    std::cout << "record_batch CPU per new identity (batches of " << kBatch << "): user " << user
              << " us, sys " << sys << " us, total " << user + sys << " us; wall " << s * 1e6 / n
              << " us\n";
    RecordProperty("cpu_user_us_per_record_x100", static_cast<int>(user * 100));
    RecordProperty("cpu_sys_us_per_record_x100", static_cast<int>(sys * 100));
    EXPECT_EQ(l->counts()->total(), static_cast<uint64_t>(n));
}

// ---- group commit (issue #17) ----------------------------------------------------------------

// Holds the first commit open (from on_commit, while its leader still owns the ledger) until
// `want` requests have queued behind it: the next transaction must then carry all of them.
// Deterministic: the grouping is forced by the wait, not hoped for from timing.
struct HoldFirstCommit {
    Ledger& l;
    size_t want;
    std::atomic<bool> in_first{false};
    std::atomic<int> commits{0};
    void install() {
        l.on_commit([this](const Ledger::CommitNote&) {
            if (commits++ != 0) return;
            in_first = true;
            // group_stats() takes only the grouping's own lock, never the ledger's.
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
            while (l.group_stats().queued < want && std::chrono::steady_clock::now() < deadline)
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
        });
    }
};

TEST(LedgerGroupCommit, ConcurrentRequestsShareOneTransactionEachWithItsOwnOutcome) {
    TempDir dir;
    auto l = open_ok(dir / "l.db");
    auto ids = fakes(0, 40);
    record_ok(*l, ids);
    // Dies 0..3 delivered and PROGRAMMED before the group: a retest of them is refused.
    std::vector<Delivery> pre;
    for (int i = 0; i < 4; ++i) pre.push_back({ids[i].uid, ids[i].loc, i});
    ASSERT_TRUE(l->deliver(pre, "T0").ok());
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(mark_result(*l, ids[i].uid, true, "1", "T0").ok());
    const auto before = l->group_stats();

    HoldFirstCommit hold{*l, 7};
    hold.install();
    // The leader of the first group: a delivery of dies 4..7.
    std::vector<Result<std::vector<TransitionResult>>> out(8, std::vector<TransitionResult>{});
    auto deliver = [&](size_t slot, std::vector<Delivery> d, std::string tester) {
        out[slot] = l->deliver(d, tester);
    };
    std::vector<std::thread> threads;
    threads.emplace_back(deliver, 0,
                         std::vector<Delivery>{{ids[4].uid, ids[4].loc, 0},
                                               {ids[5].uid, ids[5].loc, 1},
                                               {ids[6].uid, ids[6].loc, 2},
                                               {ids[7].uid, ids[7].loc, 3}},
                         "T0");
    while (!hold.in_first) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // Seven requests queue behind it: five testers' fresh deliveries, one request refused as a
    // whole (a retest of dies already PROGRAMMED, and a UID the ledger never issued), and one
    // request of results for dies never delivered.
    for (size_t t = 1; t <= 5; ++t) {
        std::vector<Delivery> d;
        for (size_t k = 0; k < 4; ++k) {
            const auto& id = ids[8 + (t - 1) * 4 + k];
            d.push_back({id.uid, id.loc, static_cast<int>(k)});
        }
        threads.emplace_back(deliver, t, d, "T" + std::to_string(t));
    }
    const auto stranger = fake_identity(999);
    threads.emplace_back(
        deliver, 6,
        std::vector<Delivery>{{ids[0].uid, ids[0].loc, 0}, {stranger.uid, stranger.loc, 1}}, "T6");
    threads.emplace_back([&] {
        std::vector<DieResult> r{{ids[30].uid, true, "1"}, {ids[31].uid, false, "7"}};
        auto res = l->mark_results(r, "T7");
        out[7] = std::move(res);
    });
    for (auto& t : threads) t.join();

    const auto after = l->group_stats();
    EXPECT_EQ(after.transactions - before.transactions, 2u) << "the 7 queued went in one";
    EXPECT_EQ(after.requests - before.requests, 8u);
    EXPECT_EQ(after.largest, 7u);
    EXPECT_EQ(after.queued, 0u);

    // Each request's outcome is the one it would have had alone.
    for (size_t t = 0; t <= 5; ++t) {
        ASSERT_TRUE(out[t].ok()) << out[t].error().describe();
        ASSERT_EQ(out[t]->size(), 4u);
        for (const auto& tr : *out[t]) {
            EXPECT_EQ(tr.status, TransitionStatus::kOk) << tr.message;
            EXPECT_FALSE(tr.again);
            EXPECT_EQ(l->find_uid(tr.uid).value()->state, DieState::kDelivered);
            EXPECT_EQ(l->find_uid(tr.uid).value()->tester, "T" + std::to_string(t));
        }
    }
    ASSERT_TRUE(out[6].ok());
    EXPECT_EQ((*out[6])[0].status, TransitionStatus::kAlreadyProgrammed);
    EXPECT_EQ((*out[6])[1].status, TransitionStatus::kUnknownUid);
    ASSERT_TRUE(out[7].ok());
    EXPECT_EQ((*out[7])[0].status, TransitionStatus::kNotDelivered);
    EXPECT_EQ((*out[7])[1].status, TransitionStatus::kNotDelivered);
    EXPECT_EQ(l->find_uid(ids[30].uid).value()->state, DieState::kIssued);
    EXPECT_EQ(l->find_uid(ids[0].uid).value()->state, DieState::kProgrammed);
    auto rep = l->verify();
    ASSERT_TRUE(rep.ok());
    EXPECT_TRUE(rep->ok()) << join(rep->problems);
    EXPECT_EQ(l->counts()->delivered, 24u);
}

// A request that fails while its group is applied (here a storage error raised by a trigger on
// its second die, after its first die was already written) is rolled back to its savepoint
// and gets the error; the requests before and after it in the same transaction commit.
TEST(LedgerGroupCommit, AFailedRequestRollsBackAloneInsideItsGroup) {
    TempDir dir;
    auto l = open_ok(dir / "l.db");
    auto ids = fakes(0, 12);
    record_ok(*l, ids);
    {
        const std::string sql =
            on_postgres()
                ? "CREATE FUNCTION inject_failure() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                  "RAISE EXCEPTION 'injected failure'; END $$; CREATE TRIGGER inject_failure "
                  "BEFORE UPDATE ON records FOR EACH ROW WHEN (NEW.uid = '\\x" +
                      to_hex(ids[5].uid) + "'::bytea) EXECUTE FUNCTION inject_failure();"
                : "CREATE TRIGGER inject_failure BEFORE UPDATE ON records WHEN NEW.uid = x'" +
                      to_hex(ids[5].uid) + "' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;";
        EXPECT_EQ(raw_sql(dir / "l.db", sql), SQLITE_OK);
    }
    HoldFirstCommit hold{*l, 3};
    hold.install();
    std::vector<Result<std::vector<TransitionResult>>> out(4, std::vector<TransitionResult>{});
    std::vector<std::thread> threads;
    auto deliver = [&](size_t slot, size_t first) {
        std::vector<Delivery> d;
        for (size_t k = first; k < first + 3; ++k) d.push_back({ids[k].uid, ids[k].loc, -1});
        out[slot] = l->deliver(d, "T" + std::to_string(slot));
    };
    threads.emplace_back(deliver, 0, 0);
    while (!hold.in_first) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    threads.emplace_back(deliver, 1, 3);  // dies 3, 4, 5: fails at die 5
    while (l->group_stats().queued < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    threads.emplace_back(deliver, 2, 6);
    threads.emplace_back(deliver, 3, 9);
    for (auto& t : threads) t.join();

    // One transaction after the held one, committing requests 2 and 3 (request 1 was in it
    // too, rolled back: the figures count committed requests).
    EXPECT_EQ(l->group_stats().transactions, 2u);  // record_batch does not go through the group
    EXPECT_EQ(l->group_stats().largest, 2u);
    ASSERT_FALSE(out[1].ok());
    EXPECT_NE(out[1].error().message.find("injected failure"), std::string::npos)
        << out[1].error().describe();
    for (size_t k = 3; k < 6; ++k)  // die 3 and 4 were written, then rolled back with die 5
        EXPECT_EQ(l->find_uid(ids[k].uid).value()->state, DieState::kIssued) << k;
    for (size_t slot : {0, 2, 3}) {
        ASSERT_TRUE(out[slot].ok()) << out[slot].error().describe();
        for (const auto& tr : *out[slot]) EXPECT_EQ(tr.status, TransitionStatus::kOk);
    }
    for (size_t k : {0, 1, 2, 6, 7, 8, 9, 10, 11})
        EXPECT_EQ(l->find_uid(ids[k].uid).value()->state, DieState::kDelivered) << k;
    // The chain holds exactly the committed events: 12 ISSUE, one DELIVER per committed request
    // (3, listing 9 dies), no gap where the rolled-back request's event was.
    auto rep = l->verify();
    ASSERT_TRUE(rep.ok());
    EXPECT_TRUE(rep->ok()) << join(rep->problems);
    EXPECT_EQ(l->head()->events, 1u + 12u + 3u);
}

}  // namespace
}  // namespace waferprov::host
