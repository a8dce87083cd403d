// The ledger's seam to its storage (internal header): a connection that prepares statements,
// runs scripts and transactions, on one of two stores (docs/ledger.md "Stores"):
//   SQLite      the embedded default, a file (store_sqlite.cpp);
//   PostgreSQL  a server several hosts share (store_postgres.cpp, over libpq).
// The ledger writes its SQL once, in the subset both understand: parameters as ?N, upserts as
// ON CONFLICT, NULLS FIRST where order matters. Its schema is written once too, in SQLite's
// words, and ddl() gives each store its own (types, the automatic id, the append-only guard).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "waferprov/bytes.hpp"
#include "waferprov/host/model.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host::sql {

enum class Dialect { kSqlite, kPostgres };

// A prepared statement, owned by its connection. Parameters are numbered from 1, columns from 0.
class Statement {
public:
    virtual ~Statement() = default;
    virtual void bind_int(int i, int64_t v) = 0;
    virtual void bind_text(int i, std::string_view v) = 0;
    virtual void bind_blob(int i, ByteSpan v) = 0;  // an empty blob is a blob, not NULL
    virtual void bind_null(int i) = 0;
    // true: a row is available; false: done. The first call runs the statement.
    virtual Result<bool> step() = 0;
    virtual int64_t int_col(int i) const = 0;
    virtual bool is_null(int i) const = 0;
    virtual std::string text_col(int i) const = 0;
    virtual Bytes blob_col(int i) const = 0;
    // Ready to run again: results (and any read snapshot they hold) released, bindings cleared.
    virtual void reset() noexcept = 0;
    // The next run is a scan of a whole table (for_each, verify, export): its rows are fetched
    // one at a time instead of all at once (PostgreSQL; SQLite always steps), and no other
    // statement may run on the connection until it is done or reset.
    virtual void stream() {}
};

// A statement in use: binds, steps, reads columns, and resets it when it goes out of scope.
class Query {
public:
    explicit Query(Statement* s) : s_(s) {}
    Query(const Query&) = delete;
    Query& operator=(const Query&) = delete;
    ~Query() { s_->reset(); }

    Query& bind(int i, int64_t v) {
        s_->bind_int(i, v);
        return *this;
    }
    Query& bind(int i, std::string_view v) {
        s_->bind_text(i, v);
        return *this;
    }
    Query& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
    Query& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
    Query& bind_null(int i) {
        s_->bind_null(i);
        return *this;
    }
    Query& bind_blob(int i, ByteSpan v) {
        s_->bind_blob(i, v);
        return *this;
    }
    Query& stream() {
        s_->stream();
        return *this;
    }
    Result<bool> step() { return s_->step(); }
    Status run() {
        auto r = step();
        if (!r.ok()) return r.error();
        return ok_status();
    }
    int64_t int_col(int i) const { return s_->int_col(i); }
    bool is_null(int i) const { return s_->is_null(i); }
    std::string text_col(int i) const { return s_->text_col(i); }
    Bytes blob_col(int i) const { return s_->blob_col(i); }

private:
    Statement* s_;
};

class Connection {
public:
    virtual ~Connection() = default;
    virtual Dialect dialect() const noexcept = 0;
    // The statement for `sql` (the ledger's string literals), prepared once and cached.
    virtual Result<Statement*> prepare(const char* sql) = 0;
    // One or more statements without parameters or rows (a script).
    virtual Status exec(const char* sql) = 0;
    Status exec(const std::string& sql) { return exec(sql.c_str()); }
    // Rows the last INSERT/UPDATE/DELETE changed; -1 when not known yet (PostgreSQL sends the
    // writes of a write transaction ahead, and a failure is reported by a later call).
    virtual int64_t changes() const = 0;
    // The writes sent ahead answered: the first failure among them (nothing to do on SQLite).
    virtual Status flush() { return ok_status(); }
    // A write transaction holds the ledger's one write lock from its start (SQLite: BEGIN
    // IMMEDIATE; PostgreSQL: a transaction-scoped advisory lock), so that what it reads is the
    // newest commit and no other writer, in this process or another host, interleaves. A read
    // transaction is one consistent snapshot.
    virtual Status begin(bool write) = 0;
    virtual Status commit() = 0;
    virtual void rollback() noexcept = 0;
    virtual Result<bool> has_table(const char* name) = 0;
};

// The store a ledger location names: waferprov/host/model.hpp's is_postgres_location() and
// sqlite_path_of(), here too.
using host::is_postgres_location;
using host::sqlite_path_of;
// The location as messages show it: a PostgreSQL URI without its password.
std::string describe_location(std::string_view location);

// The ledger's schema text (SQLite's words) for `d`: for PostgreSQL BLOB is BYTEA, INTEGER is
// BIGINT, TEXT compares bytewise (COLLATE "C", as SQLite does), and {ID} (the records' own
// automatic id) is an identity column; for SQLite {ID} is INTEGER PRIMARY KEY.
std::string ddl(Dialect d, std::string_view schema);

// PostgreSQL (store_postgres.cpp): a connection to the server `uri` names; a write transaction
// waits at most `lock_timeout_ms` for another writer (then kResourceExhausted).
Result<std::unique_ptr<Connection>> connect_postgres(const std::string& uri, int lock_timeout_ms);

}  // namespace waferprov::host::sql
