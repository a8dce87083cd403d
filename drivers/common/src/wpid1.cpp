#include "waferprov/wpid1.hpp"

#include <algorithm>
#include <cstring>

namespace waferprov::wpid1 {

const std::array<uint8_t, 32> kP256Order = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};

bool scalar_in_range(ByteSpan d) noexcept {
    if (d.size() != kScalarSize) return false;
    // Big-endian d - n computed byte by byte from the least significant end: d < n iff the
    // subtraction borrows out. Nonzero test ORs every byte. No branch depends on d.
    unsigned borrow = 0;
    unsigned nonzero = 0;
    for (size_t i = kScalarSize; i-- > 0;) {
        unsigned diff = unsigned{d[i]} - unsigned{kP256Order[i]} - borrow;
        borrow = (diff >> 8) & 1u;
        nonzero |= d[i];
    }
    return (borrow & static_cast<unsigned>(nonzero != 0)) != 0;
}

std::array<uint8_t, kRecordSize> IdentityRecord::serialize() const {
    std::array<uint8_t, kRecordSize> out{};
    uint8_t* p = out.data();
    store_be64(p, sequence);
    p += 8;
    p = std::copy(uid.begin(), uid.end(), p);
    p = std::copy(x.begin(), x.end(), p);
    p = std::copy(y.begin(), y.end(), p);
    std::copy(wrapped.begin(), wrapped.end(), p);
    return out;
}

Result<IdentityRecord> IdentityRecord::parse(ByteSpan r) {
    if (r.size() != kRecordSize)
        return make_error(ErrorCode::kInvalidArgument,
                          "identity record: expected 128 bytes, got " + std::to_string(r.size()));
    IdentityRecord rec;
    const uint8_t* p = r.data();
    rec.sequence = load_be64(p);
    p += 8;
    std::memcpy(rec.uid.data(), p, kUidSize);
    p += kUidSize;
    std::memcpy(rec.x.data(), p, kCoordSize);
    p += kCoordSize;
    std::memcpy(rec.y.data(), p, kCoordSize);
    p += kCoordSize;
    std::memcpy(rec.wrapped.data(), p, kWrappedKeySize);
    return rec;
}

std::array<uint8_t, 65> IdentityRecord::public_key_sec1() const {
    std::array<uint8_t, 65> out{};
    out[0] = 0x04;
    std::copy(x.begin(), x.end(), out.begin() + 1);
    std::copy(y.begin(), y.end(), out.begin() + 33);
    return out;
}

std::array<uint8_t, 35> kdf_fixed_input(uint32_t i, const Uid& uid) {
    std::array<uint8_t, 35> m{};
    store_be32(m.data(), i);
    std::copy(kKekLabel.begin(), kKekLabel.end(), m.begin() + 4);
    m[14] = 0x00;
    std::copy(uid.begin(), uid.end(), m.begin() + 15);
    store_be32(m.data() + 31, 256);
    return m;
}

}  // namespace waferprov::wpid1
