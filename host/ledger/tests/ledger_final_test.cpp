// Final test in the ledger (docs/final-test.md): challenges only for parts PROGRAMMED at sort,
// single use and bound to a session, verdicts recorded once, no quota used, the chain verifies.
#include <gtest/gtest.h>

#include "test_support.hpp"

namespace waferprov::host {
namespace {

using namespace testing;

FinalNonce nonce_of(uint8_t n) {
    FinalNonce v{};
    v.fill(n);
    return v;
}

FinalLocation strip_pos(int site, int row, int column) {
    return FinalLocation{"LOT1", "HDL-3", site, "STRIP-9", row, column};
}

FinalLocation no_carrier(int site) { return FinalLocation{"LOT1", "HDL-3", site, "", -1, -1}; }

// A ledger holding dies 0..5 of LOT1 wafer 1: 0..3 PROGRAMMED, 4 FAILED at sort, 5 VOID.
std::unique_ptr<Ledger> sorted_ledger(const fs::path& p) {
    auto l = open_ledger(p, test_config(10));
    EXPECT_TRUE(l.ok());
    if (!l.ok()) return nullptr;
    std::vector<NewIdentity> batch;
    std::vector<wpid1::Uid> uids;
    for (uint64_t i = 0; i < 6; ++i) {
        batch.push_back(fake_identity(i));
        uids.push_back(batch.back().uid);
    }
    EXPECT_TRUE((*l)->record_batch(batch).ok());
    EXPECT_TRUE((*l)->mark_delivered(uids, "T1").ok());
    for (uint64_t i = 0; i < 5; ++i)
        EXPECT_TRUE(mark_result(**l, uid_of(i), i < 4, i < 4 ? "1" : "7", "T1").ok());
    EXPECT_TRUE((*l)->void_identity(uid_of(5), "scrapped").ok());
    return std::move(*l);
}

void expect_chain_verifies(Ledger& l) {
    auto v = l.verify();
    ASSERT_TRUE(v.ok()) << v.error().describe();
    EXPECT_TRUE(v->ok()) << join(v->problems);
}

TEST(LedgerFinalTest, AVerificationIssuesNothingAndUsesNoQuota) {
    TempDir dir;
    auto l = sorted_ledger(dir / "l.db");
    const auto before_quota = l->quota()->used;
    const auto before_counts = *l->counts();
    const FinalChallenge ch{uid_of(0), strip_pos(1, 0, 3), nonce_of(0x11)};
    auto opened = l->open_challenges(std::span(&ch, 1), 0xfeedface12345678ULL, "T9");
    ASSERT_TRUE(opened.ok()) << opened.error().describe();
    ASSERT_EQ(opened->at(0).status, FinalStatus::kOk) << opened->at(0).message;
    ASSERT_TRUE(opened->at(0).final_record);
    EXPECT_EQ(opened->at(0).final_record->state, FinalState::kChallenged);
    EXPECT_TRUE(opened->at(0).final_record->open);
    const FinalResult res{uid_of(0), nonce_of(0x11), FinalVerdict::kVerified, "1"};
    auto rec = l->record_final_results(std::span(&res, 1), 0xfeedface12345678ULL, "T9");
    ASSERT_TRUE(rec.ok()) << rec.error().describe();
    ASSERT_EQ(rec->at(0).status, FinalStatus::kOk) << rec->at(0).message;
    auto fin = l->find_final(uid_of(0));
    ASSERT_TRUE(fin.ok() && fin->has_value());
    EXPECT_EQ((*fin)->state, FinalState::kVerified);
    EXPECT_FALSE((*fin)->open);
    EXPECT_EQ((*fin)->loc, strip_pos(1, 0, 3));
    EXPECT_EQ((*fin)->session, 0xfeedface12345678ULL);
    EXPECT_EQ(l->quota()->used, before_quota);
    EXPECT_EQ(*l->counts(), before_counts);
    EXPECT_EQ(l->find_uid(uid_of(0))->value().state, DieState::kProgrammed);
    expect_chain_verifies(*l);
}

TEST(LedgerFinalTest, OnlyPartsProgrammedAtSortAreChallenged) {
    TempDir dir;
    auto l = sorted_ledger(dir / "l.db");
    const std::vector<FinalChallenge> items = {
        {uid_of(99), no_carrier(0), nonce_of(1)},  // never provisioned
        {uid_of(4), no_carrier(1), nonce_of(2)},   // FAILED at sort
        {uid_of(5), no_carrier(2), nonce_of(3)},   // VOID
        {uid_of(1), no_carrier(3), nonce_of(4)},
        {uid_of(2), FinalLocation{"LOT1", "HDL\x01", 4, "", -1, -1}, nonce_of(5)},
        {uid_of(3), FinalLocation{"LOT1", "HDL-3", 5, "STRIP-9", -1, -1}, nonce_of(6)},
    };
    auto r = l->open_challenges(items, 7, "T9");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->at(0).status, FinalStatus::kUnknownUid);
    EXPECT_NE(r->at(0).message.find("never provisioned"), std::string::npos);
    EXPECT_EQ(r->at(1).status, FinalStatus::kNotProgrammed);
    EXPECT_NE(r->at(1).message.find("FAILED"), std::string::npos) << r->at(1).message;
    EXPECT_EQ(r->at(2).status, FinalStatus::kVoided);
    EXPECT_EQ(r->at(3).status, FinalStatus::kOk);
    EXPECT_EQ(r->at(4).status, FinalStatus::kInvalidArgument);
    EXPECT_EQ(r->at(5).status, FinalStatus::kInvalidArgument);  // a carrier without a position
    auto all = l->list_final();
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(all->size(), 1u);
    EXPECT_EQ(all->at(0).uid, uid_of(1));
    expect_chain_verifies(*l);
}

TEST(LedgerFinalTest, AChallengeIsSingleUseAndBoundToItsSession) {
    TempDir dir;
    auto l = sorted_ledger(dir / "l.db");
    const FinalChallenge ch{uid_of(2), strip_pos(1, 1, 1), nonce_of(0x22)};
    ASSERT_TRUE(l->open_challenges(std::span(&ch, 1), 100, "T9").ok());
    // Another session cannot answer it.
    const FinalResult res{uid_of(2), nonce_of(0x22), FinalVerdict::kVerified, "1"};
    auto foreign = l->record_final_results(std::span(&res, 1), 200, "T9");
    ASSERT_TRUE(foreign.ok());
    EXPECT_EQ(foreign->at(0).status, FinalStatus::kChallengeRefused);
    EXPECT_NE(foreign->at(0).message.find("another session"), std::string::npos);
    // A wrong nonce is not an answer either.
    const FinalResult wrong{uid_of(2), nonce_of(0x23), FinalVerdict::kVerified, "1"};
    EXPECT_EQ(l->record_final_results(std::span(&wrong, 1), 100, "T9")->at(0).status,
              FinalStatus::kChallengeRefused);
    // Its own session answers once; any later answer, even the same one again, is refused.
    EXPECT_EQ(l->record_final_results(std::span(&res, 1), 100, "T9")->at(0).status,
              FinalStatus::kOk);
    auto again = l->record_final_results(std::span(&res, 1), 100, "T9");
    EXPECT_EQ(again->at(0).status, FinalStatus::kChallengeRefused);
    EXPECT_NE(again->at(0).message.find("single use"), std::string::npos);
    EXPECT_NE(again->at(0).message.find("VERIFIED stands"), std::string::npos);
    const FinalResult other{uid_of(2), nonce_of(0x22), FinalVerdict::kFailed, "9"};
    auto replay = l->record_final_results(std::span(&other, 1), 100, "T9");
    EXPECT_EQ(replay->at(0).status, FinalStatus::kChallengeRefused);
    EXPECT_EQ(l->find_final(uid_of(2))->value().state, FinalState::kVerified);
    // A new challenge makes the old nonce useless.
    const FinalChallenge ch2{uid_of(2), strip_pos(1, 1, 1), nonce_of(0x24)};
    ASSERT_TRUE(l->open_challenges(std::span(&ch2, 1), 300, "T9").ok());
    const FinalResult old{uid_of(2), nonce_of(0x22), FinalVerdict::kVerified, "1"};
    EXPECT_EQ(l->record_final_results(std::span(&old, 1), 300, "T9")->at(0).status,
              FinalStatus::kChallengeRefused);
    auto fin = l->find_final(uid_of(2));
    EXPECT_EQ((*fin)->challenges, 2u);
    EXPECT_TRUE((*fin)->open);
    expect_chain_verifies(*l);
}

TEST(LedgerFinalTest, AMismatchIsRecordedWithAnAlarm) {
    TempDir dir;
    auto l = sorted_ledger(dir / "l.db");
    const auto head_before = l->head()->events;
    const FinalChallenge ch{uid_of(3), strip_pos(0, 2, 2), nonce_of(0x33)};
    ASSERT_TRUE(l->open_challenges(std::span(&ch, 1), 5, "T9").ok());
    const FinalResult res{uid_of(3), nonce_of(0x33), FinalVerdict::kMismatch, "ALARM"};
    auto r = l->record_final_results(std::span(&res, 1), 5, "T9");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->at(0).status, FinalStatus::kOk);
    EXPECT_EQ(l->find_final(uid_of(3))->value().state, FinalState::kMismatch);
    // FINAL_CHALLENGE, FINAL_RESULT and the ALARM.
    EXPECT_EQ(l->head()->events, head_before + 3);
    expect_chain_verifies(*l);
}

TEST(LedgerFinalTest, TheFinalStateSurvivesAReopen) {
    TempDir dir;
    {
        auto l = sorted_ledger(dir / "l.db");
        const FinalChallenge ch{uid_of(0), strip_pos(1, 0, 3), nonce_of(0x11)};
        ASSERT_TRUE(l->open_challenges(std::span(&ch, 1), 9, "T9").ok());
    }
    auto l = open_ledger(dir / "l.db", test_config(10));
    ASSERT_TRUE(l.ok()) << l.error().describe();
    auto fin = (*l)->find_final(uid_of(0));
    ASSERT_TRUE(fin.ok() && fin->has_value());
    EXPECT_TRUE((*fin)->open);
    auto ro = open_existing_ledger(dir / "l.db");
    ASSERT_TRUE(ro.ok());
    EXPECT_EQ((*ro)->list_final()->size(), 1u);
    expect_chain_verifies(**ro);
}

// The final_test table is checked against the chain: a verdict edited in the file (a MISMATCH
// made VERIFIED behind the ledger's back) is a finding of verify().
TEST(LedgerFinalTest, AnEditedVerdictIsCaughtByVerify) {
    TempDir dir;
    {
        auto l = sorted_ledger(dir / "l.db");
        const FinalChallenge ch{uid_of(3), strip_pos(0, 2, 2), nonce_of(0x33)};
        ASSERT_TRUE(l->open_challenges(std::span(&ch, 1), 5, "T9").ok());
        const FinalResult res{uid_of(3), nonce_of(0x33), FinalVerdict::kMismatch, "X"};
        ASSERT_TRUE(l->record_final_results(std::span(&res, 1), 5, "T9").ok());
        expect_chain_verifies(*l);
    }
    // Edited with SQLite itself, not through the ledger.
    ASSERT_EQ(sqlite_edit(dir / "l.db", "UPDATE final_test SET state = 'VERIFIED'"), SQLITE_OK);
    auto ro = open_existing_ledger(dir / "l.db");
    ASSERT_TRUE(ro.ok());
    auto v = (*ro)->verify();
    ASSERT_TRUE(v.ok());
    EXPECT_FALSE(v->ok());
    EXPECT_NE(join(v->problems)
                  .find("differs from the event log (state VERIFIED, the events say "
                        "MISMATCH)"),
              std::string::npos)
        << join(v->problems);
}

// ---- Parts provisioned at final test (schema version 5) --------------------------------------

// A packaged part of LOT1 with its own UID (tester UID policy): no wafer position.
NewIdentity packaged_identity(uint64_t n) {
    NewIdentity id = fake_identity(n, "LOT1", 1, 0x5c);
    id.loc = DieLocation{"LOT1", 0, 0, 0, "", true};
    return id;
}

Result<std::vector<Ledger::RecordedDelivery>> provision_packaged(Ledger& l,
                                                                 const std::vector<uint64_t>& ns,
                                                                 int first_site) {
    std::vector<NewIdentity> batch;
    std::vector<int> sites;
    std::vector<FinalLocation> where;
    for (uint64_t n : ns) {
        batch.push_back(packaged_identity(n));
        sites.push_back(first_site + static_cast<int>(sites.size()));
        where.push_back(strip_pos(sites.back(), 1, sites.back()));
    }
    return l.record_and_deliver(batch, sites, "FT-1", where);
}

TEST(LedgerFinalTest, APartProvisionedAtFinalTestHasNoWaferPositionAndCountsAgainstTheQuota) {
    TempDir dir;
    auto l = sorted_ledger(dir / "l.db");
    const auto before = l->quota()->used;
    // Two packaged parts of one lot: no wafer position, so no location clash between them.
    auto done = provision_packaged(*l, {100, 101}, 4);
    ASSERT_TRUE(done.ok()) << done.error().describe();
    ASSERT_EQ(done->size(), 2u);
    for (size_t k = 0; k < 2; ++k) {
        const auto& d = (*done)[k];
        EXPECT_EQ(d.recorded.outcome, RecordOutcome::kIssued) << d.recorded.message;
        ASSERT_TRUE(d.delivered);
        EXPECT_EQ(d.delivered->status, TransitionStatus::kOk) << d.delivered->message;
    }
    EXPECT_EQ(l->quota()->used, before + 2);
    const wpid1::Uid uid = packaged_identity(100).uid;
    auto rec = l->find_uid(uid);
    ASSERT_TRUE(rec.ok() && rec->has_value());
    EXPECT_TRUE((*rec)->loc.packaged);
    EXPECT_EQ((*rec)->loc.describe(), "LOT1 packaged part");
    EXPECT_EQ((*rec)->state, DieState::kDelivered);
    EXPECT_EQ((*rec)->site, 4);
    auto fin = l->find_final(uid);
    ASSERT_TRUE(fin.ok() && fin->has_value());
    EXPECT_EQ((*fin)->state, FinalState::kProvisioned);
    EXPECT_EQ((*fin)->loc, strip_pos(4, 1, 4));
    EXPECT_EQ((*fin)->challenges, 0u);
    EXPECT_FALSE((*fin)->open);
    // Its wafer never gets a die: the wafer's listing is the sorted dies only.
    EXPECT_EQ(l->list_wafer("LOT1", 1)->size(), 6u);
    expect_chain_verifies(*l);

    // Programmed through the sort result path; then, seen again, it proves its key like a part
    // from sort, and keeps PROVISIONED until it answers.
    ASSERT_TRUE(mark_result(*l, uid, true, "1", "FT-1").ok());
    const FinalChallenge ch{uid, strip_pos(2, 0, 0), nonce_of(0x44)};
    auto opened = l->open_challenges(std::span(&ch, 1), 77, "FT-1");
    ASSERT_TRUE(opened.ok());
    ASSERT_EQ(opened->at(0).status, FinalStatus::kOk) << opened->at(0).message;
    EXPECT_EQ(opened->at(0).final_record->state, FinalState::kProvisioned);
    EXPECT_TRUE(opened->at(0).again);
    expect_chain_verifies(*l);
    const FinalResult res{uid, nonce_of(0x44), FinalVerdict::kVerified, "1"};
    ASSERT_EQ(l->record_final_results(std::span(&res, 1), 77, "FT-1")->at(0).status,
              FinalStatus::kOk);
    expect_chain_verifies(*l);

    // A reopen reads it back the same (the export, with real certificates, is checked in
    // ServiceTest.FinalTestProvisionsPartsSortNeverSawUnderTheTesterPolicy).
    l.reset();
    auto ro = open_existing_ledger(dir / "l.db");
    ASSERT_TRUE(ro.ok());
    EXPECT_TRUE((*ro)->find_uid(uid)->value().loc.packaged);
    expect_chain_verifies(**ro);
}

TEST(LedgerFinalTest, APackagedPartIsRefusedWithAWaferPositionOrWithoutItsPackage) {
    TempDir dir;
    auto l = sorted_ledger(dir / "l.db");
    NewIdentity bad = packaged_identity(7);
    bad.loc.x = 3;  // a packaged part has no wafer position
    const int site = 0;
    const FinalLocation where = strip_pos(0, 0, 0);
    auto r = l->record_and_deliver(std::span(&bad, 1), std::span(&site, 1), "FT-1",
                                   std::span(&where, 1));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("a packaged part has no wafer, x, y or substrate id"),
              std::string::npos)
        << r.error().message;
    // A package location for a part on a wafer, and one for another lot.
    NewIdentity on_wafer = fake_identity(50);
    r = l->record_and_deliver(std::span(&on_wafer, 1), std::span(&site, 1), "FT-1",
                              std::span(&where, 1));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("is not a packaged part of lot LOT1"), std::string::npos)
        << r.error().message;
    NewIdentity other = packaged_identity(8);
    other.loc.lot = "LOT2";
    r = l->record_and_deliver(std::span(&other, 1), std::span(&site, 1), "FT-1",
                              std::span(&where, 1));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(l->quota()->used, 6u);
    expect_chain_verifies(*l);
}

// The records table's position and the chain agree: a packaged part given a wafer position in
// the file (or a die's position erased) is a finding of verify(), and SQLite itself refuses a
// half-erased position.
TEST(LedgerFinalTest, AnEditedPackagedRecordIsCaughtByVerify) {
    TempDir dir;
    {
        auto l = sorted_ledger(dir / "l.db");
        ASSERT_TRUE(provision_packaged(*l, {200}, 1).ok());
        expect_chain_verifies(*l);
    }
    EXPECT_EQ(sqlite_edit(dir / "l.db", "UPDATE records SET x = 1 WHERE wafer IS NULL"),
              SQLITE_CONSTRAINT);
    ASSERT_EQ(
        sqlite_edit(dir / "l.db", "UPDATE records SET wafer = 9, x = 9, y = 9 WHERE wafer IS NULL"),
        SQLITE_OK);
    auto ro = open_existing_ledger(dir / "l.db");
    ASSERT_TRUE(ro.ok());
    auto v = (*ro)->verify();
    ASSERT_TRUE(v.ok());
    EXPECT_FALSE(v->ok());
    EXPECT_NE(join(v->problems).find(to_hex(packaged_identity(200).uid)), std::string::npos)
        << join(v->problems);
}

}  // namespace
}  // namespace waferprov::host
