// Small file helpers shared by the key, certificate and report writers.
#pragma once

#include <filesystem>
#include <string_view>

#include "waferprov/result.hpp"

namespace waferprov {

// Creates `path`, which must not exist (O_EXCL: never follows or replaces what is there), with
// exactly `mode` whatever the umask, writes `data`, fsyncs and closes it. Errors:
// kInvalidArgument "refusing to overwrite existing <path>" if it exists, kIo naming the path
// and the step otherwise; on any failure after creating it the file is removed, so it exists
// complete or not at all. The caller wipes `data` if it is secret.
Status write_new_file(const std::filesystem::path& path, std::string_view data, unsigned mode);

}  // namespace waferprov
