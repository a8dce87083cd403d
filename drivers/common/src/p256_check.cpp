#include "waferprov/p256_check.hpp"

#include <openssl/obj_mac.h>

#include "waferprov/ossl.hpp"

namespace waferprov {
namespace {

const EC_GROUP* group() {
    static const ossl::EcGroup g(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
    return g.get();
}

// Per thread: the BN_CTX, point and coordinates of one check, reused (the card driver checks
// every record of a batch; allocating them per point cost a third of the check).
struct Scratch {
    ossl::BnCtx ctx{BN_CTX_new()};
    ossl::EcPoint q;
    ossl::Bn x{BN_new()}, y{BN_new()};
    explicit Scratch(const EC_GROUP* g) : q(EC_POINT_new(g)) {}
    bool ok() const { return ctx && q && x && y; }
};

}  // namespace

Status p256_check_point(const wpid1::Coord& xc, const wpid1::Coord& yc) {
    const EC_GROUP* g = group();
    if (g == nullptr) return ossl::ossl_error("loading P-256");
    thread_local Scratch s(g);
    if (!s.ok()) return ossl::ossl_error("P-256 allocation");
    // EC_POINT_set_affine_coordinates rejects coordinates >= p and, since OpenSSL 1.1.1, points
    // off the curve (it runs EC_POINT_is_on_curve itself: a second call only repeated it); the
    // point at infinity has no affine coordinates. primitives_test checks both refusals.
    if (BN_bin2bn(xc.data(), 32, s.x.get()) == nullptr ||
        BN_bin2bn(yc.data(), 32, s.y.get()) == nullptr ||
        EC_POINT_set_affine_coordinates(g, s.q.get(), s.x.get(), s.y.get(), s.ctx.get()) != 1) {
        ossl::clear_errors();
        return make_error(ErrorCode::kCrypto, "public key is not a point on P-256");
    }
    return ok_status();
}

}  // namespace waferprov
