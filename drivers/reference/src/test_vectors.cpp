#include "waferprov/test_vectors.hpp"

#include <fstream>
#include <stdexcept>

#include <openssl/rand.h>

namespace waferprov::reference {

Bytes random_bytes(size_t n) {
    Bytes b(n);
    if (n > 0 && RAND_bytes(b.data(), static_cast<int>(n)) != 1)
        throw std::runtime_error("RAND_bytes failed");
    return b;
}

std::string CavpCase::get(const std::string& key) const {
    for (const auto& [k, v] : fields)
        if (k == key) return v;
    return "";
}

std::vector<std::string> CavpCase::all(const std::string& key) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : fields)
        if (k == key) out.push_back(v);
    return out;
}

bool CavpCase::has_section(const std::string& text) const {
    for (const auto& s : sections)
        if (s == text) return true;
    return false;
}

namespace {
std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return "";
    size_t e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}
}  // namespace

std::vector<CavpCase> read_cavp(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    std::vector<CavpCase> out;
    std::vector<std::string> sections;
    bool in_header_block = false;  // consecutive [..] lines form one header block
    CavpCase cur;
    auto flush = [&] {
        if (!cur.fields.empty()) {
            cur.sections = sections;
            out.push_back(std::move(cur));
        }
        cur = CavpCase{};
    };
    std::string line;
    while (std::getline(in, line)) {
        line = trim(line);
        if (line.empty() || line[0] == '#') {
            if (line.empty()) flush();
            continue;
        }
        if (line.front() == '[' && line.back() == ']') {
            flush();
            if (!in_header_block) {
                // A new header block: keep headers of a different kind from the enclosing
                // block (e.g. "[AES-256 no df]" stays while "[EntropyInputLen = 384]" changes).
                std::vector<std::string> kept;
                for (const auto& s : sections)
                    if (s.find('=') == std::string::npos) kept.push_back(s);
                sections = kept;
            }
            std::string h = trim(line.substr(1, line.size() - 2));
            if (h.find('=') == std::string::npos) sections.clear();
            sections.push_back(h);
            in_header_block = true;
            continue;
        }
        in_header_block = false;
        auto eq = line.find('=');
        if (eq == std::string::npos) continue;
        std::string key = trim(line.substr(0, eq));
        if (key == "COUNT") flush();
        cur.fields.emplace_back(key, trim(line.substr(eq + 1)));
    }
    flush();
    return out;
}

}  // namespace waferprov::reference
