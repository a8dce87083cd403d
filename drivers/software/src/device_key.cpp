#include "waferprov/software/device_key.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <openssl/rand.h>

#include "waferprov/files.hpp"
#include "waferprov/ossl.hpp"

namespace waferprov::software {
namespace {

Error io_error(const std::filesystem::path& path, const std::string& what) {
    return make_error(ErrorCode::kIo,
                      "device key " + path.string() + ": " + what + ": " + std::strerror(errno));
}

}  // namespace

Result<DeviceKey> load_device_key(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return io_error(path, "cannot open");
    struct FdCloser {
        int fd;
        ~FdCloser() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) return io_error(path, "cannot stat");
    if (!S_ISREG(st.st_mode))
        return make_error(ErrorCode::kInvalidArgument,
                          "device key " + path.string() + ": not a regular file");
    if (st.st_uid != ::geteuid())
        return make_error(ErrorCode::kInvalidArgument,
                          "device key " + path.string() + ": not owned by the current user");
    if ((st.st_mode & 077) != 0)
        return make_error(
            ErrorCode::kInvalidArgument,
            "device key " + path.string() + ": readable by group or others (chmod 600 it)");
    SecretArray<80> buf;
    ssize_t n;
    do {
        n = ::read(fd, buf.data(), buf.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) return io_error(path, "cannot read");
    size_t len = static_cast<size_t>(n);
    while (len > 0 &&
           (buf.bytes[len - 1] == '\n' || buf.bytes[len - 1] == '\r' || buf.bytes[len - 1] == ' '))
        --len;
    if (len != 64)
        return make_error(ErrorCode::kInvalidArgument,
                          "device key " + path.string() + ": expected 64 hex digits");
    auto raw = from_hex(std::string_view(reinterpret_cast<const char*>(buf.data()), len),
                        "device key " + path.string());
    if (!raw.ok()) return raw.error();
    DeviceKey key;
    std::memcpy(key.data(), raw->data(), 32);
    secure_wipe(raw->data(), raw->size());
    return key;
}

Status write_new_device_key(const std::filesystem::path& path) {
    DeviceKey key;
    if (RAND_priv_bytes(key.data(), 32) != 1) return ossl::ossl_error("generating device key");
    std::string hex = to_hex(key.span()) + "\n";
    Status st = write_new_file(path, hex, 0600);
    secure_wipe(hex.data(), hex.size());
    return st;
}

Result<DeviceKey> test_device_key() {
#ifdef WAFERPROV_DEVELOPMENT_BUILD
    // Published in docs/identity-spec.md: the bytes d0 d1 ... ef, recognisable in a dump and
    // useless in production.
    DeviceKey key;
    for (size_t i = 0; i < 32; ++i) key.bytes[i] = static_cast<uint8_t>(0xd0 + i);
    return key;
#else
    return make_error(ErrorCode::kUnsupported,
                      "the test device key exists only in development builds");
#endif
}

}  // namespace waferprov::software
