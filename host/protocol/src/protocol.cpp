// The WPTL codec. Byte layouts: docs/tester-protocol.md. All integers little-endian.
#include "waferprov/host/protocol.hpp"

#include <bitset>
#include <cstring>
#include <new>
#include <string_view>
#include <type_traits>

namespace waferprov::host::protocol {

namespace {

// Smallest encoding of one list entry, used to refuse a count the remaining bytes cannot hold
// before anything is reserved.
constexpr size_t kTouchdownSiteSize = 2 + 4 + 4 + 1 + wpid1::kUidSize;  // 27
constexpr size_t kMinSiteResponseSize = 2 + 2 + 1;                      // 5
constexpr size_t kIdentityFixedSize =
    wpid1::kUidSize + 4 + wpid1::kWrappedKeySize + 2 + kChainIdSize;  // 94 + DER
constexpr size_t kMinSiteResultSize = 2 + wpid1::kUidSize + 1 + 1;    // 20
constexpr size_t kMinResultAckSize = 2 + wpid1::kUidSize + 2 + 1;     // 21
constexpr size_t kMinHelloOkMaxFrame = 4096;
constexpr size_t kMinFinalSiteSize = 2 + wpid1::kUidSize + 1;  // 19: without a carrier
constexpr size_t kChallengeFixedSize =
    wpid1::kUidSize + 2 + kChainIdSize + kChallengeSize;  // 82 + DER
constexpr uint8_t kFinalTestMinor = 2;

bool known_kind(uint8_t k) {
    switch (static_cast<Kind>(k)) {
        case Kind::kHello:
        case Kind::kHelloOk:
        case Kind::kTouchdown:
        case Kind::kTouchdownResult:
        case Kind::kTouchdownWafer:
        case Kind::kFinalTouchdown:
        case Kind::kResults:
        case Kind::kResultsAck:
        case Kind::kFinalResults:
        case Kind::kBye:
        case Kind::kByeOk:
        case Kind::kError: return true;
    }
    return false;
}

// Printable ASCII (0x20..0x7e), non-empty: the ledger's rule for the texts it records.
bool printable_ascii(std::string_view v) {
    if (v.empty()) return false;
    for (char ch : v)
        if (ch < 0x20 || ch > 0x7e) return false;
    return true;
}

// ---------------------------------------------------------------------------------------------
// Encoding: a sizing/validation pass, then one resize and a cursor that cannot overrun.

struct Sizer {
    size_t n = 0;
    std::string err;
    bool fail(std::string m) {
        if (err.empty()) err = std::move(m);
        return false;
    }
};

bool check_string(Sizer& s, const std::string& v, const char* field, bool non_empty) {
    if (v.size() > kMaxStringSize)
        return s.fail(std::string(field) + ": " + std::to_string(v.size()) + " bytes, at most 255");
    if (non_empty && v.empty()) return s.fail(std::string(field) + ": empty");
    if (!valid_text(v)) return s.fail(std::string(field) + ": not UTF-8 text without NUL");
    s.n += 1 + v.size();
    return true;
}

template <class Entry>
bool check_sites(Sizer& s, const std::vector<Entry>& v, const Limits& lim, const char* what) {
    if (v.empty() || v.size() > lim.max_sites)
        return s.fail(std::string(what) + ": " + std::to_string(v.size()) + " sites, expected 1.." +
                      std::to_string(lim.max_sites));
    std::bitset<65536> seen;
    for (const auto& e : v) {
        if (seen.test(e.site))
            return s.fail(std::string(what) + ": site " + std::to_string(e.site) + " twice");
        seen.set(e.site);
    }
    s.n += 2;
    return true;
}

bool check_certificate(Sizer& s, const Bytes& der, const char* field) {
    if (der.empty() || der.size() > kMaxCertificateSize)
        return s.fail(std::string(field) + ": " + std::to_string(der.size()) +
                      " bytes, expected 1..3072");
    return true;
}

// The size of each message's body, checking its fields on the way (`minor` is the frame's:
// VERIFY site entries exist from 1.2 on).
bool size_of(Sizer& s, const Hello& msg, const Limits& /*lim*/, uint8_t /*minor*/) {
    return check_string(s, msg.tester_id, "HELLO.tester_id", true) &&
           check_string(s, msg.job_id, "HELLO.job_id", true) &&
           check_string(s, msg.node_name, "HELLO.node_name", false) &&
           check_string(s, msg.client_version, "HELLO.client_version", false);
}

bool size_of(Sizer& s, const HelloOk& msg, const Limits& /*lim*/, uint8_t /*minor*/) {
    if (msg.max_sites < 1 || msg.max_sites > kMaxSites)
        return s.fail("HELLO_OK.max_sites: out of 1..1024");
    if (msg.max_frame_size < kMinHelloOkMaxFrame || msg.max_frame_size > kMaxFrameSize)
        return s.fail("HELLO_OK.max_frame_size: out of 4096..4194304");
    s.n += 8 + 2 + 4;
    return check_string(s, msg.server_version, "HELLO_OK.server_version", false);
}

bool size_of(Sizer& s, const Touchdown& msg, const Limits& lim, uint8_t /*minor*/) {
    s.n += 8 + 2 + 4;
    if (!check_string(s, msg.lot, "TOUCHDOWN.lot", true)) return false;
    if (!msg.substrate_id.empty()) {
        if (!check_string(s, msg.substrate_id, "TOUCHDOWN_WAFER.substrate_id", true)) return false;
        if (!printable_ascii(msg.substrate_id))
            return s.fail("TOUCHDOWN_WAFER.substrate_id: not printable ASCII");
    }
    if (!check_sites(s, msg.sites, lim, "TOUCHDOWN.sites")) return false;
    s.n += msg.sites.size() * kTouchdownSiteSize;
    return true;
}

bool size_of(Sizer& s, const TouchdownResult& msg, const Limits& lim, uint8_t minor) {
    s.n += 4;
    if (!check_sites(s, msg.sites, lim, "TOUCHDOWN_RESULT.sites")) return false;
    for (const auto& e : msg.sites) {
        if (!is_known(e.status))
            return s.fail("TOUCHDOWN_RESULT.status: unknown code " +
                          std::to_string(static_cast<unsigned>(e.status)));
        s.n += 4;
        if (!check_string(s, e.text, "TOUCHDOWN_RESULT.text", false)) return false;
        if (carries_identity(e.status) != e.identity.has_value())
            return s.fail(
                "TOUCHDOWN_RESULT.identity: site " + std::to_string(e.site) +
                (e.identity ? " has an identity with status " : " lacks an identity with status ") +
                to_string(e.status));
        if (e.identity) {
            const auto& id = *e.identity;
            if (id.key.usage != KeyUsage::kDeviceIdentity ||
                id.key.algorithm != KeyAlgorithm::kWpid1P256 || id.key.version != kKeyBlobVersion)
                return s.fail("TOUCHDOWN_RESULT.key: unknown usage/algorithm/version");
            if (id.certificate_der.empty() || id.certificate_der.size() > kMaxCertificateSize)
                return s.fail(
                    "TOUCHDOWN_RESULT.certificate: " + std::to_string(id.certificate_der.size()) +
                    " bytes, expected 1..3072");
            s.n += kIdentityFixedSize + id.certificate_der.size();
        }
        if (carries_challenge(e.status) != e.challenge.has_value())
            return s.fail("TOUCHDOWN_RESULT.challenge: site " + std::to_string(e.site) +
                          (e.challenge ? " has a challenge with status "
                                       : " lacks a challenge with status ") +
                          to_string(e.status));
        if (e.challenge) {
            if (minor < kFinalTestMinor)
                return s.fail("TOUCHDOWN_RESULT.status: VERIFY is defined from 1.2");
            if (!check_certificate(s, e.challenge->certificate_der, "TOUCHDOWN_RESULT.certificate"))
                return false;
            s.n += kChallengeFixedSize + e.challenge->certificate_der.size();
        }
    }
    return true;
}

bool size_of(Sizer& s, const Results& msg, const Limits& lim, uint8_t /*minor*/) {
    s.n += 8 + 4;
    if (!check_sites(s, msg.sites, lim, "RESULTS.sites")) return false;
    for (const auto& e : msg.sites) {
        if (e.outcome != DieOutcome::kProgrammed && e.outcome != DieOutcome::kFailed)
            return s.fail("RESULTS.outcome: not 1 or 2");
        s.n += 2 + wpid1::kUidSize + 1;
        if (!check_string(s, e.bin, "RESULTS.bin", false)) return false;
        if (msg.final_test)
            s.n += 1 + (e.signature ? kSignatureSize : 0);
        else if (e.signature)
            return s.fail("RESULTS.signature: site " + std::to_string(e.site) +
                          " has a signature; only FINAL_RESULTS carries them");
    }
    return true;
}

bool size_of(Sizer& s, const FinalTouchdown& msg, const Limits& lim, uint8_t /*minor*/) {
    s.n += 8 + 4;
    if (!check_string(s, msg.lot, "FINAL_TOUCHDOWN.lot", true) ||
        !check_string(s, msg.handler_id, "FINAL_TOUCHDOWN.handler_id", true))
        return false;
    if (!printable_ascii(msg.handler_id))
        return s.fail("FINAL_TOUCHDOWN.handler_id: not printable ASCII");
    if (!check_sites(s, msg.sites, lim, "FINAL_TOUCHDOWN.sites")) return false;
    for (const auto& e : msg.sites) {
        s.n += kMinFinalSiteSize;
        if (!e.carrier) continue;
        if (!check_string(s, e.carrier->carrier_id, "FINAL_TOUCHDOWN.carrier_id", true))
            return false;
        if (!printable_ascii(e.carrier->carrier_id))
            return s.fail("FINAL_TOUCHDOWN.carrier_id: not printable ASCII");
        s.n += 2 + 2;
    }
    return true;
}

bool size_of(Sizer& s, const ResultsAck& msg, const Limits& lim, uint8_t /*minor*/) {
    s.n += 4;
    if (!check_sites(s, msg.sites, lim, "RESULTS_ACK.sites")) return false;
    for (const auto& e : msg.sites) {
        if (!is_known(e.status) || carries_challenge(e.status))
            return s.fail("RESULTS_ACK.status: unknown code or VERIFY");
        s.n += 2 + wpid1::kUidSize + 2;
        if (!check_string(s, e.text, "RESULTS_ACK.text", false)) return false;
    }
    return true;
}

bool size_of(Sizer& s, const Bye& /*msg*/, const Limits& /*lim*/, uint8_t /*minor*/) {
    s.n += 8;
    return true;
}

bool size_of(Sizer& /*s*/, const ByeOk& /*msg*/, const Limits& /*lim*/, uint8_t /*minor*/) {
    return true;
}

bool size_of(Sizer& s, const ErrorReply& msg, const Limits& /*lim*/, uint8_t /*minor*/) {
    if (!is_known(msg.code) || carries_identity(msg.code) || carries_challenge(msg.code))
        return s.fail("ERROR.code: unknown or OK/REISSUED/VERIFY");
    s.n += 2;
    return check_string(s, msg.text, "ERROR.text", false);
}

bool size_message(Sizer& s, const Message& m, const Limits& lim, uint8_t minor) {
    return std::visit([&](const auto& msg) { return size_of(s, msg, lim, minor); }, m);
}

class Writer {
public:
    explicit Writer(uint8_t* p) : p_(p) {}
    void u8(uint8_t v) { *p_++ = v; }
    void u16(uint16_t v) {
        p_[0] = static_cast<uint8_t>(v);
        p_[1] = static_cast<uint8_t>(v >> 8);
        p_ += 2;
    }
    void u32(uint32_t v) {
        for (int i = 0; i < 4; ++i) p_[i] = static_cast<uint8_t>(v >> (8 * i));
        p_ += 4;
    }
    void u64(uint64_t v) {
        for (int i = 0; i < 8; ++i) p_[i] = static_cast<uint8_t>(v >> (8 * i));
        p_ += 8;
    }
    void i32(int32_t v) { u32(static_cast<uint32_t>(v)); }
    void raw(const uint8_t* d, size_t n) {
        if (n != 0) std::memcpy(p_, d, n);
        p_ += n;
    }
    void zeros(size_t n) {
        std::memset(p_, 0, n);
        p_ += n;
    }
    void str(const std::string& s) {
        u8(static_cast<uint8_t>(s.size()));
        raw(reinterpret_cast<const uint8_t*>(s.data()), s.size());
    }
    uint8_t* pos() const { return p_; }

private:
    uint8_t* p_;
};

// Each message's body, field by field as docs/tester-protocol.md gives them.
void write_body(Writer& w, const Hello& msg) {
    w.str(msg.tester_id);
    w.str(msg.job_id);
    w.str(msg.node_name);
    w.str(msg.client_version);
}

void write_body(Writer& w, const HelloOk& msg) {
    w.u64(msg.session_id);
    w.str(msg.server_version);
    w.u16(msg.max_sites);
    w.u32(msg.max_frame_size);
}

void write_body(Writer& w, const Touchdown& msg) {
    w.u64(msg.session_id);
    w.str(msg.lot);
    w.u16(msg.wafer);
    if (!msg.substrate_id.empty()) w.str(msg.substrate_id);  // TOUCHDOWN_WAFER
    w.u32(msg.sequence);
    w.u16(static_cast<uint16_t>(msg.sites.size()));
    for (const auto& e : msg.sites) {
        w.u16(e.site);
        w.i32(e.x);
        w.i32(e.y);
        if (e.uid) {
            w.u8(1);
            w.raw(e.uid->data(), e.uid->size());
        } else {
            w.u8(0);
            w.zeros(wpid1::kUidSize);
        }
    }
}

void write_body(Writer& w, const TouchdownResult& msg) {
    w.u32(msg.sequence);
    w.u16(static_cast<uint16_t>(msg.sites.size()));
    for (const auto& e : msg.sites) {
        w.u16(e.site);
        w.u16(static_cast<uint16_t>(e.status));
        w.str(e.text);
        if (e.identity) {
            const auto& id = *e.identity;
            w.raw(id.uid.data(), id.uid.size());
            w.u8(static_cast<uint8_t>(id.key.usage));
            w.u8(static_cast<uint8_t>(id.key.algorithm));
            w.u8(id.key.version);
            w.u8(static_cast<uint8_t>(wpid1::kWrappedKeySize));
            w.raw(id.key.wrapped.data(), id.key.wrapped.size());
            w.u16(static_cast<uint16_t>(id.certificate_der.size()));
            w.raw(id.certificate_der.data(), id.certificate_der.size());
            w.raw(id.chain_id.data(), id.chain_id.size());
        }
        if (e.challenge) {
            const auto& c = *e.challenge;
            w.raw(c.uid.data(), c.uid.size());
            w.u16(static_cast<uint16_t>(c.certificate_der.size()));
            w.raw(c.certificate_der.data(), c.certificate_der.size());
            w.raw(c.chain_id.data(), c.chain_id.size());
            w.raw(c.nonce.data(), c.nonce.size());
        }
    }
}

void write_body(Writer& w, const Results& msg) {
    w.u64(msg.session_id);
    w.u32(msg.sequence);
    w.u16(static_cast<uint16_t>(msg.sites.size()));
    for (const auto& e : msg.sites) {
        w.u16(e.site);
        w.raw(e.uid.data(), e.uid.size());
        w.u8(static_cast<uint8_t>(e.outcome));
        w.str(e.bin);
        if (!msg.final_test) continue;
        if (e.signature) {
            w.u8(1);
            w.raw(e.signature->data(), e.signature->size());
        } else {
            w.u8(0);
        }
    }
}

void write_body(Writer& w, const FinalTouchdown& msg) {
    w.u64(msg.session_id);
    w.str(msg.lot);
    w.str(msg.handler_id);
    w.u32(msg.sequence);
    w.u16(static_cast<uint16_t>(msg.sites.size()));
    for (const auto& e : msg.sites) {
        w.u16(e.site);
        w.raw(e.uid.data(), e.uid.size());
        if (e.carrier) {
            w.u8(1);
            w.str(e.carrier->carrier_id);
            w.u16(e.carrier->row);
            w.u16(e.carrier->column);
        } else {
            w.u8(0);
        }
    }
}

void write_body(Writer& w, const ResultsAck& msg) {
    w.u32(msg.sequence);
    w.u16(static_cast<uint16_t>(msg.sites.size()));
    for (const auto& e : msg.sites) {
        w.u16(e.site);
        w.raw(e.uid.data(), e.uid.size());
        w.u16(static_cast<uint16_t>(e.status));
        w.str(e.text);
    }
}

void write_body(Writer& w, const Bye& msg) { w.u64(msg.session_id); }

void write_body(Writer& /*w*/, const ByeOk& /*msg*/) {}

void write_body(Writer& w, const ErrorReply& msg) {
    w.u16(static_cast<uint16_t>(msg.code));
    w.str(msg.text);
}

void write_message(Writer& w, const Message& m) {
    std::visit([&](const auto& msg) { write_body(w, msg); }, m);
}

// ---------------------------------------------------------------------------------------------
// Decoding: a bounds-checked cursor over the frame; offsets in errors count from the frame's
// first byte.

class Reader {
public:
    Reader(ByteSpan frame, size_t pos, DecodeError& err) : f_(frame), pos_(pos), err_(err) {}

    size_t pos() const { return pos_; }
    size_t remaining() const { return f_.size() - pos_; }

    bool fail(StatusCode code, const std::string& field, const std::string& why) {
        return fail_at(code, field, pos_, why);
    }
    bool fail_at(StatusCode code, const std::string& field, size_t at, const std::string& why) {
        err_.code = code;
        err_.offset = at;
        err_.text = field + " at offset " + std::to_string(at) + ": " + why;
        return false;
    }
    bool need(size_t n, const char* field) {
        if (remaining() >= n) return true;
        return fail(
            StatusCode::kTruncated, field,
            "needs " + std::to_string(n) + " bytes, " + std::to_string(remaining()) + " remain");
    }
    bool u8(uint8_t& v, const char* field) {
        if (!need(1, field)) return false;
        v = f_[pos_++];
        return true;
    }
    bool u16(uint16_t& v, const char* field) {
        if (!need(2, field)) return false;
        v = static_cast<uint16_t>(f_[pos_] | (f_[pos_ + 1] << 8));
        pos_ += 2;
        return true;
    }
    bool u32(uint32_t& v, const char* field) {
        if (!need(4, field)) return false;
        v = 0;
        for (int i = 3; i >= 0; --i) v = (v << 8) | f_[pos_ + static_cast<size_t>(i)];
        pos_ += 4;
        return true;
    }
    bool u64(uint64_t& v, const char* field) {
        if (!need(8, field)) return false;
        v = 0;
        for (int i = 7; i >= 0; --i) v = (v << 8) | f_[pos_ + static_cast<size_t>(i)];
        pos_ += 8;
        return true;
    }
    bool i32(int32_t& v, const char* field) {
        uint32_t u = 0;
        if (!u32(u, field)) return false;
        v = static_cast<int32_t>(u);
        return true;
    }
    template <size_t N>
    bool fixed(std::array<uint8_t, N>& a, const char* field) {
        if (!need(N, field)) return false;
        std::memcpy(a.data(), f_.data() + pos_, N);
        pos_ += N;
        return true;
    }
    // n bytes into `out`; n was bounded by the caller and is checked against the frame first.
    bool bytes(Bytes& out, size_t n, const char* field) {
        if (!need(n, field)) return false;
        out.assign(f_.begin() + static_cast<std::ptrdiff_t>(pos_),
                   f_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
        pos_ += n;
        return true;
    }
    bool str(std::string& s, const char* field, bool non_empty) {
        const size_t at = pos_;
        uint8_t n = 0;
        if (!u8(n, field)) return false;
        if (!need(n, field)) return false;
        std::string_view v(reinterpret_cast<const char*>(f_.data() + pos_), n);
        if (non_empty && n == 0) return fail_at(StatusCode::kBadField, field, at, "empty");
        if (!valid_text(v))
            return fail_at(StatusCode::kBadField, field, at, "not UTF-8 text without NUL");
        s.assign(v);
        pos_ += n;
        return true;
    }
    // A site count: 1..max_sites, and the remaining bytes must hold that many minimal entries.
    bool count(size_t& n, const char* field, size_t max_sites, size_t min_entry) {
        const size_t at = pos_;
        uint16_t v = 0;
        if (!u16(v, field)) return false;
        if (v == 0 || v > max_sites)
            return fail_at(StatusCode::kBadField, field, at,
                           std::to_string(v) + " sites, expected 1.." + std::to_string(max_sites));
        if (static_cast<size_t>(v) * min_entry > remaining())
            return fail_at(StatusCode::kTruncated, field, at,
                           std::to_string(v) + " sites need at least " +
                               std::to_string(static_cast<size_t>(v) * min_entry) + " bytes, " +
                               std::to_string(remaining()) + " remain");
        n = v;
        return true;
    }

private:
    ByteSpan f_;
    size_t pos_;
    DecodeError& err_;
};

// Site numbers must be distinct within a list.
class SiteSet {
public:
    bool insert(uint16_t s) {
        if (seen_.test(s)) return false;
        seen_.set(s);
        return true;
    }

private:
    std::bitset<65536> seen_;
};

bool site_number(Reader& r, SiteSet& seen, uint16_t& site, const char* field) {
    const size_t at = r.pos();
    if (!r.u16(site, field)) return false;
    if (!seen.insert(site))
        return r.fail_at(StatusCode::kBadField, field, at,
                         "site " + std::to_string(site) + " appears twice");
    return true;
}

// allow_identity: OK / REISSUED may appear (sites, acks); allow_verify: VERIFY may (sites of a
// 1.2 TOUCHDOWN_RESULT only).
bool status_code(Reader& r, StatusCode& code, const char* field, bool allow_identity,
                 bool allow_verify = false) {
    const size_t at = r.pos();
    uint16_t v = 0;
    if (!r.u16(v, field)) return false;
    code = static_cast<StatusCode>(v);
    if (!is_known(code) || (!allow_identity && carries_identity(code)) ||
        (!allow_verify && carries_challenge(code)))
        return r.fail_at(StatusCode::kBadField, field, at,
                         "status code " + std::to_string(v) + " not allowed here");
    return true;
}

bool read_hello(Reader& r, Hello& m) {
    return r.str(m.tester_id, "HELLO.tester_id", true) && r.str(m.job_id, "HELLO.job_id", true) &&
           r.str(m.node_name, "HELLO.node_name", false) &&
           r.str(m.client_version, "HELLO.client_version", false);
}

bool read_hello_ok(Reader& r, HelloOk& m) {
    if (!r.u64(m.session_id, "HELLO_OK.session_id") ||
        !r.str(m.server_version, "HELLO_OK.server_version", false))
        return false;
    size_t at = r.pos();
    if (!r.u16(m.max_sites, "HELLO_OK.max_sites")) return false;
    if (m.max_sites < 1 || m.max_sites > kMaxSites)
        return r.fail_at(StatusCode::kBadField, "HELLO_OK.max_sites", at, "out of 1..1024");
    at = r.pos();
    if (!r.u32(m.max_frame_size, "HELLO_OK.max_frame_size")) return false;
    if (m.max_frame_size < kMinHelloOkMaxFrame || m.max_frame_size > kMaxFrameSize)
        return r.fail_at(StatusCode::kBadField, "HELLO_OK.max_frame_size", at,
                         "out of 4096..4194304");
    return true;
}

// TOUCHDOWN, or with `wafer_id` TOUCHDOWN_WAFER (the substrate id after the wafer number).
bool read_touchdown(Reader& r, Touchdown& m, const Limits& lim, bool wafer_id) {
    size_t n = 0;
    if (!r.u64(m.session_id, "TOUCHDOWN.session_id") || !r.str(m.lot, "TOUCHDOWN.lot", true) ||
        !r.u16(m.wafer, "TOUCHDOWN.wafer"))
        return false;
    if (wafer_id) {
        const size_t at = r.pos();
        if (!r.str(m.substrate_id, "TOUCHDOWN_WAFER.substrate_id", true)) return false;
        if (!printable_ascii(m.substrate_id))
            return r.fail_at(StatusCode::kBadField, "TOUCHDOWN_WAFER.substrate_id", at,
                             "not printable ASCII");
    }
    if (!r.u32(m.sequence, "TOUCHDOWN.sequence") ||
        !r.count(n, "TOUCHDOWN.site_count", lim.max_sites, kTouchdownSiteSize))
        return false;
    m.sites.resize(n);
    SiteSet seen;
    for (auto& e : m.sites) {
        uint8_t has_uid = 0;
        wpid1::Uid uid{};
        if (!site_number(r, seen, e.site, "TOUCHDOWN.site") || !r.i32(e.x, "TOUCHDOWN.x") ||
            !r.i32(e.y, "TOUCHDOWN.y"))
            return false;
        const size_t at = r.pos();
        if (!r.u8(has_uid, "TOUCHDOWN.has_uid") || !r.fixed(uid, "TOUCHDOWN.uid")) return false;
        if (has_uid == 1) {
            e.uid = uid;
        } else if (has_uid != 0) {
            return r.fail_at(StatusCode::kBadField, "TOUCHDOWN.has_uid", at,
                             "value " + std::to_string(has_uid) + ", expected 0 or 1");
        } else if (uid != wpid1::Uid{}) {
            return r.fail_at(StatusCode::kBadField, "TOUCHDOWN.uid", at + 1,
                             "must be zero when has_uid is 0");
        }
    }
    return true;
}

bool read_identity(Reader& r, SiteIdentity& id) {
    if (!r.fixed(id.uid, "TOUCHDOWN_RESULT.uid")) return false;
    const size_t at = r.pos();
    uint8_t usage = 0, alg = 0, len = 0;
    if (!r.u8(usage, "TOUCHDOWN_RESULT.key_usage") ||
        !r.u8(alg, "TOUCHDOWN_RESULT.key_algorithm") ||
        !r.u8(id.key.version, "TOUCHDOWN_RESULT.key_version") ||
        !r.u8(len, "TOUCHDOWN_RESULT.key_length"))
        return false;
    if (usage != static_cast<uint8_t>(KeyUsage::kDeviceIdentity))
        return r.fail_at(StatusCode::kBadField, "TOUCHDOWN_RESULT.key_usage", at,
                         "unknown usage " + std::to_string(usage));
    if (alg != static_cast<uint8_t>(KeyAlgorithm::kWpid1P256))
        return r.fail_at(StatusCode::kBadField, "TOUCHDOWN_RESULT.key_algorithm", at + 1,
                         "unknown algorithm " + std::to_string(alg));
    if (id.key.version != kKeyBlobVersion)
        return r.fail_at(StatusCode::kBadField, "TOUCHDOWN_RESULT.key_version", at + 2,
                         "unknown version " + std::to_string(id.key.version));
    if (len != wpid1::kWrappedKeySize)
        return r.fail_at(StatusCode::kBadField, "TOUCHDOWN_RESULT.key_length", at + 3,
                         std::to_string(len) + ", WPID-1 wrapped keys are 40 bytes");
    id.key.usage = KeyUsage::kDeviceIdentity;
    id.key.algorithm = KeyAlgorithm::kWpid1P256;
    if (!r.fixed(id.key.wrapped, "TOUCHDOWN_RESULT.wrapped_key")) return false;
    const size_t cat = r.pos();
    uint16_t clen = 0;
    if (!r.u16(clen, "TOUCHDOWN_RESULT.certificate_length")) return false;
    if (clen == 0 || clen > kMaxCertificateSize)
        return r.fail_at(StatusCode::kBadField, "TOUCHDOWN_RESULT.certificate_length", cat,
                         std::to_string(clen) + " bytes, expected 1..3072");
    return r.bytes(id.certificate_der, clen, "TOUCHDOWN_RESULT.certificate") &&
           r.fixed(id.chain_id, "TOUCHDOWN_RESULT.chain_id");
}

bool read_certificate(Reader& r, Bytes& der) {
    const size_t at = r.pos();
    uint16_t n = 0;
    if (!r.u16(n, "TOUCHDOWN_RESULT.certificate_length")) return false;
    if (n == 0 || n > kMaxCertificateSize)
        return r.fail_at(StatusCode::kBadField, "TOUCHDOWN_RESULT.certificate_length", at,
                         std::to_string(n) + " bytes, expected 1..3072");
    return r.bytes(der, n, "TOUCHDOWN_RESULT.certificate");
}

bool read_challenge(Reader& r, SiteChallenge& c) {
    return r.fixed(c.uid, "TOUCHDOWN_RESULT.uid") && read_certificate(r, c.certificate_der) &&
           r.fixed(c.chain_id, "TOUCHDOWN_RESULT.chain_id") &&
           r.fixed(c.nonce, "TOUCHDOWN_RESULT.challenge");
}

bool read_touchdown_result(Reader& r, TouchdownResult& m, const Limits& lim, uint8_t minor) {
    size_t n = 0;
    if (!r.u32(m.sequence, "TOUCHDOWN_RESULT.sequence") ||
        !r.count(n, "TOUCHDOWN_RESULT.site_count", lim.max_sites, kMinSiteResponseSize))
        return false;
    m.sites.resize(n);
    SiteSet seen;
    for (auto& e : m.sites) {
        if (!site_number(r, seen, e.site, "TOUCHDOWN_RESULT.site") ||
            !status_code(r, e.status, "TOUCHDOWN_RESULT.status", true, minor >= kFinalTestMinor) ||
            !r.str(e.text, "TOUCHDOWN_RESULT.text", false))
            return false;
        if (carries_identity(e.status) && !read_identity(r, e.identity.emplace())) return false;
        if (carries_challenge(e.status) && !read_challenge(r, e.challenge.emplace())) return false;
    }
    return true;
}

// RESULTS, or with `final_test` FINAL_RESULTS (has_signature and the signature after the bin).
bool read_results(Reader& r, Results& m, const Limits& lim, bool final_test) {
    size_t n = 0;
    m.final_test = final_test;
    if (!r.u64(m.session_id, "RESULTS.session_id") || !r.u32(m.sequence, "RESULTS.sequence") ||
        !r.count(n, "RESULTS.site_count", lim.max_sites, kMinSiteResultSize + (final_test ? 1 : 0)))
        return false;
    m.sites.resize(n);
    SiteSet seen;
    for (auto& e : m.sites) {
        if (!site_number(r, seen, e.site, "RESULTS.site") || !r.fixed(e.uid, "RESULTS.uid"))
            return false;
        const size_t at = r.pos();
        uint8_t o = 0;
        if (!r.u8(o, "RESULTS.outcome")) return false;
        if (o != static_cast<uint8_t>(DieOutcome::kProgrammed) &&
            o != static_cast<uint8_t>(DieOutcome::kFailed))
            return r.fail_at(StatusCode::kBadField, "RESULTS.outcome", at,
                             "value " + std::to_string(o) + ", expected 1 or 2");
        e.outcome = static_cast<DieOutcome>(o);
        if (!r.str(e.bin, "RESULTS.bin", false)) return false;
        if (!final_test) continue;
        const size_t sat = r.pos();
        uint8_t has = 0;
        if (!r.u8(has, "FINAL_RESULTS.has_signature")) return false;
        if (has == 1) {
            if (!r.fixed(e.signature.emplace(), "FINAL_RESULTS.signature")) return false;
        } else if (has != 0) {
            return r.fail_at(StatusCode::kBadField, "FINAL_RESULTS.has_signature", sat,
                             "value " + std::to_string(has) + ", expected 0 or 1");
        }
    }
    return true;
}

bool read_final_touchdown(Reader& r, FinalTouchdown& m, const Limits& lim) {
    size_t n = 0;
    if (!r.u64(m.session_id, "FINAL_TOUCHDOWN.session_id") ||
        !r.str(m.lot, "FINAL_TOUCHDOWN.lot", true))
        return false;
    size_t at = r.pos();
    if (!r.str(m.handler_id, "FINAL_TOUCHDOWN.handler_id", true)) return false;
    if (!printable_ascii(m.handler_id))
        return r.fail_at(StatusCode::kBadField, "FINAL_TOUCHDOWN.handler_id", at,
                         "not printable ASCII");
    if (!r.u32(m.sequence, "FINAL_TOUCHDOWN.sequence") ||
        !r.count(n, "FINAL_TOUCHDOWN.site_count", lim.max_sites, kMinFinalSiteSize))
        return false;
    m.sites.resize(n);
    SiteSet seen;
    for (auto& e : m.sites) {
        if (!site_number(r, seen, e.site, "FINAL_TOUCHDOWN.site") ||
            !r.fixed(e.uid, "FINAL_TOUCHDOWN.uid"))
            return false;
        at = r.pos();
        uint8_t has = 0;
        if (!r.u8(has, "FINAL_TOUCHDOWN.has_carrier")) return false;
        if (has == 0) continue;
        if (has != 1)
            return r.fail_at(StatusCode::kBadField, "FINAL_TOUCHDOWN.has_carrier", at,
                             "value " + std::to_string(has) + ", expected 0 or 1");
        auto& c = e.carrier.emplace();
        at = r.pos();
        if (!r.str(c.carrier_id, "FINAL_TOUCHDOWN.carrier_id", true)) return false;
        if (!printable_ascii(c.carrier_id))
            return r.fail_at(StatusCode::kBadField, "FINAL_TOUCHDOWN.carrier_id", at,
                             "not printable ASCII");
        if (!r.u16(c.row, "FINAL_TOUCHDOWN.row") || !r.u16(c.column, "FINAL_TOUCHDOWN.column"))
            return false;
    }
    return true;
}

bool read_results_ack(Reader& r, ResultsAck& m, const Limits& lim) {
    size_t n = 0;
    if (!r.u32(m.sequence, "RESULTS_ACK.sequence") ||
        !r.count(n, "RESULTS_ACK.site_count", lim.max_sites, kMinResultAckSize))
        return false;
    m.sites.resize(n);
    SiteSet seen;
    for (auto& e : m.sites) {
        if (!site_number(r, seen, e.site, "RESULTS_ACK.site") ||
            !r.fixed(e.uid, "RESULTS_ACK.uid") ||
            !status_code(r, e.status, "RESULTS_ACK.status", true) ||
            !r.str(e.text, "RESULTS_ACK.text", false))
            return false;
    }
    return true;
}

bool read_body(Reader& r, Kind kind, Message& out, const Limits& lim, uint8_t minor) {
    switch (kind) {
        case Kind::kHello: return read_hello(r, out.emplace<Hello>());
        case Kind::kHelloOk: return read_hello_ok(r, out.emplace<HelloOk>());
        case Kind::kTouchdown: return read_touchdown(r, out.emplace<Touchdown>(), lim, false);
        case Kind::kTouchdownWafer: return read_touchdown(r, out.emplace<Touchdown>(), lim, true);
        case Kind::kTouchdownResult:
            return read_touchdown_result(r, out.emplace<TouchdownResult>(), lim, minor);
        case Kind::kFinalTouchdown:
            return read_final_touchdown(r, out.emplace<FinalTouchdown>(), lim);
        case Kind::kResults: return read_results(r, out.emplace<Results>(), lim, false);
        case Kind::kFinalResults: return read_results(r, out.emplace<Results>(), lim, true);
        case Kind::kResultsAck: return read_results_ack(r, out.emplace<ResultsAck>(), lim);
        case Kind::kBye: return r.u64(out.emplace<Bye>().session_id, "BYE.session_id");
        case Kind::kByeOk: out.emplace<ByeOk>(); return true;
        case Kind::kError: {
            auto& e = out.emplace<ErrorReply>();
            return status_code(r, e.code, "ERROR.code", false) &&
                   r.str(e.text, "ERROR.text", false);
        }
    }
    return r.fail(StatusCode::kUnknownKind, "header.kind", "unknown");
}

uint32_t load_le32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
           (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

DecodeResult decode_impl(ByteSpan frame, const Limits& limits) {
    DecodeError err;
    auto fail = [&](StatusCode code, size_t at, std::string text) -> DecodeResult {
        err.code = code;
        err.offset = at;
        err.text = std::move(text);
        return err;
    };
    const size_t max_frame = std::min(limits.max_frame_size, kMaxFrameSize);
    const Limits lim{max_frame, std::min(limits.max_sites, kMaxSites)};
    const size_t n = frame.size();
    // The magic is checked on whatever is there, so garbage is BAD_FRAME even when short.
    for (size_t i = 0; i < kMagic.size() && i < n; ++i)
        if (frame[i] != kMagic[i])
            return fail(StatusCode::kBadFrame, i,
                        "header.magic at offset " + std::to_string(i) + ": not \"WPTL\"");
    if (n < kHeaderSize)
        return fail(StatusCode::kTruncated, n,
                    "header at offset 0: " + std::to_string(n) + " bytes, needs 16");
    const Header h = *peek_header(frame);
    err.request_id = h.request_id;
    if (h.major != kVersionMajor)
        return fail(StatusCode::kUnsupportedVersion, 4,
                    "header.major at offset 4: version " + std::to_string(h.major) +
                        ", this codec speaks major 1");
    // A HELLO announces the client's highest minor (the answer picks the lower of the two);
    // every other frame must use a minor this codec knows.
    if (h.minor > kVersionMinor && h.kind != static_cast<uint8_t>(Kind::kHello))
        return fail(StatusCode::kUnsupportedVersion, 5,
                    "header.minor at offset 5: 1." + std::to_string(h.minor) +
                        " was not negotiated (this codec speaks 1." +
                        std::to_string(kVersionMinor) + ")");
    if (h.body_length > max_frame - kHeaderSize)
        return fail(StatusCode::kOversized, 12,
                    "header.body_length at offset 12: " + std::to_string(h.body_length) +
                        " bytes, at most " + std::to_string(max_frame - kHeaderSize));
    if (n < kHeaderSize + h.body_length)
        return fail(StatusCode::kTruncated, n,
                    "body at offset 16: header says " + std::to_string(h.body_length) +
                        " bytes, frame holds " + std::to_string(n - kHeaderSize));
    if (n > kHeaderSize + h.body_length)
        return fail(StatusCode::kBadFrame, kHeaderSize + h.body_length,
                    "frame at offset " + std::to_string(kHeaderSize + h.body_length) + ": " +
                        std::to_string(n - kHeaderSize - h.body_length) + " bytes after the body");
    if (!known_kind(h.kind))
        return fail(StatusCode::kUnknownKind, 6,
                    "header.kind at offset 6: unknown kind " + std::to_string(h.kind));
    if (h.minor < minor_of(static_cast<Kind>(h.kind)))
        return fail(
            StatusCode::kUnsupportedVersion, 5,
            "header.minor at offset 5: " + std::string(to_string(static_cast<Kind>(h.kind))) +
                " is defined from 1." + std::to_string(minor_of(static_cast<Kind>(h.kind))) +
                ", the frame says 1." + std::to_string(h.minor));
    if (h.flags != 0)
        return fail(StatusCode::kBadField, 7,
                    "header.flags at offset 7: " + std::to_string(h.flags) +
                        ", no flags are defined in 1.x");
    Frame out;
    out.request_id = h.request_id;
    out.minor = h.minor;
    Reader r(frame, kHeaderSize, err);
    if (!read_body(r, static_cast<Kind>(h.kind), out.message, lim, h.minor)) return err;
    if (r.remaining() != 0)
        return fail(StatusCode::kBadFrame, r.pos(),
                    std::string(to_string(static_cast<Kind>(h.kind))) + " at offset " +
                        std::to_string(r.pos()) + ": " + std::to_string(r.remaining()) +
                        " bytes after the last field");
    return out;
}

}  // namespace

const char* to_string(Kind k) noexcept {
    switch (k) {
        case Kind::kHello: return "HELLO";
        case Kind::kHelloOk: return "HELLO_OK";
        case Kind::kTouchdown: return "TOUCHDOWN";
        case Kind::kTouchdownResult: return "TOUCHDOWN_RESULT";
        case Kind::kTouchdownWafer: return "TOUCHDOWN_WAFER";
        case Kind::kFinalTouchdown: return "FINAL_TOUCHDOWN";
        case Kind::kResults: return "RESULTS";
        case Kind::kResultsAck: return "RESULTS_ACK";
        case Kind::kFinalResults: return "FINAL_RESULTS";
        case Kind::kBye: return "BYE";
        case Kind::kByeOk: return "BYE_OK";
        case Kind::kError: return "ERROR";
    }
    return "?";
}

const char* to_string(StatusCode c) noexcept {
    switch (c) {
        case StatusCode::kOk: return "OK";
        case StatusCode::kReissued: return "REISSUED";
        case StatusCode::kVerify: return "VERIFY";
        case StatusCode::kBadFrame: return "BAD_FRAME";
        case StatusCode::kTruncated: return "TRUNCATED";
        case StatusCode::kOversized: return "OVERSIZED";
        case StatusCode::kUnknownKind: return "UNKNOWN_KIND";
        case StatusCode::kUnsupportedVersion: return "UNSUPPORTED_VERSION";
        case StatusCode::kBadField: return "BAD_FIELD";
        case StatusCode::kUnexpectedKind: return "UNEXPECTED_KIND";
        case StatusCode::kNotAdmitted: return "NOT_ADMITTED";
        case StatusCode::kUnknownJob: return "UNKNOWN_JOB";
        case StatusCode::kNoSession: return "NO_SESSION";
        case StatusCode::kBusy: return "BUSY";
        case StatusCode::kShuttingDown: return "SHUTTING_DOWN";
        case StatusCode::kSequenceReused: return "SEQUENCE_REUSED";
        case StatusCode::kQuotaExhausted: return "QUOTA_EXHAUSTED";
        case StatusCode::kConflict: return "CONFLICT";
        case StatusCode::kUnknownUid: return "UNKNOWN_UID";
        case StatusCode::kNotDelivered: return "NOT_DELIVERED";
        case StatusCode::kDuplicateResult: return "DUPLICATE_RESULT";
        case StatusCode::kVoided: return "VOIDED";
        case StatusCode::kNoUid: return "NO_UID";
        case StatusCode::kAlreadyProgrammed: return "ALREADY_PROGRAMMED";
        case StatusCode::kNotOnMap: return "NOT_ON_MAP";
        case StatusCode::kDeliveryCap: return "DELIVERY_CAP";
        case StatusCode::kNotProvisioned: return "NOT_PROVISIONED";
        case StatusCode::kSignatureMismatch: return "SIGNATURE_MISMATCH";
        case StatusCode::kChallengeRefused: return "CHALLENGE_REFUSED";
        case StatusCode::kInternal: return "INTERNAL";
    }
    return "?";
}

bool is_known(StatusCode c) noexcept { return to_string(c)[0] != '?'; }

Kind kind_of(const Message& m) noexcept {
    static constexpr Kind kKinds[] = {
        Kind::kHello,   Kind::kHelloOk,       Kind::kTouchdown, Kind::kTouchdownResult,
        Kind::kResults, Kind::kResultsAck,    Kind::kBye,       Kind::kByeOk,
        Kind::kError,   Kind::kFinalTouchdown};
    static_assert(std::size(kKinds) == std::variant_size_v<Message>);
    if (const auto* td = std::get_if<Touchdown>(&m); td != nullptr && !td->substrate_id.empty())
        return Kind::kTouchdownWafer;
    if (const auto* rs = std::get_if<Results>(&m); rs != nullptr && rs->final_test)
        return Kind::kFinalResults;
    return kKinds[m.index()];
}

uint8_t minor_of(Kind k) noexcept {
    switch (k) {
        case Kind::kTouchdownWafer: return 1;
        case Kind::kFinalTouchdown:
        case Kind::kFinalResults: return kFinalTestMinor;
        default: return 0;
    }
}

bool valid_text(std::string_view s) noexcept {
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        const uint8_t c = p[i];
        if (c < 0x80) {
            if (c == 0) return false;
            ++i;
            continue;
        }
        size_t len = 0;
        uint32_t cp = 0, min = 0;
        if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1fu;
            min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0fu;
            min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07u;
            min = 0x10000;
        } else
            return false;
        if (n - i < len) return false;
        for (size_t k = 1; k < len; ++k) {
            const uint8_t cc = p[i + k];
            if ((cc & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}

std::optional<Header> peek_header(ByteSpan frame) noexcept {
    if (frame.size() < kHeaderSize || !std::equal(kMagic.begin(), kMagic.end(), frame.begin()))
        return std::nullopt;
    Header h;
    h.major = frame[4];
    h.minor = frame[5];
    h.kind = frame[6];
    h.flags = frame[7];
    h.request_id = load_le32(frame.data() + 8);
    h.body_length = load_le32(frame.data() + 12);
    return h;
}

Status encode_to(const Frame& frame, Bytes& out, const Limits& limits) {
    const Limits lim{std::min(limits.max_frame_size, kMaxFrameSize),
                     std::min(limits.max_sites, kMaxSites)};
    const Kind kind = kind_of(frame.message);
    if (frame.minor > kVersionMinor && kind != Kind::kHello)
        return make_error(ErrorCode::kInvalidArgument,
                          "header.minor: only HELLO may announce a minor above 1." +
                              std::to_string(kVersionMinor));
    if (frame.minor < minor_of(kind))
        return make_error(ErrorCode::kInvalidArgument,
                          std::string(to_string(kind)) + " is defined from 1." +
                              std::to_string(minor_of(kind)) + "; the session agreed on 1." +
                              std::to_string(frame.minor));
    Sizer s;
    if (!size_message(s, frame.message, lim, frame.minor))
        return make_error(ErrorCode::kInvalidArgument,
                          "encoding " + std::string(to_string(kind)) + ": " + s.err);
    if (s.n > lim.max_frame_size - kHeaderSize)
        return make_error(ErrorCode::kInvalidArgument, "encoding " + std::string(to_string(kind)) +
                                                           ": body of " + std::to_string(s.n) +
                                                           " bytes exceeds the frame limit");
    out.resize(kHeaderSize + s.n);
    Writer w(out.data());
    w.raw(kMagic.data(), kMagic.size());
    w.u8(kVersionMajor);
    w.u8(frame.minor);
    w.u8(static_cast<uint8_t>(kind));
    w.u8(0);
    w.u32(frame.request_id);
    w.u32(static_cast<uint32_t>(s.n));
    write_message(w, frame.message);
    if (w.pos() != out.data() + out.size())  // the sizing pass and the writer disagree: a bug
        return make_error(ErrorCode::kInternal, "encode: size mismatch");
    return ok_status();
}

Result<Bytes> encode(const Frame& frame, const Limits& limits) {
    Bytes out;
    WP_RETURN_IF_ERROR(encode_to(frame, out, limits));
    return out;
}

DecodeResult decode(ByteSpan frame, const Limits& limits) noexcept {
    try {
        return decode_impl(frame, limits);
    } catch (...) {  // std::bad_alloc: the bounds make it unlikely, but never throw out
        DecodeError e;
        e.code = StatusCode::kInternal;
        e.text = "out of memory";
        return e;
    }
}

Error DecodeError::to_error() const {
    return make_error(
        code == StatusCode::kInternal ? ErrorCode::kInternal : ErrorCode::kInvalidArgument,
        std::string(to_string(code)) + ": " + text);
}

std::string clip_text(std::string s, size_t max) {
    if (s.size() <= max) return s;
    size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) --cut;  // continuation
    s.resize(cut);
    return s;
}

}  // namespace waferprov::host::protocol
