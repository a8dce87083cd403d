// Wafer maps: reading SEMI E142 XML and SINF text maps into a WaferMap, choosing the dies a job
// provisions, and writing maps back out (E142 2DArray, SINF).
//
// The coordinate convention (how a map's row/column becomes the floor's x/y under every
// OriginLocation and AxisDirection), the DeviceIdMap form and the error messages are specified in
// docs/wafer-maps.md. Readers are all-or-nothing: a map with any defect yields an error naming
// the line (or element) and never a partial WaferMap, so nothing is provisioned from a bad map.
//
// Thread-safety: every function here is pure (no shared state); call them from any thread.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "waferprov/host/model.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host {

// Limits that keep a hostile or corrupt map from exhausting the host.
struct MapReadOptions {
    size_t max_bytes = size_t{64} << 20;  // a larger file is refused before it is parsed
    int max_dimension = 10000;            // columns and rows of the layout
    size_t max_dies = 1000000;            // dies (and Coordinate/DeviceId entries) in one map
    // The wafer number the operator gives (`--wafer N`), for maps whose own fields do not give
    // one unambiguously. A map that does give a number must agree with it.
    std::optional<int> wafer_number;
    // E142: the DeviceIdMap the job takes UIDs from (`[map] uid_overlay`), named by the MapName
    // of its Overlay. Unset: the map's only DeviceIdMap, if any (two or more are refused as
    // ambiguous). "": none (the job derives UIDs; every DeviceIdMap is ignored). A name: that
    // overlay; the others (a supplier's own die ids) are ignored and never checked as UIDs.
    std::optional<std::string> uid_overlay;
};

// The wafer number a substrate id gives without guessing: all digits ("07" -> 7), or the lot
// followed by '-' and digits ("LOT77-12" -> 12 for lot "LOT77"); at most 65535. Anything else
// (free text such as "PH8Q66-02B6" or "E17340W05PA2") gives none: the number must then come
// from a field that means it (E142 SlotNumber) or from the operator (`--wafer N`).
std::optional<int> wafer_number_of_substrate(std::string_view substrate, std::string_view lot);

// Reads a SEMI E142 substrate map held in `xml`. `source` names it in error messages (usually
// the file path): "<source>: line 12: ...". DOCTYPE declarations and entities are refused. A
// Substrate or SubstrateMap whose SubstrateType is not Wafer (case-insensitive; none means
// Wafer) is refused naming the type: a strip map is a carrier map (read_e142_carriers).
Result<WaferMap> read_e142(std::string_view xml, std::string_view source = "E142 map",
                           const MapReadOptions& options = {});

// ---- Carrier maps (final test, docs/final-test.md "Strip maps") ----------------------------
// At final test the parts sit in carriers: strips, each a SEMI E142 Substrate of SubstrateType
// "Strip" with its own SubstrateMap. A carrier position is (row, column) = the E142 (Y, X) of
// the position under the SubstrateMap's OriginLocation and AxisDirection, so both count from 0.

// One position of a strip that holds a unit (NullBin positions are not listed).
struct CarrierMapPosition {
    int row = 0;                    // E142 Y
    int column = 0;                 // E142 X
    std::string bin;                // the bin the file gives the unit (canonical form)
    bool good = false;              // the bin is marked good (BinQuality Pass/Good or Pick)
    std::optional<wpid1::Uid> uid;  // from the strip's DeviceIdMap, where it has one
    bool operator==(const CarrierMapPosition&) const = default;
};

// One strip of a carrier map file.
struct CarrierMap {
    std::string strip_id;  // Substrate SubstrateId: the carrier id sent in FINAL_TOUCHDOWN
    std::string lot;       // Substrate LotId ("" when the file gives none)
    std::string product;   // the layout's ProductId ("" when none)
    int rows = 0;          // Layout Dimension Y
    int columns = 0;       // Layout Dimension X
    std::string origin = "LowerLeft";
    std::string axis = "UpRight";
    std::string bin_type;
    std::string null_bin;
    std::vector<std::string> good_bins;                   // sorted
    std::map<std::string, std::string> bin_descriptions;  // bin code -> description/quality
    std::vector<CarrierMapPosition> positions;            // by row, then column
};

// Reads the strips of a SEMI E142 file as carrier maps, in the order of their SubstrateMaps.
// Every Substrate must be of SubstrateType Strip (case-insensitive; a Wafer, a Tray or none is
// refused naming it), every SubstrateMap must name its Substrate (by SubstrateId when there are
// several) and hold exactly one BinCodeMap, strip ids are unique, and each strip is checked as
// a wafer map is (layout, BinType, rows, BinDefinitions, BinCount, DeviceIdMap) but needs no
// SlotNumber. A position with a negative X or Y (OriginLocation Center) is refused: carrier
// positions count from 0. All-or-nothing: any defect is an error naming the file and line.
Result<std::vector<CarrierMap>> read_e142_carriers(std::string_view xml,
                                                   std::string_view source = "E142 strip map",
                                                   const MapReadOptions& options = {});

// read_e142_carriers on a file (capped at options.max_bytes like read_map_file); a file that
// is not XML is refused: strip maps are read from SEMI E142 only.
Result<std::vector<CarrierMap>> read_carrier_file(const std::filesystem::path& file,
                                                  const MapReadOptions& options = {});

// Reads a SINF text map held in `text`; errors name the line ("<source>: line 7: ...").
Result<WaferMap> read_sinf(std::string_view text, std::string_view source = "SINF map",
                           const MapReadOptions& options = {});

// Reads a file, choosing the format from its content: XML (first non-blank character '<') is
// E142, anything else SINF. Files larger than options.max_bytes are refused unread.
Result<WaferMap> read_map_file(const std::filesystem::path& file,
                               const MapReadOptions& options = {});

// The dies whose bin is one of `bins`, in the map's order. Bin codes compare as the map writes
// them, except that hexadecimal codes (HexaDecimal, Integer2, SINF) ignore case. Errors: `bins`
// empty, or a requested bin the map does not define (E142: not in BinDefinitions; SINF: neither
// in BCEQU nor present in the rows) — a typo in a job must not silently provision nothing.
Result<std::vector<MapDie>> select_dies(const WaferMap& map, const std::vector<std::string>& bins);

// Number of dies per bin code (bins defined but unused appear with 0).
std::map<std::string, size_t> count_by_bin(const WaferMap& map);

// Floor coordinates <-> 2DArray picture position (column from the left, row from the top) for a
// map of `columns` x `rows` under `origin`/`axis`. Errors name an unknown origin or axis.
struct GridPosition {
    int column = 0;
    int row = 0;
};
struct CoordinateSystem {
    int columns = 0;
    int rows = 0;
    int origin_column = 0;  // picture position of the die at (0, 0)
    int origin_row = 0;
    int x_sign = 1;  // +1: x grows to the right in the picture
    int y_sign = 1;  // +1: y grows upwards in the picture
    GridPosition to_grid(int x, int y) const {
        return {origin_column + x_sign * x, origin_row - y_sign * y};
    }
    void to_floor(int column, int row, int& x, int& y) const {
        x = x_sign * (column - origin_column);
        y = y_sign * (origin_row - row);
    }
    bool contains(GridPosition p) const {
        return p.column >= 0 && p.column < columns && p.row >= 0 && p.row < rows;
    }
};
Result<CoordinateSystem> coordinate_system(int columns, int rows, std::string_view origin,
                                           std::string_view axis);

// Writes `map` as SEMI E142 XML in 2DArray form with the map's bin_type (Ascii, HexaDecimal or
// Integer2), origin and axis, BinDefinitions from bin_descriptions/good_bins (with BinCount),
// and a DeviceIdMap overlay when any die has a UID. Errors: a die outside the layout, duplicate
// coordinates, a code that does not fit the bin type, or no null_bin.
Result<std::string> write_e142(const WaferMap& map);

// Writes `map` as SINF. SINF has no origin field, so the map must use the SINF reading
// (UpperLeft, DownRight) and two-hex-digit bins; `__` marks no die.
Result<std::string> write_sinf(const WaferMap& map);

}  // namespace waferprov::host
