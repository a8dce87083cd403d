#include "waferprov/software/software_engine.hpp"

#include <cstring>

#include "waferprov/software/aes.hpp"
#include "waferprov/software/p256.hpp"

namespace waferprov::software {
namespace {

Result<std::array<uint8_t, 16>> one_block(ByteSpan key, ByteSpan block, AesBlock::Direction dir) {
    if (block.size() != 16)
        return make_error(ErrorCode::kInvalidArgument,
                          "AES block must be 16 bytes, got " + std::to_string(block.size()));
    WP_ASSIGN_OR_RETURN(AesBlock aes, AesBlock::create(key, dir));
    std::array<uint8_t, 16> out{};
    WP_RETURN_IF_ERROR(aes.apply(block.data(), out.data()));
    return out;
}

}  // namespace

SoftwareEngine::SoftwareEngine(DeviceKey device_key) : device_key_(std::move(device_key)) {}
SoftwareEngine::~SoftwareEngine() = default;

Status SoftwareEngine::load_kik(ByteSpan wrapped_kik) {
    std::lock_guard lock(mu_);
    kik_.reset();  // a failed load leaves the engine unloaded
    if (wrapped_kik.size() != wpid1::kWrappedKikSize)
        return make_error(ErrorCode::kInvalidArgument,
                          "wrapped KIK must be 40 bytes (AES-KW of a 32-byte key), got " +
                              std::to_string(wrapped_kik.size()));
    auto kik = kw_unwrap(device_key_.span(), wrapped_kik);
    if (!kik.ok()) {
        if (kik.error().code == ErrorCode::kIntegrityFailure)
            return make_error(ErrorCode::kIntegrityFailure,
                              "wrapped KIK does not unwrap under this engine's device key "
                              "(wrapped for another device, or corrupted)");
        return kik.error().with_context("loading KIK");
    }
    auto k = std::make_shared<SecretArray<32>>();
    std::memcpy(k->data(), kik->data(), 32);
    kik_ = std::move(k);
    return ok_status();
}

Status SoftwareEngine::instantiate(ByteSpan entropy, ByteSpan personalization,
                                   uint64_t reseed_interval) {
    auto drbg = CtrDrbg::instantiate(entropy, personalization, reseed_interval);
    if (!drbg.ok()) return drbg.error();
    std::lock_guard lock(mu_);
    drbg_ = std::make_unique<CtrDrbg>(std::move(drbg).value());
    next_sequence_ = 0;
    pending_.clear();
    return ok_status();
}

Status SoftwareEngine::reseed(ByteSpan entropy) {
    std::lock_guard lock(mu_);
    if (!drbg_) return make_error(ErrorCode::kNotInstantiated, "reseed before instantiate");
    return drbg_->reseed(entropy);
}

Result<BatchTicket> SoftwareEngine::submit(std::span<const wpid1::Uid> uids) {
    if (uids.empty()) return make_error(ErrorCode::kInvalidArgument, "empty batch");
    if (uids.size() > kMaxBatchSize)
        return make_error(ErrorCode::kInvalidArgument, "batch of " + std::to_string(uids.size()) +
                                                           " UIDs exceeds the limit of " +
                                                           std::to_string(kMaxBatchSize));
    std::lock_guard lock(mu_);
    if (!kik_) return make_error(ErrorCode::kNotLoaded, "no KIK loaded");
    if (!drbg_) return make_error(ErrorCode::kNotInstantiated, "DRBG not instantiated");
    if (pending_.size() >= kMaxPendingBatches)
        return make_error(ErrorCode::kResourceExhausted, "too many batches in flight (" +
                                                             std::to_string(kMaxPendingBatches) +
                                                             "); collect some first");
    // Draw on a copy so that a batch is all or nothing: if the reseed interval runs out
    // part-way, the engine's DRBG is left as it was.
    CtrDrbg work = *drbg_;
    Pending p;
    p.kik = kik_;
    p.first_sequence = next_sequence_;
    p.uids.assign(uids.begin(), uids.end());
    p.scalars.resize(uids.size() * wpid1::kScalarSize);
    for (size_t i = 0; i < uids.size(); ++i) {
        uint8_t* d = p.scalars.data() + i * wpid1::kScalarSize;
        do {
            WP_RETURN_IF_ERROR(work.generate(d, wpid1::kScalarSize));
        } while (!wpid1::scalar_in_range(ByteSpan(d, wpid1::kScalarSize)));
    }
    *drbg_ = work;
    next_sequence_ += uids.size();
    const uint64_t id = next_ticket_++;
    pending_.emplace(id, std::move(p));
    return BatchTicket{id};
}

Result<std::vector<wpid1::IdentityRecord>> SoftwareEngine::collect(BatchTicket ticket) {
    Pending p;
    {
        std::lock_guard lock(mu_);
        auto it = pending_.find(ticket.id);
        if (it == pending_.end())
            return make_error(ErrorCode::kNotFound, "unknown or already collected batch ticket " +
                                                        std::to_string(ticket.id));
        p = std::move(it->second);
        pending_.erase(it);
    }
    WP_ASSIGN_OR_RETURN(Cmac kik_cmac, Cmac::create(p.kik->span()));
    std::vector<wpid1::IdentityRecord> out(p.uids.size());
    for (size_t i = 0; i < p.uids.size(); ++i) {
        const ByteSpan d(p.scalars.data() + i * wpid1::kScalarSize, wpid1::kScalarSize);
        auto& rec = out[i];
        rec.sequence = p.first_sequence + i;
        rec.uid = p.uids[i];
        WP_ASSIGN_OR_RETURN(P256Point q, software::p256_base_mul(d));
        rec.x = q.x;
        rec.y = q.y;
        WP_ASSIGN_OR_RETURN(wpid1::Kek kek, derive_kek(kik_cmac, p.uids[i]));
        WP_ASSIGN_OR_RETURN(Bytes wrapped, kw_wrap(kek.span(), d));
        std::memcpy(rec.wrapped.data(), wrapped.data(), wpid1::kWrappedKeySize);
    }
    return out;
}

Result<std::array<uint8_t, 16>> SoftwareEngine::aes_encrypt_block(ByteSpan key, ByteSpan block) {
    return one_block(key, block, AesBlock::Direction::kEncrypt);
}

Result<std::array<uint8_t, 16>> SoftwareEngine::aes_decrypt_block(ByteSpan key, ByteSpan block) {
    return one_block(key, block, AesBlock::Direction::kDecrypt);
}

Result<std::array<uint8_t, 16>> SoftwareEngine::aes_cmac(ByteSpan key, ByteSpan message) {
    WP_ASSIGN_OR_RETURN(Cmac cmac, Cmac::create(key));
    return cmac.compute(message);
}

Result<Bytes> SoftwareEngine::aes_kw_wrap(ByteSpan kek, ByteSpan plaintext) {
    return kw_wrap(kek, plaintext);
}

Result<SecureBytes> SoftwareEngine::aes_kw_unwrap(ByteSpan kek, ByteSpan wrapped) {
    return kw_unwrap(kek, wrapped);
}

Result<P256Point> SoftwareEngine::p256_base_mul(ByteSpan scalar) {
    return software::p256_base_mul(scalar);
}

}  // namespace waferprov::software
