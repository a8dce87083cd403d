#include "emulator.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

namespace waferprov::cardsim {

namespace {

// Cycles the clock thread runs between two looks at the queues: short enough that a register
// access waits little, long enough that the lock costs nothing against the model.
constexpr uint64_t kChunk = 256;
// With no request beat pending, the card is clocked this many cycles after the last progress
// (a register access, a beat taken, a record out) and then sleeps until the host does something:
// a die takes ~10k cycles per engine, so a busy card always makes progress well within it.
constexpr uint64_t kIdleCycles = 2'000'000;
// The card's register window as the 16-bit AXI4-Lite address reaches it.
constexpr uint64_t kRegSpace = 0x10000;

const struct {
    const char* name;
    FaultKind kind;
} kFaultNames[] = {
    {"stall", FaultKind::kStall},    {"uid", FaultKind::kWrongUid}, {"seq", FaultKind::kWrongSeq},
    {"point", FaultKind::kOffCurve}, {"wrap", FaultKind::kBadWrap}, {"reset", FaultKind::kReset},
};

const char* fault_name(FaultKind k) {
    for (const auto& f : kFaultNames)
        if (f.kind == k) return f.name;
    return "?";
}

}  // namespace

std::string fault_help() {
    return "KIND@N, N the index of a record (0-based, counted since the emulator started):\n"
           "  stall@N  the record stream stops before record N (withheld from then on)\n"
           "  uid@N    record N carries a wrong UID\n"
           "  seq@N    record N carries a wrong sequence number\n"
           "  point@N  record N's public key is not on P-256\n"
           "  wrap@N   record N's wrapped key does not unwrap\n"
           "  reset@N  the card is reset (power-on state) instead of putting out record N";
}

Result<Fault> parse_fault(const std::string& text) {
    const auto at = text.find('@');
    const std::string kind = text.substr(0, at);
    for (const auto& f : kFaultNames) {
        if (kind != f.name) continue;
        if (at == std::string::npos || at + 1 == text.size())
            return make_error(ErrorCode::kInvalidArgument,
                              "--fault " + text + ": no record index (expected " + kind + "@N)");
        const std::string num = text.substr(at + 1);
        if (num.size() > 18 ||
            !std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return make_error(ErrorCode::kInvalidArgument, "--fault " + text + ": record index '" +
                                                               num + "' is not a decimal number");
        return Fault{f.kind, std::stoull(num)};
    }
    return make_error(ErrorCode::kInvalidArgument, "--fault " + text + ": unknown fault '" + kind +
                                                       "' (stall, uid, seq, point, wrap or reset)");
}

Result<std::unique_ptr<Emulator>> Emulator::create(const Options& options,
                                                   std::span<const uint8_t> dk) {
    if (dk.size() != 32)
        return make_error(ErrorCode::kInvalidArgument, "cardsim: the device key is not 32 bytes");
    std::unique_ptr<Emulator> e(new Emulator(options, std::vector<uint8_t>(dk.begin(), dk.end())));
    if (!e->card_)
        return make_error(ErrorCode::kInvalidArgument,
                          "--engines " + std::to_string(options.engines) +
                              ": no such card model (built: " + supported_engine_counts() + ")");
    e->clock_ = std::thread([p = e.get()] { p->clock_loop(); });
    return e;
}

Emulator::Emulator(Options options, std::vector<uint8_t> dk)
    : options_(std::move(options)), dk_(std::move(dk)) {
    card_ = make_card_model(options_.engines, dk_);
}

Emulator::~Emulator() { shutdown(); }

void Emulator::shutdown() {
    {
        std::lock_guard lk(mu_);
        if (stop_ && !clock_.joinable()) return;
        stop_ = true;
    }
    cv_.notify_all();
    changed_.notify_all();
    if (clock_.joinable()) clock_.join();
}

void Emulator::set_notify(std::function<void()> fn) {
    std::lock_guard lk(mu_);
    notify_ = std::move(fn);
}

std::string Emulator::describe() const {
    std::string s = card_ ? card_->name() : "no card";
    for (const Fault& f : options_.faults)
        s += ", fault " + std::string(fault_name(f.kind)) + "@" + std::to_string(f.record);
    return s;
}

// --- the clock thread ---------------------------------------------------------------------

void Emulator::clock_loop() {
    std::unique_lock lk(mu_);
    while (!stop_) {
        bool moved = false;
        while (!ops_.empty()) {
            RegOp* op = ops_.front();
            ops_.pop_front();
            if (op->write)
                card_->write32(op->addr, op->value);
            else
                op->value = card_->read32(op->addr);
            op->done = true;
            last_progress_cycle_ = card_->cycles();
            moved = true;
        }
        if (!pending_beats_.empty()) {
            for (sim::Beat& b : pending_beats_) card_->push_beat(std::move(b));
            pending_beats_.clear();
            last_progress_cycle_ = card_->cycles();
        }
        moved = drain_locked() || moved;
        if (moved) {
            changed_.notify_all();
            if (notify_) {
                auto fn = notify_;
                lk.unlock();
                fn();
                lk.lock();
                continue;  // ops may have arrived meanwhile
            }
        }
        const bool active =
            card_->requests_pending() || card_->cycles() - last_progress_cycle_ < kIdleCycles;
        if (!active) {
            cv_.wait_for(lk, std::chrono::milliseconds(100));
            continue;
        }
        // The model is touched only by this thread: clock it without the lock.
        lk.unlock();
        card_->step(kChunk);
        lk.lock();
    }
    changed_.notify_all();
}

bool Emulator::drain_locked() {
    bool moved = false;
    const std::size_t taken = card_->take_accepted();
    if (taken > 0) {
        beats_taken_ += taken;
        moved = true;
    }
    const uint64_t epoch = epoch_;
    for (sim::RecordOut& r : card_->take_records()) {
        deliver_locked(std::move(r));
        moved = true;
        if (epoch_ != epoch) break;  // the card was reset: what the old one had is gone
    }
    const bool level = card_->irq();
    if (level && !irq_level_) {
        ++events_;
        moved = true;
    }
    irq_level_ = level;
    if (moved) last_progress_cycle_ = card_->cycles();
    return moved;
}

void Emulator::deliver_locked(sim::RecordOut rec) {
    const uint64_t index = records_seen_++;
    for (const Fault& f : options_.faults) {
        if (f.record != index) continue;
        switch (f.kind) {
            case FaultKind::kStall: stalled_ = true; break;
            case FaultKind::kWrongUid: rec.bytes[8] ^= 0x01; break;
            case FaultKind::kWrongSeq:
                // sequence + 1, big-endian with carry
                for (int i = 7; i >= 0; --i)
                    if (++rec.bytes[static_cast<std::size_t>(i)] != 0) break;
                break;
            case FaultKind::kOffCurve: rec.bytes[87] ^= 0x01; break;
            case FaultKind::kBadWrap: rec.bytes[127] ^= 0x01; break;
            case FaultKind::kReset: reset_card_locked(); return;
        }
    }
    if (stalled_) return;
    c2h_.insert(c2h_.end(), rec.bytes.begin(), rec.bytes.end());
    if (rec.last) c2h_ends_.push_back(c2h_head_ + c2h_.size());
}

void Emulator::reset_card_locked() {
    // Power-on state: a new model. Request beats not yet taken are lost, the H2C transfer in
    // flight ends (its writer sees -EIO), the C2H transfer in flight ends here (short), the
    // interrupt line is low.
    card_ = make_card_model(options_.engines, dk_);
    ++epoch_;
    beats_queued_ = 0;
    beats_taken_ = 0;
    pending_beats_.clear();
    c2h_ends_.push_back(c2h_head_ + c2h_.size());
    irq_level_ = false;
}

// --- the nodes ----------------------------------------------------------------------------

// Hands one register access to the clock thread and waits for it (-EIO when stopping).
int Emulator::run_reg_op(RegOp& op) {
    std::unique_lock lk(mu_);
    if (stop_) return -EIO;
    ops_.push_back(&op);
    cv_.notify_all();
    changed_.wait(lk, [&] { return op.done || stop_; });
    if (!op.done) {
        ops_.erase(std::remove(ops_.begin(), ops_.end(), &op), ops_.end());
        return -EIO;
    }
    return 0;
}

int Emulator::read_reg(uint64_t offset, std::span<uint8_t> out) {
    if (out.size() != 4 || offset % 4 != 0 || offset + 4 > kRegSpace) return -EINVAL;
    RegOp op;
    op.addr = static_cast<uint32_t>(offset);
    if (const int rc = run_reg_op(op); rc != 0) return rc;
    std::memcpy(out.data(), &op.value, 4);  // the BAR is little-endian
    return 4;
}

int Emulator::write_reg(uint64_t offset, std::span<const uint8_t> in) {
    if (in.size() != 4 || offset % 4 != 0 || offset + 4 > kRegSpace) return -EINVAL;
    RegOp op;
    op.write = true;
    op.addr = static_cast<uint32_t>(offset);
    std::memcpy(&op.value, in.data(), 4);
    if (const int rc = run_reg_op(op); rc != 0) return rc;
    return 4;
}

int Emulator::h2c_write(std::span<const uint8_t> in, const AbortFn& abort) {
    if (in.empty()) return 0;
    std::unique_lock lk(mu_);
    if (stop_) return -EIO;
    const std::size_t bb = card_->beat_bytes();
    const uint64_t epoch = epoch_;
    std::size_t n_beats = 0;
    // The model belongs to the clock thread: the beats wait in pending_beats_ until it hands
    // them over. tkeep marks the bytes of the last beat; tlast ends the packet.
    std::vector<sim::Beat> beats;
    for (std::size_t off = 0; off < in.size(); off += bb) {
        const std::size_t len = std::min(bb, in.size() - off);
        sim::Beat b;
        b.data.assign(in.begin() + static_cast<long>(off),
                      in.begin() + static_cast<long>(off + len));
        b.keep = len >= 64 ? ~0ULL : ((1ULL << len) - 1);
        b.last = off + len == in.size();
        beats.push_back(std::move(b));
        ++n_beats;
    }
    pending_beats_.insert(pending_beats_.end(), std::make_move_iterator(beats.begin()),
                          std::make_move_iterator(beats.end()));
    beats_queued_ += n_beats;
    const uint64_t target = beats_queued_;
    cv_.notify_all();
    for (;;) {
        if (epoch_ != epoch) return -EIO;  // the card was reset under the transfer
        if (beats_taken_ >= target) return static_cast<int>(in.size());
        if (stop_) return -EIO;
        if (abort && abort()) return -EINTR;
        changed_.wait_for(lk, std::chrono::milliseconds(20));
    }
}

int Emulator::c2h_read(std::span<uint8_t> out, const AbortFn& abort) {
    std::unique_lock lk(mu_);
    for (;;) {
        if (c2h_.size() >= out.size() || !c2h_ends_.empty()) break;
        if (stop_) return -EIO;
        if (abort && abort()) return -EINTR;
        changed_.wait_for(lk, std::chrono::milliseconds(20));
    }
    std::size_t n = out.size();
    if (!c2h_ends_.empty()) n = std::min<std::size_t>(n, c2h_ends_.front() - c2h_head_);
    std::copy_n(c2h_.begin(), n, out.begin());
    c2h_.erase(c2h_.begin(), c2h_.begin() + static_cast<long>(n));
    c2h_head_ += n;
    // The transfer ended at its tlast (or the reset) if the read reached it.
    if (!c2h_ends_.empty() && c2h_ends_.front() == c2h_head_) c2h_ends_.pop_front();
    return static_cast<int>(n);
}

int Emulator::events_read(std::span<uint8_t> out, const AbortFn& abort) {
    if (out.size() < 4) return -EINVAL;
    std::unique_lock lk(mu_);
    for (;;) {
        if (events_ > 0) break;
        if (stop_) return -EIO;
        if (abort && abort()) return -EINTR;
        changed_.wait_for(lk, std::chrono::milliseconds(20));
    }
    const uint32_t n = events_;
    events_ = 0;
    std::memcpy(out.data(), &n, 4);
    return 4;
}

bool Emulator::c2h_ready() {
    std::lock_guard lk(mu_);
    return !c2h_ends_.empty();
}

bool Emulator::events_ready() {
    std::lock_guard lk(mu_);
    return events_ > 0;
}

}  // namespace waferprov::cardsim
