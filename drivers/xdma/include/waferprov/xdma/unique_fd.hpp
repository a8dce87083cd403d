// A file descriptor owned by one object: move-only, closed by the destructor (noexcept), the
// model for the XDMA device nodes (fmt's `file`). The calls it offers retry EINTR and turn
// errno into a Status naming the file, so no caller handles errno itself.
//
// Thread-safety: one object is used by one thread at a time (the fd itself may be shared with
// nothing else).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "waferprov/result.hpp"

namespace waferprov::xdma {

class UniqueFd {
public:
    UniqueFd() = default;
    // Takes ownership of `fd` (-1: empty); `name` is used in every error message.
    UniqueFd(int fd, std::string name) noexcept : fd_(fd), name_(std::move(name)) {}
    ~UniqueFd() { reset(); }
    UniqueFd(UniqueFd&& other) noexcept;
    UniqueFd& operator=(UniqueFd&& other) noexcept;
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;

    // open(2) with O_CLOEXEC added; kNotFound / kUnavailable / kIo naming `path`.
    static Result<UniqueFd> open(const std::string& path, int flags);

    int get() const noexcept { return fd_; }
    const std::string& name() const noexcept { return name_; }
    bool valid() const noexcept { return fd_ >= 0; }
    void reset() noexcept;

    // Exactly `out.size()` bytes from `offset` (pread): one call, EINTR retried; a short read is
    // kDeviceFault (the XDMA driver never splits a register access or a stream transfer).
    Status pread_exact(std::span<uint8_t> out, uint64_t offset) const;
    // Exactly `in.size()` bytes at `offset` (pwrite): as pread_exact.
    Status pwrite_exact(std::span<const uint8_t> in, uint64_t offset) const;
    // Waits until poll(2) reports `events` (POLLIN, POLLOUT) within `timeout`; kTimeout
    // otherwise, kDeviceFault on POLLERR/POLLHUP/POLLNVAL. EINTR continues with the time left.
    Status wait(short events, std::chrono::milliseconds timeout) const;

private:
    int fd_ = -1;
    std::string name_;
};

}  // namespace waferprov::xdma
