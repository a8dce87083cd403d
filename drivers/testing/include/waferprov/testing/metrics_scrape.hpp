// Reading Prometheus metrics the way a monitoring system does: GET the endpoint with the real
// curl binary (Debian's curl, installed by tools/install-deps.sh) and pick samples out of the
// text exposition format.
#pragma once

#include <filesystem>
#include <string>

namespace waferprov::testing {

// GET `url` with curl (at most 20 s), using `dir` for the body and curl's log. Returns the body,
// or "" with the reason (curl's exit status and message) in `why`.
std::string http_get(const std::string& url, const std::filesystem::path& dir, std::string* why);

// The value of the sample `series` (name and labels exactly as exposed, e.g.
// `waferprov_quota_left_identities{job="J1"}`) in an exposition text, or -1 if absent.
double exposition_sample(const std::string& text, const std::string& series);

}  // namespace waferprov::testing
