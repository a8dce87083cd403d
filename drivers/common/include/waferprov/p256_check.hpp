// The host's check of every public key an accelerator returns, before anything is signed for
// it: (x, y) must be a point on P-256 other than infinity. On OpenSSL's EC code, independent of
// every backend (the card's engines, the software engine), so a faulty accelerator cannot vouch
// for itself. Thread-safe: the group is shared read-only and every call has its own BN_CTX.
#pragma once

#include "waferprov/result.hpp"
#include "waferprov/wpid1.hpp"

namespace waferprov {

// Ok iff (x, y) is a point on P-256 other than infinity (both coordinates < p); kCrypto
// ("public key is not a point on P-256") otherwise.
Status p256_check_point(const wpid1::Coord& x, const wpid1::Coord& y);

}  // namespace waferprov
