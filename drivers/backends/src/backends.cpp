#include "waferprov/backends.hpp"

#include "waferprov/software/software_engine.hpp"

namespace waferprov {

std::vector<std::string> available_backends() { return {"software"}; }

Result<std::unique_ptr<Accelerator>> make_backend(const BackendOptions& options) {
    if (options.name == "software") {
        WP_ASSIGN_OR_RETURN(software::DeviceKey dk, device_key_for(options));
        return std::unique_ptr<Accelerator>(
            std::make_unique<software::SoftwareEngine>(std::move(dk)));
    }
    std::string names;
    for (const auto& n : available_backends()) names += (names.empty() ? "" : ", ") + n;
    return make_error(ErrorCode::kNotFound,
                      "unknown backend '" + options.name + "' (this build has: " + names + ")");
}

Result<SecretArray<32>> device_key_for(const BackendOptions& options) {
    if (options.name != "software")
        return make_error(ErrorCode::kNotFound,
                          "no known device key for backend '" + options.name + "'");
    if (options.device_key_file) return software::load_device_key(*options.device_key_file);
    return software::test_device_key();
}

}  // namespace waferprov
