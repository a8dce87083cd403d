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

std::string zmq_error(const char* what) {
    return std::string(what) + ": " + zmq_strerror(zmq_errno());
}

bool set_int(void* socket, int option, int value, const char* name, std::string& error) {
    if (zmq_setsockopt(socket, option, &value, sizeof value) == 0) return true;
    error = zmq_error(name);
    return false;
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

bool Link::connect(const LinkOptions& options, std::string& error) {
    context_ = zmq_ctx_new();
    if (context_ == nullptr) {
        error = zmq_error("zmq_ctx_new");
        return false;
    }
    // One I/O thread is plenty for one connection; blocky off so that terminating the context
    // never waits for queued messages (the socket's linger is 0 as well).
    zmq_ctx_set(context_, ZMQ_IO_THREADS, 1);
    zmq_ctx_set(context_, ZMQ_BLOCKY, 0);
    socket_ = zmq_socket(context_, ZMQ_DEALER);
    if (socket_ == nullptr) {
        error = zmq_error("zmq_socket");
        return false;
    }
    // Bounds what a hostile or broken host can make us allocate: ZeroMQ drops the connection
    // on a bigger message before buffering it.
    const int64_t max_message = static_cast<int64_t>(host::protocol::kMaxFrameSize);
    if (zmq_setsockopt(socket_, ZMQ_MAXMSGSIZE, &max_message, sizeof max_message) != 0) {
        error = zmq_error("ZMQ_MAXMSGSIZE");
        return false;
    }
    if (!set_int(socket_, ZMQ_LINGER, 0, "ZMQ_LINGER", error) ||
        !set_int(socket_, ZMQ_IMMEDIATE, 1, "ZMQ_IMMEDIATE", error) ||
        !set_int(socket_, ZMQ_RECONNECT_IVL, kReconnectIvlMs, "ZMQ_RECONNECT_IVL", error) ||
        !set_int(socket_, ZMQ_RECONNECT_IVL_MAX, kReconnectIvlMaxMs, "ZMQ_RECONNECT_IVL_MAX",
                 error) ||
        !set_int(socket_, ZMQ_HEARTBEAT_IVL, kHeartbeatIvlMs, "ZMQ_HEARTBEAT_IVL", error) ||
        !set_int(socket_, ZMQ_HEARTBEAT_TIMEOUT, kHeartbeatTimeoutMs, "ZMQ_HEARTBEAT_TIMEOUT",
                 error))
        return false;
    if (!options.server_public_key.empty()) {
        if (zmq_has("curve") == 0) {
            error = "this libzmq was built without CURVE support";
            return false;
        }
        // Z85 text, 40 characters: libzmq decodes it (a length of 40 means Z85).
        const struct {
            int option;
            const std::string* key;
            const char* name;
        } keys[] = {{ZMQ_CURVE_SERVERKEY, &options.server_public_key, "server_public_key"},
                    {ZMQ_CURVE_PUBLICKEY, &options.client_public_key, "client_public_key"},
                    {ZMQ_CURVE_SECRETKEY, &options.client_secret_key, "client_secret_key"}};
        for (const auto& k : keys) {
            if (zmq_setsockopt(socket_, k.option, k.key->data(), k.key->size()) != 0) {
                error = zmq_error(k.name);
                return false;
            }
        }
    }
    if (zmq_connect(socket_, options.endpoint.c_str()) != 0) {
        error = "cannot connect to \"" + options.endpoint + "\": " + zmq_strerror(zmq_errno());
        return false;
    }
    return true;
}

IoStatus Link::wait(short events, Clock::time_point deadline, std::string& error) {
    for (;;) {
        zmq_pollitem_t item{socket_, 0, events, 0};
        const long left = remaining_ms(deadline);
        const int n = zmq_poll(&item, 1, left);
        if (n > 0 && (item.revents & events) != 0) return IoStatus::kOk;
        if (n < 0) {
            if (zmq_errno() == EINTR) continue;  // a signal for the test program, not for us
            error = zmq_error("zmq_poll");
            return IoStatus::kError;
        }
        if (left == 0 || Clock::now() >= deadline) return IoStatus::kTimeout;
    }
}

IoStatus Link::send(ByteSpan frame, Clock::time_point deadline, std::string& error) {
    for (;;) {
        if (zmq_send(socket_, frame.data(), frame.size(), ZMQ_DONTWAIT) >= 0) return IoStatus::kOk;
        const int e = zmq_errno();
        if (e == EINTR) continue;
        if (e != EAGAIN) {
            error = zmq_error("zmq_send");
            return IoStatus::kError;
        }
        // No connection ready (none yet, the host is down, or the handshake is refused).
        const IoStatus st = wait(ZMQ_POLLOUT, deadline, error);
        if (st != IoStatus::kOk) return st;
    }
}

IoStatus Link::receive(Bytes& frame, size_t& parts, Clock::time_point deadline,
                       std::string& error) {
    parts = 0;
    for (;;) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        const int n = zmq_msg_recv(&msg, socket_, ZMQ_DONTWAIT);
        if (n < 0) {
            const int e = zmq_errno();
            zmq_msg_close(&msg);
            if (e == EINTR) continue;
            if (e != EAGAIN) {
                error = zmq_error("zmq_msg_recv");
                return IoStatus::kError;
            }
            // ZeroMQ delivers a multi-part message whole, so this cannot end one early; if it
            // ever did, what arrived is what we have.
            if (parts > 0) return IoStatus::kOk;
            const IoStatus st = wait(ZMQ_POLLIN, deadline, error);
            if (st != IoStatus::kOk) return st;
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
        if (!more) return IoStatus::kOk;
    }
}

}  // namespace waferprov::ate
