#include "waferprov/software/aes.hpp"

#include <cstring>

namespace waferprov::software {
namespace {

const EVP_CIPHER* ecb_cipher(size_t key_len) {
    // Fetched once per process: EVP_CIPHER_fetch per call would take OpenSSL's global locks.
    static const ossl::Cipher k128(EVP_CIPHER_fetch(nullptr, "AES-128-ECB", nullptr));
    static const ossl::Cipher k192(EVP_CIPHER_fetch(nullptr, "AES-192-ECB", nullptr));
    static const ossl::Cipher k256(EVP_CIPHER_fetch(nullptr, "AES-256-ECB", nullptr));
    switch (key_len) {
        case 16: return k128.get();
        case 24: return k192.get();
        case 32: return k256.get();
        default: return nullptr;
    }
}

Status check_key(ByteSpan key) {
    if (key.size() != 16 && key.size() != 24 && key.size() != 32)
        return make_error(ErrorCode::kInvalidArgument,
                          "AES key must be 16, 24 or 32 bytes, got " + std::to_string(key.size()));
    return ok_status();
}

void xor_into(uint8_t* dst, const uint8_t* src, size_t n) {
    for (size_t i = 0; i < n; ++i) dst[i] ^= src[i];
}

// Doubling in GF(2^128) with the CMAC polynomial (RFC 4493 2.3), constant time.
Block gf_double(const Block& in) {
    Block out{};
    const uint8_t carry = in[0] >> 7;
    for (size_t i = 0; i < 15; ++i) out[i] = static_cast<uint8_t>((in[i] << 1) | (in[i + 1] >> 7));
    out[15] = static_cast<uint8_t>((in[15] << 1) ^ (0x87 & (0 - carry)));
    return out;
}

constexpr uint8_t kDefaultIv[8] = {0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6};

Status check_kw_lengths(ByteSpan kek, size_t data_len, size_t min_len, const char* what) {
    WP_RETURN_IF_ERROR(check_key(kek));
    if (data_len % 8 != 0 || data_len < min_len)
        return make_error(ErrorCode::kInvalidArgument,
                          std::string(what) + " must be a multiple of 8 bytes and at least " +
                              std::to_string(min_len) + ", got " + std::to_string(data_len));
    return ok_status();
}

}  // namespace

Result<AesBlock> AesBlock::create(ByteSpan key, Direction dir) {
    WP_RETURN_IF_ERROR(check_key(key));
    ossl::CipherCtx ctx(EVP_CIPHER_CTX_new());
    if (!ctx) return ossl::ossl_error("EVP_CIPHER_CTX_new");
    AesBlock aes(std::move(ctx), dir);
    WP_RETURN_IF_ERROR(aes.rekey(key));
    return aes;
}

Status AesBlock::rekey(ByteSpan key) {
    WP_RETURN_IF_ERROR(check_key(key));
    const EVP_CIPHER* c = ecb_cipher(key.size());
    if (c == nullptr) return ossl::ossl_error("fetching AES-ECB");
    const int enc = dir_ == Direction::kEncrypt ? 1 : 0;
    if (EVP_CipherInit_ex2(ctx_.get(), c, key.data(), nullptr, enc, nullptr) != 1)
        return ossl::ossl_error("AES key setup");
    EVP_CIPHER_CTX_set_padding(ctx_.get(), 0);
    return ok_status();
}

Status AesBlock::apply(const uint8_t* in, uint8_t* out) {
    int len = 0;
    if (EVP_CipherUpdate(ctx_.get(), out, &len, in, 16) != 1 || len != 16)
        return ossl::ossl_error("AES block");
    return ok_status();
}

Result<Cmac> Cmac::create(ByteSpan key) {
    WP_ASSIGN_OR_RETURN(AesBlock aes, AesBlock::create(key));
    Block l{};
    WP_RETURN_IF_ERROR(aes.apply(l.data(), l.data()));
    Block k1 = gf_double(l);
    Block k2 = gf_double(k1);
    secure_wipe(l.data(), l.size());
    return Cmac(std::move(aes), k1, k2);
}

Result<Block> Cmac::compute(ByteSpan m) {
    // Every block but the last is chained plainly; the last is XORed with K1 when complete
    // and padded 10* and XORed with K2 otherwise (including the empty message).
    const size_t n = m.empty() ? 1 : (m.size() + 15) / 16;
    const bool last_complete = !m.empty() && m.size() % 16 == 0;
    Block x{};
    for (size_t i = 0; i + 1 < n; ++i) {
        xor_into(x.data(), m.data() + 16 * i, 16);
        WP_RETURN_IF_ERROR(aes_.apply(x.data(), x.data()));
    }
    Block last{};
    const size_t rem = m.size() - 16 * (n - 1);
    if (rem > 0) std::memcpy(last.data(), m.data() + 16 * (n - 1), rem);
    if (last_complete) {
        xor_into(last.data(), k1_.data(), 16);
    } else {
        last[rem] = 0x80;
        xor_into(last.data(), k2_.data(), 16);
    }
    xor_into(x.data(), last.data(), 16);
    WP_RETURN_IF_ERROR(aes_.apply(x.data(), x.data()));
    return x;
}

Result<wpid1::Kek> derive_kek(Cmac& kik_cmac, const wpid1::Uid& uid) {
    wpid1::Kek kek;
    for (uint32_t i = 1; i <= 2; ++i) {
        const auto fixed = wpid1::kdf_fixed_input(i, uid);
        WP_ASSIGN_OR_RETURN(Block k, kik_cmac.compute(fixed));
        std::memcpy(kek.data() + 16 * (i - 1), k.data(), 16);
        secure_wipe(k.data(), k.size());
    }
    return kek;
}

Result<Bytes> kw_wrap(ByteSpan kek, ByteSpan p) {
    WP_RETURN_IF_ERROR(check_kw_lengths(kek, p.size(), 16, "key wrap plaintext"));
    WP_ASSIGN_OR_RETURN(AesBlock aes, AesBlock::create(kek));
    const size_t n = p.size() / 8;
    Bytes out(8 + p.size());
    std::memcpy(out.data(), kDefaultIv, 8);
    std::memcpy(out.data() + 8, p.data(), p.size());
    uint8_t b[16];
    for (uint64_t j = 0; j < 6; ++j) {
        for (size_t i = 1; i <= n; ++i) {
            std::memcpy(b, out.data(), 8);
            std::memcpy(b + 8, out.data() + 8 * i, 8);
            WP_RETURN_IF_ERROR(aes.apply(b, b));
            const uint64_t t = n * j + i;
            for (int k = 0; k < 8; ++k) b[7 - k] ^= static_cast<uint8_t>(t >> (8 * k));
            std::memcpy(out.data(), b, 8);
            std::memcpy(out.data() + 8 * i, b + 8, 8);
        }
    }
    secure_wipe(b, sizeof b);
    return out;
}

Result<SecureBytes> kw_unwrap(ByteSpan kek, ByteSpan c) {
    WP_RETURN_IF_ERROR(check_kw_lengths(kek, c.size(), 24, "wrapped key"));
    WP_ASSIGN_OR_RETURN(AesBlock aes, AesBlock::create(kek, AesBlock::Direction::kDecrypt));
    const size_t n = c.size() / 8 - 1;
    SecureBytes r(c.size());
    std::memcpy(r.data(), c.data(), c.size());
    uint8_t b[16];
    for (uint64_t j = 6; j-- > 0;) {
        for (size_t i = n; i >= 1; --i) {
            std::memcpy(b, r.data(), 8);
            const uint64_t t = n * j + i;
            for (int k = 0; k < 8; ++k) b[7 - k] ^= static_cast<uint8_t>(t >> (8 * k));
            std::memcpy(b + 8, r.data() + 8 * i, 8);
            WP_RETURN_IF_ERROR(aes.apply(b, b));
            std::memcpy(r.data(), b, 8);
            std::memcpy(r.data() + 8 * i, b + 8, 8);
        }
    }
    secure_wipe(b, sizeof b);
    if (!ct_equal(ByteSpan(r.data(), 8), ByteSpan(kDefaultIv, 8)))
        return make_error(ErrorCode::kIntegrityFailure,
                          "AES key unwrap integrity check failed (wrong key or corrupted data)");
    return SecureBytes(ByteSpan(r.data() + 8, c.size() - 8));
}

}  // namespace waferprov::software
