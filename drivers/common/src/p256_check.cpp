#include "waferprov/p256_check.hpp"

#include <openssl/obj_mac.h>

#include "waferprov/ossl.hpp"

namespace waferprov {
namespace {

const EC_GROUP* group() {
    static const ossl::EcGroup g(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
    return g.get();
}

}  // namespace

Status p256_check_point(const wpid1::Coord& xc, const wpid1::Coord& yc) {
    const EC_GROUP* g = group();
    if (g == nullptr) return ossl::ossl_error("loading P-256");
    ossl::BnCtx ctx(BN_CTX_new());
    ossl::EcPoint q(EC_POINT_new(g));
    ossl::Bn x(BN_bin2bn(xc.data(), 32, nullptr)), y(BN_bin2bn(yc.data(), 32, nullptr));
    if (!ctx || !q || !x || !y) return ossl::ossl_error("P-256 allocation");
    // EC_POINT_set_affine_coordinates rejects coordinates >= p and points off the curve.
    if (EC_POINT_set_affine_coordinates(g, q.get(), x.get(), y.get(), ctx.get()) != 1 ||
        EC_POINT_is_on_curve(g, q.get(), ctx.get()) != 1) {
        ossl::clear_errors();
        return make_error(ErrorCode::kCrypto, "public key is not a point on P-256");
    }
    return ok_status();
}

}  // namespace waferprov
