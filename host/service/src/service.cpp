#include "waferprov/host/service.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>

#include "admission.hpp"
#include "job_link.hpp"
#include "link_sockets.hpp"
#include "service_log.hpp"
#include "sessions.hpp"
#include "workers.hpp"

// `serve`'s I/O thread: the ROUTER socket, admission (admission.hpp), the frames and the
// sessions with their answer caches (sessions.hpp), and the hand-off to the workers
// (workers.hpp). Only this thread touches the sockets and the session table.
namespace waferprov::host {

namespace {

namespace pr = protocol;
using pr::StatusCode;
using Clock = std::chrono::steady_clock;
using svc::loggable;

constexpr const char* kServerVersion = "0.4.0";
constexpr size_t kSessionsPerKey = 16;  // sessions one CURVE key may hold at once

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

}  // namespace

struct Service::Impl {
    ServiceOptions opt;
    std::vector<std::unique_ptr<link::JobLink>> jobs;
    link::Counters counters;
    std::atomic<uint64_t> sessions_opened{0}, requests{0}, refused_frames{0},
        refused_connections{0};

    std::unique_ptr<svc::ServiceLog> logger;
    std::unique_ptr<svc::SessionTable> sessions;
    std::unique_ptr<svc::Workers> workers;

    svc::LinkSockets sockets;
    int stop_fd = -1;      // eventfd: stop() was called
    size_t in_flight = 0;  // queued or being worked on
    uint64_t last_work_id = 0;

    ~Impl() {
        workers.reset();  // the work being done finishes before the sockets go
        if (stop_fd >= 0) ::close(stop_fd);
    }

    void log(const std::string& line) const { logger->line(line); }
    void log_limited(const std::string& kind, const std::string& line) {
        logger->limited(kind, line);
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
        zmq_send(sockets.router(), routing_id.data(), routing_id.size(),
                 ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(sockets.router(), frame.data(), frame.size(), ZMQ_DONTWAIT);
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

    // ---- admission: the ZAP request on its inproc socket -------------------------------
    void handle_zap() {
        std::vector<Bytes> parts;
        for (;;) {
            Msg m;
            if (zmq_msg_recv(&m.m, sockets.zap(), ZMQ_DONTWAIT) < 0) return;
            parts.emplace_back(m.bytes().begin(), m.bytes().end());
            if (!m.more()) break;
        }
        const svc::ZapDecision d = svc::decide_zap(parts, [&](const std::string& z85) {
            for (const auto& j : jobs)
                if (j->tester_for_key(z85)) return true;
            return false;
        });
        if (!d.admitted) {
            refused_connections.fetch_add(1, std::memory_order_relaxed);
            log_limited("connection refused", "connection refused: " + d.refusal);
        }
        for (size_t i = 0; i < d.reply.size(); ++i)
            zmq_send(sockets.zap(), d.reply[i].data(), d.reply[i].size(),
                     i + 1 < d.reply.size() ? ZMQ_SNDMORE : 0);
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
                                     std::is_same_v<T, pr::Results> ||
                                     std::is_same_v<T, pr::FinalTouchdown>) {
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
        auto opened = sessions->open(job, h.tester_id, key, std::min(f.minor, pr::kVersionMinor));
        if (!opened.ok()) {
            refuse_frame(routing_id, f.request_id, StatusCode::kInternal, opened.error().message,
                         who);
            return;
        }
        const uint64_t id = (*opened)->id;
        const uint8_t minor = (*opened)->minor;
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

    void bye(ByteSpan routing_id, const pr::Frame& f, const pr::Bye& b, const std::string& key,
             const std::string& who) {
        svc::Session* s = sessions->find(b.session_id, key);
        if (s == nullptr) {
            refuse_frame(routing_id, f.request_id, StatusCode::kNoSession, "no such session", who);
            return;
        }
        log("session of tester " + s->tester + " closed (BYE)");
        if (opt.observer != nullptr) opt.observer->session_closed(s->job->job().id, s->tester);
        const uint8_t minor = s->minor;
        sessions->close(b.session_id);
        send_message(routing_id, f.request_id, minor, pr::ByeOk{});
    }

    void request(ByteSpan routing_id, ByteSpan payload, pr::Frame& f, uint64_t session_id,
                 uint32_t sequence, const std::string& key, const std::string& who) {
        svc::Session* s = sessions->find(session_id, key);
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
        // TOUCHDOWN_WAFER is a TOUCHDOWN with the wafer's id, FINAL_TOUCHDOWN one of packaged
        // parts: one sequence space for all three.
        const pr::Kind kind = pr::kind_of(f.message) == pr::Kind::kTouchdownWafer ||
                                      pr::kind_of(f.message) == pr::Kind::kFinalTouchdown
                                  ? pr::Kind::kTouchdown
                                  : pr::kind_of(f.message);
        ByteSpan body = payload.subspan(pr::kHeaderSize);

        // Idempotency: the same request again gets the first answer (sessions.hpp).
        const auto hit = sessions->lookup(
            *s, kind, sequence, body,
            svc::Recipient{Bytes(routing_id.begin(), routing_id.end()), f.request_id});
        switch (hit.what) {
            case svc::SessionTable::Lookup::kNew: break;
            case svc::SessionTable::Lookup::kPending: return;  // answered when it is ready
            case svc::SessionTable::Lookup::kSequenceReused:
                refuse_frame(routing_id, f.request_id, StatusCode::kSequenceReused,
                             std::string(pr::to_string(kind)) + " sequence " +
                                 std::to_string(sequence) + " was used before with other content",
                             who);
                return;
            case svc::SessionTable::Lookup::kAnswered:
                if (opt.verbose)
                    log("answered a repeated " + std::string(pr::to_string(kind)) +
                        " from the cache");
                send_as(routing_id, *hit.answer, f.request_id);
                return;
        }
        if (stopping) {
            refuse_frame(routing_id, f.request_id, StatusCode::kShuttingDown,
                         "the service is stopping", who);
            return;
        }
        if (kind == pr::Kind::kTouchdown) {
            const auto* td = std::get_if<pr::Touchdown>(&f.message);
            const auto* ft = std::get_if<pr::FinalTouchdown>(&f.message);
            if (!printable_ascii(td != nullptr ? td->lot : ft->lot)) {
                refuse_frame(routing_id, f.request_id, StatusCode::kBadField,
                             "lot must be printable ASCII", who);
                return;
            }
        }
        svc::Work w{last_work_id + 1, Bytes(routing_id.begin(), routing_id.end()),
                    session_id,       s->job,
                    s->tester,        s->minor,
                    std::move(f),     Clock::now()};
        const uint32_t request_id = w.frame.request_id;
        if (!workers->submit(std::move(w), opt.max_pending)) {
            refuse_frame(routing_id, request_id, StatusCode::kBusy,
                         "the host is overloaded; retry the same request", who);
            return;
        }
        ++last_work_id;
        ++in_flight;
        sessions->remember(*s, last_work_id, kind, sequence, body);
    }

    // The I/O thread takes the workers' answers: cache them in their session and send them.
    void drain_done() {
        for (auto& d : workers->take_done()) {
            --in_flight;
            if (d.answer.empty()) continue;
            if (stopping) ++answered_after_stop;
            send(d.routing_id, d.answer);
            const auto done = sessions->complete(d.session_id, d.work_id, d.answer);
            for (const auto& w : done.waiters) send_as(w.routing_id, *done.answer, w.request_id);
        }
    }

    // ---- the I/O loop ---------------------------------------------------------------------
    std::atomic<bool> stopping{false};
    Clock::time_point stop_deadline{};  // stop() + opt.shutdown_deadline (I/O thread only)
    uint64_t answered_after_stop = 0;   // answers sent after stop() (I/O thread only)
    size_t dropped_at_deadline = 0;     // requests unanswered when the deadline passed

    Status setup(std::string& endpoint) {
        WP_RETURN_IF_ERROR(sockets.open(opt, endpoint));
        workers->start(opt.workers);
        return ok_status();
    }

    void receive_all() {
        for (int burst = 0; burst < 256; ++burst) {
            Msg id;
            if (zmq_msg_recv(&id.m, sockets.router(), ZMQ_DONTWAIT) < 0) return;
            if (!id.more()) continue;  // a ROUTER always gets identity + payload
            Msg payload;
            if (zmq_msg_recv(&payload.m, sockets.router(), ZMQ_DONTWAIT) < 0) return;
            const bool extra = payload.more();
            while (payload.more()) {  // a multi-part request is not a WPTL frame: drain it
                Msg rest;
                if (zmq_msg_recv(&rest.m, sockets.router(), ZMQ_DONTWAIT) < 0) break;
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
            workers->touch();
            handle_frame(id.bytes(), payload.bytes(), key);
        }
    }

    Status loop() {
        zmq_pollitem_t items[4] = {};
        int n = 0;
        items[n++] = {sockets.router(), 0, ZMQ_POLLIN, 0};
        items[n++] = {nullptr, workers->done_fd(), ZMQ_POLLIN, 0};
        items[n++] = {nullptr, stop_fd, ZMQ_POLLIN, 0};
        if (sockets.zap() != nullptr) items[n++] = {sockets.zap(), 0, ZMQ_POLLIN, 0};
        for (;;) {
            if (stopping && in_flight == 0) return ok_status();
            long timeout_ms = -1;
            if (stopping) {
                const auto left = stop_deadline - Clock::now();
                if (left <= Clock::duration::zero()) {
                    // Work still running finishes its transaction (the ledger stays whole) but
                    // its answer is not waited for; work not yet started is dropped. A tester
                    // repeats either after the restart and gets the same identities.
                    workers->drop_queued();
                    dropped_at_deadline = in_flight;
                    return ok_status();
                }
                timeout_ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
            }
            if (auto next = logger->limiter().flush()) {
                const long due = std::chrono::ceil<std::chrono::milliseconds>(*next).count();
                timeout_ms = timeout_ms < 0 ? due : std::min(timeout_ms, due);
            }
            const int rc = zmq_poll(items, n, timeout_ms);
            if (rc < 0) {
                if (zmq_errno() == EINTR) continue;
                return make_error(ErrorCode::kIo,
                                  std::string("zmq_poll: ") + zmq_strerror(zmq_errno()));
            }
            if (sockets.zap() != nullptr && (items[3].revents & ZMQ_POLLIN)) handle_zap();
            if (items[1].revents & ZMQ_POLLIN) drain_done();
            if (items[0].revents & ZMQ_POLLIN) receive_all();
            if (items[2].revents & ZMQ_POLLIN) {
                uint64_t v = 0;
                [[maybe_unused]] auto r = ::read(stop_fd, &v, sizeof v);
                if (!stopping) {
                    log("stopping: finishing " + std::to_string(in_flight) +
                        " request(s) in flight within " + svc::seconds(opt.shutdown_deadline));
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
        return sockets.close(std::chrono::duration_cast<std::chrono::milliseconds>(left));
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
        auto canonical = is_postgres_location(sj.job.ledger.string())
                             ? sj.job.ledger
                             : std::filesystem::weakly_canonical(sj.job.ledger);
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
    impl->logger = std::make_unique<svc::ServiceLog>(impl->opt.log, impl->opt.log_window);
    Service::Impl* raw = impl.get();
    impl->sessions = std::make_unique<svc::SessionTable>(
        svc::SessionTable::Limits{impl->opt.max_sessions, kSessionsPerKey, impl->opt.answers_kept},
        /*per_key_limit=*/!impl->opt.insecure, [raw](const std::string& line) { raw->log(line); },
        [raw](const svc::Session& dropped) {
            if (raw->opt.observer != nullptr)
                raw->opt.observer->session_closed(dropped.job->job().id, dropped.tester);
        });
    WP_ASSIGN_OR_RETURN(impl->workers,
                        svc::Workers::create(impl->jobs, impl->counters, *impl->logger,
                                             impl->opt.verbose, impl->opt.observer));
    impl->stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (impl->stop_fd < 0) return make_error(ErrorCode::kIo, "eventfd failed");
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
    impl_->logger->limiter().flush(/*all=*/true);
    if (impl_->stopping) {
        impl_->log("stopped: " + std::to_string(impl_->answered_after_stop) + " answer(s) sent, " +
                   std::to_string(impl_->dropped_at_deadline) + " dropped after deadline " +
                   svc::seconds(impl_->opt.shutdown_deadline) +
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
    if (impl_->workers) s.working = impl_->workers->busy();
    return s;
}

}  // namespace waferprov::host
