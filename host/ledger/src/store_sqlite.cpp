// The SQLite store's side of the ledger: connections to the file (for writing, read-only,
// immutable on read-only media), SQLite's own integrity check, and the write-ahead log's
// checkpoints. The statements themselves go through sqlite.hpp like any store's (store.hpp).
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "ledger_impl.hpp"

namespace waferprov::host {

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

}  // namespace

// SQLite's own check of the file: "ok", or what is wrong (at most `limit` lines).
Result<std::vector<std::string>> integrity_problems(sqlite3* db, bool quick, int limit) {
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

}  // namespace waferprov::host
