// Test support: a host whose answers a test scripts, to drive the client library through what a
// correct `waferprov serve` never does (late answers to old requests, malformed or mismatched
// answers, NO_SESSION, silence). A ZeroMQ ROUTER on an ephemeral port, on its own thread; the
// frames go through the real codec. The tests against the real server are ate_server_test.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "waferprov/host/protocol.hpp"

namespace waferprov::ate_test {

namespace proto = waferprov::host::protocol;

class ScriptedHost {
public:
    using Message = std::vector<Bytes>;  // the parts of one ZeroMQ message (usually one)
    // Called for every request that decodes, with its index among all requests received; the
    // messages returned are sent back to the requester in order (none: the host stays silent).
    using Script = std::function<std::vector<Message>(const proto::Frame& request, size_t index)>;

    // curve: a CURVE server with a fresh key pair (server_public()); any client key is taken.
    explicit ScriptedHost(Script script, bool curve = false);
    ~ScriptedHost();
    ScriptedHost(const ScriptedHost&) = delete;
    ScriptedHost& operator=(const ScriptedHost&) = delete;

    const std::string& endpoint() const { return endpoint_; }
    const std::string& server_public() const { return server_public_; }
    // Every request received so far, decoded, in order.
    std::vector<proto::Frame> requests() const;

    // What a well-behaved host answers (HELLO_OK for session kSessionId with max_sites
    // kMaxSites, an OK identity for every site, an OK ack for every result, BYE_OK).
    static constexpr uint64_t kSessionId = 0x1122334455667788;
    static constexpr uint16_t kMaxSites = 8;
    static proto::Frame answer(const proto::Frame& request);
    // One single-part message holding `frame`, encoded.
    static Message message(const proto::Frame& frame);
    // The default script: answer(request) for every request.
    static std::vector<Message> well_behaved(const proto::Frame& request, size_t index);

private:
    void run();

    Script script_;
    void* context_ = nullptr;
    void* socket_ = nullptr;
    std::string endpoint_;
    std::string server_public_;
    mutable std::mutex mutex_;
    std::vector<proto::Frame> requests_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace waferprov::ate_test
