// Small file helpers shared by the key, certificate and report writers.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "waferprov/result.hpp"

namespace waferprov {

// Creates `path`, which must not exist (O_EXCL: never follows or replaces what is there), with
// exactly `mode` whatever the umask, writes `data`, fsyncs and closes it. Errors:
// kInvalidArgument "refusing to overwrite existing <path>" if it exists, kIo naming the path
// and the step otherwise; on any failure after creating it the file is removed, so it exists
// complete or not at all. The caller wipes `data` if it is secret.
Status write_new_file(const std::filesystem::path& path, std::string_view data, unsigned mode);

// Reads the whole of `path` (`what` names it in errors: "wrapped KIK", "job file") into memory,
// never more than `max_bytes`: it reads until end of file and stops with an error as soon as the
// content exceeds the cap, so a device or pipe that never ends (/dev/zero, whose st_size is 0)
// costs at most max_bytes + one read's worth of memory. Errors name `what` and the path:
// kInvalidArgument "<what> <path> is a directory", kResourceExhausted "<what> <path> is larger
// than the limit of N bytes", kIo for open/read failures (with strerror).
// Thread-safety: none needed (no shared state).
Result<std::string> read_file_capped(const std::filesystem::path& path, size_t max_bytes,
                                     std::string_view what);

}  // namespace waferprov
