#include "waferprov/host/service.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <iostream>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "job_link.hpp"
#include "waferprov/host/ledger.hpp"  // iso8601_utc
#include "waferprov/host/log_limiter.hpp"

namespace waferprov::host {

namespace {

namespace pr = protocol;
using pr::StatusCode;
using Clock = std::chrono::steady_clock;

constexpr const char* kServerVersion = "0.4.0";
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr const char* kZapDomain = "waferprov";
constexpr size_t kSessionsPerKey = 16;  // sessions one CURVE key may hold at once

// A possibly hostile string made safe for a log line: printable ASCII kept, the rest
// escaped, at most 64 characters.
std::string loggable(std::string_view s) {
    std::string out;
    for (char ch : s.substr(0, 64)) {
        if (ch >= 0x20 && ch <= 0x7e) {
            out += ch;
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(ch));
            out += buf;
        }
    }
    if (s.size() > 64) out += "...";
    return out;
}

// A ZeroMQ message, closed on scope exit.
struct Msg {
    zmq_msg_t m;
    Msg() { zmq_msg_init(&m); }
    ~Msg() { zmq_msg_close(&m); }
    Msg(const Msg&) = delete;
    Msg& operator=(const Msg&) = delete;
    ByteSpan bytes() const {
        return {static_cast<const uint8_t*>(zmq_msg_data(const_cast<zmq_msg_t*>(&m))),
                zmq_msg_size(const_cast<zmq_msg_t*>(&m))};
    }
    bool more() const { return zmq_msg_more(const_cast<zmq_msg_t*>(&m)) != 0; }
};

struct CachedAnswer {
    uint64_t work_id = 0;  // the Work that computes the answer
    pr::Kind kind;
    uint32_t sequence = 0;
    Bytes request_body;  // the request after its header (request ids may differ on a retry)
    Bytes answer;        // the encoded answer frame; empty while the request is being worked on
    // Repeats that arrived while it was worked on (e.g. with a new request id after a client
    // timeout): they get the answer too.
    std::vector<std::pair<Bytes, uint32_t>> waiters;
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

struct Work {
    uint64_t id = 0;
    Bytes routing_id;
    uint64_t session_id = 0;
    link::JobLink* job = nullptr;
    std::string tester;
    uint8_t minor = 0;
    pr::Frame frame;
    Clock::time_point received;
};

struct Done {
    uint64_t work_id = 0;
    Bytes routing_id;
    uint64_t session_id = 0;
    Bytes answer;
};

}  // namespace

struct Service::Impl {
    ServiceOptions opt;
    std::vector<std::unique_ptr<link::JobLink>> jobs;
    link::Counters counters;
    std::atomic<uint64_t> sessions_opened{0}, requests{0}, refused_frames{0},
        refused_connections{0};

    void* ctx = nullptr;
    void* router = nullptr;
    void* zap = nullptr;
    int stop_fd = -1;  // eventfd: stop() was called
    int done_fd = -1;  // eventfd: a worker finished a request

    std::unordered_map<uint64_t, Session> sessions;

    std::mutex mu;
    std::condition_variable cv;
    std::deque<Work> queue;
    std::deque<Done> done;
    bool workers_stop = false;
    size_t in_flight = 0;       // queued or being worked on (I/O thread only)
    size_t busy_workers = 0;    // under mu
    uint64_t last_work_id = 0;  // I/O thread only
    std::vector<std::thread> workers;
    std::thread checkpointer;
    std::condition_variable
        checkpoint_cv;  // only the checkpointer waits on it (cv is the workers')

    ~Impl() {
        {
            std::lock_guard lock(mu);
            workers_stop = true;
        }
        cv.notify_all();
        checkpoint_cv.notify_all();
        for (auto& t : workers)
            if (t.joinable()) t.join();
        if (checkpointer.joinable()) checkpointer.join();
        if (router != nullptr) zmq_close(router);
        if (zap != nullptr) zmq_close(zap);
        if (ctx != nullptr) zmq_ctx_term(ctx);
        if (stop_fd >= 0) ::close(stop_fd);
        if (done_fd >= 0) ::close(done_fd);
    }

    std::unique_ptr<LogLimiter> limiter;  // lines a peer can make many of (opt.log_window)

    // A line of a kind a peer can repeat without limit: rate-limited by kind.
    void log_limited(const std::string& kind, const std::string& line) {
        if (limiter)
            limiter->log(kind, line);
        else
            log(line);
    }

    void log(const std::string& line) const {
        if (opt.log) {
            opt.log(line);
        } else {
            const auto now = std::chrono::system_clock::now().time_since_epoch();
            std::cerr << iso8601_utc(
                             std::chrono::duration_cast<std::chrono::microseconds>(now).count())
                      << " " << line << "\n";
        }
    }

    link::JobLink* find_job(const std::string& id) {
        for (auto& j : jobs)
            if (j->job().id == id) return j.get();
        return nullptr;
    }

    // ---- sending ------------------------------------------------------------------------
    void send(ByteSpan routing_id, ByteSpan frame) {
        // A peer that went away is not an error: the ROUTER drops the answer, and the ledger
        // already holds everything the answer reported (DELIVERED before sending).
        zmq_send(router, routing_id.data(), routing_id.size(), ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(router, frame.data(), frame.size(), ZMQ_DONTWAIT);
    }

    // An encoded answer sent as the answer to `request_id` (the header's bytes 8..11).
    void send_as(ByteSpan routing_id, const Bytes& answer, uint32_t request_id) {
        Bytes copy = answer;
        for (int i = 0; i < 4; ++i)
            copy[8 + static_cast<size_t>(i)] = static_cast<uint8_t>(request_id >> (8 * i));
        send(routing_id, copy);
    }

    void send_message(ByteSpan routing_id, uint32_t request_id, uint8_t minor, pr::Message m) {
        pr::Frame f{request_id, minor, std::move(m)};
        auto bytes = pr::encode(f);
        if (!bytes.ok()) {
            log("internal: cannot encode an answer: " + bytes.error().describe());
            return;
        }
        send(routing_id, *bytes);
    }

    void refuse_frame(ByteSpan routing_id, uint32_t request_id, StatusCode code, std::string text,
                      const std::string& who) {
        refused_frames.fetch_add(1, std::memory_order_relaxed);
        if (opt.observer != nullptr)  // `who` is "key <Z85>" under CURVE, else "peer"
            opt.observer->frame_refused(who.rfind("key ", 0) == 0 ? who.substr(4) : "", code);
        text = pr::clip_text(std::move(text));
        log_limited("refused " + who + ": " + pr::to_string(code),
                    "refused " + who + ": " + pr::to_string(code) + ": " + loggable(text));
        send_message(routing_id, request_id, pr::kVersionMinor,
                     pr::ErrorReply{code, std::move(text)});
    }

    // ---- ZAP: admits the CURVE keys that some served job lists ----------------------------
    void handle_zap() {
        std::vector<Bytes> parts;
        for (;;) {
            Msg m;
            if (zmq_msg_recv(&m.m, zap, ZMQ_DONTWAIT) < 0) return;
            parts.emplace_back(m.bytes().begin(), m.bytes().end());
            if (!m.more()) break;
        }
        auto text = [&](size_t i) {
            return i < parts.size() ? std::string(parts[i].begin(), parts[i].end()) : std::string();
        };
        std::string status = "400", status_text = "not admitted", user;
        const std::string mechanism = text(5);
        if (parts.size() >= 7 && text(0) == "1.0" && mechanism == "CURVE" &&
            parts[6].size() == 32) {
            char z85[41] = {};
            zmq_z85_encode(z85, parts[6].data(), 32);
            for (const auto& j : jobs)
                if (j->tester_for_key(z85)) {
                    status = "200";
                    status_text = "OK";
                    user = z85;
                    break;
                }
            if (status != "200")
                log_limited("connection refused",
                            "connection refused: CURVE key " + std::string(z85) + " from " +
                                loggable(text(3)) + " is not admitted by any served job");
        } else {
            log_limited("connection refused", "connection refused: mechanism '" +
                                                  loggable(mechanism) + "' from " +
                                                  loggable(text(3)));
        }
        if (status != "200") refused_connections.fetch_add(1, std::memory_order_relaxed);
        const std::string reply[] = {"1.0", text(1), status, status_text, user, ""};
        for (size_t i = 0; i < 6; ++i)
            zmq_send(zap, reply[i].data(), reply[i].size(), i < 5 ? ZMQ_SNDMORE : 0);
    }

    // ---- requests -------------------------------------------------------------------------
    void handle_frame(ByteSpan routing_id, ByteSpan payload, const std::string& key) {
        requests.fetch_add(1, std::memory_order_relaxed);
        const std::string who = key.empty() ? "peer" : "key " + key;
        pr::Limits limits{pr::kMaxFrameSize, opt.max_sites};
        auto decoded = pr::decode(payload, limits);
        if (!decoded.ok()) {
            const auto& e = decoded.error();
            refuse_frame(routing_id, e.request_id.value_or(0), e.code, e.text, who);
            return;
        }
        pr::Frame& f = decoded.value();
        std::visit(
            [&](auto& m) {
                using T = std::decay_t<decltype(m)>;
                if constexpr (std::is_same_v<T, pr::Hello>) {
                    hello(routing_id, f, m, key, who);
                } else if constexpr (std::is_same_v<T, pr::Touchdown> ||
                                     std::is_same_v<T, pr::Results>) {
                    request(routing_id, payload, f, m.session_id, m.sequence, key, who);
                } else if constexpr (std::is_same_v<T, pr::Bye>) {
                    bye(routing_id, f, m, key, who);
                } else {
                    refuse_frame(routing_id, f.request_id, StatusCode::kUnexpectedKind,
                                 std::string("the host does not take ") +
                                     pr::to_string(pr::kind_of(f.message)),
                                 who);
                }
            },
            f.message);
    }

    void hello(ByteSpan routing_id, const pr::Frame& f, const pr::Hello& h, const std::string& key,
               const std::string& who) {
        if (stopping) {
            refuse_frame(routing_id, f.request_id, StatusCode::kShuttingDown,
                         "the service is stopping", who);
            return;
        }
        if (!printable_ascii(h.tester_id)) {
            refuse_frame(routing_id, f.request_id, StatusCode::kBadField,
                         "tester_id must be printable ASCII", who);
            return;
        }
        link::JobLink* job = find_job(h.job_id);
        if (job == nullptr) {
            refuse_frame(routing_id, f.request_id, StatusCode::kUnknownJob,
                         "this host does not serve job '" + h.job_id + "'", who);
            return;
        }
        if (!opt.insecure) {
            auto bound = job->tester_for_key(key);
            if (!bound || *bound != h.tester_id) {
                refuse_frame(routing_id, f.request_id, StatusCode::kNotAdmitted,
                             bound ? "this key is admitted as tester '" + *bound + "', not '" +
                                         h.tester_id + "'"
                                   : "this key is not admitted for job '" + h.job_id + "'",
                             who);
                return;
            }
        } else if (!job->job().testers.empty() && !job->lists_tester(h.tester_id)) {
            refuse_frame(routing_id, f.request_id, StatusCode::kNotAdmitted,
                         "tester '" + h.tester_id + "' is not listed for job '" + h.job_id + "'",
                         who);
            return;
        }
        // A key may hold a few sessions (a tester restarting its program); one that keeps saying
        // HELLO only pushes out its own oldest, never another tester's.
        if (!opt.insecure && count_sessions(key) >= kSessionsPerKey) {
            evict_oldest_session(&key);
        } else if (sessions.size() >= opt.max_sessions) {
            evict_oldest_session(nullptr);
        }
        Session s;
        do {
            if (RAND_bytes(reinterpret_cast<unsigned char*>(&s.id), sizeof s.id) != 1) {
                refuse_frame(routing_id, f.request_id, StatusCode::kInternal,
                             "no randomness for a session id", who);
                return;
            }
        } while (s.id == 0 || sessions.contains(s.id));
        s.job = job;
        s.tester = h.tester_id;
        s.key = key;
        s.minor = std::min(f.minor, pr::kVersionMinor);
        s.last_used = Clock::now();
        const uint64_t id = s.id;
        const uint8_t minor = s.minor;
        sessions.emplace(id, std::move(s));
        sessions_opened.fetch_add(1, std::memory_order_relaxed);
        if (opt.observer != nullptr) opt.observer->session_opened(job->job().id, h.tester_id);
        char sid[24];
        std::snprintf(sid, sizeof sid, "%016llx", static_cast<unsigned long long>(id));
        log("session " + std::string(sid) + " opened: tester " + h.tester_id + " (node '" +
            loggable(h.node_name) + "', client " + loggable(h.client_version) + ") for job " +
            h.job_id);
        pr::HelloOk ok;
        ok.session_id = id;
        ok.server_version = kServerVersion;
        ok.max_sites = static_cast<uint16_t>(opt.max_sites);
        ok.max_frame_size = static_cast<uint32_t>(pr::kMaxFrameSize);
        send_message(routing_id, f.request_id, minor, ok);
    }

    size_t count_sessions(const std::string& key) const {
        size_t n = 0;
        for (const auto& [id, s] : sessions) n += s.key == key;
        return n;
    }

    // Drops the least recently used session (of `key` only, when given).
    void evict_oldest_session(const std::string* key) {
        auto oldest = sessions.end();
        for (auto it = sessions.begin(); it != sessions.end(); ++it) {
            if (key != nullptr && it->second.key != *key) continue;
            if (oldest == sessions.end() || it->second.last_used < oldest->second.last_used)
                oldest = it;
        }
        if (oldest != sessions.end()) {
            log("session of tester " + oldest->second.tester + " dropped (the oldest idle of " +
                std::to_string(sessions.size()) + ")");
            if (opt.observer != nullptr)
                opt.observer->session_closed(oldest->second.job->job().id, oldest->second.tester);
            sessions.erase(oldest);
        }
    }

    // The session a request names, if it exists and belongs to the connection's key.
    Session* session_for(uint64_t id, const std::string& key) {
        auto it = sessions.find(id);
        if (it == sessions.end() || it->second.key != key) return nullptr;
        return &it->second;
    }

    void bye(ByteSpan routing_id, const pr::Frame& f, const pr::Bye& b, const std::string& key,
             const std::string& who) {
        Session* s = session_for(b.session_id, key);
        if (s == nullptr) {
            refuse_frame(routing_id, f.request_id, StatusCode::kNoSession, "no such session", who);
            return;
        }
        log("session of tester " + s->tester + " closed (BYE)");
        if (opt.observer != nullptr) opt.observer->session_closed(s->job->job().id, s->tester);
        const uint8_t minor = s->minor;
        sessions.erase(b.session_id);
        send_message(routing_id, f.request_id, minor, pr::ByeOk{});
    }

    void request(ByteSpan routing_id, ByteSpan payload, pr::Frame& f, uint64_t session_id,
                 uint32_t sequence, const std::string& key, const std::string& who) {
        Session* s = session_for(session_id, key);
        if (s == nullptr) {
            refuse_frame(routing_id, f.request_id, StatusCode::kNoSession,
                         "no such session (say HELLO; the host may have restarted)", who);
            return;
        }
        if (f.minor > s->minor) {
            refuse_frame(routing_id, f.request_id, StatusCode::kUnsupportedVersion,
                         "minor version above the one agreed at HELLO", who);
            return;
        }
        s->last_used = Clock::now();
        // TOUCHDOWN_WAFER is a TOUCHDOWN with the wafer's id: one sequence space for both.
        const pr::Kind kind = pr::kind_of(f.message) == pr::Kind::kTouchdownWafer
                                  ? pr::Kind::kTouchdown
                                  : pr::kind_of(f.message);
        ByteSpan body = payload.subspan(pr::kHeaderSize);

        // Idempotency: the same request again gets the first answer. A TOUCHDOWN sequence names
        // one set of dies, so other content under it is refused; the results of one touchdown
        // may come in several RESULTS, each its own request.
        for (auto& c : s->answers) {
            if (c.kind != kind || c.sequence != sequence) continue;
            const bool same =
                std::equal(body.begin(), body.end(), c.request_body.begin(), c.request_body.end());
            if (!same && kind == pr::Kind::kResults) continue;
            if (!same) {
                refuse_frame(routing_id, f.request_id, StatusCode::kSequenceReused,
                             std::string(pr::to_string(kind)) + " sequence " +
                                 std::to_string(sequence) + " was used before with other content",
                             who);
                return;
            }
            if (c.answer.empty()) {
                // Still being worked on: the answer goes to this request too when it is ready.
                c.waiters.push_back({Bytes(routing_id.begin(), routing_id.end()), f.request_id});
                return;
            }
            if (opt.verbose)
                log("answered a repeated " + std::string(pr::to_string(kind)) + " from the cache");
            send_as(routing_id, c.answer, f.request_id);
            return;
        }
        if (stopping) {
            refuse_frame(routing_id, f.request_id, StatusCode::kShuttingDown,
                         "the service is stopping", who);
            return;
        }
        if (kind == pr::Kind::kTouchdown) {
            const auto& td = std::get<pr::Touchdown>(f.message);
            if (!printable_ascii(td.lot)) {
                refuse_frame(routing_id, f.request_id, StatusCode::kBadField,
                             "lot must be printable ASCII", who);
                return;
            }
        }
        {
            std::lock_guard lock(mu);
            if (queue.size() >= opt.max_pending) {
                refuse_frame(routing_id, f.request_id, StatusCode::kBusy,
                             "the host is overloaded; retry the same request", who);
                return;
            }
            queue.push_back(Work{++last_work_id, Bytes(routing_id.begin(), routing_id.end()),
                                 session_id, s->job, s->tester, s->minor, std::move(f),
                                 Clock::now()});
        }
        cv.notify_one();
        ++in_flight;
        s->answers.push_back(
            CachedAnswer{last_work_id, kind, sequence, Bytes(body.begin(), body.end()), {}, {}});
        while (s->answers.size() > opt.answers_kept) s->answers.pop_front();
    }

    // ---- workers --------------------------------------------------------------------------
    // Copies each job's write-ahead log into its database (Ledger::defer_checkpoints) when the
    // link has been idle for kCheckpointIdle - on a floor, during the prober's index time - or,
    // under load without a pause, once the log passes kCheckpointPages. A checkpoint writes
    // and fsyncs the database file, which slows the touchdowns committing meanwhile; so it
    // waits for a gap rather than running on a clock.
    static constexpr auto kCheckpointIdle = std::chrono::milliseconds(20);
    static constexpr int kCheckpointPages = 16384;  // 64 MiB of log
    std::atomic<int64_t> last_activity_ns{0};

    void touch() {
        last_activity_ns.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    }

    void checkpoint_loop() {
        std::vector<int> checkpointed_at(jobs.size(), 0);  // wal_pages() at the last checkpoint
        std::unique_lock lock(mu);
        while (!workers_stop) {
            checkpoint_cv.wait_for(lock, std::chrono::milliseconds(10));
            if (workers_stop) break;
            const bool idle =
                queue.empty() && busy_workers == 0 &&
                Clock::now().time_since_epoch().count() -
                        last_activity_ns.load(std::memory_order_relaxed) >=
                    std::chrono::duration_cast<std::chrono::nanoseconds>(kCheckpointIdle).count();
            lock.unlock();
            for (size_t i = 0; i < jobs.size(); ++i) {
                const int pages = jobs[i]->wal_pages();
                if (pages == checkpointed_at[i] || (!idle && pages < kCheckpointPages)) continue;
                if (auto st = jobs[i]->checkpoint(); !st.ok())
                    log("job " + jobs[i]->job().id +
                        ": ledger checkpoint failed: " + st.error().describe());
                checkpointed_at[i] = pages;
            }
            lock.lock();
        }
    }

    void worker_loop() {
        for (;;) {
            Work w;
            {
                std::unique_lock lock(mu);
                cv.wait(lock, [&] { return workers_stop || !queue.empty(); });
                if (queue.empty()) return;
                w = std::move(queue.front());
                queue.pop_front();
                ++busy_workers;
            }
            Done d;
            d.work_id = w.id;
            d.routing_id = std::move(w.routing_id);
            d.session_id = w.session_id;
            d.answer = work(w);
            touch();
            {
                std::lock_guard lock(mu);
                done.push_back(std::move(d));
                --busy_workers;
            }
            const uint64_t one = 1;
            [[maybe_unused]] auto n = ::write(done_fd, &one, sizeof one);
        }
    }

    // Runs one request against its job and encodes the answer (an ERROR frame on failure).
    Bytes work(Work& w) noexcept {
        pr::Message answer;
        try {
            if (auto* td = std::get_if<pr::Touchdown>(&w.frame.message)) {
                auto r = w.job->touchdown(*td, w.tester, counters);
                if (opt.observer != nullptr) {
                    if (r.ok())
                        opt.observer->touchdown_answered(
                            w.job->job().id, w.tester, *r,
                            std::chrono::duration<double>(Clock::now() - w.received).count());
                    else
                        opt.observer->request_failed(w.job->job().id, w.tester);
                }
                if (r.ok()) {
                    if (opt.verbose) {
                        size_t ok = 0, re = 0;
                        for (const auto& s : r->sites) {
                            ok += s.status == StatusCode::kOk;
                            re += s.status == StatusCode::kReissued;
                        }
                        const double ms =
                            std::chrono::duration<double, std::milli>(Clock::now() - w.received)
                                .count();
                        log("touchdown " + std::to_string(td->sequence) + " of tester " + w.tester +
                            ": " + std::to_string(td->sites.size()) + " sites, " +
                            std::to_string(ok) + " OK, " + std::to_string(re) + " REISSUED, " +
                            std::to_string(td->sites.size() - ok - re) + " refused, " +
                            std::to_string(ms) + " ms");
                    } else {
                        for (const auto& s : r->sites)
                            if (!pr::carries_identity(s.status))
                                log_limited("sites refused to tester " + w.tester + ": " +
                                                pr::to_string(s.status),
                                            "touchdown " + std::to_string(td->sequence) +
                                                " of tester " + w.tester + ": site " +
                                                std::to_string(s.site) + " " +
                                                pr::to_string(s.status) + ": " + s.text);
                    }
                    answer = std::move(*r);
                } else {
                    log("touchdown " + std::to_string(td->sequence) + " of tester " + w.tester +
                        " failed: " + r.error().describe());
                    answer =
                        pr::ErrorReply{StatusCode::kInternal, pr::clip_text(r.error().message)};
                }
            } else if (auto* rs = std::get_if<pr::Results>(&w.frame.message)) {
                auto r = w.job->results(*rs, w.tester, counters);
                if (opt.observer != nullptr) {
                    if (r.ok())
                        opt.observer->results_answered(w.job->job().id, w.tester, *rs, *r);
                    else
                        opt.observer->request_failed(w.job->job().id, w.tester);
                }
                if (r.ok()) {
                    for (const auto& a : r->sites)
                        if (a.status != StatusCode::kOk)
                            log_limited("results refused from tester " + w.tester + ": " +
                                            pr::to_string(a.status),
                                        "results " + std::to_string(rs->sequence) + " of tester " +
                                            w.tester + ": site " + std::to_string(a.site) + " " +
                                            pr::to_string(a.status) + ": " + a.text);
                    answer = std::move(*r);
                } else {
                    log("results " + std::to_string(rs->sequence) + " of tester " + w.tester +
                        " failed: " + r.error().describe());
                    answer =
                        pr::ErrorReply{StatusCode::kInternal, pr::clip_text(r.error().message)};
                }
            }
            auto bytes = pr::encode(pr::Frame{w.frame.request_id, w.minor, std::move(answer)});
            if (bytes.ok()) return std::move(*bytes);
            log("internal: cannot encode an answer: " + bytes.error().describe());
        } catch (const std::exception& e) {
            log(std::string("internal: request failed: ") + e.what());
        }
        auto fallback =
            pr::encode(pr::Frame{w.frame.request_id, pr::kVersionMinor,
                                 pr::ErrorReply{StatusCode::kInternal, "the host failed"}});
        return fallback.ok() ? std::move(*fallback) : Bytes{};
    }

    // The I/O thread takes the workers' answers: cache them in their session and send them.
    void drain_done() {
        uint64_t n = 0;
        [[maybe_unused]] auto r = ::read(done_fd, &n, sizeof n);
        std::deque<Done> ready;
        {
            std::lock_guard lock(mu);
            ready.swap(done);
        }
        for (auto& d : ready) {
            --in_flight;
            if (d.answer.empty()) continue;
            if (stopping) ++answered_after_stop;
            send(d.routing_id, d.answer);
            auto it = sessions.find(d.session_id);
            if (it == sessions.end()) continue;
            auto& answers = it->second.answers;
            auto c = std::find_if(answers.begin(), answers.end(),
                                  [&](const CachedAnswer& a) { return a.work_id == d.work_id; });
            if (c == answers.end()) continue;
            for (const auto& [rid, req] : c->waiters) send_as(rid, d.answer, req);
            c->waiters.clear();
            // A failure (ERROR INTERNAL) is not kept: a retry should try again.
            const auto h = pr::peek_header(d.answer);
            if (h && h->kind == static_cast<uint8_t>(pr::Kind::kError))
                answers.erase(c);
            else
                c->answer = std::move(d.answer);  // the cache keeps the bytes just sent
        }
    }

    // ---- the I/O loop ---------------------------------------------------------------------
    std::atomic<bool> stopping{false};
    Clock::time_point stop_deadline{};  // stop() + opt.shutdown_deadline (I/O thread only)
    uint64_t answered_after_stop = 0;   // answers sent after stop() (I/O thread only)
    size_t dropped_at_deadline = 0;     // requests unanswered when the deadline passed

    Status setup(std::string& endpoint) {
        ctx = zmq_ctx_new();
        if (ctx == nullptr) return make_error(ErrorCode::kInternal, "zmq_ctx_new failed");
        if (!opt.insecure) {
            zap = zmq_socket(ctx, ZMQ_REP);
            const int no_linger = 0;
            if (zap != nullptr) zmq_setsockopt(zap, ZMQ_LINGER, &no_linger, sizeof no_linger);
            if (zap == nullptr || zmq_bind(zap, kZapEndpoint) != 0)
                return make_error(
                    ErrorCode::kInternal,
                    std::string("cannot start the ZAP handler: ") + zmq_strerror(zmq_errno()));
        }
        router = zmq_socket(ctx, ZMQ_ROUTER);
        if (router == nullptr)
            return make_error(ErrorCode::kInternal, "cannot create the ROUTER socket");
        const int zero = 0, one = 1;
        const int64_t max_msg = static_cast<int64_t>(pr::kMaxFrameSize);
        zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(router, ZMQ_MAXMSGSIZE, &max_msg, sizeof max_msg);
        if (!opt.insecure) {
            zmq_setsockopt(router, ZMQ_CURVE_SERVER, &one, sizeof one);
            if (zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, opt.server_keys.secret_z85.data(),
                               opt.server_keys.secret_z85.size()) != 0)
                return make_error(
                    ErrorCode::kInvalidArgument,
                    std::string("the server's secret key: ") + zmq_strerror(zmq_errno()));
            zmq_setsockopt(router, ZMQ_ZAP_DOMAIN, kZapDomain, std::strlen(kZapDomain));
        }
        std::string bind = opt.bind;
        if (bind.size() > 2 && bind.compare(bind.size() - 2, 2, ":0") == 0)
            bind.replace(bind.size() - 1, 1, "*");  // ZeroMQ spells "any free port" as ':*'
        if (zmq_bind(router, bind.c_str()) != 0)
            return make_error(ErrorCode::kIo,
                              "cannot listen on " + opt.bind + ": " + zmq_strerror(zmq_errno()));
        char last[256] = {};
        size_t len = sizeof last;
        zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, last, &len);
        endpoint = last;
        for (size_t i = 0; i < std::max<size_t>(1, opt.workers); ++i)
            workers.emplace_back([this] { worker_loop(); });
        checkpointer = std::thread([this] { checkpoint_loop(); });
        return ok_status();
    }

    void receive_all() {
        for (int burst = 0; burst < 256; ++burst) {
            Msg id;
            if (zmq_msg_recv(&id.m, router, ZMQ_DONTWAIT) < 0) return;
            if (!id.more()) continue;  // a ROUTER always gets identity + payload
            Msg payload;
            if (zmq_msg_recv(&payload.m, router, ZMQ_DONTWAIT) < 0) return;
            const bool extra = payload.more();
            while (payload.more()) {  // a multi-part request is not a WPTL frame: drain it
                Msg rest;
                if (zmq_msg_recv(&rest.m, router, ZMQ_DONTWAIT) < 0) break;
                if (!rest.more()) break;
            }
            std::string key;
            if (!opt.insecure) {
                const char* user = zmq_msg_gets(&payload.m, "User-Id");
                if (user == nullptr) continue;  // cannot happen under CURVE + ZAP
                key = user;
            }
            if (extra) {
                refuse_frame(id.bytes(), 0, StatusCode::kBadFrame,
                             "one ZeroMQ message must carry exactly one frame (got several parts)",
                             key.empty() ? "peer" : "key " + key);
                continue;
            }
            touch();
            handle_frame(id.bytes(), payload.bytes(), key);
        }
    }

    Status loop() {
        zmq_pollitem_t items[4] = {};
        int n = 0;
        items[n++] = {router, 0, ZMQ_POLLIN, 0};
        items[n++] = {nullptr, done_fd, ZMQ_POLLIN, 0};
        items[n++] = {nullptr, stop_fd, ZMQ_POLLIN, 0};
        if (zap != nullptr) items[n++] = {zap, 0, ZMQ_POLLIN, 0};
        for (;;) {
            if (stopping && in_flight == 0) return ok_status();
            long timeout_ms = -1;
            if (stopping) {
                const auto left = stop_deadline - Clock::now();
                if (left <= Clock::duration::zero()) {
                    // Work still running finishes its transaction (the ledger stays whole) but
                    // its answer is not waited for; work not yet started is dropped. A tester
                    // repeats either after the restart and gets the same identities.
                    std::lock_guard lock(mu);
                    queue.clear();
                    dropped_at_deadline = in_flight;
                    return ok_status();
                }
                timeout_ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
            }
            if (auto next = limiter->flush()) {
                const long due = std::chrono::ceil<std::chrono::milliseconds>(*next).count();
                timeout_ms = timeout_ms < 0 ? due : std::min(timeout_ms, due);
            }
            const int rc = zmq_poll(items, n, timeout_ms);
            if (rc < 0) {
                if (zmq_errno() == EINTR) continue;
                return make_error(ErrorCode::kIo,
                                  std::string("zmq_poll: ") + zmq_strerror(zmq_errno()));
            }
            if (zap != nullptr && (items[3].revents & ZMQ_POLLIN)) handle_zap();
            if (items[1].revents & ZMQ_POLLIN) drain_done();
            if (items[0].revents & ZMQ_POLLIN) receive_all();
            if (items[2].revents & ZMQ_POLLIN) {
                uint64_t v = 0;
                [[maybe_unused]] auto r = ::read(stop_fd, &v, sizeof v);
                if (!stopping) {
                    log("stopping: finishing " + std::to_string(in_flight) +
                        " request(s) in flight within " + seconds(opt.shutdown_deadline));
                    stop_deadline = Clock::now() + opt.shutdown_deadline;
                    if (opt.observer != nullptr) opt.observer->stopping();
                }
                stopping = true;
            }
        }
    }

    // After the loop: the answers handed to the ROUTER still have to leave. Closing with zero
    // linger would drop whatever ZeroMQ still holds (a slow tester's link, a large answer), so
    // the ROUTER lingers for what is left of the stop's deadline. Returns false if the deadline
    // cut the flush short.
    bool close_sockets() {
        const auto left = stopping ? stop_deadline - Clock::now() : Clock::duration::zero();
        const int linger = static_cast<int>(std::max<int64_t>(
            0, std::chrono::duration_cast<std::chrono::milliseconds>(left).count()));
        const auto start = Clock::now();
        if (router != nullptr) {
            zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
            zmq_close(router);
            router = nullptr;
        }
        if (zap != nullptr) zmq_close(zap);
        zap = nullptr;
        if (ctx != nullptr) zmq_ctx_term(ctx);  // returns when flushed or the linger ran out
        ctx = nullptr;
        return linger == 0 || Clock::now() - start < std::chrono::milliseconds(linger);
    }

    // "5s", "2.5s", "0.001s".
    static std::string seconds(std::chrono::milliseconds ms) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", static_cast<double>(ms.count()) / 1000.0);
        return std::string(buf) + "s";
    }
};

Result<std::unique_ptr<Service>> Service::create(std::vector<ServedJob> jobs,
                                                 ServiceOptions options) {
    if (jobs.empty()) return make_error(ErrorCode::kInvalidArgument, "no job to serve");
    if (options.max_sites < 1 || options.max_sites > protocol::kMaxSites)
        return make_error(ErrorCode::kInvalidArgument, "max sites must be 1..1024");
    if (!options.insecure && (!protocol::valid_curve_key(options.server_keys.public_z85) ||
                              !protocol::valid_curve_key(options.server_keys.secret_z85)))
        return make_error(ErrorCode::kInvalidArgument,
                          "the server needs its CURVE key pair (or --insecure)");
    auto impl = std::make_unique<Impl>();
    std::set<std::string> ids;
    std::set<std::filesystem::path> ledgers;
    for (const auto& sj : jobs) {
        if (!ids.insert(sj.job.id).second)
            return make_error(ErrorCode::kInvalidArgument, "job " + sj.job.id + " is given twice");
        auto canonical = std::filesystem::weakly_canonical(sj.job.ledger);
        if (!ledgers.insert(canonical).second)
            return make_error(
                ErrorCode::kInvalidArgument,
                "jobs must keep apart: two jobs share the ledger " + canonical.string());
        if (!options.insecure && sj.job.testers.empty())
            return make_error(
                ErrorCode::kInvalidArgument,
                sj.job.file.string() + ": the job admits no tester ([testers] is empty)");
    }
    for (const auto& sj : jobs) {
        auto link = link::JobLink::open(sj.job, sj.maps, options.signing_threads, options.observer);
        if (!link.ok())
            return make_error(link.error().code, "job " + sj.job.id + ": " + link.error().message);
        impl->jobs.push_back(std::move(*link));
    }
    impl->opt = std::move(options);
    if (impl->opt.log_window <= std::chrono::milliseconds::zero())
        return make_error(ErrorCode::kInvalidArgument, "the log window must be positive");
    Service::Impl* raw = impl.get();
    impl->limiter = std::make_unique<LogLimiter>([raw](const std::string& line) { raw->log(line); },
                                                 impl->opt.log_window);
    impl->stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    impl->done_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (impl->stop_fd < 0 || impl->done_fd < 0) return make_error(ErrorCode::kIo, "eventfd failed");
    return std::unique_ptr<Service>(new Service(std::move(impl)));
}

Service::Service(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Service::~Service() = default;

Status Service::run(const std::function<void(const std::string&)>& on_listening) {
    std::string endpoint;
    WP_RETURN_IF_ERROR(impl_->setup(endpoint));
    std::string jobs;
    for (const auto& j : impl_->jobs) jobs += (jobs.empty() ? "" : ", ") + j->job().id;
    impl_->log("serving job(s) " + jobs + " on " + endpoint +
               (impl_->opt.insecure ? " WITHOUT CurveZMQ (--insecure)" : " (CurveZMQ)"));
    if (on_listening) on_listening(endpoint);
    Status st = impl_->loop();
    const bool flushed = impl_->close_sockets();
    impl_->limiter->flush(/*all=*/true);
    if (impl_->stopping) {
        impl_->log("stopped: " + std::to_string(impl_->answered_after_stop) + " answer(s) sent, " +
                   std::to_string(impl_->dropped_at_deadline) + " dropped after deadline " +
                   Impl::seconds(impl_->opt.shutdown_deadline) +
                   (flushed ? "" : "; answers still queued to slow testers were cut off"));
    } else {
        impl_->log("stopped");
    }
    return st;
}

void Service::stop() noexcept {
    const uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(impl_->stop_fd, &one, sizeof one);
}

ServiceStats Service::stats() const {
    ServiceStats s;
    s.sessions_opened = impl_->sessions_opened.load();
    s.requests = impl_->requests.load();
    s.refused_frames = impl_->refused_frames.load();
    s.refused_connections = impl_->refused_connections.load();
    s.delivered = impl_->counters.delivered.load();
    s.reissued = impl_->counters.reissued.load();
    s.generated = impl_->counters.generated.load();
    s.refused_sites = impl_->counters.refused_sites.load();
    s.results = impl_->counters.results.load();
    return s;
}

}  // namespace waferprov::host
