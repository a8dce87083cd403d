// The software engine's device key DK (on an FPGA this is an eFUSE key). The KIK reaches an
// engine only as AES-KW(DK, KIK).
#pragma once

#include <filesystem>

#include "waferprov/bytes.hpp"
#include "waferprov/result.hpp"

namespace waferprov::software {

using DeviceKey = SecretArray<32>;

// Reads a device key file: 64 hex digits (optionally followed by a newline). The file must be a
// regular file owned by the current user with no group or other permission bits (0600/0400).
Result<DeviceKey> load_device_key(const std::filesystem::path& path);

// Writes a fresh random device key to `path` with mode 0600; refuses to overwrite.
Status write_new_device_key(const std::filesystem::path& path);

// The published development test key (docs/identity-spec.md). Only in development builds
// (WAFERPROV_DEVELOPMENT_BUILD); kUnsupported otherwise.
Result<DeviceKey> test_device_key();

}  // namespace waferprov::software
