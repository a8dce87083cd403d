// Test-only helpers: random inputs and a reader for NIST CAVP .rsp files.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "waferprov/bytes.hpp"

namespace waferprov::reference {

// Fresh random bytes (OpenSSL RAND_bytes).
Bytes random_bytes(size_t n);

// One CAVP case: the bracketed section headers in force ("AES-256 no df", "EntropyInputLen =
// 384", ...) and its "Key = value" lines in order (a key may repeat, e.g. AdditionalInput).
struct CavpCase {
    std::vector<std::string> sections;
    std::vector<std::pair<std::string, std::string>> fields;
    // First value of `key` ("" if absent); all values of `key`.
    std::string get(const std::string& key) const;
    std::vector<std::string> all(const std::string& key) const;
    bool has_section(const std::string& text) const;
};

// Parses a .rsp/.txt CAVP file; throws std::runtime_error if it cannot be read.
std::vector<CavpCase> read_cavp(const std::filesystem::path& path);

}  // namespace waferprov::reference
