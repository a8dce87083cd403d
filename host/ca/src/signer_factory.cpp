#include "ca_internal.hpp"
#include "waferprov/host/ca_signers.hpp"

namespace waferprov::host {

Result<std::unique_ptr<Signer>> make_signer(const SignerConfig& config) {
    std::unique_ptr<Signer> signer;
    if (const auto* pem = std::get_if<PemSignerConfig>(&config)) {
        WP_ASSIGN_OR_RETURN(signer, PemSigner::open(*pem));
    } else {
        WP_ASSIGN_OR_RETURN(signer, Pkcs11Signer::open(std::get<Pkcs11SignerConfig>(config)));
    }
    WP_RETURN_IF_ERROR(ca_detail::check_signer_matches_certificate(*signer));
    return signer;
}

}  // namespace waferprov::host
