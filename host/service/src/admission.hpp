// Admission: the ZeroMQ Authentication Protocol (RFC 27, ZAP 1.0) handler's decision. Under
// CurveZMQ, libzmq asks the handler about every connection before any frame of it is read; the
// service admits a CURVE public key that some served job lists, and nothing else. No sockets:
// the I/O loop reads the request's parts and sends the reply's.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "waferprov/bytes.hpp"

namespace waferprov::host::svc {

struct ZapDecision {
    std::vector<std::string> reply;  // the six reply parts: version, request id, status code,
                                     // status text, user id (the key, Z85), metadata
    bool admitted = false;
    std::string refusal;  // for the log when refused: what was refused and from where
};

// Decides a ZAP request (its parts as received). `admits(z85)`: whether a served job lists the
// CURVE key. Anything malformed — a version other than 1.0, a mechanism other than CURVE, a
// key that is not 32 bytes — is refused.
ZapDecision decide_zap(const std::vector<Bytes>& parts,
                       const std::function<bool(const std::string&)>& admits);

}  // namespace waferprov::host::svc
