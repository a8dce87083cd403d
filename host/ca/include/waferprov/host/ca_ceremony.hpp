// The production CA ceremony (docs/certificates.md): the root stays offline, elsewhere.
//   1. `ca csr`    generates the manufacturer CA key (inside a PKCS#11 token, or a PEM file) and
//                  writes a PKCS#10 request signed by it: DIR/ca.csr (+ DIR/ca.key for PEM).
//   2. the offline root signs the request (any CA tool: `openssl ca`, an HSM-backed root).
//   3. `ca import` checks what comes back before a job may use it, then writes DIR/ca.pem and
//                  DIR/root.pem: the certificate's key is the request's key, the certificate
//                  has the manufacturer-CA profile, it chains to the root, and both are valid
//                  now.
#pragma once

#include <chrono>
#include <filesystem>

#include "waferprov/host/ca_init.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host {

struct CsrFiles {
    std::filesystem::path csr;  // DIR/ca.csr (PEM)
    std::filesystem::path key;  // DIR/ca.key (0600); empty when the key is in a token
};

// Generates a P-256 key into DIR/ca.key (0600) and writes DIR/ca.csr for it. The subject is
// the manufacturer CA's (O = organization, CN = manufacturer_ca_common_name()); the request
// asks for basicConstraints CA:TRUE, pathlen 0 and keyUsage keyCertSign, cRLSign,
// digitalSignature. Refuses, before writing anything, if either file exists.
Result<CsrFiles> make_pem_csr(const std::filesystem::path& dir, const ChainOptions& options);

// The same with the key pair generated inside the token (never leaving it); the request is
// signed by the token (CKM_ECDSA). Refuses if DIR/ca.csr exists or the token already holds a
// private key with that label; on a later failure the new key pair is destroyed again.
Result<CsrFiles> make_hsm_csr(const std::filesystem::path& dir, const HsmChainOptions& options);

struct ImportedChain {
    std::filesystem::path ca_cert;    // DIR/ca.pem
    std::filesystem::path root_cert;  // DIR/root.pem
};

// Checks `certificate_pem` (the manufacturer CA certificate the root returned) against
// DIR/ca.csr and `root_pem`, at time `now`, and only then writes DIR/ca.pem and DIR/root.pem
// (never overwriting). Refused, with the reason named: a certificate for another key than the
// request's; a subject other than the request's; not a CA (basicConstraints critical, CA:TRUE,
// pathlen 0); keyUsage not critical or lacking keyCertSign or digitalSignature (the CA also
// signs the ledger's export manifests); no subject key identifier; not issued by the root, or
// a root that is not a self-signed CA; a chain that does not verify; either certificate not
// valid at `now`, or the CA outliving its root.
Result<ImportedChain> import_ca_certificate(
    const std::filesystem::path& dir, const std::filesystem::path& certificate_pem,
    const std::filesystem::path& root_pem,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

}  // namespace waferprov::host
