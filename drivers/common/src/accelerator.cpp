#include "waferprov/accelerator.hpp"

namespace waferprov {

Error Accelerator::unsupported(const std::string& operation) const {
    return make_error(ErrorCode::kUnsupported,
                      "backend " + name() + " has no " + operation + " (not in its capabilities)");
}

Result<std::array<uint8_t, 16>> Accelerator::aes_encrypt_block(ByteSpan, ByteSpan) {
    return unsupported("AES block encryption");
}
Result<std::array<uint8_t, 16>> Accelerator::aes_decrypt_block(ByteSpan, ByteSpan) {
    return unsupported("AES block decryption");
}
Result<std::array<uint8_t, 16>> Accelerator::aes_cmac(ByteSpan, ByteSpan) {
    return unsupported("AES-CMAC");
}
Result<Bytes> Accelerator::aes_kw_wrap(ByteSpan, ByteSpan) { return unsupported("AES key wrap"); }
Result<SecureBytes> Accelerator::aes_kw_unwrap(ByteSpan, ByteSpan) {
    return unsupported("AES key unwrap");
}
Result<P256Point> Accelerator::p256_base_mul(ByteSpan) {
    return unsupported("P-256 base-point multiplication");
}

}  // namespace waferprov
