// The head log beside a ledger (`<ledger>.anchor`, docs/ledger.md "The anchor"): an append-only,
// fsynced record of the chain head and the quota used after every commit, kept out of the
// database file so that a rollback of that file (a restored copy, a VM snapshot, a write-ahead
// log cut short by a damaged frame) is seen at the next open. Internal header.
//
// Format (text, one line each, '\n'-terminated):
//   waferprov-anchor 1 genesis <hex of the ledger's event 1 hash>
//   <seq> <chain hash hex> <quota used> <link hex>
// where link(i) = SHA-256(link(i-1) || "<seq> <hash hex> <quota used>") and link(0) = SHA-256
// of the header line (without its '\n'). A line whose link does not follow, or that does not
// parse, is an edited or damaged anchor; an unterminated last line is a torn append (a crash
// while writing it) and is dropped, since the ledger commit it followed is durable anyway.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "chain.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host::anchor {

struct Head {
    uint64_t seq = 0;
    chain::Hash hash{};
    uint64_t used = 0;
};

// "seq:hash-hex", the form messages and `ledger verify --head` use.
std::string describe(uint64_t seq, const chain::Hash& hash);

// `<ledger>.anchor`.
std::filesystem::path path_for(const std::filesystem::path& ledger);

// What a read of an anchor file found.
struct Contents {
    chain::Hash genesis{};
    std::optional<Head> last;  // nullopt: a header and no head yet
    uint64_t lines = 0;        // head lines
    uint64_t good_size = 0;    // bytes up to the end of the last complete, valid line
    chain::Hash last_link{};
    bool torn_tail = false;  // an unterminated last line was dropped
};

// Reads and checks the whole file. kNotFound if it does not exist; kIntegrityFailure naming the
// line when a complete line does not parse or its link does not follow (edited or damaged).
Result<Contents> read(const std::filesystem::path& file);

// An anchor file open for appending (move-only; closes its descriptor).
class Writer {
public:
    Writer() = default;
    Writer(Writer&& o) noexcept;
    Writer& operator=(Writer&& o) noexcept;
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;
    ~Writer();

    // Creates `file` (which must not exist) with its header and first head, fsynced (file and
    // directory), so it appears complete or not at all.
    static Result<Writer> create(const std::filesystem::path& file, const chain::Hash& genesis,
                                 const Head& head);
    // Opens an existing anchor for appending after read() checked it; cuts a torn tail.
    static Result<Writer> open(const std::filesystem::path& file, const Contents& contents);

    // Appends `head` and fsyncs, under an exclusive flock so that processes sharing the ledger
    // append in turn; a head not beyond the last one in the file (another process anchored a
    // later commit first) is skipped. Not thread-safe: the ledger calls it under its mutex.
    Status advance(const Head& head);

    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
    int fd_ = -1;
    uint64_t size_ = 0;  // the file's size after our last append
    uint64_t last_seq_ = 0;
    chain::Hash last_link_{};
};

}  // namespace waferprov::host::anchor
