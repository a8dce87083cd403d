#include "admission.hpp"

#include <zmq.h>

#include "service_log.hpp"

namespace waferprov::host::svc {

ZapDecision decide_zap(const std::vector<Bytes>& parts,
                       const std::function<bool(const std::string&)>& admits) {
    auto text = [&](size_t i) {
        return i < parts.size() ? std::string(parts[i].begin(), parts[i].end()) : std::string();
    };
    ZapDecision d;
    std::string user;
    const std::string mechanism = text(5);
    if (parts.size() >= 7 && text(0) == "1.0" && mechanism == "CURVE" && parts[6].size() == 32) {
        char z85[41] = {};
        zmq_z85_encode(z85, parts[6].data(), 32);
        if (admits(z85)) {
            d.admitted = true;
            user = z85;
        } else {
            d.refusal = "CURVE key " + std::string(z85) + " from " + loggable(text(3)) +
                        " is not admitted by any served job";
        }
    } else {
        d.refusal = "mechanism '" + loggable(mechanism) + "' from " + loggable(text(3));
    }
    d.reply = {"1.0", text(1), d.admitted ? "200" : "400", d.admitted ? "OK" : "not admitted",
               user,  ""};
    return d;
}

}  // namespace waferprov::host::svc
