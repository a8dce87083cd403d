// The ledger's anchor inside a PKCS#11 token (docs/ledger.md "The anchor"): for a job whose CA
// key lives in an HSM, one data object per job holds the newest chain head and quota used, where
// an operator who restores the ledger file (or both the file and its head log) cannot roll it
// back. Pass it as LedgerConfig::token_anchor.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "waferprov/host/ca_signers.hpp"
#include "waferprov/host/ledger.hpp"

namespace waferprov::host {

struct TokenAnchorConfig {
    std::filesystem::path module;          // the PKCS#11 module (the job's CA token's)
    std::string token_label;               // CK_TOKEN_INFO.label
    std::string pin_env = kDefaultPinEnv;  // NAME of the environment variable holding the PIN
    std::string job_id;                    // names the object: CKA_LABEL "waferprov-anchor:<job>"
};

// Opens a logged-in read/write session on the token. The object (CKO_DATA, CKA_TOKEN,
// CKA_PRIVATE: only a logged-in user reads or changes it; CKA_APPLICATION "waferprov") is
// created at the first advance(); its CKA_VALUE is "waferprov-anchor 1 <seq> <hash hex> <used>".
// advance() never writes a head at or below the one the token holds; since tokens keep a data
// object's value read-only, it creates the object of the new head and then destroys the older
// one (after a crash between the two, the newest of the objects counts). Not thread-safe (the
// ledger calls it under its mutex).
Result<std::shared_ptr<HeadAnchor>> open_token_anchor(const TokenAnchorConfig& config);

}  // namespace waferprov::host
