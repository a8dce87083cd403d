#include "waferprov/xdma/xdma_transport.hpp"

#include <fcntl.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace waferprov::xdma {

namespace {

// The register window of the card (docs/register-map.md): offsets are 4-byte aligned.
Status check_offset(const UniqueFd& fd, uint32_t offset) {
    if (offset % 4 != 0)
        return make_error(
            ErrorCode::kInvalidArgument,
            fd.name() + ": register offset " + std::to_string(offset) + " is not 4-byte aligned");
    return ok_status();
}

Status check_size(const UniqueFd& fd, std::size_t n) {
    if (n == 0) return make_error(ErrorCode::kInvalidArgument, fd.name() + ": empty transfer");
    if (n > kMaxTransfer)
        return make_error(ErrorCode::kInvalidArgument,
                          fd.name() + ": transfer of " + std::to_string(n) +
                              " bytes exceeds one DMA (at most 0x7ffff000 bytes)");
    return ok_status();
}

}  // namespace

Result<std::unique_ptr<XdmaTransport>> XdmaTransport::open(const std::string& prefix) {
    if (prefix.empty())
        return make_error(ErrorCode::kInvalidArgument,
                          "xdma: empty device prefix (expected e.g. /dev/xdma0)");
    WP_ASSIGN_OR_RETURN(UniqueFd user, UniqueFd::open(prefix + "_user", O_RDWR));
    WP_ASSIGN_OR_RETURN(UniqueFd h2c, UniqueFd::open(prefix + "_h2c_0", O_WRONLY));
    WP_ASSIGN_OR_RETURN(UniqueFd c2h, UniqueFd::open(prefix + "_c2h_0", O_RDONLY));
    WP_ASSIGN_OR_RETURN(UniqueFd events, UniqueFd::open(prefix + "_events_0", O_RDONLY));
    return std::unique_ptr<XdmaTransport>(new XdmaTransport(prefix, std::move(user), std::move(h2c),
                                                            std::move(c2h), std::move(events)));
}

Result<uint32_t> XdmaTransport::read32(uint32_t offset) {
    WP_RETURN_IF_ERROR(check_offset(user_, offset));
    // The BAR is little-endian, as reg_rw.c reads it on x86; the card's registers are words.
    std::array<uint8_t, 4> b{};
    WP_RETURN_IF_ERROR(user_.pread_exact(b, offset));
    uint32_t v = 0;
    std::memcpy(&v, b.data(), 4);
    return v;
}

Status XdmaTransport::write32(uint32_t offset, uint32_t value) {
    WP_RETURN_IF_ERROR(check_offset(user_, offset));
    std::array<uint8_t, 4> b{};
    std::memcpy(b.data(), &value, 4);
    return user_.pwrite_exact(b, offset);
}

Result<uint8_t*> XdmaTransport::buffer(std::size_t n) {
    if (buf_size_ < n) {
        const std::size_t size = (n + kDmaAlign - 1) / kDmaAlign * kDmaAlign;
        void* p = std::aligned_alloc(kDmaAlign, size);
        if (p == nullptr)
            return make_error(
                ErrorCode::kResourceExhausted,
                prefix_ + ": no memory for a " + std::to_string(size) + "-byte DMA buffer");
        buf_.reset(static_cast<uint8_t*>(p));
        buf_size_ = size;
    }
    return buf_.get();
}

Status XdmaTransport::write_requests(std::span<const uint8_t> bytes,
                                     std::chrono::milliseconds timeout) {
    WP_RETURN_IF_ERROR(check_size(h2c_, bytes.size()));
    WP_ASSIGN_OR_RETURN(uint8_t * buf, buffer(bytes.size()));
    std::copy(bytes.begin(), bytes.end(), buf);
    WP_RETURN_IF_ERROR(h2c_.wait(POLLOUT, timeout));
    // One write = one H2C transfer = one request packet (tlast on its last beat). The file
    // position is the AXI address, unused by a stream engine: 0.
    return h2c_.pwrite_exact(std::span<const uint8_t>(buf, bytes.size()), 0);
}

Status XdmaTransport::read_records(std::span<uint8_t> out, std::chrono::milliseconds timeout) {
    WP_RETURN_IF_ERROR(check_size(c2h_, out.size()));
    WP_ASSIGN_OR_RETURN(uint8_t * buf, buffer(out.size()));
    WP_RETURN_IF_ERROR(c2h_.wait(POLLIN, timeout));
    // One read = one C2H transfer: it ends after out.size() bytes or at tlast, whichever comes
    // first; the card sets tlast on the batch's last record, so anything short is a fault.
    WP_RETURN_IF_ERROR(c2h_.pread_exact(std::span<uint8_t>(buf, out.size()), 0));
    std::copy(buf, buf + out.size(), out.begin());
    return ok_status();
}

Status XdmaTransport::wait_event(std::chrono::milliseconds timeout) {
    WP_RETURN_IF_ERROR(events_.wait(POLLIN, timeout));
    // The event count since the last read; reading it re-arms the user interrupt.
    std::array<uint8_t, 4> b{};
    WP_RETURN_IF_ERROR(events_.pread_exact(b, 0));
    uint32_t count = 0;
    std::memcpy(&count, b.data(), 4);
    if (count == 0)
        return make_error(ErrorCode::kDeviceFault,
                          events_.name() + ": woke with an event count of 0");
    return ok_status();
}

}  // namespace waferprov::xdma
