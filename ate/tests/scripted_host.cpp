#include "scripted_host.hpp"

#include <zmq.h>

#include <array>
#include <stdexcept>

#include "waferprov/host/curve_keys.hpp"

namespace waferprov::ate_test {
namespace {

void check(int rc, const char* what) {
    if (rc != 0) throw std::runtime_error(std::string(what) + ": " + zmq_strerror(zmq_errno()));
}

}  // namespace

ScriptedHost::ScriptedHost(Script script, bool curve) : script_(std::move(script)) {
    context_ = zmq_ctx_new();
    socket_ = zmq_socket(context_, ZMQ_ROUTER);
    const int zero = 0;
    check(zmq_setsockopt(socket_, ZMQ_LINGER, &zero, sizeof zero), "ZMQ_LINGER");
    if (curve) {
        auto keys = proto::generate_curve_keys();
        if (!keys.ok()) throw std::runtime_error(keys.error().message);
        server_public_ = keys->public_z85;
        const int one = 1;
        check(zmq_setsockopt(socket_, ZMQ_CURVE_SERVER, &one, sizeof one), "ZMQ_CURVE_SERVER");
        check(zmq_setsockopt(socket_, ZMQ_CURVE_SECRETKEY, keys->secret_z85.data(),
                             keys->secret_z85.size()),
              "ZMQ_CURVE_SECRETKEY");
    }
    check(zmq_bind(socket_, "tcp://127.0.0.1:*"), "zmq_bind");
    std::array<char, 256> last{};
    size_t len = last.size();
    check(zmq_getsockopt(socket_, ZMQ_LAST_ENDPOINT, last.data(), &len), "ZMQ_LAST_ENDPOINT");
    endpoint_ = last.data();
    thread_ = std::thread([this] { run(); });
}

ScriptedHost::~ScriptedHost() {
    stop_ = true;
    thread_.join();
    zmq_close(socket_);
    zmq_ctx_term(context_);
}

std::vector<proto::Frame> ScriptedHost::requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
}

void ScriptedHost::run() {
    while (!stop_) {
        zmq_pollitem_t item{socket_, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 20) <= 0) continue;
        // [identity, frame]: the DEALER's single part behind the identity the ROUTER adds.
        std::vector<Bytes> parts;
        for (;;) {
            zmq_msg_t msg;
            zmq_msg_init(&msg);
            if (zmq_msg_recv(&msg, socket_, 0) < 0) {
                zmq_msg_close(&msg);
                break;
            }
            const auto* p = static_cast<const uint8_t*>(zmq_msg_data(&msg));
            parts.emplace_back(p, p + zmq_msg_size(&msg));
            const bool more = zmq_msg_more(&msg) != 0;
            zmq_msg_close(&msg);
            if (!more) break;
        }
        if (parts.size() != 2) continue;
        auto decoded = proto::decode(parts[1]);
        if (!decoded.ok()) continue;
        size_t index = 0;
        {
            std::lock_guard lock(mutex_);
            index = requests_.size();
            requests_.push_back(decoded.value());
        }
        for (const Message& reply : script_(decoded.value(), index)) {
            zmq_send(socket_, parts[0].data(), parts[0].size(), ZMQ_SNDMORE);
            for (size_t i = 0; i < reply.size(); ++i)
                zmq_send(socket_, reply[i].data(), reply[i].size(),
                         i + 1 < reply.size() ? ZMQ_SNDMORE : 0);
        }
    }
}

proto::Frame ScriptedHost::answer(const proto::Frame& request) {
    proto::Frame out;
    out.request_id = request.request_id;
    out.minor = 0;
    if (std::holds_alternative<proto::Hello>(request.message)) {
        out.message = proto::HelloOk{kSessionId, "scripted", kMaxSites, 4u << 20};
    } else if (const auto* td = std::get_if<proto::Touchdown>(&request.message)) {
        proto::TouchdownResult r;
        r.sequence = td->sequence;
        for (const auto& s : td->sites) {
            proto::SiteIdentity id;
            if (s.uid) {
                id.uid = *s.uid;
            } else {
                id.uid.fill(0x55);
                id.uid[0] = static_cast<uint8_t>(s.site);
            }
            id.key.wrapped.fill(static_cast<uint8_t>(0xa0 + s.site));
            id.certificate_der = {0x30, 0x03, 0x02, 0x01, static_cast<uint8_t>(s.site)};
            id.chain_id.fill(0xc0);
            r.sites.push_back(proto::SiteResponse{s.site, proto::StatusCode::kOk, "", id});
        }
        out.message = std::move(r);
    } else if (const auto* res = std::get_if<proto::Results>(&request.message)) {
        proto::ResultsAck a;
        a.sequence = res->sequence;
        for (const auto& s : res->sites)
            a.sites.push_back(proto::ResultAck{s.site, s.uid, proto::StatusCode::kOk, ""});
        out.message = std::move(a);
    } else if (std::holds_alternative<proto::Bye>(request.message)) {
        out.message = proto::ByeOk{};
    } else {
        out.message = proto::ErrorReply{proto::StatusCode::kUnexpectedKind, "not a request"};
    }
    return out;
}

ScriptedHost::Message ScriptedHost::message(const proto::Frame& frame) {
    auto bytes = proto::encode(frame);
    if (!bytes.ok()) throw std::runtime_error(bytes.error().message);
    return Message{std::move(bytes).value()};
}

std::vector<ScriptedHost::Message> ScriptedHost::well_behaved(const proto::Frame& request,
                                                              size_t /*index*/) {
    return {message(answer(request))};
}

}  // namespace waferprov::ate_test
