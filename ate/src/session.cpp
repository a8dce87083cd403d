#include "session.hpp"

#include <algorithm>
#include <utility>

#include "waferprov_ate.h"

#ifndef WAFERPROV_ATE_VERSION
#define WAFERPROV_ATE_VERSION "0"
#endif

namespace waferprov::ate {
namespace {

std::string kind_name(proto::Kind k) { return proto::to_string(k); }

// Matches the sites of an answer to those of its request: same count, every requested site
// answered exactly once, nothing else. order[i] = index in `answer` of request[i].
template <class RequestEntry, class AnswerEntry>
bool match_sites(const std::vector<RequestEntry>& request, const std::vector<AnswerEntry>& answer,
                 std::vector<size_t>& order, std::string& why) {
    if (answer.size() != request.size()) {
        why = std::to_string(answer.size()) + " sites in the answer, " +
              std::to_string(request.size()) + " in the request";
        return false;
    }
    std::vector<std::pair<uint16_t, size_t>> by_site;  // (site, request index), sorted
    by_site.reserve(request.size());
    for (size_t i = 0; i < request.size(); ++i) by_site.emplace_back(request[i].site, i);
    std::sort(by_site.begin(), by_site.end());
    constexpr size_t kUnset = static_cast<size_t>(-1);
    order.assign(request.size(), kUnset);
    for (size_t j = 0; j < answer.size(); ++j) {
        const uint16_t site = answer[j].site;
        const auto it =
            std::lower_bound(by_site.begin(), by_site.end(), std::pair<uint16_t, size_t>{site, 0});
        if (it == by_site.end() || it->first != site) {
            why = "site " + std::to_string(site) + " was not in the request";
            return false;
        }
        if (order[it->second] != kUnset) {
            why = "site " + std::to_string(site) + " answered twice";
            return false;
        }
        order[it->second] = j;
    }
    return true;  // n answers, n distinct requested sites: every one is answered
}

}  // namespace

uint32_t Session::next_request_id() {
    // 0 is what the host echoes when it could not read a header; never use it for a request.
    if (++last_request_id_ == 0) ++last_request_id_;
    return last_request_id_;
}

int Session::fail(int status, std::string text) {
    last_error_ = std::move(text);
    return status;
}

int Session::open(SessionConfig config) {
    config_ = std::move(config);
    const Status connected = link_.connect(config_.link);
    // libzmq keeps its own copy of the key; ours is not needed any more.
    secure_wipe(config_.link.client_secret_key.data(), config_.link.client_secret_key.size());
    config_.link.client_secret_key.clear();
    if (!connected.ok()) return fail(WP_ATE_E_CONNECT, connected.error().message);
    return hello();
}

int Session::hello() {
    proto::Frame frame;
    frame.message =
        proto::Hello{config_.tester_id, config_.job_id, config_.node_name, WAFERPROV_ATE_VERSION};
    proto::Frame answer;
    const int rc = exchange(frame, proto::Kind::kHelloOk, 1 + config_.retries, answer);
    if (rc != WP_ATE_OK) return rc;
    const auto& ok = std::get<proto::HelloOk>(answer.message);
    if (answer.minor > proto::kVersionMinor)
        return fail(WP_ATE_E_PROTOCOL, "HELLO_OK agrees on version 1." +
                                           std::to_string(answer.minor) + ", above the 1." +
                                           std::to_string(proto::kVersionMinor) + " we offered");
    session_id_ = ok.session_id;
    minor_ = answer.minor;
    limits_ = proto::Limits{ok.max_frame_size, ok.max_sites};
    state_ = State::kOpen;
    return WP_ATE_OK;
}

int Session::exchange(proto::Frame& frame, proto::Kind expected, int attempts,
                      proto::Frame& answer) {
    const proto::Kind sent = proto::kind_of(frame.message);
    const uint32_t id = next_request_id();
    frame.request_id = id;
    frame.minor = sent == proto::Kind::kHello ? proto::kVersionMinor : minor_;
    if (Status st = proto::encode_to(frame, out_, limits_); !st.ok())
        return fail(WP_ATE_E_INVALID_ARGUMENT, st.error().message);
    bool queued = false;  // did any attempt get the request onto a connection?
    for (int attempt = 0; attempt < attempts; ++attempt) {
        const Clock::time_point deadline = Clock::now() + config_.timeout;
        const Status io = link_.send(out_, deadline);
        if (!io.ok() && io.error().code == ErrorCode::kTimeout)
            continue;  // no connection took it within the attempt
        if (!io.ok()) return fail(WP_ATE_E_INTERNAL, kind_name(sent) + ": " + io.error().message);
        queued = true;
        const int rc = await(id, sent, expected, deadline, answer);
        if (rc != WP_ATE_E_TIMEOUT) return rc;
    }
    std::string text = kind_name(sent) + ": no answer from " + config_.link.endpoint + " within " +
                       std::to_string(config_.timeout.count()) + " ms (" +
                       std::to_string(attempts) + (attempts == 1 ? " attempt" : " attempts") + ")";
    if (!queued)
        text +=
            "; no connection to the host was ever ready: is it running, and does it admit "
            "this tester's CURVE key?";
    return fail(WP_ATE_E_TIMEOUT, std::move(text));
}

int Session::await(uint32_t id, proto::Kind sent, proto::Kind expected, Clock::time_point deadline,
                   proto::Frame& answer) {
    for (;;) {
        const Result<size_t> io = link_.receive(in_, deadline);
        if (!io.ok() && io.error().code == ErrorCode::kTimeout) return WP_ATE_E_TIMEOUT;
        if (!io.ok()) return fail(WP_ATE_E_INTERNAL, kind_name(sent) + ": " + io.error().message);
        const auto header = proto::peek_header(in_);
        if (!header) continue;  // not a WPTL frame at all: it answers nothing we asked
        // A late answer to an earlier request that timed out: the caller has moved on. An
        // ERROR with request id 0 is the host saying it could not read a header: ours, since
        // nothing else of ours is in flight.
        const bool ours =
            header->request_id == id ||
            (header->request_id == 0 && header->kind == static_cast<uint8_t>(proto::Kind::kError));
        if (!ours) continue;
        if (*io != 1)
            return fail(WP_ATE_E_PROTOCOL, "the answer to " + kind_name(sent) + " came in " +
                                               std::to_string(*io) +
                                               " message parts, expected one");
        auto decoded = proto::decode(in_, limits_);
        if (!decoded.ok()) {
            if (decoded.error().code == proto::StatusCode::kInternal)
                return fail(WP_ATE_E_NO_MEMORY, "decoding the answer to " + kind_name(sent) + ": " +
                                                    decoded.error().text);
            return fail(WP_ATE_E_PROTOCOL,
                        "the host's answer to " + kind_name(sent) + " is malformed: " +
                            proto::to_string(decoded.error().code) + ": " + decoded.error().text);
        }
        answer = std::move(decoded).value();
        const proto::Kind got = proto::kind_of(answer.message);
        if (got == proto::Kind::kError) {
            const auto& e = std::get<proto::ErrorReply>(answer.message);
            return fail(static_cast<int>(e.code), std::string(proto::to_string(e.code)) +
                                                      " (the host refused " + kind_name(sent) +
                                                      ")" + (e.text.empty() ? "" : ": " + e.text));
        }
        if (got != expected)
            return fail(WP_ATE_E_PROTOCOL, "the host answered " + kind_name(sent) + " with " +
                                               kind_name(got) + ", expected " +
                                               kind_name(expected));
        return WP_ATE_OK;
    }
}

template <class Request>
int Session::in_session(const Request& request, proto::Kind expected, proto::Frame& answer) {
    if (state_ == State::kClosed) return fail(WP_ATE_E_CLOSED, closed_reason_);
    bool new_session = false;
    if (state_ == State::kNoSession) {  // an earlier re-HELLO did not get through: try again
        if (const int rc = hello(); rc != WP_ATE_OK) return rc;
        new_session = true;
    }
    proto::Frame frame;
    frame.message = request;
    std::get<Request>(frame.message).session_id = session_id_;
    int rc = exchange(frame, expected, 1 + config_.retries, answer);
    if (rc != WP_ATE_S_NO_SESSION || new_session) return rc;

    // The host does not know our session: it restarted (ZeroMQ reconnected underneath us) or
    // expired it. Open a new one and resend once; the host's ledger makes the resend safe.
    const std::string lost = last_error_;
    state_ = State::kNoSession;
    rc = hello();
    if (rc != WP_ATE_OK) {
        last_error_ = "the host lost session " + std::to_string(session_id_) + " (" + lost +
                      ") and a new HELLO failed: " + last_error_;
        if (rc == WP_ATE_S_NOT_ADMITTED || rc == WP_ATE_S_UNKNOWN_JOB) {
            // The host will not take this tester or job any more: retrying cannot help.
            state_ = State::kClosed;
            closed_reason_ = "session closed: " + last_error_;
        }
        return rc;
    }
    std::get<Request>(frame.message).session_id = session_id_;
    return exchange(frame, expected, 1 + config_.retries, answer);
}

template <class Request, class Answer>
int Session::exchange_sites(Request& request, proto::Kind kind, const char* request_name,
                            const char* answer_name, Answer& answer, std::vector<size_t>& order) {
    proto::Frame frame;
    const int rc = in_session(request, kind, frame);
    if (rc != WP_ATE_OK) return rc;
    request.session_id = session_id_;
    answer = std::move(std::get<Answer>(frame.message));
    if (answer.sequence != request.sequence)
        return fail(WP_ATE_E_PROTOCOL, std::string(answer_name) + " is for sequence " +
                                           std::to_string(answer.sequence) + ", " + request_name +
                                           " was sequence " + std::to_string(request.sequence));
    std::string why;
    if (!match_sites(request.sites, answer.sites, order, why))
        return fail(WP_ATE_E_PROTOCOL,
                    std::string(answer_name) + " does not match the request: " + why);
    return WP_ATE_OK;
}

int Session::touchdown(proto::Touchdown& request, proto::TouchdownResult& result,
                       std::vector<size_t>& order) {
    if (const int rc = exchange_sites(request, proto::Kind::kTouchdownResult, "the request",
                                      "TOUCHDOWN_RESULT", result, order);
        rc != WP_ATE_OK)
        return rc;
    for (size_t i = 0; i < request.sites.size(); ++i) {
        const auto& asked = request.sites[i];
        const auto& got = result.sites[order[i]];
        if (asked.uid && got.identity && got.identity->uid != *asked.uid)
            return fail(WP_ATE_E_PROTOCOL, "TOUCHDOWN_RESULT: site " + std::to_string(asked.site) +
                                               " came back with another UID than the die's own (" +
                                               to_hex(got.identity->uid) + " for " +
                                               to_hex(*asked.uid) + ")");
    }
    return WP_ATE_OK;
}

int Session::final_touchdown(proto::FinalTouchdown& request, proto::TouchdownResult& result,
                             std::vector<size_t>& order) {
    if (const int rc = exchange_sites(request, proto::Kind::kTouchdownResult, "the final touchdown",
                                      "TOUCHDOWN_RESULT", result, order);
        rc != WP_ATE_OK)
        return rc;
    for (size_t i = 0; i < request.sites.size(); ++i) {
        const auto& asked = request.sites[i];
        const auto& got = result.sites[order[i]];
        const wpid1::Uid* uid = got.identity    ? &got.identity->uid
                                : got.challenge ? &got.challenge->uid
                                                : nullptr;
        if (uid != nullptr && *uid != asked.uid)
            return fail(WP_ATE_E_PROTOCOL, "TOUCHDOWN_RESULT: site " + std::to_string(asked.site) +
                                               " came back with another UID than the part's");
    }
    return WP_ATE_OK;
}

int Session::results(proto::Results& request, proto::ResultsAck& ack, std::vector<size_t>& order) {
    if (const int rc = exchange_sites(request, proto::Kind::kResultsAck, "the request",
                                      "RESULTS_ACK", ack, order);
        rc != WP_ATE_OK)
        return rc;
    for (size_t i = 0; i < request.sites.size(); ++i) {
        if (ack.sites[order[i]].uid != request.sites[i].uid)
            return fail(WP_ATE_E_PROTOCOL, "RESULTS_ACK: site " +
                                               std::to_string(request.sites[i].site) +
                                               " echoes another UID than the result's");
    }
    return WP_ATE_OK;
}

void Session::close() {
    if (state_ == State::kOpen) {
        proto::Frame frame;
        frame.message = proto::Bye{session_id_};
        proto::Frame answer;
        (void)exchange(frame, proto::Kind::kByeOk, 1, answer);  // best effort
    }
    state_ = State::kClosed;
    closed_reason_ = "session closed";
}

}  // namespace waferprov::ate
