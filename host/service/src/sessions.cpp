#include "sessions.hpp"

#include <openssl/rand.h>

#include <algorithm>

namespace waferprov::host::svc {

namespace pr = protocol;

SessionTable::SessionTable(Limits limits, bool per_key_limit, Log log, Dropped dropped)
    : limits_(limits),
      per_key_limit_(per_key_limit),
      log_(std::move(log)),
      dropped_(std::move(dropped)) {}

Result<Session*> SessionTable::open(link::JobLink* job, std::string tester, std::string key,
                                    uint8_t minor) {
    if (per_key_limit_ && count(key) >= limits_.per_key)
        evict_oldest(&key);
    else if (sessions_.size() >= limits_.max_sessions)
        evict_oldest(nullptr);
    Session s;
    do {
        if (RAND_bytes(reinterpret_cast<unsigned char*>(&s.id), sizeof s.id) != 1)
            return make_error(ErrorCode::kInternal, "no randomness for a session id");
    } while (s.id == 0 || sessions_.contains(s.id));
    s.job = job;
    s.tester = std::move(tester);
    s.key = std::move(key);
    s.minor = minor;
    s.last_used = Clock::now();
    const uint64_t id = s.id;
    return &sessions_.emplace(id, std::move(s)).first->second;
}

Session* SessionTable::find(uint64_t id, const std::string& key) {
    auto it = sessions_.find(id);
    if (it == sessions_.end() || it->second.key != key) return nullptr;
    return &it->second;
}

size_t SessionTable::count(const std::string& key) const {
    size_t n = 0;
    for (const auto& [id, s] : sessions_) n += s.key == key;
    return n;
}

void SessionTable::evict_oldest(const std::string* key) {
    auto oldest = sessions_.end();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
        if (key != nullptr && it->second.key != *key) continue;
        if (oldest == sessions_.end() || it->second.last_used < oldest->second.last_used)
            oldest = it;
    }
    if (oldest == sessions_.end()) return;
    if (log_)
        log_("session of tester " + oldest->second.tester + " dropped (the oldest idle of " +
             std::to_string(sessions_.size()) + ")");
    if (dropped_) dropped_(oldest->second);
    sessions_.erase(oldest);
}

SessionTable::Hit SessionTable::lookup(Session& s, pr::Kind kind, uint32_t sequence, ByteSpan body,
                                       Recipient waiter) {
    for (auto& c : s.answers) {
        if (c.kind != kind || c.sequence != sequence) continue;
        const bool same =
            std::equal(body.begin(), body.end(), c.request_body.begin(), c.request_body.end());
        if (!same && kind == pr::Kind::kResults) continue;
        if (!same) return {Lookup::kSequenceReused, nullptr};
        if (c.answer.empty()) {
            c.waiters.push_back(std::move(waiter));
            return {Lookup::kPending, nullptr};
        }
        return {Lookup::kAnswered, &c.answer};
    }
    return {};
}

void SessionTable::remember(Session& s, uint64_t work_id, pr::Kind kind, uint32_t sequence,
                            ByteSpan body) {
    s.answers.push_back(
        CachedAnswer{work_id, kind, sequence, Bytes(body.begin(), body.end()), {}, {}});
    while (s.answers.size() > limits_.answers_kept) s.answers.pop_front();
}

SessionTable::Completion SessionTable::complete(uint64_t session_id, uint64_t work_id,
                                                Bytes& answer) {
    Completion done;
    done.answer = &answer;
    auto it = sessions_.find(session_id);
    if (it == sessions_.end()) return done;
    auto& answers = it->second.answers;
    auto c = std::find_if(answers.begin(), answers.end(),
                          [&](const CachedAnswer& a) { return a.work_id == work_id; });
    if (c == answers.end()) return done;
    done.waiters = std::move(c->waiters);
    const auto h = pr::peek_header(answer);
    if (h && h->kind == static_cast<uint8_t>(pr::Kind::kError)) {
        answers.erase(c);
    } else {
        c->answer = std::move(answer);  // the cache keeps the bytes just sent
        done.answer = &c->answer;
    }
    return done;
}

}  // namespace waferprov::host::svc
