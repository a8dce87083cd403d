// `waferprov report --final-test`: the final-test STDF and the sort / final-test reconciliation
// of every lot final test saw, from the ledger alone (docs/final-test.md "Reports").
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "waferprov/host/final_report.hpp"
#include "waferprov/host/ledger.hpp"
#include "waferprov/result.hpp"

namespace waferprov::cli {

struct FinalReports {
    std::vector<host::report::FinalReconciliation> lots;  // in lot order
    std::vector<std::filesystem::path> files;
    bool ok() const;              // every lot's reconciliation is OK
    std::string text() const;     // one line per lot, and why a lot is not OK
    nlohmann::json json() const;  // {"ok", "lots": [final_reconciliation_json of each]}
};

// Joins the ledger's final-test records with its sort records and writes, per lot,
// <out>/<lot>/<lot>_final.stdf and final_reconciliation.txt|.json. A part belongs to the lot
// sort provisioned it in (its final-test lot when final test provisioned it). `lots` empty:
// every lot with a final-test record; else exactly these (a lot final test never saw lists
// its parts as never seen). No final-test record and no lot named is an error.
Result<FinalReports> write_final_test_reports(host::Ledger& ledger,
                                              const std::filesystem::path& out,
                                              const std::vector<std::string>& lots,
                                              const std::string& job_id);

}  // namespace waferprov::cli
