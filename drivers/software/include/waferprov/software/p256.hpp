// P-256 base-point multiplication on OpenSSL's EC code (which uses a
// constant-time fixed-base comb for the generator). Thread-safe: the group is shared read-only
// and every call has its own BN_CTX.
#pragma once

#include "waferprov/accelerator.hpp"

namespace waferprov::software {

// Q = d*G. kInvalidScalar for d = 0 or d >= n, checked before any arithmetic.
Result<P256Point> p256_base_mul(ByteSpan scalar);

// The on-curve check of a backend's public key is waferprov::p256_check_point
// (drivers/common, waferprov/p256_check.hpp): the host checks every backend with it.

}  // namespace waferprov::software
