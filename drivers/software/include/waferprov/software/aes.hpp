// The software engine's symmetric primitives, built only on OpenSSL's raw AES block so that the
// structure mirrors the RTL (CMAC, the SP 800-108 KDF and RFC 3394 are spelled out here) and
// the tests can check each one against OpenSSL's own independent implementation.
// Objects are not thread-safe; create one per thread or per operation (construction is cheap).
#pragma once

#include <array>
#include <cstdint>

#include "waferprov/bytes.hpp"
#include "waferprov/ossl.hpp"
#include "waferprov/result.hpp"
#include "waferprov/wpid1.hpp"

namespace waferprov::software {

using Block = std::array<uint8_t, 16>;

// AES in ECB mode on single blocks, 128/192/256-bit keys.
class AesBlock {
public:
    enum class Direction { kEncrypt, kDecrypt };
    static Result<AesBlock> create(ByteSpan key, Direction dir = Direction::kEncrypt);
    // Encrypts (or decrypts) one 16-byte block; in and out may alias.
    Status apply(const uint8_t* in, uint8_t* out);
    Status rekey(ByteSpan key);

private:
    explicit AesBlock(ossl::CipherCtx ctx, Direction dir) : ctx_(std::move(ctx)), dir_(dir) {}
    ossl::CipherCtx ctx_;
    Direction dir_;
};

// AES-CMAC (SP 800-38B / RFC 4493) with subkeys derived once per key.
class Cmac {
public:
    static Result<Cmac> create(ByteSpan key);
    Result<Block> compute(ByteSpan message);

private:
    Cmac(AesBlock aes, const Block& k1, const Block& k2) : aes_(std::move(aes)), k1_(k1), k2_(k2) {}
    AesBlock aes_;
    Block k1_, k2_;
};

// WPID-1 KEK = K(1) || K(2), K(i) = CMAC(KIK, [i]32 || "WPID-1 KEK" || 0x00 || UID || [256]32).
Result<wpid1::Kek> derive_kek(Cmac& kik_cmac, const wpid1::Uid& uid);

// RFC 3394 key wrap with the default IV A6A6A6A6A6A6A6A6. The plaintext is a multiple of 8
// bytes and at least 16 bytes; the KEK is 16, 24 or 32 bytes.
Result<Bytes> kw_wrap(ByteSpan kek, ByteSpan plaintext);
// RFC 3394 unwrap; kIntegrityFailure if the recovered IV is not A6A6A6A6A6A6A6A6 (nothing of
// the plaintext is returned then).
Result<SecureBytes> kw_unwrap(ByteSpan kek, ByteSpan wrapped);

}  // namespace waferprov::software
