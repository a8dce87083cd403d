// Ledger::migrate (the schema migrations, versions 2 to 5), apart from ledger.cpp: each step in
// the caller's one transaction; docs/ledger.md "Migrating a ledger ...".
#include <map>

#include <nlohmann/json.hpp>

#include "chain.hpp"
#include "ledger_impl.hpp"

namespace waferprov::host {

using nlohmann::json;

// ---- migrate --------------------------------------------------------------------------------

Result<MigrateReport> Ledger::migrate(const std::filesystem::path& location,
                                      const std::vector<WaferSubstrate>& wafers,
                                      int busy_timeout_ms) {
    if (sql::is_postgres_location(location.string()))
        return make_error(ErrorCode::kInvalidArgument,
                          "ledger " + sql::describe_location(location.string()) +
                              ": a PostgreSQL ledger starts at schema version " +
                              std::to_string(chain::kSchemaVersion) + ": nothing to migrate");
    const std::filesystem::path path = sql::sqlite_path_of(location.string());
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
        return make_error(ErrorCode::kNotFound, "ledger " + path.string() + " does not exist");
    WP_ASSIGN_OR_RETURN(auto impl, connect_writable(path, false, busy_timeout_ms));
    Ledger::Impl& m = *impl;
    WP_ASSIGN_OR_RETURN(auto txn, Txn::begin(*m.db, true));
    WP_ASSIGN_OR_RETURN(const bool exists, m.db->has_table("job"));
    if (!exists)
        return make_error(ErrorCode::kInvalidArgument,
                          path.string() + " is not a waferprov ledger");
    int64_t version = -1;
    bool has_version = false;
    {
        // Read and reset before any migration step: SQLite cannot drop a table (the version-5
        // rebuild) while a statement is still stepping.
        WP_ASSIGN_OR_RETURN(auto* s, m.stmt("SELECT version FROM schema_version"));
        sql::Query q(s);
        WP_ASSIGN_OR_RETURN(has_version, q.step());
        version = has_version ? q.int_col(0) : -1;
    }
    {
        if (version == chain::kSchemaVersion)
            return make_error(ErrorCode::kInvalidArgument,
                              "ledger " + path.string() + " is already schema version " +
                                  std::to_string(chain::kSchemaVersion) + ": nothing to migrate");
        if (version == chain::kPerDieDeliverSchemaVersion ||
            version == chain::kWaferOnlySchemaVersion) {
            if (!wafers.empty())
                return make_error(ErrorCode::kInvalidArgument,
                                  "ledger " + path.string() + " is schema version " +
                                      std::to_string(version) +
                                      ": its wafers have their substrate ids already, so its "
                                      "migration takes no maps");
            MigrateReport report;
            report.from_version = static_cast<int>(version);
            if (version == chain::kPerDieDeliverSchemaVersion)
                WP_RETURN_IF_ERROR(m.migrate_3_to_4(report));
            WP_RETURN_IF_ERROR(m.migrate_4_to_5(report));
            WP_RETURN_IF_ERROR(txn.commit());
            return report;
        }
        if (version != chain::kLegacySchemaVersion)
            return make_error(ErrorCode::kUnsupported,
                              "ledger " + path.string() + ": schema version " +
                                  (has_version ? std::to_string(version) : "missing") +
                                  " cannot be migrated (only versions 2, 3 and 4 can)");
    }
    // The substrate id of every wafer the ledger holds, from the maps given; nothing is written
    // unless every wafer has exactly one and no substrate id names two wafers.
    std::map<std::pair<std::string, int>, std::string> given;
    std::map<std::string, std::pair<std::string, int>> owner;
    for (const auto& w : wafers) {
        if (!chain::valid_text(w.substrate, false))
            return make_error(ErrorCode::kInvalidArgument,
                              w.lot + " wafer " + std::to_string(w.wafer) +
                                  ": the substrate id must be 1..256 printable ASCII characters");
        auto [it, fresh] = given.emplace(std::pair{w.lot, w.wafer}, w.substrate);
        if (!fresh && it->second != w.substrate)
            return make_error(ErrorCode::kInvalidArgument,
                              w.lot + " wafer " + std::to_string(w.wafer) +
                                  " is given two substrate ids ('" + it->second + "' and '" +
                                  w.substrate + "'): nothing was changed");
        auto [o, new_id] = owner.emplace(w.substrate, std::pair{w.lot, w.wafer});
        if (!new_id && o->second != std::pair{w.lot, w.wafer})
            return make_error(ErrorCode::kInvalidArgument,
                              "substrate '" + w.substrate + "' is given for " + o->second.first +
                                  " wafer " + std::to_string(o->second.second) + " and " + w.lot +
                                  " wafer " + std::to_string(w.wafer) + ": nothing was changed");
    }
    MigrateReport report;
    json list = json::array();
    {
        WP_ASSIGN_OR_RETURN(auto* s, m.stmt("SELECT lot, wafer, count(*) FROM records GROUP BY "
                                            "lot, wafer ORDER BY lot, wafer"));
        sql::Query q(s);
        std::string missing;
        for (;;) {
            WP_ASSIGN_OR_RETURN(const bool row, q.step());
            if (!row) break;
            const std::string lot = q.text_col(0);
            const int wafer = static_cast<int>(q.int_col(1));
            auto it = given.find({lot, wafer});
            if (it == given.end()) {
                missing += (missing.empty() ? "" : ", ") + lot + " wafer " + std::to_string(wafer);
                continue;
            }
            report.wafers.push_back(WaferSubstrate{lot, wafer, it->second});
            report.records += static_cast<uint64_t>(q.int_col(2));
            list.push_back(json{{"lot", lot}, {"wafer", wafer}, {"substrate", it->second}});
        }
        if (!missing.empty())
            return make_error(ErrorCode::kInvalidArgument,
                              "ledger " + path.string() + ": no map was given for " + missing +
                                  " (give each wafer's map with --map): nothing was changed");
    }
    WP_RETURN_IF_ERROR(
        m.db->exec("ALTER TABLE records ADD COLUMN substrate TEXT NOT NULL "
                   "DEFAULT '';"
                   "ALTER TABLE records ADD COLUMN site INTEGER NOT NULL "
                   "DEFAULT -1;"
                   "CREATE TABLE wafers (lot TEXT NOT NULL, wafer INTEGER NOT NULL, "
                   "substrate TEXT NOT NULL, PRIMARY KEY (lot, wafer));"
                   "CREATE UNIQUE INDEX wafers_substrate ON wafers (substrate) "
                   "WHERE substrate != '';"));
    for (const auto& w : report.wafers) {
        WP_ASSIGN_OR_RETURN(
            auto* s, m.stmt("UPDATE records SET substrate = ?3 WHERE lot = ?1 AND wafer = ?2"));
        sql::Query q(s);
        q.bind(1, w.lot).bind(2, w.wafer).bind(3, w.substrate);
        WP_RETURN_IF_ERROR(q.run());
        WP_RETURN_IF_ERROR(m.bind_wafer(DieLocation{w.lot, w.wafer, 0, 0, w.substrate}));
    }
    WP_ASSIGN_OR_RETURN(WriteState ws, m.load_write_state());
    WP_RETURN_IF_ERROR(m.append_event(ws,
                                      json{{"from_format", chain::kLegacyLedgerFormat},
                                           {"to_format", chain::kPerDieDeliverFormat},
                                           {"wafers", std::move(list)}},
                                      "MIGRATE", std::nullopt));
    WP_RETURN_IF_ERROR(m.store_write_state(ws));
    report.from_version = chain::kLegacySchemaVersion;
    // Then on to this version, in the same transaction: a file is never left half-way.
    WP_RETURN_IF_ERROR(m.migrate_3_to_4(report));
    WP_RETURN_IF_ERROR(m.migrate_4_to_5(report));
    WP_RETURN_IF_ERROR(txn.commit());
    return report;
}

Status Ledger::Impl::migrate_3_to_4(MigrateReport& report) {
    // Nothing in the tables changes: from here on a touchdown's deliveries are one DELIVER event.
    // The MIGRATE event marks where in the chain that starts, so that verify() replays the
    // per-die DELIVER events before it and the per-touchdown ones after it.
    WP_ASSIGN_OR_RETURN(WriteState ws, load_write_state());
    WP_RETURN_IF_ERROR(append_event(
        ws,
        json{{"from_format", chain::kPerDieDeliverFormat}, {"to_format", chain::kWaferOnlyFormat}},
        "MIGRATE", std::nullopt));
    WP_RETURN_IF_ERROR(store_write_state(ws));
    WP_RETURN_IF_ERROR(db->exec(
        ("UPDATE schema_version SET version = " + std::to_string(chain::kWaferOnlySchemaVersion))
            .c_str()));
    report.to_version = chain::kWaferOnlySchemaVersion;
    return ok_status();
}

// After "CREATE TABLE records_v5" + kRecordsColumns (version 5's records: nullable wafer
// position): every row copied into it, and it takes the old table's name.
constexpr const char* kRecordsCopy = R"sql(;
INSERT INTO records_v5 (id, uid, lot, wafer, x, y, serial, public_key, wrapped_key, certificate,
    state, issued_us, delivered_us, result_us, updated_us, tester, bin, reissues, void_reason,
    substrate, site)
  SELECT id, uid, lot, wafer, x, y, serial, public_key, wrapped_key, certificate, state,
    issued_us, delivered_us, result_us, updated_us, tester, bin, reissues, void_reason,
    substrate, site FROM records;
DROP TABLE records;
ALTER TABLE records_v5 RENAME TO records;
)sql";

Status Ledger::Impl::migrate_4_to_5(MigrateReport& report) {
    // SQLite cannot relax NOT NULL in place: the records table is rebuilt with the same rows and
    // ids (so the export, verify and every record keep their order), and a final_test table, if
    // final test ever ran, is rebuilt to allow PROVISIONED rows. The events are not touched;
    // the MIGRATE event marks where packaged parts may start.
    WP_RETURN_IF_ERROR(db->exec(
        sql::ddl(sql::Dialect::kSqlite, std::string("CREATE TABLE records_v5") + kRecordsColumns) +
        kRecordsCopy));
    WP_RETURN_IF_ERROR(rebuild_final_table());
    WP_ASSIGN_OR_RETURN(WriteState ws, load_write_state());
    WP_RETURN_IF_ERROR(append_event(
        ws, json{{"from_format", chain::kWaferOnlyFormat}, {"to_format", chain::kLedgerFormat}},
        "MIGRATE", std::nullopt));
    WP_RETURN_IF_ERROR(store_write_state(ws));
    WP_RETURN_IF_ERROR(db->exec(
        ("UPDATE schema_version SET version = " + std::to_string(chain::kSchemaVersion)).c_str()));
    report.to_version = chain::kSchemaVersion;
    return ok_status();
}

}  // namespace waferprov::host
