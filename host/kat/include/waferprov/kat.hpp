// Known-answer test files, run on any Accelerator.
//
// Formats (docs/kat-formats.md): Wycheproof `keywrap_test_schema_v1` (AES-WRAP) and
// `mac_test_schema_v1` (AES-CMAC) as published, and ours in the same shape: P256-BASEMUL and
// WPID-1. A case the backend cannot run (ErrorCode::kUnsupported) is skipped, never passed.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "waferprov/accelerator.hpp"
#include "waferprov/bytes.hpp"
#include "waferprov/result.hpp"

namespace waferprov::kat {

struct Counts {
    size_t passed = 0;
    size_t failed = 0;
    size_t skipped = 0;
    // Why cases were skipped, once per distinct reason: "backend verilator has no AES key
    // wrap (not in its capabilities)".
    std::vector<std::string> skip_reasons;
    // One line per failed case: "tcId 12 (comment): what differed".
    std::vector<std::string> failures;
    size_t ran() const { return passed + failed; }
};

struct Options {
    // WPID-1 files carry plain KIKs: this returns AES-KW(DK, KIK) under the backend's device
    // key (drivers/backends: wrap_kik_for), which the runner loads, as a job does.
    std::function<Result<Bytes>(ByteSpan kik)> wrap_kik;
};

// Runs one file. An error means the file itself could not be used (unreadable, not JSON, an
// unknown schema/algorithm, a missing or malformed field: the message names file, tcId and
// field); counts are per case.
Result<Counts> run_file(Accelerator& backend, const std::filesystem::path& file,
                        const Options& options);

// The file's "algorithm" as declared, for reports ("AES-WRAP", "WPID-1", ...).
Result<std::string> algorithm_of(const std::filesystem::path& file);

}  // namespace waferprov::kat
