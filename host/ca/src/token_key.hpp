// A manufacturer CA key pair generated inside a PKCS#11 token, shared by `ca init --hsm` and
// `ca csr --hsm`: the private key is CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_SIGN only; CKA_ID
// is set to the SHA-1 of the public point (the certificate's SKI), so operators can match the
// key to its certificate.
#pragma once

#include <memory>
#include <string>

#include "pkcs11_module.hpp"
#include "waferprov/host/ca_init.hpp"
#include "waferprov/ossl.hpp"

namespace waferprov::host::ca_detail {

// A logged-in read/write session on the token the options name.
struct TokenSession {
    std::shared_ptr<p11::Module> module;
    p11::Session session;
    std::string where;  // "token 'T' on PKCS#11 module 'M'", for messages
};
Result<TokenSession> open_ca_token(const HsmChainOptions& options);

// Refuses if the token already holds a private key labelled options.key_label.
Status refuse_existing_key(TokenSession& t, const HsmChainOptions& options);

struct TokenKey {
    ck_object_handle_t pub = CK_INVALID_HANDLE;
    ck_object_handle_t priv = CK_INVALID_HANDLE;
    ossl::Pkey public_key;  // the token's public point as an OpenSSL key
};
// Generates the key pair (CKM_EC_KEY_PAIR_GEN, P-256) and sets CKA_ID. On failure nothing is
// left in the token.
Result<TokenKey> generate_ca_key(TokenSession& t, const HsmChainOptions& options);

// Removes a key pair made by generate_ca_key (when a later step fails).
void destroy_key(TokenSession& t, const TokenKey& key) noexcept;

}  // namespace waferprov::host::ca_detail
