// The transport under one wp_ate handle: a ZeroMQ context with one I/O thread and one DEALER
// socket connected to the host's ROUTER, CurveZMQ unless the host runs `serve --insecure`.
// One ZeroMQ message carries one WPTL frame; this layer only moves bytes, with deadlines.
//
// Not thread-safe: the handle's mutex serializes every use (ZeroMQ sockets are single-threaded).
#pragma once

#include <chrono>
#include <string>

#include "waferprov/bytes.hpp"
#include "waferprov/result.hpp"

namespace waferprov::ate {

using Clock = std::chrono::steady_clock;

struct LinkOptions {
    std::string endpoint;           // "tcp://host:port"
    std::string server_public_key;  // Z85; "" = plain TCP
    std::string client_public_key;  // Z85
    std::string client_secret_key;  // Z85; the caller wipes its copy
};

class Link {
public:
    Link() = default;
    ~Link();  // linger 0: whatever is still queued is dropped, closing never blocks
    Link(const Link&) = delete;
    Link& operator=(const Link&) = delete;

    // Creates the context and the socket, sets the options and connects (which only starts
    // ZeroMQ's background connect: no peer is needed yet). An error on failure: a bad endpoint
    // (kUnavailable), a key libzmq refuses (kInvalidArgument), libzmq without CURVE
    // (kUnsupported).
    Status connect(const LinkOptions& options);

    // Queues one single-part message. With ZMQ_IMMEDIATE a message queues only to a connection
    // whose handshake completed, so this waits (until `deadline`) while there is none: a host
    // that is down or refuses our key shows as ErrorCode::kTimeout; kIo for a socket failure.
    Status send(ByteSpan frame, Clock::time_point deadline);

    // Receives one message into `frame` (its first part; the others are dropped) and returns
    // how many parts it had. ErrorCode::kTimeout when nothing arrives before `deadline`.
    Result<size_t> receive(Bytes& frame, Clock::time_point deadline);

private:
    // Waits for `events` (ZMQ_POLLIN / ZMQ_POLLOUT) until `deadline`; EINTR is retried.
    Status wait(short events, Clock::time_point deadline);

    void* context_ = nullptr;
    void* socket_ = nullptr;
};

}  // namespace waferprov::ate
