// Minimal reader for NIST CAVP .rsp files: `[Name = value]` section headers, `Name = value`
// fields, records separated by blank lines, `#` comments. A field may repeat within a record
// (CTR_DRBG's two AdditionalInput lines), so each name maps to the list of its values in order.
#pragma once

#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace symbench {

struct RspRecord {
    std::map<std::string, std::string> section;              // active [..] headers
    std::map<std::string, std::vector<std::string>> fields;  // record fields

    const std::string& at(const std::string& name, size_t i = 0) const {
        return fields.at(name).at(i);
    }
    bool has(const std::string& name) const { return fields.count(name) != 0; }
};

inline std::string rsp_trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return {};
    const auto e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

// Parses `path`; nullopt when the file cannot be opened.
inline std::optional<std::vector<RspRecord>> read_rsp(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::vector<RspRecord> out;
    std::map<std::string, std::string> section;
    RspRecord cur;
    bool section_done = false;  // a record has started since the last header
    auto flush = [&] {
        if (!cur.fields.empty()) {
            cur.section = section;
            out.push_back(cur);
        }
        cur = RspRecord{};
    };
    std::string line;
    while (std::getline(in, line)) {
        const std::string t = rsp_trim(line);
        if (t.empty()) {
            flush();
            continue;
        }
        if (t[0] == '#') continue;
        if (t.front() == '[' && t.back() == ']') {
            flush();
            if (section_done) {
                section.clear();
                section_done = false;
            }
            const std::string body = t.substr(1, t.size() - 2);
            const auto eq = body.find('=');
            if (eq == std::string::npos)
                section[rsp_trim(body)] = "";
            else
                section[rsp_trim(body.substr(0, eq))] = rsp_trim(body.substr(eq + 1));
            continue;
        }
        const auto eq = t.find('=');
        if (eq == std::string::npos) continue;
        section_done = true;
        cur.fields[rsp_trim(t.substr(0, eq))].push_back(rsp_trim(t.substr(eq + 1)));
    }
    flush();
    return out;
}

}  // namespace symbench
