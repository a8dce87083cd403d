#include "waferprov/files.hpp"

#if !defined(_WIN32)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

namespace waferprov {

#if defined(_WIN32)
// The Windows build (the tester library, ate/windows) reads key files but never writes one, and
// a POSIX mode means nothing to an NTFS ACL: refuse rather than write a secret file that others
// might read.
Status write_new_file(const std::filesystem::path& path, std::string_view, unsigned) {
    return make_error(ErrorCode::kUnsupported,
                      "cannot create " + path.string() +
                          ": writing files with a POSIX mode is not supported on Windows");
}
#else
Status write_new_file(const std::filesystem::path& path, std::string_view data, unsigned mode) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        if (errno == EEXIST)
            return make_error(ErrorCode::kInvalidArgument,
                              "refusing to overwrite existing " + path.string());
        return make_error(ErrorCode::kIo,
                          "cannot create " + path.string() + ": " + std::strerror(errno));
    }
    // The umask may have taken bits away; set exactly what was asked for.
    Status st = ok_status();
    if (::fchmod(fd, static_cast<mode_t>(mode)) != 0)
        st = make_error(ErrorCode::kIo, "chmod " + path.string() + ": " + std::strerror(errno));
    size_t off = 0;
    while (st.ok() && off < data.size()) {
        const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            st = make_error(ErrorCode::kIo,
                            "writing " + path.string() + ": " + std::strerror(errno));
            break;
        }
        off += static_cast<size_t>(n);
    }
    if (st.ok() && ::fsync(fd) != 0)
        st = make_error(ErrorCode::kIo, "fsync " + path.string() + ": " + std::strerror(errno));
    if (::close(fd) != 0 && st.ok())
        st = make_error(ErrorCode::kIo, "closing " + path.string() + ": " + std::strerror(errno));
    if (!st.ok()) ::unlink(path.c_str());
    return st;
}
#endif

namespace {

Error too_large(const std::filesystem::path& path, size_t max_bytes, std::string_view what) {
    return make_error(ErrorCode::kResourceExhausted, std::string(what) + " " + path.string() +
                                                         " is larger than the limit of " +
                                                         std::to_string(max_bytes) + " bytes");
}

}  // namespace

#if defined(_WIN32)
Result<std::string> read_file_capped(const std::filesystem::path& path, size_t max_bytes,
                                     std::string_view what) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        return make_error(ErrorCode::kInvalidArgument,
                          std::string(what) + " " + path.string() + " is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return make_error(ErrorCode::kIo, "cannot open " + std::string(what) + " " + path.string());
    std::string out;
    std::array<char, 65536> buf;
    while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        const auto n = static_cast<size_t>(in.gcount());
        if (n > max_bytes - out.size()) return too_large(path, max_bytes, what);
        out.append(buf.data(), n);
    }
    if (in.bad())
        return make_error(ErrorCode::kIo, "reading " + std::string(what) + " " + path.string());
    return out;
}
#else
Result<std::string> read_file_capped(const std::filesystem::path& path, size_t max_bytes,
                                     std::string_view what) {
    const std::string name = std::string(what) + " " + path.string();
    // O_NONBLOCK: opening a FIFO without a writer must not hang; cleared again below.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return make_error(ErrorCode::kIo, "cannot open " + name + ": " + std::strerror(errno));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return make_error(ErrorCode::kIo, "cannot stat " + name + ": " + std::strerror(errno));
    if (S_ISDIR(st.st_mode))
        return make_error(ErrorCode::kInvalidArgument, name + " is a directory");
    // st_size is only a hint (0 for /dev/zero and pipes): the cap is enforced on what is read.
    if (S_ISREG(st.st_mode) && static_cast<unsigned long long>(st.st_size) > max_bytes)
        return too_large(path, max_bytes, what);
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    std::string out;
    std::array<char, 65536> buf;
    while (true) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return make_error(ErrorCode::kIo, "reading " + name + ": " + std::strerror(errno));
        if (n == 0) break;
        if (static_cast<size_t>(n) > max_bytes - out.size())
            return too_large(path, max_bytes, what);
        out.append(buf.data(), static_cast<size_t>(n));
    }
    return out;
}
#endif

}  // namespace waferprov
