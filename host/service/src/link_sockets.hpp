// The tester link's sockets: a ROUTER on the service's endpoint (CurveZMQ server unless
// insecure, frames capped at the protocol's maximum) and, under CURVE, the ZAP handler's REP
// socket on inproc://zeromq.zap.01, both in one ZeroMQ context. Owned by the I/O thread.
#pragma once

#include <chrono>
#include <string>

#include "waferprov/host/protocol.hpp"
#include "waferprov/host/service.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host::svc {

class LinkSockets {
public:
    LinkSockets() = default;
    ~LinkSockets();  // closes without lingering
    LinkSockets(const LinkSockets&) = delete;
    LinkSockets& operator=(const LinkSockets&) = delete;

    // Binds per `opt` (bind, insecure, server_keys); `endpoint` is where it listens (a port 0
    // resolved). Errors name the endpoint or the key that failed.
    Status open(const ServiceOptions& opt, std::string& endpoint);

    // Closes, letting the ROUTER flush what it holds for at most `linger` (answers already
    // handed to it for a slow tester). Returns false if the linger cut the flush short.
    bool close(std::chrono::milliseconds linger);

    void* router() const { return router_; }
    void* zap() const { return zap_; }  // nullptr when insecure

private:
    void* ctx_ = nullptr;
    void* router_ = nullptr;
    void* zap_ = nullptr;
};

}  // namespace waferprov::host::svc
