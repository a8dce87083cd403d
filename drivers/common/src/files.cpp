#include "waferprov/files.hpp"

#if !defined(_WIN32)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include <cerrno>
#include <cstring>
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

}  // namespace waferprov
