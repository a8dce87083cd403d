// RAII handles for ECDSA signatures and OpenSSL parameter lists, beside those of ossl.hpp (kept
// apart so that the many users of ossl.hpp do not pull in these headers): only the proof of
// possession (possession.cpp) and its tests use them.
#pragma once

#include <openssl/ecdsa.h>
#include <openssl/param_build.h>

#include "waferprov/ossl.hpp"

namespace waferprov::ossl {

using EcdsaSig = Ptr<ECDSA_SIG, ECDSA_SIG_free>;
using ParamBld = Ptr<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using Params = Ptr<OSSL_PARAM, OSSL_PARAM_free>;

}  // namespace waferprov::ossl
