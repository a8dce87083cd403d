// A thin PKCS#11 layer over a dlopen()ed module: process-wide module sharing, sessions,
// login, object search and attributes, CKR_ codes as text. Internal to waferprov::ca (tests
// use it to inspect tokens).
//
// p11-kit's header in its GNU flavour: lower-case types (ck_rv_t, struct ck_attribute {type,
// value, value_len}) and no macros renaming common identifiers such as `value` or `count`
// (the compatibility flavour #defines those, which would break Result<T>::value()).
#pragma once

#define CRYPTOKI_GNU 1
#include <p11-kit/pkcs11.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "waferprov/bytes.hpp"
#include "waferprov/result.hpp"

namespace waferprov::host::p11 {

// CK_BBOOL values (the GNU flavour of the header has no CK_TRUE/CK_FALSE).
inline constexpr unsigned char kTrue = 1;
inline constexpr unsigned char kFalse = 0;

// "CKR_PIN_INCORRECT (0xa0)".
std::string rv_text(ck_rv_t rv);

// DER of the P-256 curve OID, the CKA_EC_PARAMS of our keys.
ByteSpan p256_ec_params();

// Reads the user PIN from the environment variable `name`.
Result<SecureBytes> read_pin_env(const std::string& name);

class Module {
public:
    // Loads `path` once per process: later calls for the same path share the instance while it
    // lives. C_Initialize with CKF_OS_LOCKING_OK; C_Finalize when the last user releases it
    // (unless someone else in the process had initialized the module already).
    static Result<std::shared_ptr<Module>> load(const std::string& path);
    ~Module();
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    struct ck_function_list* fn() const {
        return fn_;
    }
    const std::string& path() const { return path_; }

    // The slot whose token label (blank-padded) equals `label`. Lists the labels present when
    // none matches, and refuses an ambiguous label.
    Result<ck_slot_id_t> find_token(const std::string& label) const;

    // "<what> failed on PKCS#11 module '<path>': CKR_..." with kCrypto (kNotFound etc. by code).
    Error error(const std::string& what, ck_rv_t rv) const;

private:
    Module() = default;
    void* handle_ = nullptr;
    struct ck_function_list* fn_ = nullptr;
    std::string path_;
    bool finalize_ = false;
    bool registered_ = false;  // in the process-wide registry (see load())
};

// An open session, closed on destruction. Move-only.
class Session {
public:
    static Result<Session> open(std::shared_ptr<Module> module, ck_slot_id_t slot, bool read_write);
    Session(Session&& o) noexcept;
    Session& operator=(Session&& o) noexcept;
    ~Session();

    ck_session_handle_t handle() const { return handle_; }
    const Module& module() const { return *module_; }

    // C_Login as CKU_USER; CKR_USER_ALREADY_LOGGED_IN (another session of this process holds
    // the login) counts as success.
    Status login(const SecureBytes& pin, const std::string& token_label);

    Result<std::vector<ck_object_handle_t>> find(std::vector<struct ck_attribute> tmpl);
    Result<Bytes> attribute(ck_object_handle_t obj, ck_attribute_type_t type);
    Result<bool> bool_attribute(ck_object_handle_t obj, ck_attribute_type_t type);

    // The private EC key labelled `key_label` (exactly one must exist).
    Result<ck_object_handle_t> find_private_key(const std::string& key_label,
                                                const std::string& token_label);
    // CKM_ECDSA over a 32-byte digest: raw r || s. `rv_out` (optional) receives the last CKR_.
    Result<Bytes> sign_ecdsa(ck_object_handle_t key, ByteSpan digest, ck_rv_t* rv_out = nullptr);

private:
    Session(std::shared_ptr<Module> module, ck_session_handle_t h)
        : module_(std::move(module)), handle_(h) {}
    void close() noexcept;
    std::shared_ptr<Module> module_;
    ck_session_handle_t handle_ = CK_INVALID_HANDLE;
};

// The 65-byte uncompressed point from a CKA_EC_POINT value (a DER OCTET STRING per the
// standard; some modules return the bare point).
Result<Bytes> ec_point_from_attribute(ByteSpan value);

// Helpers for templates.
inline struct ck_attribute attr(ck_attribute_type_t type, const void* value, size_t len) {
    return {type, const_cast<void*>(value), len};
}

}  // namespace waferprov::host::p11
