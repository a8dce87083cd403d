// The emulated XDMA card behind waferprov-cardsim: one Verilated card clocked by its own thread,
// and the four XDMA nodes' semantics on top of it, independent of FUSE:
//
//   user       4-byte register reads/writes at the register's offset (AXI4-Lite on the card)
//   h2c_0      a write is one request packet (tlast on its last beat); it returns once the card
//              has taken every beat (a halted card takes and drops them)
//   c2h_0      a read returns when the requested bytes are there, or early at tlast (or at a card
//              reset): what came, so a short read is the host's to refuse
//   events_0   a read blocks until the user interrupt has risen since the last read and returns
//              the event count (4 bytes); reading re-arms it, as the XDMA driver does
//
// Fault hooks (never in the production driver's path) act on the record with a given index
// (0-based, counted over the emulator's life) or from it on.
//
// Thread-safety: every public member may be called from any thread (FUSE's workers); blocking
// calls end with -EINTR when `abort()` says so (the request was interrupted, the filesystem is
// going down).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "card_model.hpp"
#include "waferprov/result.hpp"

namespace waferprov::cardsim {

enum class FaultKind {
    kStall,     // from record N on, the record stream stops (records withheld)
    kWrongUid,  // record N carries another UID (byte 8 flipped)
    kWrongSeq,  // record N carries sequence number + 1
    kOffCurve,  // record N's Y has its last bit flipped: the point is not on P-256
    kBadWrap,   // record N's wrapped key has its last byte flipped: it does not unwrap
    kReset,     // the card is reset (power-on state) when N records have come out
};

struct Fault {
    FaultKind kind;
    uint64_t record;
};

// "stall@3", "uid@0", "seq@5", "point@2", "wrap@1", "reset@4"; kInvalidArgument naming the
// text and the accepted forms otherwise.
Result<Fault> parse_fault(const std::string& text);
std::string fault_help();

using AbortFn = std::function<bool()>;

class Emulator {
public:
    struct Options {
        unsigned engines = 4;
        std::vector<Fault> faults;
    };
    // Builds the card (power-on reset) and starts its clock thread. kInvalidArgument for an
    // engine count sim/card_rtl does not build.
    static Result<std::unique_ptr<Emulator>> create(const Options& options,
                                                    std::span<const uint8_t> dk);
    ~Emulator();
    Emulator(const Emulator&) = delete;
    Emulator& operator=(const Emulator&) = delete;

    // Results are bytes transferred or -errno.
    int read_reg(uint64_t offset, std::span<uint8_t> out);
    int write_reg(uint64_t offset, std::span<const uint8_t> in);
    int h2c_write(std::span<const uint8_t> in, const AbortFn& abort);
    int c2h_read(std::span<uint8_t> out, const AbortFn& abort);
    int events_read(std::span<uint8_t> out, const AbortFn& abort);

    // Poll readiness: a C2H read would not block (a transfer's end, tlast or a reset, is
    // buffered); an event is pending.
    bool c2h_ready();
    bool events_ready();
    // Called (from the clock thread, without the lock) whenever readiness may have changed.
    void set_notify(std::function<void()> fn);

    // Stops the clock thread and wakes every blocked call (they return -EINTR or -EIO).
    void shutdown();

    std::string describe() const;

private:
    explicit Emulator(Options options, std::vector<uint8_t> dk);
    void clock_loop();
    // Under mu_: moves what the card put out into the node buffers, counts taken beats,
    // samples the interrupt line. Returns true when something moved.
    bool drain_locked();
    void deliver_locked(sim::RecordOut rec);
    void reset_card_locked();

    struct RegOp {
        bool write = false;
        uint32_t addr = 0;
        uint32_t value = 0;
        bool done = false;
    };

    Options options_;
    std::vector<uint8_t> dk_;
    std::unique_ptr<CardModel> card_;

    mutable std::mutex mu_;
    std::condition_variable cv_;       // the clock thread's wake-up (work queued)
    std::condition_variable changed_;  // the nodes' waiters (data, events, ops done)
    int run_reg_op(RegOp& op);         // queues `op` for the clock thread and waits: 0 or -EIO
    std::deque<RegOp*> ops_;           // register accesses queued for the clock thread
    bool stop_ = false;
    std::thread clock_;
    std::function<void()> notify_;

    // h2c: beats queued and taken (totals since power-on of the current card).
    std::deque<sim::Beat> pending_beats_;  // written, not yet handed to the model
    uint64_t beats_queued_ = 0;
    uint64_t beats_taken_ = 0;
    uint64_t epoch_ = 0;  // bumped on each card reset: transfers in flight end

    // c2h: bytes in order, and the stream positions (absolute) where a transfer ends (tlast,
    // or a reset).
    std::deque<uint8_t> c2h_;
    uint64_t c2h_head_ = 0;  // absolute position of c2h_.front()
    std::deque<uint64_t> c2h_ends_;
    uint64_t records_seen_ = 0;
    bool stalled_ = false;

    // events_0
    bool irq_level_ = false;
    uint32_t events_ = 0;

    uint64_t last_progress_cycle_ = 0;
};

}  // namespace waferprov::cardsim
