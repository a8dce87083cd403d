// P-256 base-point multiplication and point validation on OpenSSL's EC code (which uses a
// constant-time fixed-base comb for the generator). Thread-safe: the group is shared read-only
// and every call has its own BN_CTX.
#pragma once

#include "waferprov/accelerator.hpp"

namespace waferprov::software {

// Q = d*G. kInvalidScalar for d = 0 or d >= n, checked before any arithmetic.
Result<P256Point> p256_base_mul(ByteSpan scalar);

// Ok iff (x, y) is a point on P-256 other than infinity (both coordinates < p).
Status p256_check_point(const wpid1::Coord& x, const wpid1::Coord& y);

}  // namespace waferprov::software
