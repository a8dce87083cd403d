#include "link_sockets.hpp"

#include <zmq.h>

#include <cstring>

namespace waferprov::host::svc {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr const char* kZapDomain = "waferprov";

std::string zmq_error() { return zmq_strerror(zmq_errno()); }

}  // namespace

LinkSockets::~LinkSockets() { close(std::chrono::milliseconds(0)); }

Status LinkSockets::open(const ServiceOptions& opt, std::string& endpoint) {
    ctx_ = zmq_ctx_new();
    if (ctx_ == nullptr) return make_error(ErrorCode::kInternal, "zmq_ctx_new failed");
    const int zero = 0, one = 1;
    if (!opt.insecure) {
        zap_ = zmq_socket(ctx_, ZMQ_REP);
        if (zap_ != nullptr) zmq_setsockopt(zap_, ZMQ_LINGER, &zero, sizeof zero);
        if (zap_ == nullptr || zmq_bind(zap_, kZapEndpoint) != 0)
            return make_error(ErrorCode::kInternal, "cannot start the ZAP handler: " + zmq_error());
    }
    router_ = zmq_socket(ctx_, ZMQ_ROUTER);
    if (router_ == nullptr)
        return make_error(ErrorCode::kInternal, "cannot create the ROUTER socket");
    const int64_t max_msg = static_cast<int64_t>(protocol::kMaxFrameSize);
    zmq_setsockopt(router_, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(router_, ZMQ_MAXMSGSIZE, &max_msg, sizeof max_msg);
    if (!opt.insecure) {
        zmq_setsockopt(router_, ZMQ_CURVE_SERVER, &one, sizeof one);
        if (zmq_setsockopt(router_, ZMQ_CURVE_SECRETKEY, opt.server_keys.secret_z85.data(),
                           opt.server_keys.secret_z85.size()) != 0)
            return make_error(ErrorCode::kInvalidArgument,
                              "the server's secret key: " + zmq_error());
        zmq_setsockopt(router_, ZMQ_ZAP_DOMAIN, kZapDomain, std::strlen(kZapDomain));
    }
    std::string bind = opt.bind;
    if (bind.size() > 2 && bind.compare(bind.size() - 2, 2, ":0") == 0)
        bind.replace(bind.size() - 1, 1, "*");  // ZeroMQ spells "any free port" as ':*'
    if (zmq_bind(router_, bind.c_str()) != 0)
        return make_error(ErrorCode::kIo, "cannot listen on " + opt.bind + ": " + zmq_error());
    char last[256] = {};
    size_t len = sizeof last;
    zmq_getsockopt(router_, ZMQ_LAST_ENDPOINT, last, &len);
    endpoint = last;
    return ok_status();
}

bool LinkSockets::close(std::chrono::milliseconds linger) {
    using Clock = std::chrono::steady_clock;
    const int ms = static_cast<int>(std::max<int64_t>(0, linger.count()));
    const auto start = Clock::now();
    if (router_ != nullptr) {
        zmq_setsockopt(router_, ZMQ_LINGER, &ms, sizeof ms);
        zmq_close(router_);
        router_ = nullptr;
    }
    if (zap_ != nullptr) zmq_close(zap_);
    zap_ = nullptr;
    if (ctx_ != nullptr) zmq_ctx_term(ctx_);  // returns when flushed or the linger ran out
    ctx_ = nullptr;
    return ms == 0 || Clock::now() - start < std::chrono::milliseconds(ms);
}

}  // namespace waferprov::host::svc
