// What only the PostgreSQL store has: several hosts (here several Ledger objects, each with its
// own connection) on one job, a connection lost in the middle of a transaction, and a database
// restored from an older copy. Against a private server (waferprov::testing::PostgresServer).
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace waferprov::host {
namespace {

using namespace testing;
using waferprov::testing::PostgresServer;

class LedgerPostgres : public ::testing::Test {
protected:
    void SetUp() override {
        if (!PostgresServer::find_binaries())
            GTEST_SKIP() << "the PostgreSQL server binaries are absent (tools/install-deps.sh "
                            "installs them)";
        auto s = PostgresServer::start();
        ASSERT_TRUE(s.ok()) << s.error().describe();
        server_ = std::move(*s);
        ASSERT_TRUE(server_->create_database("job").ok());
    }
    // One host's view of the job: its own connection and its own anchor file.
    std::unique_ptr<Ledger> host(int n, uint64_t quota = 1000) {
        LedgerConfig c = test_config(quota);
        c.anchor_file = dir_ / ("host" + std::to_string(n) + ".anchor");
        auto l = Ledger::open(server_->url("job"), c);
        EXPECT_TRUE(l.ok()) << l.error().describe();
        return l.ok() ? std::move(*l) : nullptr;
    }
    TempDir dir_;
    std::unique_ptr<PostgresServer> server_;
};

// Three hosts offer 3 x 400 different dies (and some of each other's) against a quota of 500:
// exactly 500 are issued, each die once, and the one chain verifies.
TEST_F(LedgerPostgres, HostsShareTheQuotaExactlyAndNeverIssueADieTwice) {
    constexpr int kHosts = 3;
    std::vector<std::unique_ptr<Ledger>> hosts;
    for (int h = 0; h < kHosts; ++h) hosts.push_back(host(h, 500));
    ASSERT_TRUE(hosts[0] && hosts[1] && hosts[2]);
    std::atomic<uint64_t> issued{0}, refused{0}, reissued{0};
    std::vector<std::thread> threads;
    for (int h = 0; h < kHosts; ++h) {
        threads.emplace_back([&, h] {
            for (int b = 0; b < 20; ++b) {
                // Dies h*300 + b*20 .. +20: hosts overlap by 100 dies, so they race for the same
                // dies too (the second offer of a die is a retest of the first's identity).
                std::vector<NewIdentity> batch;
                for (uint64_t i = 0; i < 20; ++i) {
                    NewIdentity n = fake_identity(static_cast<uint64_t>(h) * 300 + b * 20 + i);
                    n.serial = serial_of(static_cast<uint64_t>(h) * 100000 + b * 20 + i);
                    batch.push_back(n);
                }
                auto r = hosts[h]->record_batch(batch);
                ASSERT_TRUE(r.ok()) << r.error().describe();
                for (const auto& x : *r) {
                    if (x.outcome == RecordOutcome::kIssued) ++issued;
                    if (x.outcome == RecordOutcome::kQuotaExhausted) ++refused;
                    if (x.outcome == RecordOutcome::kReissued) ++reissued;
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(issued.load(), 500u);
    EXPECT_GT(refused.load(), 0u);
    auto q = hosts[1]->quota();
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(q->used, 500u);
    auto counts = hosts[2]->counts();
    ASSERT_TRUE(counts.ok());
    EXPECT_EQ(counts->total(), 500u);
    std::set<wpid1::Uid> uids;
    std::set<Bytes> serials;
    std::set<DieLocation> locations;
    ASSERT_TRUE(hosts[0]
                    ->for_each([&](const LedgerRecord& r) {
                        uids.insert(r.uid);
                        serials.insert(r.serial);
                        locations.insert(r.loc);
                        return ok_status();
                    })
                    .ok());
    EXPECT_EQ(uids.size(), 500u);
    EXPECT_EQ(serials.size(), 500u);
    EXPECT_EQ(locations.size(), 500u);
    // Every host's anchor is in the one chain.
    for (int h = 0; h < kHosts; ++h) {
        VerifyOptions o;
        o.anchor_file = dir_ / ("host" + std::to_string(h) + ".anchor");
        auto v = hosts[0]->verify(o);
        ASSERT_TRUE(v.ok());
        EXPECT_TRUE(v->ok()) << join(v->problems);
        EXPECT_TRUE(any_contains(v->notes, "the chain contains its head")) << join(v->notes);
    }
}

// The server ends the connection while a delivery is half-written (a trigger holds it after
// its first die): the call fails with kUnavailable saying nothing was committed, nothing of it
// is in the ledger, and the same call again (the next transaction reconnects) does it all.
TEST_F(LedgerPostgres, ALostConnectionMidTransactionWritesNothingAndTheRetryDoesItAll) {
    auto l = host(0);
    ASSERT_TRUE(l);
    std::vector<NewIdentity> ids;
    for (uint64_t i = 0; i < 4; ++i) ids.push_back(fake_identity(i));
    ASSERT_TRUE(l->record_batch(ids).ok());
    // Sleeps when the third die's record is updated: the first two are already written.
    ASSERT_TRUE(server_
                    ->psql("job",
                           "CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                           "PERFORM pg_sleep(30); RETURN NEW; END $$; CREATE TRIGGER hold BEFORE "
                           "UPDATE ON records FOR EACH ROW WHEN (NEW.uid = '\\x" +
                               to_hex(ids[2].uid) + "'::bytea) EXECUTE FUNCTION hold();")
                    .ok());
    const auto before = l->head();
    ASSERT_TRUE(before.ok());
    std::vector<Delivery> d;
    for (const auto& n : ids) d.push_back({n.uid, n.loc, 0});
    Result<std::vector<TransitionResult>> out = std::vector<TransitionResult>{};
    std::thread caller([&] { out = l->deliver(d, "T1"); });
    // Terminate the ledger's session once it is waiting in the trigger.
    int ended = 0;
    for (int i = 0; i < 200 && ended == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        auto waiting = server_->psql(
            "job",
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%UPDATE records%' "
            "AND state = 'active' AND pid <> pg_backend_pid()");
        if (waiting.ok() && *waiting == "1") {
            auto n = server_->terminate_backends("job");
            ASSERT_TRUE(n.ok()) << n.error().describe();
            ended = *n;
        }
    }
    caller.join();
    ASSERT_GT(ended, 0);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.error().code, ErrorCode::kUnavailable) << out.error().describe();
    // Nothing of the delivery is in the ledger: no record DELIVERED, the chain where it was.
    ASSERT_TRUE(server_->psql("job", "DROP TRIGGER hold ON records").ok());
    auto after = l->head();
    ASSERT_TRUE(after.ok()) << after.error().describe();
    EXPECT_EQ(after->events, before->events);
    EXPECT_EQ(after->hash, before->hash);
    EXPECT_EQ(l->counts()->delivered, 0u);
    // The retry, on a new connection: the whole touchdown, once.
    auto again = l->deliver(d, "T1");
    ASSERT_TRUE(again.ok()) << again.error().describe();
    for (const auto& t : *again) EXPECT_EQ(t.status, TransitionStatus::kOk) << t.message;
    EXPECT_EQ(l->counts()->delivered, 4u);
    EXPECT_EQ(l->head()->events, before->events + 1);  // one DELIVER event
    auto v = l->verify();
    ASSERT_TRUE(v.ok());
    EXPECT_TRUE(v->ok()) << join(v->problems);
}

// A database restored from an older copy (here a copy taken before the last commits) is
// refused by a host whose anchor saw those commits, naming both heads; a host that joins
// afterwards with no anchor of its own starts one, with a notice.
TEST_F(LedgerPostgres, ARestoredDatabaseIsRefusedByTheHostsThatCommittedPastIt) {
    {
        auto l = host(0);
        ASSERT_TRUE(l);
        ASSERT_TRUE(
            l->record_batch(std::vector<NewIdentity>{fake_identity(1), fake_identity(2)}).ok());
    }
    ASSERT_TRUE(server_->psql("postgres", "CREATE DATABASE snapshot TEMPLATE job").ok());
    {
        auto l = host(0);
        ASSERT_TRUE(l);
        ASSERT_TRUE(l->record_batch(std::vector<NewIdentity>{fake_identity(3)}).ok());
    }
    // The older copy put back in the job's place.
    ASSERT_TRUE(server_->psql("postgres", "DROP DATABASE job").ok());
    ASSERT_TRUE(server_->psql("postgres", "ALTER DATABASE snapshot RENAME TO job").ok());
    LedgerConfig c = test_config();
    c.anchor_file = dir_ / "host0.anchor";
    auto refused = Ledger::open(server_->url("job"), c);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, ErrorCode::kIntegrityFailure);
    EXPECT_NE(refused.error().message.find("is behind its anchor"), std::string::npos)
        << refused.error().message;
    // Dropped and recreated empty: refused too, never a new ledger issuing the quota again.
    ASSERT_TRUE(server_->psql("postgres", "DROP DATABASE job").ok());
    ASSERT_TRUE(server_->create_database("job").ok());
    auto fresh = Ledger::open(server_->url("job"), c);
    ASSERT_FALSE(fresh.ok());
    EXPECT_NE(fresh.error().message.find("holds no ledger but its anchor"), std::string::npos)
        << fresh.error().message;
}

// docs/ledger.md "Setting one up": hosts connect with a role that does not own the tables and
// holds only the grants listed there. It provisions, delivers and records results; it cannot
// switch the event log's guard off or rewrite the log.
TEST_F(LedgerPostgres, AHostRoleWithTheDocumentedGrantsProvisionsButCannotTouchTheLog) {
    {
        auto owner = host(0);  // the first open creates the schema as its owner
        ASSERT_TRUE(owner);
    }
    ASSERT_TRUE(server_
                    ->psql("job",
                           "CREATE ROLE floorhost LOGIN; "
                           "GRANT SELECT, INSERT, UPDATE ON job, records, wafers, final_test TO "
                           "floorhost; GRANT SELECT, INSERT ON events, schema_version TO "
                           "floorhost; GRANT USAGE ON SEQUENCE records_id_seq TO floorhost")
                    .ok());
    std::string url = server_->url("job");
    url.replace(url.find("user=postgres"), 13, "user=floorhost");
    LedgerConfig c = test_config();
    c.anchor_file = dir_ / "floorhost.anchor";
    c.notice = [](const std::string&) {};
    auto l = Ledger::open(url, c);
    ASSERT_TRUE(l.ok()) << l.error().describe();
    const NewIdentity n = fake_identity(7);
    auto rec = (*l)->record_batch(std::vector<NewIdentity>{n});
    ASSERT_TRUE(rec.ok()) << rec.error().describe();
    EXPECT_EQ(rec->front().outcome, RecordOutcome::kIssued);
    auto del = (*l)->deliver(std::vector<Delivery>{{n.uid, n.loc, 0}}, "T1");
    ASSERT_TRUE(del.ok()) << del.error().describe();
    ASSERT_TRUE(mark_result(**l, n.uid, true, "01", "T1").ok());
    auto v = (*l)->verify();
    ASSERT_TRUE(v.ok());
    EXPECT_TRUE(v->ok()) << join(v->problems);
    // What the role may not do, through its own connection (psql as floorhost).
    for (const char* sql : {"ALTER TABLE events DISABLE TRIGGER USER", "DELETE FROM events",
                            "TRUNCATE events", "UPDATE events SET type = 'X'"}) {
        auto r = server_->psql("job", std::string("SET ROLE floorhost; ") + sql);
        EXPECT_FALSE(r.ok()) << sql;
    }
}

// A scan of the whole ledger (for_each, as export and reports use it) fetches its rows one at a
// time: reading 20,000 records with 4 KB certificates (160 MB as libpq's text) raises this
// process's peak memory by far less than the records hold.
TEST_F(LedgerPostgres, AScanOfTheWholeLedgerHoldsOneRowAtATime) {
    auto l = host(0, 100000);
    ASSERT_TRUE(l);
    constexpr uint64_t kRecords = 20000;
    for (uint64_t from = 0; from < kRecords; from += 500) {
        std::vector<NewIdentity> batch;
        for (uint64_t i = from; i < from + 500; ++i) {
            batch.push_back(fake_identity(i % 10000, "LOT1", static_cast<int>(1 + i / 10000)));
            batch.back().uid = uid_of(i);
            batch.back().serial = serial_of(i);
            batch.back().certificate_der.assign(4096, static_cast<uint8_t>(i));
        }
        ASSERT_TRUE(l->record_batch(batch).ok());
    }
    auto peak_kib = [] {
        rusage u{};
        getrusage(RUSAGE_SELF, &u);
        return u.ru_maxrss;
    };
    const long before = peak_kib();
    uint64_t seen = 0, bytes = 0;
    ASSERT_TRUE(l->for_each([&](const LedgerRecord& r) {
                     ++seen;
                     bytes += r.certificate_der.size();
                     return ok_status();
                 }).ok());
    EXPECT_EQ(seen, kRecords);
    EXPECT_EQ(bytes, kRecords * 4096);
    const long grown_kib = peak_kib() - before;
    std::printf("[   info   ] for_each over %llu records: peak memory grew by %ld KiB\n",
                static_cast<unsigned long long>(kRecords), grown_kib);
    EXPECT_LT(grown_kib, 32 * 1024);  // all at once: over 160 MB of result text
}

}  // namespace
}  // namespace waferprov::host
