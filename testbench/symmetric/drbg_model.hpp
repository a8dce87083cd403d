// Bench-level model of rtl/symmetric/ctr_drbg.sv built on OpenSSL: the CTR_DRBG itself is
// OpenSSL's; the reseed-counter refusal and the WPID-1 scalar rejection rule are applied here
// exactly as the block specifies them.
#pragma once

#include <algorithm>
#include <optional>

#include "bits.hpp"
#include "ossl_ref.hpp"

namespace symbench {

enum Err : uint8_t { kErrNone = 0, kErrReseed = 1, kErrNotInst = 2 };

inline const Bytes kP256N =
    from_hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
inline const Bytes kLimit2p255 = [] {
    Bytes b(32, 0);
    b[0] = 0x80;
    return b;
}();

inline bool scalar_ok(const Bytes& d, const Bytes& limit) {
    const bool zero = std::all_of(d.begin(), d.end(), [](uint8_t x) { return x == 0; });
    return !zero && std::lexicographical_compare(d.begin(), d.end(), limit.begin(), limit.end());
}

// The bench-level model of the block: OpenSSL's CTR_DRBG plus the reseed counter check and the
// scalar rejection rule, exactly as the block specifies them.
class RefDrbg {
public:
    explicit RefDrbg(uint64_t interval = (1ULL << 48) - 1) : interval_(interval) {}
    void instantiate(std::span<const uint8_t> e, std::span<const uint8_t> p) {
        d_.instantiate(e, p);
        rc_ = 1;
    }
    void reseed(std::span<const uint8_t> e) {
        d_.reseed(e);
        rc_ = 1;
    }
    std::optional<Bytes> generate(size_t n = 32) {
        if (rc_ > interval_) return std::nullopt;
        ++rc_;
        return d_.generate(n);
    }
    struct Scalar {
        uint8_t err;
        Bytes d;
        uint16_t rejects;
    };
    Scalar scalar(const Bytes& limit) {
        Scalar s{kErrNone, Bytes(32, 0), 0};
        for (;;) {
            auto g = generate();
            if (!g) {
                s.err = kErrReseed;
                return s;
            }
            if (scalar_ok(*g, limit)) {
                s.d = *g;
                return s;
            }
            ++s.rejects;
        }
    }

private:
    ossl::CtrDrbg d_;
    uint64_t interval_;
    uint64_t rc_ = 0;
};

}  // namespace symbench
