// Ledger::Impl, shared by the ledger's files: ledger.cpp (record, transitions, lookups), open.cpp,
// verify.cpp, migrate.cpp, final_test.cpp, export.cpp and the SQLite store (store_sqlite.cpp).
#pragma once

#include <atomic>
#include <mutex>
#include <optional>

#include "anchor.hpp"
#include "chain.hpp"
#include "group_commit.hpp"
#include "sqlite.hpp"
#include "store.hpp"
#include "waferprov/host/ledger.hpp"

namespace waferprov::host {

// A transaction on the connection (Connection::begin): a write transaction holds the ledger's
// write lock from its start, so reads inside see the latest commit and no other process or host
// can interleave; a read transaction is a snapshot. Rolled back unless committed.
class Txn {
public:
    Txn(const Txn&) = delete;
    Txn& operator=(const Txn&) = delete;
    Txn(Txn&& o) noexcept : db_(o.db_), active_(o.active_) { o.active_ = false; }
    Txn& operator=(Txn&&) = delete;
    ~Txn() {
        if (active_) db_->rollback();
    }
    static Result<Txn> begin(sql::Connection& db, bool write) {
        WP_RETURN_IF_ERROR(db.begin(write));
        return Txn(&db);
    }
    Status commit() {
        WP_RETURN_IF_ERROR(db_->commit());  // a failed COMMIT is still rolled back
        active_ = false;
        return ok_status();
    }

private:
    explicit Txn(sql::Connection* db) : db_(db), active_(true) {}
    sql::Connection* db_;
    bool active_;
};

// The chain head and quota counter as read at the start of a write transaction and advanced by
// every event appended in it; written back to the job row before COMMIT.
struct WriteState {
    uint64_t seq = 0;
    chain::Hash head{};
    uint64_t quota = 0;
    uint64_t used = 0;
    int64_t now = 0;
    bool dirty = false;
};

struct Ledger::Impl {
    std::mutex mu;
    // The ledger as messages name it: the SQLite file's path, or the PostgreSQL URI without its
    // password; the anchor file (AnchorMode::kFile) beside a SQLite file or where the
    // configuration puts it (LedgerConfig::anchor_file, the only place for PostgreSQL).
    std::filesystem::path path;
    std::filesystem::path anchor_file;
    LedgerConfig config;
    std::unique_ptr<sql::Connection> db;
    sql::SqliteConnection* lite = nullptr;  // db, when it is SQLite (checkpoints, checks)
    // defer_checkpoints(): a second connection that copies the WAL into the database off the
    // writers' path (its own mutex, so a checkpoint never holds up a transaction on `db`).
    std::mutex checkpoint_mu;
    sql::DbPtr checkpoint_db;
    std::atomic<int> wal_pages{0};  // pages in the write-ahead log after the last commit
    bool read_only = false;         // open_existing(): a read-only connection
    // The head log beside the ledger (open() with AnchorMode::kFile), advanced after every
    // commit. If an append fails, the commit stands (it is durable) but every later write is
    // refused with anchor_failed: an unanchored ledger must not keep issuing.
    std::optional<anchor::Writer> anchor;
    std::optional<Error> anchor_failed;
    std::function<void(const Ledger::CommitNote&)> on_commit;  // Ledger::on_commit()
    // deliver / mark_results from several threads share transactions (group_commit.hpp).
    GroupCommitter group{*this};

    Result<sql::Statement*> stmt(const char* text) { return db->prepare(text); }

    // Record rows.
    Result<std::optional<LedgerRecord>> select_record(const char* where_sql,
                                                      const std::function<void(sql::Query&)>& bind);
    Result<std::optional<LedgerRecord>> by_uid(const wpid1::Uid& uid);
    Result<std::optional<LedgerRecord>> by_location(const DieLocation& loc);
    Result<std::optional<LedgerRecord>> by_serial(ByteSpan serial);
    Status insert_record(const LedgerRecord& r);
    // The substrate id bound to (lot, wafer), if any; the wafer a substrate id is bound to.
    Result<std::optional<std::string>> substrate_of(const std::string& lot, int wafer);
    Result<std::optional<std::pair<std::string, int>>> wafer_of(const std::string& substrate);
    Status bind_wafer(const DieLocation& loc);
    Status update_mutable(const LedgerRecord& r);

    // Events.
    Result<WriteState> load_write_state();
    // mark_delivered / deliver (check_location: deliver's location check).
    Result<std::vector<TransitionResult>> deliver(std::span<const Delivery> items,
                                                  const std::string& tester, bool check_location);
    // Their bodies, inside a write transaction the caller opened (the group's), appending to
    // `out`; an Error leaves `out` meaningless and the caller rolls back what was written.
    Status apply_deliver(WriteState& ws, std::span<const Delivery> items, const std::string& tester,
                         bool check_location, std::vector<TransitionResult>& out);
    Status apply_results(WriteState& ws, std::span<const DieResult> results,
                         const std::string& tester, std::vector<TransitionResult>& out);
    Status append_event(WriteState& ws, nlohmann::json event, const std::string& type,
                        const std::optional<wpid1::Uid>& uid);
    // Appends an ISSUE event for `r` (written by chain::issue_payload) and counts it.
    Status append_issue(WriteState& ws, const LedgerRecord& r);
    // Inserts a payload already in canonical form, carrying seq ws.seq + 1 and time ws.now.
    Status insert_event(WriteState& ws, std::string_view payload, const char* type,
                        const std::optional<wpid1::Uid>& uid);
    std::string scratch;                  // the ISSUE payload buffer, reused
    std::vector<LedgerRecord> delivered;  // apply_deliver's dies for its one DELIVER event
    // Ledger::migrate's last step (inside its transaction): the MIGRATE event from format 3 and
    // schema version 4.
    Status migrate_3_to_4(MigrateReport& report);
    Status migrate_4_to_5(MigrateReport& report);
    // Final test (final_test.cpp): rebuilds an existing final_test table under version 5's
    // schema (PROVISIONED allowed), rows unchanged; creates the table if this ledger has none
    // (the first final-test write of each transaction calls it); and writes a packaged part's
    // PROVISIONED row with its FINAL_PROVISION event, inside the caller's transaction, after
    // ensure_final_table() and for a location valid_final_location() accepted.
    Status rebuild_final_table();
    Status ensure_final_table();
    Status provision_final_row(WriteState& ws, const wpid1::Uid& uid, const FinalLocation& loc,
                               const std::string& tester);
    Status store_write_state(const WriteState& ws);
    // Before a write transaction: refused after a failed anchor append.
    Status writable() const;
    // Stores the write state, commits, then advances the anchor (after the commit, so that a
    // crash between the two leaves the anchor behind the ledger, which open() accepts, never
    // ahead of it).
    // PostgreSQL: a COMMIT whose answer was lost with the connection is settled by reading the
    // chain again (commit() calls it): whether the event at ws.seq is ws's.
    Status commit(Txn& txn, const WriteState& ws, uint64_t requests = 1);
    Result<bool> committed_after_loss(const WriteState& ws);
};

// verify(): the final_test table (final_test.cpp) must hold exactly the rows the chain's
// FINAL_CHALLENGE / FINAL_RESULT events replay to; differences become rp's problems.
Status verify_final_table(Ledger::Impl& m, chain::Replayer& rp);

// SELECT of every record column, in the order row_to_record reads them.
#define WP_RECORD_SELECT(where)                                                            \
    "SELECT uid, lot, wafer, x, y, serial, public_key, wrapped_key, certificate, state, "  \
    "issued_us, delivered_us, result_us, updated_us, tester, bin, reissues, void_reason, " \
    "substrate, site FROM records " where
// Records by location: within a lot the packaged parts (NULL wafer position) by UID, then the
// wafers' dies.
#define WP_RECORD_SELECT_ORDERED WP_RECORD_SELECT("ORDER BY lot, wafer NULLS FIRST, y, x, uid")
Result<LedgerRecord> row_to_record(const sql::Query& q);
// open.cpp: the records table's columns and constraints, in the words ddl() translates (the
// schema and the migration to version 5 declare it from this one text).
extern const char* const kRecordsColumns;
// store_sqlite.cpp: a connection to a SQLite file for writing (WAL, full sync; `create`: the
// file may be new); a read-only one for open_existing (never creates or changes the file);
// SQLite's integrity_check (quick: its quick_check) of the file: "ok" lines dropped, at most
// `limit` findings.
Result<std::unique_ptr<Ledger::Impl>> connect_writable(const std::filesystem::path& path,
                                                       bool create, int busy_timeout_ms);
Result<std::unique_ptr<Ledger::Impl>> connect_read_only(const std::filesystem::path& path,
                                                        int busy_timeout_ms);
Result<std::vector<std::string>> integrity_problems(sqlite3* db, bool quick, int limit = 20);

// b as a fixed-size array; false if its size is not N.
template <size_t N>
bool copy_fixed(const Bytes& b, std::array<uint8_t, N>& out) {
    if (b.size() != N) return false;
    std::copy(b.begin(), b.end(), out.begin());
    return true;
}
// The final_test table, created in the ledger's dialect (final_test.cpp).
Status create_final_table(Ledger::Impl& m);
// kInvalidArgument unless `l` is a final-test location the ledger can record (final_test.cpp).
Status valid_final_location(const FinalLocation& l);

}  // namespace waferprov::host
