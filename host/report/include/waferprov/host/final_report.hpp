// Final-test reports (issue #20, docs/final-test.md "Reports"): the final-test STDF of a lot
// (packaged parts by UID: PRR without X/Y, PART_ID = the UID, SITE_NUM = the handler's site)
// and the lot reconciliation that joins wafer sort and final test.
//
// The input model carries public data only (UIDs, handler positions, bins, states), like the
// wafer reports' (report.hpp). Thread-safety: every function is pure over its arguments.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "waferprov/bytes.hpp"
#include "waferprov/host/report.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host::report {

// What final test made of a part (the ledger's FinalState).
enum class FinalOutcome {
    kVerified,     // provisioned at sort, proved it holds its key at final test
    kProvisioned,  // given its identity at final test (never provisioned at sort)
    kFailed,       // failed final test (the handler's bin says why)
    kMismatch,     // its signature did not verify: a swapped or counterfeit part
    kUnanswered,   // challenged, never answered (no pass/fail)
};
inline constexpr size_t kFinalOutcomeCount = 5;
// "verified", "provisioned-at-final-test", "failed", "mismatch", "unanswered"
const char* to_string(FinalOutcome o) noexcept;

// One part seen at final test.
struct FinalPart {
    std::string uid_hex;  // PART_ID
    FinalOutcome outcome = FinalOutcome::kVerified;
    std::string handler;  // the handler's id (its own SDR / HEAD_NUM in the STDF)
    int site = 0;         // the handler's site (STDF SITE_NUM; U1, so above 255 is written 255)
    std::string carrier;  // strip id ("" = not known)
    int row = -1, column = -1;
    std::string bin;          // the handler's bin with the verdict ("" = none)
    uint32_t challenges = 1;  // challenges issued: more than one = retested (PART_FLG 0x01)
    std::string tester;
    int64_t updated_us = 0;  // the last change, UTC microseconds
    std::string sort_where;  // where sort provisioned it ("LOT1/3 (4, -2)"); "" if not at sort
};

// A lot at final test, joined with what sort provisioned in it.
struct FinalLot {
    std::string lot, job, product, customer;
    std::vector<FinalPart> parts;          // every part of the lot seen at final test
    std::vector<std::string> sorted_uids;  // every UID provisioned (PROGRAMMED) at sort in the lot
};

// Checks the input: hex UIDs; a UID at most once in parts and in sorted_uids.
Status validate(const FinalLot& lot);

// The lot's parts sorted into the reconciliation's lists (each sorted by UID) and its checks.
struct FinalReconciliation {
    std::string lot;
    std::vector<std::string> verified;     // provisioned at sort and verified
    std::vector<std::string> provisioned;  // provisioned at final test
    std::vector<std::string> never_seen;   // provisioned at sort, never seen at final test
    std::vector<std::string> mismatched;   // swapped / counterfeit
    std::vector<std::string> failed;       // failed at final test
    std::vector<std::string> unanswered;   // challenged, never answered
    std::vector<Check> checks;
    bool ok() const;  // every check OK (a mismatch is a failed check)
    size_t mismatches() const;
};
FinalReconciliation reconcile_final(const FinalLot& lot);

std::string final_reconciliation_text(const FinalReconciliation& r);
// {"format": "waferprov-final-reconciliation-1", "lot", "ok", "counts": {...}, "uids": {...},
//  "checks": [{"name", "detail", "ok"}]}
std::string final_reconciliation_json(const FinalReconciliation& r);

// Final-test STDF V4 of the lot (docs/reports.md "Final-test STDF").
Bytes final_stdf_bytes(const FinalLot& lot, const StdfOptions& options = {});
uint16_t final_hard_bin(FinalOutcome o) noexcept;  // 1, 1, 3, 4, 5
uint16_t final_soft_bin(FinalOutcome o) noexcept;  // 1, 2, 30, 40, 50

// Writes <out>/<lot>/<lot>_final.stdf, final_reconciliation.txt and final_reconciliation.json
// (atomically, as write_file_atomic). Fails on invalid input or an I/O error.
Result<Written> write_final_reports(const std::filesystem::path& out, const FinalLot& lot,
                                    const StdfOptions& options = {});

}  // namespace waferprov::host::report
