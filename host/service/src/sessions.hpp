// The tester link's sessions and their answer caches (docs/tester-protocol.md, "Sessions" and
// "Retries"): which sessions exist, which CURVE key each is bound to, and the answers kept per
// session so that a repeated request gets the first answer. No sockets and no threads: the
// service's I/O thread owns the table, and the tests drive it directly.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "waferprov/bytes.hpp"
#include "waferprov/host/protocol.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host {
namespace link {
class JobLink;
}

namespace svc {

using Clock = std::chrono::steady_clock;

// Where an answer goes: the connection's ROUTER routing id and the request id to answer.
struct Recipient {
    Bytes routing_id;
    uint32_t request_id = 0;
};

struct CachedAnswer {
    uint64_t work_id = 0;  // the work that computes the answer
    protocol::Kind kind{};
    uint32_t sequence = 0;
    Bytes request_body;  // the request after its header (request ids may differ on a retry)
    Bytes answer;        // the encoded answer frame; empty while the request is being worked on
    // Repeats that arrived while it was worked on (e.g. with a new request id after a client
    // timeout): they get the answer too.
    std::vector<Recipient> waiters;
};

struct Session {
    uint64_t id = 0;
    link::JobLink* job = nullptr;
    std::string tester;
    std::string key;  // the CURVE public key (Z85) the session is bound to; "" when insecure
    uint8_t minor = 0;
    Clock::time_point last_used;
    std::deque<CachedAnswer> answers;  // newest last
};

class SessionTable {
public:
    struct Limits {
        size_t max_sessions = 1024;  // the least recently used session is dropped beyond this
        size_t per_key = 16;         // sessions one CURVE key may hold (insecure: no limit)
        size_t answers_kept = 8;     // answers cached per session
    };
    using Log = std::function<void(const std::string&)>;
    using Dropped = std::function<void(const Session&)>;

    // `dropped` (may be empty) hears of each session pushed out by open().
    SessionTable(Limits limits, bool per_key_limit, Log log, Dropped dropped = {});

    // A new session with a fresh random id. A key that holds `per_key` sessions loses its own
    // least recently used one (a tester restarting its program), never another tester's; a full
    // table loses its least recently used. kInternal when no randomness is available.
    Result<Session*> open(link::JobLink* job, std::string tester, std::string key, uint8_t minor);

    // The session `id`, if it exists and is bound to `key` (a session is the key's, not the
    // connection's: another connection with the same key may use it).
    Session* find(uint64_t id, const std::string& key);
    void close(uint64_t id) { sessions_.erase(id); }
    size_t size() const { return sessions_.size(); }

    // What the cache knows of a request: nothing (kNew: work on it, then remember()); its
    // answer (kAnswered: `answer` is set); that it is being worked on (kPending: `waiter` was
    // added to the waiters); or that its TOUCHDOWN sequence was used with other content
    // (kSequenceReused). RESULTS may share a sequence with different content: each is its own
    // request. The cache keeps `answers_kept` answers per session; older ones are forgotten.
    enum class Lookup { kNew, kAnswered, kPending, kSequenceReused };
    struct Hit {
        Lookup what = Lookup::kNew;
        const Bytes* answer = nullptr;
    };
    Hit lookup(Session& s, protocol::Kind kind, uint32_t sequence, ByteSpan body, Recipient waiter);
    // A request handed to the workers as `work_id`.
    void remember(Session& s, uint64_t work_id, protocol::Kind kind, uint32_t sequence,
                  ByteSpan body);
    // The answer to `work_id` of session `session_id` is ready: returns who else waits for it,
    // with the bytes to send them. The answer is kept (moved out of `answer` into the cache)
    // unless it is an ERROR: a failure is not kept, so a retry tries again, and `answer` is left
    // as it was. Nothing happens if the session or the entry is gone.
    struct Completion {
        std::vector<Recipient> waiters;
        const Bytes* answer = nullptr;  // the cached bytes or `answer`; valid until the next call
    };
    Completion complete(uint64_t session_id, uint64_t work_id, Bytes& answer);

private:
    size_t count(const std::string& key) const;
    void evict_oldest(const std::string* key);

    Limits limits_;
    bool per_key_limit_;
    Log log_;
    Dropped dropped_;
    std::unordered_map<uint64_t, Session> sessions_;
};

}  // namespace svc
}  // namespace waferprov::host
