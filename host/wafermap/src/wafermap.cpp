// Coordinate systems, die selection, format detection and the shared helpers.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <set>

#include "internal.hpp"
#include "waferprov/files.hpp"
#include "waferprov/host/wafermap.hpp"

namespace waferprov::host {
namespace detail {

std::string_view trim(std::string_view s, std::string_view chars) {
    const auto b = s.find_first_not_of(chars);
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(chars);
    return s.substr(b, e - b + 1);
}

std::string to_upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::optional<int> parse_int(std::string_view s) {
    if (s.empty()) return std::nullopt;
    if (s.front() == '+') s.remove_prefix(1);
    int v = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
    return v;
}

std::optional<double> parse_number(std::string_view s) {
    if (s.empty() || s.size() > 32) return std::nullopt;
    double v = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr != s.data() + s.size() || !(v >= 0) || v > 1e6)
        return std::nullopt;
    return v;
}

std::optional<std::string> canonical_bin_type(std::string_view bin_type) {
    for (const char* name : {"Ascii", "HexaDecimal", "Integer2", "Decimal"})
        if (iequals(bin_type, name)) return std::string(name);
    return std::nullopt;
}

int code_width(std::string_view bin_type) {
    if (bin_type == "Ascii") return 1;
    if (bin_type == "HexaDecimal") return 2;
    if (bin_type == "Integer2") return 4;
    return 0;
}

std::optional<std::string> normalize_code(std::string_view bin_type, std::string_view code) {
    if (bin_type == "Ascii") {
        if (code.size() != 1 || code[0] < 0x20 || code[0] > 0x7e) return std::nullopt;
        return std::string(code);
    }
    if (bin_type == "Decimal") {
        if (code.empty() || code.size() > 9 ||
            !std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return std::nullopt;
        return std::to_string(*parse_int(code));
    }
    const size_t width = static_cast<size_t>(code_width(bin_type));
    if (width == 0 || code.size() != width || !std::all_of(code.begin(), code.end(), [](char c) {
            return std::isxdigit(static_cast<unsigned char>(c)) != 0;
        }))
        return std::nullopt;
    return to_upper(code);
}

Error line_error(std::string_view source, long line, const std::string& what) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string(source) + ": line " + std::to_string(line) + ": " + what);
}

std::string xml_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default: out += c;
        }
    }
    return out;
}

}  // namespace detail

std::optional<int> wafer_number_of_substrate(std::string_view substrate, std::string_view lot) {
    auto digits_only = [](std::string_view d) {
        return !d.empty() && d.size() <= 5 &&
               std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    std::string_view number;
    if (digits_only(substrate)) {
        number = substrate;
    } else if (!lot.empty() && substrate.size() > lot.size() + 1 &&
               substrate.substr(0, lot.size()) == lot && substrate[lot.size()] == '-' &&
               digits_only(substrate.substr(lot.size() + 1))) {
        number = substrate.substr(lot.size() + 1);
    } else {
        return std::nullopt;
    }
    const auto n = detail::parse_int(number);
    if (!n || *n > 65535) return std::nullopt;
    return n;
}

Result<CoordinateSystem> coordinate_system(int columns, int rows, std::string_view origin,
                                           std::string_view axis) {
    CoordinateSystem cs;
    cs.columns = columns;
    cs.rows = rows;
    // The origin die in picture terms (column from the left, row from the top).
    if (origin == "LowerLeft") {
        cs.origin_column = 0;
        cs.origin_row = rows - 1;
    } else if (origin == "UpperLeft") {
        cs.origin_column = 0;
        cs.origin_row = 0;
    } else if (origin == "UpperRight") {
        cs.origin_column = columns - 1;
        cs.origin_row = 0;
    } else if (origin == "LowerRight") {
        cs.origin_column = columns - 1;
        cs.origin_row = rows - 1;
    } else if (origin == "Center") {
        // With an even count the centre falls between two dies; take the left / upper one.
        cs.origin_column = (columns - 1) / 2;
        cs.origin_row = (rows - 1) / 2;
    } else {
        return make_error(
            ErrorCode::kInvalidArgument,
            "unknown OriginLocation '" + std::string(origin) +
                "' (expected LowerLeft, UpperLeft, UpperRight, LowerRight or Center)");
    }
    if (axis == "UpRight") {
        cs.x_sign = 1;
        cs.y_sign = 1;
    } else if (axis == "DownRight") {
        cs.x_sign = 1;
        cs.y_sign = -1;
    } else if (axis == "UpLeft") {
        cs.x_sign = -1;
        cs.y_sign = 1;
    } else if (axis == "DownLeft") {
        cs.x_sign = -1;
        cs.y_sign = -1;
    } else {
        return make_error(ErrorCode::kInvalidArgument,
                          "unknown AxisDirection '" + std::string(axis) +
                              "' (expected UpRight, DownRight, UpLeft or DownLeft)");
    }
    return cs;
}

namespace {

bool hex_codes(const WaferMap& map) {
    return map.format == "SINF" || map.bin_type == "HexaDecimal" || map.bin_type == "Integer2";
}

std::string canonical_request(const WaferMap& map, const std::string& bin) {
    if (map.bin_type == "Decimal") {
        if (auto n = detail::normalize_code("Decimal", bin)) return *n;
        return bin;
    }
    return hex_codes(map) ? detail::to_upper(bin) : bin;
}

}  // namespace

Result<std::vector<MapDie>> select_dies(const WaferMap& map, const std::vector<std::string>& bins) {
    if (bins.empty()) return make_error(ErrorCode::kInvalidArgument, "no bins given to provision");
    std::set<std::string> wanted;
    for (const auto& b : bins) {
        std::string code = canonical_request(map, b);
        if (map.bin_descriptions.find(code) == map.bin_descriptions.end()) {
            std::string defined;
            for (const auto& [k, v] : map.bin_descriptions)
                defined += (defined.empty() ? "" : " ") + k;
            return make_error(ErrorCode::kInvalidArgument,
                              "bin '" + b + "' is not defined in the map of " + map.lot +
                                  " wafer " + std::to_string(map.wafer) + " (defined: " + defined +
                                  ")");
        }
        wanted.insert(std::move(code));
    }
    std::vector<MapDie> out;
    for (const auto& d : map.dies)
        if (wanted.count(d.bin) != 0) out.push_back(d);
    return out;
}

std::map<std::string, size_t> count_by_bin(const WaferMap& map) {
    std::map<std::string, size_t> counts;
    for (const auto& [code, description] : map.bin_descriptions) counts[code] = 0;
    for (const auto& d : map.dies) ++counts[d.bin];
    return counts;
}

namespace {

// What a file that is neither E142 nor SINF looks like, for the error: up to 16 characters,
// non-printable bytes as \xNN.
std::string preview(std::string_view s) {
    std::string out;
    for (unsigned char c : s.substr(0, 16)) {
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02X", c);
            out += hex;
        }
    }
    return out;
}

// Why `text` is no map at all (empty, UTF-16/32, binary), or nullopt if it may be one.
std::optional<std::string> not_a_map(std::string_view text) {
    if (text.empty()) return "is empty";
    auto starts = [&](std::string_view p) { return text.substr(0, p.size()) == p; };
    using namespace std::string_view_literals;
    if (starts("\xFF\xFE\0\0"sv) || starts("\0\0\xFE\xFF"sv))
        return "is UTF-32 text (byte-order mark " + preview(text.substr(0, 4)) +
               "); wafer maps are read as UTF-8 or ASCII: convert it (iconv -t UTF-8)";
    if (starts("\xFF\xFE") || starts("\xFE\xFF"))
        return "is UTF-16 text (byte-order mark " + preview(text.substr(0, 2)) +
               "); wafer maps are read as UTF-8 or ASCII: convert it (iconv -f UTF-16 -t UTF-8)";
    const size_t nul = text.substr(0, 4096).find('\0');
    if (nul != std::string_view::npos) {
        if (starts("<\0"sv) || starts("\0<"sv))
            return "is UTF-16 text without a byte-order mark (it begins " +
                   preview(text.substr(0, 4)) +
                   "); wafer maps are read as UTF-8 or ASCII: convert it (iconv -f UTF-16 -t "
                   "UTF-8)";
        return "holds binary data (a NUL byte at offset " + std::to_string(nul) +
               "): it is neither a SEMI E142 XML nor a SINF text map";
    }
    return std::nullopt;
}

}  // namespace

Result<WaferMap> read_map_file(const std::filesystem::path& file, const MapReadOptions& options) {
    const std::string name = file.string();
    // The cap holds on what is read, not on st_size (0 for /dev/zero and pipes).
    WP_ASSIGN_OR_RETURN(const std::string text,
                        read_file_capped(file, options.max_bytes, "wafer map"));
    if (auto why = not_a_map(text))
        return make_error(ErrorCode::kInvalidArgument, "wafer map " + name + " " + *why);
    // UTF-8 byte-order mark, then blanks, then '<' for XML.
    std::string_view body(text);
    if (body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);
    body = detail::trim(body);
    if (body.empty())
        return make_error(ErrorCode::kInvalidArgument,
                          "wafer map " + name + " is empty (only blanks)");
    if (body.front() == '<') return read_e142(text, name, options);
    // A file named .xml that is not XML is not read as SINF: its name promised E142, so what it
    // holds is more likely a damaged or mis-exported E142 map than a SINF one.
    std::string ext = file.extension().string();
    if (detail::iequals(ext, ".xml"))
        return make_error(ErrorCode::kInvalidArgument,
                          "wafer map " + name + " is named .xml but is not XML (it begins '" +
                              preview(body) + "', not '<'): neither SEMI E142 nor read as SINF");
    return read_sinf(text, name, options);
}

Result<std::vector<CarrierMap>> read_carrier_file(const std::filesystem::path& file,
                                                  const MapReadOptions& options) {
    const std::string name = file.string();
    WP_ASSIGN_OR_RETURN(const std::string text,
                        read_file_capped(file, options.max_bytes, "strip map"));
    if (auto why = not_a_map(text))
        return make_error(ErrorCode::kInvalidArgument, "strip map " + name + " " + *why);
    std::string_view body(text);
    if (body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);
    body = detail::trim(body);
    if (body.empty() || body.front() != '<')
        return make_error(ErrorCode::kInvalidArgument,
                          "strip map " + name + " is not XML (it begins '" + preview(body) +
                              "'): strip maps are read from SEMI E142 only");
    return read_e142_carriers(text, name, options);
}

}  // namespace waferprov::host
