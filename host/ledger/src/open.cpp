// Ledger::open and open_existing: the schema a new ledger gets (in either store's dialect), the
// job binding an existing one must carry, SQLite's check of the file, and the anchors (the head
// log, the token) the ledger must not be behind.
#include <iostream>

#include "ledger_impl.hpp"

namespace waferprov::host {

using nlohmann::json;

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

}  // namespace

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

}  // namespace waferprov::host
