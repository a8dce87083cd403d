// Ledger::verify: the chain replayed from the events table against the records, the final-test
// rows and the job row, then against the heads held elsewhere (the anchor, the token, the
// customer's).
#include <map>

#include "ledger_impl.hpp"

namespace waferprov::host {

using nlohmann::json;

// ---- verify ---------------------------------------------------------------------------------

namespace {

// One Ledger::verify(): the file's own check, the chain replayed from the events table, the
// records table and the job row against it, then the heads held elsewhere (the anchor, the
// token, the customer's) against the recomputed chain. Problems collect in the replayer.
struct LedgerVerification {
    Ledger::Impl& m;
    chain::Replayer rp;
    VerifyReport rep;
    // The recomputed hash at the events the anchor, the token and the customer's head name.
    std::map<uint64_t, chain::Hash> wanted;
    std::optional<chain::Hash> genesis;

    Status check_schema() {
        WP_ASSIGN_OR_RETURN(auto* s, m.stmt("SELECT version FROM schema_version"));
        sql::Query q(s);
        WP_ASSIGN_OR_RETURN(const bool row, q.step());
        if (!row || q.int_col(0) != chain::kSchemaVersion) rp.problem("schema version altered");
        return ok_status();
    }

    // The events in order: no gap, the indexed columns agree with the payload the chain covers,
    // and each hash recomputes.
    Status replay_events() {
        WP_ASSIGN_OR_RETURN(auto* s, m.stmt("SELECT seq, type, uid, time_us, payload, hash FROM "
                                            "events ORDER BY seq"));
        sql::Query q(s);
        q.stream();  // a scan: rows one at a time
        for (;;) {
            WP_ASSIGN_OR_RETURN(const bool row, q.step());
            if (!row) break;
            const auto seq = static_cast<uint64_t>(q.int_col(0));
            const std::string where = "event row seq " + std::to_string(seq);
            if (seq != rp.events() + 1)
                rp.problem(where + ": expected seq " + std::to_string(rp.events() + 1) +
                           " (events deleted or inserted)");
            const std::string payload = q.text_col(4);
            chain::Hash stored{};
            if (!copy_fixed(q.blob_col(5), stored)) rp.problem(where + ": malformed hash");
            try {
                const json j = json::parse(payload);
                const std::string uid_col = q.is_null(2) ? "" : to_hex(q.blob_col(2));
                const std::string uid_ev = j.value("uid", "");
                if (j.value("type", "") != q.text_col(1) ||
                    j.value("time", int64_t{0}) != q.int_col(3) || uid_col != uid_ev)
                    rp.problem(where + ": type/uid/time columns differ from the event payload");
            } catch (const json::exception&) {
                // The replayer reports the malformed payload.
            }
            rp.apply(payload, stored);
            if (rp.events() == 1) genesis = rp.head();
            if (auto w = wanted.find(rp.events()); w != wanted.end()) w->second = rp.head();
        }
        return ok_status();
    }

    // Replaying the chain must give exactly the records table.
    Status compare_records() {
        std::map<wpid1::Uid, bool> seen;
        WP_ASSIGN_OR_RETURN(auto* s, m.stmt(WP_RECORD_SELECT("ORDER BY id")));
        sql::Query q(s);
        q.stream();  // a scan: rows one at a time
        for (;;) {
            WP_ASSIGN_OR_RETURN(const bool row, q.step());
            if (!row) break;
            ++rep.records;
            auto r = row_to_record(q);
            if (!r.ok()) {
                rp.problem(r.error().message);
                continue;
            }
            const std::string who = "record UID " + to_hex(r->uid);
            auto it = rp.records().find(r->uid);
            if (it == rp.records().end()) {
                rp.problem(who + " (" + r->loc.describe() + ") has no ISSUE event");
                continue;
            }
            seen[r->uid] = true;
            // The chain binds the certificate by its SHA-256.
            *r = chain::chain_form(std::move(*r));
            if (!(it->second == *r))
                rp.problem(who + " differs from the event log in: " + differences(it->second, *r));
        }
        for (const auto& [uid, rec] : rp.records())
            if (seen.count(uid) == 0)
                rp.problem("record UID " + to_hex(uid) + " (" + rec.loc.describe() +
                           ") is in the event log but missing from the records table");
        return ok_status();
    }

    static std::string differences(const LedgerRecord& e, const LedgerRecord& r) {
        std::string diff;
        auto note = [&](bool differs, const char* name) {
            if (differs) diff += std::string(diff.empty() ? "" : ", ") + name;
        };
        note(e.loc != r.loc, "location");
        note(e.serial != r.serial, "serial");
        note(e.public_key != r.public_key, "public_key");
        note(e.wrapped != r.wrapped, "wrapped_key");
        note(e.certificate_der != r.certificate_der, "certificate");
        note(e.state != r.state, "state");
        note(e.issued_us != r.issued_us || e.delivered_us != r.delivered_us ||
                 e.result_us != r.result_us || e.updated_us != r.updated_us,
             "times");
        note(e.tester != r.tester, "tester");
        note(e.bin != r.bin, "bin");
        note(e.reissues != r.reissues, "reissues");
        note(e.void_reason != r.void_reason, "void_reason");
        note(e.site != r.site, "site");
        return diff;
    }

    // The job row: its binding is the GENESIS event's, its counters the chain's.
    Status check_job_row() {
        WP_ASSIGN_OR_RETURN(auto* s, m.stmt("SELECT job_id, customer, product, quota, quota_used, "
                                            "head_seq, head_hash FROM job WHERE id = 1"));
        sql::Query q(s);
        WP_ASSIGN_OR_RETURN(const bool row, q.step());
        if (!row) {
            rp.problem("the job row is missing");
            return ok_status();
        }
        const auto& g = rp.genesis();
        if (!g || g->job_id != q.text_col(0) || g->customer != q.text_col(1) ||
            g->product != q.text_col(2) || g->quota != static_cast<uint64_t>(q.int_col(3)))
            rp.problem(
                "the job binding (job id, customer, product, quota) differs from the "
                "GENESIS event");
        if (static_cast<uint64_t>(q.int_col(4)) != rp.quota_used())
            rp.problem("quota counter is " + std::to_string(q.int_col(4)) + " but " +
                       std::to_string(rp.quota_used()) + " identities were issued");
        if (static_cast<uint64_t>(q.int_col(5)) != rp.events() ||
            q.blob_col(6) != Bytes(rp.head().begin(), rp.head().end()))
            rp.problem("stored chain head (event " + std::to_string(q.int_col(5)) + ", " +
                       to_hex(q.blob_col(6)) + ") differs from the recomputed head (event " +
                       std::to_string(rp.events()) + ", " + to_hex(rp.head()) + ")");
        return ok_status();
    }

    // An earlier head (the anchor's, the token's, the customer's) must be in this chain: the
    // chain is at or beyond it and recomputes to the same hash there.
    bool contains(uint64_t seq, const chain::Hash& hash, const ChainHead& head) {
        return seq <= head.events && wanted.count(seq) != 0 && wanted[seq] == hash;
    }

    void compare_anchor(const std::filesystem::path& anchor_file,
                        const Result<anchor::Contents>& anchored, const ChainHead& head) {
        const std::string ledger_head = "the ledger's head is " + describe_head(head);
        if (anchor_file.empty()) {
            rep.notes.push_back(
                "no anchor file was named for this ledger: its head was not "
                "compared with one");
        } else if (!anchored.ok() && anchored.error().code == ErrorCode::kNotFound) {
            rep.notes.push_back("no anchor " + anchor_file.string() +
                                " beside the ledger: its head was not compared with one");
        } else if (!anchored.ok()) {
            rp.problem(anchored.error().message);
        } else if (genesis && anchored->genesis != *genesis) {
            rp.problem("the anchor " + anchor_file.string() +
                       " was written for another ledger (genesis " + to_hex(anchored->genesis) +
                       "): the ledger file was replaced");
        } else if (anchored->last) {
            const anchor::Head& a = *anchored->last;
            const std::string both = ledger_head + ", its anchor " + anchor_file.string() +
                                     " holds " + anchor::describe(a.seq, a.hash) + " (quota used " +
                                     std::to_string(a.used) + ")";
            if (a.seq > head.events || rp.quota_used() < a.used)
                rp.problem(
                    "the ledger is behind its anchor: committed work is missing (a restored "
                    "older copy, a snapshot, or a damaged write-ahead log); " +
                    both);
            else if (!contains(a.seq, a.hash, head))
                rp.problem("the ledger has diverged from its anchor at event " +
                           std::to_string(a.seq) + ": " + both);
            else
                rep.notes.push_back("anchor " + anchor_file.string() +
                                    ": the chain contains its head " +
                                    anchor::describe(a.seq, a.hash));
        }
    }

    void compare_token(const HeadAnchor& token, const std::optional<AnchoredHead>& token_head,
                       const ChainHead& head) {
        if (!token_head) {
            rep.notes.push_back(token.describe() + " holds no head yet");
            return;
        }
        const std::string both = "the ledger's head is " + describe_head(head) + ", " +
                                 token.describe() + " holds " +
                                 anchor::describe(token_head->seq, token_head->hash) +
                                 " (quota used " + std::to_string(token_head->used) + ")";
        if (token_head->seq > head.events || rp.quota_used() < token_head->used)
            rp.problem(
                "the ledger is behind its token anchor: committed work is missing (a restored "
                "older copy of the ledger and its head log, or a damaged write-ahead log); " +
                both);
        else if (!contains(token_head->seq, token_head->hash, head))
            rp.problem("the ledger has diverged from its token anchor at event " +
                       std::to_string(token_head->seq) + ": " + both);
        else
            rep.notes.push_back(token.describe() + ": the chain contains its head " +
                                anchor::describe(token_head->seq, token_head->hash));
    }

    void compare_expected(const ChainHead& e, const ChainHead& head) {
        const std::string ledger_head = "the ledger's head is " + describe_head(head);
        if (e.events > head.events)
            rp.problem("the ledger is behind the head " + describe_head(e) +
                       " given: it was rolled back; " + ledger_head);
        else if (!contains(e.events, e.hash, head))
            rp.problem("the chain does not contain the head " + describe_head(e) +
                       " given (its event " + std::to_string(e.events) +
                       " hashes otherwise): the ledger was rewritten; " + ledger_head);
        else
            rep.notes.push_back("the chain contains the head " + describe_head(e) + " given");
    }

    VerifyReport done() {
        rep.events = rp.events();
        rep.problems = std::move(rp.problems());
        return rep;
    }
};

}  // namespace

Result<VerifyReport> Ledger::verify(const VerifyOptions& options) {
    std::lock_guard lock(impl_->mu);
    Impl& m = *impl_;
    // Read before the snapshot: a writer appends its anchor line after its commit, so an anchor
    // read first is never ahead of the snapshot taken next.
    const auto anchor_file = options.anchor_file.empty() ? m.anchor_file : options.anchor_file;
    const auto anchored = anchor_file.empty()
                              ? Result<anchor::Contents>(make_error(ErrorCode::kNotFound, "none"))
                              : anchor::read(anchor_file);
    std::optional<AnchoredHead> token_head;
    if (options.token_anchor) {
        WP_ASSIGN_OR_RETURN(token_head, options.token_anchor->read());
    }
    WP_ASSIGN_OR_RETURN(auto txn, Txn::begin(*m.db, false));
    LedgerVerification v{m, {}, {}, {}, {}};
    if (m.lite != nullptr) {  // a PostgreSQL server checks its own pages
        WP_ASSIGN_OR_RETURN(const auto found, integrity_problems(m.lite->raw(), options.quick));
        for (const auto& p : found)
            v.rp.problem(std::string("SQLite ") +
                         (options.quick ? "quick_check" : "integrity_check") + ": " + p);
    }
    if (anchored.ok() && anchored->last) v.wanted[anchored->last->seq] = {};
    if (options.expected_head) v.wanted[options.expected_head->events] = {};
    if (token_head) v.wanted[token_head->seq] = {};
    const bool damaged = !v.rp.problems().empty();
    // A damaged file can fail the reads below: with SQLite's check failing that is a finding
    // (already reported), not an error of verify.
    const Status replayed = [&]() -> Status {
        WP_RETURN_IF_ERROR(v.check_schema());
        WP_RETURN_IF_ERROR(v.replay_events());
        WP_RETURN_IF_ERROR(v.compare_records());
        WP_RETURN_IF_ERROR(verify_final_table(m, v.rp));  // final test (final_test.cpp)
        return v.check_job_row();
    }();
    if (!replayed.ok()) {
        if (!damaged) return replayed.error();
        v.rp.problem("reading the damaged file stopped: " + replayed.error().message);
        return v.done();
    }
    WP_RETURN_IF_ERROR(txn.commit());
    const ChainHead head{v.rp.events(), v.rp.head()};
    v.compare_anchor(anchor_file, anchored, head);
    if (options.token_anchor) v.compare_token(*options.token_anchor, token_head, head);
    if (options.expected_head) v.compare_expected(*options.expected_head, head);
    v.rep.head = head;
    return v.done();
}

}  // namespace waferprov::host
