// Crash safety (kill -9 at random moments) and two processes sharing one ledger and quota.
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace waferprov::host {
namespace {

using namespace testing;
using Clock = std::chrono::steady_clock;

struct Tally {
    int64_t records = 0, distinct_uids = 0, distinct_serials = 0, distinct_locations = 0;
    int64_t quota = 0, quota_used = 0, issue_events = 0, refused_events = 0;
};

// Counts straight from the file, independent of the Ledger code.
Tally tally(const fs::path& p) {
    Tally t;
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(p.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    auto one = [&](const char* sql) {
        sqlite3_stmt* s = nullptr;
        EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &s, nullptr), SQLITE_OK) << sql;
        int64_t v = -1;
        if (sqlite3_step(s) == SQLITE_ROW) v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        return v;
    };
    t.records = one("SELECT count(*) FROM records");
    t.distinct_uids = one("SELECT count(DISTINCT uid) FROM records");
    t.distinct_serials = one("SELECT count(DISTINCT serial) FROM records");
    t.distinct_locations =
        one("SELECT count(*) FROM (SELECT DISTINCT lot, wafer, x, y FROM records)");
    t.quota = one("SELECT quota FROM job");
    t.quota_used = one("SELECT quota_used FROM job");
    t.issue_events = one("SELECT count(*) FROM events WHERE type = 'ISSUE'");
    t.refused_events = one("SELECT count(*) FROM events WHERE type = 'QUOTA_REFUSED'");
    sqlite3_close(db);
    return t;
}

// The child of the crash test: records, delivers and reports results until killed.
[[noreturn]] void crash_child(const fs::path& p, const LedgerConfig& config, uint64_t iteration,
                              uint32_t seed) {
    auto l = Ledger::open(p, config);
    if (!l.ok()) _exit(3);
    std::mt19937 rng(seed);
    const std::string lot = "C" + std::to_string(iteration);
    uint64_t n = 0;
    for (;;) {
        std::vector<NewIdentity> batch;
        const size_t size = 1 + rng() % 200;
        for (size_t i = 0; i < size; ++i) {
            if (iteration > 0 && rng() % 8 == 0) {
                // A retest of a die an earlier (killed) child may or may not have recorded.
                const uint64_t it = rng() % iteration;
                batch.push_back(
                    fake_identity(it * 1000000 + rng() % 300, "C" + std::to_string(it)));
            } else {
                batch.push_back(fake_identity(iteration * 1000000 + n++, lot));
            }
        }
        auto r = (*l)->record_batch(batch);
        if (!r.ok()) _exit(4);
        std::vector<wpid1::Uid> issued;
        for (const auto& x : *r)
            if (x.record && rng() % 2 == 0) issued.push_back(x.record->uid);
        auto d = (*l)->mark_delivered(issued, "T" + std::to_string(iteration));
        if (!d.ok()) _exit(5);
        std::vector<DieResult> results;
        for (const auto& u : issued) results.push_back(DieResult{u, rng() % 4 != 0, "01"});
        if (!(*l)->mark_results(results, "T1").ok()) _exit(6);
    }
}

TEST(LedgerCrash, KillNineAtRandomMomentsLeavesAConsistentLedger) {
    TempDir dir;
    const fs::path p = dir / "l.db";
    // Small enough that the quota runs out part way, so refusals are crash-tested too.
    const LedgerConfig config = test_config(2500);
    ASSERT_TRUE(Ledger::open(p, config).ok());
    const uint32_t seed = std::random_device{}();
    std::cout << "seed " << seed << "\n";
    std::mt19937 rng(seed);
    const auto deadline = Clock::now() + std::chrono::seconds(12);
    uint64_t iteration = 0;
    int64_t last_records = 0;
    bool grew = false;
    for (; iteration < 25 && Clock::now() < deadline; ++iteration) {
        const pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) crash_child(p, config, iteration, static_cast<uint32_t>(rng()));
        std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 450));
        ASSERT_EQ(kill(pid, SIGKILL), 0);
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status))
            << "the child exited by itself with status " << WEXITSTATUS(status);

        auto l = Ledger::open(p, config);
        ASSERT_TRUE(l.ok()) << l.error().describe();
        auto rep = (*l)->verify();
        ASSERT_TRUE(rep.ok()) << rep.error().describe();
        ASSERT_TRUE(rep->ok()) << "after kill " << iteration << ":\n" << join(rep->problems);
        const Tally t = tally(p);
        EXPECT_EQ(t.records, t.distinct_uids);
        EXPECT_EQ(t.records, t.distinct_serials);
        EXPECT_EQ(t.records, t.distinct_locations);
        EXPECT_EQ(t.quota_used, t.records);  // every record counted exactly once
        EXPECT_EQ(t.issue_events, t.records);
        EXPECT_LE(t.quota_used, t.quota);
        EXPECT_GE(t.records, last_records);
        grew = grew || t.records > last_records;
        last_records = t.records;
    }
    std::cout << iteration << " kills, " << last_records << " records, quota " << config.quota
              << "\n";
    EXPECT_GE(iteration, 5u);
    EXPECT_TRUE(grew);
}

// A second process opening the ledger while another commits: open() compares the ledger with
// its anchor, and the writer appends to the anchor after each commit. Read in the wrong order
// (the ledger's head, then the anchor) the open saw an anchor ahead of its snapshot and refused
// a healthy ledger as "behind its anchor" (it did so about once in 16 runs of the test below).
TEST(LedgerCrash, OpeningWhileAnotherProcessCommitsIsNeverRefused) {
    TempDir dir;
    const fs::path p = dir / "l.db";
    const LedgerConfig config = test_config(1'000'000);
    ASSERT_TRUE(Ledger::open(p, config).ok());
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const pid_t writer = fork();
    ASSERT_GE(writer, 0);
    if (writer == 0) {
        close(ready[0]);
        auto l = Ledger::open(p, config);
        if (!l.ok()) _exit(3);
        close(ready[1]);  // committing from now on
        for (uint64_t i = 0;; ++i) {
            std::vector<NewIdentity> one{fake_identity(i, "W", 1, 0xc0)};
            if (!(*l)->record_batch(one).ok()) _exit(4);
        }
    }
    close(ready[1]);
    char b;
    ASSERT_EQ(read(ready[0], &b, 1), 0);
    close(ready[0]);
    int refused = 0;
    std::string first;
    for (int i = 0; i < 60; ++i) {
        auto l = Ledger::open(p, config);
        if (!l.ok() && refused++ == 0) first = l.error().describe();
    }
    kill(writer, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(writer, &status, 0), writer);
    EXPECT_TRUE(WIFSIGNALED(status))
        << "the writer stopped on its own, exit " << WEXITSTATUS(status);
    EXPECT_EQ(refused, 0) << first;
}

TEST(LedgerCrash, TwoProcessesNeverExceedTheQuota) {
    TempDir dir;
    const fs::path p = dir / "l.db";
    constexpr uint64_t kQuota = 300;
    constexpr int kPerChild = 500, kBatch = 25;
    const LedgerConfig config = test_config(kQuota);
    ASSERT_TRUE(Ledger::open(p, config).ok());
    int go[2];
    ASSERT_EQ(pipe(go), 0);
    std::vector<pid_t> kids;
    for (int c = 0; c < 2; ++c) {
        const pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            close(go[1]);
            auto l = Ledger::open(p, config);
            if (!l.ok()) {
                std::fprintf(stderr, "child %d: open: %s\n", c, l.error().describe().c_str());
                _exit(3);
            }
            char b;
            if (read(go[0], &b, 1) != 0) _exit(7);  // wait for the start (EOF)
            for (int i = 0; i < kPerChild; i += kBatch) {
                std::vector<NewIdentity> batch;
                for (int k = 0; k < kBatch; ++k)
                    batch.push_back(fake_identity(static_cast<uint64_t>(i + k),
                                                  "P" + std::to_string(c), 1,
                                                  static_cast<uint8_t>(0xb0 + c)));
                auto r = (*l)->record_batch(batch);
                if (!r.ok()) _exit(4);
            }
            _exit(0);
        }
        kids.push_back(pid);
    }
    close(go[0]);
    close(go[1]);  // both start now
    for (pid_t pid : kids) {
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status));
        EXPECT_EQ(WEXITSTATUS(status), 0);  // 3: open failed, 4: record_batch failed
    }
    const Tally t = tally(p);
    EXPECT_EQ(t.records, static_cast<int64_t>(kQuota));
    EXPECT_EQ(t.quota_used, static_cast<int64_t>(kQuota));
    EXPECT_EQ(t.refused_events, 2 * kPerChild - static_cast<int64_t>(kQuota));
    auto l = Ledger::open(p, config);
    ASSERT_TRUE(l.ok());
    auto rep = (*l)->verify();
    ASSERT_TRUE(rep.ok() && rep->ok()) << join(rep->problems);
    EXPECT_EQ(*(*l)->quota_left(), 0u);
}

// The group-commit child: kThreads testers, each recording 16 fresh dies of its own, then
// delivering them and reporting their results, concurrently (so deliveries and results of
// several threads share transactions). After each call returns OK it writes what was
// acknowledged to `ack` ('D' or 'R' + the UID: 17 bytes, atomic on a pipe): the parent then
// knows what an answer could have promised before the kill.
[[noreturn]] void group_child(const fs::path& p, const LedgerConfig& config, uint64_t iteration,
                              int ack) {
    constexpr int kThreads = 6;
    auto l = Ledger::open(p, config);
    if (!l.ok()) _exit(3);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            const std::string lot = "G" + std::to_string(iteration) + "-" + std::to_string(t);
            for (uint64_t round = 0;; ++round) {
                std::vector<NewIdentity> batch;
                for (uint64_t k = 0; k < 16; ++k)
                    batch.push_back(fake_identity(round * 16 + k, lot, 1,
                                                  static_cast<uint8_t>(iteration * 8 + t)));
                if (!(*l)->record_batch(batch).ok()) _exit(4);
                std::vector<Delivery> d;
                for (const auto& n : batch) d.push_back(Delivery{n.uid, n.loc, -1});
                auto delivered = (*l)->deliver(d, "T" + std::to_string(t));
                if (!delivered.ok()) _exit(5);
                auto send = [&](char kind, const wpid1::Uid& uid) {
                    uint8_t msg[17];
                    msg[0] = static_cast<uint8_t>(kind);
                    std::copy(uid.begin(), uid.end(), msg + 1);
                    if (write(ack, msg, sizeof msg) != static_cast<ssize_t>(sizeof msg)) _exit(8);
                };
                std::vector<DieResult> results;
                for (const auto& tr : *delivered) {
                    if (tr.status != TransitionStatus::kOk) _exit(6);
                    send('D', tr.uid);
                    results.push_back(DieResult{tr.uid, tr.uid[15] % 3 != 0, "01"});
                }
                auto done = (*l)->mark_results(results, "T" + std::to_string(t));
                if (!done.ok()) _exit(7);
                for (const auto& tr : *done) {
                    if (tr.status != TransitionStatus::kOk) _exit(6);
                    send('R', tr.uid);
                }
            }
        });
    for (auto& t : threads) t.join();
    _exit(0);
}

// kill -9 while threads' deliveries and results are being group-committed: every delivery and
// result that was acknowledged is in the ledger (nothing lost), no die has two DELIVER or two
// RESULT events (nothing applied twice, no half of a group), and the ledger verifies against
// its anchor after every kill.
TEST(LedgerCrash, KillNineDuringGroupCommitsLosesAndDuplicatesNothing) {
    TempDir dir;
    const fs::path p = dir / "l.db";
    const LedgerConfig config = test_config(1000000);
    ASSERT_TRUE(Ledger::open(p, config).ok());
    const uint32_t seed = std::random_device{}();
    std::cout << "seed " << seed << "\n";
    std::mt19937 rng(seed);
    std::map<wpid1::Uid, std::set<char>> acked;
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    uint64_t iteration = 0;
    for (; iteration < 20 && Clock::now() < deadline; ++iteration) {
        int ack[2];
        ASSERT_EQ(pipe(ack), 0);
        const pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            close(ack[0]);
            group_child(p, config, iteration, ack[1]);
        }
        close(ack[1]);
        std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 400));
        ASSERT_EQ(kill(pid, SIGKILL), 0);
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status))
            << "the child exited by itself with status " << WEXITSTATUS(status);
        uint8_t msg[17];
        while (read(ack[0], msg, sizeof msg) == static_cast<ssize_t>(sizeof msg)) {
            wpid1::Uid uid{};
            std::copy(msg + 1, msg + 17, uid.begin());
            acked[uid].insert(static_cast<char>(msg[0]));
        }
        close(ack[0]);

        auto l = Ledger::open(p, config);
        ASSERT_TRUE(l.ok()) << l.error().describe();
        auto rep = (*l)->verify();
        ASSERT_TRUE(rep.ok()) << rep.error().describe();
        ASSERT_TRUE(rep->ok()) << "after kill " << iteration << ":\n" << join(rep->problems);
        for (const auto& [uid, kinds] : acked) {
            auto rec = (*l)->find_uid(uid);
            ASSERT_TRUE(rec.ok() && rec->has_value()) << "acknowledged die lost: " << to_hex(uid);
            const DieState st = (*rec)->state;
            if (kinds.contains('R'))
                EXPECT_TRUE(st == DieState::kProgrammed || st == DieState::kFailed)
                    << to_hex(uid) << " " << to_string(st);
            else
                EXPECT_NE(st, DieState::kIssued) << "acknowledged delivery lost: " << to_hex(uid);
        }
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open_v2(p.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
        sqlite3_stmt* q = nullptr;
        ASSERT_EQ(
            sqlite3_prepare_v2(db,
                               // A DELIVER event lists its touchdown's dies (schema 4).
                               "SELECT count(*) FROM (SELECT type, uid FROM ("
                               "SELECT type, uid FROM events WHERE type = 'RESULT' UNION ALL "
                               "SELECT events.type, json_extract(d.value, '$.uid') FROM events, "
                               "json_each(events.payload, '$.dies') AS d "
                               "WHERE events.type = 'DELIVER')"
                               " GROUP BY type, uid HAVING count(*) > 1)",
                               -1, &q, nullptr),
            SQLITE_OK);
        ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
        EXPECT_EQ(sqlite3_column_int64(q, 0), 0) << "a die delivered or reported twice";
        sqlite3_finalize(q);
        sqlite3_close(db);
        const Tally t = tally(p);
        EXPECT_EQ(t.quota_used, t.records);
        EXPECT_EQ(t.issue_events, t.records);
    }
    size_t results = 0;
    for (const auto& [uid, kinds] : acked) results += kinds.contains('R');
    std::cout << iteration << " kills, " << acked.size() << " deliveries and " << results
              << " results acknowledged\n";
    EXPECT_GE(iteration, 5u);
    EXPECT_GT(results, 0u);
}

}  // namespace
}  // namespace waferprov::host
