// The PostgreSQL store (store.hpp) over libpq: server-side prepared statements, parameters as
// text (integers, text) or binary (bytea), results as text. One connection per Ledger, used by
// one thread at a time (the ledger's mutex).
//
// Pipeline mode, where it pays: inside a write transaction an INSERT, UPDATE or DELETE is sent
// without waiting for its answer (changes() is then -1, not known yet); the answers are read
// with the next statement that returns rows, in the same round trip (its query and a sync go
// out behind the writes), or by flush() and every exec(). A die recorded is then three round
// trips instead of five, a die delivered one instead of two. A write that fails is reported by
// that next call, and the server has aborted the transaction by then, so the ledger rolls back.
//
// A lost connection (a server restart, pg_terminate_backend, a network fault): outside a
// transaction the next statement reconnects; inside one, every call fails with kUnavailable
// until the ledger rolls back, since the server has already discarded what the transaction
// wrote (a reconnect mid-transaction would carry on outside it). Whether a COMMIT whose answer
// was lost took effect is for the ledger to find out (Ledger::Impl::commit).
#include <libpq-fe.h>

#include <charconv>
#include <cstring>
#include <map>
#include <optional>
#include <vector>

#include "store.hpp"

namespace waferprov::host::sql {

namespace {

struct ResultClear {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultClear>;
struct ConnFinish {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnFinish>;

std::string trimmed(const char* text) {
    std::string s = text != nullptr ? text : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// The ledger's parameters (?N, ?) in PostgreSQL's words ($N), outside quoted text; `count` is
// the highest parameter number.
std::string translate(const char* sql, int& count) {
    std::string out;
    count = 0;
    int next = 0;
    bool quoted = false;
    for (const char* p = sql; *p != '\0'; ++p) {
        if (*p == '\'') quoted = !quoted;
        if (quoted || *p != '?') {
            out += *p;
            continue;
        }
        int n = 0;
        while (p[1] >= '0' && p[1] <= '9') n = n * 10 + (*++p - '0');
        if (n == 0) n = ++next;
        count = std::max(count, n);
        out += '$' + std::to_string(n);
    }
    return out;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

class PgConnection;

class PgStatement final : public Statement {
public:
    PgStatement(PgConnection& conn, std::string name, std::string text, int params)
        : conn_(conn),
          name_(std::move(name)),
          text_(std::move(text)),
          values_(static_cast<size_t>(params)),
          is_null_(static_cast<size_t>(params), true),
          binary_(static_cast<size_t>(params), 0),
          writes_only_((text_.rfind("INSERT", 0) == 0 || text_.rfind("UPDATE", 0) == 0 ||
                        text_.rfind("DELETE", 0) == 0) &&
                       text_.find("RETURNING") == std::string::npos) {}

    void bind_int(int i, int64_t v) override { set(i, std::to_string(v), false); }
    void bind_text(int i, std::string_view v) override { set(i, std::string(v), false); }
    void bind_blob(int i, ByteSpan v) override {
        set(i, std::string(reinterpret_cast<const char*>(v.data()), v.size()), true);
    }
    void bind_null(int i) override {
        if (valid(i)) is_null_[static_cast<size_t>(i - 1)] = true;
    }

    Result<bool> step() override;

    int64_t int_col(int i) const override {
        const char* v = PQgetvalue(res_.get(), row_, i);
        if (v[0] == 't') return 1;  // a boolean
        int64_t out = 0;
        std::from_chars(v, v + std::strlen(v), out);
        return out;
    }
    bool is_null(int i) const override { return PQgetisnull(res_.get(), row_, i) != 0; }
    std::string text_col(int i) const override {
        return std::string(PQgetvalue(res_.get(), row_, i),
                           static_cast<size_t>(PQgetlength(res_.get(), row_, i)));
    }
    Bytes blob_col(int i) const override {
        const char* v = PQgetvalue(res_.get(), row_, i);
        const auto n = static_cast<size_t>(PQgetlength(res_.get(), row_, i));
        if (n < 2 || v[0] != '\\' || v[1] != 'x')  // not bytea's hex form: the text's bytes
            return Bytes(v, v + n);
        Bytes out;
        out.reserve((n - 2) / 2);
        for (size_t k = 2; k + 1 < n; k += 2)
            out.push_back(static_cast<uint8_t>(hex_value(v[k]) * 16 + hex_value(v[k + 1])));
        return out;
    }
    void stream() override { stream_next_ = true; }
    void reset() noexcept override {
        if (streaming_) finish_stream();
        stream_next_ = false;
        res_.reset();
        rows_ = row_ = 0;
        std::fill(is_null_.begin(), is_null_.end(), true);
        bind_error_.clear();
    }

private:
    bool valid(int i) {
        if (i >= 1 && static_cast<size_t>(i) <= values_.size()) return true;
        bind_error_ = "parameter " + std::to_string(i) + " out of range in: " + text_;
        return false;
    }
    void set(int i, std::string v, bool binary) {
        if (!valid(i)) return;
        const auto k = static_cast<size_t>(i - 1);
        values_[k] = std::move(v);
        is_null_[k] = false;
        binary_[k] = binary ? 1 : 0;
    }

    PgConnection& conn_;
    std::string name_, text_;
    std::vector<std::string> values_;
    std::vector<bool> is_null_;
    std::vector<int> binary_;
    // A scan in single-row mode: the next row, or false at its end.
    Result<bool> next_row();
    // Reads what is left of a scan (to the end of its result), so the connection is free.
    void finish_stream() noexcept;

    std::string bind_error_;
    const bool writes_only_;  // no rows: may be sent ahead in a pipeline
    bool stream_next_ = false, streaming_ = false;
    ResultPtr res_;
    int rows_ = 0, row_ = 0;
};

class PgConnection final : public Connection {
public:
    PgConnection(ConnPtr conn, std::string uri, int lock_timeout_ms)
        : conn_(std::move(conn)), uri_(std::move(uri)), lock_timeout_ms_(lock_timeout_ms) {}

    using Connection::exec;
    Dialect dialect() const noexcept override { return Dialect::kPostgres; }

    Result<Statement*> prepare(const char* sql) override {
        WP_RETURN_IF_ERROR(flush());
        WP_RETURN_IF_ERROR(usable());
        auto it = cache_.find(sql);
        if (it != cache_.end()) return static_cast<Statement*>(it->second.get());
        int params = 0;
        std::string text = translate(sql, params);
        std::string name = "wp" + std::to_string(++names_);
        ResultPtr r(PQprepare(conn_.get(), name.c_str(), text.c_str(), 0, nullptr));
        if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) return error(r.get(), "preparing " + text);
        it = cache_.emplace(sql, std::make_unique<PgStatement>(*this, name, text, params)).first;
        return static_cast<Statement*>(it->second.get());
    }

    Status exec(const char* sql) override {
        WP_RETURN_IF_ERROR(flush());
        WP_RETURN_IF_ERROR(usable());
        ResultPtr r(PQexec(conn_.get(), sql));
        const auto st = PQresultStatus(r.get());
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            return error(r.get(), std::string("in: ") + std::string(sql).substr(0, 60));
        note_changes(r.get());
        return ok_status();
    }

    int64_t changes() const override { return changes_; }

    Status begin(bool write) override {
        // Writers take the ledger's one lock (a transaction-scoped advisory lock: released by
        // COMMIT, ROLLBACK or a lost session) before their first read, like BEGIN IMMEDIATE.
        WP_RETURN_IF_ERROR(exec(write ? "BEGIN ISOLATION LEVEL READ COMMITTED; "
                                        "SELECT pg_advisory_xact_lock(8390432152715462753)"
                                      : "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"));
        in_txn_ = true;
        write_txn_ = write;
        return ok_status();
    }
    Status commit() override {
        // A write that failed in the pipeline fails the commit before COMMIT is sent (the
        // transaction stays open for the ledger's rollback).
        WP_RETURN_IF_ERROR(flush());
        auto st = exec("COMMIT");
        in_txn_ = write_txn_ = false;
        return st;
    }
    void rollback() noexcept override {
        static_cast<void>(flush());  // the answers still owed; their errors no longer matter
        in_txn_ = write_txn_ = false;
        if (PQstatus(conn_.get()) == CONNECTION_OK) ResultPtr(PQexec(conn_.get(), "ROLLBACK"));
    }

    // Sends a write ahead (pipeline mode): its answer is read later.
    Status send_ahead(const char* const* values, const int* lengths, const int* formats, int n,
                      const std::string& name, const std::string& text) {
        if (!pipelining_) {
            if (PQenterPipelineMode(conn_.get()) != 1)
                return error(nullptr, "entering pipeline mode for " + text);
            pipelining_ = true;
        }
        if (PQsendQueryPrepared(conn_.get(), name.c_str(), n, values, lengths, formats, 0) != 1)
            return error(nullptr, "sending " + text);
        pending_.push_back(text);
        changes_ = -1;
        return ok_status();
    }

    // Runs a statement now: alone, or behind the writes sent ahead, in the same round trip.
    Result<ResultPtr> run_now(const char* const* values, const int* lengths, const int* formats,
                              int n, const std::string& name, const std::string& text) {
        if (!pipelining_) {
            ResultPtr r(PQexecPrepared(conn_.get(), name.c_str(), n, values, lengths, formats, 0));
            return r;
        }
        if (PQsendQueryPrepared(conn_.get(), name.c_str(), n, values, lengths, formats, 0) != 1)
            return error(nullptr, "sending " + text);
        pending_.push_back({});  // this statement's own answer, kept below
        ResultPtr mine;
        WP_RETURN_IF_ERROR(sync(&mine));
        return mine;
    }

    // The writes sent ahead answered (pipeline mode left): the first that failed, if any.
    Status flush() override {
        if (!pipelining_) return ok_status();
        return sync(nullptr);
    }

    // A sync behind what was sent, then every answer in order, up to the sync. The last
    // pending entry is the caller's own statement when `mine` is given.
    Status sync(ResultPtr* mine) {
        std::optional<Error> failed;
        if (PQpipelineSync(conn_.get()) != 1) failed = error(nullptr, "pipeline sync");
        for (size_t k = 0; k < pending_.size() && !failed; ++k) {
            ResultPtr r(PQgetResult(conn_.get()));
            if (!r) {
                failed = error(nullptr, "reading the answer to " + pending_[k]);
                break;
            }
            const auto st = PQresultStatus(r.get());
            if (mine != nullptr && k + 1 == pending_.size()) {
                if (st == PGRES_PIPELINE_ABORTED)
                    failed = make_error(ErrorCode::kIo, "postgresql: an earlier write failed");
                else
                    *mine = std::move(r);
            } else if (st != PGRES_COMMAND_OK && st != PGRES_PIPELINE_ABORTED) {
                failed = error(r.get(), "executing " + pending_[k]);
            }
            ResultPtr(PQgetResult(conn_.get()));  // the NULL that ends each answer
        }
        // Everything up to the sync is read even after a failure: the server skipped the rest
        // (PGRES_PIPELINE_ABORTED) and the sync's own result ends it.
        for (;;) {
            ResultPtr r(PQgetResult(conn_.get()));
            if (!r) {
                if (PQstatus(conn_.get()) != CONNECTION_OK) break;
                continue;
            }
            if (PQresultStatus(r.get()) == PGRES_PIPELINE_SYNC) break;
        }
        pending_.clear();
        pipelining_ = false;
        if (PQexitPipelineMode(conn_.get()) != 1 && !failed)
            failed = error(nullptr, "leaving pipeline mode");
        if (failed) return *failed;
        return ok_status();
    }
    bool defers_writes() const { return in_txn_ && write_txn_; }
    bool pipelining() const { return pipelining_; }
    Result<bool> has_table(const char* name) override {
        WP_ASSIGN_OR_RETURN(auto* s, prepare("SELECT 1 FROM pg_catalog.pg_tables WHERE "
                                             "schemaname = current_schema() AND tablename = ?1"));
        Query q(s);
        q.bind(1, name);
        return q.step();
    }

    Status configure() {
        PQsetNoticeProcessor(
            conn_.get(), [](void*, const char*) {}, nullptr);
        // Waiting for another host's write lock: as long as SQLite's busy timeout would.
        return exec("SET client_min_messages = warning; SET lock_timeout = " +
                    std::to_string(lock_timeout_ms_));
    }

    // Every call: the connection must be there, and not lost mid-transaction. Outside a
    // transaction a lost one is replaced (`may_reconnect`: not while a statement of the cache is
    // running, since the prepared statements go with the old session).
    Status usable(bool may_reconnect = true) {
        if (PQstatus(conn_.get()) == CONNECTION_OK) return ok_status();
        if (in_txn_)
            return make_error(ErrorCode::kUnavailable,
                              "postgresql: the connection to " + describe_location(uri_) +
                                  " was lost in the middle of a transaction; the server has "
                                  "discarded it, nothing of it was committed");
        if (!may_reconnect)
            return make_error(ErrorCode::kUnavailable, "postgresql: the connection to " +
                                                           describe_location(uri_) + " was lost");
        cache_.clear();
        PQreset(conn_.get());
        if (PQstatus(conn_.get()) != CONNECTION_OK)
            return make_error(ErrorCode::kUnavailable, "postgresql: reconnecting to " +
                                                           describe_location(uri_) + ": " +
                                                           trimmed(PQerrorMessage(conn_.get())));
        return configure();
    }

    Error error(const PGresult* r, const std::string& context) {
        const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
        const std::string code = state != nullptr ? state : "";
        std::string msg = trimmed(r != nullptr && PQresultErrorMessage(r)[0] != '\0'
                                      ? PQresultErrorMessage(r)
                                      : PQerrorMessage(conn_.get()));
        ErrorCode ec = ErrorCode::kIo;
        if (PQstatus(conn_.get()) != CONNECTION_OK || code.rfind("08", 0) == 0 ||
            code.rfind("57P", 0) == 0)
            ec = ErrorCode::kUnavailable;  // the connection or the server went away
        else if (code.rfind("40", 0) == 0 || code == "55P03" || code.rfind("53", 0) == 0)
            ec = ErrorCode::kResourceExhausted;  // lock timeout, deadlock, server out of room
        return make_error(ec, "postgresql: " + msg + (code.empty() ? "" : " [" + code + "]") +
                                  " (" + context + ")");
    }
    void note_changes(const PGresult* r) {
        const char* n = PQcmdTuples(const_cast<PGresult*>(r));
        changes_ = 0;
        if (n != nullptr) std::from_chars(n, n + std::strlen(n), changes_);
    }
    PGconn* raw() const { return conn_.get(); }

private:
    ConnPtr conn_;
    std::string uri_;
    // By SQL text; std::less<> finds a caller's const char* without building a string each call.
    std::map<std::string, std::unique_ptr<PgStatement>, std::less<>> cache_;
    uint64_t names_ = 0;
    int64_t changes_ = 0;
    bool in_txn_ = false;
    bool write_txn_ = false;
    bool pipelining_ = false;
    std::vector<std::string> pending_;  // statements sent ahead whose answers are owed
    int lock_timeout_ms_;
};

Result<bool> PgStatement::step() {
    if (streaming_) return next_row();
    if (res_) return ++row_ < rows_;
    if (!bind_error_.empty()) return make_error(ErrorCode::kInternal, "postgresql: " + bind_error_);
    WP_RETURN_IF_ERROR(conn_.usable(false));
    const size_t n = values_.size();
    std::vector<const char*> values(n);
    std::vector<int> lengths(n);
    for (size_t k = 0; k < n; ++k) {
        values[k] = is_null_[k] ? nullptr : values_[k].data();
        lengths[k] = static_cast<int>(values_[k].size());
    }
    if (writes_only_ && conn_.defers_writes()) {
        WP_RETURN_IF_ERROR(conn_.send_ahead(values.data(), lengths.data(), binary_.data(),
                                            static_cast<int>(n), name_, text_));
        return false;
    }
    if (stream_next_ && !conn_.pipelining()) {
        if (PQsendQueryPrepared(conn_.raw(), name_.c_str(), static_cast<int>(n), values.data(),
                                lengths.data(), binary_.data(), 0) != 1)
            return conn_.error(nullptr, "sending " + text_);
        streaming_ = true;
        if (PQsetSingleRowMode(conn_.raw()) != 1) {
            finish_stream();
            return conn_.error(nullptr, "single-row mode for " + text_);
        }
        return next_row();
    }
    WP_ASSIGN_OR_RETURN(res_, conn_.run_now(values.data(), lengths.data(), binary_.data(),
                                            static_cast<int>(n), name_, text_));
    const auto st = PQresultStatus(res_.get());
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        auto e = conn_.error(res_.get(), "executing " + text_);
        res_.reset();
        return e;
    }
    conn_.note_changes(res_.get());
    rows_ = PQntuples(res_.get());
    row_ = 0;
    return rows_ > 0;
}

Result<bool> PgStatement::next_row() {
    res_.reset(PQgetResult(conn_.raw()));
    if (!res_) {  // the connection went away mid-scan
        streaming_ = false;
        return conn_.error(nullptr, "reading " + text_);
    }
    switch (PQresultStatus(res_.get())) {
        case PGRES_SINGLE_TUPLE:
            rows_ = 1;
            row_ = 0;
            return true;
        case PGRES_TUPLES_OK:  // the end (no row in it)
            res_.reset();
            finish_stream();
            return false;
        default: {
            auto e = conn_.error(res_.get(), "reading " + text_);
            res_.reset();
            finish_stream();
            return e;
        }
    }
}

void PgStatement::finish_stream() noexcept {
    while (ResultPtr(PQgetResult(conn_.raw()))) {}
    streaming_ = false;
}

}  // namespace

Result<std::unique_ptr<Connection>> connect_postgres(const std::string& uri, int lock_timeout_ms) {
    ConnPtr conn(PQconnectdb(uri.c_str()));
    if (!conn || PQstatus(conn.get()) != CONNECTION_OK)
        return make_error(ErrorCode::kUnavailable,
                          "ledger " + describe_location(uri) + ": cannot connect to PostgreSQL: " +
                              trimmed(conn ? PQerrorMessage(conn.get()) : "out of memory"));
    auto c = std::make_unique<PgConnection>(std::move(conn), uri, lock_timeout_ms);
    WP_RETURN_IF_ERROR(c->configure());
    return std::unique_ptr<Connection>(std::move(c));
}

}  // namespace waferprov::host::sql
