// A throwaway SoftHSM2 token for tests (the CA's, the ledger's, the pipeline's).
//
// create() makes a temporary directory holding softhsm2.conf (file object store, tokens in
// DIR/tokens), points SOFTHSM2_CONF at it for this process and runs
// `softhsm2-util --init-token --free`. The destructor restores SOFTHSM2_CONF and removes the
// directory. Because it changes the process environment, have one token at a time per process,
// create it before other threads start, and open signers after create() (a PKCS#11 module
// reads SOFTHSM2_CONF in C_Initialize). The PINs are test values passed on softhsm2-util's
// command line: never use this for a real token.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "waferprov/result.hpp"

namespace waferprov::testing {

struct SoftHsmTokenOptions {
    std::string label = "waferprov-test";
    std::string user_pin = "123456";
    std::string so_pin = "12345678";
};

class SoftHsmToken {
public:
    // The SoftHSM2 module, if installed (Debian: /usr/lib/softhsm/libsofthsm2.so).
    static std::optional<std::filesystem::path> find_module();

    static Result<std::unique_ptr<SoftHsmToken>> create(const SoftHsmTokenOptions& options = {});
    ~SoftHsmToken();
    SoftHsmToken(const SoftHsmToken&) = delete;
    SoftHsmToken& operator=(const SoftHsmToken&) = delete;

    const std::filesystem::path& module() const { return module_; }
    const std::string& label() const { return options_.label; }
    const std::string& user_pin() const { return options_.user_pin; }
    const std::filesystem::path& dir() const { return dir_; }

    // Sets the environment variable `name` to the user PIN (what the signers read).
    void export_pin(const std::string& name) const;

private:
    SoftHsmToken() = default;
    SoftHsmTokenOptions options_;
    std::filesystem::path module_;
    std::filesystem::path dir_;
    std::optional<std::string> previous_conf_;
};

}  // namespace waferprov::testing
