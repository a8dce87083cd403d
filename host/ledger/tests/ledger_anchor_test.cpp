// A ledger cannot be rolled back or corrupted unnoticed (issue #11): a flipped bit in a
// write-ahead log frame and a restored older copy are refused by `run` and `serve` and reported
// by `ledger verify`; a flipped byte of the UID index is reported by verify; verify, show and
// export work on read-only media and never write; a full disk at start is named. Real SQLite
// files, the real `waferprov` binary, real mounts where the test runs as root.
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "test_support.hpp"
#include "waferprov/host/token_anchor.hpp"
#include "waferprov/testing/process.hpp"
#include "waferprov/testing/softhsm.hpp"

namespace waferprov::host {
namespace {

using namespace testing;
namespace wt = waferprov::testing;

std::string slurp(const fs::path& p) { return wt::read_text(p); }

bool contains(const std::string& text, const std::string& what) {
    return text.find(what) != std::string::npos;
}

// `waferprov args...` with its output; the exit status, or a kProcess* value.
struct CmdRun {
    int status = -1;
    std::string out;
};
CmdRun waferprov(const std::vector<std::string>& args, const fs::path& log_dir,
                 std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
    static int n = 0;
    const fs::path log = log_dir / ("cmd" + std::to_string(++n) + ".log");
    std::vector<std::string> argv = {WAFERPROV_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    CmdRun r;
    r.status = wt::run_process(argv, log, timeout);
    r.out = slurp(log);
    return r;
}

void copy_over(const fs::path& from, const fs::path& to) {
    fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

fs::path with_suffix(const fs::path& p, const char* suffix) {
    fs::path q = p;
    q += suffix;
    return q;
}

void remove_wal(const fs::path& db) {
    fs::remove(with_suffix(db, "-wal"));
    fs::remove(with_suffix(db, "-shm"));
}

// Records `n` dies, one transaction per `per` dies.
void record(Ledger& l, uint64_t first, uint64_t n, uint64_t per = 1) {
    for (uint64_t i = first; i < first + n; i += per) {
        std::vector<NewIdentity> batch;
        for (uint64_t j = i; j < std::min(first + n, i + per); ++j)
            batch.push_back(fake_identity(j));
        auto r = l.record_batch(batch);
        ASSERT_TRUE(r.ok()) << r.error().describe();
    }
}

std::vector<std::string> verify_problems(const fs::path& db, VerifyOptions o = {}) {
    auto l = Ledger::open_existing(db);
    EXPECT_TRUE(l.ok()) << l.error().describe();
    if (!l.ok()) return {"cannot open"};
    auto rep = (*l)->verify(o);
    EXPECT_TRUE(rep.ok()) << rep.error().describe();
    return rep.ok() ? rep->problems : std::vector<std::string>{"verify failed"};
}

std::string open_error(const fs::path& db, const LedgerConfig& c = test_config()) {
    auto l = Ledger::open(db, c);
    return l.ok() ? "" : l.error().describe();
}

// Flips bit 0 of byte `offset`.
void flip(const fs::path& file, uint64_t offset) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 1);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(&c, 1);
    ASSERT_TRUE(f);
}

// A byte in the page data of the write-ahead log frame `k` (0-based): 32-byte log header, then
// frames of a 24-byte header and one page.
uint64_t wal_frame_byte(const fs::path& wal, uint64_t k, uint64_t within_page) {
    const std::string w = slurp(wal);
    EXPECT_GT(w.size(), 32u);
    const uint32_t page = (static_cast<uint8_t>(w[8]) << 24) | (static_cast<uint8_t>(w[9]) << 16) |
                          (static_cast<uint8_t>(w[10]) << 8) | static_cast<uint8_t>(w[11]);
    const uint64_t frames = (w.size() - 32) / (24 + page);
    EXPECT_LT(k, frames);
    return 32 + k * (24 + page) + 24 + within_page;
}

uint64_t wal_frames(const fs::path& wal) {
    const std::string w = slurp(wal);
    if (w.size() <= 32) return 0;
    const uint32_t page = (static_cast<uint8_t>(w[8]) << 24) | (static_cast<uint8_t>(w[9]) << 16) |
                          (static_cast<uint8_t>(w[10]) << 8) | static_cast<uint8_t>(w[11]);
    return (w.size() - 32) / (24 + page);
}

// The anchor's head lines.
std::vector<std::string> anchor_lines(const fs::path& db) {
    std::ifstream in(with_suffix(db, ".anchor"));
    std::vector<std::string> out;
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) out.push_back(line);
    return out;
}

class Anchor : public ::testing::Test {
protected:
    fs::path db() const { return dir_ / "l.db"; }
    TempDir dir_{"anchor"};
};

TEST_F(Anchor, EveryCommitIsAnchoredWithItsHeadAndQuotaUsed) {
    auto l = Ledger::open(db(), test_config());
    ASSERT_TRUE(l.ok()) << l.error().describe();
    record(**l, 0, 6, 2);
    auto h = (*l)->head();
    ASSERT_TRUE(h.ok());
    const auto lines = anchor_lines(db());
    ASSERT_EQ(lines.size(), 4u);  // creation + three commits
    EXPECT_EQ(lines.back().substr(0, lines.back().rfind(' ')),
              std::to_string(h->events) + " " + to_hex(h->hash) + " 6");
    auto rep = (*l)->verify();
    ASSERT_TRUE(rep.ok());
    EXPECT_TRUE(rep->ok()) << join(rep->problems);
    ASSERT_EQ(rep->notes.size(), 1u);
    EXPECT_TRUE(contains(rep->notes[0], "contains its head " + describe_head(*h)));
}

TEST_F(Anchor, ADeliveryCapAlarmIsAnchoredLikeEveryCommit) {
    auto l = Ledger::open(db(), test_config());
    ASSERT_TRUE(l.ok()) << l.error().describe();
    record(**l, 0, 2, 2);
    std::vector<wpid1::Uid> uids;
    ASSERT_TRUE((*l)->for_each([&](const LedgerRecord& r) {
                        uids.push_back(r.uid);
                        return ok_status();
                    })
                    .ok());
    ASSERT_FALSE(uids.empty());
    const size_t before = anchor_lines(db()).size();
    ASSERT_TRUE((*l)->alarm_delivery_cap(uids.front(), "T1").ok());
    auto h = (*l)->head();
    ASSERT_TRUE(h.ok());
    const auto lines = anchor_lines(db());
    ASSERT_EQ(lines.size(), before + 1);
    EXPECT_EQ(lines.back().substr(0, lines.back().rfind(' ')),
              std::to_string(h->events) + " " + to_hex(h->hash) + " 2");
}

TEST_F(Anchor, ARestoredOlderCopyIsRefusedNamingBothHeads) {
    ChainHead old_head, new_head;
    {
        auto l = Ledger::open(db(), test_config());
        ASSERT_TRUE(l.ok());
        record(**l, 0, 3);
        old_head = *(*l)->head();
    }
    copy_over(db(), dir_ / "backup.db");  // closed: the whole ledger is in the file
    {
        auto l = Ledger::open(db(), test_config());
        ASSERT_TRUE(l.ok());
        record(**l, 3, 4);
        ASSERT_TRUE((*l)->mark_delivered(std::vector<wpid1::Uid>{uid_of(4)}, "T1").ok());
        new_head = *(*l)->head();
    }
    remove_wal(db());
    copy_over(dir_ / "backup.db", db());

    const std::string e = open_error(db());
    EXPECT_TRUE(contains(e, "is behind its anchor")) << e;
    EXPECT_TRUE(contains(e, describe_head(old_head))) << e;
    EXPECT_TRUE(contains(e, describe_head(new_head))) << e;
    EXPECT_TRUE(contains(e, "Restore the newest copy")) << e;

    const auto problems = verify_problems(db());
    ASSERT_EQ(problems.size(), 1u) << join(problems);
    EXPECT_TRUE(contains(problems[0], "behind its anchor")) << problems[0];
    // The customer's head from before the restore says the same without the anchor.
    fs::remove(with_suffix(db(), ".anchor"));
    auto p = verify_problems(db(), VerifyOptions{false, new_head});
    ASSERT_EQ(p.size(), 1u) << join(p);
    EXPECT_TRUE(contains(p[0], "behind the head " + describe_head(new_head))) << p[0];
    EXPECT_TRUE(verify_problems(db(), VerifyOptions{false, old_head}).empty());
}

TEST_F(Anchor, AForkedLedgerIsRefusedAsDiverged) {
    {
        auto l = Ledger::open(db(), test_config());
        ASSERT_TRUE(l.ok());
        record(**l, 0, 2);
    }
    copy_over(db(), dir_ / "backup.db");
    const std::string saved_anchor = slurp(with_suffix(db(), ".anchor"));
    {
        auto l = Ledger::open(db(), test_config());
        ASSERT_TRUE(l.ok());
        record(**l, 2, 2);
    }
    // The backup goes on along another path (as if a second host ran from it) and comes back
    // with more events than the anchor, but not the anchored ones.
    const std::string anchor_now = slurp(with_suffix(db(), ".anchor"));
    copy_over(dir_ / "backup.db", db());
    write_text(with_suffix(db(), ".anchor"), saved_anchor);
    {
        auto l = Ledger::open(db(), test_config());
        ASSERT_TRUE(l.ok());
        record(**l, 10, 4);
    }
    write_text(with_suffix(db(), ".anchor"), anchor_now);
    const std::string e = open_error(db());
    EXPECT_TRUE(contains(e, "has diverged from its anchor")) << e;
    const auto problems = verify_problems(db());
    ASSERT_EQ(problems.size(), 1u) << join(problems);
    EXPECT_TRUE(contains(problems[0], "diverged")) << problems[0];
}

TEST_F(Anchor, AFlippedWalBitThatCutsCommittedWorkIsRefused) {
    const fs::path copy = dir_ / "copy.db";
    {
        auto l = Ledger::open(db(), test_config());
        ASSERT_TRUE(l.ok());
        ASSERT_TRUE((*l)->defer_checkpoints().ok());  // keep every commit in the log
        record(**l, 0, 20);
        // The files as a crash would leave them: the database and its log, with the anchor.
        copy_over(db(), copy);
        copy_over(with_suffix(db(), "-wal"), with_suffix(copy, "-wal"));
        copy_over(with_suffix(db(), ".anchor"), with_suffix(copy, ".anchor"));
    }
    const uint64_t frames = wal_frames(with_suffix(copy, "-wal"));
    ASSERT_GT(frames, 20u);
    // A frame in the first half: SQLite drops it and every frame after it.
    flip(with_suffix(copy, "-wal"), wal_frame_byte(with_suffix(copy, "-wal"), frames / 2, 200));
    const auto problems = verify_problems(copy);
    ASSERT_EQ(problems.size(), 1u) << join(problems);
    EXPECT_TRUE(contains(problems[0], "behind its anchor")) << problems[0];
    const std::string e = open_error(copy);
    EXPECT_TRUE(contains(e, "is behind its anchor")) << e;
}

TEST_F(Anchor, AnExistingLedgerWithoutAnchorGetsOneAndSaysSo) {
    {
        LedgerConfig c = test_config();
        c.anchor = AnchorMode::kNone;
        auto l = Ledger::open(db(), c);
        ASSERT_TRUE(l.ok());
        record(**l, 0, 2);
    }
    ASSERT_FALSE(fs::exists(with_suffix(db(), ".anchor")));
    {
        auto ro = Ledger::open_existing(db());
        ASSERT_TRUE(ro.ok());
        auto rep = (*ro)->verify();
        ASSERT_TRUE(rep.ok());
        EXPECT_TRUE(rep->ok()) << join(rep->problems);
        ASSERT_EQ(rep->notes.size(), 1u);
        EXPECT_TRUE(contains(rep->notes[0], "no anchor")) << rep->notes[0];
    }
    ASSERT_FALSE(fs::exists(with_suffix(db(), ".anchor"))) << "verify wrote an anchor";
    std::vector<std::string> notices;
    LedgerConfig c = test_config();
    c.notice = [&](const std::string& n) { notices.push_back(n); };
    auto l = Ledger::open(db(), c);
    ASSERT_TRUE(l.ok()) << l.error().describe();
    ASSERT_EQ(notices.size(), 1u);
    EXPECT_TRUE(contains(notices[0], "had no anchor: created")) << notices[0];
    EXPECT_EQ(anchor_lines(db()).size(), 1u);
}

TEST_F(Anchor, AnEditedAnchorLineIsRefusedATornOneIsDropped) {
    {
        auto l = Ledger::open(db(), test_config());
        ASSERT_TRUE(l.ok());
        record(**l, 0, 3);
    }
    const fs::path a = with_suffix(db(), ".anchor");
    const std::string good = slurp(a);
    // A torn append (a crash while writing): dropped with a notice, the ledger opens.
    write_text(a, good + "5 00ab");
    std::vector<std::string> notices;
    LedgerConfig c = test_config();
    c.notice = [&](const std::string& n) { notices.push_back(n); };
    {
        auto l = Ledger::open(db(), c);
        ASSERT_TRUE(l.ok()) << l.error().describe();
        ASSERT_EQ(notices.size(), 1u);
        EXPECT_TRUE(contains(notices[0], "cut short")) << notices[0];
        record(**l, 3, 1);
    }
    EXPECT_TRUE(verify_problems(db()).empty());
    // An edited quota-used figure breaks the line's link.
    std::string edited = slurp(a);
    const size_t line3 = edited.find('\n', edited.find('\n', edited.find('\n') + 1) + 1) + 1;
    const size_t used = edited.find(' ', edited.find(' ', line3) + 1) + 1;
    edited[used] = edited[used] == '9' ? '8' : '9';
    write_text(a, edited);
    const std::string e = open_error(db());
    EXPECT_TRUE(contains(e, "line 4")) << e;
    EXPECT_TRUE(contains(e, "edited or damaged")) << e;
    EXPECT_TRUE(contains(join(verify_problems(db())), "edited or damaged"));
}

TEST_F(Anchor, ADeletedLedgerIsNotStartedAfreshBesideItsAnchor) {
    {
        auto l = Ledger::open(db(), test_config());
        ASSERT_TRUE(l.ok());
        record(**l, 0, 2);
    }
    fs::remove(db());
    const std::string e = open_error(db());
    EXPECT_TRUE(contains(e, "the ledger was deleted or moved")) << e;
    EXPECT_FALSE(fs::exists(db()));
    // Another ledger put in its place is not the anchor's.
    {
        LedgerConfig c = test_config();
        c.anchor = AnchorMode::kNone;
        auto l = Ledger::open(db(), c);
        ASSERT_TRUE(l.ok());
    }
    EXPECT_TRUE(contains(open_error(db()), "is not the ledger its anchor")) << open_error(db());
}

// ---- the anchor in a PKCS#11 token (SoftHSM2) -----------------------------------------------

TEST_F(Anchor, ATokenAnchorCatchesARestoreOfBothFilesAndOnlyMovesForward) {
    if (!wt::SoftHsmToken::find_module()) GTEST_SKIP() << "SoftHSM2 is not installed";
    auto token = wt::SoftHsmToken::create();
    ASSERT_TRUE(token.ok()) << token.error().describe();
    (*token)->export_pin("WAFERPROV_TEST_ANCHOR_PIN");
    const TokenAnchorConfig tc{(*token)->module(), (*token)->label(), "WAFERPROV_TEST_ANCHOR_PIN",
                               "JOB-1"};
    auto opened = open_token_anchor(tc);
    ASSERT_TRUE(opened.ok()) << opened.error().describe();
    std::shared_ptr<HeadAnchor> anchor = *opened;
    LedgerConfig c = test_config();
    c.token_anchor = anchor;

    ChainHead head;
    {
        auto l = Ledger::open(db(), c);
        ASSERT_TRUE(l.ok()) << l.error().describe();
        record(**l, 0, 3);
        head = *(*l)->head();
    }
    // A second session reads what the ledger wrote: the head after the last commit.
    {
        auto other = open_token_anchor(tc);
        ASSERT_TRUE(other.ok());
        auto held = (*other)->read();
        ASSERT_TRUE(held.ok() && held->has_value());
        EXPECT_EQ((*held)->seq, head.events);
        EXPECT_EQ((*held)->hash, head.hash);
        EXPECT_EQ((*held)->used, 3u);
        // Never backwards: an older head is not written.
        ASSERT_TRUE((*other)->advance(AnchoredHead{1, {}, 0}).ok());
        auto again = (*other)->read();
        ASSERT_TRUE(again.ok() && again->has_value());
        EXPECT_EQ((*again)->seq, head.events);
    }
    // The operator backs up both files, works on, and puts both back.
    copy_over(db(), dir_ / "backup.db");
    copy_over(with_suffix(db(), ".anchor"), dir_ / "backup.anchor");
    {
        auto l = Ledger::open(db(), c);
        ASSERT_TRUE(l.ok()) << l.error().describe();
        record(**l, 3, 2);
        head = *(*l)->head();
    }
    copy_over(dir_ / "backup.db", db());
    copy_over(dir_ / "backup.anchor", with_suffix(db(), ".anchor"));
    LedgerConfig file_only = test_config();
    EXPECT_EQ(open_error(db(), file_only), "") << "the head log alone cannot see this";
    const std::string e = open_error(db(), c);
    EXPECT_TRUE(contains(e, "is behind its anchor")) << e;
    EXPECT_TRUE(contains(e, "waferprov-anchor:JOB-1")) << e;
    EXPECT_TRUE(contains(e, describe_head(head))) << e;
}

// ---- SQLite's own checks --------------------------------------------------------------------

// The root page of the UID index (UNIQUE on uid: the first automatic index of `records`).
int uid_index_root(const fs::path& db) {
    sqlite3* raw = nullptr;
    EXPECT_EQ(sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(raw,
                                 "SELECT rootpage FROM sqlite_master WHERE name = "
                                 "'sqlite_autoindex_records_1'",
                                 -1, &s, nullptr),
              SQLITE_OK);
    int root = -1;
    if (sqlite3_step(s) == SQLITE_ROW) root = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(raw);
    return root;
}

TEST_F(Anchor, AFlippedUidIndexByteIsReportedByVerify) {
    {
        auto l = Ledger::open(db(), test_config());
        ASSERT_TRUE(l.ok());
        record(**l, 0, 20, 20);
    }  // closed: checkpointed into the file, no log
    ASSERT_FALSE(fs::exists(with_suffix(db(), "-wal")));
    EXPECT_TRUE(verify_problems(db()).empty());
    const int root = uid_index_root(db());
    ASSERT_GT(root, 1);
    // A leaf page of 20 index cells (uid, rowid); the cell content area runs to the page's end,
    // and the last cell written ends with its 16-byte UID and the rowid. Flip a UID byte.
    const std::string file = slurp(db());
    const uint64_t page = 4096;
    ASSERT_EQ(static_cast<uint8_t>(file[(root - 1) * page]), 0x0a) << "not an index leaf page";
    flip(db(), static_cast<uint64_t>(root) * page - 6);

    const auto problems = verify_problems(db());
    ASSERT_FALSE(problems.empty());
    EXPECT_TRUE(contains(join(problems), "SQLite integrity_check")) << join(problems);
    EXPECT_TRUE(contains(join(problems), "sqlite_autoindex_records_1")) << join(problems);
    // `serve` opens with the full check and refuses the file; the quick check of each `run`
    // does not see an index that disagrees with its table.
    LedgerConfig full = test_config();
    full.full_integrity_check = true;
    const std::string e = open_error(db(), full);
    EXPECT_TRUE(contains(e, "fails SQLite's integrity_check")) << e;
    EXPECT_TRUE(contains(e, "sqlite_autoindex_records_1")) << e;
    EXPECT_EQ(open_error(db(), test_config()), "");
}

TEST_F(Anchor, AFileFailingQuickCheckIsNotOpenedForWriting) {
    {
        auto l = Ledger::open(db(), test_config());
        ASSERT_TRUE(l.ok());
        record(**l, 0, 20, 20);
    }
    // The records table's root page made a page type SQLite does not know.
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open_v2(db().c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT rootpage FROM sqlite_master WHERE name = 'records'",
                                 -1, &s, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
    const int root = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(raw);
    {
        std::fstream f(db(), std::ios::in | std::ios::out | std::ios::binary);
        f.seekp((root - 1) * 4096 + 3);  // the page's cell count
        const char big[2] = {0x7f, 0x7f};
        f.write(big, 2);
    }
    const std::string e = open_error(db());
    EXPECT_TRUE(contains(e, "fails SQLite's quick_check")) << e;
    VerifyOptions quick;
    quick.quick = true;
    EXPECT_TRUE(contains(join(verify_problems(db(), quick)), "SQLite quick_check"));
}

// ---- read-only opening ----------------------------------------------------------------------

struct FileState {
    std::string bytes;
    int64_t mtime_ns = 0;
    bool operator==(const FileState&) const = default;
};
FileState state_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return FileState{slurp(p),
                     static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

std::set<std::string> listing(const fs::path& dir) {
    std::set<std::string> s;
    for (const auto& e : fs::directory_iterator(dir)) s.insert(e.path().filename().string());
    return s;
}

TEST_F(Anchor, VerifyOfAMissingOrEmptyFileCreatesAndGrowsNothing) {
    const auto before = listing(dir_.path());
    auto r = waferprov({"ledger", "verify", "--ledger", (dir_ / "none.db").string()}, "/tmp");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(contains(r.out, "does not exist")) << r.out;
    EXPECT_EQ(listing(dir_.path()), before);
    write_text(dir_ / "empty.db", "");
    r = waferprov({"ledger", "verify", "--ledger", (dir_ / "empty.db").string()}, "/tmp");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(contains(r.out, "is empty")) << r.out;
    EXPECT_EQ(fs::file_size(dir_ / "empty.db"), 0u);
    auto after = listing(dir_.path());
    after.erase("empty.db");
    EXPECT_EQ(after, before) << "verify made files beside an empty one";
}

TEST_F(Anchor, VerifyShowExportOfAReadOnlyCopyChangeNothing) {
    TestCa ca;
    {
        auto l = Ledger::open(db(), test_config());
        ASSERT_TRUE(l.ok());
        std::vector<NewIdentity> batch;
        for (uint64_t i = 0; i < 3; ++i)
            batch.push_back(real_identity(ca, i, {"LOT7", 2, static_cast<int>(i), 0, "LOT7-02"}));
        ASSERT_TRUE((*l)->record_batch(batch).ok());
    }
    write_text(dir_ / "ca.pem", ca.cert_pem());
    write_text(dir_ / "ca.key", ca.key_pem());
    const fs::path ro = dir_ / "ro";
    fs::create_directory(ro);
    copy_over(db(), ro / "l.db");
    copy_over(with_suffix(db(), ".anchor"), ro / "l.db.anchor");
    ::chmod((ro / "l.db").c_str(), 0444);
    ::chmod(ro.c_str(), 0555);
    const FileState before = state_of(ro / "l.db");
    const std::string ledger = (ro / "l.db").string();
    auto r = waferprov({"ledger", "verify", "--ledger", ledger}, dir_.path());
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_TRUE(contains(r.out, "contains its head")) << r.out;
    r = waferprov({"ledger", "summary", "--ledger", ledger}, dir_.path());
    EXPECT_EQ(r.status, 0) << r.out;
    r = waferprov({"ledger", "show", "--ledger", ledger, "--uid", to_hex(uid_of(1))}, dir_.path());
    EXPECT_EQ(r.status, 0) << r.out;
    r = waferprov({"ledger", "export", "--ledger", ledger, "--out", (dir_ / "x").string(),
                   "--ca-key", (dir_ / "ca.key").string(), "--ca-cert", (dir_ / "ca.pem").string()},
                  dir_.path());
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_TRUE(state_of(ro / "l.db") == before) << "the ledger file changed";
    ::chmod(ro.c_str(), 0755);
}

// Root only: a tmpfs mounted here for the test (skipped where mounting is not allowed).
class Mount {
public:
    Mount(const fs::path& where, const char* options) : where_(where) {
        fs::create_directories(where);
        ok_ = ::mount("tmpfs", where.c_str(), "tmpfs", 0, options) == 0;
    }
    ~Mount() {
        if (ok_) ::umount2(where_.c_str(), MNT_DETACH);
    }
    bool ok() const { return ok_; }
    bool remount_read_only() {
        return ::mount("tmpfs", where_.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, nullptr) == 0;
    }

private:
    fs::path where_;
    bool ok_ = false;
};

TEST_F(Anchor, VerifyAndSummaryWorkOnReadOnlyMedia) {
    {
        auto l = Ledger::open(db(), test_config());
        ASSERT_TRUE(l.ok());
        record(**l, 0, 5, 2);
    }
    Mount m(dir_ / "media", "size=4m");
    if (!m.ok()) GTEST_SKIP() << "mounting a tmpfs is not allowed here (not root)";
    copy_over(db(), dir_ / "media" / "l.db");
    copy_over(with_suffix(db(), ".anchor"), dir_ / "media" / "l.db.anchor");
    ASSERT_TRUE(m.remount_read_only());
    const std::string ledger = (dir_ / "media" / "l.db").string();
    auto r = waferprov({"ledger", "verify", "--ledger", ledger}, dir_.path());
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_TRUE(contains(r.out, "OK - 6 events")) << r.out;
    r = waferprov({"ledger", "summary", "--ledger", ledger}, dir_.path());
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_TRUE(contains(r.out, "ISSUED       5")) << r.out;
}

TEST_F(Anchor, AFullDiskAtStartIsNamed) {
    Mount m(dir_ / "small", "size=64k");
    if (!m.ok()) GTEST_SKIP() << "mounting a tmpfs is not allowed here (not root)";
    {
        std::ofstream fill(dir_ / "small" / "fill", std::ios::binary);
        const std::string block(4096, 'x');
        for (int i = 0; i < 64 && fill; ++i) fill << block;
    }
    const std::string e = open_error(dir_ / "small" / "l.db");
    EXPECT_TRUE(contains(e, "the disk holding it is full")) << e;
}

// ---- the command line: run and serve refuse, verify reports ---------------------------------

class AnchorCli : public ::testing::Test {
protected:
    void SetUp() override {
        auto r = waferprov({"job", "init", "--out", (dir_ / "job").string()}, dir_.path());
        ASSERT_EQ(r.status, 0) << r.out;
        r = waferprov({"wafer", "synth", "--diameter", "30", "--die", "3x3", "--out",
                       (dir_ / "w.xml").string()},
                      dir_.path());
        ASSERT_EQ(r.status, 0) << r.out;
        r = waferprov({"run", "--job", job(), "--map", (dir_ / "w.xml").string(), "--batch", "8",
                       "--no-progress", "--out", (dir_ / "rep").string()},
                      dir_.path());
        ASSERT_EQ(r.status, 0) << r.out;
    }
    std::string job() const { return (dir_ / "job" / "job.toml").string(); }
    fs::path ledger() const { return dir_ / "job" / "ledger.sqlite"; }
    CmdRun run_again() {
        return waferprov({"run", "--job", job(), "--map", (dir_ / "w.xml").string(),
                          "--no-progress", "--out", (dir_ / "rep2").string()},
                         dir_.path());
    }
    CmdRun serve() {
        // Refused at start: it must exit, not listen (the timeout fails the test otherwise).
        return waferprov({"serve", "--job", job(), "--insecure", "--bind", "tcp://127.0.0.1:0"},
                         dir_.path(), std::chrono::seconds(60));
    }
    TempDir dir_{"anchor-cli"};
};

TEST_F(AnchorCli, AFlippedWalBitIsRefusedByRunAndServeAndReportedByVerify) {
    // After the run: deliveries and results, one commit each, kept in the write-ahead log, as a
    // floor leaves them when the host dies between checkpoints.
    ChainHead head;
    {
        auto existing = Ledger::open_existing(ledger());
        ASSERT_TRUE(existing.ok());
        const LedgerConfig c = (*existing)->config();
        existing->reset();
        auto l = Ledger::open(ledger(), c);
        ASSERT_TRUE(l.ok()) << l.error().describe();
        ASSERT_TRUE((*l)->defer_checkpoints().ok());
        std::vector<wpid1::Uid> uids;
        ASSERT_TRUE((*l)->for_each([&](const LedgerRecord& r) {
                            if (uids.size() < 12) uids.push_back(r.uid);
                            return ok_status();
                        })
                        .ok());
        for (const auto& u : uids) {
            ASSERT_TRUE((*l)->mark_delivered(std::vector<wpid1::Uid>{u}, "T1").ok());
            ASSERT_TRUE(mark_result(**l, u, true, "1", "T1").ok());
        }
        head = *(*l)->head();
        copy_over(ledger(), dir_ / "crash.db");
        copy_over(with_suffix(ledger(), "-wal"), dir_ / "crash.db-wal");
    }
    copy_over(dir_ / "crash.db", ledger());
    copy_over(dir_ / "crash.db-wal", with_suffix(ledger(), "-wal"));
    fs::remove(with_suffix(ledger(), "-shm"));
    const fs::path wal = with_suffix(ledger(), "-wal");
    const uint64_t frames = wal_frames(wal);
    ASSERT_GE(frames, 24u);
    flip(wal, wal_frame_byte(wal, frames / 2, 300));

    auto r = waferprov({"ledger", "verify", "--ledger", ledger().string()}, dir_.path());
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(contains(r.out, "behind its anchor")) << r.out;
    EXPECT_TRUE(contains(r.out, describe_head(head))) << r.out;
    r = serve();
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(contains(r.out, "is behind its anchor")) << r.out;
    EXPECT_TRUE(contains(r.out, describe_head(head))) << r.out;
    EXPECT_FALSE(contains(r.out, "listening on")) << r.out;
    r = run_again();
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(contains(r.out, "is behind its anchor")) << r.out;
}

TEST_F(AnchorCli, ARestoredOlderLedgerIsRefusedByRunAndServe) {
    ASSERT_FALSE(fs::exists(with_suffix(ledger(), "-wal"))) << "run checkpoints when it finishes";
    copy_over(ledger(), dir_ / "backup.db");
    auto r = waferprov({"ledger", "verify", "--ledger", ledger().string()}, dir_.path());
    ASSERT_EQ(r.status, 0) << r.out;
    const size_t at = r.out.find("chain head ") + 11;
    const std::string customer_head = r.out.substr(at, r.out.find('\n', at) - at);
    // More work after the backup: a second wafer number of the same map.
    r = waferprov({"wafer", "synth", "--diameter", "30", "--die", "3x3", "--wafer", "9", "--out",
                   (dir_ / "w9.xml").string()},
                  dir_.path());
    ASSERT_EQ(r.status, 0) << r.out;
    r = waferprov({"run", "--job", job(), "--map", (dir_ / "w9.xml").string(), "--no-progress",
                   "--out", (dir_ / "rep3").string()},
                  dir_.path());
    ASSERT_EQ(r.status, 0) << r.out;
    r = waferprov({"ledger", "verify", "--ledger", ledger().string()}, dir_.path());
    ASSERT_EQ(r.status, 0) << r.out;
    const std::string latest = r.out.substr(r.out.find("chain head ") + 11, 20);
    copy_over(dir_ / "backup.db", ledger());

    r = serve();
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(contains(r.out, "is behind its anchor")) << r.out;
    EXPECT_TRUE(contains(r.out, customer_head)) << r.out;
    EXPECT_TRUE(contains(r.out, latest)) << r.out;
    r = run_again();
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(contains(r.out, "is behind its anchor")) << r.out;
    r = waferprov({"ledger", "verify", "--ledger", ledger().string()}, dir_.path());
    EXPECT_EQ(r.status, 1) << r.out;
    // The customer's head from before is still in the restored chain: --head agrees...
    r = waferprov({"ledger", "verify", "--ledger", ledger().string(), "--head", customer_head},
                  dir_.path());
    EXPECT_TRUE(contains(r.out, "the chain contains the head " + customer_head)) << r.out;
}

// A PKCS#11 job: its head also lives in the CA's token. Restoring the ledger AND its head log
// (what the head log alone cannot see) is refused by `serve` and `run`, and reported by
// `ledger verify --job`, all through the token.
TEST(AnchorTokenCli, RestoringLedgerAndHeadLogIsRefusedByServeRunAndVerify) {
    if (!wt::SoftHsmToken::find_module()) GTEST_SKIP() << "SoftHSM2 is not installed";
    auto token = wt::SoftHsmToken::create();
    ASSERT_TRUE(token.ok()) << token.error().describe();
    (*token)->export_pin("WAFERPROV_HSM_PIN");
    TempDir dir{"anchor-token-cli"};
    const std::string job = (dir / "job" / "job.toml").string();
    const fs::path ledger = dir / "job" / "ledger.sqlite";
    auto r = waferprov({"job", "init", "--out", (dir / "job").string(), "--hsm", "--module",
                        (*token)->module().string(), "--token-label", (*token)->label(),
                        "--key-label", "manufacturer-ca"},
                       dir.path());
    ASSERT_EQ(r.status, 0) << r.out;
    for (const char* w : {"1", "2"}) {
        r = waferprov({"wafer", "synth", "--diameter", "30", "--die", "3x3", "--wafer", w, "--out",
                       (dir / (std::string("w") + w + ".xml")).string()},
                      dir.path());
        ASSERT_EQ(r.status, 0) << r.out;
    }
    auto run = [&](const char* map) {
        return waferprov({"run", "--job", job, "--map", (dir / map).string(), "--no-progress",
                          "--out", (dir / (std::string("rep-") + map)).string()},
                         dir.path());
    };
    r = run("w1.xml");
    ASSERT_EQ(r.status, 0) << r.out;
    copy_over(ledger, dir / "backup.db");
    copy_over(with_suffix(ledger, ".anchor"), dir / "backup.anchor");
    r = run("w2.xml");
    ASSERT_EQ(r.status, 0) << r.out;
    r = waferprov({"ledger", "verify", "--job", job}, dir.path());
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_TRUE(contains(r.out, "waferprov-anchor:")) << r.out;
    const std::string latest = r.out.substr(r.out.find("chain head ") + 11, 20);

    copy_over(dir / "backup.db", ledger);
    copy_over(dir / "backup.anchor", with_suffix(ledger, ".anchor"));
    r = waferprov({"ledger", "verify", "--ledger", ledger.string()}, dir.path());
    EXPECT_EQ(r.status, 0) << "the head log alone cannot see this\n" << r.out;
    r = waferprov({"ledger", "verify", "--job", job}, dir.path());
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(contains(r.out, "behind its token anchor")) << r.out;
    EXPECT_TRUE(contains(r.out, latest)) << r.out;
    r = waferprov({"serve", "--job", job, "--insecure", "--bind", "tcp://127.0.0.1:0"}, dir.path(),
                  std::chrono::seconds(60));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(contains(r.out, "is behind its anchor")) << r.out;
    EXPECT_TRUE(contains(r.out, "waferprov-anchor:")) << r.out;
    EXPECT_TRUE(contains(r.out, latest)) << r.out;
    EXPECT_FALSE(contains(r.out, "listening on")) << r.out;
    r = run("w2.xml");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(contains(r.out, "waferprov-anchor:")) << r.out;
}

}  // namespace
}  // namespace waferprov::host
