// Reports a test floor reads after a provisioning run: the end-of-run summary, the wafer and lot
// reconciliation, the wafer map picture (SVG, PNG where a converter is installed) and STDF V4.
// See docs/reports.md for every output, the STDF record list, the bins and the colours.
//
// The input model below carries public data only (positions, bins, ledger states, certificate
// serials, UIDs). It has no field for a key, a wrapped key, a KIK or a KEK, so no report can
// leak one.
//
// Thread-safety: every function is pure over its arguments (no shared state) and may be called
// from several threads at once on different outputs.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "waferprov/bytes.hpp"
#include "waferprov/host/model.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host::report {

// ---------------------------------------------------------------------------------------------
// Input model (the caller fills it from the ledger and the wafer map)
// ---------------------------------------------------------------------------------------------

// What this run did to a die.
enum class Outcome {
    kProvisioned,      // a new identity was issued
    kReissued,         // the die already had an identity; it was issued again (pass)
    kRefusedConflict,  // the ledger holds a conflicting record for this die or UID
    kRefusedQuota,     // the job's quota was used up
    kFailedCheck,      // provisioning ran but a check failed (public key not on the curve, ...)
    kNotSelected,      // not selected for provisioning (an earlier bin failed it, or filtered)
};
inline constexpr size_t kOutcomeCount = 6;
const char* to_string(Outcome o) noexcept;  // "provisioned", "reissued", "refused-conflict", ...
Result<Outcome> outcome_from_string(std::string_view s);
bool is_refused(Outcome o) noexcept;

// One die of the wafer as the run saw it.
struct DieRecord {
    int x = 0;  // map coordinates (as in MapDie / DieLocation)
    int y = 0;
    std::string bin;                // the map's bin code
    bool selected = false;          // selected for provisioning in this run
    std::optional<DieState> state;  // ledger state after the run, if the ledger has the die
    std::string serial_hex;         // certificate serial (hex), "" if none
    std::string uid_hex;            // die UID (hex), "" if unknown
    Outcome outcome = Outcome::kNotSelected;
    std::string note;           // free text (public), e.g. why a check failed
    int site = 1;               // tester site that touched the die (1..255)
    uint32_t retests = 0;       // deliveries again after a FAILED result (ledger history)
    uint32_t test_time_ms = 0;  // time spent on the die, 0 = unknown
};

// The geometry of the wafer map (from WaferMap; see geometry_of()).
struct MapGeometry {
    int columns = 0;
    int rows = 0;
    double die_width_mm = 0;  // 0 = unknown (then no wafer outline is drawn)
    double die_height_mm = 0;
    std::string origin = "LowerLeft";
    std::string axis = "UpRight";  // E142 AxisDirection: UpRight, UpLeft, DownRight, DownLeft
    double wafer_diameter_mm = 0;  // 0 = infer the smallest standard size that holds every die
    int flat_deg = -1;  // notch/flat: degrees clockwise from the picture's top (0 up, 90 right,
                        // 180 down, 270 left); -1 = unknown (no mark, STDF WF_FLAT blank)
};

// Per-outcome counts, indexed by Outcome.
struct OutcomeCounts {
    std::array<uint64_t, kOutcomeCount> n{};
    uint64_t& operator[](Outcome o) { return n[static_cast<size_t>(o)]; }
    uint64_t operator[](Outcome o) const { return n[static_cast<size_t>(o)]; }
    uint64_t selected() const;  // everything but kNotSelected
    uint64_t refused() const;   // conflict + quota
    bool operator==(const OutcomeCounts&) const = default;
};

struct Quota {
    uint64_t total = 0;
    uint64_t used = 0;
    uint64_t left = 0;
};

// Figures of the run that processed the wafer, as the pipeline measured them.
struct RunStats {
    double elapsed_s = 0;
    double dies_per_second = 0;
    std::optional<Quota> quota;           // absent: the job has no quota
    std::optional<OutcomeCounts> counts;  // the pipeline's own counters; reconciled against dies
};

// One wafer of one run: everything the reports need.
struct WaferRun {
    std::string job;
    std::string product;  // STDF PART_TYP
    std::string customer;
    std::string lot;
    int wafer = 0;
    std::string substrate_id;  // STDF WAFER_ID (falls back to "<lot>-<NN>" when empty)
    std::string tester_node;   // STDF NODE_NAM
    int64_t start_unix = 0;    // run start / finish on this wafer, Unix seconds UTC
    int64_t finish_unix = 0;
    MapGeometry geometry;
    std::vector<DieRecord> dies;  // every die of the map (null bins excluded)
    RunStats run;
};

// Geometry and die list from a wafer map: every die not selected, with bin and UID filled in.
MapGeometry geometry_of(const WaferMap& map);
std::vector<DieRecord> dies_from_map(const WaferMap& map);

// Checks the input: hex serial/UID, sites in 1..255. Reports render anything that passes.
Status validate(const WaferRun& run);

// ---------------------------------------------------------------------------------------------
// Reconciliation
// ---------------------------------------------------------------------------------------------

inline constexpr size_t kDieStateCount = 5;  // DieState values, in enum order

struct Tally {
    uint64_t map_dies = 0;
    uint64_t selected = 0;                          // dies flagged selected
    uint64_t not_selected = 0;                      // dies not flagged selected
    OutcomeCounts outcomes;                         // from the die records
    std::array<uint64_t, kDieStateCount> states{};  // ledger states over all map dies
    uint64_t no_state = 0;                          // dies the ledger does not hold
    uint64_t issued_with_record = 0;  // provisioned/reissued dies whose state is ISSUED,
                                      // DELIVERED or PROGRAMMED
    Tally& operator+=(const Tally& o);
};
Tally tally(const WaferRun& run);

// One line of "the numbers add up".
struct Check {
    std::string name;    // "selected = provisioned + reissued + refused + failed"
    std::string detail;  // "300 = 250 + 10 + 5 + 5 + 30"
    bool ok = true;
};

struct Reconciliation {
    std::string lot;
    int wafer = 0;
    Tally tally;
    std::vector<Check> checks;
    bool ok() const;
    size_t mismatches() const;
};
Reconciliation reconcile(const WaferRun& run);

struct LotReconciliation {
    std::string lot;
    std::vector<Reconciliation> wafers;  // in wafer-number order
    Tally total;
    std::vector<Check> checks;  // lot-level checks (wafer count, duplicates, every wafer OK)
    bool ok() const;
};
// Precondition: every run is of the same lot (a check line says MISMATCH otherwise).
LotReconciliation reconcile_lot(std::span<const WaferRun> runs);

// ---------------------------------------------------------------------------------------------
// Renderers (pure; return the file contents)
// ---------------------------------------------------------------------------------------------

// End-of-run summary over one or more wafers of a run: counts per state and per outcome,
// dies/s, elapsed, quota left (from the last wafer that has a quota).
// Text for an SVG or XML document: & < > " ' escaped, control characters and invalid UTF-8
// replaced by '?', so the document stays well-formed whatever the text holds.
std::string xml_text(std::string_view s);

std::string summary_text(std::span<const WaferRun> runs);
std::string summary_json(std::span<const WaferRun> runs);  // includes the reconciliation checks

std::string reconciliation_text(const Reconciliation& r, const WaferRun& run);
std::string reconciliation_csv(std::span<const Reconciliation> rows);  // header + one row each
std::string lot_reconciliation_text(const LotReconciliation& lot);
std::string lot_reconciliation_csv(const LotReconciliation& lot);  // wafers + TOTAL row

// The colour class of a die in the picture.
enum class MapCategory {
    kNotSelected,
    kIssued,
    kDelivered,
    kProgrammed,
    kFailed,
    kVoid,
    kRefused,
    kNoRecord
};
inline constexpr size_t kMapCategoryCount = 8;
MapCategory category_of(const DieRecord& d) noexcept;
const char* to_string(MapCategory c) noexcept;  // legend label
const char* colour_of(MapCategory c) noexcept;  // "#rrggbb"

struct SvgOptions {
    int map_pixels = 1000;     // size of the square map area in pixels
    bool die_tooltips = true;  // a <title> per die "(x, y) STATE outcome" (~30 bytes a die)
};
std::string wafer_svg(const WaferRun& run, const SvgOptions& options = {});

struct StdfOptions {
    std::string tester_type = "waferprov";  // MIR TSTR_TYP
    std::string exec_version;               // MIR EXEC_VER (default: the project version)
    uint8_t station = 1;                    // MIR STAT_NUM
    char mode_code = 'P';                   // MIR MODE_COD (P production, E engineering, ...)
};
// STDF V4, little-endian. Soft/hard bins per outcome: see stdf_soft_bin()/docs/reports.md.
Bytes stdf_bytes(const WaferRun& run, const StdfOptions& options = {});
uint16_t stdf_soft_bin(Outcome o) noexcept;  // 1, 2, 10, 11, 12 (0 for not selected)
uint16_t stdf_hard_bin(Outcome o) noexcept;  // 1 pass, 2 refused, 3 failed (0 not selected)

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

// Writes `data` to `path` atomically (temp file in the same directory, fsync, rename).
// Creates missing parent directories.
Status write_file_atomic(const std::filesystem::path& path, std::string_view data);

// The first SVG-to-PNG converter on PATH: rsvg-convert, else ImageMagick convert.
std::optional<std::filesystem::path> find_svg_converter();

// Converts an SVG file to PNG (atomically). Returns false with `note` set when no converter is
// installed or the converter failed; neither is an error of the run.
bool svg_to_png(const std::filesystem::path& svg, const std::filesystem::path& png,
                std::string& note);

// A path component made safe: [A-Za-z0-9._-] kept, anything else '_' ("." and ".." too).
// At most kMaxPathComponent characters, so that "<lot>_<wafer>.stdf" and the temporary
// ".<name>.<pid>..." beside it stay within a file system's 255-byte names: a longer one keeps
// its first characters and ends in "~" and 16 hex digits of a hash of the whole text, so two
// long lots that share a beginning still get different names.
inline constexpr size_t kMaxPathComponent = 96;
std::string safe_path_component(std::string_view s);
// <out>/<lot>/<NN> (wafer number two digits).
std::filesystem::path wafer_dir(const std::filesystem::path& out, const WaferRun& run);

struct WriteOptions {
    bool png = true;
    SvgOptions svg;
    StdfOptions stdf;
};

struct Written {
    std::vector<std::filesystem::path> files;
    std::vector<std::string> notes;  // e.g. "PNG skipped: no rsvg-convert or convert on PATH"
};

// Writes <out>/<lot>/<NN>/{summary.txt, summary.json, reconciliation.txt, reconciliation.csv,
// wafer.svg, wafer.png, <lot>_<NN>.stdf}. Fails on invalid input or an I/O error.
Result<Written> write_wafer_reports(const std::filesystem::path& out, const WaferRun& run,
                                    const WriteOptions& options = {});

// Writes every wafer's reports and <out>/<lot>/{lot_reconciliation.txt,
// lot_reconciliation.csv, lot_summary.txt, lot_summary.json}. Precondition: same lot.
Result<Written> write_lot_reports(const std::filesystem::path& out, std::span<const WaferRun> runs,
                                  const WriteOptions& options = {});

}  // namespace waferprov::host::report
