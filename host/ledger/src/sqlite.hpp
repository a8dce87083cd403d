// A thin RAII layer over the SQLite C API for the ledger (internal header).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

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

// A prepared statement in use: binds, steps, reads columns, and resets itself (releasing any
// read snapshot it holds) when it goes out of scope.
class Query {
public:
    Query(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
    Query(const Query&) = delete;
    Query& operator=(const Query&) = delete;
    ~Query() {
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }

    Query& bind(int i, int64_t v) {
        note(sqlite3_bind_int64(s_, i, v));
        return *this;
    }
    Query& bind(int i, std::string_view v) {
        note(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
        return *this;
    }
    Query& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
    Query& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
    Query& bind_null(int i) {
        note(sqlite3_bind_null(s_, i));
        return *this;
    }
    Query& bind_blob(int i, ByteSpan v) {
        // A zero-length blob must still be a blob, not NULL.
        static const uint8_t empty = 0;
        note(sqlite3_bind_blob(s_, i, v.empty() ? &empty : v.data(), static_cast<int>(v.size()),
                               SQLITE_TRANSIENT));
        return *this;
    }

    // true: a row is available; false: done.
    Result<bool> step() {
        if (bind_rc_ != SQLITE_OK) return sql_error(db_, "binding", bind_rc_);
        const int rc = sqlite3_step(s_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        return sql_error(db_, std::string("executing ") + sqlite3_sql(s_), rc);
    }
    Status run() {
        auto r = step();
        if (!r.ok()) return r.error();
        return ok_status();
    }

    int64_t int_col(int i) const { return sqlite3_column_int64(s_, i); }
    bool is_null(int i) const { return sqlite3_column_type(s_, i) == SQLITE_NULL; }
    std::string text_col(int i) const {
        const auto* p = sqlite3_column_text(s_, i);
        const int n = sqlite3_column_bytes(s_, i);
        return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), n);
    }
    Bytes blob_col(int i) const {
        const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(s_, i));
        const int n = sqlite3_column_bytes(s_, i);
        return p == nullptr ? Bytes() : Bytes(p, p + n);
    }

private:
    void note(int rc) {
        if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
    }
    sqlite3* db_;
    sqlite3_stmt* s_;
    int bind_rc_ = SQLITE_OK;
};

// Prepared statements cached by their SQL text, owned with the connection.
class StatementCache {
public:
    explicit StatementCache(sqlite3* db) : db_(db) {}
    Result<sqlite3_stmt*> get(const char* sql) {
        // Fast path: the callers pass string literals, so the pointer usually identifies the
        // statement; the text is compared to be sure (no hashing or allocation per call).
        auto hit = by_ptr_.find(sql);
        if (hit != by_ptr_.end() && std::strcmp(sqlite3_sql(hit->second), sql) == 0)
            return hit->second;
        auto s = get_by_text(sql);
        if (!s.ok()) return s;
        by_ptr_[sql] = *s;
        return s;
    }
    void clear() {
        by_ptr_.clear();
        cache_.clear();
    }

private:
    Result<sqlite3_stmt*> get_by_text(const char* sql) {
        auto it = cache_.find(sql);
        if (it != cache_.end()) return it->second.get();
        sqlite3_stmt* s = nullptr;
        const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
        if (rc != SQLITE_OK) return sql_error(db_, std::string("preparing ") + sql, rc);
        cache_.emplace(sql, StmtPtr(s));
        return s;
    }

    sqlite3* db_;
    std::unordered_map<const char*, sqlite3_stmt*> by_ptr_;
    std::unordered_map<std::string, StmtPtr> cache_;
};

}  // namespace waferprov::host::sql
