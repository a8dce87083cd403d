// The narrow path between the card driver (drivers/card) and one card: its register space, its
// two AXI4-Stream channels and its user interrupt, as docs/card.md and docs/register-map.md
// describe them. The driver is written once over this interface; each transport only moves
// bytes (drivers/verilator clocks the Verilated card in-process, drivers/xdma uses the Xilinx
// XDMA driver's device nodes). A transport never interprets a record.
//
// Every call returns within its deadline or with ErrorCode::kTimeout; device failures are
// kDeviceFault or kIo with a message naming the device node or the model, never an exception.
// Not thread-safe: one thread drives one transport.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "waferprov/result.hpp"

namespace waferprov::card {

class Transport {
public:
    virtual ~Transport() = default;

    // Register space (AXI4-Lite on the card, `<dev>_user` over XDMA): 32-bit, 4-byte aligned
    // offsets from docs/register-map.md.
    virtual Result<uint32_t> read32(uint32_t offset) = 0;
    virtual Status write32(uint32_t offset, uint32_t value) = 0;

    // The request stream (H2C): `bytes` leave as ONE packet, the last beat carrying tlast (one
    // XDMA H2C transfer). A batch of m UIDs is 16*m bytes. Returns once the transport has taken
    // every byte, or kTimeout.
    virtual Status write_requests(std::span<const uint8_t> bytes,
                                  std::chrono::milliseconds timeout) = 0;

    // The record stream (C2H): fills `out` completely (a whole number of 128-byte records; the
    // card sets tlast on the last record of each request packet, so one read per batch). A
    // transfer that ends short (tlast early, a card reset) is kDeviceFault; nothing arriving
    // within `timeout` is kTimeout.
    virtual Status read_records(std::span<uint8_t> out, std::chrono::milliseconds timeout) = 0;

    // Waits for the user interrupt (IRQ_STATUS & IRQ_ENABLE != 0 on the card; a blocking read
    // of `<dev>_events_0` over XDMA). kTimeout when none comes within `timeout`.
    virtual Status wait_event(std::chrono::milliseconds timeout) = 0;

    // "verilator n4_w128", "xdma /dev/xdma0": for messages and `--version`-style reports.
    virtual std::string describe() const = 0;
};

}  // namespace waferprov::card
