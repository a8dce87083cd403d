#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <ctime>
#include <iostream>
#include <set>
#include <thread>
#include <tuple>

#include "ledger_impl.hpp"

namespace waferprov::host {

using nlohmann::json;

const char* to_string(RecordOutcome o) noexcept {
    switch (o) {
        case RecordOutcome::kIssued: return "ISSUED";
        case RecordOutcome::kReissued: return "REISSUED";
        case RecordOutcome::kConflict: return "CONFLICT";
        case RecordOutcome::kQuotaExhausted: return "QUOTA_EXHAUSTED";
    }
    return "?";
}

const char* to_string(TransitionStatus s) noexcept {
    switch (s) {
        case TransitionStatus::kOk: return "OK";
        case TransitionStatus::kUnknownUid: return "UNKNOWN_UID";
        case TransitionStatus::kNotDelivered: return "NOT_DELIVERED";
        case TransitionStatus::kDuplicateResult: return "DUPLICATE_RESULT";
        case TransitionStatus::kAlreadyProgrammed: return "ALREADY_PROGRAMMED";
        case TransitionStatus::kVoided: return "VOIDED";
        case TransitionStatus::kInvalidArgument: return "INVALID_ARGUMENT";
        case TransitionStatus::kLocationMismatch: return "LOCATION_MISMATCH";
    }
    return "?";
}

namespace {
// The counter of state s in c, const or not.
template <class Counts>
auto& counter_of(Counts& c, DieState s) {
    switch (s) {
        case DieState::kIssued: return c.issued;
        case DieState::kDelivered: return c.delivered;
        case DieState::kProgrammed: return c.programmed;
        case DieState::kFailed: return c.failed;
        case DieState::kVoid: return c.voided;
    }
    return c.voided;  // unreachable: every DieState is handled above
}
}  // namespace

uint64_t StateCounts::of(DieState s) const { return counter_of(*this, s); }
uint64_t& StateCounts::of(DieState s) { return counter_of(*this, s); }

std::string iso8601_utc(int64_t epoch_us) {
    if (epoch_us == 0) return "";
    const int64_t secs = epoch_us >= 0 ? epoch_us / 1000000 : (epoch_us - 999999) / 1000000;
    const int64_t micros = epoch_us - secs * 1000000;
    const auto t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(micros));
    return buf;
}

// ---- schema ---------------------------------------------------------------------------------

// Version 5: records carry the substrate id; `wafers` binds each (lot, wafer number) to one
// substrate id and each substrate id to one wafer; a packaged part provisioned at final test has
// no wafer position (wafer, x and y NULL, substrate ''). docs/ledger.md explains every column.
// kSchema holds every table but `records`, whose columns and constraints are this one text:
// create_schema() and the migration to version 5 (migrate.cpp) both declare it from it. Both
// are written in SQLite's words; sql::ddl() gives PostgreSQL its own.
const char* const kRecordsColumns = R"sql( (
    id           {ID},
    uid          BLOB    NOT NULL UNIQUE CHECK (length(uid) = 16),
    lot          TEXT    NOT NULL,
    wafer        INTEGER,
    x            INTEGER,
    y            INTEGER,
    serial       BLOB    NOT NULL UNIQUE CHECK (length(serial) BETWEEN 1 AND 20),
    public_key   BLOB    NOT NULL CHECK (length(public_key) = 65),
    wrapped_key  BLOB    NOT NULL CHECK (length(wrapped_key) = 40),
    certificate  BLOB    NOT NULL,
    state        TEXT    NOT NULL
                 CHECK (state IN ('ISSUED', 'DELIVERED', 'PROGRAMMED', 'FAILED', 'VOID')),
    issued_us    INTEGER NOT NULL,
    delivered_us INTEGER NOT NULL DEFAULT 0,
    result_us    INTEGER NOT NULL DEFAULT 0,
    updated_us   INTEGER NOT NULL,
    tester       TEXT    NOT NULL DEFAULT '',
    bin          TEXT    NOT NULL DEFAULT '',
    reissues     INTEGER NOT NULL DEFAULT 0,
    void_reason  TEXT    NOT NULL DEFAULT '',
    substrate    TEXT    NOT NULL DEFAULT '',
    site         INTEGER NOT NULL DEFAULT -1,
    UNIQUE (lot, wafer, y, x),
    CHECK ((wafer IS NULL) = (x IS NULL) AND (x IS NULL) = (y IS NULL)),
    CHECK (wafer IS NOT NULL OR substrate = '')
))sql";

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE job (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    job_id      TEXT    NOT NULL,
    customer    TEXT    NOT NULL,
    product     TEXT    NOT NULL,
    quota       INTEGER NOT NULL CHECK (quota >= 0),
    quota_used  INTEGER NOT NULL CHECK (quota_used >= 0 AND quota_used <= quota),
    created_us  INTEGER NOT NULL,
    head_seq    INTEGER NOT NULL,
    head_hash   BLOB    NOT NULL CHECK (length(head_hash) = 32)
);
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY CHECK (seq >= 1),
    type     TEXT    NOT NULL,
    uid      BLOB,
    time_us  INTEGER NOT NULL,
    payload  TEXT    NOT NULL,
    hash     BLOB    NOT NULL CHECK (length(hash) = 32)
);
CREATE TABLE wafers (
    lot       TEXT    NOT NULL,
    wafer     INTEGER NOT NULL,
    substrate TEXT    NOT NULL,
    PRIMARY KEY (lot, wafer)
);
CREATE UNIQUE INDEX wafers_substrate ON wafers (substrate) WHERE substrate != '';
)sql";

// The event log refuses UPDATE and DELETE (and, on PostgreSQL, TRUNCATE) through SQL.
constexpr const char* kAppendOnlySqlite = R"sql(
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
)sql";
constexpr const char* kAppendOnlyPostgres = R"sql(
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'the event log is append-only'; END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON events
FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
)sql";

Status validate_config(const LedgerConfig& c) {
    if (!chain::valid_text(c.job_id, false))
        return make_error(ErrorCode::kInvalidArgument,
                          "ledger: job id must be 1..256 printable ASCII characters");
    if (!chain::valid_text(c.customer) || !chain::valid_text(c.product))
        return make_error(ErrorCode::kInvalidArgument,
                          "ledger: customer and product must be printable ASCII (<= 256)");
    if (c.quota > static_cast<uint64_t>(INT64_MAX))
        return make_error(ErrorCode::kInvalidArgument, "ledger: quota out of range");
    return ok_status();
}

Status validate_identity(const NewIdentity& n, size_t index) {
    const bool position_ok = !n.loc.packaged || (n.loc.wafer == 0 && n.loc.x == 0 && n.loc.y == 0 &&
                                                 n.loc.substrate.empty());
    if (chain::valid_text(n.loc.lot, false) && chain::valid_text(n.loc.substrate) &&
        chain::valid_text(n.tester) && !n.serial.empty() && n.serial.size() <= 20 &&
        n.public_key[0] == 0x04 && !n.certificate_der.empty() && position_ok)
        return ok_status();  // the common case, without building the message prefix
    const std::string where = "ledger: batch item " + std::to_string(index) + ": ";
    if (!chain::valid_text(n.loc.lot, false))
        return make_error(ErrorCode::kInvalidArgument,
                          where + "lot must be 1..256 printable ASCII characters");
    if (!chain::valid_text(n.loc.substrate))
        return make_error(ErrorCode::kInvalidArgument,
                          where + "substrate id must be at most 256 printable ASCII characters");
    if (!chain::valid_text(n.tester))
        return make_error(ErrorCode::kInvalidArgument, where + "tester id is not printable ASCII");
    if (n.serial.empty() || n.serial.size() > 20)
        return make_error(ErrorCode::kInvalidArgument, where + "serial must be 1..20 bytes");
    if (n.public_key[0] != 0x04)
        return make_error(ErrorCode::kInvalidArgument,
                          where + "public key is not an uncompressed point");
    if (n.certificate_der.empty())
        return make_error(ErrorCode::kInvalidArgument, where + "no certificate");
    if (!position_ok)
        return make_error(ErrorCode::kInvalidArgument,
                          where + "a packaged part has no wafer, x, y or substrate id");
    return ok_status();
}

template <size_t N>
bool copy_fixed(const Bytes& b, std::array<uint8_t, N>& out) {
    if (b.size() != N) return false;
    std::copy(b.begin(), b.end(), out.begin());
    return true;
}

}  // namespace

Result<LedgerRecord> row_to_record(const sql::Query& q) {
    LedgerRecord r;
    const Bytes uid = q.blob_col(0);
    if (!copy_fixed(uid, r.uid))
        return make_error(ErrorCode::kIntegrityFailure, "record with a malformed UID");
    const std::string who = "record UID " + to_hex(uid) + ": ";
    r.loc.lot = q.text_col(1);
    r.loc.packaged = q.is_null(2);  // NULL wafer, x, y: a packaged part (schema CHECK)
    r.loc.wafer = static_cast<int>(q.int_col(2));
    r.loc.x = static_cast<int>(q.int_col(3));
    r.loc.y = static_cast<int>(q.int_col(4));
    r.serial = q.blob_col(5);
    if (!copy_fixed(q.blob_col(6), r.public_key) || !copy_fixed(q.blob_col(7), r.wrapped))
        return make_error(ErrorCode::kIntegrityFailure, who + "malformed key columns");
    r.certificate_der = q.blob_col(8);
    auto state = die_state_from_string(q.text_col(9));
    if (!state.ok()) return make_error(ErrorCode::kIntegrityFailure, who + state.error().message);
    r.state = *state;
    r.issued_us = q.int_col(10);
    r.delivered_us = q.int_col(11);
    r.result_us = q.int_col(12);
    r.updated_us = q.int_col(13);
    r.tester = q.text_col(14);
    r.bin = q.text_col(15);
    r.reissues = static_cast<uint32_t>(q.int_col(16));
    r.void_reason = q.text_col(17);
    r.loc.substrate = q.text_col(18);
    r.site = static_cast<int>(q.int_col(19));
    return r;
}

// ---- Impl -----------------------------------------------------------------------------------

Result<std::optional<LedgerRecord>> Ledger::Impl::select_record(
    const char* where_sql, const std::function<void(sql::Query&)>& bind) {
    WP_ASSIGN_OR_RETURN(auto* s, stmt(where_sql));
    sql::Query q(s);
    bind(q);
    WP_ASSIGN_OR_RETURN(const bool row, q.step());
    if (!row) return std::optional<LedgerRecord>();
    WP_ASSIGN_OR_RETURN(auto r, row_to_record(q));
    return std::optional<LedgerRecord>(std::move(r));
}

Result<std::optional<LedgerRecord>> Ledger::Impl::by_uid(const wpid1::Uid& uid) {
    return select_record(WP_RECORD_SELECT("WHERE uid = ?1"),
                         [&](sql::Query& q) { q.bind_blob(1, uid); });
}

Result<std::optional<LedgerRecord>> Ledger::Impl::by_location(const DieLocation& loc) {
    // (lot, wafer, x, y) is unique whatever the substrate id: a record found here under another
    // substrate id is a different physical wafer's die (the caller compares loc).
    return select_record(WP_RECORD_SELECT("WHERE lot = ?1 AND wafer = ?2 AND y = ?3 AND x = ?4"),
                         [&](sql::Query& q) {
                             q.bind(1, loc.lot).bind(2, loc.wafer).bind(3, loc.y).bind(4, loc.x);
                         });
}

Result<std::optional<LedgerRecord>> Ledger::Impl::by_serial(ByteSpan serial) {
    return select_record(WP_RECORD_SELECT("WHERE serial = ?1"),
                         [&](sql::Query& q) { q.bind_blob(1, serial); });
}

Status Ledger::Impl::insert_record(const LedgerRecord& r) {
    WP_ASSIGN_OR_RETURN(auto* s, stmt("INSERT INTO records (uid, lot, wafer, x, y, serial, "
                                      "public_key, wrapped_key, certificate, state, issued_us, "
                                      "delivered_us, result_us, updated_us, tester, bin, "
                                      "reissues, void_reason, substrate, site) VALUES (?1, ?2, "
                                      "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
                                      "?16, ?17, ?18, ?19, ?20)"));
    sql::Query q(s);
    q.bind_blob(1, r.uid).bind(2, r.loc.lot);
    if (r.loc.packaged)
        q.bind_null(3).bind_null(4).bind_null(5);
    else
        q.bind(3, r.loc.wafer).bind(4, r.loc.x).bind(5, r.loc.y);
    q.bind_blob(6, r.serial)
        .bind_blob(7, r.public_key)
        .bind_blob(8, r.wrapped)
        .bind_blob(9, r.certificate_der)
        .bind(10, to_string(r.state))
        .bind(11, r.issued_us)
        .bind(12, r.delivered_us)
        .bind(13, r.result_us)
        .bind(14, r.updated_us)
        .bind(15, r.tester)
        .bind(16, r.bin)
        .bind(17, int64_t{r.reissues})
        .bind(18, r.void_reason)
        .bind(19, r.loc.substrate)
        .bind(20, r.site);
    return q.run();
}

Result<std::optional<std::string>> Ledger::Impl::substrate_of(const std::string& lot, int wafer) {
    WP_ASSIGN_OR_RETURN(auto* s,
                        stmt("SELECT substrate FROM wafers WHERE lot = ?1 AND wafer = ?2"));
    sql::Query q(s);
    q.bind(1, lot).bind(2, wafer);
    WP_ASSIGN_OR_RETURN(const bool row, q.step());
    if (!row) return std::optional<std::string>();
    return std::optional<std::string>(q.text_col(0));
}

Result<std::optional<std::pair<std::string, int>>> Ledger::Impl::wafer_of(
    const std::string& substrate) {
    if (substrate.empty()) return std::optional<std::pair<std::string, int>>();
    WP_ASSIGN_OR_RETURN(auto* s, stmt("SELECT lot, wafer FROM wafers WHERE substrate = ?1"));
    sql::Query q(s);
    q.bind(1, substrate);
    WP_ASSIGN_OR_RETURN(const bool row, q.step());
    if (!row) return std::optional<std::pair<std::string, int>>();
    return std::optional<std::pair<std::string, int>>(
        std::pair{q.text_col(0), static_cast<int>(q.int_col(1))});
}

Status Ledger::Impl::bind_wafer(const DieLocation& loc) {
    WP_ASSIGN_OR_RETURN(auto* s, stmt("INSERT INTO wafers (lot, wafer, substrate) VALUES (?1, ?2, "
                                      "?3) ON CONFLICT DO NOTHING"));
    sql::Query q(s);
    q.bind(1, loc.lot).bind(2, loc.wafer).bind(3, loc.substrate);
    return q.run();
}

Status Ledger::Impl::update_mutable(const LedgerRecord& r) {
    WP_ASSIGN_OR_RETURN(auto* s,
                        stmt("UPDATE records SET state = ?2, delivered_us = ?3, "
                             "result_us = ?4, updated_us = ?5, tester = ?6, bin = ?7, "
                             "reissues = ?8, void_reason = ?9, site = ?10 WHERE uid = ?1"));
    sql::Query q(s);
    q.bind_blob(1, r.uid)
        .bind(2, to_string(r.state))
        .bind(3, r.delivered_us)
        .bind(4, r.result_us)
        .bind(5, r.updated_us)
        .bind(6, r.tester)
        .bind(7, r.bin)
        .bind(8, int64_t{r.reissues})
        .bind(9, r.void_reason)
        .bind(10, r.site);
    WP_RETURN_IF_ERROR(q.run());
    if (const int64_t n = db->changes(); n != 1 && n != -1)  // -1: sent ahead (PostgreSQL)
        return make_error(ErrorCode::kInternal, "ledger: record " + to_hex(r.uid) + " vanished");
    return ok_status();
}

Result<WriteState> Ledger::Impl::load_write_state() {
    WP_ASSIGN_OR_RETURN(
        auto* s, stmt("SELECT quota, quota_used, head_seq, head_hash FROM job WHERE id = 1"));
    sql::Query q(s);
    WP_ASSIGN_OR_RETURN(const bool row, q.step());
    if (!row) return make_error(ErrorCode::kIntegrityFailure, "ledger: the job row is missing");
    WriteState ws;
    ws.quota = static_cast<uint64_t>(q.int_col(0));
    ws.used = static_cast<uint64_t>(q.int_col(1));
    ws.seq = static_cast<uint64_t>(q.int_col(2));
    if (!copy_fixed(q.blob_col(3), ws.head))
        return make_error(ErrorCode::kIntegrityFailure, "ledger: malformed chain head");
    ws.now = chain::now_us();
    return ws;
}

Status Ledger::Impl::append_event(WriteState& ws, json event, const std::string& type,
                                  const std::optional<wpid1::Uid>& uid) {
    event["seq"] = ws.seq + 1;
    event["type"] = type;
    event["time"] = ws.now;
    return insert_event(ws, chain::canonical(event), type.c_str(), uid);
}

Status Ledger::Impl::append_issue(WriteState& ws, const LedgerRecord& r) {
    ++ws.used;  // counted in the same transaction as the insert
    chain::issue_payload(scratch, r, ws.seq + 1, ws.now, ws.used);
    return insert_event(ws, scratch, "ISSUE", r.uid);
}

Status Ledger::Impl::insert_event(WriteState& ws, std::string_view payload, const char* type,
                                  const std::optional<wpid1::Uid>& uid) {
    const uint64_t seq = ws.seq + 1;
    const chain::Hash hash = chain::chain_step(ws.head, payload);
    WP_ASSIGN_OR_RETURN(auto* s, stmt("INSERT INTO events (seq, type, uid, time_us, payload, "
                                      "hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
    sql::Query q(s);
    q.bind(1, static_cast<int64_t>(seq))
        .bind(2, type)
        .bind(4, ws.now)
        .bind(5, payload)
        .bind_blob(6, hash);
    if (uid) q.bind_blob(3, *uid);
    WP_RETURN_IF_ERROR(q.run());
    ws.seq = seq;
    ws.head = hash;
    ws.dirty = true;
    return ok_status();
}

Status Ledger::Impl::store_write_state(const WriteState& ws) {
    WP_ASSIGN_OR_RETURN(auto* s, stmt("UPDATE job SET quota_used = ?1, head_seq = ?2, "
                                      "head_hash = ?3 WHERE id = 1"));
    sql::Query q(s);
    q.bind(1, static_cast<int64_t>(ws.used))
        .bind(2, static_cast<int64_t>(ws.seq))
        .bind_blob(3, ws.head);
    return q.run();
}

Status Ledger::Impl::writable() const {
    if (anchor_failed)
        return anchor_failed->with_context(
            "ledger " + path.string() +
            ": its anchor could not be advanced after the last commit, so no further work is "
            "recorded until the ledger is reopened (the last commit itself is kept)");
    return ok_status();
}

Status Ledger::Impl::commit(Txn& txn, const WriteState& ws, uint64_t requests) {
    WP_RETURN_IF_ERROR(store_write_state(ws));
    const auto started = std::chrono::steady_clock::now();
    if (auto st = txn.commit(); !st.ok()) {
        if (st.error().code != ErrorCode::kUnavailable || lite != nullptr) return st;
        WP_ASSIGN_OR_RETURN(const bool took, committed_after_loss(ws));
        if (!took)
            return st.error().with_context("ledger " + path.string() +
                                           ": the transaction was not committed");
    }
    if (anchor) {
        auto st = anchor->advance(anchor::Head{ws.seq, ws.head, ws.used});
        if (!st.ok()) anchor_failed = st.error();
    }
    if (config.token_anchor && !anchor_failed) {
        auto st = config.token_anchor->advance(AnchoredHead{ws.seq, ws.head, ws.used});
        if (!st.ok()) anchor_failed = st.error();
    }
    if (on_commit)
        on_commit(Ledger::CommitNote{
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
            config.quota, ws.used, requests});
    return ok_status();
}

Result<bool> Ledger::Impl::committed_after_loss(const WriteState& ws) {
    // The connection (and with it the answer to COMMIT) was lost: the transaction took effect
    // or not, and the chain says which, since only a commit of ours put our head at ws.seq.
    // Another host may have written that seq meanwhile, with another hash.
    auto txn = Txn::begin(*db, false);  // reconnects
    if (!txn.ok())
        return txn.error().with_context("ledger " + path.string() +
                                        ": whether the last transaction was committed is not "
                                        "known until PostgreSQL answers again");
    WP_ASSIGN_OR_RETURN(auto* s, stmt("SELECT hash FROM events WHERE seq = ?1"));
    sql::Query q(s);
    q.bind(1, static_cast<int64_t>(ws.seq));
    WP_ASSIGN_OR_RETURN(const bool row, q.step());
    return row && q.blob_col(0) == Bytes(ws.head.begin(), ws.head.end());
}

void Ledger::on_commit(std::function<void(const CommitNote&)> fn) {
    impl_->on_commit = std::move(fn);
}

std::string describe_head(const ChainHead& h) { return anchor::describe(h.events, h.hash); }

Result<ChainHead> parse_head(std::string_view text) {
    const size_t colon = text.find(':');
    ChainHead h;
    const std::string_view seq = text.substr(0, colon);
    const auto [p, ec] = std::from_chars(seq.data(), seq.data() + seq.size(), h.events);
    if (colon == std::string_view::npos || seq.empty() || ec != std::errc() ||
        p != seq.data() + seq.size() || h.events == 0)
        return make_error(ErrorCode::kInvalidArgument,
                          "head '" + std::string(text) +
                              "': expected SEQ:HASH (an event number >= 1, a colon, 64 hex "
                              "digits)");
    WP_ASSIGN_OR_RETURN(h.hash, from_hex_fixed<32>(text.substr(colon + 1), "head hash"));
    return h;
}

// ---- open -----------------------------------------------------------------------------------

Ledger::Ledger(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Ledger::~Ledger() {
    if (impl_) impl_->db.reset();
}

const LedgerConfig& Ledger::config() const { return impl_->config; }

Status Ledger::defer_checkpoints() {
    std::lock_guard lock(impl_->mu);
    std::lock_guard ck(impl_->checkpoint_mu);
    if (impl_->checkpoint_db || impl_->lite == nullptr) return ok_status();  // SQLite's WAL only
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(impl_->path.c_str(), &raw,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    sql::DbPtr db(raw);
    if (rc != SQLITE_OK) return sql::sql_error(raw, "ledger: opening a checkpoint connection", rc);
    sqlite3_busy_timeout(raw, impl_->config.busy_timeout_ms);
    WP_RETURN_IF_ERROR(sql::exec(raw, "PRAGMA synchronous = FULL"));
    // The commit hook SQLite's automatic checkpoint uses is replaced by one that only counts:
    // no commit checkpoints from now on.
    sqlite3_wal_hook(
        impl_->lite->raw(),
        [](void* arg, sqlite3*, const char*, int pages) {
            static_cast<Impl*>(arg)->wal_pages.store(pages, std::memory_order_relaxed);
            return SQLITE_OK;
        },
        impl_.get());
    impl_->checkpoint_db = std::move(db);
    return ok_status();
}

int Ledger::wal_pages() const { return impl_->wal_pages.load(std::memory_order_relaxed); }

Status Ledger::checkpoint() {
    std::lock_guard ck(impl_->checkpoint_mu);
    if (!impl_->checkpoint_db) return ok_status();
    int log = 0, copied = 0;
    const int rc = sqlite3_wal_checkpoint_v2(impl_->checkpoint_db.get(), nullptr,
                                             SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        return sql::sql_error(impl_->checkpoint_db.get(), "ledger: checkpoint", rc);
    return ok_status();
}

Status Ledger::checkpoint_now() {
    std::lock_guard lock(impl_->mu);
    if (impl_->read_only || impl_->lite == nullptr) return ok_status();
    int log = 0, copied = 0;
    sqlite3* db = impl_->lite->raw();
    const int rc =
        sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log, &copied);
    if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
        return sql::sql_error(db, "ledger: checkpoint of " + impl_->path.string(), rc);
    return ok_status();
}

namespace {

// Bytes free to an unprivileged writer on the filesystem holding `path`; -1 if unknown.
int64_t free_bytes(const std::filesystem::path& path) {
    const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
    struct statvfs v {};
    if (::statvfs(dir.c_str(), &v) != 0) return -1;
    return static_cast<int64_t>(v.f_bavail) * static_cast<int64_t>(v.f_frsize);
}

// SQLite says "disk I/O error" or "database or disk is full" when the disk is full; say which
// disk and that it is full.
Error diagnose_disk(Error e, const std::filesystem::path& path) {
    const int64_t left = free_bytes(path);
    if (left >= 0 && left < (1 << 20))
        return make_error(ErrorCode::kResourceExhausted,
                          "ledger " + path.string() + ": the disk holding it is full (" +
                              std::to_string(left) + " bytes free): free space there and start " +
                              "again (" + e.message + ")");
    return e;
}

// file: URI of a path, for sqlite3_open_v2 with SQLITE_OPEN_URI.
std::string file_uri(const std::filesystem::path& path, const char* query) {
    std::string out = "file:";
    for (const unsigned char c : std::filesystem::absolute(path).string()) {
        if (c == '%' || c == '?' || c == '#' || c < 0x20 || c >= 0x7f) {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "?" + query;
}

// SQLite's own check of the file: "ok", or what is wrong (at most `limit` lines).
Result<std::vector<std::string>> integrity_problems(sqlite3* db, bool quick, int limit = 20) {
    const std::string sql = std::string(quick ? "PRAGMA quick_check(" : "PRAGMA integrity_check(") +
                            std::to_string(limit) + ")";
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr);
    sql::StmtPtr s(raw);
    if (rc != SQLITE_OK) return sql::sql_error(db, sql, rc);
    std::vector<std::string> out;
    while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
        const auto* t = sqlite3_column_text(raw, 0);
        const std::string line = t != nullptr ? reinterpret_cast<const char*>(t) : "";
        if (line != "ok") out.push_back(line);
    }
    // A file damaged badly enough makes the check itself fail: that is a finding too.
    if (rc != SQLITE_DONE) out.push_back(sqlite3_errmsg(db));
    return out;
}

// A read-only connection for open_existing: never creates or changes a file. SQLite's read-only
// mode still needs the write-ahead log's index (-shm) beside the file, which it makes when the
// directory is writable; on read-only media with no write-ahead log the file is complete by
// itself and is opened immutable (no locking, no -shm).
Result<std::unique_ptr<Ledger::Impl>> connect_read_only(const std::filesystem::path& path,
                                                        int busy_timeout_ms) {
    std::error_code ec;
    std::filesystem::path wal = path;
    wal += "-wal";
    const bool has_wal = std::filesystem::exists(wal, ec);
    const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
    const bool dir_writable = ::access(dir.c_str(), W_OK) == 0;
    auto impl = std::make_unique<Ledger::Impl>();
    impl->path = path;
    impl->read_only = true;
    sql::DbPtr handle;
    auto try_open = [&](const char* query) -> int {
        sqlite3* raw = nullptr;
        const int rc =
            sqlite3_open_v2(file_uri(path, query).c_str(), &raw,
                            SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr);
        handle.reset(raw);
        if (rc != SQLITE_OK) return rc;
        sqlite3_extended_result_codes(raw, 1);
        sqlite3_busy_timeout(raw, busy_timeout_ms);
        // The first read maps the write-ahead log: fail here, not in the middle of a command.
        return sqlite3_exec(raw, "PRAGMA query_only = 1; SELECT count(*) FROM sqlite_master",
                            nullptr, nullptr, nullptr);
    };
    int rc = has_wal || dir_writable ? try_open("mode=ro") : SQLITE_CANTOPEN;
    if (rc != SQLITE_OK && !has_wal) rc = try_open("immutable=1");
    if (rc != SQLITE_OK) {
        auto e =
            sql::sql_error(handle.get(), "ledger: opening " + path.string() + " read-only", rc);
        if (has_wal && !dir_writable)
            e.message += " - it has a write-ahead log (" + wal.filename().string() +
                         ") that a read-only directory cannot be given an index for: copy "
                         "the ledger with its -wal file to writable storage and read the copy";
        return e;
    }
    auto conn = std::make_unique<sql::SqliteConnection>(std::move(handle));
    impl->lite = conn.get();
    impl->db = std::move(conn);
    return impl;
}

}  // namespace

Result<std::unique_ptr<Ledger::Impl>> connect_writable(const std::filesystem::path& path,
                                                       bool create, int busy_timeout_ms) {
    auto impl = std::make_unique<Ledger::Impl>();
    impl->path = path;
    sqlite3* raw = nullptr;
    const int flags =
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
    auto conn = std::make_unique<sql::SqliteConnection>(sql::DbPtr(raw));
    impl->lite = conn.get();
    impl->db = std::move(conn);
    if (rc != SQLITE_OK)
        return diagnose_disk(sql::sql_error(raw, "ledger: opening " + path.string(), rc), path);
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, busy_timeout_ms);
    // Switching to WAL needs a moment with no other connection mid-write; the busy handler does
    // not cover every path of this pragma, so retry it within the same budget.
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_timeout_ms);
    for (;;) {
        auto st = sql::exec(raw, "PRAGMA journal_mode = WAL");
        if (st.ok()) break;
        if (st.error().code != ErrorCode::kResourceExhausted ||
            std::chrono::steady_clock::now() > deadline)
            return diagnose_disk(st.error().with_context("ledger: " + path.string()), path);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    WP_RETURN_IF_ERROR(sql::exec(raw, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"));
    return impl;
}

namespace {

// Reads the job binding of an existing ledger.
Result<LedgerConfig> read_job(Ledger::Impl& impl) {
    {
        WP_ASSIGN_OR_RETURN(auto* s, impl.stmt("SELECT version FROM schema_version"));
        sql::Query q(s);
        WP_ASSIGN_OR_RETURN(const bool row, q.step());
        if (row && q.int_col(0) == chain::kLegacySchemaVersion)
            return make_error(
                ErrorCode::kUnsupported,
                "ledger " + impl.path.string() +
                    " was written before substrate ids were part of a die's location (schema "
                    "version 2); it is left unchanged. Migrate it once, giving the map of every "
                    "wafer it holds: waferprov ledger migrate --ledger " +
                    impl.path.string() + " --map FILE [--wafer N] [--map FILE ...]");
        if (row && q.int_col(0) == chain::kPerDieDeliverSchemaVersion)
            return make_error(
                ErrorCode::kUnsupported,
                "ledger " + impl.path.string() +
                    " records one DELIVER event per die (schema version 3); this build writes one "
                    "per touchdown (version 4) and leaves the file unchanged. Migrate it once "
                    "(its history is kept as it is): waferprov ledger migrate --ledger " +
                    impl.path.string());
        if (row && q.int_col(0) == chain::kWaferOnlySchemaVersion)
            return make_error(
                ErrorCode::kUnsupported,
                "ledger " + impl.path.string() +
                    " holds only parts on wafers (schema version 4); this build also records "
                    "parts provisioned at final test (version 5) and leaves the file unchanged. "
                    "Migrate it once (its history is kept as it is): waferprov ledger migrate "
                    "--ledger " +
                    impl.path.string());
        if (!row || q.int_col(0) != chain::kSchemaVersion)
            return make_error(ErrorCode::kUnsupported,
                              "ledger " + impl.path.string() + ": schema version " +
                                  (row ? std::to_string(q.int_col(0)) : "missing") +
                                  ", this build reads version " +
                                  std::to_string(chain::kSchemaVersion));
    }
    WP_ASSIGN_OR_RETURN(auto* s,
                        impl.stmt("SELECT job_id, customer, product, quota FROM job WHERE id = 1"));
    sql::Query q(s);
    WP_ASSIGN_OR_RETURN(const bool row, q.step());
    if (!row)
        return make_error(ErrorCode::kIntegrityFailure,
                          "ledger " + impl.path.string() + ": the job row is missing");
    LedgerConfig c;
    c.job_id = q.text_col(0);
    c.customer = q.text_col(1);
    c.product = q.text_col(2);
    c.quota = static_cast<uint64_t>(q.int_col(3));
    return c;
}

Status create_schema(Ledger::Impl& impl, const LedgerConfig& c) {
    const sql::Dialect d = impl.db->dialect();
    WP_RETURN_IF_ERROR(impl.db->exec(sql::ddl(d, kSchema)));
    WP_RETURN_IF_ERROR(
        impl.db->exec(sql::ddl(d, std::string("CREATE TABLE records") + kRecordsColumns)));
    WP_RETURN_IF_ERROR(
        impl.db->exec(d == sql::Dialect::kSqlite ? kAppendOnlySqlite : kAppendOnlyPostgres));
    // A SQLite ledger gets its final_test table when final test first writes to it (a ledger
    // without one is still version 5); a PostgreSQL one has it from the start.
    if (d == sql::Dialect::kPostgres) WP_RETURN_IF_ERROR(create_final_table(impl));
    WP_RETURN_IF_ERROR(impl.db->exec(("INSERT INTO schema_version (version) VALUES (" +
                                      std::to_string(chain::kSchemaVersion) + ")")
                                         .c_str()));
    WriteState ws;
    ws.now = chain::now_us();
    ws.quota = c.quota;
    {
        WP_ASSIGN_OR_RETURN(auto* s,
                            impl.stmt("INSERT INTO job (id, job_id, customer, product, quota, "
                                      "quota_used, created_us, head_seq, head_hash) VALUES (1, "
                                      "?1, ?2, ?3, ?4, 0, ?5, 0, ?6)"));
        sql::Query q(s);
        q.bind(1, c.job_id)
            .bind(2, c.customer)
            .bind(3, c.product)
            .bind(4, static_cast<int64_t>(c.quota))
            .bind(5, ws.now)
            .bind_blob(6, ws.head);
        WP_RETURN_IF_ERROR(q.run());
    }
    json genesis{{"format", chain::kLedgerFormat},
                 {"job_id", c.job_id},
                 {"customer", c.customer},
                 {"product", c.product},
                 {"quota", c.quota}};
    WP_RETURN_IF_ERROR(impl.append_event(ws, std::move(genesis), "GENESIS", std::nullopt));
    return impl.store_write_state(ws);
}

}  // namespace

namespace {

// The ledger's genesis (event 1) hash, its head and quota used, and the hash of event `seq`.
Result<chain::Hash> event_hash(Ledger::Impl& impl, uint64_t seq) {
    WP_ASSIGN_OR_RETURN(auto* s, impl.stmt("SELECT hash FROM events WHERE seq = ?1"));
    sql::Query q(s);
    q.bind(1, static_cast<int64_t>(seq));
    WP_ASSIGN_OR_RETURN(const bool row, q.step());
    chain::Hash h{};
    if (!row || !copy_fixed(q.blob_col(0), h))
        return make_error(
            ErrorCode::kIntegrityFailure,
            "ledger " + impl.path.string() + ": event " + std::to_string(seq) + " is missing");
    return h;
}

std::string ahead_text(const anchor::Head& h) {
    return anchor::describe(h.seq, h.hash) + " (quota used " + std::to_string(h.used) + ")";
}

// open(): the ledger must contain the anchored head `a` (`where` names the anchor).
Status check_not_behind(Ledger::Impl& impl, const anchor::Head& db_head, const anchor::Head& a,
                        const std::string& where) {
    const std::string both = "the ledger's head is " + ahead_text(db_head) + ", its anchor " +
                             where + " holds " + ahead_text(a);
    const std::string todo =
        ". Serving from this ledger would give dies that already have an identity a second "
        "one. Restore the newest copy of the ledger (together with its -wal file), or "
        "investigate; do not move the anchor aside";
    if (db_head.seq < a.seq || db_head.used < a.used)
        return make_error(ErrorCode::kIntegrityFailure,
                          "ledger " + impl.path.string() +
                              " is behind its anchor: committed work is missing from it (a "
                              "restored older copy, a snapshot, or a damaged write-ahead "
                              "log): " +
                              both + todo);
    WP_ASSIGN_OR_RETURN(const chain::Hash at, event_hash(impl, a.seq));
    if (at != a.hash)
        return make_error(ErrorCode::kIntegrityFailure,
                          "ledger " + impl.path.string() +
                              " has diverged from its anchor: " + "its event " +
                              std::to_string(a.seq) + " is " + anchor::describe(a.seq, at) +
                              ", not the anchored one; " + both + todo);
    return ok_status();
}

// open(): the ledger against a token anchor, which is then moved to the ledger's head.
//
// The token is read before the ledger: a writer advances it after its commit, so a head read
// first is never ahead of the snapshot the first read of the transaction takes next, and a
// process committing while this one opens cannot make the ledger look behind.
Status check_token_anchor(Ledger::Impl& impl, HeadAnchor& token) {
    WP_ASSIGN_OR_RETURN(auto held, token.read());
    WP_ASSIGN_OR_RETURN(WriteState ws, impl.load_write_state());
    const anchor::Head db_head{ws.seq, ws.head, ws.used};
    if (held) {
        WP_RETURN_IF_ERROR(check_not_behind(
            impl, db_head, anchor::Head{held->seq, held->hash, held->used}, token.describe()));
    }
    if (!held || db_head.seq > held->seq)
        return token.advance(AnchoredHead{db_head.seq, db_head.hash, db_head.used});
    return ok_status();
}

// open(): the ledger against its anchor; creates the anchor of a ledger that has none. Called
// in a read transaction that has not read yet. The anchor is read first, as in verify(): a
// writer appends its line after its commit, so the snapshot the ledger's first read takes next
// holds at least what the anchor names. (Read the other way round, a process committing while
// this one opens made the ledger look behind its anchor.) `raced` is set when the anchor had to
// be read again after the snapshot (another process created it meanwhile): then a refusal for
// being behind may be that process's commits, and open() checks once more.
Status check_anchor(Ledger::Impl& impl, bool created,
                    const std::function<void(const std::string&)>& notice, bool& raced) {
    const auto& file = impl.anchor_file;
    auto contents = anchor::read(file);
    WP_ASSIGN_OR_RETURN(WriteState ws, impl.load_write_state());
    const anchor::Head db_head{ws.seq, ws.head, ws.used};
    WP_ASSIGN_OR_RETURN(const chain::Hash genesis, event_hash(impl, 1));
    if (!contents.ok() && contents.error().code == ErrorCode::kNotFound) {
        auto w = anchor::Writer::create(file, genesis, db_head);
        if (w.ok()) {
            if (!created)
                notice("ledger " + impl.path.string() + " had no anchor: created " + file.string() +
                       " at its head " + ahead_text(db_head) +
                       ". From now on `run` and `serve` refuse this ledger if it falls behind "
                       "that head. (If the ledger had an anchor before, it was lost: check that "
                       "this is the newest copy of the ledger.)");
            impl.anchor = std::move(*w);
            return ok_status();
        }
        if (w.error().code != ErrorCode::kResourceExhausted) return w.error();
        contents = anchor::read(file);  // another process created it meanwhile
        raced = true;
    }
    if (!contents.ok())
        return contents.error().with_context(
            "ledger " + impl.path.string() +
            " cannot be checked against its anchor; restore the anchor, or investigate before "
            "serving from this ledger");
    if (contents->genesis != genesis)
        return make_error(ErrorCode::kIntegrityFailure,
                          "ledger " + impl.path.string() + " is not the ledger its anchor " +
                              file.string() + " was written for (anchor genesis " +
                              to_hex(contents->genesis) + ", ledger genesis " + to_hex(genesis) +
                              "): the ledger file was replaced. Put the ledger that belongs to "
                              "the anchor back; never move an anchor aside to get past this");
    if (contents->torn_tail)
        notice("anchor " + file.string() +
               ": its last line was cut short (a crash while appending it) and is dropped");
    if (contents->last) {
        WP_RETURN_IF_ERROR(check_not_behind(impl, db_head, *contents->last, file.string()));
    }
    WP_ASSIGN_OR_RETURN(auto w, anchor::Writer::open(file, *contents));
    if (!contents->last || db_head.seq > contents->last->seq) {
        // A crash between a commit and its anchor line, or a writer without this build.
        WP_RETURN_IF_ERROR(w.advance(db_head));
    }
    impl.anchor = std::move(w);
    return ok_status();
}

}  // namespace

namespace {

// open(): a writable connection to the ledger at `location`, its anchor file named.
Result<std::unique_ptr<Ledger::Impl>> connect_for_open(const std::string& location,
                                                       const LedgerConfig& config) {
    if (sql::is_postgres_location(location)) {
        const std::string name = sql::describe_location(location);
        if (config.anchor == AnchorMode::kFile && config.anchor_file.empty())
            return make_error(ErrorCode::kInvalidArgument,
                              "ledger " + name +
                                  ": a PostgreSQL ledger keeps its anchor (the head log that "
                                  "catches a restored or rolled-back database) in a file on "
                                  "this host: name it (`anchor = FILE` in the job file)");
        auto impl = std::make_unique<Ledger::Impl>();
        impl->path = name;
        WP_ASSIGN_OR_RETURN(impl->db, sql::connect_postgres(location, config.busy_timeout_ms));
        impl->anchor_file = config.anchor_file;
        return impl;
    }
    const std::filesystem::path path = sql::sqlite_path_of(location);
    const std::filesystem::path anchor_file =
        config.anchor_file.empty() ? anchor::path_for(path) : config.anchor_file;
    std::error_code ec;
    const bool existed = std::filesystem::file_size(path, ec) > 0 && !ec;
    if (!existed && config.anchor == AnchorMode::kFile && std::filesystem::exists(anchor_file, ec))
        return make_error(ErrorCode::kIntegrityFailure,
                          "ledger " + path.string() + " does not exist (or is empty) but its " +
                              "anchor " + anchor_file.string() +
                              " does: the ledger was deleted or moved. Put it back; starting a "
                              "new ledger here would issue the job's quota a second time");
    WP_ASSIGN_OR_RETURN(auto impl, connect_writable(path, true, config.busy_timeout_ms));
    impl->anchor_file = anchor_file;
    return impl;
}

// open(): an existing ledger's job binding must be the configuration's.
Status check_binding(Ledger::Impl& impl, const LedgerConfig& config) {
    WP_ASSIGN_OR_RETURN(auto stored, read_job(impl));
    auto mismatch = [&](const char* what, const std::string& have,
                        const std::string& want) -> Error {
        return make_error(ErrorCode::kInvalidArgument,
                          "ledger " + impl.path.string() + " belongs to job '" + stored.job_id +
                              "': its " + what + " is '" + have + "', not '" + want + "'");
    };
    if (stored.job_id != config.job_id) return mismatch("job id", stored.job_id, config.job_id);
    if (stored.customer != config.customer)
        return mismatch("customer", stored.customer, config.customer);
    if (stored.product != config.product)
        return mismatch("product", stored.product, config.product);
    if (stored.quota != config.quota)
        return mismatch("quota", std::to_string(stored.quota), std::to_string(config.quota));
    return ok_status();
}

// open(): a damaged page makes SQLite return wrong rows (a UID index that misses a die gives it
// a second identity): refuse to write to a file that fails SQLite's own check. quick_check sees
// damaged pages; only integrity_check also compares every index with its table (a flipped byte
// in the UID index), at a cost that grows with the ledger, so the long-running `serve` asks for
// it and each `run` takes the quick one. (A PostgreSQL server checks its own pages.)
Status check_sqlite_file(Ledger::Impl& impl, bool quick) {
    WP_ASSIGN_OR_RETURN(const auto problems, integrity_problems(impl.lite->raw(), quick, 5));
    if (problems.empty()) return ok_status();
    std::string list;
    for (const auto& p : problems) list += (list.empty() ? "" : "; ") + p;
    return make_error(ErrorCode::kIntegrityFailure,
                      "ledger " + impl.path.string() + " fails SQLite's " +
                          (quick ? "quick_check" : "integrity_check") + " (" + list +
                          "): the file is damaged. Restore the newest good copy, then "
                          "`waferprov ledger verify` it");
}

}  // namespace

Result<std::unique_ptr<Ledger>> Ledger::open(const std::filesystem::path& location,
                                             const LedgerConfig& config) {
    WP_RETURN_IF_ERROR(validate_config(config));
    WP_ASSIGN_OR_RETURN(auto impl, connect_for_open(location.string(), config));
    bool created = false;
    {
        WP_ASSIGN_OR_RETURN(auto txn, Txn::begin(*impl->db, true));
        WP_ASSIGN_OR_RETURN(const bool exists, impl->db->has_table("job"));
        if (!exists) {
            WP_ASSIGN_OR_RETURN(const bool other, impl->db->has_table("schema_version"));
            if (other)
                return make_error(ErrorCode::kIntegrityFailure,
                                  "ledger " + impl->path.string() + ": incomplete schema");
            std::error_code ec;
            if (impl->lite == nullptr && config.anchor == AnchorMode::kFile &&
                std::filesystem::exists(impl->anchor_file, ec))
                return make_error(ErrorCode::kIntegrityFailure,
                                  "ledger " + impl->path.string() +
                                      " holds no ledger but its anchor " +
                                      impl->anchor_file.string() +
                                      " does exist: the database was dropped, emptied or is "
                                      "another one. Restore it; starting a new ledger there "
                                      "would issue the job's quota a second time");
            WP_RETURN_IF_ERROR(create_schema(*impl, config));
            created = true;
        } else {
            WP_RETURN_IF_ERROR(check_binding(*impl, config));
        }
        WP_RETURN_IF_ERROR(txn.commit());
    }
    if (!created && impl->lite != nullptr)
        WP_RETURN_IF_ERROR(check_sqlite_file(*impl, !config.full_integrity_check));
    impl->config = config;
    if (config.anchor == AnchorMode::kFile) {
        auto notice = config.notice ? config.notice : [](const std::string& text) {
            std::cerr << "waferprov: " << text << "\n";
        };
        std::lock_guard lock(impl->mu);
        for (int attempt = 0;; ++attempt) {
            bool raced = false;
            WP_ASSIGN_OR_RETURN(auto txn, Txn::begin(*impl->db, false));
            const Status st = check_anchor(*impl, created, notice, raced);
            if (!st.ok() && raced && attempt == 0) continue;  // a fresh snapshot, anchor first
            WP_RETURN_IF_ERROR(st);
            WP_RETURN_IF_ERROR(txn.commit());
            break;
        }
    }
    if (config.token_anchor) {
        std::lock_guard lock(impl->mu);
        WP_ASSIGN_OR_RETURN(auto txn, Txn::begin(*impl->db, false));
        WP_RETURN_IF_ERROR(check_token_anchor(*impl, *config.token_anchor));
        WP_RETURN_IF_ERROR(txn.commit());
    }
    return std::unique_ptr<Ledger>(new Ledger(std::move(impl)));
}

Result<std::unique_ptr<Ledger>> Ledger::open_existing(const std::filesystem::path& location,
                                                      int busy_timeout_ms) {
    std::unique_ptr<Impl> impl;
    if (sql::is_postgres_location(location.string())) {
        impl = std::make_unique<Impl>();
        impl->path = sql::describe_location(location.string());
        impl->read_only = true;
        WP_ASSIGN_OR_RETURN(impl->db, sql::connect_postgres(location.string(), busy_timeout_ms));
        WP_RETURN_IF_ERROR(impl->db->exec("SET default_transaction_read_only = on"));
    } else {
        const std::filesystem::path path = sql::sqlite_path_of(location.string());
        std::error_code ec;
        if (!std::filesystem::is_regular_file(path, ec))
            return make_error(ErrorCode::kNotFound, "ledger " + path.string() + " does not exist");
        if (std::filesystem::file_size(path, ec) == 0 && !ec)
            return make_error(ErrorCode::kInvalidArgument,
                              path.string() + " is empty: not a waferprov ledger");
        WP_ASSIGN_OR_RETURN(impl, connect_read_only(path, busy_timeout_ms));
        impl->anchor_file = anchor::path_for(path);
    }
    {
        WP_ASSIGN_OR_RETURN(auto txn, Txn::begin(*impl->db, false));
        WP_ASSIGN_OR_RETURN(const bool exists, impl->db->has_table("job"));
        if (!exists && impl->lite == nullptr)  // a database without one: like a missing file
            return make_error(ErrorCode::kNotFound,
                              "ledger " + impl->path.string() + ": the database holds no ledger");
        if (!exists)
            return make_error(ErrorCode::kInvalidArgument,
                              impl->path.string() + " is not a waferprov ledger");
        WP_ASSIGN_OR_RETURN(impl->config, read_job(*impl));
        impl->config.busy_timeout_ms = busy_timeout_ms;
        WP_RETURN_IF_ERROR(txn.commit());
    }
    return std::unique_ptr<Ledger>(new Ledger(std::move(impl)));
}

// ---- record_batch ---------------------------------------------------------------------------

namespace {

// One record_batch() transaction: each offered identity is checked against the wafer's binding,
// its UID, its location, its serial and the quota, in that order; a clash is an ALARM event and
// a conflict for that die, never an error of the batch.
class BatchRecorder {
public:
    BatchRecorder(Ledger::Impl& m, WriteState& ws) : m_(m), ws_(ws) {}

    Result<RecordResult> record(const NewIdentity& n) {
        if (!n.loc.packaged) {  // a packaged part is on no wafer
            WP_ASSIGN_OR_RETURN(auto wafer_conflict, check_wafer(n));
            if (wafer_conflict) return std::move(*wafer_conflict);
        }
        WP_ASSIGN_OR_RETURN(auto same_uid, m_.by_uid(n.uid));
        if (same_uid && same_uid->loc == n.loc) return retest(n, std::move(*same_uid));
        if (same_uid) {
            RecordResult res;
            WP_RETURN_IF_ERROR(alarm(n, *same_uid, "uid-at-other-location"));
            res.outcome = RecordOutcome::kConflict;
            res.message = "UID " + to_hex(n.uid) + " offered at " + n.loc.describe() +
                          " is already issued at " + same_uid->loc.describe();
            res.record = std::move(same_uid);
            return res;
        }
        return issue(n);
    }

private:
    Status alarm(const NewIdentity& n, const LedgerRecord& existing, const std::string& reason) {
        json ev{{"reason", reason},
                {"tester", n.tester},
                {"offered", chain::location_json(n.uid, n.loc, n.serial)},
                {"existing", chain::location_json(existing.uid, existing.loc, existing.serial)}};
        return m_.append_event(ws_, std::move(ev), "ALARM", std::nullopt);
    }

    Result<std::optional<LedgerRecord>> any_record_of(const std::string& lot, int wafer) {
        return m_.select_record(WP_RECORD_SELECT("WHERE lot = ?1 AND wafer = ?2 LIMIT 1"),
                                [&](sql::Query& q) { q.bind(1, lot).bind(2, wafer); });
    }

    // A physical wafer is one substrate id under one (lot, wafer number): the same number under
    // another substrate id is another wafer, never a retest of this one; and a substrate keeps
    // its number. A conflict result when the offer breaks that.
    Result<std::optional<RecordResult>> check_wafer(const NewIdentity& n) {
        if (wafers_ok_.count({n.loc.lot, n.loc.wafer, n.loc.substrate}))
            return std::optional<RecordResult>();
        WP_ASSIGN_OR_RETURN(auto bound, m_.substrate_of(n.loc.lot, n.loc.wafer));
        std::optional<std::pair<std::string, int>> other;
        if (!bound || *bound != n.loc.substrate) {
            WP_ASSIGN_OR_RETURN(other, m_.wafer_of(n.loc.substrate));
        }
        RecordResult res;
        res.outcome = RecordOutcome::kConflict;
        if (bound && *bound != n.loc.substrate) {
            WP_ASSIGN_OR_RETURN(auto existing, m_.by_location(n.loc));
            if (!existing) {
                WP_ASSIGN_OR_RETURN(existing, any_record_of(n.loc.lot, n.loc.wafer));
            }
            if (!existing)
                return make_error(ErrorCode::kIntegrityFailure,
                                  "ledger: " + n.loc.lot + " wafer " + std::to_string(n.loc.wafer) +
                                      " is bound to a substrate id but has no record");
            WP_RETURN_IF_ERROR(alarm(n, *existing, "wafer-number-reused"));
            res.message = n.loc.lot + " wafer " + std::to_string(n.loc.wafer) + " is substrate '" +
                          *bound + "' in the ledger; substrate '" + n.loc.substrate +
                          "' under the same lot and wafer number is another physical "
                          "wafer: refused (give it its own wafer number)";
            res.record = std::move(existing);
            return std::optional<RecordResult>(std::move(res));
        }
        if (other && (other->first != n.loc.lot || other->second != n.loc.wafer)) {
            WP_ASSIGN_OR_RETURN(auto existing, any_record_of(other->first, other->second));
            if (!existing)
                return make_error(ErrorCode::kIntegrityFailure,
                                  "ledger: substrate '" + n.loc.substrate +
                                      "' is bound to a wafer that has no record");
            WP_RETURN_IF_ERROR(alarm(n, *existing, "substrate-renumbered"));
            res.message = "substrate '" + n.loc.substrate + "' is " + other->first + " wafer " +
                          std::to_string(other->second) + " in the ledger, not " + n.loc.lot +
                          " wafer " + std::to_string(n.loc.wafer) +
                          ": refused (a physical wafer keeps one number)";
            res.record = std::move(existing);
            return std::optional<RecordResult>(std::move(res));
        }
        wafers_ok_.insert({n.loc.lot, n.loc.wafer, n.loc.substrate});
        return std::optional<RecordResult>();
    }

    // The same UID at the same location: a retest gets the existing identity (a VOID one not).
    Result<RecordResult> retest(const NewIdentity& n, LedgerRecord existing) {
        RecordResult res;
        if (existing.state == DieState::kVoid) {
            WP_RETURN_IF_ERROR(alarm(n, existing, "void-identity-retested"));
            res.outcome = RecordOutcome::kConflict;
            res.message = "UID " + to_hex(n.uid) + " at " + n.loc.describe() + " is VOID (" +
                          existing.void_reason + "): not reissued";
            res.record = std::move(existing);
            return res;
        }
        LedgerRecord r = std::move(existing);
        ++r.reissues;
        r.tester = n.tester;
        r.updated_us = ws_.now;
        WP_RETURN_IF_ERROR(m_.update_mutable(r));
        WP_RETURN_IF_ERROR(
            m_.append_event(ws_, json{{"uid", to_hex(r.uid)}, {"after", chain::mutable_json(r)}},
                            "REISSUE", r.uid));
        res.outcome = RecordOutcome::kReissued;
        res.message = "retest: existing identity of " + r.loc.describe() + " returned";
        res.record = std::move(r);
        return res;
    }

    // A new UID: the location and the serial must be free, and the quota not used up.
    Result<RecordResult> issue(const NewIdentity& n) {
        RecordResult res;
        std::optional<LedgerRecord> at_loc;  // a packaged part takes no wafer position
        if (!n.loc.packaged) {
            WP_ASSIGN_OR_RETURN(at_loc, m_.by_location(n.loc));
        }
        std::optional<LedgerRecord> same_serial;
        if (!at_loc) {
            WP_ASSIGN_OR_RETURN(same_serial, m_.by_serial(n.serial));
        }
        if (at_loc) {
            WP_RETURN_IF_ERROR(alarm(n, *at_loc, "location-taken"));
            res.outcome = RecordOutcome::kConflict;
            res.message = n.loc.describe() + " already has UID " + to_hex(at_loc->uid) + "; UID " +
                          to_hex(n.uid) + " refused";
            res.record = std::move(at_loc);
        } else if (same_serial) {
            WP_RETURN_IF_ERROR(alarm(n, *same_serial, "serial-reused"));
            res.outcome = RecordOutcome::kConflict;
            res.message = "certificate serial " + to_hex(n.serial) + " is already used by UID " +
                          to_hex(same_serial->uid);
            res.record = std::move(same_serial);
        } else if (ws_.used >= ws_.quota) {
            json ev{{"tester", n.tester},
                    {"offered", chain::location_json(n.uid, n.loc, n.serial)},
                    {"quota", ws_.quota},
                    {"quota_used", ws_.used}};
            WP_RETURN_IF_ERROR(m_.append_event(ws_, std::move(ev), "QUOTA_REFUSED", std::nullopt));
            res.outcome = RecordOutcome::kQuotaExhausted;
            res.message = "quota of " + std::to_string(ws_.quota) + " identities used up";
        } else {
            LedgerRecord r;
            r.uid = n.uid;
            r.loc = n.loc;
            r.serial = n.serial;
            r.public_key = n.public_key;
            r.wrapped = n.wrapped;
            r.certificate_der = n.certificate_der;
            r.state = DieState::kIssued;
            r.issued_us = r.updated_us = ws_.now;
            r.tester = n.tester;
            WP_RETURN_IF_ERROR(m_.insert_record(r));
            if (!r.loc.packaged &&
                wafers_bound_.insert({r.loc.lot, r.loc.wafer, r.loc.substrate}).second) {
                WP_RETURN_IF_ERROR(m_.bind_wafer(r.loc));
            }
            WP_RETURN_IF_ERROR(m_.append_issue(ws_, r));
            res.outcome = RecordOutcome::kIssued;
            res.record = std::move(r);
        }
        return res;
    }

    Ledger::Impl& m_;
    WriteState& ws_;
    // Wafers whose binding this transaction has checked / bound: (lot, number, substrate id).
    std::set<std::tuple<std::string, int, std::string>> wafers_ok_, wafers_bound_;
};

}  // namespace

Result<std::vector<RecordResult>> Ledger::record_batch(std::span<const NewIdentity> batch) {
    for (size_t i = 0; i < batch.size(); ++i) WP_RETURN_IF_ERROR(validate_identity(batch[i], i));
    std::lock_guard lock(impl_->mu);
    Impl& m = *impl_;
    WP_RETURN_IF_ERROR(m.writable());
    WP_ASSIGN_OR_RETURN(auto txn, Txn::begin(*m.db, true));
    WP_ASSIGN_OR_RETURN(WriteState ws, m.load_write_state());
    std::vector<RecordResult> out;
    out.reserve(batch.size());
    BatchRecorder recorder(m, ws);
    for (const NewIdentity& n : batch) {
        WP_ASSIGN_OR_RETURN(RecordResult res, recorder.record(n));
        out.push_back(std::move(res));
    }
    if (ws.dirty) {
        WP_RETURN_IF_ERROR(m.commit(txn, ws));
    }
    return out;
}

Result<std::vector<Ledger::RecordedDelivery>> Ledger::record_and_deliver(
    std::span<const NewIdentity> batch, std::span<const int> sites, const std::string& tester,
    std::span<const FinalLocation> packages) {
    if (sites.size() != batch.size())
        return make_error(ErrorCode::kInvalidArgument,
                          "record_and_deliver: one site per identity expected");
    if (!packages.empty() && packages.size() != batch.size())
        return make_error(ErrorCode::kInvalidArgument,
                          "record_and_deliver: one package location per identity expected");
    for (size_t i = 0; i < packages.size(); ++i) {
        if (!batch[i].loc.packaged || packages[i].lot != batch[i].loc.lot)
            return make_error(ErrorCode::kInvalidArgument,
                              "record_and_deliver: batch item " + std::to_string(i) +
                                  " has a package location but is not a packaged part of lot " +
                                  packages[i].lot);
        WP_RETURN_IF_ERROR(valid_final_location(packages[i]));
    }
    for (size_t i = 0; i < batch.size(); ++i) WP_RETURN_IF_ERROR(validate_identity(batch[i], i));
    if (!chain::valid_text(tester))
        return make_error(ErrorCode::kInvalidArgument, "tester id is not printable ASCII");
    std::vector<RecordedDelivery> out;
    auto apply = [&](WriteState& ws) -> Status {
        out.clear();
        BatchRecorder recorder(*impl_, ws);
        if (!packages.empty()) WP_RETURN_IF_ERROR(impl_->ensure_final_table());
        std::vector<Delivery> deliveries;
        std::vector<size_t> index;  // out index of each delivery
        for (size_t i = 0; i < batch.size(); ++i) {
            WP_ASSIGN_OR_RETURN(RecordResult res, recorder.record(batch[i]));
            RecordedDelivery rd{std::move(res), std::nullopt};
            const auto o = rd.recorded.outcome;
            if ((o == RecordOutcome::kIssued || o == RecordOutcome::kReissued) &&
                rd.recorded.record) {
                deliveries.push_back(
                    Delivery{rd.recorded.record->uid, rd.recorded.record->loc, sites[i]});
                index.push_back(i);
                // A packaged part issued here gets its final-test row, PROVISIONED, where the
                // handler has it (a reissue keeps the row it has).
                if (!packages.empty() && o == RecordOutcome::kIssued)
                    WP_RETURN_IF_ERROR(impl_->provision_final_row(ws, rd.recorded.record->uid,
                                                                  packages[i], tester));
            }
            out.push_back(std::move(rd));
        }
        // The recorded identities are delivered together: one DELIVER event after their ISSUEs.
        std::vector<TransitionResult> tr;
        WP_RETURN_IF_ERROR(impl_->apply_deliver(ws, deliveries, tester, true, tr));
        for (size_t k = 0; k < tr.size(); ++k) out[index[k]].delivered = std::move(tr[k]);
        return ok_status();
    };
    WP_RETURN_IF_ERROR(impl_->group.run(apply));
    return out;
}

// ---- lookups --------------------------------------------------------------------------------

Result<std::optional<LedgerRecord>> Ledger::find_uid(const wpid1::Uid& uid) {
    std::lock_guard lock(impl_->mu);
    return impl_->by_uid(uid);
}

Result<std::optional<LedgerRecord>> Ledger::find_location(const DieLocation& loc) {
    std::lock_guard lock(impl_->mu);
    return impl_->by_location(loc);
}

Result<std::map<wpid1::Uid, uint32_t>> Ledger::retests() {
    std::lock_guard lock(impl_->mu);
    WP_ASSIGN_OR_RETURN(auto txn, Txn::begin(*impl_->db, false));
    std::map<wpid1::Uid, uint32_t> out;
    {
        WP_ASSIGN_OR_RETURN(auto* s, impl_->stmt("SELECT type, uid, payload FROM events WHERE "
                                                 "type IN ('RESULT', 'DELIVER') ORDER BY seq"));
        sql::Query q(s);
        std::set<wpid1::Uid> failed;  // dies whose last result was FAILED
        for (;;) {
            WP_ASSIGN_OR_RETURN(const bool row, q.step());
            if (!row) break;
            if (q.text_col(0) == "RESULT") {
                wpid1::Uid uid{};
                if (!copy_fixed(q.blob_col(1), uid)) continue;
                // Canonical payloads: the only "state" member is the record's state after it.
                if (q.text_col(2).find("\"state\":\"FAILED\"") != std::string::npos)
                    failed.insert(uid);
                else
                    failed.erase(uid);
                continue;
            }
            for (const auto& uid : chain::delivered_uids(q.text_col(2)))
                if (failed.erase(uid) != 0) ++out[uid];
        }
    }
    WP_RETURN_IF_ERROR(txn.commit());
    return out;
}

Result<bool> Ledger::migrated() {
    std::lock_guard lock(impl_->mu);
    WP_ASSIGN_OR_RETURN(auto* s, impl_->stmt("SELECT 1 FROM events WHERE type = 'MIGRATE' AND "
                                             "payload LIKE "
                                             "'%\"from_format\":\"waferprov-ledger/2\"%' "
                                             "LIMIT 1"));
    sql::Query q(s);
    return q.step();
}

Result<std::optional<std::string>> Ledger::substrate_of(const std::string& lot, int wafer) {
    std::lock_guard lock(impl_->mu);
    return impl_->substrate_of(lot, wafer);
}

Result<std::vector<LedgerRecord>> Ledger::list_wafer(const std::string& lot, int wafer) {
    std::lock_guard lock(impl_->mu);
    WP_ASSIGN_OR_RETURN(
        auto* s, impl_->stmt(WP_RECORD_SELECT("WHERE lot = ?1 AND wafer = ?2 ORDER BY y, x")));
    sql::Query q(s);
    q.bind(1, lot).bind(2, wafer);
    std::vector<LedgerRecord> out;
    for (;;) {
        WP_ASSIGN_OR_RETURN(const bool row, q.step());
        if (!row) break;
        WP_ASSIGN_OR_RETURN(auto r, row_to_record(q));
        out.push_back(std::move(r));
    }
    return out;
}

Status Ledger::for_each(const std::function<Status(const LedgerRecord&)>& fn) {
    std::lock_guard lock(impl_->mu);
    WP_ASSIGN_OR_RETURN(auto txn, Txn::begin(*impl_->db, false));
    {
        WP_ASSIGN_OR_RETURN(auto* s, impl_->stmt(WP_RECORD_SELECT_ORDERED));
        sql::Query q(s);
        for (;;) {
            WP_ASSIGN_OR_RETURN(const bool row, q.step());
            if (!row) break;
            WP_ASSIGN_OR_RETURN(auto r, row_to_record(q));
            WP_RETURN_IF_ERROR(fn(r));
        }
    }
    return txn.commit();
}

Result<StateCounts> Ledger::counts() {
    std::lock_guard lock(impl_->mu);
    WP_ASSIGN_OR_RETURN(auto* s, impl_->stmt("SELECT state, count(*) FROM records GROUP BY state"));
    sql::Query q(s);
    StateCounts c;
    for (;;) {
        WP_ASSIGN_OR_RETURN(const bool row, q.step());
        if (!row) break;
        WP_ASSIGN_OR_RETURN(const DieState st, die_state_from_string(q.text_col(0)));
        const auto n = static_cast<uint64_t>(q.int_col(1));
        switch (st) {
            case DieState::kIssued: c.issued = n; break;
            case DieState::kDelivered: c.delivered = n; break;
            case DieState::kProgrammed: c.programmed = n; break;
            case DieState::kFailed: c.failed = n; break;
            case DieState::kVoid: c.voided = n; break;
        }
    }
    return c;
}

Result<QuotaStatus> Ledger::quota() {
    std::lock_guard lock(impl_->mu);
    WP_ASSIGN_OR_RETURN(auto* s, impl_->stmt("SELECT quota, quota_used FROM job WHERE id = 1"));
    sql::Query q(s);
    WP_ASSIGN_OR_RETURN(const bool row, q.step());
    if (!row) return make_error(ErrorCode::kIntegrityFailure, "ledger: the job row is missing");
    return QuotaStatus{static_cast<uint64_t>(q.int_col(0)), static_cast<uint64_t>(q.int_col(1))};
}

Result<uint64_t> Ledger::quota_left() {
    WP_ASSIGN_OR_RETURN(const auto qs, quota());
    return qs.left();
}

Result<ChainHead> Ledger::head() {
    std::lock_guard lock(impl_->mu);
    WP_ASSIGN_OR_RETURN(auto* s, impl_->stmt("SELECT head_seq, head_hash FROM job WHERE id = 1"));
    sql::Query q(s);
    WP_ASSIGN_OR_RETURN(const bool row, q.step());
    ChainHead h;
    if (!row || !copy_fixed(q.blob_col(1), h.hash))
        return make_error(ErrorCode::kIntegrityFailure, "ledger: no chain head");
    h.events = static_cast<uint64_t>(q.int_col(0));
    return h;
}

// ---- transitions ----------------------------------------------------------------------------

namespace {

TransitionResult refused(const wpid1::Uid& uid, TransitionStatus st, std::string msg,
                         std::optional<LedgerRecord> rec = std::nullopt) {
    return TransitionResult{uid, st, std::move(rec), std::move(msg)};
}

}  // namespace

Result<std::vector<TransitionResult>> Ledger::mark_delivered(std::span<const wpid1::Uid> uids,
                                                             const std::string& tester) {
    std::vector<Delivery> items(uids.size());
    for (size_t i = 0; i < uids.size(); ++i) items[i].uid = uids[i];
    return impl_->deliver(items, tester, false);
}

Result<std::vector<TransitionResult>> Ledger::deliver(std::span<const Delivery> items,
                                                      const std::string& tester) {
    return impl_->deliver(items, tester, true);
}

Result<std::vector<TransitionResult>> Ledger::Impl::deliver(std::span<const Delivery> items,
                                                            const std::string& tester,
                                                            bool check_location) {
    std::vector<TransitionResult> out;
    if (!chain::valid_text(tester)) {
        for (const auto& it : items)
            out.push_back(refused(it.uid, TransitionStatus::kInvalidArgument,
                                  "tester id is not printable ASCII"));
        return out;
    }
    WP_RETURN_IF_ERROR(group.run([&](WriteState& ws) {
        out.clear();
        return apply_deliver(ws, items, tester, check_location, out);
    }));
    return out;
}

Status Ledger::Impl::apply_deliver(WriteState& ws, std::span<const Delivery> items,
                                   const std::string& tester, bool check_location,
                                   std::vector<TransitionResult>& out) {
    Impl& m = *this;
    m.delivered.clear();
    for (const auto& item : items) {
        const auto& uid = item.uid;
        // One event lists each die once: a second delivery of a die in the same call says
        // nothing new and is refused.
        if (std::any_of(m.delivered.begin(), m.delivered.end(),
                        [&](const LedgerRecord& d) { return d.uid == uid; })) {
            out.push_back(refused(uid, TransitionStatus::kInvalidArgument,
                                  "UID " + to_hex(uid) + " is delivered twice in one call"));
            continue;
        }
        WP_ASSIGN_OR_RETURN(auto rec, m.by_uid(uid));
        if (!rec) {
            out.push_back(refused(uid, TransitionStatus::kUnknownUid,
                                  "UID " + to_hex(uid) + " is not in the ledger"));
            continue;
        }
        if (check_location && rec->loc != item.loc) {
            out.push_back(refused(uid, TransitionStatus::kLocationMismatch,
                                  "UID " + to_hex(uid) + " belongs to " + rec->loc.describe() +
                                      ", not " + item.loc.describe(),
                                  rec));
            continue;
        }
        if (rec->state == DieState::kVoid) {
            out.push_back(refused(uid, TransitionStatus::kVoided,
                                  "UID " + to_hex(uid) + " is VOID: " + rec->void_reason, rec));
            continue;
        }
        if (rec->state == DieState::kProgrammed) {
            out.push_back(refused(uid, TransitionStatus::kAlreadyProgrammed,
                                  "UID " + to_hex(uid) + " is already PROGRAMMED", rec));
            continue;
        }
        LedgerRecord r = std::move(*rec);
        std::string msg;
        const bool again = r.state != DieState::kIssued;
        if (r.state == DieState::kDelivered) msg = "delivered again (retest)";
        if (r.state == DieState::kFailed) {
            msg = "delivered again after a FAILED result (retest)";
            r.bin.clear();
            r.result_us = 0;
        }
        r.state = DieState::kDelivered;
        if (item.site >= 0) r.site = item.site;
        if (r.delivered_us == 0) r.delivered_us = ws.now;
        r.updated_us = ws.now;
        r.tester = tester;
        WP_RETURN_IF_ERROR(m.update_mutable(r));
        m.delivered.push_back(r);
        TransitionResult tr{uid, TransitionStatus::kOk, std::move(r), std::move(msg)};
        tr.again = again;
        out.push_back(std::move(tr));
    }
    // One DELIVER event for the touchdown (schema version 4), listing its dies in site order.
    if (m.delivered.empty()) return ok_status();
    chain::deliver_payload(m.scratch, m.delivered, ws.seq + 1, ws.now);
    m.delivered.clear();
    return m.insert_event(ws, m.scratch, "DELIVER", std::nullopt);
}

Result<std::vector<TransitionResult>> Ledger::mark_results(std::span<const DieResult> results,
                                                           const std::string& tester) {
    std::vector<TransitionResult> out;
    WP_RETURN_IF_ERROR(impl_->group.run([&](WriteState& ws) {
        out.clear();
        return impl_->apply_results(ws, results, tester, out);
    }));
    return out;
}

Ledger::GroupStats Ledger::group_stats() const { return impl_->group.stats(); }

Status Ledger::Impl::apply_results(WriteState& ws, std::span<const DieResult> results,
                                   const std::string& tester, std::vector<TransitionResult>& out) {
    Impl& m = *this;
    for (const auto& res : results) {
        const auto& uid = res.uid;
        if (!chain::valid_text(tester) || !chain::valid_text(res.bin)) {
            out.push_back(refused(uid, TransitionStatus::kInvalidArgument,
                                  "tester id or bin is not printable ASCII"));
            continue;
        }
        WP_ASSIGN_OR_RETURN(auto rec, m.by_uid(uid));
        if (!rec) {
            out.push_back(refused(uid, TransitionStatus::kUnknownUid,
                                  "UID " + to_hex(uid) + " is not in the ledger"));
            continue;
        }
        switch (rec->state) {
            case DieState::kVoid:
                out.push_back(refused(uid, TransitionStatus::kVoided,
                                      "UID " + to_hex(uid) + " is VOID: " + rec->void_reason, rec));
                continue;
            case DieState::kIssued:
                out.push_back(refused(uid, TransitionStatus::kNotDelivered,
                                      "UID " + to_hex(uid) + " was never delivered", rec));
                continue;
            case DieState::kProgrammed:
            case DieState::kFailed:
                if ((rec->state == DieState::kProgrammed) == res.programmed &&
                    rec->bin == res.bin) {
                    // The same result again (a tester resending after a lost answer or a
                    // host restart): acknowledged, nothing changes.
                    TransitionResult same{uid, TransitionStatus::kOk, std::move(rec),
                                          "the same result was recorded before"};
                    same.again = true;
                    out.push_back(std::move(same));
                    continue;
                }
                out.push_back(refused(uid, TransitionStatus::kDuplicateResult,
                                      "UID " + to_hex(uid) + " already has a result (" +
                                          to_string(rec->state) + ", bin '" + rec->bin + "')",
                                      rec));
                continue;
            case DieState::kDelivered: break;
        }
        LedgerRecord r = std::move(*rec);
        r.state = res.programmed ? DieState::kProgrammed : DieState::kFailed;
        r.bin = res.bin;
        r.result_us = r.updated_us = ws.now;
        r.tester = tester;
        WP_RETURN_IF_ERROR(m.update_mutable(r));
        chain::transition_payload(m.scratch, "RESULT", r, ws.seq + 1, ws.now);
        WP_RETURN_IF_ERROR(m.insert_event(ws, m.scratch, "RESULT", uid));
        out.push_back(TransitionResult{uid, TransitionStatus::kOk, std::move(r), ""});
    }
    return ok_status();
}

Result<TransitionResult> Ledger::void_identity(const wpid1::Uid& uid, const std::string& reason) {
    if (!chain::valid_text(reason, false))
        return refused(uid, TransitionStatus::kInvalidArgument,
                       "a void reason of 1..256 printable ASCII characters is required");
    std::lock_guard lock(impl_->mu);
    Impl& m = *impl_;
    WP_RETURN_IF_ERROR(m.writable());
    WP_ASSIGN_OR_RETURN(auto txn, Txn::begin(*m.db, true));
    WP_ASSIGN_OR_RETURN(WriteState ws, m.load_write_state());
    WP_ASSIGN_OR_RETURN(auto rec, m.by_uid(uid));
    if (!rec)
        return refused(uid, TransitionStatus::kUnknownUid,
                       "UID " + to_hex(uid) + " is not in the ledger");
    if (rec->state == DieState::kVoid)
        return refused(uid, TransitionStatus::kVoided, "UID " + to_hex(uid) + " is already VOID",
                       rec);
    LedgerRecord r = std::move(*rec);
    r.state = DieState::kVoid;
    r.void_reason = reason;
    r.updated_us = ws.now;
    WP_RETURN_IF_ERROR(m.update_mutable(r));
    WP_RETURN_IF_ERROR(m.append_event(
        ws, json{{"uid", to_hex(uid)}, {"after", chain::mutable_json(r)}}, "VOID", uid));
    WP_RETURN_IF_ERROR(m.commit(txn, ws));
    return TransitionResult{uid, TransitionStatus::kOk, std::move(r), ""};
}

// ---- verify ---------------------------------------------------------------------------------

namespace {

// One Ledger::verify(): the file's own check, the chain replayed from the events table, the
// records table and the job row against it, then the heads held elsewhere (the anchor, the
// token, the customer's) against the recomputed chain. Problems collect in the replayer.
struct LedgerVerification {
    Ledger::Impl& m;
    chain::Replayer rp;
    VerifyReport rep;
    // The recomputed hash at the events the anchor, the token and the customer's head name.
    std::map<uint64_t, chain::Hash> wanted;
    std::optional<chain::Hash> genesis;

    Status check_schema() {
        WP_ASSIGN_OR_RETURN(auto* s, m.stmt("SELECT version FROM schema_version"));
        sql::Query q(s);
        WP_ASSIGN_OR_RETURN(const bool row, q.step());
        if (!row || q.int_col(0) != chain::kSchemaVersion) rp.problem("schema version altered");
        return ok_status();
    }

    // The events in order: no gap, the indexed columns agree with the payload the chain covers,
    // and each hash recomputes.
    Status replay_events() {
        WP_ASSIGN_OR_RETURN(auto* s, m.stmt("SELECT seq, type, uid, time_us, payload, hash FROM "
                                            "events ORDER BY seq"));
        sql::Query q(s);
        for (;;) {
            WP_ASSIGN_OR_RETURN(const bool row, q.step());
            if (!row) break;
            const auto seq = static_cast<uint64_t>(q.int_col(0));
            const std::string where = "event row seq " + std::to_string(seq);
            if (seq != rp.events() + 1)
                rp.problem(where + ": expected seq " + std::to_string(rp.events() + 1) +
                           " (events deleted or inserted)");
            const std::string payload = q.text_col(4);
            chain::Hash stored{};
            if (!copy_fixed(q.blob_col(5), stored)) rp.problem(where + ": malformed hash");
            try {
                const json j = json::parse(payload);
                const std::string uid_col = q.is_null(2) ? "" : to_hex(q.blob_col(2));
                const std::string uid_ev = j.value("uid", "");
                if (j.value("type", "") != q.text_col(1) ||
                    j.value("time", int64_t{0}) != q.int_col(3) || uid_col != uid_ev)
                    rp.problem(where + ": type/uid/time columns differ from the event payload");
            } catch (const json::exception&) {
                // The replayer reports the malformed payload.
            }
            rp.apply(payload, stored);
            if (rp.events() == 1) genesis = rp.head();
            if (auto w = wanted.find(rp.events()); w != wanted.end()) w->second = rp.head();
        }
        return ok_status();
    }

    // Replaying the chain must give exactly the records table.
    Status compare_records() {
        std::map<wpid1::Uid, bool> seen;
        WP_ASSIGN_OR_RETURN(auto* s, m.stmt(WP_RECORD_SELECT("ORDER BY id")));
        sql::Query q(s);
        for (;;) {
            WP_ASSIGN_OR_RETURN(const bool row, q.step());
            if (!row) break;
            ++rep.records;
            auto r = row_to_record(q);
            if (!r.ok()) {
                rp.problem(r.error().message);
                continue;
            }
            const std::string who = "record UID " + to_hex(r->uid);
            auto it = rp.records().find(r->uid);
            if (it == rp.records().end()) {
                rp.problem(who + " (" + r->loc.describe() + ") has no ISSUE event");
                continue;
            }
            seen[r->uid] = true;
            // The chain binds the certificate by its SHA-256.
            *r = chain::chain_form(std::move(*r));
            if (!(it->second == *r))
                rp.problem(who + " differs from the event log in: " + differences(it->second, *r));
        }
        for (const auto& [uid, rec] : rp.records())
            if (seen.count(uid) == 0)
                rp.problem("record UID " + to_hex(uid) + " (" + rec.loc.describe() +
                           ") is in the event log but missing from the records table");
        return ok_status();
    }

    static std::string differences(const LedgerRecord& e, const LedgerRecord& r) {
        std::string diff;
        auto note = [&](bool differs, const char* name) {
            if (differs) diff += std::string(diff.empty() ? "" : ", ") + name;
        };
        note(e.loc != r.loc, "location");
        note(e.serial != r.serial, "serial");
        note(e.public_key != r.public_key, "public_key");
        note(e.wrapped != r.wrapped, "wrapped_key");
        note(e.certificate_der != r.certificate_der, "certificate");
        note(e.state != r.state, "state");
        note(e.issued_us != r.issued_us || e.delivered_us != r.delivered_us ||
                 e.result_us != r.result_us || e.updated_us != r.updated_us,
             "times");
        note(e.tester != r.tester, "tester");
        note(e.bin != r.bin, "bin");
        note(e.reissues != r.reissues, "reissues");
        note(e.void_reason != r.void_reason, "void_reason");
        note(e.site != r.site, "site");
        return diff;
    }

    // The job row: its binding is the GENESIS event's, its counters the chain's.
    Status check_job_row() {
        WP_ASSIGN_OR_RETURN(auto* s, m.stmt("SELECT job_id, customer, product, quota, quota_used, "
                                            "head_seq, head_hash FROM job WHERE id = 1"));
        sql::Query q(s);
        WP_ASSIGN_OR_RETURN(const bool row, q.step());
        if (!row) {
            rp.problem("the job row is missing");
            return ok_status();
        }
        const auto& g = rp.genesis();
        if (!g || g->job_id != q.text_col(0) || g->customer != q.text_col(1) ||
            g->product != q.text_col(2) || g->quota != static_cast<uint64_t>(q.int_col(3)))
            rp.problem(
                "the job binding (job id, customer, product, quota) differs from the "
                "GENESIS event");
        if (static_cast<uint64_t>(q.int_col(4)) != rp.quota_used())
            rp.problem("quota counter is " + std::to_string(q.int_col(4)) + " but " +
                       std::to_string(rp.quota_used()) + " identities were issued");
        if (static_cast<uint64_t>(q.int_col(5)) != rp.events() ||
            q.blob_col(6) != Bytes(rp.head().begin(), rp.head().end()))
            rp.problem("stored chain head (event " + std::to_string(q.int_col(5)) + ", " +
                       to_hex(q.blob_col(6)) + ") differs from the recomputed head (event " +
                       std::to_string(rp.events()) + ", " + to_hex(rp.head()) + ")");
        return ok_status();
    }

    // An earlier head (the anchor's, the token's, the customer's) must be in this chain: the
    // chain is at or beyond it and recomputes to the same hash there.
    bool contains(uint64_t seq, const chain::Hash& hash, const ChainHead& head) {
        return seq <= head.events && wanted.count(seq) != 0 && wanted[seq] == hash;
    }

    void compare_anchor(const std::filesystem::path& anchor_file,
                        const Result<anchor::Contents>& anchored, const ChainHead& head) {
        const std::string ledger_head = "the ledger's head is " + describe_head(head);
        if (anchor_file.empty()) {
            rep.notes.push_back(
                "no anchor file was named for this ledger: its head was not "
                "compared with one");
        } else if (!anchored.ok() && anchored.error().code == ErrorCode::kNotFound) {
            rep.notes.push_back("no anchor " + anchor_file.string() +
                                " beside the ledger: its head was not compared with one");
        } else if (!anchored.ok()) {
            rp.problem(anchored.error().message);
        } else if (genesis && anchored->genesis != *genesis) {
            rp.problem("the anchor " + anchor_file.string() +
                       " was written for another ledger (genesis " + to_hex(anchored->genesis) +
                       "): the ledger file was replaced");
        } else if (anchored->last) {
            const anchor::Head& a = *anchored->last;
            const std::string both = ledger_head + ", its anchor " + anchor_file.string() +
                                     " holds " + anchor::describe(a.seq, a.hash) + " (quota used " +
                                     std::to_string(a.used) + ")";
            if (a.seq > head.events || rp.quota_used() < a.used)
                rp.problem(
                    "the ledger is behind its anchor: committed work is missing (a restored "
                    "older copy, a snapshot, or a damaged write-ahead log); " +
                    both);
            else if (!contains(a.seq, a.hash, head))
                rp.problem("the ledger has diverged from its anchor at event " +
                           std::to_string(a.seq) + ": " + both);
            else
                rep.notes.push_back("anchor " + anchor_file.string() +
                                    ": the chain contains its head " +
                                    anchor::describe(a.seq, a.hash));
        }
    }

    void compare_token(const HeadAnchor& token, const std::optional<AnchoredHead>& token_head,
                       const ChainHead& head) {
        if (!token_head) {
            rep.notes.push_back(token.describe() + " holds no head yet");
            return;
        }
        const std::string both = "the ledger's head is " + describe_head(head) + ", " +
                                 token.describe() + " holds " +
                                 anchor::describe(token_head->seq, token_head->hash) +
                                 " (quota used " + std::to_string(token_head->used) + ")";
        if (token_head->seq > head.events || rp.quota_used() < token_head->used)
            rp.problem(
                "the ledger is behind its token anchor: committed work is missing (a restored "
                "older copy of the ledger and its head log, or a damaged write-ahead log); " +
                both);
        else if (!contains(token_head->seq, token_head->hash, head))
            rp.problem("the ledger has diverged from its token anchor at event " +
                       std::to_string(token_head->seq) + ": " + both);
        else
            rep.notes.push_back(token.describe() + ": the chain contains its head " +
                                anchor::describe(token_head->seq, token_head->hash));
    }

    void compare_expected(const ChainHead& e, const ChainHead& head) {
        const std::string ledger_head = "the ledger's head is " + describe_head(head);
        if (e.events > head.events)
            rp.problem("the ledger is behind the head " + describe_head(e) +
                       " given: it was rolled back; " + ledger_head);
        else if (!contains(e.events, e.hash, head))
            rp.problem("the chain does not contain the head " + describe_head(e) +
                       " given (its event " + std::to_string(e.events) +
                       " hashes otherwise): the ledger was rewritten; " + ledger_head);
        else
            rep.notes.push_back("the chain contains the head " + describe_head(e) + " given");
    }

    VerifyReport done() {
        rep.events = rp.events();
        rep.problems = std::move(rp.problems());
        return rep;
    }
};

}  // namespace

Result<VerifyReport> Ledger::verify(const VerifyOptions& options) {
    std::lock_guard lock(impl_->mu);
    Impl& m = *impl_;
    // Read before the snapshot: a writer appends its anchor line after its commit, so an anchor
    // read first is never ahead of the snapshot taken next.
    const auto anchor_file = options.anchor_file.empty() ? m.anchor_file : options.anchor_file;
    const auto anchored = anchor_file.empty()
                              ? Result<anchor::Contents>(make_error(ErrorCode::kNotFound, "none"))
                              : anchor::read(anchor_file);
    std::optional<AnchoredHead> token_head;
    if (options.token_anchor) {
        WP_ASSIGN_OR_RETURN(token_head, options.token_anchor->read());
    }
    WP_ASSIGN_OR_RETURN(auto txn, Txn::begin(*m.db, false));
    LedgerVerification v{m, {}, {}, {}, {}};
    if (m.lite != nullptr) {  // a PostgreSQL server checks its own pages
        WP_ASSIGN_OR_RETURN(const auto found, integrity_problems(m.lite->raw(), options.quick));
        for (const auto& p : found)
            v.rp.problem(std::string("SQLite ") +
                         (options.quick ? "quick_check" : "integrity_check") + ": " + p);
    }
    if (anchored.ok() && anchored->last) v.wanted[anchored->last->seq] = {};
    if (options.expected_head) v.wanted[options.expected_head->events] = {};
    if (token_head) v.wanted[token_head->seq] = {};
    const bool damaged = !v.rp.problems().empty();
    // A damaged file can fail the reads below: with SQLite's check failing that is a finding
    // (already reported), not an error of verify.
    const Status replayed = [&]() -> Status {
        WP_RETURN_IF_ERROR(v.check_schema());
        WP_RETURN_IF_ERROR(v.replay_events());
        WP_RETURN_IF_ERROR(v.compare_records());
        WP_RETURN_IF_ERROR(verify_final_table(m, v.rp));  // final test (final_test.cpp)
        return v.check_job_row();
    }();
    if (!replayed.ok()) {
        if (!damaged) return replayed.error();
        v.rp.problem("reading the damaged file stopped: " + replayed.error().message);
        return v.done();
    }
    WP_RETURN_IF_ERROR(txn.commit());
    const ChainHead head{v.rp.events(), v.rp.head()};
    v.compare_anchor(anchor_file, anchored, head);
    if (options.token_anchor) v.compare_token(*options.token_anchor, token_head, head);
    if (options.expected_head) v.compare_expected(*options.expected_head, head);
    v.rep.head = head;
    return v.done();
}

// ---- the tester link's delivery cap -------------------------------------------------------

Result<Ledger::DeliveryTally> Ledger::delivery_tally() {
    std::lock_guard lock(impl_->mu);
    WP_ASSIGN_OR_RETURN(auto txn, Txn::begin(*impl_->db, false));
    DeliveryTally out;
    {
        WP_ASSIGN_OR_RETURN(auto* s,
                            impl_->stmt("SELECT payload FROM events WHERE type = 'DELIVER'"));
        sql::Query q(s);
        for (;;) {
            WP_ASSIGN_OR_RETURN(const bool row, q.step());
            if (!row) break;
            for (const auto& uid : chain::delivered_uids(q.text_col(0))) ++out.deliveries[uid];
        }
    }
    {
        WP_ASSIGN_OR_RETURN(auto* s,
                            impl_->stmt("SELECT payload FROM events WHERE type = 'ALARM'"));
        sql::Query q(s);
        for (;;) {
            WP_ASSIGN_OR_RETURN(const bool row, q.step());
            if (!row) break;
            try {
                const json j = json::parse(q.text_col(0));
                if (j.value("reason", "") != "delivery-cap") continue;
                auto uid = from_hex(j.at("offered").value("uid", ""), "uid");
                wpid1::Uid u{};
                if (uid.ok() && copy_fixed(*uid, u)) out.capped.insert(u);
            } catch (const json::exception&) {
                // verify() reports a malformed payload.
            }
        }
    }
    WP_RETURN_IF_ERROR(txn.commit());
    return out;
}

Status Ledger::alarm_delivery_cap(const wpid1::Uid& uid, const std::string& tester) {
    if (!chain::valid_text(tester))
        return make_error(ErrorCode::kInvalidArgument, "tester id is not printable ASCII");
    std::lock_guard lock(impl_->mu);
    Impl& m = *impl_;
    WP_RETURN_IF_ERROR(m.writable());
    WP_ASSIGN_OR_RETURN(auto txn, Txn::begin(*m.db, true));
    WP_ASSIGN_OR_RETURN(auto rec, m.by_uid(uid));
    if (!rec)
        return make_error(ErrorCode::kNotFound, "UID " + to_hex(uid) + " is not in the ledger");
    WP_ASSIGN_OR_RETURN(WriteState ws, m.load_write_state());
    const json where = chain::location_json(rec->uid, rec->loc, rec->serial);
    WP_RETURN_IF_ERROR(m.append_event(ws,
                                      json{{"reason", "delivery-cap"},
                                           {"tester", tester},
                                           {"offered", where},
                                           {"existing", where}},
                                      "ALARM", std::nullopt));
    // Through the anchor like every other commit: a rolled-back alarm is caught too.
    return m.commit(txn, ws);
}

Status Ledger::alarm_backend_refused(const DieLocation& loc, const wpid1::Uid& uid,
                                     const std::string& tester) {
    if (!chain::valid_text(tester))
        return make_error(ErrorCode::kInvalidArgument, "tester id is not printable ASCII");
    if (!chain::valid_text(loc.lot, false) || !chain::valid_text(loc.substrate))
        return make_error(ErrorCode::kInvalidArgument,
                          "lot or substrate id is not printable ASCII");
    std::lock_guard lock(impl_->mu);
    Impl& m = *impl_;
    WP_RETURN_IF_ERROR(m.writable());
    WP_ASSIGN_OR_RETURN(auto txn, Txn::begin(*m.db, true));
    WP_ASSIGN_OR_RETURN(WriteState ws, m.load_write_state());
    const json where = chain::location_json(uid, loc, ByteSpan{});
    WP_RETURN_IF_ERROR(m.append_event(ws,
                                      json{{"reason", "backend-record-refused"},
                                           {"tester", tester},
                                           {"offered", where},
                                           {"existing", where}},
                                      "ALARM", std::nullopt));
    return m.commit(txn, ws);
}

}  // namespace waferprov::host
