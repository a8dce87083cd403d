// The SQLite store (store.hpp): a thin RAII layer over the SQLite C API (internal header).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "store.hpp"
#include "waferprov/bytes.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host::sql {

struct DbCloser {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
    void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

inline Error sql_error(sqlite3* db, const std::string& context, int rc) {
    const ErrorCode code =
        (rc & 0xff) == SQLITE_BUSY ? ErrorCode::kResourceExhausted : ErrorCode::kIo;
    return make_error(code, context + ": " + (db != nullptr ? sqlite3_errmsg(db) : "") + " (" +
                                sqlite3_errstr(rc) + ")");
}

inline Status exec(sqlite3* db, const char* sql) {
    char* msg = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &msg);
    if (rc != SQLITE_OK) {
        std::string text = msg != nullptr ? msg : sqlite3_errstr(rc);
        sqlite3_free(msg);
        return make_error(
            (rc & 0xff) == SQLITE_BUSY ? ErrorCode::kResourceExhausted : ErrorCode::kIo,
            std::string("sqlite: ") + text + " in: " + std::string(sql).substr(0, 60));
    }
    return ok_status();
}

// A prepared SQLite statement.
class SqliteStatement final : public Statement {
public:
    SqliteStatement(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}

    void bind_int(int i, int64_t v) override { note(sqlite3_bind_int64(s_.get(), i, v)); }
    void bind_text(int i, std::string_view v) override {
        note(
            sqlite3_bind_text(s_.get(), i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    }
    void bind_blob(int i, ByteSpan v) override {
        // A zero-length blob must still be a blob, not NULL.
        static const uint8_t empty = 0;
        note(sqlite3_bind_blob(s_.get(), i, v.empty() ? &empty : v.data(),
                               static_cast<int>(v.size()), SQLITE_TRANSIENT));
    }
    void bind_null(int i) override { note(sqlite3_bind_null(s_.get(), i)); }

    Result<bool> step() override {
        if (bind_rc_ != SQLITE_OK) return sql_error(db_, "binding", bind_rc_);
        const int rc = sqlite3_step(s_.get());
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        return sql_error(db_, std::string("executing ") + sqlite3_sql(s_.get()), rc);
    }

    int64_t int_col(int i) const override { return sqlite3_column_int64(s_.get(), i); }
    bool is_null(int i) const override { return sqlite3_column_type(s_.get(), i) == SQLITE_NULL; }
    std::string text_col(int i) const override {
        const auto* p = sqlite3_column_text(s_.get(), i);
        const int n = sqlite3_column_bytes(s_.get(), i);
        return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), n);
    }
    Bytes blob_col(int i) const override {
        const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(s_.get(), i));
        const int n = sqlite3_column_bytes(s_.get(), i);
        return p == nullptr ? Bytes() : Bytes(p, p + n);
    }
    void reset() noexcept override {
        sqlite3_reset(s_.get());
        sqlite3_clear_bindings(s_.get());
        bind_rc_ = SQLITE_OK;
    }
    const char* text() const { return sqlite3_sql(s_.get()); }

private:
    void note(int rc) {
        if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
    }
    sqlite3* db_;
    StmtPtr s_;
    int bind_rc_ = SQLITE_OK;
};

// A SQLite database file. Its statements are cached by their SQL text and finalized before the
// connection closes. raw() is for what only SQLite has (checkpoints, integrity_check).
class SqliteConnection final : public Connection {
public:
    explicit SqliteConnection(DbPtr db) : db_(std::move(db)) {}
    ~SqliteConnection() override {
        by_ptr_.clear();
        cache_.clear();  // statements before the connection
    }
    sqlite3* raw() const { return db_.get(); }

    using Connection::exec;
    Dialect dialect() const noexcept override { return Dialect::kSqlite; }

    Result<Statement*> prepare(const char* sql) override {
        // Fast path: the callers pass string literals, so the pointer usually identifies the
        // statement; the text is compared to be sure (no hashing or allocation per call).
        auto hit = by_ptr_.find(sql);
        if (hit != by_ptr_.end() && std::strcmp(hit->second->text(), sql) == 0)
            return static_cast<Statement*>(hit->second);
        auto it = cache_.find(sql);
        if (it == cache_.end()) {
            sqlite3_stmt* s = nullptr;
            const int rc =
                sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
            if (rc != SQLITE_OK) return sql_error(db_.get(), std::string("preparing ") + sql, rc);
            it = cache_.emplace(sql, std::make_unique<SqliteStatement>(db_.get(), s)).first;
        }
        by_ptr_[sql] = it->second.get();
        return static_cast<Statement*>(it->second.get());
    }
    Status exec(const char* sql) override { return sql::exec(db_.get(), sql); }
    int64_t changes() const override { return sqlite3_changes64(db_.get()); }
    Status begin(bool write) override { return exec(write ? "BEGIN IMMEDIATE" : "BEGIN"); }
    Status commit() override { return exec("COMMIT"); }
    void rollback() noexcept override {
        sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
    Result<bool> has_table(const char* name) override {
        WP_ASSIGN_OR_RETURN(auto* s, prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                             "name = ?1"));
        Query q(s);
        q.bind(1, name);
        return q.step();
    }

private:
    DbPtr db_;
    std::unordered_map<const char*, SqliteStatement*> by_ptr_;
    std::unordered_map<std::string, std::unique_ptr<SqliteStatement>> cache_;
};

}  // namespace waferprov::host::sql
