// The ledger's event encoding, hash chain and replay (internal header). Shared by
// Ledger::verify() (over the database) and Ledger::verify_export() (over events.jsonl), so both
// apply exactly the rules docs/ledger.md specifies.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "waferprov/host/ledger.hpp"

namespace waferprov::host::chain {

using Hash = std::array<uint8_t, 32>;

// Version 5: a record may be a packaged part's, provisioned at final test (no wafer, x, y: NULL
// in the records table), and the final_test table may hold PROVISIONED rows; the events use
// ledger format 5 (kLedgerFormat). Version 4 (every record on a wafer), version 3 (one DELIVER
// event per die) and version 2 (before substrate ids, whose migration needs every wafer's map)
// are refused at open with the command that migrates them; version 1 is refused.
// Ledger::migrate takes any of them to version 5.
inline constexpr int kSchemaVersion = 5;
inline constexpr int kWaferOnlySchemaVersion = 4;
inline constexpr int kPerDieDeliverSchemaVersion = 3;
inline constexpr int kLegacySchemaVersion = 2;
// The event formats a chain may hold, oldest first. A chain starts with the format of the build
// that created it and moves on only through MIGRATE events, one format step each:
//   2  certificates bound by SHA-256, no substrate (schema version 2);
//   3  locations (ISSUE records, ALARM and QUOTA_REFUSED offers) carry "substrate"; the MIGRATE
//      event from 2 gives every wafer its substrate id;
//   4  DELIVER lists a touchdown's dies ({"dies": [{"after", "uid"}, ...]}) instead of naming
//      one; the MIGRATE event from 3 carries nothing else;
//   5  an ISSUE record may be a packaged part's ("wafer", "x", "y" null, "substrate" ""), and
//      FINAL_PROVISION events place such a part in a handler; the MIGRATE event from 4 carries
//      nothing else.
inline constexpr const char* kLedgerFormat = "waferprov-ledger/5";
inline constexpr const char* kWaferOnlyFormat = "waferprov-ledger/4";
inline constexpr const char* kPerDieDeliverFormat = "waferprov-ledger/3";
inline constexpr const char* kLegacyLedgerFormat = "waferprov-ledger/2";
inline constexpr size_t kMaxText = 256;
inline constexpr size_t kMaxProblems = 200;

// Text fields (job id, lot, tester, bin, reasons) are printable ASCII so that the canonical JSON
// of an event is fully specified (only '"' and '\' need escaping).
bool valid_text(std::string_view s, bool allow_empty = true);

Hash sha256(ByteSpan data);
// SHA-256(prev || payload): the chain step.
Hash chain_step(const Hash& prev, std::string_view payload);

// The canonical encoding: nlohmann::json (std::map: keys sorted bytewise) dumped compactly.
std::string canonical(const nlohmann::json& j);

// JSON forms of a record: full (ISSUE; the certificate as certificate_sha256) and the mutable
// part (every later change).
nlohmann::json record_json(const LedgerRecord& r);
// The canonical payload of an ISSUE event, written directly (the hot path of record_batch);
// byte-identical to canonical() of the equivalent nlohmann object (ledger_test checks this).
void issue_payload(std::string& out, const LedgerRecord& r, uint64_t seq, int64_t time,
                   uint64_t quota_used);
// The canonical payload of a DELIVER or RESULT event ({"after": mutable_json(r), "seq", "time",
// "type", "uid"}), written directly for the tester link's hot path; byte-identical to
// canonical() of the nlohmann object (ledger_test checks this).
void transition_payload(std::string& out, const char* type, const LedgerRecord& r, uint64_t seq,
                        int64_t time);
// The canonical payload of a format-4 DELIVER event: {"dies": [{"after": mutable_json(r),
// "uid"}, ...], "seq", "time", "type": "DELIVER"}, the dies in the order given (one touchdown's
// deliveries); byte-identical to canonical() of the nlohmann object (ledger_test checks this).
void deliver_payload(std::string& out, std::span<const LedgerRecord> dies, uint64_t seq,
                     int64_t time);
// The UIDs a DELIVER event's payload names: the "dies" of a format-4 event, or "uid" of an older
// one. Empty for a payload that is not a DELIVER event (verify() reports malformed ones).
std::vector<wpid1::Uid> delivered_uids(std::string_view payload);
// A record as the chain binds it: certificate_der replaced by its SHA-256. Replayed records
// (Replayer::records()) are in this form; compare stored records through it.
LedgerRecord chain_form(LedgerRecord r);
// Whether `hash` (a chain_form certificate_der) is the SHA-256 of `data`.
bool sha256_matches(ByteSpan hash, ByteSpan data);
nlohmann::json mutable_json(const LedgerRecord& r);
nlohmann::json location_json(const wpid1::Uid& uid, const DieLocation& loc, ByteSpan serial);

// A wafer as the ledger binds it: one substrate id per (lot, wafer number) and, for non-empty
// ids, one (lot, wafer number) per substrate id.
struct WaferBinding {
    std::string lot;
    int wafer = 0;
    std::string substrate;
};

struct Genesis {
    std::string job_id, customer, product;
    uint64_t quota = 0;
    int64_t time_us = 0;
};

// Replays a chain of event payloads, one at a time, checking encoding, sequence, hash linkage
// and the state machine, and rebuilding the records and the quota counter.
class Replayer {
public:
    // Applies the next event. `stored_hash`, if given, is the hash stored alongside (database).
    // Returns false when the event could not be applied (a problem was added).
    bool apply(std::string_view payload, const std::optional<Hash>& stored_hash = std::nullopt);

    uint64_t events() const { return events_; }
    const Hash& head() const { return head_; }
    const std::optional<Genesis>& genesis() const { return genesis_; }
    uint64_t quota_used() const { return quota_used_; }
    // The replayed records, in chain_form (certificate_der holds the certificate's SHA-256).
    const std::map<wpid1::Uid, LedgerRecord>& records() const { return records_; }
    // The replayed final-test rows (docs/final-test.md), as the final_test table must hold them.
    const std::map<wpid1::Uid, FinalRecord>& finals() const { return finals_; }
    std::vector<std::string>& problems() { return problems_; }
    void problem(std::string text);

private:
    // One event, parsed; an error names what is wrong with it (apply makes it a problem).
    Status apply_parsed(const nlohmann::json& j, uint64_t seq, const std::string& type,
                        int64_t time);
    Status apply_genesis(const nlohmann::json& j, uint64_t seq, int64_t time);
    Status apply_issue(const nlohmann::json& j);
    Status apply_transition(const nlohmann::json& j, const std::string& type);
    // A format-4 DELIVER: every listed die makes the DELIVER transition; a UID listed twice is an
    // error.
    Status apply_deliver_batch(const nlohmann::json& j);
    // One die's change to `after` (the event's "after" object) under `type`'s rules.
    Status apply_change(const wpid1::Uid& uid, const nlohmann::json& after,
                        const std::string& type);
    Status apply_migrate(const nlohmann::json& j);
    // FINAL_CHALLENGE / FINAL_RESULT (docs/final-test.md): challenges only for parts PROGRAMMED
    // at sort; a result answers the part's open challenge (same nonce and session) once.
    Status apply_final(const nlohmann::json& j, const std::string& type, int64_t time);
    // FINAL_PROVISION (format 5): a packaged part issued at final test gets its final-test row,
    // PROVISIONED, where the handler had it.
    Status apply_final_provision(const nlohmann::json& j, int64_t time);
    // Binds (lot, wafer) to substrate; an error if either side is bound otherwise.
    Status bind_wafer(const DieLocation& loc);
    uint64_t events_ = 0;
    int format_ = 0;  // the chain's event format (2 to 5): GENESIS's, then each MIGRATE's
    bool legacy() const { return format_ == 2; }
    Hash head_{};
    std::optional<Genesis> genesis_;
    uint64_t quota_used_ = 0;
    std::map<wpid1::Uid, LedgerRecord> records_;
    std::map<std::tuple<std::string, int, int, int>, wpid1::Uid> by_location_;
    std::map<Bytes, wpid1::Uid> by_serial_;
    std::map<std::pair<std::string, int>, std::string> substrate_of_;
    std::map<std::string, std::pair<std::string, int>> wafer_of_;
    std::vector<std::string> problems_;
    std::map<wpid1::Uid, FinalRecord> finals_;  // final test: each part's row, replayed
};

// Strict base64 (RFC 4648, with padding, no line breaks).
std::string base64_encode(ByteSpan data);
std::optional<Bytes> base64_decode(std::string_view text);

int64_t now_us();

}  // namespace waferprov::host::chain
