// OpenSSL reference model for the P-256 key-generation bench: Q = d * G on prime256v1, plus
// the 256-bit scalar helpers the bench needs. Every OpenSSL object lives in a
// drivers/common RAII handle; failures throw with OpenSSL's error queue drained into the message.
// Not thread-safe per instance (the BN_CTX is shared); make one per thread.
#pragma once

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>

#include "waferprov/ossl.hpp"

namespace p256bench {

// A 256-bit value as 32 big-endian bytes (byte 0 is the most significant, the RTL's [255:248]).
using Bytes32 = std::array<uint8_t, 32>;

// The RAII handles and the error-queue reader are drivers/common's (waferprov/ossl.hpp).
using BnPtr = waferprov::ossl::Bn;
using BnCtxPtr = waferprov::ossl::BnCtx;
using GroupPtr = waferprov::ossl::EcGroup;
using PointPtr = waferprov::ossl::EcPoint;

[[noreturn]] inline void ossl_fail(const std::string& what) {
    throw std::runtime_error(waferprov::ossl::ossl_error("OpenSSL: " + what).message);
}

inline BnPtr new_bn() {
    BnPtr bn(BN_new());
    if (!bn) ossl_fail("BN_new");
    return bn;
}

inline BnPtr to_bn(const Bytes32& b) {
    BnPtr bn(BN_bin2bn(b.data(), static_cast<int>(b.size()), nullptr));
    if (!bn) ossl_fail("BN_bin2bn");
    return bn;
}

inline Bytes32 from_bn(const BIGNUM* bn) {
    Bytes32 out{};
    if (BN_bn2binpad(bn, out.data(), static_cast<int>(out.size())) != 32) ossl_fail("BN_bn2binpad");
    return out;
}

inline Bytes32 from_hex(const char* hex) {
    BIGNUM* raw = nullptr;
    if (BN_hex2bn(&raw, hex) == 0) ossl_fail("BN_hex2bn");
    BnPtr bn(raw);
    return from_bn(bn.get());
}

inline std::string to_hex(const Bytes32& b) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string s;
    for (uint8_t v : b) {
        s += kDigits[v >> 4];
        s += kDigits[v & 15];
    }
    return s;
}

// 2^k for k in 0..255.
inline Bytes32 pow2(unsigned k) {
    Bytes32 out{};
    out[31 - k / 8] = static_cast<uint8_t>(1u << (k % 8));
    return out;
}

// a + k (k may be negative), reduced mod 2^256.
inline Bytes32 add_small(const Bytes32& a, long k) {
    BnPtr bn = to_bn(a);
    BnPtr kk = new_bn();
    if (!BN_set_word(kk.get(), static_cast<BN_ULONG>(k < 0 ? -k : k))) ossl_fail("BN_set_word");
    if (!(k < 0 ? BN_sub(bn.get(), bn.get(), kk.get()) : BN_add(bn.get(), bn.get(), kk.get())))
        ossl_fail("BN_add/BN_sub");
    BnPtr mod = new_bn();
    BnCtxPtr ctx(BN_CTX_new());
    if (!ctx || !BN_set_bit(mod.get(), 256) || !BN_nnmod(bn.get(), bn.get(), mod.get(), ctx.get()))
        ossl_fail("BN_nnmod");
    return from_bn(bn.get());
}

// P-256 with the generator; d * G by EC_POINT_mul, affine by EC_POINT_get_affine_coordinates.
class Ref {
public:
    Ref() : ctx_(BN_CTX_new()), group_(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1)) {
        if (!ctx_ || !group_) ossl_fail("EC_GROUP_new_by_curve_name");
        n_ = from_bn(EC_GROUP_get0_order(group_.get()));
        BnPtr p = new_bn();
        if (!EC_GROUP_get_curve(group_.get(), p.get(), nullptr, nullptr, ctx_.get()))
            ossl_fail("EC_GROUP_get_curve");
        p_ = from_bn(p.get());
    }

    const Bytes32& n() const { return n_; }
    const Bytes32& p() const { return p_; }

    // d * G as affine (x, y), or nullopt when d is not a valid private key (0 or >= n).
    std::optional<std::pair<Bytes32, Bytes32>> mul_g(const Bytes32& d) const {
        BnPtr k = to_bn(d);
        if (BN_is_zero(k.get()) || BN_cmp(k.get(), EC_GROUP_get0_order(group_.get())) >= 0)
            return std::nullopt;
        PointPtr q(EC_POINT_new(group_.get()));
        if (!q || !EC_POINT_mul(group_.get(), q.get(), k.get(), nullptr, nullptr, ctx_.get()))
            ossl_fail("EC_POINT_mul");
        BnPtr x = new_bn();
        BnPtr y = new_bn();
        if (!EC_POINT_get_affine_coordinates(group_.get(), q.get(), x.get(), y.get(), ctx_.get()))
            ossl_fail("EC_POINT_get_affine_coordinates");
        return std::make_pair(from_bn(x.get()), from_bn(y.get()));
    }

    // A uniformly random valid scalar in [1, n - 1] from the bench's seeded generator.
    Bytes32 random_scalar(std::mt19937_64& rng) const {
        BnPtr nn = to_bn(n_);
        for (;;) {
            Bytes32 d{};
            for (auto& b : d) b = static_cast<uint8_t>(rng());
            BnPtr k = to_bn(d);
            if (!BN_is_zero(k.get()) && BN_cmp(k.get(), nn.get()) < 0) return d;
        }
    }

private:
    BnCtxPtr ctx_;
    GroupPtr group_;
    Bytes32 n_{};
    Bytes32 p_{};
};

}  // namespace p256bench
