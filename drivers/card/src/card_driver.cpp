#include "waferprov/card/card_driver.hpp"

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "waferprov/card/card_regs.hpp"
#include "waferprov/p256_check.hpp"

namespace waferprov::card {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint32_t kRecordFormatWpid1 = 1;

std::string hex32(uint32_t v) {
    static const char* d = "0123456789abcdef";
    std::string s = "0x";
    for (int i = 7; i >= 0; --i) s += d[(v >> (4 * i)) & 0xf];
    return s;
}

// One batch from submit() to collect().
struct Batch {
    uint64_t id = 0;
    uint64_t first_sequence = 0;
    std::vector<wpid1::Uid> uids;
    bool read = false;  // its records came off the card (and passed the checks)
    std::vector<wpid1::IdentityRecord> records;
    std::optional<Error> error;  // the batch was lost (a device fault, a timeout)
};

class CardAccelerator final : public Accelerator {
public:
    CardAccelerator(std::unique_ptr<Transport> t, CardOptions o)
        : t_(std::move(t)), opt_(std::move(o)) {}

    ~CardAccelerator() override {
        // Leave no KIK or DRBG state in the card for the next user.
        std::lock_guard lock(mu_);
        (void)ctrl(regs::kCtrlZeroize);
    }

    Status open() {
        std::lock_guard lock(mu_);
        auto id = t_->read32(regs::kId);
        if (!id.ok()) return id.error().with_context("opening card " + t_->describe());
        if (*id != regs::kCardId)
            return make_error(ErrorCode::kUnavailable,
                              t_->describe() + " is not a waferprov identity card: ID reads " +
                                  hex32(*id) + ", expected " + hex32(regs::kCardId) +
                                  " (\"WPC1\")");
        WP_ASSIGN_OR_RETURN(uint32_t version, rd(regs::kVersion));
        info_.version_major = static_cast<uint16_t>(regs::kVersionMajor.get(version));
        info_.version_minor = static_cast<uint16_t>(regs::kVersionMinor.get(version));
        if (info_.version_major != regs::kMapVersionMajor)
            return make_error(ErrorCode::kUnsupported,
                              t_->describe() + ": register map version " +
                                  std::to_string(info_.version_major) + "." +
                                  std::to_string(info_.version_minor) + "; this driver speaks " +
                                  std::to_string(regs::kMapVersionMajor) + ".x");
        WP_ASSIGN_OR_RETURN(uint32_t caps, rd(regs::kCaps));
        info_.engines = regs::kCapsEngines.get(caps);
        info_.stream_bytes = 1u << regs::kCapsStreamBytesLog2.get(caps);
        info_.selftest = regs::kCapsSelftest.get(caps) != 0;
        info_.scan_randomized = regs::kCapsScanRandomized.get(caps) != 0;
        if (regs::kCapsRecordFormat.get(caps) != kRecordFormatWpid1)
            return make_error(ErrorCode::kUnsupported,
                              t_->describe() + ": CAPS.RECORD_FORMAT " +
                                  std::to_string(regs::kCapsRecordFormat.get(caps)) +
                                  ", this driver reads format 1 (WPID-1 128-byte records)");
        if (info_.engines == 0)
            return make_error(ErrorCode::kDeviceFault, t_->describe() + ": CAPS.ENGINES is 0");
        // The register path both ways, before anything depends on it.
        for (uint32_t pattern : {0xa5c3'0f96u, 0x5a3c'f069u}) {
            WP_RETURN_IF_ERROR(wr(regs::kScratch, pattern));
            WP_ASSIGN_OR_RETURN(uint32_t back, rd(regs::kScratch));
            if (back != pattern)
                return make_error(ErrorCode::kDeviceFault, t_->describe() + ": SCRATCH reads " +
                                                               hex32(back) + " after writing " +
                                                               hex32(pattern));
        }
        // Whatever a previous user left (a KIK, a DRBG, errors, half a batch) goes.
        WP_RETURN_IF_ERROR(zeroize_and_flush());
        WP_RETURN_IF_ERROR(wr(regs::kIrqEnable, regs::kIrqEnableErr.put(1)));
        return ok_status();
    }

    const CardInfo& info() const { return info_; }

    std::string name() const override { return opt_.backend_name; }

    // The Accelerator's self-test primitives (what `kat` runs) on the card's self-test path
    // (card::self_test). The card takes AES-256 keys only and bounded lengths; the rest is
    // kUnsupported, which `kat` counts as skipped, while a length RFC 3394 itself rules out
    // stays kInvalidArgument (an invalid input the card refuses, as the software engine does).
    Capabilities capabilities() const override {
        return info_.selftest ? Capabilities::all() : Capabilities::none();
    }

    Result<std::array<uint8_t, 16>> aes_encrypt_block(ByteSpan key, ByteSpan block) override {
        return block_op(SelfTestOp::kAesEncrypt, "AES block", key, block);
    }
    Result<std::array<uint8_t, 16>> aes_decrypt_block(ByteSpan key, ByteSpan block) override {
        return block_op(SelfTestOp::kAesDecrypt, "AES block", key, block);
    }
    Result<std::array<uint8_t, 16>> aes_cmac(ByteSpan key, ByteSpan message) override {
        return block_op(SelfTestOp::kAesCmac, "AES-CMAC", key, message);
    }
    Result<Bytes> aes_kw_wrap(ByteSpan kek, ByteSpan plaintext) override {
        return primitive(SelfTestOp::kAesKwWrap, "AES-KW wrap", kek, plaintext);
    }
    Result<SecureBytes> aes_kw_unwrap(ByteSpan kek, ByteSpan wrapped) override {
        WP_ASSIGN_OR_RETURN(Bytes key,
                            primitive(SelfTestOp::kAesKwUnwrap, "AES-KW unwrap", kek, wrapped));
        SecureBytes out{ByteSpan(key)};
        std::fill(key.begin(), key.end(), uint8_t{0});
        return out;
    }
    Result<P256Point> p256_base_mul(ByteSpan scalar) override {
        WP_ASSIGN_OR_RETURN(Bytes q, primitive(SelfTestOp::kP256BaseMul, "d*G", {}, scalar));
        if (q.size() != 64)
            return make_error(
                ErrorCode::kDeviceFault,
                t_->describe() + ": d*G gave " + std::to_string(q.size()) + " bytes, not 64");
        P256Point p;
        std::copy(q.begin(), q.begin() + 32, p.x.begin());
        std::copy(q.begin() + 32, q.end(), p.y.begin());
        return p;
    }

    Result<Bytes> self_test(SelfTestOp op, ByteSpan key, ByteSpan data) {
        const auto [name, lo, hi, step] = self_test_limits(op);
        if (name == nullptr)
            return make_error(
                ErrorCode::kInvalidArgument,
                "unknown self-test operation " + std::to_string(static_cast<uint32_t>(op)));
        std::lock_guard lock(mu_);
        if (!info_.selftest)
            return make_error(ErrorCode::kUnsupported,
                              "backend " + opt_.backend_name + ": " + t_->describe() +
                                  " has no self-test (CAPS.SELFTEST = 0): cannot run " + name);
        const size_t key_bytes = op == SelfTestOp::kP256BaseMul ? 0 : regs::kStKeyWords * 4;
        if (key.size() != key_bytes)
            return make_error(ErrorCode::kInvalidArgument,
                              std::string(name) + ": the key must be " + std::to_string(key_bytes) +
                                  " bytes, got " + std::to_string(key.size()));
        if (data.size() < lo || data.size() > hi || data.size() % step != 0)
            return make_error(ErrorCode::kInvalidArgument,
                              std::string(name) + ": " + std::to_string(data.size()) +
                                  " bytes of input; the card takes " + std::to_string(lo) + ".." +
                                  std::to_string(hi) +
                                  (step > 1 ? " in steps of " + std::to_string(step) : ""));
        // A refusal halts the record stream (ERR.SELFTEST) and d*G needs an idle card: read
        // the batches on the card first.
        WP_RETURN_IF_ERROR(drain());
        WP_RETURN_IF_ERROR(wr(regs::kStOp, static_cast<uint32_t>(op)));
        WP_RETURN_IF_ERROR(wr(regs::kStLen, static_cast<uint32_t>(data.size())));
        WP_RETURN_IF_ERROR(write_bytes(regs::kStKey, key, regs::kStKeyWords));
        WP_RETURN_IF_ERROR(
            write_bytes(regs::kStData, data, static_cast<uint32_t>((data.size() + 3) / 4)));
        WP_RETURN_IF_ERROR(ctrl(regs::kCtrlStStart));
        const auto deadline = Clock::now() + opt_.command_timeout;
        for (;;) {
            WP_ASSIGN_OR_RETURN(uint32_t status, rd(regs::kStatus));
            if (regs::kStatusStBusy.get(status) == 0) break;
            if (Clock::now() >= deadline)
                return make_error(ErrorCode::kTimeout,
                                  t_->describe() + ": self-test " + name + " still busy after " +
                                      std::to_string(opt_.command_timeout.count()) + " ms");
            std::this_thread::yield();
        }
        WP_RETURN_IF_ERROR(wr(regs::kIrqStatus, regs::kIrqStatusStDone.put(1)));
        WP_ASSIGN_OR_RETURN(uint32_t err, rd(regs::kErr));
        if (err != 0) {
            if (err == regs::kErrSelftest.put(1)) {
                // Nothing else is wrong: the card may run on.
                WP_RETURN_IF_ERROR(ctrl(regs::kCtrlClearErr));
                WP_RETURN_IF_ERROR(wr(regs::kIrqStatus, regs::kIrqStatusErr.put(1)));
                if (op == SelfTestOp::kAesKwUnwrap)
                    return make_error(ErrorCode::kIntegrityFailure,
                                      std::string(name) +
                                          ": the wrapped data failed its "
                                          "integrity check on " +
                                          t_->describe());
                if (op == SelfTestOp::kP256BaseMul)
                    return make_error(ErrorCode::kInvalidScalar,
                                      std::string(name) + ": " + t_->describe() +
                                          " refused the scalar (0 or >= n)");
            }
            return make_error(
                ErrorCode::kDeviceFault,
                t_->describe() + ": ERR " + describe_err_bits(err) + " after self-test " + name);
        }
        WP_ASSIGN_OR_RETURN(uint32_t len, rd(regs::kStResultLen));
        if (len > regs::kStResultWords * 4)
            return make_error(ErrorCode::kDeviceFault,
                              t_->describe() + ": ST_RESULT_LEN " + std::to_string(len));
        Bytes out;
        out.reserve(len);
        for (uint32_t k = 0; k * 4 < len; ++k) {
            WP_ASSIGN_OR_RETURN(uint32_t w, rd(regs::kStResult + 4 * k));
            for (int j = 3; j >= 0 && out.size() < len; --j)
                out.push_back(static_cast<uint8_t>(w >> (8 * j)));
        }
        return out;
    }

    Status load_kik(ByteSpan wrapped_kik) override {
        std::lock_guard lock(mu_);
        if (wrapped_kik.size() != wpid1::kWrappedKikSize) {
            kik_loaded_ = false;  // a failed load leaves the engine unloaded
            wrapped_kik_.clear();
            return make_error(ErrorCode::kInvalidArgument,
                              "wrapped KIK must be 40 bytes (AES-KW of a 32-byte key), got " +
                                  std::to_string(wrapped_kik.size()));
        }
        // Batches already submitted were drawn under the old KIK: let them finish first.
        WP_RETURN_IF_ERROR(drain());
        kik_loaded_ = false;
        wrapped_kik_.clear();
        WP_RETURN_IF_ERROR(load_kik_locked(wrapped_kik));
        wrapped_kik_.assign(wrapped_kik.begin(), wrapped_kik.end());
        return ok_status();
    }

    Status instantiate(ByteSpan entropy, ByteSpan personalization,
                       uint64_t reseed_interval) override {
        if (entropy.size() != wpid1::kEntropySize)
            return make_error(ErrorCode::kInvalidArgument,
                              "entropy must be 48 bytes, got " + std::to_string(entropy.size()));
        if (personalization.size() > wpid1::kMaxPersonalizationSize)
            return make_error(ErrorCode::kInvalidArgument,
                              "personalization string longer than 48 bytes (" +
                                  std::to_string(personalization.size()) + ")");
        if (reseed_interval < 1 || reseed_interval > wpid1::kMaxReseedInterval)
            return make_error(ErrorCode::kInvalidArgument, "reseed interval must be 1 .. 2^48");
        std::lock_guard lock(mu_);
        // INSTANTIATE discards submitted batches (as the software engine does). Their work on
        // the card is finished first, so that no stray record is left on the stream.
        // A failure there has recovered the card already (and lost those batches, which
        // INSTANTIATE discards anyway): instantiate from the clean state.
        (void)drain();
        pending_.clear();
        refused_.clear();
        instantiated_ = false;
        // RESEED_INTERVAL is 48 bits wide: 2^48 itself is written as 2^48 - 1 (one Generate
        // fewer than the software engine allows, after 2.8e14 dies).
        reseed_interval = std::min(reseed_interval, (uint64_t{1} << 48) - 1);
        WP_RETURN_IF_ERROR(write_bytes(regs::kEntropy, entropy, regs::kEntropyWords));
        WP_RETURN_IF_ERROR(write_bytes(regs::kPers, personalization, regs::kPersWords));
        WP_RETURN_IF_ERROR(wr(regs::kPersLen, static_cast<uint32_t>(personalization.size())));
        WP_RETURN_IF_ERROR(wr(regs::kReseedIntervalLo, static_cast<uint32_t>(reseed_interval)));
        WP_RETURN_IF_ERROR(
            wr(regs::kReseedIntervalHi, static_cast<uint32_t>(reseed_interval >> 32)));
        WP_RETURN_IF_ERROR(wr(regs::kSeqStartLo, 0));
        WP_RETURN_IF_ERROR(wr(regs::kSeqStartHi, 0));
        WP_RETURN_IF_ERROR(command(regs::kCtrlInstantiate, "INSTANTIATE"));
        WP_ASSIGN_OR_RETURN(uint32_t status, rd(regs::kStatus));
        if (regs::kStatusInstantiated.get(status) == 0)
            return make_error(ErrorCode::kDeviceFault,
                              t_->describe() + ": STATUS.INSTANTIATED is 0 after INSTANTIATE");
        instantiated_ = true;
        reseed_interval_ = reseed_interval;
        generates_ = 0;
        next_sequence_ = 0;
        return ok_status();
    }

    Status reseed(ByteSpan entropy) override {
        if (entropy.size() != wpid1::kEntropySize)
            return make_error(ErrorCode::kInvalidArgument,
                              "entropy must be 48 bytes, got " + std::to_string(entropy.size()));
        std::lock_guard lock(mu_);
        if (!instantiated_)
            return make_error(ErrorCode::kNotInstantiated, "reseed before instantiate");
        // The card reseeds between two requests, whatever is buffered: every UID submitted
        // before this call must have drawn its scalar from the old state (the software
        // engine's batch semantics). Reading their records guarantees it.
        WP_RETURN_IF_ERROR(drain());
        WP_RETURN_IF_ERROR(write_bytes(regs::kEntropy, entropy, regs::kEntropyWords));
        WP_RETURN_IF_ERROR(command(regs::kCtrlReseed, "RESEED"));
        generates_ = 0;
        return ok_status();
    }

    Result<BatchTicket> submit(std::span<const wpid1::Uid> uids) override {
        if (uids.empty()) return make_error(ErrorCode::kInvalidArgument, "empty batch");
        if (uids.size() > opt_.max_batch_size)
            return make_error(ErrorCode::kInvalidArgument, "batch of " +
                                                               std::to_string(uids.size()) +
                                                               " UIDs exceeds the limit of " +
                                                               std::to_string(opt_.max_batch_size));
        std::lock_guard lock(mu_);
        if (!kik_loaded_) return make_error(ErrorCode::kNotLoaded, "no KIK loaded");
        if (!instantiated_)
            return make_error(ErrorCode::kNotInstantiated,
                              instantiate_hint_.empty()
                                  ? "DRBG not instantiated"
                                  : "DRBG not instantiated (" + instantiate_hint_ + ")");
        // At least one Generate per die: refuse the whole batch up front, as the software
        // engine does, rather than let the card halt part-way through it.
        if (generates_ + uids.size() > reseed_interval_)
            return make_error(ErrorCode::kReseedRequired,
                              "the batch needs " + std::to_string(uids.size()) +
                                  " DRBG generates, " +
                                  std::to_string(reseed_interval_ - generates_) +
                                  " left before the reseed interval");
        if (pending_.size() >= opt_.max_pending_batches)
            return make_error(ErrorCode::kResourceExhausted,
                              "too many batches in flight (" +
                                  std::to_string(opt_.max_pending_batches) +
                                  "); collect some first");
        // Bound what the card holds: read the oldest batch on the card first.
        while (on_card() >= std::max<size_t>(1, opt_.max_batches_in_flight)) {
            for (auto& b : pending_)
                if (!b.read && !b.error) {
                    WP_RETURN_IF_ERROR(read_batch(b));
                    break;
                }
        }
        Batch b;
        b.id = next_ticket_++;
        b.first_sequence = next_sequence_;
        b.uids.assign(uids.begin(), uids.end());
        request_buf_.resize(uids.size() * wpid1::kUidSize);
        for (size_t i = 0; i < uids.size(); ++i)
            std::memcpy(request_buf_.data() + i * wpid1::kUidSize, uids[i].data(), wpid1::kUidSize);
        if (auto st = t_->write_requests(request_buf_, opt_.command_timeout); !st.ok()) {
            Error e = st.error().with_context(t_->describe() + ": writing the request packet");
            return fault(e);
        }
        next_sequence_ += uids.size();
        generates_ += uids.size();
        const uint64_t id = b.id;
        pending_.push_back(std::move(b));
        return BatchTicket{id};
    }

    Result<std::vector<wpid1::IdentityRecord>> collect(BatchTicket ticket) override {
        std::lock_guard lock(mu_);
        auto it = std::find_if(pending_.begin(), pending_.end(),
                               [&](const Batch& b) { return b.id == ticket.id; });
        if (it == pending_.end())
            return make_error(ErrorCode::kNotFound, "unknown or already collected batch ticket " +
                                                        std::to_string(ticket.id));
        // Records come off the card in submission order: read every batch up to this one.
        for (auto jt = pending_.begin(); jt != pending_.end() && !it->read && !it->error; ++jt)
            if (!jt->read && !jt->error) {
                if (auto st = read_batch(*jt); !st.ok()) break;  // the error is on the batches
            }
        Batch b = std::move(*it);
        pending_.erase(it);
        if (b.error) return *b.error;
        return std::move(b.records);
    }

    std::optional<size_t> take_refused_index(BatchTicket ticket) override {
        std::lock_guard lock(mu_);
        auto it = refused_.find(ticket.id);
        if (it == refused_.end()) return std::nullopt;
        const size_t index = it->second;
        refused_.erase(it);
        return index;
    }

private:
    // One Accelerator primitive (`what` names it) on the self-test path. What the card cannot
    // take is kUnsupported: a key other than AES-256, and an input of a variable-length
    // operation that is well formed but longer than ST_DATA holds (self_test_limits). Everything
    // else, a malformed length included, goes to self_test() and its refusals.
    Result<Bytes> primitive(SelfTestOp op, const char* what, ByteSpan key, ByteSpan data) {
        if (op != SelfTestOp::kP256BaseMul && key.size() != 32)
            return make_error(ErrorCode::kUnsupported,
                              "backend " + opt_.backend_name + ": the card's " + what +
                                  " takes AES-256 keys only, not " +
                                  std::to_string(key.size() * 8) + "-bit ones");
        const StLimits limits = self_test_limits(op);
        if (limits.hi > limits.lo && data.size() > limits.hi && data.size() % limits.step == 0)
            return make_error(ErrorCode::kUnsupported,
                              "backend " + opt_.backend_name + ": the card's self-test has no " +
                                  what + " of more than " + std::to_string(limits.hi) + " bytes");
        return self_test(op, key, data);
    }
    Result<std::array<uint8_t, 16>> block_op(SelfTestOp op, const char* what, ByteSpan key,
                                             ByteSpan data) {
        WP_ASSIGN_OR_RETURN(Bytes out, primitive(op, what, key, data));
        if (out.size() != 16)
            return make_error(ErrorCode::kDeviceFault, t_->describe() + ": a 16-byte result was " +
                                                           std::to_string(out.size()) + " bytes");
        std::array<uint8_t, 16> r{};
        std::copy(out.begin(), out.end(), r.begin());
        return r;
    }

    struct StLimits {
        const char* name;  // nullptr: no such operation
        size_t lo, hi, step;
    };
    static StLimits self_test_limits(SelfTestOp op) {
        switch (op) {
            case SelfTestOp::kAesEncrypt: return {"AES-256 encrypt", 16, 16, 1};
            case SelfTestOp::kAesDecrypt: return {"AES-256 decrypt", 16, 16, 1};
            case SelfTestOp::kAesCmac: return {"AES-256-CMAC", 0, 256, 1};
            case SelfTestOp::kAesKwWrap: return {"AES-256-KW wrap", 16, 248, 8};
            case SelfTestOp::kAesKwUnwrap: return {"AES-256-KW unwrap", 24, 256, 8};
            case SelfTestOp::kP256BaseMul: return {"P-256 d*G", 32, 32, 1};
        }
        return {nullptr, 0, 0, 1};
    }

    size_t on_card() const {
        return static_cast<size_t>(std::count_if(
            pending_.begin(), pending_.end(), [](const Batch& b) { return !b.read && !b.error; }));
    }

    Result<uint32_t> rd(uint32_t offset) {
        auto v = t_->read32(offset);
        if (!v.ok())
            return v.error().with_context(t_->describe() + ": reading " + reg_name(offset));
        return v;
    }
    Status wr(uint32_t offset, uint32_t value) {
        auto st = t_->write32(offset, value);
        if (!st.ok())
            return st.error().with_context(t_->describe() + ": writing " + reg_name(offset));
        return st;
    }
    Status ctrl(const regs::Field& f) { return wr(regs::kCtrl, f.put(1)); }

    static std::string reg_name(uint32_t offset) {
        for (const auto& r : regs::kRegisters)
            if (offset >= r.offset && offset < r.offset + 4 * r.words) return std::string(r.name);
        return hex32(offset);
    }

    // A byte string into `words` consecutive registers, byte 4k in bits 31:24 of word k (the
    // map's rule), zero-padded: the whole field is written so nothing of an earlier value stays.
    Status write_bytes(uint32_t offset, ByteSpan b, uint32_t words) {
        for (uint32_t k = 0; k < words; ++k) {
            uint32_t w = 0;
            for (uint32_t j = 0; j < 4; ++j) {
                const size_t i = size_t{k} * 4 + j;
                w = (w << 8) | (i < b.size() ? b[i] : 0u);
            }
            WP_RETURN_IF_ERROR(wr(offset + 4 * k, w));
        }
        return ok_status();
    }

    // Starts a LOAD_KIK / INSTANTIATE / RESEED and waits until STATUS.CMD_BUSY drops.
    Status command(const regs::Field& f, const char* what) {
        WP_RETURN_IF_ERROR(ctrl(f));
        const auto deadline = Clock::now() + opt_.command_timeout;
        for (;;) {
            WP_ASSIGN_OR_RETURN(uint32_t status, rd(regs::kStatus));
            if (regs::kStatusCmdBusy.get(status) == 0) return ok_status();
            if (Clock::now() >= deadline)
                return make_error(ErrorCode::kTimeout,
                                  t_->describe() + ": " + what + " still busy after " +
                                      std::to_string(opt_.command_timeout.count()) + " ms");
            // A simulated card advances inside read32; a real one needs no faster polling.
            std::this_thread::yield();
        }
    }

    Status load_kik_locked(ByteSpan wrapped) {
        kik_loaded_ = false;
        WP_RETURN_IF_ERROR(write_bytes(regs::kKikWrapped, wrapped, regs::kKikWrappedWords));
        WP_RETURN_IF_ERROR(command(regs::kCtrlLoadKik, "LOAD_KIK"));
        WP_ASSIGN_OR_RETURN(uint32_t err, rd(regs::kErr));
        WP_ASSIGN_OR_RETURN(uint32_t status, rd(regs::kStatus));
        if (regs::kErrKikUnwrap.get(err) != 0) {
            // The card halted on it; nothing else is wrong, so it may resume (no KIK).
            WP_RETURN_IF_ERROR(ctrl(regs::kCtrlClearErr));
            WP_RETURN_IF_ERROR(wr(regs::kIrqStatus, regs::kIrqStatusErr.put(1)));
            return make_error(ErrorCode::kIntegrityFailure,
                              "wrapped KIK does not unwrap under the card's device key (wrapped "
                              "for another device, or corrupted); " +
                                  t_->describe() + " has no KIK loaded");
        }
        if (err != 0)
            return make_error(
                ErrorCode::kDeviceFault,
                t_->describe() + ": ERR " + describe_err_bits(err) + " after LOAD_KIK");
        if (regs::kStatusKikValid.get(status) == 0)
            return make_error(ErrorCode::kDeviceFault,
                              t_->describe() + ": STATUS.KIK_VALID is 0 after LOAD_KIK");
        kik_loaded_ = true;
        return ok_status();
    }

    std::chrono::milliseconds records_timeout(size_t dies) const {
        return opt_.records_timeout_base +
               std::chrono::duration_cast<milliseconds>(opt_.records_timeout_per_die *
                                                        static_cast<int64_t>(dies));
    }

    // Reads one batch's records off the card and checks each against what was submitted.
    // On any failure the card is recovered and every batch still on it is lost.
    Status read_batch(Batch& b) {
        const size_t n = b.uids.size();
        record_buf_.resize(n * wpid1::kRecordSize);
        if (auto st = t_->read_records(record_buf_, records_timeout(n)); !st.ok()) {
            Error e = st.error();
            return fault(e.with_context(t_->describe() + ": reading the records of " +
                                        std::to_string(n) + " dies from sequence " +
                                        std::to_string(b.first_sequence)));
        }
        std::vector<wpid1::IdentityRecord> out;
        out.reserve(n);
        for (size_t i = 0; i < n; ++i) {
            const ByteSpan raw(record_buf_.data() + i * wpid1::kRecordSize, wpid1::kRecordSize);
            auto rec = wpid1::IdentityRecord::parse(raw);
            if (!rec.ok()) return fault(rec.error().with_context(t_->describe() + ": record"));
            const uint64_t want = b.first_sequence + i;
            std::string why;
            if (rec->sequence != want)
                why = "sequence number " + std::to_string(rec->sequence) + ", expected " +
                      std::to_string(want);
            else if (rec->uid != b.uids[i])
                why = "UID " + to_hex(rec->uid) + ", submitted " + to_hex(b.uids[i]);
            else if (auto st = p256_check_point(rec->x, rec->y); !st.ok())
                why = st.error().message;
            if (!why.empty()) {
                refused_[b.id] = i;
                return fault(make_error(ErrorCode::kDeviceFault,
                                        t_->describe() + ": record " + std::to_string(i) +
                                            " of the batch from sequence " +
                                            std::to_string(b.first_sequence) + " refused: " + why));
            }
            out.push_back(*rec);
        }
        b.records = std::move(out);
        b.read = true;
        return ok_status();
    }

    // Reads the records of every batch still on the card (they stay for collect()).
    Status drain() {
        for (auto& b : pending_)
            if (!b.read && !b.error) WP_RETURN_IF_ERROR(read_batch(b));
        return ok_status();
    }

    // Zeroizes the card and throws away whatever it still had on the record stream.
    Status zeroize_and_flush() {
        WP_RETURN_IF_ERROR(ctrl(regs::kCtrlZeroize));
        WP_RETURN_IF_ERROR(ctrl(regs::kCtrlClearErr));
        WP_RETURN_IF_ERROR(wr(regs::kIrqStatus, ~0u));
        // A record on the wire at ZEROIZE is finished (with tlast); nothing else comes out.
        // Read whole records until none arrives within a short deadline.
        std::array<uint8_t, wpid1::kRecordSize> sink{};
        for (int i = 0; i < 64; ++i) {
            auto st = t_->read_records(sink, milliseconds(20));
            if (!st.ok()) break;
        }
        kik_loaded_ = false;
        instantiated_ = false;
        return ok_status();
    }

    // A failure on the card's data path: snapshot the error registers, recover the card
    // (zeroize, reload the wrapped KIK), lose every batch still on the card, and return the
    // error (kDeviceFault naming ERR's bits when the card reports one).
    Error fault(const Error& cause) {
        Error e = cause;
        auto err = t_->read32(regs::kErr);
        auto lo = t_->read32(regs::kErrSeqLo), hi = t_->read32(regs::kErrSeqHi);
        auto nlo = t_->read32(regs::kSeqNextLo), nhi = t_->read32(regs::kSeqNextHi);
        if (err.ok() && *err != 0) {
            const uint64_t err_seq = (lo.ok() ? *lo : 0) | (uint64_t{hi.ok() ? *hi : 0} << 32);
            e = make_error(ErrorCode::kDeviceFault, cause.message + "; the card reports ERR " +
                                                        describe_err_bits(*err) + " at sequence " +
                                                        std::to_string(err_seq));
        }
        if (nlo.ok() && nhi.ok())
            e.message += " (SEQ_NEXT " + std::to_string(*nlo | (uint64_t{*nhi} << 32)) + ")";
        Error lost = e.with_context("batch lost");
        for (auto& b : pending_)
            if (!b.read && !b.error) b.error = lost;
        auto st = zeroize_and_flush();
        instantiate_hint_ = "the card was zeroized after: " + e.message;
        if (st.ok() && !wrapped_kik_.empty()) {
            auto kst = load_kik_locked(wrapped_kik_);
            if (!kst.ok()) e.message += "; reloading the KIK failed: " + kst.error().message;
        }
        if (!st.ok()) e.message += "; zeroizing the card failed: " + st.error().message;
        return e;
    }

    std::mutex mu_;
    std::unique_ptr<Transport> t_;  // guarded by mu_
    const CardOptions opt_;
    CardInfo info_;
    Bytes wrapped_kik_;  // AES-KW(DK, KIK): public, reloaded after a fault
    bool kik_loaded_ = false;
    bool instantiated_ = false;
    std::string instantiate_hint_;
    uint64_t reseed_interval_ = 0;
    uint64_t generates_ = 0;  // lower bound of the card's Generate calls
    uint64_t next_sequence_ = 0;
    uint64_t next_ticket_ = 1;
    std::deque<Batch> pending_;  // in submission order
    // Batch id -> index of the record the checks refused (until take_refused_index()); at most
    // one entry per fault, cleared by instantiate.
    std::map<uint64_t, size_t> refused_;
    Bytes request_buf_;
    Bytes record_buf_;
};

}  // namespace

std::string describe_err_bits(uint32_t err) {
    static constexpr std::pair<const regs::Field*, const char*> kNames[] = {
        {&regs::kErrReseedRequired, "RESEED_REQUIRED"},
        {&regs::kErrNotInstantiated, "NOT_INSTANTIATED"},
        {&regs::kErrNoKik, "NO_KIK"},
        {&regs::kErrPartialUid, "PARTIAL_UID"},
        {&regs::kErrBadTkeep, "BAD_TKEEP"},
        {&regs::kErrKikUnwrap, "KIK_UNWRAP"},
        {&regs::kErrBus, "BUS"},
        {&regs::kErrSelftest, "SELFTEST"},
    };
    std::string out;
    uint32_t known = 0;
    for (const auto& [f, n] : kNames) {
        known |= f->put(f->mask());
        if (f->get(err) != 0) out += (out.empty() ? "" : "|") + std::string(n);
    }
    if ((err & ~known) != 0) out += (out.empty() ? "" : "|") + hex32(err & ~known);
    return out.empty() ? "0" : out;
}

Result<std::unique_ptr<Accelerator>> make_card_accelerator(std::unique_ptr<Transport> transport,
                                                           const CardOptions& options) {
    if (!transport) return make_error(ErrorCode::kInvalidArgument, "no transport");
    auto card = std::make_unique<CardAccelerator>(std::move(transport), options);
    WP_RETURN_IF_ERROR(card->open());
    return std::unique_ptr<Accelerator>(std::move(card));
}

Result<Bytes> self_test(Accelerator& accelerator, SelfTestOp op, ByteSpan key, ByteSpan data) {
    auto* card = dynamic_cast<CardAccelerator*>(&accelerator);
    if (card == nullptr)
        return make_error(ErrorCode::kInvalidArgument,
                          "backend " + accelerator.name() + " is not a card driver");
    return card->self_test(op, key, data);
}

Result<CardInfo> card_info(const Accelerator& accelerator) {
    const auto* card = dynamic_cast<const CardAccelerator*>(&accelerator);
    if (card == nullptr)
        return make_error(ErrorCode::kInvalidArgument,
                          "backend " + accelerator.name() + " is not a card driver");
    return card->info();
}

}  // namespace waferprov::card
