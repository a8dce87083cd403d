#include "link.hpp"

#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include "waferprov/host/protocol.hpp"

namespace waferprov::ate {
namespace {

// ZeroMQ reconnects by itself after the host restarts: first after 100 ms, backing off to 1 s,
// so a restarted host is found again well within one request timeout.
constexpr int kReconnectIvlMs = 100;
constexpr int kReconnectIvlMaxMs = 1000;
// ZMTP heartbeats: a host that vanished without closing the TCP connection (power loss, a
// pulled cable) is noticed within a few seconds and the socket reconnects, instead of queueing
// our retries into a connection nobody reads.
constexpr int kHeartbeatIvlMs = 1000;
constexpr int kHeartbeatTimeoutMs = 5000;

Error zmq_error(const char* what, ErrorCode code = ErrorCode::kIo) {
    return make_error(code, std::string(what) + ": " + zmq_strerror(zmq_errno()));
}

Status set_int(void* socket, int option, int value, const char* name) {
    if (zmq_setsockopt(socket, option, &value, sizeof value) == 0) return ok_status();
    return zmq_error(name, ErrorCode::kInvalidArgument);
}

// Milliseconds left until `deadline`, rounded up so that we never wake just before it.
long remaining_ms(Clock::time_point deadline) {
    const auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) return 0;
    return static_cast<long>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
}

}  // namespace

Link::~Link() {
    if (socket_ != nullptr) {
        const int linger = 0;
        zmq_setsockopt(socket_, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(socket_);
    }
    if (context_ != nullptr) {
        while (zmq_ctx_term(context_) != 0 && zmq_errno() == EINTR) {}
    }
}

Status Link::connect(const LinkOptions& options) {
    context_ = zmq_ctx_new();
    if (context_ == nullptr) return zmq_error("zmq_ctx_new");
    // One I/O thread is plenty for one connection; blocky off so that terminating the context
    // never waits for queued messages (the socket's linger is 0 as well).
    zmq_ctx_set(context_, ZMQ_IO_THREADS, 1);
    zmq_ctx_set(context_, ZMQ_BLOCKY, 0);
    socket_ = zmq_socket(context_, ZMQ_DEALER);
    if (socket_ == nullptr) return zmq_error("zmq_socket");
    // Bounds what a hostile or broken host can make us allocate: ZeroMQ drops the connection
    // on a bigger message before buffering it.
    const int64_t max_message = static_cast<int64_t>(host::protocol::kMaxFrameSize);
    if (zmq_setsockopt(socket_, ZMQ_MAXMSGSIZE, &max_message, sizeof max_message) != 0)
        return zmq_error("ZMQ_MAXMSGSIZE", ErrorCode::kInvalidArgument);
    WP_RETURN_IF_ERROR(set_int(socket_, ZMQ_LINGER, 0, "ZMQ_LINGER"));
    WP_RETURN_IF_ERROR(set_int(socket_, ZMQ_IMMEDIATE, 1, "ZMQ_IMMEDIATE"));
    WP_RETURN_IF_ERROR(set_int(socket_, ZMQ_RECONNECT_IVL, kReconnectIvlMs, "ZMQ_RECONNECT_IVL"));
    WP_RETURN_IF_ERROR(
        set_int(socket_, ZMQ_RECONNECT_IVL_MAX, kReconnectIvlMaxMs, "ZMQ_RECONNECT_IVL_MAX"));
    WP_RETURN_IF_ERROR(set_int(socket_, ZMQ_HEARTBEAT_IVL, kHeartbeatIvlMs, "ZMQ_HEARTBEAT_IVL"));
    WP_RETURN_IF_ERROR(
        set_int(socket_, ZMQ_HEARTBEAT_TIMEOUT, kHeartbeatTimeoutMs, "ZMQ_HEARTBEAT_TIMEOUT"));
    if (!options.server_public_key.empty()) {
        if (zmq_has("curve") == 0)
            return make_error(ErrorCode::kUnsupported,
                              "this libzmq was built without CURVE support");
        // Z85 text, 40 characters: libzmq decodes it (a length of 40 means Z85).
        const struct {
            int option;
            const std::string* key;
            const char* name;
        } keys[] = {{ZMQ_CURVE_SERVERKEY, &options.server_public_key, "server_public_key"},
                    {ZMQ_CURVE_PUBLICKEY, &options.client_public_key, "client_public_key"},
                    {ZMQ_CURVE_SECRETKEY, &options.client_secret_key, "client_secret_key"}};
        for (const auto& k : keys) {
            if (zmq_setsockopt(socket_, k.option, k.key->data(), k.key->size()) != 0)
                return zmq_error(k.name, ErrorCode::kInvalidArgument);
        }
    }
    if (zmq_connect(socket_, options.endpoint.c_str()) != 0)
        return make_error(ErrorCode::kUnavailable, "cannot connect to \"" + options.endpoint +
                                                       "\": " + zmq_strerror(zmq_errno()));
    return ok_status();
}

Status Link::wait(short events, Clock::time_point deadline) {
    for (;;) {
        zmq_pollitem_t item{socket_, 0, events, 0};
        const long left = remaining_ms(deadline);
        const int n = zmq_poll(&item, 1, left);
        if (n > 0 && (item.revents & events) != 0) return ok_status();
        if (n < 0) {
            if (zmq_errno() == EINTR) continue;  // a signal for the test program, not for us
            return zmq_error("zmq_poll");
        }
        if (left == 0 || Clock::now() >= deadline)
            return make_error(ErrorCode::kTimeout, "deadline passed");
    }
}

Status Link::send(ByteSpan frame, Clock::time_point deadline) {
    for (;;) {
        if (zmq_send(socket_, frame.data(), frame.size(), ZMQ_DONTWAIT) >= 0) return ok_status();
        const int e = zmq_errno();
        if (e == EINTR) continue;
        if (e != EAGAIN) return zmq_error("zmq_send");
        // No connection ready (none yet, the host is down, or the handshake is refused).
        WP_RETURN_IF_ERROR(wait(ZMQ_POLLOUT, deadline));
    }
}

Result<size_t> Link::receive(Bytes& frame, Clock::time_point deadline) {
    size_t parts = 0;
    for (;;) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        const int n = zmq_msg_recv(&msg, socket_, ZMQ_DONTWAIT);
        if (n < 0) {
            const int e = zmq_errno();
            zmq_msg_close(&msg);
            if (e == EINTR) continue;
            if (e != EAGAIN) return zmq_error("zmq_msg_recv");
            // ZeroMQ delivers a multi-part message whole, so this cannot end one early; if it
            // ever did, what arrived is what we have.
            if (parts > 0) return parts;
            WP_RETURN_IF_ERROR(wait(ZMQ_POLLIN, deadline));
            continue;
        }
        if (parts == 0) {
            const auto* data = static_cast<const uint8_t*>(zmq_msg_data(&msg));
            try {
                frame.assign(data, data + zmq_msg_size(&msg));
            } catch (...) {
                zmq_msg_close(&msg);
                throw;
            }
        }
        ++parts;
        const bool more = zmq_msg_more(&msg) != 0;
        zmq_msg_close(&msg);
        if (!more) return parts;
    }
}

}  // namespace waferprov::ate
