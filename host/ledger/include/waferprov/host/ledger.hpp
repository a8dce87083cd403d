// The production ledger: the tamper-evident record of every identity a job issued, and the
// enforcer of the customer's quota. docs/ledger.md describes the schema, the state machine, the
// hash-chained event log (to the byte), the export format and the crash-safety argument.
//
// The public API is storage-neutral; the implementation is SQLite (WAL, synchronous=FULL). Every
// mutation is one transaction taken with BEGIN IMMEDIATE, so several processes of the same job
// (a `run` and a `serve`) may open the same file.
//
// Thread-safety: a Ledger serializes its calls internally (one mutex around one connection), so
// one Ledger may be shared by the pipeline's commit stage and the tester service's threads.
// Calls from several threads queue behind each other; for concurrency across processes SQLite's
// locking (busy_timeout) does the queuing.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "waferprov/bytes.hpp"
#include "waferprov/host/model.hpp"
#include "waferprov/host/signer.hpp"
#include "waferprov/result.hpp"
#include "waferprov/wpid1.hpp"

namespace waferprov::host {

// Where a ledger anchors its chain head and quota used outside the database file, so that a
// rolled-back or truncated file is refused at open (docs/ledger.md "The anchor").
enum class AnchorMode {
    kFile,  // `<ledger>.anchor`: an append-only, fsynced, hash-linked head log beside the ledger
    kNone,  // none: only for measuring what the anchor costs (benchmarks/bench_ledger.cpp)
};

// A head as anchored: the chain head after a commit and the quota used then.
struct AnchoredHead {
    uint64_t seq = 0;
    std::array<uint8_t, 32> hash{};
    uint64_t used = 0;
};

// An anchor kept where the ledger's operator cannot roll it back with the file: for a job whose
// CA lives in an HSM, a data object in the token (host/ca: open_token_anchor). It holds one
// head and only moves forward. Ledger::open checks the ledger against it like the head log and
// advances it after every commit. Implementations need not be thread-safe (the ledger calls
// them under its mutex).
class HeadAnchor {
public:
    virtual ~HeadAnchor() = default;
    // The head it holds; nullopt when it holds none yet.
    virtual Result<std::optional<AnchoredHead>> read() = 0;
    // Moves to `head`, durably. A head at or below the one held is never written (another
    // process of the job anchored a later commit first): nothing changes and it returns ok.
    virtual Status advance(const AnchoredHead& head) = 0;
    // Names it in messages ("token 'X' object 'Y'").
    virtual std::string describe() const = 0;
};

// The job a ledger belongs to. Stored at creation; a ledger refuses to open under another job.
// Text fields are printable ASCII (0x20..0x7e), at most 256 characters.
struct LedgerConfig {
    std::string job_id;
    std::string customer;
    std::string product;
    uint64_t quota = 0;  // identities the job may issue, ever (retests are not counted)
    // How long a write waits for another process holding the ledger's write lock.
    int busy_timeout_ms = 30000;
    AnchorMode anchor = AnchorMode::kFile;
    // The head log's file (AnchorMode::kFile): empty = `<ledger>.anchor` beside a SQLite file.
    // A PostgreSQL ledger has no file to sit beside: each host names its own (docs/ledger.md).
    std::filesystem::path anchor_file{};
    // Besides the head log: an anchor the file's operator cannot roll back (null: none).
    std::shared_ptr<HeadAnchor> token_anchor{};
    // Open checks an existing file with SQLite's integrity_check (every index against its
    // table, as `ledger verify` does) instead of its quick_check (pages and structure only).
    // `serve` sets it: it runs for weeks on what it opened; a `run` per wafer keeps it quick.
    bool full_integrity_check = false;
    // Told what open() did that an operator should know (an anchor created for a ledger that
    // had none, a torn anchor line dropped, an anchor that fell behind). Default: standard error.
    std::function<void(const std::string&)> notice{};
};

// One identity the pipeline offers for a die.
struct NewIdentity {
    DieLocation loc;
    wpid1::Uid uid{};
    Bytes serial;                          // certificate serial number, big-endian, 1..20 bytes
    std::array<uint8_t, 65> public_key{};  // uncompressed SEC1 point 04 || X || Y
    wpid1::WrappedKey wrapped{};
    Bytes certificate_der;
    std::string tester;  // tester id that asked for it (may be empty)
};

// A die's identity as stored. Times are UTC microseconds since the Unix epoch; 0 = never.
struct LedgerRecord {
    wpid1::Uid uid{};
    DieLocation loc;
    Bytes serial;
    std::array<uint8_t, 65> public_key{};
    wpid1::WrappedKey wrapped{};
    Bytes certificate_der;
    DieState state = DieState::kIssued;
    int64_t issued_us = 0;
    int64_t delivered_us = 0;  // first delivery
    int64_t result_us = 0;     // when PROGRAMMED/FAILED was reported
    int64_t updated_us = 0;    // last change of any kind
    std::string tester;        // the last tester that touched the die
    std::string bin;           // the bin the tester reported with the result ("" = none yet)
    uint32_t reissues = 0;     // retests that were given this existing identity
    std::string void_reason;   // why it was voided ("" unless VOID)
    int site = -1;             // the tester-link site of the last delivery (-1 = none / unknown)
    bool operator==(const LedgerRecord&) const = default;
};

enum class RecordOutcome {
    kIssued,          // new identity stored and counted against the quota
    kReissued,        // retest: the existing identity is returned, the offered one discarded
    kConflict,        // refused (UID/location/serial clash or a VOID die); an ALARM was logged
    kQuotaExhausted,  // refused: the quota is used up; nothing of the item was stored
};
const char* to_string(RecordOutcome o) noexcept;

struct RecordResult {
    RecordOutcome outcome = RecordOutcome::kIssued;
    // kIssued: the record stored; kReissued: the existing record (deliver this one);
    // kConflict: the existing record the offer clashed with; kQuotaExhausted: none.
    std::optional<LedgerRecord> record;
    std::string message;
};

// Outcomes of state transitions, for the tester link to map onto its protocol.
enum class TransitionStatus {
    kOk,
    kUnknownUid,         // no record has this UID
    kNotDelivered,       // a result for a die whose identity was never delivered
    kDuplicateResult,    // a result for a die that already has one (PROGRAMMED/FAILED)
    kAlreadyProgrammed,  // a delivery for a die already PROGRAMMED
    kVoided,             // the die's identity is VOID
    kInvalidArgument,    // bad tester id / bin / reason text
    kLocationMismatch,   // deliver(): the UID's record is for another die location
};
const char* to_string(TransitionStatus s) noexcept;

struct TransitionResult {
    wpid1::Uid uid{};
    TransitionStatus status = TransitionStatus::kOk;
    std::optional<LedgerRecord> record;  // the record after the call (if the UID is known)
    std::string message;
    // kOk from mark_delivered/deliver: the identity had been delivered before (a retest);
    // from mark_results: this very result was recorded before (nothing changed).
    bool again = false;
};

// A delivery the tester link asks for: the die's UID and where the tester says the die is.
struct Delivery {
    wpid1::Uid uid{};
    DieLocation loc;
    int site = -1;  // the probe-card site the die is under (0..65535); -1 = not known
};

// A result the tester reports for one die.
struct DieResult {
    wpid1::Uid uid{};
    bool programmed = false;  // true: PROGRAMMED, false: FAILED
    std::string bin;
};

struct StateCounts {
    uint64_t issued = 0, delivered = 0, programmed = 0, failed = 0, voided = 0;
    uint64_t total() const { return issued + delivered + programmed + failed + voided; }
    uint64_t of(DieState s) const;
    uint64_t& of(DieState s);  // the counter of state s, to count into
    bool operator==(const StateCounts&) const = default;
};

struct QuotaStatus {
    uint64_t quota = 0;
    uint64_t used = 0;
    uint64_t left() const { return used >= quota ? 0 : quota - used; }
};

struct ChainHead {
    uint64_t events = 0;  // number of events (the last event's seq)
    std::array<uint8_t, 32> hash{};
};

struct VerifyReport {
    uint64_t events = 0;
    uint64_t records = 0;
    ChainHead head;                     // as recomputed
    std::vector<std::string> problems;  // empty = verified; each names the event seq / record UID
    std::vector<std::string> notes{};   // what was compared (anchor, head), not findings
    bool ok() const { return problems.empty(); }
};

struct VerifyOptions {
    // SQLite's quick_check (structure only, O(N)) instead of the full integrity_check (which
    // also checks every index against its table).
    bool quick = false;
    // A head the customer holds (for instance from an earlier export): the ledger's chain must
    // contain it - event `events` with exactly this hash - or it was rolled back or rewritten.
    std::optional<ChainHead> expected_head;
    // The job's token anchor (a PKCS#11 job, `ledger verify --job`): the chain must contain the
    // head it holds, with at least its quota used. Only read, never advanced.
    std::shared_ptr<HeadAnchor> token_anchor{};
    // The head log to compare with: empty = the one open_existing() knows (beside a SQLite
    // file; none for PostgreSQL, whose hosts each keep their own).
    std::filesystem::path anchor_file{};
};

// "SEQ:HASH" (decimal seq, 64 hex digits), the form `ledger verify --head` takes and messages
// print.
std::string describe_head(const ChainHead& h);
Result<ChainHead> parse_head(std::string_view text);

// A wafer's substrate id, for Ledger::migrate.
struct WaferSubstrate {
    std::string lot;
    int wafer = 0;
    std::string substrate;
};

struct MigrateReport {
    int from_version = 0;                // the schema version the file had (2 or 3)
    int to_version = 0;                  // the version it has now (this build's)
    std::vector<WaferSubstrate> wafers;  // from version 2: the wafers, with their substrate ids
    uint64_t records = 0;                // from version 2: records given a substrate id
};

// ---- Final test (docs/final-test.md) --------------------------------------------------------
// A packaged part provisioned at wafer sort is verified at final test: the host opens a
// single-use challenge bound to the tester-link session and the part, the part signs it, and
// the host records the verdict. Verifications issue nothing and never touch the quota.

// Where a packaged part sat: no wafer x/y, the handler's site and, when known, its carrier.
struct FinalLocation {
    std::string lot;
    std::string handler;  // the handler's id (printable ASCII)
    int site = 0;         // the handler's site number (0..65535)
    std::string carrier;  // strip or tray id ("" = not known)
    int row = -1;         // position in the carrier (-1 = not known)
    int column = -1;
    bool operator==(const FinalLocation&) const = default;
};

enum class FinalState {
    kChallenged,   // a challenge is open (or was left open by a session that ended)
    kVerified,     // the part proved it holds the key of its certificate
    kFailed,       // the part failed final test (the handler's bin says why)
    kMismatch,     // the signature did not verify: a swapped or counterfeit part (ALARM logged)
    kProvisioned,  // never seen at sort: given its identity at final test (`tester` UID policy);
                   // its LedgerRecord has no wafer position, and its state (DELIVERED,
                   // PROGRAMMED, FAILED) says how far that went
};
const char* to_string(FinalState s) noexcept;

using FinalNonce = std::array<uint8_t, 32>;

// A part's final-test record: one per UID, however often it was seen.
struct FinalRecord {
    wpid1::Uid uid{};
    FinalState state = FinalState::kChallenged;
    FinalLocation loc;
    FinalNonce nonce{};       // the last challenge issued to the part
    uint64_t session = 0;     // the tester-link session it was issued to
    bool open = false;        // the challenge was not answered yet
    std::string tester;       // the tester id of the last change
    std::string bin;          // the handler's bin with the verdict ("" = none yet)
    uint32_t challenges = 0;  // challenges issued to the part (1 + re-tests)
    int64_t updated_us = 0;
    bool operator==(const FinalRecord&) const = default;
};

enum class FinalStatus {
    kOk,
    kUnknownUid,        // the job never provisioned this UID
    kNotProgrammed,     // its identity was never reported PROGRAMMED at sort
    kVoided,            // its identity is VOID
    kChallengeRefused,  // no open challenge of this session with this nonce (replay, foreign)
    kInvalidArgument,   // text that is not printable ASCII, a site out of range
};
const char* to_string(FinalStatus s) noexcept;

// A challenge the service opens for a part in a handler site.
struct FinalChallenge {
    wpid1::Uid uid{};
    FinalLocation loc;
    FinalNonce nonce{};  // fresh random bytes from the caller (OpenSSL's RAND_bytes)
};

// The verdict on an answered challenge, as the service found it.
enum class FinalVerdict { kVerified, kFailed, kMismatch };

struct FinalResult {
    wpid1::Uid uid{};
    FinalNonce nonce{};  // the challenge the part answered
    FinalVerdict verdict = FinalVerdict::kVerified;
    std::string bin;
};

struct FinalTransition {
    wpid1::Uid uid{};
    FinalStatus status = FinalStatus::kOk;
    std::optional<LedgerRecord> record;       // the part's sort record, when the UID is known
    std::optional<FinalRecord> final_record;  // after the call
    std::string message;
    bool again = false;  // open_challenges: the part had been challenged before
};

class Ledger {
public:
    // `path` names the ledger's store (docs/ledger.md "Stores"): a SQLite file, as a path or
    // "sqlite:PATH", or a PostgreSQL database, "postgresql://..." (libpq's URI), which several
    // hosts may share; every host then takes the same write lock for each transaction.
    //
    // Creates the ledger at `path` (binding it to config's job, customer, product and quota) or
    // opens an existing one, which must belong to the same job with the same customer, product
    // and quota (else kInvalidArgument naming the mismatch). This is the open for writing
    // (`run`, `serve`), so it refuses, with kIntegrityFailure naming the problem and what to do:
    // a file failing SQLite's quick_check (integrity_check with config.full_integrity_check); a
    // ledger behind or diverged from its anchor (both heads named as SEQ:HASH); an edited or
    // damaged anchor; a missing ledger whose anchor exists. An existing ledger without an anchor
    // gets one at its current head (told through config.notice). A full disk is named as such.
    static Result<std::unique_ptr<Ledger>> open(const std::filesystem::path& path,
                                                const LedgerConfig& config);
    // Opens an existing ledger of whatever job (for verify, export, show, report), read-only:
    // never creates, grows or changes the file, so it works on read-only media (an auditor's
    // copy; then SQLite's immutable mode when there is no write-ahead log to read). The
    // anchor is not checked here: verify() compares against it.
    static Result<std::unique_ptr<Ledger>> open_existing(const std::filesystem::path& path,
                                                         int busy_timeout_ms = 30000);

    // Migrates an older ledger to this version (4), in one transaction; earlier events are kept
    // as they are, so the chain still verifies, and each format step is one MIGRATE event.
    //  - Version 3 (one DELIVER event per die): `wafers` must be empty; one MIGRATE event marks
    //    where one DELIVER event per touchdown starts.
    //  - Version 2 (before substrate ids): every record gets the substrate id `wafers` gives its
    //    (lot, wafer), in a MIGRATE event that records the assignment, then the step above.
    //    Refused, with nothing changed, when a wafer the ledger holds has no substrate id in
    //    `wafers`, a wafer is given two, or one id is given to two wafers. Existing identities
    //    keep their UIDs.
    // open() and open_existing() refuse a version-2 or -3 ledger with the command that runs
    // this (`waferprov ledger migrate`).
    static Result<MigrateReport> migrate(const std::filesystem::path& path,
                                         const std::vector<WaferSubstrate>& wafers,
                                         int busy_timeout_ms = 30000);

    ~Ledger();
    Ledger(const Ledger&) = delete;
    Ledger& operator=(const Ledger&) = delete;

    const LedgerConfig& config() const;

    // Records a batch of offered identities in ONE transaction (group commit), in order; each
    // item sees the effect of the items before it. Per item: see RecordOutcome. An error (bad
    // input, storage failure) means nothing of the batch was written.
    Result<std::vector<RecordResult>> record_batch(std::span<const NewIdentity> batch);

    Result<std::optional<LedgerRecord>> find_uid(const wpid1::Uid& uid);
    // The record at (lot, wafer, x, y), whatever its substrate id (`ledger show --at`).
    Result<std::optional<LedgerRecord>> find_location(const DieLocation& loc);
    // How often each die was delivered again after a FAILED result (FAILED -> DELIVERED in the
    // event log: a retest on the tester link). Dies never retested are absent. One read of the
    // DELIVER and RESULT events, in chain order.
    Result<std::map<wpid1::Uid, uint32_t>> retests();
    // Whether the ledger was migrated from schema version 2 (its chain holds a MIGRATE event
    // from format 2; one from format 3 changed only the DELIVER events):
    // its older identities carry UIDs derived before substrate ids (derive_legacy_uid).
    Result<bool> migrated();
    // The substrate id the ledger has bound to (lot, wafer), if it holds a record of it.
    Result<std::optional<std::string>> substrate_of(const std::string& lot, int wafer);
    // Every record of one wafer number, ordered by y, x (compare loc.substrate: records of the
    // same number under another substrate id are refused, so all share one substrate id).
    Result<std::vector<LedgerRecord>> list_wafer(const std::string& lot, int wafer);
    // Calls fn for every record ordered by lot, wafer, y, x, from one consistent snapshot
    // (`waferprov ledger list`).
    // fn must not call back into this Ledger. A non-ok Status from fn stops and is returned.
    Status for_each(const std::function<Status(const LedgerRecord&)>& fn);

    Result<StateCounts> counts();
    Result<QuotaStatus> quota();
    Result<uint64_t> quota_left();
    Result<ChainHead> head();

    // ISSUED -> DELIVERED (FAILED -> DELIVERED and DELIVERED -> DELIVERED for a retest, logged).
    // One transaction for the batch.
    Result<std::vector<TransitionResult>> mark_delivered(std::span<const wpid1::Uid> uids,
                                                         const std::string& tester);
    // mark_delivered for the tester link: each item must also match its record's location, else
    // kLocationMismatch and that item is left unchanged. One transaction for the batch.
    Result<std::vector<TransitionResult>> deliver(std::span<const Delivery> items,
                                                  const std::string& tester);
    // The tester link's dies generated on demand during a touchdown: record_batch(batch) and,
    // in the SAME transaction, deliver() each identity it issued or reissued (at sites[i], the
    // probe-card site of batch[i]; -1 none) - so a die's identity is never durable as ISSUED
    // without its delivery, and the touchdown costs one commit, not two. `delivered[i]` is the
    // delivery's outcome for an issued / reissued item, nullopt for the others. Grouped with
    // concurrent deliveries like deliver(). Invalid items fail the call as in record_batch.
    struct RecordedDelivery {
        RecordResult recorded;
        std::optional<TransitionResult> delivered;
    };
    // Final test (docs/final-test.md): `packages`, when not empty, holds one handler location
    // per item, each item a packaged part (loc.packaged) of that lot; an issued part gets its
    // final-test record PROVISIONED there, with a FINAL_PROVISION event, in the same
    // transaction.
    Result<std::vector<RecordedDelivery>> record_and_deliver(
        std::span<const NewIdentity> batch, std::span<const int> sites, const std::string& tester,
        std::span<const FinalLocation> packages = {});
    // DELIVERED -> PROGRAMMED / FAILED with the bin. One transaction for the batch. The same
    // result reported again (same outcome and bin) is kOk with `again` and changes nothing;
    // another result for a die that has one is kDuplicateResult.
    Result<std::vector<TransitionResult>> mark_results(std::span<const DieResult> results,
                                                       const std::string& tester);
    // Any state but VOID -> VOID (`waferprov ledger void`). The identity keeps counting against
    // the quota and is never delivered again.
    Result<TransitionResult> void_identity(const wpid1::Uid& uid, const std::string& reason);

    // What a committed write transaction reports to on_commit(): how long its COMMIT took (the
    // WAL fsync, and advancing the anchors), and the quota after it.
    struct CommitNote {
        double seconds = 0;
        uint64_t quota = 0, quota_used = 0;
        // The calls this transaction carried: a group commit's group (deliveries, results,
        // challenges from several testers), 1 for a call committed alone (record_batch).
        uint64_t requests = 1;
    };
    // Called after every write transaction that appended events (issue, deliver, results,
    // alarms, void), on the committing thread with the ledger busy: keep it short and do not
    // call back into the Ledger. For the metrics (host/metrics): the commit latency and the
    // quota come from the one place that knows them, so `run` and `serve` report them alike.
    // Set it before the ledger is shared between threads.
    void on_commit(std::function<void(const CommitNote&)> fn);

    // Group commit (docs/ledger.md): deliver(), mark_delivered() and mark_results() called
    // from several threads at once share transactions - the requests that queue while one
    // commits go into the next, one COMMIT (one fsync, one anchor append) for all of them, each
    // applied in arrival order under its own savepoint with the outcome it would have alone.
    // The figures, for tests and the benchmarks: write transactions the grouping committed, the
    // requests they committed (a request that failed inside its group is not counted), the most
    // in one, and the requests queued right now.
    struct GroupStats {
        uint64_t transactions = 0, requests = 0, largest = 0, queued = 0;
    };
    GroupStats group_stats() const;

    // Latency: by default SQLite copies the write-ahead log into the database (a checkpoint,
    // with its own fsync) inside whichever commit crosses 1000 pages, so one request in about
    // thirty pays for it. After defer_checkpoints() commits never checkpoint; the owner calls
    // checkpoint() from a thread of its own when it suits it (the tester link: when the link
    // is idle, or when wal_pages() passes a cap). Checkpoints then run on a second connection
    // and never hold up a transaction. Durability is the same: every commit still fsyncs the
    // log.
    Status defer_checkpoints();
    // A PASSIVE checkpoint on the second connection (no-op before defer_checkpoints()). Copies
    // what no reader still needs; never waits for a writer. Thread-safe.
    Status checkpoint();
    // Pages in the write-ahead log after the last commit (0 before defer_checkpoints()); the
    // log restarts from its beginning at the first commit after a complete checkpoint.
    // Thread-safe.
    int wal_pages() const;

    // Runs SQLite's integrity_check (quick_check with options.quick), recomputes the hash chain
    // and replays it against the records, the quota counter, the job binding and the stored
    // head; compares the chain with `<ledger>.anchor` when it exists (a ledger behind or
    // diverged from its anchor is a problem; no anchor is a note) and with
    // options.expected_head. An Error only for storage failures; findings go in problems.
    Result<VerifyReport> verify(const VerifyOptions& options = {});

    // Copies the write-ahead log into the database file now and truncates the log (a TRUNCATE
    // checkpoint; `run` calls it when it finishes), so the window of work held only in the log
    // stays small. Busy (another process reading or writing) is not an error: SQLite copies
    // what it can and the rest waits for the next checkpoint.
    Status checkpoint_now();

    // Writes an export (records.jsonl, events.jsonl, manifest.json, manifest.sig) into `dir`,
    // which must not exist; built in a sibling temporary directory, fsynced and renamed into
    // place, so `dir` either appears complete or not at all. The manifest is signed through
    // `ca` (the manufacturer CA).
    Status export_to(const std::filesystem::path& dir, Signer& ca);

    // Checks an export as a customer would, without the ledger: `ca_pem` is the manufacturer CA
    // certificate (PEM; a bundle is accepted when it contains the manifest's CA certificate).
    // An Error only if the export or the CA file cannot be read at all; findings go in problems.
    static Result<VerifyReport> verify_export(const std::filesystem::path& dir,
                                              const std::filesystem::path& ca_pem);

    // The tester link's cap on deliveries per die (docs/tester-protocol.md, DELIVERY_CAP).
    struct DeliveryTally {
        std::map<wpid1::Uid, uint32_t> deliveries;  // DELIVER events per die (first + retests)
        std::set<wpid1::Uid> capped;                // dies with an ALARM "delivery-cap"
    };
    // One read of the event log, in one snapshot.
    Result<DeliveryTally> delivery_tally();
    // Appends ALARM "delivery-cap" for the die `uid` (offered = existing = its record) in one
    // transaction. kNotFound if no record has the UID.
    Status alarm_delivery_cap(const wpid1::Uid& uid, const std::string& tester);

    // Appends ALARM "backend-record-refused" for the die at `loc` that was submitted with
    // `uid` (offered = existing = that location and UID, serial empty: no certificate was
    // made), in one transaction: the backend's record for it failed a check (the card driver's
    // UID, sequence number and curve checks, or the host's curve check), so nothing was signed
    // or recorded for it. kInvalidArgument for text that is not printable ASCII.
    Status alarm_backend_refused(const DieLocation& loc, const wpid1::Uid& uid,
                                 const std::string& tester);

    // ---- Final test (docs/final-test.md) --------------------------------------------------
    // Opens one challenge per item for `session`, in one transaction: the part's sort record
    // must be PROGRAMMED (else kUnknownUid / kNotProgrammed / kVoided, nothing written for it).
    // A new challenge replaces any earlier one of the part (which can then no longer be
    // answered). Appends FINAL_CHALLENGE per part. No quota is used.
    Result<std::vector<FinalTransition>> open_challenges(std::span<const FinalChallenge> items,
                                                         uint64_t session,
                                                         const std::string& tester);
    // Records verdicts in one transaction. Each must answer the part's open challenge, issued
    // to `session`, with this nonce, else kChallengeRefused and nothing is written for it.
    // Answering closes the challenge: single use, so any later answer to it, even the same
    // one again, is refused (the service's answer cache covers a tester's retries). Appends
    // FINAL_RESULT, and for kMismatch an ALARM "final-test-signature-mismatch" with the part's sort
    // record.
    Result<std::vector<FinalTransition>> record_final_results(std::span<const FinalResult> items,
                                                              uint64_t session,
                                                              const std::string& tester);
    // The part's final-test record, if it was ever challenged.
    Result<std::optional<FinalRecord>> find_final(const wpid1::Uid& uid);
    // Every final-test record, ordered by UID.
    Result<std::vector<FinalRecord>> list_final();

    struct Impl;

private:
    explicit Ledger(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// "2024-05-01T12:00:00.000123Z"; "" for 0.
std::string iso8601_utc(int64_t epoch_us);

}  // namespace waferprov::host
