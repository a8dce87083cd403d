// The development certificate chain `waferprov ca init` creates (docs/certificates.md):
//   root CA (self-signed, P-256, pathlen 1, 20 years)  ->  manufacturer CA (pathlen 0)
// The manufacturer CA signs device certificates. Its key is either a PEM file next to the
// chain or generated inside a PKCS#11 token, where it stays.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "waferprov/host/ca_signers.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host {

struct ChainOptions {
    std::string organization = "waferprov development";  // O of both CA subjects
    std::string product;      // optional: appended to the manufacturer CA's CN
    int validity_years = 20;  // both CA certificates
    // An hour back, so that hosts whose clocks lag a little accept a chain made just now.
    std::chrono::system_clock::time_point not_before =
        std::chrono::system_clock::now() - std::chrono::hours(1);
};

struct HsmChainOptions {
    std::filesystem::path module;          // PKCS#11 module
    std::string token_label;               // an initialized token
    std::string key_label;                 // CKA_LABEL for the new key pair; must be unused
    std::string pin_env = kDefaultPinEnv;  // NAME of the environment variable holding the PIN
    ChainOptions chain;
};

// What was written, and the configuration that opens the manufacturer CA's signer.
struct ChainFiles {
    std::filesystem::path root_cert;  // DIR/root.pem
    std::filesystem::path root_key;   // DIR/root.key (0600)
    std::filesystem::path ca_cert;    // DIR/ca.pem
    std::filesystem::path ca_key;     // DIR/ca.key (0600); empty for the HSM chain
    SignerConfig signer;
};

// The manufacturer CA's subject CN: "<organization or waferprov> Manufacturer CA[ <product>]".
std::string manufacturer_ca_common_name(const ChainOptions& options);
// Refuses a validity outside 1..100 years or names too long for a CA subject.
Status check_chain_options(const ChainOptions& options);

// Writes DIR/root.pem, root.key, ca.pem, ca.key (DIR is created if missing). Refuses, before
// writing anything, if any of them exists.
Result<ChainFiles> init_pem_chain(const std::filesystem::path& dir, const ChainOptions& options);

// Generates the manufacturer CA key pair inside the token (CKM_EC_KEY_PAIR_GEN on P-256; the
// private key CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_SIGN; CKA_ID = SHA-1 of the public
// point), has the root sign a certificate over the token's CKA_EC_POINT and writes
// DIR/root.pem, root.key, ca.pem. Refuses if a file exists or the token already holds a
// private key with that label.
Result<ChainFiles> init_hsm_chain(const std::filesystem::path& dir, const HsmChainOptions& options);

}  // namespace waferprov::host
