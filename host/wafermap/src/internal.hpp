// Helpers shared by the wafer map readers and writers (not part of the public API).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "waferprov/host/model.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host::detail {

inline constexpr std::string_view kWhitespace = " \t\r\n";

std::string_view trim(std::string_view s, std::string_view chars = kWhitespace);
std::string to_upper(std::string_view s);
bool iequals(std::string_view a, std::string_view b);

// Strict decimal integer (optional sign, digits only, fits int).
std::optional<int> parse_int(std::string_view s);
// Strict non-negative decimal number ("2", "2.5").
std::optional<double> parse_number(std::string_view s);

// The E142 BinType names we accept, canonical spelling ("Ascii", "HexaDecimal", "Integer2",
// "Decimal"); nullopt for anything else.
std::optional<std::string> canonical_bin_type(std::string_view bin_type);

// Characters per die in a 2DArray row; 0 for Decimal (whitespace/comma separated).
int code_width(std::string_view bin_type);

// A bin code in its canonical form for the bin type (hex upper-cased, decimal without leading
// zeros), or nullopt if it is not a well-formed code of that type.
std::optional<std::string> normalize_code(std::string_view bin_type, std::string_view code);

// "<source>: line N: <what>"
Error line_error(std::string_view source, long line, const std::string& what);

std::string xml_escape(std::string_view s);

}  // namespace waferprov::host::detail
