// The software accelerator: WPID-1 on OpenSSL, bit-exact with the RTL and the die.
//
// submit() draws a batch's scalars from the DRBG under a lock (so DRBG output is consumed in
// submission order); collect() does the expensive part (KDF, d*G, key wrap) outside the lock,
// so several threads collecting different tickets run in parallel. The scalars of submitted
// batches live in wiped-on-free memory until collected.
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "waferprov/accelerator.hpp"
#include "waferprov/software/ctr_drbg.hpp"
#include "waferprov/software/device_key.hpp"

namespace waferprov::software {

class SoftwareEngine final : public Accelerator {
public:
    // Limits that keep memory bounded: at most this many batches submitted and not collected,
    // and at most this many UIDs per batch.
    static constexpr size_t kMaxPendingBatches = 1024;
    static constexpr size_t kMaxBatchSize = 65536;

    explicit SoftwareEngine(DeviceKey device_key);
    ~SoftwareEngine() override;

    std::string name() const override { return "software"; }

    Status load_kik(ByteSpan wrapped_kik) override;
    Status instantiate(ByteSpan entropy, ByteSpan personalization,
                       uint64_t reseed_interval) override;
    Status reseed(ByteSpan entropy) override;
    Result<BatchTicket> submit(std::span<const wpid1::Uid> uids) override;
    Result<std::vector<wpid1::IdentityRecord>> collect(BatchTicket ticket) override;

    Capabilities capabilities() const override { return Capabilities::all(); }
    Result<std::array<uint8_t, 16>> aes_encrypt_block(ByteSpan key, ByteSpan block) override;
    Result<std::array<uint8_t, 16>> aes_decrypt_block(ByteSpan key, ByteSpan block) override;
    Result<std::array<uint8_t, 16>> aes_cmac(ByteSpan key, ByteSpan message) override;
    Result<Bytes> aes_kw_wrap(ByteSpan kek, ByteSpan plaintext) override;
    Result<SecureBytes> aes_kw_unwrap(ByteSpan kek, ByteSpan wrapped) override;
    Result<P256Point> p256_base_mul(ByteSpan scalar) override;

private:
    struct Pending {
        std::shared_ptr<const SecretArray<32>> kik;
        uint64_t first_sequence = 0;
        std::vector<wpid1::Uid> uids;
        SecureBytes scalars;  // 32 bytes per UID
    };

    const DeviceKey device_key_;
    std::mutex mu_;
    std::shared_ptr<const SecretArray<32>> kik_;  // guarded by mu_
    std::unique_ptr<CtrDrbg> drbg_;               // guarded by mu_
    uint64_t next_sequence_ = 0;                  // guarded by mu_
    uint64_t next_ticket_ = 1;                    // guarded by mu_
    std::map<uint64_t, Pending> pending_;         // guarded by mu_
};

}  // namespace waferprov::software
