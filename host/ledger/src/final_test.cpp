// Final test in the ledger (docs/final-test.md, "Ledger"): the `final_test` table (one row per
// packaged part that was challenged) and the FINAL_CHALLENGE / FINAL_RESULT events. Kept apart
// from ledger.cpp so the sort path (issue, deliver, results) is untouched: a verification
// issues nothing and uses no quota.
//
// The table is created by the first final-test write (CREATE TABLE IF NOT EXISTS in its
// transaction), so ledgers that never see final test keep exactly the sort schema. A part
// provisioned at final test (schema version 5) has its record in `records` with no wafer
// position and a PROVISIONED row here.
#include <map>

#include <nlohmann/json.hpp>

#include "chain.hpp"
#include "ledger_impl.hpp"
#include "waferprov/bytes.hpp"

namespace waferprov::host {

using nlohmann::json;

namespace {

// The final_test table's columns; final_schema() creates it, rebuild_final_table() (the
// migration to version 5) copies an older one into a table with this body.
constexpr const char* kFinalColumns = R"sql( (
    uid         BLOB    PRIMARY KEY CHECK (length(uid) = 16),
    state       TEXT    NOT NULL
                CHECK (state IN ('CHALLENGED', 'VERIFIED', 'FAILED', 'MISMATCH', 'PROVISIONED')),
    lot         TEXT    NOT NULL,
    handler     TEXT    NOT NULL,
    site        INTEGER NOT NULL,
    carrier     TEXT    NOT NULL,
    row         INTEGER NOT NULL,
    col         INTEGER NOT NULL,
    nonce       BLOB    NOT NULL CHECK (length(nonce) = 32),
    session     TEXT    NOT NULL,
    open        INTEGER NOT NULL CHECK (open IN (0, 1)),
    tester      TEXT    NOT NULL,
    bin         TEXT    NOT NULL,
    challenges  INTEGER NOT NULL,
    updated_us  INTEGER NOT NULL
);
)sql";

const std::string& final_schema() {
    static const std::string sql =
        std::string("CREATE TABLE IF NOT EXISTS final_test") + kFinalColumns;
    return sql;
}

#define WP_FINAL_SELECT                                                                        \
    "SELECT uid, state, lot, handler, site, carrier, row, col, nonce, session, open, tester, " \
    "bin, challenges, updated_us FROM final_test "

// Session ids are random 64-bit values: kept as 16 hex digits (JSON integers in the chain are
// signed 64-bit).
std::string session_hex(uint64_t s) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(s));
    return buf;
}

std::optional<FinalState> parse_state(std::string_view s) {
    for (auto st : {FinalState::kChallenged, FinalState::kVerified, FinalState::kFailed,
                    FinalState::kMismatch, FinalState::kProvisioned})
        if (s == to_string(st)) return st;
    return std::nullopt;
}

FinalState state_of(FinalVerdict v) {
    switch (v) {
        case FinalVerdict::kVerified: return FinalState::kVerified;
        case FinalVerdict::kFailed: return FinalState::kFailed;
        case FinalVerdict::kMismatch: return FinalState::kMismatch;
    }
    return FinalState::kFailed;
}

Result<bool> has_final_table(Ledger::Impl& m) { return m.db->has_table("final_test"); }

Result<FinalRecord> row_to_final(const sql::Query& q) {
    FinalRecord r;
    const Bytes uid = q.blob_col(0);
    const Bytes nonce = q.blob_col(8);
    const auto state = parse_state(q.text_col(1));
    if (uid.size() != r.uid.size() || nonce.size() != r.nonce.size() || !state)
        return make_error(ErrorCode::kIntegrityFailure, "ledger: a malformed final_test row");
    std::copy(uid.begin(), uid.end(), r.uid.begin());
    std::copy(nonce.begin(), nonce.end(), r.nonce.begin());
    r.state = *state;
    r.loc.lot = q.text_col(2);
    r.loc.handler = q.text_col(3);
    r.loc.site = static_cast<int>(q.int_col(4));
    r.loc.carrier = q.text_col(5);
    r.loc.row = static_cast<int>(q.int_col(6));
    r.loc.column = static_cast<int>(q.int_col(7));
    r.session = std::stoull(q.text_col(9), nullptr, 16);
    r.open = q.int_col(10) != 0;
    r.tester = q.text_col(11);
    r.bin = q.text_col(12);
    r.challenges = static_cast<uint32_t>(q.int_col(13));
    r.updated_us = q.int_col(14);
    return r;
}

// Reads the row of `uid`; the table must exist.
Result<std::optional<FinalRecord>> final_by_uid(Ledger::Impl& m, const wpid1::Uid& uid) {
    WP_ASSIGN_OR_RETURN(auto* s, m.stmt(WP_FINAL_SELECT "WHERE uid = ?1"));
    sql::Query q(s);
    q.bind_blob(1, uid);
    WP_ASSIGN_OR_RETURN(const bool row, q.step());
    if (!row) return std::optional<FinalRecord>{};
    WP_ASSIGN_OR_RETURN(auto r, row_to_final(q));
    return std::optional<FinalRecord>(std::move(r));
}

Status store_final(Ledger::Impl& m, const FinalRecord& r) {
    WP_ASSIGN_OR_RETURN(
        auto* s,
        m.stmt("INSERT INTO final_test (uid, state, lot, handler, site, carrier, row, col, "
               "nonce, session, open, tester, bin, challenges, updated_us) VALUES (?1, ?2, ?3, "
               "?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) ON CONFLICT (uid) DO "
               "UPDATE SET state = excluded.state, lot = excluded.lot, handler = "
               "excluded.handler, site = excluded.site, carrier = excluded.carrier, row = "
               "excluded.row, col = excluded.col, nonce = excluded.nonce, session = "
               "excluded.session, open = excluded.open, tester = excluded.tester, bin = "
               "excluded.bin, challenges = excluded.challenges, updated_us = "
               "excluded.updated_us"));
    sql::Query q(s);
    q.bind_blob(1, r.uid)
        .bind(2, to_string(r.state))
        .bind(3, r.loc.lot)
        .bind(4, r.loc.handler)
        .bind(5, int64_t{r.loc.site})
        .bind(6, r.loc.carrier)
        .bind(7, int64_t{r.loc.row})
        .bind(8, int64_t{r.loc.column})
        .bind_blob(9, r.nonce)
        .bind(10, session_hex(r.session))
        .bind(11, int64_t{r.open ? 1 : 0})
        .bind(12, r.tester)
        .bind(13, r.bin)
        .bind(14, static_cast<int64_t>(r.challenges))
        .bind(15, r.updated_us);
    return q.run();
}

json final_location_json(const FinalLocation& l) {
    return json{{"lot", l.lot},         {"handler", l.handler}, {"site", l.site},
                {"carrier", l.carrier}, {"row", l.row},         {"column", l.column}};
}

bool valid_location(const FinalLocation& l) {  // see valid_final_location
    return chain::valid_text(l.lot, false) && chain::valid_text(l.handler, false) &&
           chain::valid_text(l.carrier) && l.site >= 0 && l.site <= 65535 && l.row >= -1 &&
           l.row <= 65535 && l.column >= -1 && l.column <= 65535 &&
           (l.carrier.empty() == (l.row == -1)) && (l.row == -1) == (l.column == -1);
}

FinalTransition final_refused(const wpid1::Uid& uid, FinalStatus st, std::string why,
                              std::optional<LedgerRecord> rec = std::nullopt,
                              std::optional<FinalRecord> fin = std::nullopt) {
    return FinalTransition{uid, st, std::move(rec), std::move(fin), std::move(why), false};
}

}  // namespace

const char* to_string(FinalState s) noexcept {
    switch (s) {
        case FinalState::kChallenged: return "CHALLENGED";
        case FinalState::kVerified: return "VERIFIED";
        case FinalState::kFailed: return "FAILED";
        case FinalState::kMismatch: return "MISMATCH";
        case FinalState::kProvisioned: return "PROVISIONED";
    }
    return "?";
}

const char* to_string(FinalStatus s) noexcept {
    switch (s) {
        case FinalStatus::kOk: return "ok";
        case FinalStatus::kUnknownUid: return "unknown UID";
        case FinalStatus::kNotProgrammed: return "not programmed at sort";
        case FinalStatus::kVoided: return "voided";
        case FinalStatus::kChallengeRefused: return "challenge refused";
        case FinalStatus::kInvalidArgument: return "invalid argument";
    }
    return "?";
}

Result<std::vector<FinalTransition>> Ledger::open_challenges(std::span<const FinalChallenge> items,
                                                             uint64_t session,
                                                             const std::string& tester) {
    std::vector<FinalTransition> out;
    Impl& m = *impl_;
    // Through the group committer, like deliver() and mark_results(): one transaction with
    // whatever else is queued, this request under its own savepoint.
    auto apply = [&](WriteState& ws) -> Status {
        out.clear();
        WP_RETURN_IF_ERROR(m.ensure_final_table());
        for (const auto& it : items) {
            const auto& uid = it.uid;
            if (!chain::valid_text(tester) || !valid_location(it.loc)) {
                out.push_back(
                    final_refused(uid, FinalStatus::kInvalidArgument,
                                  "tester id, lot, handler or carrier is not printable "
                                  "ASCII, or the site or carrier position is out of range"));
                continue;
            }
            WP_ASSIGN_OR_RETURN(auto rec, m.by_uid(uid));
            if (!rec) {
                out.push_back(
                    final_refused(uid, FinalStatus::kUnknownUid,
                                  "UID " + to_hex(uid) + " was never provisioned by this job"));
                continue;
            }
            if (rec->state == DieState::kVoid) {
                out.push_back(final_refused(uid, FinalStatus::kVoided,
                                            "UID " + to_hex(uid) + " is VOID: " + rec->void_reason,
                                            rec));
                continue;
            }
            if (rec->state != DieState::kProgrammed) {
                out.push_back(final_refused(uid, FinalStatus::kNotProgrammed,
                                            "UID " + to_hex(uid) + " is " + to_string(rec->state) +
                                                " at sort, not PROGRAMMED",
                                            rec));
                continue;
            }
            WP_ASSIGN_OR_RETURN(auto prev, final_by_uid(m, uid));
            FinalRecord r;
            if (prev) r = std::move(*prev);
            r.uid = uid;
            // A part seen again keeps its verdict until it answers the new challenge; a part never
            // answered stays CHALLENGED.
            if (!prev) r.state = FinalState::kChallenged;
            r.loc = it.loc;
            r.nonce = it.nonce;
            r.session = session;
            r.open = true;
            r.tester = tester;
            ++r.challenges;
            r.updated_us = ws.now;
            WP_RETURN_IF_ERROR(store_final(m, r));
            WP_RETURN_IF_ERROR(m.append_event(ws,
                                              json{{"uid", to_hex(uid)},
                                                   {"challenge", to_hex(it.nonce)},
                                                   {"session", session_hex(session)},
                                                   {"tester", tester},
                                                   {"location", final_location_json(it.loc)}},
                                              "FINAL_CHALLENGE", uid));
            out.push_back(FinalTransition{uid, FinalStatus::kOk, std::move(rec), std::move(r), "",
                                          prev.has_value()});
        }
        return ok_status();
    };
    WP_RETURN_IF_ERROR(m.group.run(apply));
    return out;
}

Result<std::vector<FinalTransition>> Ledger::record_final_results(
    std::span<const FinalResult> items, uint64_t session, const std::string& tester) {
    std::vector<FinalTransition> out;
    Impl& m = *impl_;
    // Through the group committer, like deliver() and mark_results(): one transaction with
    // whatever else is queued, this request under its own savepoint.
    auto apply = [&](WriteState& ws) -> Status {
        out.clear();
        WP_RETURN_IF_ERROR(m.ensure_final_table());
        for (const auto& it : items) {
            const auto& uid = it.uid;
            if (!chain::valid_text(tester) || !chain::valid_text(it.bin)) {
                out.push_back(final_refused(uid, FinalStatus::kInvalidArgument,
                                            "tester id or bin is not printable ASCII"));
                continue;
            }
            WP_ASSIGN_OR_RETURN(auto rec, m.by_uid(uid));
            WP_ASSIGN_OR_RETURN(auto fin, final_by_uid(m, uid));
            if (!rec || !fin) {
                out.push_back(final_refused(uid, FinalStatus::kChallengeRefused,
                                            "no challenge was issued for UID " + to_hex(uid), rec));
                continue;
            }
            const bool same_challenge = fin->nonce == it.nonce && fin->session == session;
            if (!same_challenge || !fin->open) {
                out.push_back(final_refused(
                    uid, FinalStatus::kChallengeRefused,
                    std::string("UID ") + to_hex(uid) + ": " +
                        (!fin->open && same_challenge
                             ? std::string("its challenge was already answered (single use); its "
                                           "verdict ") +
                                   to_string(fin->state) + " stands"
                         : fin->session != session ? "its open challenge belongs to another session"
                                                   : "the answer is not for its open challenge"),
                    rec, fin));
                continue;
            }
            FinalRecord r = std::move(*fin);
            r.state = state_of(it.verdict);
            r.open = false;
            r.bin = it.bin;
            r.tester = tester;
            r.updated_us = ws.now;
            WP_RETURN_IF_ERROR(store_final(m, r));
            WP_RETURN_IF_ERROR(m.append_event(ws,
                                              json{{"uid", to_hex(uid)},
                                                   {"challenge", to_hex(it.nonce)},
                                                   {"session", session_hex(session)},
                                                   {"tester", tester},
                                                   {"outcome", to_string(r.state)},
                                                   {"bin", it.bin}},
                                              "FINAL_RESULT", uid));
            if (it.verdict == FinalVerdict::kMismatch) {
                const json where = chain::location_json(rec->uid, rec->loc, rec->serial);
                WP_RETURN_IF_ERROR(m.append_event(ws,
                                                  json{{"reason", "final-test-signature-mismatch"},
                                                       {"tester", tester},
                                                       {"offered", where},
                                                       {"existing", where}},
                                                  "ALARM", std::nullopt));
            }
            out.push_back(
                FinalTransition{uid, FinalStatus::kOk, std::move(rec), std::move(r), "", false});
        }
        return ok_status();
    };
    WP_RETURN_IF_ERROR(m.group.run(apply));
    return out;
}

Result<std::optional<FinalRecord>> Ledger::find_final(const wpid1::Uid& uid) {
    std::lock_guard lock(impl_->mu);
    Impl& m = *impl_;
    WP_ASSIGN_OR_RETURN(const bool table, has_final_table(m));
    if (!table) return std::optional<FinalRecord>{};
    return final_by_uid(m, uid);
}

Result<std::vector<FinalRecord>> Ledger::list_final() {
    std::lock_guard lock(impl_->mu);
    Impl& m = *impl_;
    std::vector<FinalRecord> out;
    WP_ASSIGN_OR_RETURN(const bool table, has_final_table(m));
    if (!table) return out;
    WP_ASSIGN_OR_RETURN(auto* s, m.stmt(WP_FINAL_SELECT "ORDER BY uid"));
    sql::Query q(s);
    for (;;) {
        WP_ASSIGN_OR_RETURN(const bool row, q.step());
        if (!row) break;
        WP_ASSIGN_OR_RETURN(auto r, row_to_final(q));
        out.push_back(std::move(r));
    }
    return out;
}

Status verify_final_table(Ledger::Impl& m, chain::Replayer& rp) {
    std::map<wpid1::Uid, bool> seen;
    WP_ASSIGN_OR_RETURN(const bool table, has_final_table(m));
    if (table) {
        WP_ASSIGN_OR_RETURN(auto* s, m.stmt(WP_FINAL_SELECT "ORDER BY uid"));
        sql::Query q(s);
        for (;;) {
            WP_ASSIGN_OR_RETURN(const bool row, q.step());
            if (!row) break;
            auto r = row_to_final(q);
            if (!r.ok()) {
                rp.problem(r.error().message);
                continue;
            }
            const std::string who = "final-test row UID " + to_hex(r->uid);
            auto it = rp.finals().find(r->uid);
            if (it == rp.finals().end()) {
                rp.problem(who + " has no FINAL_CHALLENGE event");
                continue;
            }
            seen[r->uid] = true;
            if (!(it->second == *r))
                rp.problem(who + " differs from the event log (state " + to_string(r->state) +
                           ", the events say " + to_string(it->second.state) + ")");
        }
    }
    for (const auto& [uid, f] : rp.finals())
        if (seen.count(uid) == 0)
            rp.problem("final-test UID " + to_hex(uid) +
                       " is in the event log but missing from the final_test table");
    return ok_status();
}

Status valid_final_location(const FinalLocation& l) {
    if (valid_location(l)) return ok_status();
    return make_error(ErrorCode::kInvalidArgument,
                      "final-test location: lot, handler or carrier is not printable ASCII, or "
                      "the site or carrier position is out of range");
}

Status Ledger::Impl::rebuild_final_table() {
    WP_ASSIGN_OR_RETURN(const bool table, has_final_table(*this));
    if (!table) return ok_status();
    const std::string sql = std::string("CREATE TABLE final_test_v5") + kFinalColumns +
                            "INSERT INTO final_test_v5 " WP_FINAL_SELECT
                            ";"
                            "DROP TABLE final_test;"
                            "ALTER TABLE final_test_v5 RENAME TO final_test;";
    return db->exec(sql.c_str());
}

Status Ledger::Impl::ensure_final_table() {
    // A PostgreSQL ledger has the table from the start (create_schema).
    if (db->dialect() == sql::Dialect::kPostgres) return ok_status();
    return db->exec(final_schema());
}

Status create_final_table(Ledger::Impl& m) {
    return m.db->exec(sql::ddl(m.db->dialect(), final_schema()));
}

Status Ledger::Impl::provision_final_row(WriteState& ws, const wpid1::Uid& uid,
                                         const FinalLocation& loc, const std::string& tester) {
    WP_ASSIGN_OR_RETURN(auto prev, final_by_uid(*this, uid));
    if (prev)
        return make_error(ErrorCode::kIntegrityFailure,
                          "ledger: UID " + to_hex(uid) +
                              " was issued just now but final test has a record of it");
    FinalRecord r;
    r.uid = uid;
    r.state = FinalState::kProvisioned;
    r.loc = loc;
    r.tester = tester;
    r.updated_us = ws.now;
    WP_RETURN_IF_ERROR(store_final(*this, r));
    return append_event(
        ws, json{{"uid", to_hex(uid)}, {"tester", tester}, {"location", final_location_json(loc)}},
        "FINAL_PROVISION", uid);
}

}  // namespace waferprov::host
