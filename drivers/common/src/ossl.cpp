#include "waferprov/ossl.hpp"

#include <openssl/err.h>

namespace waferprov::ossl {

Error ossl_error(const std::string& context) {
    std::string text;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!text.empty()) text += "; ";
        text += buf;
    }
    if (text.empty()) text = "no further detail from OpenSSL";
    return make_error(ErrorCode::kCrypto, context + ": " + text);
}

void clear_errors() noexcept { ERR_clear_error(); }

void x509_stack_free(STACK_OF(X509) * stack) noexcept { sk_X509_pop_free(stack, X509_free); }

void buffer_free(unsigned char* buffer) noexcept { OPENSSL_free(buffer); }

Result<Bytes> der_of(const X509* cert) {
    if (cert == nullptr)
        return make_error(ErrorCode::kInvalidArgument, "DER encoding: no certificate");
    const int n = i2d_X509(cert, nullptr);
    if (n <= 0) return ossl_error("DER encoding of a certificate");
    Bytes der(static_cast<size_t>(n));
    unsigned char* p = der.data();
    if (i2d_X509(cert, &p) != n) return ossl_error("DER encoding of a certificate");
    return der;
}

Result<X509Ptr> share(X509* cert) {
    if (cert == nullptr || X509_up_ref(cert) != 1)
        return ossl_error("taking a certificate reference");
    return X509Ptr(cert);
}

}  // namespace waferprov::ossl
