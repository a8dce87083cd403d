// Types shared by the host libraries (wafer maps, ledger, reports, pipeline).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "waferprov/result.hpp"
#include "waferprov/wpid1.hpp"

namespace waferprov::host {

// Every text field the host takes from a job file or a wafer map (lot, substrate id, customer,
// product, ...) is printable ASCII (0x20..0x7e) and at most this long: what the ledger records
// and the reports print. Checked when the file is read, so a bad field is named there.
inline constexpr size_t kMaxTextField = 256;

// Why `s` is not an acceptable text field, or nullopt if it is. The answer never repeats the
// text (it may be megabytes or control characters): "must not be empty", "is 300 characters
// long; the limit is 256", "has the byte 0xc3 at character 5; only printable ASCII (0x20..0x7e)
// is allowed".
std::optional<std::string> text_field_problem(std::string_view s, bool may_be_empty = true);

// Where a die is on the floor: LOT_ID + wafer number + X/Y in the map's own coordinate
// system (after OriginLocation/AxisDirection are applied; see docs/wafer-maps.md), and the
// substrate id of the physical wafer (E142 SubstrateId, SINF WAFER). Wafer numbers repeat
// (a slot, a number printed by a supplier); the substrate id is what tells two physical wafers
// apart, so it is part of the location everywhere: the ledger, the derived UID, the
// certificate, the reports. Two locations are the same die only if all five fields agree.
struct DieLocation {
    std::string lot;
    int wafer = 0;
    int x = 0;
    int y = 0;
    std::string substrate;  // printable ASCII; "" only where the host cannot know it
    // A packaged part given its identity at final test (docs/final-test.md): it has no wafer
    // position, so wafer, x and y are 0 and mean nothing, substrate is "", and where it sat is
    // its final-test record's FinalLocation.
    bool packaged = false;
    bool operator==(const DieLocation&) const = default;
    auto operator<=>(const DieLocation&) const = default;
    // "LOT1234 wafer 3 [LOT1234-03] (12, -4)"; a packaged part: "LOT1234 packaged part".
    std::string describe() const;
};

// Ledger state of a die's identity.
enum class DieState { kIssued, kDelivered, kProgrammed, kFailed, kVoid };
const char* to_string(DieState s) noexcept;                  // "ISSUED", ...
Result<DieState> die_state_from_string(std::string_view s);  // inverse; error names the text

// Where a job's ledger is, naming its store (docs/ledger.md "Stores"): a PostgreSQL database as
// libpq's URI ("postgresql://…" or "postgres://…"), else a SQLite file, as a path or as
// "sqlite:PATH". sqlite_path_of() is the path, without "sqlite:".
bool is_postgres_location(std::string_view location);
std::string sqlite_path_of(std::string_view location);

// One die of a wafer map.
struct MapDie {
    int x = 0;
    int y = 0;
    std::string bin;                // the bin code as written in the map (e.g. "01", "A")
    std::optional<wpid1::Uid> uid;  // from a DeviceIdMap, where the map has one
};

// A wafer map as read from SEMI E142 or SINF.
struct WaferMap {
    std::string format;        // "E142" or "SINF"
    std::string lot;           // LotId / LOT
    int wafer = 0;             // SlotNumber / WAFER number
    std::string substrate_id;  // SubstrateId (wafer id text)
    std::string device;        // product/device name where the map has one
    int columns = 0;           // layout size in dies
    int rows = 0;
    double die_width_mm = 0;  // step size where known, else 0
    double die_height_mm = 0;
    std::string origin = "LowerLeft";  // as read (already applied to x/y)
    std::string axis = "UpRight";
    double wafer_diameter_mm = 0;  // where the map gives it, else 0
    int flat_deg = -1;     // notch/flat location, degrees clockwise from the top of the map's
                           // picture (0 up, 90 right, 180 down, 270 left); -1 = not given
    std::string null_bin;  // the "no die" code
    std::map<std::string, std::string> bin_descriptions;  // bin code -> description/quality
    std::vector<MapDie> dies;                             // every die present (null bins excluded)
    // Added for the wafer map readers (host/wafermap):
    std::string bin_type;                // E142 BinType as read ("Ascii", "HexaDecimal",
                                         // "Integer2", "Decimal"); "HexaDecimal" for SINF
    std::vector<std::string> good_bins;  // bins the map marks good: BinQuality Pass or
                                         // Pick="true" (E142), BCEQU (SINF); sorted
};

}  // namespace waferprov::host
