// The store the ledger tests run against. By default SQLite files; registered a second time
// with WAFERPROV_TEST_STORE=postgresql (host/ledger/CMakeLists.txt), the same tests run against
// PostgreSQL: each ledger path a test names stands for its own database on one private server
// (waferprov::testing::PostgresServer, started by the first test that needs it, stopped at
// exit), with the anchor file where SQLite's would be (`<path>.anchor`).
#pragma once

#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "waferprov/host/ledger.hpp"
#include "waferprov/testing/postgres.hpp"

namespace waferprov::host::testing {

inline bool on_postgres() {
    const char* v = std::getenv("WAFERPROV_TEST_STORE");
    return v != nullptr && std::string(v) == "postgresql";
}

// The server and the databases the paths stand for.
struct PostgresStore {
    std::mutex mu;
    std::unique_ptr<waferprov::testing::PostgresServer> server;
    std::map<std::filesystem::path, std::string> databases;  // path -> database name

    static PostgresStore& get() {
        static PostgresStore store;
        return store;
    }
    waferprov::testing::PostgresServer& started() {
        if (!server) {
            auto s = waferprov::testing::PostgresServer::start();
            if (!s.ok()) {
                ADD_FAILURE() << s.error().describe();
                std::abort();
            }
            server = std::move(*s);
        }
        return *server;
    }
    // The database `p` stands for, created on first use.
    std::string database(const std::filesystem::path& p) {
        std::lock_guard lock(mu);
        auto& srv = started();
        auto it = databases.find(p);
        if (it != databases.end()) return it->second;
        const std::string name = "ledger" + std::to_string(databases.size() + 1);
        auto st = srv.create_database(name);
        EXPECT_TRUE(st.ok()) << st.error().describe();
        databases.emplace(p, name);
        return name;
    }
};

// Where the ledger `p` is: the path itself, or its database's URL.
inline std::filesystem::path location(const std::filesystem::path& p) {
    if (!on_postgres()) return p;
    auto& store = PostgresStore::get();
    const std::string db = store.database(p);
    return store.server->url(db);
}

inline Result<std::unique_ptr<Ledger>> open_ledger(const std::filesystem::path& p,
                                                   LedgerConfig config) {
    if (on_postgres() && config.anchor_file.empty()) config.anchor_file = p.string() + ".anchor";
    return Ledger::open(location(p), config);
}

inline Result<std::unique_ptr<Ledger>> open_existing_ledger(const std::filesystem::path& p) {
    return Ledger::open_existing(location(p));
}

// The ledger's verify(), comparing with the anchor file where SQLite's would be.
inline VerifyOptions verify_options(const std::filesystem::path& p, VerifyOptions o = {}) {
    if (on_postgres() && o.anchor_file.empty()) o.anchor_file = p.string() + ".anchor";
    return o;
}

// SQLite's words in a tampering test's SQL, in PostgreSQL's: x'..' blobs, zeroblob(n).
inline std::string postgres_sql(const std::string& sql) {
    std::string s = std::regex_replace(sql, std::regex("x'([0-9a-fA-F]*)'"), "'\\x$1'::bytea");
    return std::regex_replace(s, std::regex("zeroblob\\(([0-9]+)\\)"),
                              "decode(repeat('00', $1), 'hex')");
}

// Runs `sql` on the ledger behind its back (a tampering test's edit) with the store's own tool:
// SQLITE_OK, or the code of what refused it (for PostgreSQL: SQLITE_CONSTRAINT for a constraint
// it violates, else SQLITE_ERROR; the message goes to standard error). `unguarded`: the event log's
// append-only triggers are switched off first.
inline int raw_sql(const std::filesystem::path& p, const std::string& sql, bool unguarded = false) {
    if (on_postgres()) {
        auto& store = PostgresStore::get();
        const std::string db = store.database(p);
        const std::string all =
            (unguarded ? "ALTER TABLE events DISABLE TRIGGER USER;" : "") + postgres_sql(sql);
        auto r = store.server->psql(db, all);
        if (r.ok()) return SQLITE_OK;
        std::cerr << "raw_sql: " << r.error().describe() << "\n";
        // A constraint's refusal as SQLite names it.
        return r.error().message.find("violates") != std::string::npos ? SQLITE_CONSTRAINT
                                                                       : SQLITE_ERROR;
    }
    sqlite3* db = nullptr;
    int rc = sqlite3_open(p.c_str(), &db);
    const std::string all = (unguarded ? "DROP TRIGGER IF EXISTS events_append_only_update;"
                                         "DROP TRIGGER IF EXISTS events_append_only_delete;"
                                       : "") +
                            sql;
    char* err = nullptr;
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, all.c_str(), nullptr, nullptr, &err);
    if (err != nullptr) std::cerr << "raw_sql: " << err << "\n";
    sqlite3_free(err);
    sqlite3_close(db);
    return rc;
}

// A copy of the ledger `from` (no ledger may have it open) as the ledger `to`.
inline void copy_ledger(const std::filesystem::path& from, const std::filesystem::path& to) {
    if (!on_postgres()) {
        std::filesystem::copy_file(from, to);
        return;
    }
    auto& store = PostgresStore::get();
    const std::string src = store.database(from);
    std::lock_guard lock(store.mu);
    const std::string name = "ledger" + std::to_string(store.databases.size() + 1);
    auto r = store.server->psql("postgres", "CREATE DATABASE " + name + " TEMPLATE " + src);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    store.databases[to] = name;
}

}  // namespace waferprov::host::testing
