// One tester session over one Link: HELLO, the request/answer exchange with request-id matching,
// resends after a timeout, the transparent re-HELLO when the host lost the session, and the
// checks that an answer belongs to its request. The C API (c_api.cpp) validates the caller's
// arguments, builds the protocol messages and copies the answers out; this class owns the
// protocol logic. Every function returns a WP_ATE_* status and leaves the reason for a failure
// in last_error().
//
// Not thread-safe: the wp_ate handle's mutex serializes every call.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "link.hpp"
#include "waferprov/host/protocol.hpp"

namespace waferprov::ate {

namespace proto = waferprov::host::protocol;

struct SessionConfig {
    LinkOptions link;
    std::string tester_id;
    std::string job_id;
    std::string node_name;
    std::chrono::milliseconds timeout{5000};  // per attempt
    int retries = 0;                          // resends after a timeout
};

class Session {
public:
    // Connects and opens the session (HELLO). `config.link.client_secret_key` is handed to
    // libzmq and wiped here.
    int open(SessionConfig config);

    // TOUCHDOWN → TOUCHDOWN_RESULT. On WP_ATE_OK `answer` is the host's answer, checked against
    // `request` (sequence, every site exactly once, a die's own UID kept), and order[i] is the
    // index in answer.sites of request.sites[i]. `request.session_id` is filled in here.
    int touchdown(proto::Touchdown& request, proto::TouchdownResult& answer,
                  std::vector<size_t>& order);

    // FINAL_TOUCHDOWN → TOUCHDOWN_RESULT (protocol 1.2), checked like touchdown(): every part
    // answered once, a VERIFY or identity site keeps the part's own UID.
    int final_touchdown(proto::FinalTouchdown& request, proto::TouchdownResult& answer,
                        std::vector<size_t>& order);

    // RESULTS (or FINAL_RESULTS) → RESULTS_ACK, checked and ordered the same way (the ack
    // echoes each UID).
    int results(proto::Results& request, proto::ResultsAck& answer, std::vector<size_t>& order);

    // BYE (one attempt, at most the timeout; any failure is ignored) if a session is open.
    void close();

    // Records `text` as the last failure and returns `status`.
    int fail(int status, std::string text);
    const std::string& last_error() const { return last_error_; }
    uint64_t session_id() const { return session_id_; }
    int max_sites() const { return static_cast<int>(limits_.max_sites); }
    // The protocol minor agreed in HELLO_OK (1.x).
    uint8_t agreed_minor() const { return minor_; }

private:
    enum class State {
        kNoSession,  // no HELLO yet, or the host lost the session and the re-HELLO failed
        kOpen,
        kClosed,  // the host refused a new session (NOT_ADMITTED / UNKNOWN_JOB), or BYE
    };

    int hello();

    // Sends `frame` (a fresh request id; the agreed minor) and waits for the answer of kind
    // `expected`, resending the same bytes after each timeout, `attempts` tries in all. An
    // ERROR answer returns its code (positive). On WP_ATE_OK `answer` holds the decoded frame.
    int exchange(proto::Frame& frame, proto::Kind expected, int attempts, proto::Frame& answer);

    // Waits until `deadline` for the answer to request `id`; answers to other (earlier, timed
    // out) requests are dropped. WP_ATE_E_TIMEOUT when none came.
    int await(uint32_t id, proto::Kind sent, proto::Kind expected, Clock::time_point deadline,
              proto::Frame& answer);

    // exchange() for a request that names the session: opens one first if there is none, and
    // after an ERROR NO_SESSION (the host restarted) opens a new one and resends once.
    template <class Request>
    int in_session(const Request& request, proto::Kind expected, proto::Frame& answer);
    // The part every request/answer pair shares: in_session(), the session id into the
    // request, the answer of type Answer (named `answer_name`), its sequence against the
    // request's (`request_name` in the error), and every site answered once (order).
    template <class Request, class Answer>
    int exchange_sites(Request& request, proto::Kind kind, const char* request_name,
                       const char* answer_name, Answer& answer, std::vector<size_t>& order);

    uint32_t next_request_id();

    SessionConfig config_;
    Link link_;
    State state_ = State::kNoSession;
    std::string closed_reason_;
    uint64_t session_id_ = 0;
    uint8_t minor_ = proto::kVersionMinor;  // agreed in HELLO_OK
    proto::Limits limits_;                  // advertised in HELLO_OK
    uint32_t last_request_id_ = 0;
    Bytes out_;  // encode buffer, reused
    Bytes in_;   // receive buffer, reused
    std::string last_error_;
};

}  // namespace waferprov::ate
