#include "token_key.hpp"

#include <vector>

#include "ca_internal.hpp"

namespace waferprov::host::ca_detail {

Result<TokenSession> open_ca_token(const HsmChainOptions& options) {
    if (options.token_label.empty() || options.key_label.empty() || options.module.empty())
        return make_error(ErrorCode::kInvalidArgument,
                          "an HSM key needs a module, a token label and a key label");
    const std::string where =
        "token '" + options.token_label + "' on PKCS#11 module '" + options.module.string() + "'";
    WP_ASSIGN_OR_RETURN(SecureBytes pin, p11::read_pin_env(options.pin_env));
    WP_ASSIGN_OR_RETURN(auto module, p11::Module::load(options.module.string()));
    WP_ASSIGN_OR_RETURN(ck_slot_id_t slot, module->find_token(options.token_label));
    WP_ASSIGN_OR_RETURN(p11::Session session,
                        p11::Session::open(module, slot, /*read_write=*/true));
    WP_RETURN_IF_ERROR(session.login(pin, options.token_label));
    return TokenSession{std::move(module), std::move(session), where};
}

Status refuse_existing_key(TokenSession& t, const HsmChainOptions& options) {
    const ck_object_class_t cls = CKO_PRIVATE_KEY;
    WP_ASSIGN_OR_RETURN(
        auto existing,
        t.session.find({p11::attr(CKA_CLASS, &cls, sizeof cls),
                        p11::attr(CKA_LABEL, options.key_label.data(), options.key_label.size())}));
    if (!existing.empty())
        return make_error(ErrorCode::kInvalidArgument,
                          t.where + " already holds a private key labelled '" + options.key_label +
                              "'; choose another key label");
    return ok_status();
}

Result<TokenKey> generate_ca_key(TokenSession& t, const HsmChainOptions& options) {
    const unsigned char yes = p11::kTrue, no = p11::kFalse;  // CK_BBOOL
    const ck_key_type_t key_type = CKK_EC;
    const ByteSpan params = p11::p256_ec_params();
    const std::string& label = options.key_label;
    WP_ASSIGN_OR_RETURN(Bytes id, random_serial());  // replaced by the SKI below
    std::vector<struct ck_attribute> pub_tmpl = {
        p11::attr(CKA_TOKEN, &yes, sizeof yes),
        p11::attr(CKA_PRIVATE, &no, sizeof no),
        p11::attr(CKA_KEY_TYPE, &key_type, sizeof key_type),
        p11::attr(CKA_EC_PARAMS, params.data(), params.size()),
        p11::attr(CKA_VERIFY, &yes, sizeof yes),
        p11::attr(CKA_ENCRYPT, &no, sizeof no),
        p11::attr(CKA_WRAP, &no, sizeof no),
        p11::attr(CKA_LABEL, label.data(), label.size()),
        p11::attr(CKA_ID, id.data(), id.size()),
    };
    std::vector<struct ck_attribute> priv_tmpl = {
        p11::attr(CKA_TOKEN, &yes, sizeof yes),
        p11::attr(CKA_PRIVATE, &yes, sizeof yes),
        p11::attr(CKA_KEY_TYPE, &key_type, sizeof key_type),
        p11::attr(CKA_SENSITIVE, &yes, sizeof yes),
        p11::attr(CKA_EXTRACTABLE, &no, sizeof no),
        p11::attr(CKA_SIGN, &yes, sizeof yes),
        p11::attr(CKA_DERIVE, &no, sizeof no),
        p11::attr(CKA_DECRYPT, &no, sizeof no),
        p11::attr(CKA_UNWRAP, &no, sizeof no),
        p11::attr(CKA_LABEL, label.data(), label.size()),
        p11::attr(CKA_ID, id.data(), id.size()),
    };
    struct ck_mechanism mech {
        CKM_EC_KEY_PAIR_GEN, nullptr, 0
    };
    TokenKey key;
    const ck_rv_t rv = t.module->fn()->C_GenerateKeyPair(t.session.handle(), &mech, pub_tmpl.data(),
                                                         pub_tmpl.size(), priv_tmpl.data(),
                                                         priv_tmpl.size(), &key.pub, &key.priv);
    if (rv != CKR_OK) return t.module->error("C_GenerateKeyPair (P-256) in " + t.where, rv);

    auto finish = [&]() -> Status {
        WP_ASSIGN_OR_RETURN(Bytes ec_point_attr, t.session.attribute(key.pub, CKA_EC_POINT));
        WP_ASSIGN_OR_RETURN(Bytes point, p11::ec_point_from_attribute(ec_point_attr));
        WP_ASSIGN_OR_RETURN(key.public_key, p256_public_key(point));
        const auto ski = sha1(point);
        struct ck_attribute id_attr = p11::attr(CKA_ID, ski.data(), ski.size());
        for (ck_object_handle_t h : {key.pub, key.priv}) {
            const ck_rv_t r =
                t.module->fn()->C_SetAttributeValue(t.session.handle(), h, &id_attr, 1);
            if (r != CKR_OK)
                return t.module->error("C_SetAttributeValue (CKA_ID) in " + t.where, r);
        }
        return ok_status();
    };
    if (Status st = finish(); !st.ok()) {
        destroy_key(t, key);
        return st.error();
    }
    return key;
}

void destroy_key(TokenSession& t, const TokenKey& key) noexcept {
    if (key.priv != CK_INVALID_HANDLE)
        t.module->fn()->C_DestroyObject(t.session.handle(), key.priv);
    if (key.pub != CK_INVALID_HANDLE) t.module->fn()->C_DestroyObject(t.session.handle(), key.pub);
}

}  // namespace waferprov::host::ca_detail
