// SINF text maps: "KEY:value" header lines, then one "RowData:" line per row of two-digit hex
// bin codes; "__" is no die, "@@" an untested die. Read as OriginLocation UpperLeft and
// AxisDirection DownRight: x is the column, y the row, both from the first code of the first row.
#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "internal.hpp"
#include "waferprov/host/wafermap.hpp"

namespace waferprov::host {
namespace {

using detail::line_error;

constexpr std::string_view kNoDie = "__";
constexpr std::string_view kUntested = "@@";

std::vector<std::string_view> split_blanks(std::string_view s) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < s.size()) {
        const size_t b = s.find_first_not_of(" \t", i);
        if (b == std::string_view::npos) break;
        const size_t e = std::min(s.find_first_of(" \t", b), s.size());
        out.push_back(s.substr(b, e - b));
        i = e;
    }
    return out;
}

std::optional<double> to_mm(double v, std::string_view unit) {
    if (unit.empty() || detail::iequals(unit, "mm")) return v;
    if (detail::iequals(unit, "um")) return v / 1000;
    if (detail::iequals(unit, "mil")) return v * 0.0254;
    return std::nullopt;
}

// The lines of a SINF file: header keys with their values and lines, the RowData lines.
struct SinfValue {
    std::string text;
    long line;
};
struct SinfRow {
    std::string_view text;
    long line;
};
struct Scanned {
    std::map<std::string, SinfValue> header;
    std::vector<SinfRow> rows;
    long last_line = 1;  // the last non-blank line
};

// Splits the text into header keys (each once, before the rows) and RowData lines.
Result<Scanned> scan_sinf(std::string_view text, const std::string& src,
                          const MapReadOptions& options) {
    using Value = SinfValue;
    Scanned out;
    auto& header = out.header;
    struct Row {
        std::string_view text;
        long line;
    };
    auto& rows = out.rows;

    long line_no = 0;
    long& last_line = out.last_line;
    size_t pos = 0;
    while (pos <= text.size()) {
        const size_t nl = text.find('\n', pos);
        std::string_view line =
            text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
        ++line_no;
        line = detail::trim(line);
        if (line.empty()) continue;
        last_line = line_no;
        const size_t colon = line.find(':');
        if (colon == std::string_view::npos)
            return line_error(
                src, line_no,
                "expected KEY:value or RowData:..., got '" + std::string(line.substr(0, 40)) + "'");
        const std::string key = detail::to_upper(detail::trim(line.substr(0, colon)));
        const std::string_view value = detail::trim(line.substr(colon + 1));
        if (key == "ROWDATA") {
            if (rows.size() >= static_cast<size_t>(options.max_dimension))
                return line_error(
                    src, line_no,
                    "more than " + std::to_string(options.max_dimension) + " RowData lines");
            rows.push_back({value, line_no});
            continue;
        }
        if (!rows.empty() && (key == "ROWCT" || key == "COLCT" || key == "BCEQU"))
            return line_error(src, line_no, key + " after the RowData lines");
        if (header.count(key) != 0)
            return line_error(
                src, line_no,
                key + " repeated (first on line " + std::to_string(header[key].line) + ")");
        header[key] = Value{std::string(value), line_no};
    }

    return out;
}

// The header: lot, wafer number (see docs/wafer-maps.md), rows and columns.
Status read_sinf_header(Scanned& sc, const std::string& src, const MapReadOptions& options,
                        WaferMap& map) {
    using Value = SinfValue;
    auto& header = sc.header;
    const auto& rows = sc.rows;
    const long last_line = sc.last_line;
    map.format = "SINF";
    map.bin_type = "HexaDecimal";
    map.origin = "UpperLeft";
    map.axis = "DownRight";
    map.null_bin = std::string(kNoDie);

    auto required = [&](const std::string& key) -> Result<Value> {
        auto it = header.find(key);
        if (it == header.end() || it->second.text.empty())
            return line_error(src, rows.empty() ? last_line : rows.front().line,
                              "header key " + key + " is missing before the RowData");
        return it->second;
    };
    WP_ASSIGN_OR_RETURN(const Value lot, required("LOT"));
    WP_ASSIGN_OR_RETURN(const Value wafer, required("WAFER"));
    WP_ASSIGN_OR_RETURN(const Value rowct, required("ROWCT"));
    WP_ASSIGN_OR_RETURN(const Value colct, required("COLCT"));
    // Text fields: printable ASCII of at most 256 characters, as the ledger records them;
    // checked before any message quotes them.
    auto text_field = [&](const Value& v, const char* key, bool may_be_empty) -> Status {
        if (auto problem = text_field_problem(v.text, may_be_empty))
            return line_error(src, v.line, std::string(key) + ": " + *problem);
        return ok_status();
    };
    WP_RETURN_IF_ERROR(text_field(lot, "LOT", false));
    WP_RETURN_IF_ERROR(text_field(wafer, "WAFER", false));
    if (auto it = header.find("DEVICE"); it != header.end())
        WP_RETURN_IF_ERROR(text_field(it->second, "DEVICE", true));
    map.lot = lot.text;
    map.substrate_id = wafer.text;
    // WAFER is the wafer's id text. It gives the wafer number only in an unambiguous form (all
    // digits, or "<LOT>-<digits>"); a number read from the tail of free text would make two
    // wafers of a lot one ("PH8Q66-02B6" is not wafer 6).
    const auto own = wafer_number_of_substrate(wafer.text, map.lot);
    if (options.wafer_number) {
        if (own && *own != *options.wafer_number)
            return line_error(src, wafer.line,
                              "WAFER '" + wafer.text + "' is wafer " + std::to_string(*own) +
                                  ", not wafer " + std::to_string(*options.wafer_number) +
                                  " as --wafer says");
        map.wafer = *options.wafer_number;
    } else if (own) {
        map.wafer = *own;
    } else {
        return line_error(src, wafer.line,
                          "WAFER '" + wafer.text +
                              "' does not give a wafer number (only all digits or '" + map.lot +
                              "-<digits>' do); give the number with --wafer N after this --map");
    }
    if (auto it = header.find("DEVICE"); it != header.end()) map.device = it->second.text;

    auto dimension = [&](const Value& v, const char* key) -> Result<int> {
        auto n = detail::parse_int(v.text);
        if (!n || *n <= 0)
            return line_error(src, v.line,
                              std::string(key) + " '" + v.text + "' is not a positive integer");
        if (*n > options.max_dimension)
            return line_error(src, v.line,
                              std::string(key) + " " + v.text + " exceeds the limit of " +
                                  std::to_string(options.max_dimension));
        return *n;
    };
    WP_ASSIGN_OR_RETURN(map.rows, dimension(rowct, "ROWCT"));
    WP_ASSIGN_OR_RETURN(map.columns, dimension(colct, "COLCT"));

    return ok_status();
}

// The die pitch (XDIES/YDIES in DUTMS units), the notch (FNLOC) and the good bins (BCEQU).
Status read_sinf_pitch_notch_bins(Scanned& sc, const std::string& src, WaferMap& map) {
    auto& header = sc.header;
    const std::string unit = header.count("DUTMS") != 0 ? header["DUTMS"].text : "";
    for (const auto& [key, field] :
         {std::pair{"XDIES", &map.die_width_mm}, std::pair{"YDIES", &map.die_height_mm}}) {
        auto it = header.find(key);
        if (it == header.end()) continue;
        auto v = detail::parse_number(it->second.text);
        std::optional<double> mm = v ? to_mm(*v, unit) : std::nullopt;
        if (!mm)
            return line_error(src, it->second.line,
                              std::string(key) + " '" + it->second.text + "' in DUTMS '" + unit +
                                  "' is not a size (mm, um or mil)");
        *field = *mm;
    }

    // FNLOC: the flat or notch, degrees clockwise from the top of the map's picture (180: down).
    if (auto it = header.find("FNLOC"); it != header.end()) {
        auto deg = detail::parse_int(it->second.text);
        if (!deg || *deg < 0 || *deg >= 360)
            return line_error(src, it->second.line,
                              "FNLOC '" + it->second.text +
                                  "' is not the flat/notch angle in degrees (0 to 359)");
        map.flat_deg = static_cast<int>(*deg);
    }

    if (auto it = header.find("BCEQU"); it != header.end()) {
        // The public descriptions of SINF separate the good codes with commas or blanks.
        std::string list = it->second.text;
        std::replace(list.begin(), list.end(), ',', ' ');
        for (std::string_view token : split_blanks(list)) {
            auto code = detail::normalize_code("HexaDecimal", token);
            if (!code)
                return line_error(
                    src, it->second.line,
                    "BCEQU: '" + std::string(token) + "' is not a two-digit hex bin code");
            map.bin_descriptions[*code] = "good (BCEQU)";
            map.good_bins.push_back(*code);
        }
    }

    return ok_status();
}

// The dies: ROWCT RowData lines of COLCT codes, read UpperLeft / DownRight; DIECT checked.
Status read_sinf_rows(const Scanned& sc, const std::string& src, const MapReadOptions& options,
                      WaferMap& map) {
    const auto& header = sc.header;
    const auto& rows = sc.rows;
    const long last_line = sc.last_line;
    if (rows.size() != static_cast<size_t>(map.rows))
        return line_error(src,
                          rows.size() > static_cast<size_t>(map.rows)
                              ? rows[static_cast<size_t>(map.rows)].line
                              : last_line,
                          "the map has " + std::to_string(rows.size()) +
                              " RowData lines; ROWCT is " + std::to_string(map.rows));
    for (size_t r = 0; r < rows.size(); ++r) {
        const auto tokens = split_blanks(rows[r].text);
        if (tokens.size() != static_cast<size_t>(map.columns))
            return line_error(src, rows[r].line,
                              "RowData has " + std::to_string(tokens.size()) + " codes; COLCT is " +
                                  std::to_string(map.columns));
        for (size_t c = 0; c < tokens.size(); ++c) {
            if (tokens[c] == kNoDie) continue;
            std::string code;
            if (tokens[c] == kUntested) {
                code = std::string(kUntested);
                map.bin_descriptions.emplace(code, "untested");
            } else {
                auto n = detail::normalize_code("HexaDecimal", tokens[c]);
                if (!n && tokens[c].size() == 3)
                    return line_error(src, rows[r].line,
                                      "RowData column " + std::to_string(c + 1) + ": '" +
                                          std::string(tokens[c]) +
                                          "' is a three-digit bin code: 3-digit SINF is not "
                                          "supported (convert the map to two-digit hex codes or "
                                          "to SEMI E142)");
                if (!n)
                    return line_error(src, rows[r].line,
                                      "RowData column " + std::to_string(c + 1) + ": '" +
                                          std::string(tokens[c]) +
                                          "' is not a two-digit hex bin code, __ or @@");
                code = *n;
                map.bin_descriptions.emplace(code, "");
            }
            if (map.dies.size() >= options.max_dies)
                return line_error(src, rows[r].line,
                                  "the map holds more than the limit of " +
                                      std::to_string(options.max_dies) + " dies");
            map.dies.push_back(
                MapDie{static_cast<int>(c), static_cast<int>(r), std::move(code), std::nullopt});
        }
    }
    // DIECT, where given, is the number of dies in the rows: a disagreement means a damaged or
    // truncated map, refused like a wrong E142 BinCount.
    if (auto it = header.find("DIECT"); it != header.end()) {
        auto n = detail::parse_int(it->second.text);
        if (!n || *n < 0)
            return line_error(src, it->second.line,
                              "DIECT '" + it->second.text + "' is not a non-negative integer");
        if (static_cast<size_t>(*n) != map.dies.size())
            return line_error(src, it->second.line,
                              "DIECT is " + it->second.text + " but the rows hold " +
                                  std::to_string(map.dies.size()) + " dies");
    }
    return ok_status();
}

}  // namespace

Result<WaferMap> read_sinf(std::string_view text, std::string_view source_view,
                           const MapReadOptions& options) {
    const std::string src(source_view);
    if (text.size() > options.max_bytes)
        return make_error(ErrorCode::kResourceExhausted,
                          src + ": " + std::to_string(text.size()) +
                              " bytes; the limit for a wafer map is " +
                              std::to_string(options.max_bytes));
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);

    WP_ASSIGN_OR_RETURN(Scanned sc, scan_sinf(text, src, options));
    WaferMap map;
    WP_RETURN_IF_ERROR(read_sinf_header(sc, src, options, map));
    WP_RETURN_IF_ERROR(read_sinf_pitch_notch_bins(sc, src, map));
    WP_RETURN_IF_ERROR(read_sinf_rows(sc, src, options, map));
    std::sort(map.good_bins.begin(), map.good_bins.end());
    return map;
}

Result<std::string> write_sinf(const WaferMap& map) {
    if (map.origin != "UpperLeft" || map.axis != "DownRight")
        return make_error(ErrorCode::kUnsupported,
                          "SINF has no origin field: only maps with OriginLocation UpperLeft and "
                          "AxisDirection DownRight can be written as SINF (this one is " +
                              map.origin + ", " + map.axis + ")");
    if (map.columns <= 0 || map.rows <= 0)
        return make_error(ErrorCode::kInvalidArgument, "the map has no layout size");
    std::vector<std::string> grid(static_cast<size_t>(map.columns) * static_cast<size_t>(map.rows),
                                  std::string(kNoDie));
    for (const auto& d : map.dies) {
        if (d.x < 0 || d.x >= map.columns || d.y < 0 || d.y >= map.rows)
            return make_error(ErrorCode::kInvalidArgument, "die (" + std::to_string(d.x) + ", " +
                                                               std::to_string(d.y) +
                                                               ") is outside the layout");
        if (d.bin != kUntested && !detail::normalize_code("HexaDecimal", d.bin))
            return make_error(ErrorCode::kInvalidArgument,
                              "bin '" + d.bin + "' is not a two-digit hex code (SINF)");
        auto& slot = grid[static_cast<size_t>(d.y) * static_cast<size_t>(map.columns) +
                          static_cast<size_t>(d.x)];
        if (slot != kNoDie)
            return make_error(ErrorCode::kInvalidArgument, "two dies at (" + std::to_string(d.x) +
                                                               ", " + std::to_string(d.y) + ")");
        slot = d.bin;
    }
    std::ostringstream out;
    out << "DEVICE:" << map.device << "\n"
        << "LOT:" << map.lot << "\n"
        << "WAFER:" << (map.substrate_id.empty() ? std::to_string(map.wafer) : map.substrate_id)
        << "\n";
    if (map.flat_deg >= 0) out << "FNLOC:" << map.flat_deg << "\n";
    out << "ROWCT:" << map.rows << "\n"
        << "COLCT:" << map.columns << "\n"
        << "BCEQU:";
    for (size_t i = 0; i < map.good_bins.size(); ++i) out << (i ? " " : "") << map.good_bins[i];
    out << "\nREFPX:0\nREFPY:0\nDUTMS:mm\n"
        << "XDIES:" << map.die_width_mm << "\n"
        << "YDIES:" << map.die_height_mm << "\n";
    for (int r = 0; r < map.rows; ++r) {
        out << "RowData:";
        for (int c = 0; c < map.columns; ++c)
            out << (c ? " " : "")
                << grid[static_cast<size_t>(r) * static_cast<size_t>(map.columns) +
                        static_cast<size_t>(c)];
        out << "\n";
    }
    return out.str();
}

}  // namespace waferprov::host
