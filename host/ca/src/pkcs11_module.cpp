#include "pkcs11_module.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

namespace waferprov::host::p11 {

std::string rv_text(ck_rv_t rv) {
    struct Name {
        ck_rv_t rv;
        const char* name;
    };
    static constexpr Name kNames[] = {
        {CKR_OK, "CKR_OK"},
        {CKR_CANCEL, "CKR_CANCEL"},
        {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
        {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"},
        {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
        {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
        {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
        {CKR_CANT_LOCK, "CKR_CANT_LOCK"},
        {CKR_ATTRIBUTE_READ_ONLY, "CKR_ATTRIBUTE_READ_ONLY"},
        {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"},
        {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
        {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
        {CKR_DATA_INVALID, "CKR_DATA_INVALID"},
        {CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"},
        {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
        {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"},
        {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
        {CKR_FUNCTION_CANCELED, "CKR_FUNCTION_CANCELED"},
        {CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED"},
        {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
        {CKR_KEY_SIZE_RANGE, "CKR_KEY_SIZE_RANGE"},
        {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
        {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
        {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
        {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
        {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
        {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
        {CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED"},
        {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
        {CKR_PIN_INVALID, "CKR_PIN_INVALID"},
        {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"},
        {CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED"},
        {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
        {CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"},
        {CKR_SESSION_COUNT, "CKR_SESSION_COUNT"},
        {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
        {CKR_SESSION_PARALLEL_NOT_SUPPORTED, "CKR_SESSION_PARALLEL_NOT_SUPPORTED"},
        {CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY"},
        {CKR_SESSION_EXISTS, "CKR_SESSION_EXISTS"},
        {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
        {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
        {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
        {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED"},
        {CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED"},
        {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"},
        {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
        {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"},
        {CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID"},
        {CKR_USER_ANOTHER_ALREADY_LOGGED_IN, "CKR_USER_ANOTHER_ALREADY_LOGGED_IN"},
        {CKR_DOMAIN_PARAMS_INVALID, "CKR_DOMAIN_PARAMS_INVALID"},
        {CKR_CURVE_NOT_SUPPORTED, "CKR_CURVE_NOT_SUPPORTED"},
        {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
        {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
        {CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
    };
    char hex[32];
    std::snprintf(hex, sizeof hex, " (0x%lx)", rv);
    for (const auto& n : kNames)
        if (n.rv == rv) return std::string(n.name) + hex;
    return std::string("CKR_?") + hex;
}

ByteSpan p256_ec_params() {
    // OBJECT IDENTIFIER 1.2.840.10045.3.1.7 (prime256v1 / secp256r1)
    static constexpr uint8_t kOid[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    return ByteSpan(kOid, sizeof kOid);
}

Result<SecureBytes> read_pin_env(const std::string& name) {
    if (name.empty())
        return make_error(ErrorCode::kInvalidArgument, "no PIN environment variable named");
    const char* v = std::getenv(name.c_str());
    if (v == nullptr || *v == '\0')
        return make_error(ErrorCode::kNotFound,
                          "the PKCS#11 user PIN is read from the environment "
                          "variable " +
                              name + ", which is not set");
    return SecureBytes(ByteSpan(reinterpret_cast<const uint8_t*>(v), std::strlen(v)));
}

namespace {

// One entry per module path. `live` is true from a successful load until the destructor has
// called C_Finalize: a load() that finds the weak_ptr expired while `live` is still set waits,
// or its C_Initialize would see CKR_CRYPTOKI_ALREADY_INITIALIZED just before the dying
// instance finalizes the module under it.
struct Entry {
    std::weak_ptr<Module> module;
    bool live = false;
};

// Recursive: a Module that fails half-way through load() is destroyed under the lock.
std::recursive_mutex& registry_mutex() {
    static std::recursive_mutex m;
    return m;
}

std::condition_variable_any& registry_cv() {
    static std::condition_variable_any cv;
    return cv;
}

std::map<std::string, Entry>& registry() {
    static std::map<std::string, Entry> r;
    return r;
}

std::string token_label_of(const struct ck_token_info& info) {
    std::string label(reinterpret_cast<const char*>(info.label), sizeof info.label);
    while (!label.empty() && (label.back() == ' ' || label.back() == '\0')) label.pop_back();
    return label;
}

}  // namespace

Result<std::shared_ptr<Module>> Module::load(const std::string& path) {
    std::unique_lock lock(registry_mutex());
    Entry& entry = registry()[path];
    if (auto existing = entry.module.lock()) return existing;
    registry_cv().wait(lock, [&] { return !entry.live; });

    std::shared_ptr<Module> m(new Module());
    m->path_ = path;
    // RTLD_NODELETE: some modules register atexit handlers or thread-locals; never unmap them.
    m->handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (m->handle_ == nullptr) {
        const char* why = ::dlerror();
        return make_error(ErrorCode::kNotFound, "cannot load PKCS#11 module '" + path + "': " +
                                                    (why != nullptr ? why : "dlopen failed"));
    }
    void* sym = ::dlsym(m->handle_, "C_GetFunctionList");
    if (sym == nullptr)
        return make_error(ErrorCode::kInvalidArgument,
                          "'" + path + "' is not a PKCS#11 module (no C_GetFunctionList)");
    CK_C_GetFunctionList get_list = nullptr;
    static_assert(sizeof get_list == sizeof sym);
    std::memcpy(&get_list, &sym, sizeof sym);  // object pointer -> function pointer, per POSIX
    ck_rv_t rv = get_list(&m->fn_);
    if (rv != CKR_OK || m->fn_ == nullptr) return m->error("C_GetFunctionList", rv);

    struct ck_c_initialize_args args {};
    args.flags = CKF_OS_LOCKING_OK;  // the module may use OS threads and locks: we sign in parallel
    rv = m->fn_->C_Initialize(&args);
    if (rv == CKR_OK) {
        m->finalize_ = true;
    } else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        return m->error("C_Initialize", rv);
    }
    entry.module = m;
    entry.live = true;
    m->registered_ = true;
    return m;
}

Module::~Module() {
    std::lock_guard lock(registry_mutex());
    if (finalize_ && fn_ != nullptr) fn_->C_Finalize(nullptr);
    if (handle_ != nullptr) ::dlclose(handle_);
    if (registered_) {
        registry()[path_].live = false;
        registry_cv().notify_all();
    }
}

Error Module::error(const std::string& what, ck_rv_t rv) const {
    ErrorCode code = ErrorCode::kCrypto;
    switch (rv) {
        case CKR_PIN_INCORRECT:
        case CKR_PIN_INVALID:
        case CKR_PIN_LEN_RANGE:
        case CKR_PIN_LOCKED:
        case CKR_PIN_EXPIRED:
        case CKR_ARGUMENTS_BAD:
        case CKR_TEMPLATE_INCONSISTENT:
        case CKR_TEMPLATE_INCOMPLETE:
        case CKR_ATTRIBUTE_VALUE_INVALID: code = ErrorCode::kInvalidArgument; break;
        case CKR_TOKEN_NOT_PRESENT:
        case CKR_SLOT_ID_INVALID: code = ErrorCode::kNotFound; break;
        case CKR_MECHANISM_INVALID:
        case CKR_FUNCTION_NOT_SUPPORTED:
        case CKR_CURVE_NOT_SUPPORTED: code = ErrorCode::kUnsupported; break;
        case CKR_SESSION_COUNT:
        case CKR_DEVICE_MEMORY:
        case CKR_HOST_MEMORY: code = ErrorCode::kResourceExhausted; break;
        default: break;
    }
    return make_error(code, what + " failed on PKCS#11 module '" + path_ + "': " + rv_text(rv));
}

Result<ck_slot_id_t> Module::find_token(const std::string& label) const {
    unsigned long n = 0;
    ck_rv_t rv = fn_->C_GetSlotList(kTrue, nullptr, &n);
    if (rv != CKR_OK) return error("C_GetSlotList", rv);
    std::vector<ck_slot_id_t> slots(n);
    rv = fn_->C_GetSlotList(kTrue, slots.data(), &n);
    if (rv != CKR_OK) return error("C_GetSlotList", rv);
    slots.resize(n);
    std::vector<ck_slot_id_t> matches;
    std::string present;
    for (ck_slot_id_t s : slots) {
        struct ck_token_info info {};
        if (fn_->C_GetTokenInfo(s, &info) != CKR_OK) continue;
        const std::string l = token_label_of(info);
        if (l == label && (info.flags & CKF_TOKEN_INITIALIZED) != 0) matches.push_back(s);
        if ((info.flags & CKF_TOKEN_INITIALIZED) != 0)
            present += (present.empty() ? "'" : ", '") + l + "'";
    }
    if (matches.empty())
        return make_error(ErrorCode::kNotFound,
                          "PKCS#11 module '" + path_ + "' has no token labelled '" + label +
                              "' (initialized tokens: " + (present.empty() ? "none" : present) +
                              ")");
    if (matches.size() > 1)
        return make_error(ErrorCode::kInvalidArgument, "PKCS#11 module '" + path_ + "' has " +
                                                           std::to_string(matches.size()) +
                                                           " tokens labelled '" + label + "'");
    return matches.front();
}

Result<Session> Session::open(std::shared_ptr<Module> module, ck_slot_id_t slot, bool read_write) {
    ck_session_handle_t h = CK_INVALID_HANDLE;
    const ck_flags_t flags = CKF_SERIAL_SESSION | (read_write ? CKF_RW_SESSION : 0);
    const ck_rv_t rv = module->fn()->C_OpenSession(slot, flags, nullptr, nullptr, &h);
    if (rv != CKR_OK) return module->error("C_OpenSession", rv);
    return Session(std::move(module), h);
}

Session::Session(Session&& o) noexcept : module_(std::move(o.module_)), handle_(o.handle_) {
    o.handle_ = CK_INVALID_HANDLE;
}

Session& Session::operator=(Session&& o) noexcept {
    if (this != &o) {
        close();
        module_ = std::move(o.module_);
        handle_ = o.handle_;
        o.handle_ = CK_INVALID_HANDLE;
    }
    return *this;
}

Session::~Session() { close(); }

void Session::close() noexcept {
    if (module_ && handle_ != CK_INVALID_HANDLE) module_->fn()->C_CloseSession(handle_);
    handle_ = CK_INVALID_HANDLE;
}

Status Session::login(const SecureBytes& pin, const std::string& token_label) {
    const ck_rv_t rv =
        module_->fn()->C_Login(handle_, CKU_USER, const_cast<uint8_t*>(pin.data()), pin.size());
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) return ok_status();
    return module_->error("C_Login (user) to token '" + token_label + "'", rv);
}

Result<std::vector<ck_object_handle_t>> Session::find(std::vector<struct ck_attribute> tmpl) {
    auto* fn = module_->fn();
    ck_rv_t rv = fn->C_FindObjectsInit(handle_, tmpl.data(), tmpl.size());
    if (rv != CKR_OK) return module_->error("C_FindObjectsInit", rv);
    std::vector<ck_object_handle_t> out;
    for (;;) {
        ck_object_handle_t batch[16];
        unsigned long n = 0;
        rv = fn->C_FindObjects(handle_, batch, 16, &n);
        if (rv != CKR_OK) {
            fn->C_FindObjectsFinal(handle_);
            return module_->error("C_FindObjects", rv);
        }
        out.insert(out.end(), batch, batch + n);
        if (n < 16) break;
    }
    rv = fn->C_FindObjectsFinal(handle_);
    if (rv != CKR_OK) return module_->error("C_FindObjectsFinal", rv);
    return out;
}

Result<Bytes> Session::attribute(ck_object_handle_t obj, ck_attribute_type_t type) {
    struct ck_attribute a = attr(type, nullptr, 0);
    ck_rv_t rv = module_->fn()->C_GetAttributeValue(handle_, obj, &a, 1);
    if (rv != CKR_OK) return module_->error("C_GetAttributeValue", rv);
    Bytes value(a.value_len);
    a.value = value.data();
    rv = module_->fn()->C_GetAttributeValue(handle_, obj, &a, 1);
    if (rv != CKR_OK) return module_->error("C_GetAttributeValue", rv);
    value.resize(a.value_len);
    return value;
}

Result<bool> Session::bool_attribute(ck_object_handle_t obj, ck_attribute_type_t type) {
    WP_ASSIGN_OR_RETURN(Bytes v, attribute(obj, type));
    if (v.size() != 1)
        return make_error(ErrorCode::kCrypto,
                          "PKCS#11 boolean attribute of " + std::to_string(v.size()) + " bytes");
    return v[0] != 0;
}

Result<ck_object_handle_t> Session::find_private_key(const std::string& key_label,
                                                     const std::string& token_label) {
    const ck_object_class_t cls = CKO_PRIVATE_KEY;
    const ck_key_type_t type = CKK_EC;
    WP_ASSIGN_OR_RETURN(
        auto keys, find({attr(CKA_CLASS, &cls, sizeof cls), attr(CKA_KEY_TYPE, &type, sizeof type),
                         attr(CKA_LABEL, key_label.data(), key_label.size())}));
    const std::string where =
        "token '" + token_label + "' on PKCS#11 module '" + module_->path() + "'";
    if (keys.empty())
        return make_error(ErrorCode::kNotFound,
                          "no EC private key labelled '" + key_label + "' in " + where);
    if (keys.size() > 1)
        return make_error(ErrorCode::kInvalidArgument, std::to_string(keys.size()) +
                                                           " EC private keys labelled '" +
                                                           key_label + "' in " + where);
    WP_ASSIGN_OR_RETURN(Bytes params, attribute(keys.front(), CKA_EC_PARAMS));
    const ByteSpan want = p256_ec_params();
    if (!std::equal(params.begin(), params.end(), want.begin(), want.end()))
        return make_error(ErrorCode::kInvalidArgument, "key '" + key_label + "' in " + where +
                                                           " is not on P-256 (CKA_EC_PARAMS " +
                                                           to_hex(params) + ")");
    return keys.front();
}

Result<Bytes> Session::sign_ecdsa(ck_object_handle_t key, ByteSpan digest, ck_rv_t* rv_out) {
    struct ck_mechanism mech {
        CKM_ECDSA, nullptr, 0
    };
    auto* fn = module_->fn();
    ck_rv_t rv = fn->C_SignInit(handle_, &mech, key);
    if (rv_out != nullptr) *rv_out = rv;
    if (rv != CKR_OK) return module_->error("C_SignInit (CKM_ECDSA)", rv);
    Bytes sig(64);
    unsigned long len = sig.size();
    rv = fn->C_Sign(handle_, const_cast<uint8_t*>(digest.data()), digest.size(), sig.data(), &len);
    if (rv_out != nullptr) *rv_out = rv;
    if (rv != CKR_OK) return module_->error("C_Sign (CKM_ECDSA)", rv);
    sig.resize(len);
    return sig;
}

Result<Bytes> ec_point_from_attribute(ByteSpan value) {
    if (value.size() == 65 && value[0] == 0x04) return Bytes(value.begin(), value.end());
    if (value.size() == 67 && value[0] == 0x04 && value[1] == 0x41 && value[2] == 0x04)
        return Bytes(value.begin() + 2, value.end());
    return make_error(ErrorCode::kInvalidArgument,
                      "CKA_EC_POINT is not an uncompressed P-256 point: " + to_hex(value));
}

}  // namespace waferprov::host::p11
