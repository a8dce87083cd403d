#include "waferprov/software/p256.hpp"

#include <openssl/obj_mac.h>

#include "waferprov/ossl.hpp"

namespace waferprov::software {
namespace {

const EC_GROUP* group() {
    static const ossl::EcGroup g(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
    return g.get();
}

}  // namespace

Result<P256Point> p256_base_mul(ByteSpan scalar) {
    if (scalar.size() != wpid1::kScalarSize)
        return make_error(ErrorCode::kInvalidArgument,
                          "P-256 scalar must be 32 bytes, got " + std::to_string(scalar.size()));
    if (!wpid1::scalar_in_range(scalar))
        return make_error(ErrorCode::kInvalidScalar, "P-256 scalar is 0 or not below n");
    const EC_GROUP* g = group();
    if (g == nullptr) return ossl::ossl_error("loading P-256");
    ossl::BnCtx ctx(BN_CTX_secure_new());
    ossl::Bn d(BN_secure_new());
    ossl::EcPoint q(EC_POINT_new(g));
    ossl::Bn x(BN_new()), y(BN_new());
    if (!ctx || !d || !q || !x || !y) return ossl::ossl_error("P-256 allocation");
    BN_set_flags(d.get(), BN_FLG_CONSTTIME);
    if (BN_bin2bn(scalar.data(), static_cast<int>(scalar.size()), d.get()) == nullptr)
        return ossl::ossl_error("P-256 scalar");
    if (EC_POINT_mul(g, q.get(), d.get(), nullptr, nullptr, ctx.get()) != 1 ||
        EC_POINT_get_affine_coordinates(g, q.get(), x.get(), y.get(), ctx.get()) != 1)
        return ossl::ossl_error("P-256 base-point multiplication");
    P256Point out;
    if (BN_bn2binpad(x.get(), out.x.data(), 32) != 32 ||
        BN_bn2binpad(y.get(), out.y.data(), 32) != 32)
        return ossl::ossl_error("P-256 coordinates");
    return out;
}

}  // namespace waferprov::software
