#include "waferprov/host/token_anchor.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <sstream>

#include "pkcs11_module.hpp"

namespace waferprov::host {
namespace {

constexpr std::string_view kPrefix = "waferprov-anchor 1 ";

std::string encode(const AnchoredHead& h) {
    return std::string(kPrefix) + std::to_string(h.seq) + " " + to_hex(h.hash) + " " +
           std::to_string(h.used);
}

Result<AnchoredHead> decode(const Bytes& value, const std::string& where) {
    const std::string text(value.begin(), value.end());
    auto bad = [&]() -> Error {
        return make_error(
            ErrorCode::kIntegrityFailure,
            where + " does not hold a waferprov anchor ('" + text.substr(0, 80) + "')");
    };
    if (text.compare(0, kPrefix.size(), kPrefix) != 0) return bad();
    std::istringstream in(text.substr(kPrefix.size()));
    AnchoredHead h;
    std::string hash, rest;
    if (!(in >> h.seq >> hash >> h.used) || (in >> rest)) return bad();
    auto bytes = from_hex_fixed<32>(hash, "anchor hash");
    if (!bytes.ok()) return bad();
    h.hash = *bytes;
    return h;
}

class TokenAnchor final : public HeadAnchor {
public:
    TokenAnchor(std::shared_ptr<p11::Module> module, p11::Session session, std::string label,
                std::string where)
        : module_(std::move(module)),
          session_(std::move(session)),
          label_(std::move(label)),
          where_(std::move(where)) {}

    Result<std::optional<AnchoredHead>> read() override {
        WP_ASSIGN_OR_RETURN(auto held, find());
        if (held.empty()) return std::optional<AnchoredHead>();
        return std::optional<AnchoredHead>(newest(held).second);
    }

    Status advance(const AnchoredHead& head) override {
        WP_ASSIGN_OR_RETURN(auto held, find());
        if (!held.empty() && head.seq <= newest(held).second.seq) return ok_status();
        // SoftHSM2 (like the standard's note on CKO_DATA) keeps CKA_VALUE read-only once the
        // object exists, so a new object replaces the old one: created first, then the old one
        // destroyed, so a crash in between leaves two and read() takes the newest.
        ck_object_class_t cls = CKO_DATA;
        const unsigned char yes = p11::kTrue;  // CK_BBOOL
        const std::string app = "waferprov";
        const std::string value = encode(head);
        std::vector<ck_attribute> tmpl = {
            p11::attr(CKA_CLASS, &cls, sizeof cls),
            p11::attr(CKA_TOKEN, &yes, sizeof yes),
            p11::attr(CKA_PRIVATE, &yes, sizeof yes),
            p11::attr(CKA_LABEL, label_.data(), label_.size()),
            p11::attr(CKA_APPLICATION, app.data(), app.size()),
            p11::attr(CKA_VALUE, value.data(), value.size()),
        };
        ck_object_handle_t h = CK_INVALID_HANDLE;
        const ck_rv_t rv =
            module_->fn()->C_CreateObject(session_.handle(), tmpl.data(), tmpl.size(), &h);
        if (rv != CKR_OK) return module_->error("C_CreateObject of " + describe(), rv);
        for (const auto& [old, _] : held) {
            // A failure leaves an older copy, which read() ignores and the next advance retries.
            (void)module_->fn()->C_DestroyObject(session_.handle(), old);
        }
        return ok_status();
    }

    std::string describe() const override { return where_ + " object '" + label_ + "'"; }

private:
    using Held = std::vector<std::pair<ck_object_handle_t, AnchoredHead>>;

    // Every object with the job's label and the head it holds.
    Result<Held> find() {
        ck_object_class_t cls = CKO_DATA;
        WP_ASSIGN_OR_RETURN(auto found,
                            session_.find({p11::attr(CKA_CLASS, &cls, sizeof cls),
                                           p11::attr(CKA_LABEL, label_.data(), label_.size())}));
        Held out;
        for (const auto obj : found) {
            WP_ASSIGN_OR_RETURN(Bytes value, session_.attribute(obj, CKA_VALUE));
            WP_ASSIGN_OR_RETURN(const AnchoredHead h, decode(value, describe()));
            out.emplace_back(obj, h);
        }
        return out;
    }
    static const std::pair<ck_object_handle_t, AnchoredHead>& newest(const Held& held) {
        return *std::max_element(held.begin(), held.end(), [](const auto& a, const auto& b) {
            return a.second.seq < b.second.seq;
        });
    }

    std::shared_ptr<p11::Module> module_;
    p11::Session session_;
    std::string label_;
    std::string where_;
};

}  // namespace

Result<std::shared_ptr<HeadAnchor>> open_token_anchor(const TokenAnchorConfig& config) {
    WP_ASSIGN_OR_RETURN(SecureBytes pin, p11::read_pin_env(config.pin_env));
    WP_ASSIGN_OR_RETURN(auto module, p11::Module::load(config.module.string()));
    WP_ASSIGN_OR_RETURN(const auto slot, module->find_token(config.token_label));
    WP_ASSIGN_OR_RETURN(p11::Session s, p11::Session::open(module, slot, true));
    WP_RETURN_IF_ERROR(s.login(pin, config.token_label));
    std::string where = "token '" + config.token_label + "'";
    return std::shared_ptr<HeadAnchor>(std::make_shared<TokenAnchor>(
        std::move(module), std::move(s), "waferprov-anchor:" + config.job_id, std::move(where)));
}

}  // namespace waferprov::host
