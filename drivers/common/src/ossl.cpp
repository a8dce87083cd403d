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

}  // namespace waferprov::ossl
