// The backend registry: every accelerator the build has, by name.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "waferprov/accelerator.hpp"

namespace waferprov {

struct BackendOptions {
    std::string name = "software";
    // The engine's device key file (software engine). Without one, development builds use the
    // published test device key; production builds refuse.
    std::optional<std::filesystem::path> device_key_file;
};

// Names of the backends compiled into this build, default first.
std::vector<std::string> available_backends();

// Creates the named backend; kNotFound names the backends that exist.
Result<std::unique_ptr<Accelerator>> make_backend(const BackendOptions& options);

// The device key that KIKs for this backend are wrapped under, as far as the host may know it:
// the software engine's key file when one is given, else the backend's development test key
// (development builds only). Used by `job init` and by the KAT runner, which loads the plain
// KIKs of test files the way a job does.
Result<SecretArray<32>> device_key_for(const BackendOptions& options);

}  // namespace waferprov
