#include "waferprov/testing/metrics_scrape.hpp"

#include <sstream>

#include "waferprov/testing/process.hpp"

namespace waferprov::testing {

std::string http_get(const std::string& url, const std::filesystem::path& dir, std::string* why) {
    const auto body = dir / "scrape.txt", log = dir / "curl.log";
    std::filesystem::remove(body);
    const int rc =
        run_process({"/usr/bin/curl", "-sS", "--max-time", "20", "-o", body.string(), url}, log,
                    std::chrono::seconds(60));
    if (rc != 0) {
        if (why != nullptr) *why = "curl exit " + std::to_string(rc) + ": " + read_text(log);
        return "";
    }
    return read_text(body);
}

double exposition_sample(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    return -1;
}

}  // namespace waferprov::testing
