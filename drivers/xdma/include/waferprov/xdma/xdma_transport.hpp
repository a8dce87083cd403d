// The card over PCIe: card::Transport on the Xilinx XDMA driver's character devices
// (dma_ip_drivers, XDMA/linux-kernel), used the way the driver's own tools use them:
//
//   <prefix>_user       the AXI4-Lite BAR: a register is a 4-byte pread/pwrite at its offset
//   <prefix>_h2c_0      the request stream: one write(2) of a whole batch = one H2C transfer,
//                       the card sees tlast on its last beat
//   <prefix>_c2h_0      the record stream: one read(2) of a whole batch = one C2H transfer,
//                       which the card ends with tlast on the batch's last record
//   <prefix>_events_0   the user interrupt: a blocking 4-byte read (the event count)
//
// e.g. prefix "/dev/xdma0" on a real card, "<mountdir>/xdma0" on waferprov-cardsim.
// Buffers handed to the DMA nodes are 4 KiB-aligned (the driver pins user pages and maps them
// for the engine; unaligned buffers cost a bounce or fail on some kernels); a transfer is at
// most 0x7ffff000 bytes (Linux's cap on one read/write); a short transfer is kDeviceFault.
// Every deadline is poll(2) on the node; every error names the node.
//
// Not thread-safe: one thread drives one transport (card::Transport's contract).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>

#include "waferprov/card/transport.hpp"
#include "waferprov/result.hpp"
#include "waferprov/xdma/unique_fd.hpp"

namespace waferprov::xdma {

// Linux moves at most this many bytes in one read(2)/write(2) (MAX_RW_COUNT); the XDMA tools
// split larger transfers into chunks of this size.
inline constexpr std::size_t kMaxTransfer = 0x7ffff000;
// DMA buffer alignment (one page).
inline constexpr std::size_t kDmaAlign = 4096;

class XdmaTransport final : public card::Transport {
public:
    // Opens the four nodes of `prefix` ("/dev/xdma0"). kNotFound naming the node that is
    // missing, kUnavailable when it cannot be opened (permissions, device busy).
    static Result<std::unique_ptr<XdmaTransport>> open(const std::string& prefix);

    Result<uint32_t> read32(uint32_t offset) override;
    Status write32(uint32_t offset, uint32_t value) override;
    Status write_requests(std::span<const uint8_t> bytes,
                          std::chrono::milliseconds timeout) override;
    Status read_records(std::span<uint8_t> out, std::chrono::milliseconds timeout) override;
    Status wait_event(std::chrono::milliseconds timeout) override;
    std::string describe() const override { return "xdma " + prefix_; }

    const std::string& prefix() const { return prefix_; }

private:
    struct FreeDeleter {
        void operator()(uint8_t* p) const noexcept { std::free(p); }
    };
    using DmaBuffer = std::unique_ptr<uint8_t, FreeDeleter>;

    XdmaTransport(std::string prefix, UniqueFd user, UniqueFd h2c, UniqueFd c2h, UniqueFd events)
        : prefix_(std::move(prefix)),
          user_(std::move(user)),
          h2c_(std::move(h2c)),
          c2h_(std::move(c2h)),
          events_(std::move(events)) {}
    // A 4 KiB-aligned buffer of at least `n` bytes, kept between batches.
    Result<uint8_t*> buffer(std::size_t n);

    std::string prefix_;
    UniqueFd user_, h2c_, c2h_, events_;
    DmaBuffer buf_;
    std::size_t buf_size_ = 0;
};

}  // namespace waferprov::xdma
