// The ledger's records and transitions: identities recorded (quota, retests, alarms), delivered,
// given results and voided; lookups. Opening is open.cpp, verifying verify.cpp, the stores
// store_*.cpp.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <ctime>
#include <set>
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

namespace {

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
        q.stream();                   // a scan: rows one at a time
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
        q.stream();  // a scan: rows one at a time
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

// ---- the tester link's delivery cap -------------------------------------------------------

Result<Ledger::DeliveryTally> Ledger::delivery_tally() {
    std::lock_guard lock(impl_->mu);
    WP_ASSIGN_OR_RETURN(auto txn, Txn::begin(*impl_->db, false));
    DeliveryTally out;
    {
        WP_ASSIGN_OR_RETURN(auto* s,
                            impl_->stmt("SELECT payload FROM events WHERE type = 'DELIVER'"));
        sql::Query q(s);
        q.stream();  // a scan: rows one at a time
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
        q.stream();  // a scan: rows one at a time
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
