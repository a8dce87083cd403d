// The C ABI of waferprov_ate.h: argument checks, conversion between the C structs and the
// codec's messages, and the exception barrier. Protocol logic lives in session.cpp.
//
// Every exported function is noexcept in effect: its body runs inside guarded(), which turns
// std::bad_alloc into WP_ATE_E_NO_MEMORY and anything else into WP_ATE_E_INTERNAL.
#include "waferprov_ate.h"

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>  // GetComputerNameExA
#else
#include <unistd.h>  // gethostname
#endif

#include <algorithm>
#include <array>
#include <bitset>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>

#include "session.hpp"
#include "waferprov/host/curve_keys.hpp"
#include "waferprov/host/protocol.hpp"
#include "waferprov/possession.hpp"

#ifndef WAFERPROV_ATE_VERSION
#define WAFERPROV_ATE_VERSION "0"
#endif

// The handle. One connection, one session, one mutex that serializes every call on it.
struct wp_ate {
    mutable std::mutex mutex;
    waferprov::ate::Session session;
};

namespace {

namespace proto = waferprov::host::protocol;
using waferprov::ate::Session;

static_assert(WP_ATE_UID_SIZE == waferprov::wpid1::kUidSize);
static_assert(WP_ATE_WRAPPED_KEY_SIZE == waferprov::wpid1::kWrappedKeySize);
static_assert(WP_ATE_MAX_CERTIFICATE == proto::kMaxCertificateSize);
static_assert(WP_ATE_CHAIN_ID_SIZE == proto::kChainIdSize);
static_assert(WP_ATE_MAX_TEXT == proto::kMaxStringSize + 1);
static_assert(WP_ATE_MAX_SITES == proto::kMaxSites);
static_assert(WP_ATE_KEY_Z85_LENGTH == proto::kCurveKeyZ85Size);

// The calling thread's last wp_ate_open / wp_ate_read_key_file failure (and of calls made with
// a NULL handle), for wp_ate_last_error(NULL).
thread_local std::string t_last_error;

// Stores `text` where wp_ate_last_error will find it; never throws (on failure the old text
// stays, which is the best we can do without memory).
void note(wp_ate* handle, const char* text) noexcept {
    try {
        if (handle == nullptr) {
            t_last_error = text;
        } else {
            std::lock_guard lock(handle->mutex);
            (void)handle->session.fail(0, text);
        }
    } catch (...) {}
}

int thread_fail(int status, std::string text) {
    t_last_error = std::move(text);
    return status;
}

// Runs `body` with the exception barrier of the C ABI. `handle` (may be NULL) receives the
// text of an exception.
template <class Body>
int guarded(wp_ate* handle, Body&& body) noexcept {
    try {
        return body();
    } catch (const std::bad_alloc&) {
        note(handle, "out of memory");
        return WP_ATE_E_NO_MEMORY;
    } catch (const std::exception& e) {
        note(handle, e.what());
        return WP_ATE_E_INTERNAL;
    } catch (...) {
        note(handle, "unknown exception");
        return WP_ATE_E_INTERNAL;
    }
}

// A C string argument that travels as a protocol `str`: at most 255 bytes of well-formed UTF-8
// (a C string cannot hold a NUL). "" when it is fine, else why not, naming the argument.
std::string read_text(const char* s, const std::string& name, bool non_empty, std::string& out) {
    if (s == nullptr) return name + " is NULL";
    const size_t n = strnlen(s, proto::kMaxStringSize + 1);
    if (n > proto::kMaxStringSize) return name + " is longer than 255 bytes";
    if (non_empty && n == 0) return name + " is empty";
    out.assign(s, n);
    if (!proto::valid_text(out)) return name + " is not valid UTF-8";
    return {};
}

std::string this_host_name() {
    std::array<char, 256> buf{};
#if defined(_WIN32)
    DWORD size = static_cast<DWORD>(buf.size() - 1);
    if (GetComputerNameExA(ComputerNameDnsHostname, buf.data(), &size) == 0) return {};
#else
    if (gethostname(buf.data(), buf.size() - 1) != 0) return {};
#endif
    std::string name(buf.data());
    if (name.size() > proto::kMaxStringSize || !proto::valid_text(name)) return {};
    return name;
}

void copy_text(char (&dst)[WP_ATE_MAX_TEXT], const std::string& src) {
    const size_t n = std::min(src.size(), sizeof dst - 1);  // the codec caps it at 255 anyway
    std::memcpy(dst, src.data(), n);
    dst[n] = '\0';
}

// Checks `count` against the session's limit and that site numbers are distinct.
template <class Entry>
std::string check_sites(const Entry* entries, size_t count, int max_sites, const char* what) {
    if (count == 0 || count > static_cast<size_t>(max_sites))
        return std::string("count is ") + std::to_string(count) + ", the host takes 1.." +
               std::to_string(max_sites) + " sites per " + what;
    auto seen = std::make_unique<std::bitset<65536>>();
    for (size_t i = 0; i < count; ++i) {
        if (seen->test(entries[i].site))
            return std::string("site ") + std::to_string(entries[i].site) + " appears twice";
        seen->set(entries[i].site);
    }
    return {};
}

// Printable ASCII, the host's rule for ids (handler, carrier).
bool printable(const std::string& v) {
    for (char ch : v)
        if (ch < 0x20 || ch > 0x7e) return false;
    return true;
}

std::string index_name(const char* array, size_t i, const char* field) {
    return std::string(array) + "[" + std::to_string(i) + "]." + field;
}

// A die's or a part's identity into the caller's struct (wp_ate_site_identity,
// wp_ate_part_answer: the same field names).
template <class Out>
void copy_identity(Out& o, const proto::SiteIdentity& id) {
    std::memcpy(o.uid, id.uid.data(), sizeof o.uid);
    o.key_usage = static_cast<uint8_t>(id.key.usage);
    o.key_algorithm = static_cast<uint8_t>(id.key.algorithm);
    o.key_version = id.key.version;
    std::memcpy(o.wrapped_key, id.key.wrapped.data(), sizeof o.wrapped_key);
    o.certificate_length = id.certificate_der.size();  // <= 3072: the codec's limit
    std::memcpy(o.certificate, id.certificate_der.data(), o.certificate_length);
    std::memcpy(o.chain_id, id.chain_id.data(), sizeof o.chain_id);
}

// The fields RESULTS and FINAL_RESULTS share (site, UID, outcome, bin) from results[i]
// (wp_ate_site_result or wp_ate_part_result); the problem, or "".
template <class In>
std::string read_result(const In& in, size_t i, proto::SiteResult& r) {
    r.site = in.site;
    std::memcpy(r.uid.data(), in.uid, r.uid.size());
    if (in.outcome != WP_ATE_PROGRAMMED && in.outcome != WP_ATE_FAILED)
        return index_name("results", i, "outcome") + " is " + std::to_string(in.outcome) +
               ", expected WP_ATE_PROGRAMMED (1) or WP_ATE_FAILED (2)";
    r.outcome = static_cast<proto::DieOutcome>(in.outcome);
    if (in.bin != nullptr) return read_text(in.bin, index_name("results", i, "bin"), false, r.bin);
    return {};
}

// The host's acknowledgements, in the caller's order.
void copy_acks(const proto::ResultsAck& answer, const std::vector<size_t>& order, size_t count,
               wp_ate_result_ack* acks) {
    for (size_t i = 0; i < count; ++i) {
        const proto::ResultAck& a = answer.sites[order[i]];
        wp_ate_result_ack& o = acks[i];
        std::memset(&o, 0, sizeof o);
        o.site = a.site;
        std::memcpy(o.uid, a.uid.data(), sizeof o.uid);
        o.status = static_cast<int>(a.status);
        copy_text(o.text, a.text);
    }
}

}  // namespace

extern "C" {

const char* wp_ate_strerror(int status) {
    switch (status) {
        case WP_ATE_OK: return "OK: success";
        case WP_ATE_E_INVALID_ARGUMENT:
            return "E_INVALID_ARGUMENT: an argument is NULL, out of range or not valid text";
        case WP_ATE_E_TIMEOUT:
            return "E_TIMEOUT: no answer from the host within the timeout, after every retry";
        case WP_ATE_E_CONNECT: return "E_CONNECT: the endpoint could not be set up";
        case WP_ATE_E_PROTOCOL:
            return "E_PROTOCOL: the host's answer is malformed or does not match the request";
        case WP_ATE_E_NO_MEMORY: return "E_NO_MEMORY: out of memory";
        case WP_ATE_E_IO: return "E_IO: a key file could not be read or has no key in it";
        case WP_ATE_E_CLOSED: return "E_CLOSED: the handle's session was closed";
        case WP_ATE_E_INTERNAL: return "E_INTERNAL: the library failed unexpectedly";
        case WP_ATE_S_REISSUED:
            return "REISSUED: retest, the die's existing identity is delivered again";
        case WP_ATE_S_BAD_FRAME: return "BAD_FRAME: the host could not parse the frame";
        case WP_ATE_S_TRUNCATED: return "TRUNCATED: the frame or a field ends early";
        case WP_ATE_S_OVERSIZED: return "OVERSIZED: the frame is beyond the size limit";
        case WP_ATE_S_UNKNOWN_KIND: return "UNKNOWN_KIND: message kind not defined";
        case WP_ATE_S_UNSUPPORTED_VERSION:
            return "UNSUPPORTED_VERSION: the host does not speak this protocol version";
        case WP_ATE_S_BAD_FIELD: return "BAD_FIELD: a value is out of range or not allowed";
        case WP_ATE_S_UNEXPECTED_KIND:
            return "UNEXPECTED_KIND: the host does not take this message";
        case WP_ATE_S_NOT_ADMITTED:
            return "NOT_ADMITTED: the tester id is unknown or not the one bound to this key";
        case WP_ATE_S_UNKNOWN_JOB: return "UNKNOWN_JOB: the host does not serve this job";
        case WP_ATE_S_NO_SESSION: return "NO_SESSION: the host has no such session";
        case WP_ATE_S_BUSY: return "BUSY: the host is overloaded; retry the same request later";
        case WP_ATE_S_SHUTTING_DOWN: return "SHUTTING_DOWN: the host is stopping";
        case WP_ATE_S_SEQUENCE_REUSED:
            return "SEQUENCE_REUSED: a sequence was repeated with different content";
        case WP_ATE_S_QUOTA_EXHAUSTED: return "QUOTA_EXHAUSTED: the job's quota is used up";
        case WP_ATE_S_CONFLICT: return "CONFLICT: UID or location clash, or a VOID die retested";
        case WP_ATE_S_UNKNOWN_UID: return "UNKNOWN_UID: no identity has this UID";
        case WP_ATE_S_NOT_DELIVERED:
            return "NOT_DELIVERED: a result for an identity that was never delivered";
        case WP_ATE_S_DUPLICATE_RESULT: return "DUPLICATE_RESULT: the die already has a result";
        case WP_ATE_S_VOIDED: return "VOIDED: the identity is VOID";
        case WP_ATE_S_NO_UID: return "NO_UID: the job takes UIDs from the dies and none was sent";
        case WP_ATE_S_ALREADY_PROGRAMMED:
            return "ALREADY_PROGRAMMED: the die is already PROGRAMMED";
        case WP_ATE_S_NOT_ON_MAP: return "NOT_ON_MAP: (x, y) is not a die of the wafer's map";
        case WP_ATE_S_DELIVERY_CAP:
            return "DELIVERY_CAP: the die was delivered as often as the job allows";
        case WP_ATE_S_VERIFY:
            return "VERIFY: the part was provisioned at sort; it must sign the challenge";
        case WP_ATE_S_NOT_PROVISIONED:
            return "NOT_PROVISIONED: the job never provisioned this UID and cannot now";
        case WP_ATE_S_SIGNATURE_MISMATCH:
            return "SIGNATURE_MISMATCH: the part's signature does not verify (swapped part?)";
        case WP_ATE_S_CHALLENGE_REFUSED:
            return "CHALLENGE_REFUSED: no open challenge of this session for the part";
        case WP_ATE_S_INTERNAL: return "INTERNAL: the host failed; nothing was half-written";
        default: return "unknown status";
    }
}

const char* wp_ate_version(void) { return WAFERPROV_ATE_VERSION; }

int wp_ate_abi_version(void) { return WP_ATE_ABI_VERSION; }

int wp_ate_read_key_file(const char* path, char public_z85[41], char secret_z85[41]) {
    return guarded(nullptr, [&]() -> int {
        if (public_z85 != nullptr) public_z85[0] = '\0';
        if (secret_z85 != nullptr) secret_z85[0] = '\0';
        if (path == nullptr) return thread_fail(WP_ATE_E_INVALID_ARGUMENT, "path is NULL");
        if (public_z85 == nullptr)
            return thread_fail(WP_ATE_E_INVALID_ARGUMENT, "public_z85 is NULL");
        // Checks the format, the keys' Z85 and that a secret file is private (mode 0600).
        auto keys = proto::read_curve_key_file(path, secret_z85 != nullptr);
        if (!keys.ok()) return thread_fail(WP_ATE_E_IO, keys.error().message);
        std::memcpy(public_z85, keys->public_z85.data(), WP_ATE_KEY_Z85_LENGTH);
        public_z85[WP_ATE_KEY_Z85_LENGTH] = '\0';
        if (secret_z85 != nullptr) {
            std::memcpy(secret_z85, keys->secret_z85.data(), WP_ATE_KEY_Z85_LENGTH);
            secret_z85[WP_ATE_KEY_Z85_LENGTH] = '\0';
        }
        return WP_ATE_OK;  // ~CurveKeyPair wipes its copy of the secret
    });
}

int wp_ate_open(const wp_ate_config* config, wp_ate** out) {
    return guarded(nullptr, [&]() -> int {
        if (out == nullptr) return thread_fail(WP_ATE_E_INVALID_ARGUMENT, "out is NULL");
        *out = nullptr;
        if (config == nullptr) return thread_fail(WP_ATE_E_INVALID_ARGUMENT, "config is NULL");
        if (config->struct_size != sizeof(wp_ate_config))
            return thread_fail(
                WP_ATE_E_INVALID_ARGUMENT,
                "config->struct_size is " + std::to_string(config->struct_size) +
                    ", expected sizeof(wp_ate_config) = " + std::to_string(sizeof(wp_ate_config)));
        waferprov::ate::SessionConfig sc;
        if (config->endpoint == nullptr || config->endpoint[0] == '\0')
            return thread_fail(WP_ATE_E_INVALID_ARGUMENT, "config->endpoint is NULL or empty");
        sc.link.endpoint = config->endpoint;
        if (config->server_public_key != nullptr) {
            const struct {
                const char* value;
                const char* name;
                std::string* dst;
            } keys[] = {
                {config->server_public_key, "config->server_public_key",
                 &sc.link.server_public_key},
                {config->client_public_key, "config->client_public_key",
                 &sc.link.client_public_key},
                {config->client_secret_key, "config->client_secret_key",
                 &sc.link.client_secret_key},
            };
            for (const auto& k : keys) {
                if (k.value == nullptr)
                    return thread_fail(
                        WP_ATE_E_INVALID_ARGUMENT,
                        std::string(k.name) + " is NULL (CURVE needs all three keys)");
                const size_t n = strnlen(k.value, WP_ATE_KEY_Z85_LENGTH + 1);
                if (!proto::valid_curve_key(std::string_view(k.value, n)))
                    return thread_fail(WP_ATE_E_INVALID_ARGUMENT,
                                       std::string(k.name) + " is not 40 characters of Z85");
                k.dst->assign(k.value, n);
            }
        }
        std::string why;
        if (why = read_text(config->tester_id, "config->tester_id", true, sc.tester_id);
            !why.empty())
            return thread_fail(WP_ATE_E_INVALID_ARGUMENT, why);
        if (why = read_text(config->job_id, "config->job_id", true, sc.job_id); !why.empty())
            return thread_fail(WP_ATE_E_INVALID_ARGUMENT, why);
        if (config->node_name == nullptr) {
            sc.node_name = this_host_name();
        } else if (why = read_text(config->node_name, "config->node_name", false, sc.node_name);
                   !why.empty()) {
            return thread_fail(WP_ATE_E_INVALID_ARGUMENT, why);
        }
        sc.timeout = std::chrono::milliseconds(config->timeout_ms > 0 ? config->timeout_ms : 5000);
        sc.retries = config->retries > 0 ? config->retries : 0;

        auto handle = std::make_unique<wp_ate>();
        const int rc = handle->session.open(std::move(sc));
        if (rc != WP_ATE_OK) return thread_fail(rc, handle->session.last_error());
        *out = handle.release();
        return WP_ATE_OK;
    });
}

void wp_ate_close(wp_ate* handle) {
    if (handle == nullptr) return;
    try {
        std::lock_guard lock(handle->mutex);
        handle->session.close();
    } catch (...) {  // the BYE is a courtesy; the handle goes regardless
    }
    delete handle;  // linger 0: closing the socket and the context never blocks
}

const char* wp_ate_last_error(const wp_ate* handle) {
    if (handle == nullptr) return t_last_error.c_str();
    try {
        std::lock_guard lock(handle->mutex);
        return handle->session.last_error().c_str();
    } catch (...) {
        return "";
    }
}

uint64_t wp_ate_session_id(const wp_ate* handle) {
    if (handle == nullptr) return 0;
    try {
        std::lock_guard lock(handle->mutex);
        return handle->session.session_id();
    } catch (...) {
        return 0;
    }
}

int wp_ate_max_sites(const wp_ate* handle) {
    if (handle == nullptr) return 0;
    try {
        std::lock_guard lock(handle->mutex);
        return handle->session.max_sites();
    } catch (...) {
        return 0;
    }
}

namespace {

// wp_ate_touchdown, and with `wafer_id` wp_ate_touchdown_wafer.
int touchdown(wp_ate* handle, const char* lot, uint16_t wafer, bool wafer_id,
              const char* substrate_id, uint32_t sequence, const wp_ate_site_request* sites,
              size_t count, wp_ate_site_identity* identities) {
    if (handle == nullptr) return thread_fail(WP_ATE_E_INVALID_ARGUMENT, "handle is NULL");
    return guarded(handle, [&]() -> int {
        std::lock_guard lock(handle->mutex);
        Session& s = handle->session;
        proto::Touchdown request;
        if (std::string why = read_text(lot, "lot", true, request.lot); !why.empty())
            return s.fail(WP_ATE_E_INVALID_ARGUMENT, why);
        if (wafer_id) {
            if (std::string why =
                    read_text(substrate_id, "substrate_id", true, request.substrate_id);
                !why.empty())
                return s.fail(WP_ATE_E_INVALID_ARGUMENT, why);
            for (char ch : request.substrate_id)
                if (ch < 0x20 || ch > 0x7e)
                    return s.fail(WP_ATE_E_INVALID_ARGUMENT, "substrate_id is not printable ASCII");
            if (s.agreed_minor() < 1)
                return s.fail(WP_ATE_E_PROTOCOL,
                              "the host agreed on protocol 1.0, which has no substrate id "
                              "(TOUCHDOWN_WAFER is 1.1): update the host, or use "
                              "wp_ate_touchdown");
        }
        if (sites == nullptr) return s.fail(WP_ATE_E_INVALID_ARGUMENT, "sites is NULL");
        if (identities == nullptr) return s.fail(WP_ATE_E_INVALID_ARGUMENT, "identities is NULL");
        if (std::string why = check_sites(sites, count, s.max_sites(), "touchdown"); !why.empty())
            return s.fail(WP_ATE_E_INVALID_ARGUMENT, why);
        request.wafer = wafer;
        request.sequence = sequence;
        request.sites.resize(count);
        for (size_t i = 0; i < count; ++i) {
            const wp_ate_site_request& in = sites[i];
            proto::TouchdownSite& site = request.sites[i];
            site.site = in.site;
            site.x = in.x;
            site.y = in.y;
            if (in.has_uid == 1) {
                waferprov::wpid1::Uid uid{};
                std::memcpy(uid.data(), in.uid, uid.size());
                site.uid = uid;
            } else if (in.has_uid != 0) {
                return s.fail(WP_ATE_E_INVALID_ARGUMENT, index_name("sites", i, "has_uid") +
                                                             " is " + std::to_string(in.has_uid) +
                                                             ", expected 0 or 1");
            }
        }

        proto::TouchdownResult answer;
        std::vector<size_t> order;
        const int rc = s.touchdown(request, answer, order);
        if (rc != WP_ATE_OK) return rc;
        for (size_t i = 0; i < count; ++i) {
            const proto::SiteResponse& r = answer.sites[order[i]];
            wp_ate_site_identity& o = identities[i];
            std::memset(&o, 0, sizeof o);
            o.site = r.site;
            o.status = static_cast<int>(r.status);
            copy_text(o.text, r.text);
            if (r.identity) copy_identity(o, *r.identity);
        }
        return WP_ATE_OK;
    });
}

}  // namespace

int wp_ate_touchdown(wp_ate* handle, const char* lot, uint16_t wafer, uint32_t sequence,
                     const wp_ate_site_request* sites, size_t count,
                     wp_ate_site_identity* identities) {
    return touchdown(handle, lot, wafer, false, nullptr, sequence, sites, count, identities);
}

int wp_ate_touchdown_wafer(wp_ate* handle, const char* lot, uint16_t wafer,
                           const char* substrate_id, uint32_t sequence,
                           const wp_ate_site_request* sites, size_t count,
                           wp_ate_site_identity* identities) {
    return touchdown(handle, lot, wafer, true, substrate_id, sequence, sites, count, identities);
}

int wp_ate_results(wp_ate* handle, uint32_t sequence, const wp_ate_site_result* results,
                   size_t count, wp_ate_result_ack* acks) {
    if (handle == nullptr) return thread_fail(WP_ATE_E_INVALID_ARGUMENT, "handle is NULL");
    return guarded(handle, [&]() -> int {
        std::lock_guard lock(handle->mutex);
        Session& s = handle->session;
        if (results == nullptr) return s.fail(WP_ATE_E_INVALID_ARGUMENT, "results is NULL");
        if (acks == nullptr) return s.fail(WP_ATE_E_INVALID_ARGUMENT, "acks is NULL");
        if (std::string why = check_sites(results, count, s.max_sites(), "RESULTS"); !why.empty())
            return s.fail(WP_ATE_E_INVALID_ARGUMENT, why);
        proto::Results request;
        request.sequence = sequence;
        request.sites.resize(count);
        for (size_t i = 0; i < count; ++i) {
            if (std::string why = read_result(results[i], i, request.sites[i]); !why.empty())
                return s.fail(WP_ATE_E_INVALID_ARGUMENT, why);
        }

        proto::ResultsAck answer;
        std::vector<size_t> order;
        const int rc = s.results(request, answer, order);
        if (rc != WP_ATE_OK) return rc;
        copy_acks(answer, order, count, acks);
        return WP_ATE_OK;
    });
}

int wp_ate_final_touchdown(wp_ate* handle, const char* lot, const char* handler_id,
                           uint32_t sequence, const wp_ate_part_request* parts, size_t count,
                           wp_ate_part_answer* answers) {
    if (handle == nullptr) return thread_fail(WP_ATE_E_INVALID_ARGUMENT, "handle is NULL");
    return guarded(handle, [&]() -> int {
        std::lock_guard lock(handle->mutex);
        Session& s = handle->session;
        proto::FinalTouchdown request;
        if (std::string why = read_text(lot, "lot", true, request.lot); !why.empty())
            return s.fail(WP_ATE_E_INVALID_ARGUMENT, why);
        if (std::string why = read_text(handler_id, "handler_id", true, request.handler_id);
            !why.empty())
            return s.fail(WP_ATE_E_INVALID_ARGUMENT, why);
        if (!printable(request.handler_id))
            return s.fail(WP_ATE_E_INVALID_ARGUMENT, "handler_id is not printable ASCII");
        if (s.agreed_minor() < 2)
            return s.fail(WP_ATE_E_PROTOCOL,
                          "the host agreed on protocol 1." + std::to_string(s.agreed_minor()) +
                              ", which has no final test (FINAL_TOUCHDOWN is 1.2)");
        if (parts == nullptr) return s.fail(WP_ATE_E_INVALID_ARGUMENT, "parts is NULL");
        if (answers == nullptr) return s.fail(WP_ATE_E_INVALID_ARGUMENT, "answers is NULL");
        if (std::string why = check_sites(parts, count, s.max_sites(), "final touchdown");
            !why.empty())
            return s.fail(WP_ATE_E_INVALID_ARGUMENT, why);
        request.sequence = sequence;
        request.sites.resize(count);
        for (size_t i = 0; i < count; ++i) {
            const wp_ate_part_request& in = parts[i];
            proto::FinalSite& site = request.sites[i];
            site.site = in.site;
            std::memcpy(site.uid.data(), in.uid, site.uid.size());
            if (in.carrier_id != nullptr && in.carrier_id[0] != '\0') {
                proto::CarrierPosition c;
                if (std::string why = read_text(in.carrier_id, index_name("parts", i, "carrier_id"),
                                                true, c.carrier_id);
                    !why.empty())
                    return s.fail(WP_ATE_E_INVALID_ARGUMENT, why);
                if (!printable(c.carrier_id))
                    return s.fail(WP_ATE_E_INVALID_ARGUMENT,
                                  index_name("parts", i, "carrier_id") + " is not printable ASCII");
                c.row = in.row;
                c.column = in.column;
                site.carrier = std::move(c);
            }
        }
        proto::TouchdownResult answer;
        std::vector<size_t> order;
        const int rc = s.final_touchdown(request, answer, order);
        if (rc != WP_ATE_OK) return rc;
        for (size_t i = 0; i < count; ++i) {
            const proto::SiteResponse& r = answer.sites[order[i]];
            wp_ate_part_answer& o = answers[i];
            std::memset(&o, 0, sizeof o);
            o.site = r.site;
            o.status = static_cast<int>(r.status);
            copy_text(o.text, r.text);
            if (r.identity) copy_identity(o, *r.identity);
            if (r.challenge) {
                const proto::SiteChallenge& c = *r.challenge;
                std::memcpy(o.uid, c.uid.data(), sizeof o.uid);
                o.certificate_length = c.certificate_der.size();
                std::memcpy(o.certificate, c.certificate_der.data(), o.certificate_length);
                std::memcpy(o.chain_id, c.chain_id.data(), sizeof o.chain_id);
                std::memcpy(o.challenge, c.nonce.data(), sizeof o.challenge);
                // The session the challenge was issued to: the one this answer came in.
                const waferprov::Bytes m =
                    waferprov::possession::challenge_message(c.uid, s.session_id(), c.nonce);
                static_assert(WP_ATE_CHALLENGE_MESSAGE_SIZE == 33 + 16 + 8 + 32);
                std::memcpy(o.message, m.data(), sizeof o.message);
            }
        }
        return WP_ATE_OK;
    });
}

int wp_ate_final_results(wp_ate* handle, uint32_t sequence, const wp_ate_part_result* results,
                         size_t count, wp_ate_result_ack* acks) {
    if (handle == nullptr) return thread_fail(WP_ATE_E_INVALID_ARGUMENT, "handle is NULL");
    return guarded(handle, [&]() -> int {
        std::lock_guard lock(handle->mutex);
        Session& s = handle->session;
        if (results == nullptr) return s.fail(WP_ATE_E_INVALID_ARGUMENT, "results is NULL");
        if (acks == nullptr) return s.fail(WP_ATE_E_INVALID_ARGUMENT, "acks is NULL");
        if (s.agreed_minor() < 2)
            return s.fail(WP_ATE_E_PROTOCOL,
                          "the host agreed on protocol 1." + std::to_string(s.agreed_minor()) +
                              ", which has no final test (FINAL_RESULTS is 1.2)");
        if (std::string why = check_sites(results, count, s.max_sites(), "FINAL_RESULTS");
            !why.empty())
            return s.fail(WP_ATE_E_INVALID_ARGUMENT, why);
        proto::Results request;
        request.final_test = true;
        request.sequence = sequence;
        request.sites.resize(count);
        for (size_t i = 0; i < count; ++i) {
            const wp_ate_part_result& in = results[i];
            proto::SiteResult& r = request.sites[i];
            if (std::string why = read_result(in, i, r); !why.empty())
                return s.fail(WP_ATE_E_INVALID_ARGUMENT, why);
            if (in.has_signature == 1) {
                proto::Signature sig{};
                std::memcpy(sig.data(), in.signature, sig.size());
                r.signature = sig;
            } else if (in.has_signature != 0) {
                return s.fail(WP_ATE_E_INVALID_ARGUMENT,
                              index_name("results", i, "has_signature") + " is " +
                                  std::to_string(in.has_signature) + ", expected 0 or 1");
            }
        }
        proto::ResultsAck answer;
        std::vector<size_t> order;
        const int rc = s.results(request, answer, order);
        if (rc != WP_ATE_OK) return rc;
        copy_acks(answer, order, count, acks);
        return WP_ATE_OK;
    });
}

}  // extern "C"
