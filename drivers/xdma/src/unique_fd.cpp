#include "waferprov/xdma/unique_fd.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace waferprov::xdma {

namespace {

std::string errno_text(int e) { return std::strerror(e); }

}  // namespace

UniqueFd::UniqueFd(UniqueFd&& other) noexcept : fd_(other.fd_), name_(std::move(other.name_)) {
    other.fd_ = -1;
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
        reset();
        fd_ = other.fd_;
        name_ = std::move(other.name_);
        other.fd_ = -1;
    }
    return *this;
}

void UniqueFd::reset() noexcept {
    if (fd_ >= 0) {
        // close() is not retried on EINTR: on Linux the descriptor is gone either way.
        ::close(fd_);
        fd_ = -1;
    }
}

Result<UniqueFd> UniqueFd::open(const std::string& path, int flags) {
    int fd = -1;
    do {
        fd = ::open(path.c_str(), flags | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        const int e = errno;
        const ErrorCode code =
            e == ENOENT ? ErrorCode::kNotFound
            : (e == EACCES || e == EPERM || e == EBUSY || e == ENXIO || e == ENODEV)
                ? ErrorCode::kUnavailable
                : ErrorCode::kIo;
        return make_error(code, path + ": cannot open: " + errno_text(e));
    }
    return UniqueFd(fd, path);
}

Status UniqueFd::pread_exact(std::span<uint8_t> out, uint64_t offset) const {
    ssize_t n = -1;
    do {
        n = ::pread(fd_, out.data(), out.size(), static_cast<off_t>(offset));
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return make_error(ErrorCode::kIo, name_ + ": read of " + std::to_string(out.size()) +
                                              " bytes at offset " + std::to_string(offset) +
                                              " failed: " + errno_text(errno));
    if (static_cast<std::size_t>(n) != out.size())
        return make_error(ErrorCode::kDeviceFault,
                          name_ + ": short transfer: read " + std::to_string(n) + " of " +
                              std::to_string(out.size()) + " bytes at offset " +
                              std::to_string(offset));
    return ok_status();
}

Status UniqueFd::pwrite_exact(std::span<const uint8_t> in, uint64_t offset) const {
    ssize_t n = -1;
    do {
        n = ::pwrite(fd_, in.data(), in.size(), static_cast<off_t>(offset));
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return make_error(ErrorCode::kIo, name_ + ": write of " + std::to_string(in.size()) +
                                              " bytes at offset " + std::to_string(offset) +
                                              " failed: " + errno_text(errno));
    if (static_cast<std::size_t>(n) != in.size())
        return make_error(ErrorCode::kDeviceFault,
                          name_ + ": short transfer: wrote " + std::to_string(n) + " of " +
                              std::to_string(in.size()) + " bytes at offset " +
                              std::to_string(offset));
    return ok_status();
}

Status UniqueFd::wait(short events, std::chrono::milliseconds timeout) const {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        pollfd p{fd_, events, 0};
        const int ms = left.count() < 0
                           ? 0
                           : static_cast<int>(std::min<int64_t>(left.count(), int64_t{1} << 30));
        const int r = ::poll(&p, 1, ms);
        if (r < 0) {
            if (errno == EINTR) continue;
            return make_error(ErrorCode::kIo, name_ + ": poll failed: " + errno_text(errno));
        }
        if (r == 0)
            return make_error(ErrorCode::kTimeout, name_ + ": nothing within " +
                                                       std::to_string(timeout.count()) + " ms");
        if ((p.revents & events) != 0) return ok_status();
        if ((p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0)
            return make_error(ErrorCode::kDeviceFault,
                              name_ + ": poll reports " +
                                  ((p.revents & POLLNVAL) != 0  ? "an invalid descriptor"
                                   : (p.revents & POLLHUP) != 0 ? "hang-up"
                                                                : "an error"));
    }
}

}  // namespace waferprov::xdma
