#include "anchor.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>
#include <vector>

namespace waferprov::host::anchor {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kHeaderPrefix = "waferprov-anchor 1 genesis ";

Error io_error(const std::string& what, const fs::path& p, int err) {
    return make_error(ErrorCode::kIo,
                      "anchor " + p.string() + ": " + what + ": " + std::strerror(err));
}

chain::Hash link_of(const chain::Hash& prev, std::string_view text) {
    return chain::chain_step(prev, text);
}

std::string head_text(const Head& h) {
    return std::to_string(h.seq) + " " + to_hex(h.hash) + " " + std::to_string(h.used);
}

bool parse_u64(std::string_view s, uint64_t& out) {
    if (s.empty() || s.size() > 20) return false;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

bool parse_hash(std::string_view s, chain::Hash& out) {
    if (s.size() != 64) return false;
    auto b = from_hex_fixed<32>(s, "hash");
    if (!b.ok()) return false;
    out = *b;
    return true;
}

// "<seq> <hash> <used> <link>" -> the head and the stored link.
bool parse_line(std::string_view line, Head& h, chain::Hash& link, std::string_view& text) {
    std::vector<std::string_view> f;
    size_t start = 0;
    while (start <= line.size() && f.size() < 5) {
        const size_t sp = line.find(' ', start);
        f.push_back(line.substr(start, sp == std::string_view::npos ? sp : sp - start));
        if (sp == std::string_view::npos) break;
        start = sp + 1;
    }
    if (f.size() != 4) return false;
    text = line.substr(0, line.rfind(' '));
    return parse_u64(f[0], h.seq) && parse_hash(f[1], h.hash) && parse_u64(f[2], h.used) &&
           parse_hash(f[3], link);
}

Status write_all(int fd, std::string_view data, const fs::path& p) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return io_error("write", p, errno);
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return ok_status();
}

Status fsync_fd(int fd, const fs::path& p) {
    int rc;
    do rc = ::fsync(fd);
    while (rc != 0 && errno == EINTR);
    if (rc != 0) return io_error("fsync", p, errno);
    return ok_status();
}

Status fsync_dir(const fs::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return io_error("open directory", dir, errno);
    Status st = fsync_fd(fd, dir);
    ::close(fd);
    return st;
}

// flock(2) held for a scope.
class FileLock {
public:
    explicit FileLock(int fd) : fd_(fd) {
        int rc;
        do rc = ::flock(fd_, LOCK_EX);
        while (rc != 0 && errno == EINTR);
        ok_ = rc == 0;
        err_ = ok_ ? 0 : errno;
    }
    ~FileLock() {
        if (ok_) ::flock(fd_, LOCK_UN);
    }
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;
    bool ok() const { return ok_; }
    int err() const { return err_; }

private:
    int fd_;
    bool ok_;
    int err_;
};

}  // namespace

std::string describe(uint64_t seq, const chain::Hash& hash) {
    return std::to_string(seq) + ":" + to_hex(hash);
}

fs::path path_for(const fs::path& ledger) {
    fs::path p = ledger;
    p += ".anchor";
    return p;
}

Result<Contents> read(const fs::path& file) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return make_error(ErrorCode::kNotFound, file.string() + " is absent");
        return io_error("open", file, errno);
    }
    std::string data;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int err = errno;
            ::close(fd);
            return io_error("read", file, err);
        }
        if (n == 0) break;
        data.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    auto bad = [&](uint64_t line, const std::string& why) -> Error {
        return make_error(ErrorCode::kIntegrityFailure, "anchor " + file.string() + " line " +
                                                            std::to_string(line) + ": " + why +
                                                            " (the anchor was edited or damaged)");
    };
    Contents c;
    const size_t header_end = data.find('\n');
    if (header_end == std::string::npos) return bad(1, "no complete header line");
    const std::string_view header(data.data(), header_end);
    if (header.substr(0, kHeaderPrefix.size()) != kHeaderPrefix ||
        !parse_hash(header.substr(kHeaderPrefix.size()), c.genesis))
        return bad(1, "not a waferprov anchor header");
    c.last_link = link_of(chain::Hash{}, header);
    c.good_size = header_end + 1;
    uint64_t line_no = 1;
    size_t pos = header_end + 1;
    while (pos < data.size()) {
        ++line_no;
        const size_t end = data.find('\n', pos);
        if (end == std::string::npos) {
            c.torn_tail = true;  // an append cut short: the commit before it is durable
            break;
        }
        const std::string_view line(data.data() + pos, end - pos);
        Head h;
        chain::Hash link{};
        std::string_view text;
        if (!parse_line(line, h, link, text)) return bad(line_no, "malformed head line");
        if (link_of(c.last_link, text) != link) return bad(line_no, "its link does not follow");
        if (c.last && h.seq <= c.last->seq)
            return bad(line_no, "head " + std::to_string(h.seq) + " is not beyond the one before");
        if (c.last && h.used < c.last->used) return bad(line_no, "quota used went down");
        c.last = h;
        c.last_link = link;
        ++c.lines;
        pos = end + 1;
        c.good_size = pos;
    }
    return c;
}

Writer::Writer(Writer&& o) noexcept
    : path_(std::move(o.path_)),
      fd_(o.fd_),
      size_(o.size_),
      last_seq_(o.last_seq_),
      last_link_(o.last_link_) {
    o.fd_ = -1;
}

Writer& Writer::operator=(Writer&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        path_ = std::move(o.path_);
        fd_ = o.fd_;
        size_ = o.size_;
        last_seq_ = o.last_seq_;
        last_link_ = o.last_link_;
        o.fd_ = -1;
    }
    return *this;
}

Writer::~Writer() {
    if (fd_ >= 0) ::close(fd_);
}

Result<Writer> Writer::create(const fs::path& file, const chain::Hash& genesis, const Head& head) {
    const std::string header = std::string(kHeaderPrefix) + to_hex(genesis);
    const chain::Hash link0 = link_of(chain::Hash{}, header);
    const std::string text = head_text(head);
    const chain::Hash link1 = link_of(link0, text);
    const std::string content = header + "\n" + text + " " + to_hex(link1) + "\n";
    // Written aside and linked into place: the anchor appears complete or not at all, and an
    // anchor another process created meanwhile is never overwritten (link(2) fails on EEXIST).
    fs::path tmp = file;
    tmp += ".tmp." + std::to_string(::getpid());
    const int tfd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (tfd < 0) return io_error("create", tmp, errno);
    Status st = write_all(tfd, content, tmp);
    if (st.ok()) st = fsync_fd(tfd, tmp);
    ::close(tfd);
    if (st.ok() && ::link(tmp.c_str(), file.c_str()) != 0)
        st = errno == EEXIST ? make_error(ErrorCode::kResourceExhausted,
                                          "anchor " + file.string() + " was created meanwhile")
                             : io_error("link", file, errno);
    ::unlink(tmp.c_str());
    WP_RETURN_IF_ERROR(st);
    WP_RETURN_IF_ERROR(fsync_dir(file.has_parent_path() ? file.parent_path() : fs::path(".")));
    Writer w;
    w.path_ = file;
    w.fd_ = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (w.fd_ < 0) return io_error("open", file, errno);
    w.size_ = content.size();
    w.last_seq_ = head.seq;
    w.last_link_ = link1;
    return w;
}

Result<Writer> Writer::open(const fs::path& file, const Contents& contents) {
    Writer w;
    w.path_ = file;
    w.fd_ = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (w.fd_ < 0) return io_error("open for appending", file, errno);
    if (contents.torn_tail) {
        FileLock lock(w.fd_);
        if (!lock.ok()) return io_error("lock", file, lock.err());
        if (::ftruncate(w.fd_, static_cast<off_t>(contents.good_size)) != 0)
            return io_error("cutting its torn last line", file, errno);
        WP_RETURN_IF_ERROR(fsync_fd(w.fd_, file));
    }
    w.size_ = contents.good_size;
    w.last_seq_ = contents.last ? contents.last->seq : 0;
    w.last_link_ = contents.last_link;
    return w;
}

Status Writer::advance(const Head& head) {
    if (fd_ < 0) return make_error(ErrorCode::kInternal, "anchor: not open");
    if (head.seq <= last_seq_) return ok_status();
    FileLock lock(fd_);
    if (!lock.ok()) return io_error("lock", path_, lock.err());
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return io_error("stat", path_, errno);
    if (static_cast<uint64_t>(st.st_size) != size_) {
        // Another process (a `run` beside a `serve`) appended: continue from its last line.
        const off_t size = st.st_size;
        const off_t from = size > 4096 ? size - 4096 : 0;
        std::string tail(static_cast<size_t>(size - from), '\0');
        const int rfd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
        if (rfd < 0) return io_error("open", path_, errno);
        const ssize_t n = ::pread(rfd, tail.data(), tail.size(), from);
        const int err = errno;
        ::close(rfd);
        if (n != static_cast<ssize_t>(tail.size())) return io_error("read", path_, err);
        size_t end = tail.rfind('\n');
        if (end == std::string::npos)
            return make_error(ErrorCode::kIntegrityFailure,
                              "anchor " + path_.string() + ": no complete line at its end");
        if (end + 1 != tail.size()) {
            // Another process died mid-append: cut its torn line (its commit is durable and
            // this head is beyond it).
            if (::ftruncate(fd_, from + static_cast<off_t>(end) + 1) != 0)
                return io_error("cutting a torn line", path_, errno);
        }
        size_ = static_cast<uint64_t>(from) + end + 1;
        const size_t begin = tail.rfind('\n', end == 0 ? 0 : end - 1);
        const std::string_view line(tail.data() + (begin == std::string::npos ? 0 : begin + 1),
                                    end - (begin == std::string::npos ? 0 : begin + 1));
        Head last;
        chain::Hash link{};
        std::string_view text;
        if (line.substr(0, kHeaderPrefix.size()) == kHeaderPrefix) {
            last_seq_ = 0;
            last_link_ = link_of(chain::Hash{}, line);
        } else if (parse_line(line, last, link, text)) {
            last_seq_ = last.seq;
            last_link_ = link;
        } else {
            return make_error(ErrorCode::kIntegrityFailure,
                              "anchor " + path_.string() + ": its last line is malformed");
        }
        if (head.seq <= last_seq_) return ok_status();
    }
    const std::string text = head_text(head);
    const chain::Hash link = link_of(last_link_, text);
    const std::string line = text + " " + to_hex(link) + "\n";
    WP_RETURN_IF_ERROR(write_all(fd_, line, path_));
    // fdatasync: the appended bytes and the size are what matters; the mtime need not be.
    int rc;
    do rc = ::fdatasync(fd_);
    while (rc != 0 && errno == EINTR);
    if (rc != 0) return io_error("fdatasync", path_, errno);
    size_ += line.size();
    last_seq_ = head.seq;
    last_link_ = link;
    return ok_status();
}

}  // namespace waferprov::host::anchor
