#include "chain.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <set>
#include <stdexcept>

#include <openssl/evp.h>

#include "waferprov/ossl.hpp"

namespace waferprov::host::chain {

using nlohmann::json;

bool valid_text(std::string_view s, bool allow_empty) {
    if (s.empty()) return allow_empty;
    return s.size() <= kMaxText && printable_ascii(s);
}

Hash sha256(ByteSpan data) {
    Hash h{};
    unsigned int n = 0;
    if (EVP_Digest(data.data(), data.size(), h.data(), &n, EVP_sha256(), nullptr) != 1 ||
        n != h.size())
        throw std::runtime_error("SHA-256 failed");  // only on OpenSSL memory failure
    return h;
}

Hash chain_step(const Hash& prev, std::string_view payload) {
    Hash h{};
    unsigned int n = 0;
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    const bool ok = ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1 &&
                    EVP_DigestUpdate(ctx.get(), prev.data(), prev.size()) == 1 &&
                    EVP_DigestUpdate(ctx.get(), payload.data(), payload.size()) == 1 &&
                    EVP_DigestFinal_ex(ctx.get(), h.data(), &n) == 1 && n == h.size();
    if (!ok) throw std::runtime_error("SHA-256 failed");  // only on OpenSSL memory failure
    return h;
}

std::string canonical(const json& j) { return j.dump(); }

namespace {

// "wafer", "x", "y" of `loc`: null for a packaged part, which has no wafer position (format 5).
void set_position(json& j, const DieLocation& loc) {
    if (loc.packaged) {
        j["wafer"] = nullptr;
        j["x"] = nullptr;
        j["y"] = nullptr;
    } else {
        j["wafer"] = loc.wafer;
        j["x"] = loc.x;
        j["y"] = loc.y;
    }
}

}  // namespace

json record_json(const LedgerRecord& r) {
    json j = mutable_json(r);
    j["uid"] = to_hex(r.uid);
    j["lot"] = r.loc.lot;
    j["substrate"] = r.loc.substrate;
    set_position(j, r.loc);
    j["serial"] = to_hex(r.serial);
    j["public_key"] = to_hex(r.public_key);
    j["wrapped_key"] = to_hex(r.wrapped);
    j["certificate_sha256"] = to_hex(sha256(r.certificate_der));
    j["issued"] = r.issued_us;
    return j;
}

LedgerRecord chain_form(LedgerRecord r) {
    const Hash h = sha256(r.certificate_der);
    r.certificate_der.assign(h.begin(), h.end());
    return r;
}

bool sha256_matches(ByteSpan hash, ByteSpan data) {
    const Hash h = sha256(data);
    return hash.size() == h.size() && std::equal(h.begin(), h.end(), hash.begin());
}

namespace {

// A JSON string of printable ASCII (valid_text): only '"' and '\' are escaped, as
// nlohmann::json::dump does.
void put_text(std::string& out, std::string_view s) {
    out += '"';
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
}

void put_int(std::string& out, int64_t v) {
    char buf[24];
    const auto res = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, res.ptr);
}

void put_uint(std::string& out, uint64_t v) {
    char buf[24];
    const auto res = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, res.ptr);
}

// A wafer position field (wafer, x or y): null for a packaged part (format 5).
void put_position(std::string& out, const DieLocation& loc, int v) {
    if (loc.packaged)
        out += "null";
    else
        put_int(out, v);
}

}  // namespace

void issue_payload(std::string& out, const LedgerRecord& r, uint64_t seq, int64_t time,
                   uint64_t quota_used) {
    // Members in bytewise key order, as canonical() writes them.
    out.clear();
    out.reserve(660 + r.loc.lot.size() + r.loc.substrate.size() + r.tester.size() + r.bin.size() +
                r.void_reason.size());
    const Hash cert = sha256(r.certificate_der);
    out += "{\"quota_used\":";
    put_uint(out, quota_used);
    out += ",\"record\":{\"bin\":";
    put_text(out, r.bin);
    out += ",\"certificate_sha256\":\"";
    append_hex(out, cert);
    out += "\",\"delivered\":";
    put_int(out, r.delivered_us);
    out += ",\"issued\":";
    put_int(out, r.issued_us);
    out += ",\"lot\":";
    put_text(out, r.loc.lot);
    out += ",\"public_key\":\"";
    append_hex(out, r.public_key);
    out += "\",\"reissues\":";
    put_uint(out, r.reissues);
    out += ",\"result\":";
    put_int(out, r.result_us);
    out += ",\"serial\":\"";
    append_hex(out, r.serial);
    out += "\",\"site\":";
    put_int(out, r.site);
    out += ",\"state\":";
    put_text(out, to_string(r.state));
    out += ",\"substrate\":";
    put_text(out, r.loc.substrate);
    out += ",\"tester\":";
    put_text(out, r.tester);
    out += ",\"uid\":\"";
    append_hex(out, r.uid);
    out += "\",\"updated\":";
    put_int(out, r.updated_us);
    out += ",\"void_reason\":";
    put_text(out, r.void_reason);
    out += ",\"wafer\":";
    put_position(out, r.loc, r.loc.wafer);
    out += ",\"wrapped_key\":\"";
    append_hex(out, r.wrapped);
    out += "\",\"x\":";
    put_position(out, r.loc, r.loc.x);
    out += ",\"y\":";
    put_position(out, r.loc, r.loc.y);
    out += "},\"seq\":";
    put_uint(out, seq);
    out += ",\"time\":";
    put_int(out, time);
    out += ",\"type\":\"ISSUE\",\"uid\":\"";
    append_hex(out, r.uid);
    out += "\"}";
}

namespace {

// mutable_json(r), canonical, appended.
void append_mutable(std::string& out, const LedgerRecord& r) {
    out += "{\"bin\":";
    put_text(out, r.bin);
    out += ",\"delivered\":";
    put_int(out, r.delivered_us);
    out += ",\"reissues\":";
    put_uint(out, r.reissues);
    out += ",\"result\":";
    put_int(out, r.result_us);
    out += ",\"site\":";
    put_int(out, r.site);
    out += ",\"state\":";
    put_text(out, to_string(r.state));
    out += ",\"tester\":";
    put_text(out, r.tester);
    out += ",\"updated\":";
    put_int(out, r.updated_us);
    out += ",\"void_reason\":";
    put_text(out, r.void_reason);
    out += "}";
}

void append_seq_time_type(std::string& out, uint64_t seq, int64_t time, const char* type) {
    out += "\"seq\":";
    put_uint(out, seq);
    out += ",\"time\":";
    put_int(out, time);
    out += ",\"type\":";
    put_text(out, type);
}

}  // namespace

void transition_payload(std::string& out, const char* type, const LedgerRecord& r, uint64_t seq,
                        int64_t time) {
    // {"after":<mutable_json>,"seq":..,"time":..,"type":..,"uid":..}, keys in bytewise order.
    out.clear();
    out.reserve(256 + r.tester.size() + r.bin.size() + r.void_reason.size());
    out += "{\"after\":";
    append_mutable(out, r);
    out += ",";
    append_seq_time_type(out, seq, time, type);
    out += ",\"uid\":\"";
    append_hex(out, r.uid);
    out += "\"}";
}

void deliver_payload(std::string& out, std::span<const LedgerRecord> dies, uint64_t seq,
                     int64_t time) {
    // {"dies":[{"after":..,"uid":..},..],"seq":..,"time":..,"type":"DELIVER"}
    out.clear();
    out.reserve(96 + dies.size() * (240 + (dies.empty() ? 0 : dies[0].tester.size())));
    out += "{\"dies\":[";
    for (size_t i = 0; i < dies.size(); ++i) {
        out += i == 0 ? "{\"after\":" : ",{\"after\":";
        append_mutable(out, dies[i]);
        out += ",\"uid\":\"";
        append_hex(out, dies[i].uid);
        out += "\"}";
    }
    out += "],";
    append_seq_time_type(out, seq, time, "DELIVER");
    out += "}";
}

std::vector<wpid1::Uid> delivered_uids(std::string_view payload) {
    std::vector<wpid1::Uid> out;
    const json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || j.value("type", "") != "DELIVER") return out;
    auto take = [&out](const json& holder) {
        auto it = holder.find("uid");
        if (it == holder.end() || !it->is_string()) return;
        auto bytes = from_hex(it->get<std::string>(), "uid");
        wpid1::Uid u{};
        if (bytes.ok() && bytes->size() == u.size()) {
            std::copy(bytes->begin(), bytes->end(), u.begin());
            out.push_back(u);
        }
    };
    if (auto dies = j.find("dies"); dies != j.end() && dies->is_array()) {
        for (const json& d : *dies)
            if (d.is_object()) take(d);
    } else {
        take(j);
    }
    return out;
}

json mutable_json(const LedgerRecord& r) {
    return json{
        {"state", to_string(r.state)}, {"delivered", r.delivered_us},  {"result", r.result_us},
        {"updated", r.updated_us},     {"tester", r.tester},           {"bin", r.bin},
        {"reissues", r.reissues},      {"void_reason", r.void_reason}, {"site", r.site}};
}

json location_json(const wpid1::Uid& uid, const DieLocation& loc, ByteSpan serial) {
    json j{{"uid", to_hex(uid)},
           {"lot", loc.lot},
           {"serial", to_hex(serial)},
           {"substrate", loc.substrate}};
    set_position(j, loc);
    return j;
}

int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// ---- replay ---------------------------------------------------------------------------------

namespace {

// A malformed event: the field readers return it and Replayer::apply turns it into a problem.
Error bad(std::string text) { return make_error(ErrorCode::kIntegrityFailure, std::move(text)); }

Result<const json*> field(const json& j, const char* key) {
    if (!j.is_object()) return bad("not a JSON object");
    auto it = j.find(key);
    if (it == j.end()) return bad(std::string("missing \"") + key + "\"");
    return &*it;
}

Result<int64_t> get_int(const json& j, const char* key) {
    WP_ASSIGN_OR_RETURN(const json* v, field(j, key));
    if (v->is_number_unsigned()) {
        const auto u = v->get<uint64_t>();
        if (u > static_cast<uint64_t>(INT64_MAX)) return bad(std::string(key) + " too large");
        return static_cast<int64_t>(u);
    }
    if (v->is_number_integer()) return v->get<int64_t>();
    return bad(std::string(key) + " is not an integer");
}

Result<int> get_int32(const json& j, const char* key) {
    WP_ASSIGN_OR_RETURN(const int64_t v, get_int(j, key));
    if (v < INT32_MIN || v > INT32_MAX) return bad(std::string(key) + " out of range");
    return static_cast<int>(v);
}

Result<uint64_t> get_uint(const json& j, const char* key) {
    WP_ASSIGN_OR_RETURN(const int64_t v, get_int(j, key));
    if (v < 0) return bad(std::string(key) + " is negative");
    return static_cast<uint64_t>(v);
}

Result<std::string> get_text(const json& j, const char* key, bool allow_empty = true) {
    WP_ASSIGN_OR_RETURN(const json* v, field(j, key));
    if (!v->is_string()) return bad(std::string(key) + " is not a string");
    auto s = v->get<std::string>();
    if (!valid_text(s, allow_empty)) return bad(std::string(key) + " is not valid text");
    return s;
}

Result<Bytes> get_hex(const json& j, const char* key) {
    WP_ASSIGN_OR_RETURN(const json* v, field(j, key));
    if (!v->is_string()) return bad(std::string(key) + " is not a string");
    const auto& s = v->get_ref<const std::string&>();
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return bad(std::string(key) + " is not lower-case hex");
    auto b = from_hex(s, key);
    if (!b.ok()) return bad(b.error().message);
    return std::move(*b);
}

template <size_t N>
Result<std::array<uint8_t, N>> get_hex_fixed(const json& j, const char* key) {
    WP_ASSIGN_OR_RETURN(const Bytes b, get_hex(j, key));
    if (b.size() != N) return bad(std::string(key) + " has the wrong length");
    std::array<uint8_t, N> a{};
    std::copy(b.begin(), b.end(), a.begin());
    return a;
}

Result<DieState> get_state(const json& j, const char* key) {
    WP_ASSIGN_OR_RETURN(const std::string text, get_text(j, key));
    auto s = die_state_from_string(text);
    if (!s.ok()) return bad(s.error().message);
    return *s;
}

Status check_keys(const json& j, std::initializer_list<const char*> keys) {
    if (!j.is_object()) return bad("not a JSON object");
    if (j.size() != keys.size()) return bad("unexpected members");
    for (const char* k : keys)
        if (!j.contains(k)) return bad(std::string("missing \"") + k + "\"");
    return ok_status();
}

// The mutable fields; the caller has checked the object's key set. Format 2 has no site.
Status read_mutable_fields(const json& m, LedgerRecord& r, bool legacy) {
    if (!legacy) {
        WP_ASSIGN_OR_RETURN(const int64_t site, get_int(m, "site"));
        if (site < -1 || site > 65535) return bad("site out of range");
        r.site = static_cast<int>(site);
    }
    WP_ASSIGN_OR_RETURN(r.state, get_state(m, "state"));
    WP_ASSIGN_OR_RETURN(r.delivered_us, get_int(m, "delivered"));
    WP_ASSIGN_OR_RETURN(r.result_us, get_int(m, "result"));
    WP_ASSIGN_OR_RETURN(r.updated_us, get_int(m, "updated"));
    WP_ASSIGN_OR_RETURN(r.tester, get_text(m, "tester"));
    WP_ASSIGN_OR_RETURN(r.bin, get_text(m, "bin"));
    WP_ASSIGN_OR_RETURN(const uint64_t reissues, get_uint(m, "reissues"));
    if (reissues > UINT32_MAX) return bad("reissues out of range");
    r.reissues = static_cast<uint32_t>(reissues);
    WP_ASSIGN_OR_RETURN(r.void_reason, get_text(m, "void_reason"));
    return ok_status();
}

Status read_mutable(const json& m, LedgerRecord& r, bool legacy) {
    if (legacy) {
        WP_RETURN_IF_ERROR(check_keys(m, {"state", "delivered", "result", "updated", "tester",
                                          "bin", "reissues", "void_reason"}));
    } else {
        WP_RETURN_IF_ERROR(check_keys(m, {"state", "delivered", "result", "updated", "tester",
                                          "bin", "reissues", "void_reason", "site"}));
    }
    return read_mutable_fields(m, r, legacy);
}

// Whether the location object `l` names a packaged part: "wafer", "x" and "y" all null, which
// format 5 allows (`packaged_ok`); an error if only some are null or the format does not allow
// them.
Result<bool> packaged_location(const json& l, bool packaged_ok) {
    int nulls = 0;
    for (const char* k : {"wafer", "x", "y"}) {
        WP_ASSIGN_OR_RETURN(const json* v, field(l, k));
        if (v->is_null()) ++nulls;
    }
    if (nulls == 0) return false;
    if (nulls != 3) return bad("wafer, x and y are null only together (a packaged part)");
    if (!packaged_ok) return bad("a packaged part's record (null wafer, x, y) before format 5");
    WP_ASSIGN_OR_RETURN(const std::string substrate, get_text(l, "substrate"));
    if (!substrate.empty()) return bad("a packaged part has no substrate id");
    return true;
}

Status check_location(const json& l, bool legacy, bool packaged_ok) {
    if (legacy) {
        WP_RETURN_IF_ERROR(check_keys(l, {"uid", "lot", "wafer", "x", "y", "serial"}));
    } else {
        WP_RETURN_IF_ERROR(check_keys(l, {"uid", "lot", "wafer", "x", "y", "serial", "substrate"}));
        WP_RETURN_IF_ERROR(get_text(l, "substrate"));
    }
    WP_RETURN_IF_ERROR(get_hex_fixed<wpid1::kUidSize>(l, "uid"));
    WP_RETURN_IF_ERROR(get_text(l, "lot", false));
    WP_ASSIGN_OR_RETURN(const bool packaged, packaged_location(l, packaged_ok && !legacy));
    if (!packaged) {
        WP_RETURN_IF_ERROR(get_int32(l, "wafer"));
        WP_RETURN_IF_ERROR(get_int32(l, "x"));
        WP_RETURN_IF_ERROR(get_int32(l, "y"));
    }
    WP_RETURN_IF_ERROR(get_hex(l, "serial"));
    return ok_status();
}

// The record of an ISSUE event, with the chain's own keys checked.
Result<LedgerRecord> read_issued_record(const json& j, bool legacy, bool packaged_ok) {
    WP_ASSIGN_OR_RETURN(const json* rjp, field(j, "record"));
    const json& rj = *rjp;
    if (legacy) {
        WP_RETURN_IF_ERROR(
            check_keys(rj, {"uid", "lot", "wafer", "x", "y", "serial", "public_key", "wrapped_key",
                            "certificate_sha256", "issued", "state", "delivered", "result",
                            "updated", "tester", "bin", "reissues", "void_reason"}));
    } else {
        WP_RETURN_IF_ERROR(check_keys(rj, {"uid",        "lot",         "wafer",
                                           "x",          "y",           "serial",
                                           "public_key", "wrapped_key", "certificate_sha256",
                                           "issued",     "state",       "delivered",
                                           "result",     "updated",     "tester",
                                           "bin",        "reissues",    "void_reason",
                                           "substrate",  "site"}));
    }
    LedgerRecord r;
    WP_ASSIGN_OR_RETURN(r.uid, get_hex_fixed<wpid1::kUidSize>(rj, "uid"));
    WP_ASSIGN_OR_RETURN(const wpid1::Uid event_uid, get_hex_fixed<wpid1::kUidSize>(j, "uid"));
    if (event_uid != r.uid) return bad("uid differs from the record's");
    WP_ASSIGN_OR_RETURN(r.loc.lot, get_text(rj, "lot", false));
    WP_ASSIGN_OR_RETURN(r.loc.packaged, packaged_location(rj, packaged_ok && !legacy));
    if (!r.loc.packaged) {
        WP_ASSIGN_OR_RETURN(r.loc.wafer, get_int32(rj, "wafer"));
        WP_ASSIGN_OR_RETURN(r.loc.x, get_int32(rj, "x"));
        WP_ASSIGN_OR_RETURN(r.loc.y, get_int32(rj, "y"));
    }
    if (!legacy) {
        WP_ASSIGN_OR_RETURN(r.loc.substrate, get_text(rj, "substrate"));
    }
    WP_ASSIGN_OR_RETURN(r.serial, get_hex(rj, "serial"));
    WP_ASSIGN_OR_RETURN(r.public_key, get_hex_fixed<65>(rj, "public_key"));
    WP_ASSIGN_OR_RETURN(r.wrapped, get_hex_fixed<wpid1::kWrappedKeySize>(rj, "wrapped_key"));
    WP_ASSIGN_OR_RETURN(const Hash cert, get_hex_fixed<32>(rj, "certificate_sha256"));
    r.certificate_der.assign(cert.begin(), cert.end());  // chain_form
    WP_ASSIGN_OR_RETURN(r.issued_us, get_int(rj, "issued"));
    WP_RETURN_IF_ERROR(read_mutable_fields(rj, r, legacy));
    return r;
}

// Whether `type` may take a record from `before` to `after`.
bool legal_transition(const std::string& type, const LedgerRecord& before,
                      const LedgerRecord& after) {
    if (type == "REISSUE")
        return before.state != DieState::kVoid && after.state == before.state &&
               after.reissues == before.reissues + 1 && after.bin == before.bin &&
               after.delivered_us == before.delivered_us && after.result_us == before.result_us &&
               after.void_reason.empty();
    if (type == "DELIVER")
        return (before.state == DieState::kIssued || before.state == DieState::kDelivered ||
                before.state == DieState::kFailed) &&
               after.state == DieState::kDelivered && after.reissues == before.reissues &&
               after.void_reason.empty();
    if (type == "RESULT")
        return before.state == DieState::kDelivered &&
               (after.state == DieState::kProgrammed || after.state == DieState::kFailed) &&
               after.reissues == before.reissues && after.void_reason.empty() &&
               after.delivered_us == before.delivered_us;
    // VOID
    return before.state != DieState::kVoid && after.state == DieState::kVoid &&
           after.reissues == before.reissues && !after.void_reason.empty();
}

}  // namespace

void Replayer::problem(std::string text) {
    if (problems_.size() < kMaxProblems)
        problems_.push_back(std::move(text));
    else if (problems_.size() == kMaxProblems)
        problems_.emplace_back("(further problems not listed)");
}

bool Replayer::apply(std::string_view payload, const std::optional<Hash>& stored_hash) {
    const uint64_t seq = events_ + 1;
    const std::string where = "event " + std::to_string(seq);
    const Hash next = chain_step(head_, payload);
    if (stored_hash && *stored_hash != next)
        problem(where + ": stored hash " + to_hex(*stored_hash) + " does not match the chain (" +
                to_hex(next) + ")");
    head_ = next;
    events_ = seq;
    const Status st = [&]() -> Status {
        const json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded()) return bad("malformed JSON");
        if (canonical(j) != payload) return bad("not in canonical form");
        WP_ASSIGN_OR_RETURN(const uint64_t got_seq, get_uint(j, "seq"));
        if (got_seq != seq)
            return bad("carries seq " + std::to_string(got_seq) +
                       " (events deleted, inserted or reordered)");
        WP_ASSIGN_OR_RETURN(const std::string type, get_text(j, "type", false));
        WP_ASSIGN_OR_RETURN(const int64_t time, get_int(j, "time"));
        return apply_parsed(j, seq, type, time);
    }();
    if (!st.ok()) problem(where + ": " + st.error().message);
    return st.ok();
}

Status Replayer::apply_parsed(const json& j, uint64_t seq, const std::string& type, int64_t time) {
    if (type == "GENESIS") return apply_genesis(j, seq, time);
    if (!genesis_) return bad("the chain does not start with GENESIS");
    if (type == "ISSUE") return apply_issue(j);
    if (type == "DELIVER" && format_ >= 4) return apply_deliver_batch(j);
    if (type == "REISSUE" || type == "DELIVER" || type == "RESULT" || type == "VOID")
        return apply_transition(j, type);
    if (type == "ALARM") {
        WP_RETURN_IF_ERROR(
            check_keys(j, {"seq", "type", "time", "reason", "offered", "existing", "tester"}));
        WP_RETURN_IF_ERROR(get_text(j, "reason", false));
        WP_RETURN_IF_ERROR(get_text(j, "tester"));
        WP_ASSIGN_OR_RETURN(const json* offered, field(j, "offered"));
        WP_ASSIGN_OR_RETURN(const json* existing, field(j, "existing"));
        WP_RETURN_IF_ERROR(check_location(*offered, legacy(), format_ >= 5));
        return check_location(*existing, legacy(), format_ >= 5);
    }
    if (type == "QUOTA_REFUSED") {
        WP_RETURN_IF_ERROR(
            check_keys(j, {"seq", "type", "time", "offered", "quota", "quota_used", "tester"}));
        WP_ASSIGN_OR_RETURN(const json* offered, field(j, "offered"));
        WP_RETURN_IF_ERROR(check_location(*offered, legacy(), format_ >= 5));
        WP_RETURN_IF_ERROR(get_text(j, "tester"));
        WP_ASSIGN_OR_RETURN(const uint64_t quota, get_uint(j, "quota"));
        WP_ASSIGN_OR_RETURN(const uint64_t used, get_uint(j, "quota_used"));
        if (quota != genesis_->quota || used != quota_used_)
            return bad("quota figures do not match the chain");
        return ok_status();
    }
    if (type == "MIGRATE") return apply_migrate(j);
    if (type == "FINAL_CHALLENGE" || type == "FINAL_RESULT") return apply_final(j, type, time);
    if (type == "FINAL_PROVISION" && format_ >= 5) return apply_final_provision(j, time);
    return bad("event " + std::to_string(seq) + " (" + type + "): unknown event type");
}

Status Replayer::apply_genesis(const json& j, uint64_t seq, int64_t time) {
    WP_RETURN_IF_ERROR(
        check_keys(j, {"seq", "type", "time", "format", "job_id", "customer", "product", "quota"}));
    if (seq != 1) return bad("GENESIS is not the first event");
    WP_ASSIGN_OR_RETURN(const std::string format, get_text(j, "format"));
    if (format == kLedgerFormat)
        format_ = 5;
    else if (format == kWaferOnlyFormat)
        format_ = 4;
    else if (format == kPerDieDeliverFormat)
        format_ = 3;
    else if (format == kLegacyLedgerFormat)
        format_ = 2;
    else
        return bad("unknown ledger format");
    Genesis g;
    WP_ASSIGN_OR_RETURN(g.job_id, get_text(j, "job_id", false));
    WP_ASSIGN_OR_RETURN(g.customer, get_text(j, "customer"));
    WP_ASSIGN_OR_RETURN(g.product, get_text(j, "product"));
    WP_ASSIGN_OR_RETURN(g.quota, get_uint(j, "quota"));
    g.time_us = time;
    genesis_ = std::move(g);
    return ok_status();
}

Status Replayer::apply_issue(const json& j) {
    WP_RETURN_IF_ERROR(check_keys(j, {"seq", "type", "time", "uid", "record", "quota_used"}));
    WP_ASSIGN_OR_RETURN(LedgerRecord r, read_issued_record(j, legacy(), format_ >= 5));
    if (r.state != DieState::kIssued || r.reissues != 0 || !r.bin.empty() || !r.void_reason.empty())
        return bad("a new record must be ISSUED with no history");
    if (r.serial.empty() || r.serial.size() > 20) return bad("serial length");
    const std::string uid_hex = to_hex(r.uid);
    if (records_.count(r.uid) != 0) return bad("UID " + uid_hex + " issued twice");
    const auto key = std::make_tuple(r.loc.lot, r.loc.wafer, r.loc.x, r.loc.y);
    if (!r.loc.packaged && by_location_.count(key) != 0)
        return bad(r.loc.describe() + " issued twice");
    if (by_serial_.count(r.serial) != 0) return bad("serial " + to_hex(r.serial) + " issued twice");
    WP_ASSIGN_OR_RETURN(const uint64_t used, get_uint(j, "quota_used"));
    if (used != quota_used_ + 1)
        return bad("quota_used " + std::to_string(used) + " but " +
                   std::to_string(quota_used_ + 1) + " identities issued");
    if (used > genesis_->quota) return bad("the quota is exceeded");
    if (!legacy() && !r.loc.packaged) WP_RETURN_IF_ERROR(bind_wafer(r.loc));
    quota_used_ = used;
    if (!r.loc.packaged) by_location_.emplace(key, r.uid);
    by_serial_.emplace(r.serial, r.uid);
    records_.emplace(r.uid, std::move(r));
    return ok_status();
}

Status Replayer::apply_transition(const json& j, const std::string& type) {
    WP_RETURN_IF_ERROR(check_keys(j, {"seq", "type", "time", "uid", "after"}));
    WP_ASSIGN_OR_RETURN(const wpid1::Uid uid, get_hex_fixed<wpid1::kUidSize>(j, "uid"));
    WP_ASSIGN_OR_RETURN(const json* aj, field(j, "after"));
    return apply_change(uid, *aj, type);
}

Status Replayer::apply_deliver_batch(const json& j) {
    WP_RETURN_IF_ERROR(check_keys(j, {"seq", "type", "time", "dies"}));
    WP_ASSIGN_OR_RETURN(const json* dies, field(j, "dies"));
    if (!dies->is_array() || dies->empty()) return bad("DELIVER dies is not a non-empty array");
    std::set<wpid1::Uid> seen;
    for (const json& d : *dies) {
        WP_RETURN_IF_ERROR(check_keys(d, {"after", "uid"}));
        WP_ASSIGN_OR_RETURN(const wpid1::Uid uid, get_hex_fixed<wpid1::kUidSize>(d, "uid"));
        if (!seen.insert(uid).second) return bad("DELIVER lists UID " + to_hex(uid) + " twice");
        WP_ASSIGN_OR_RETURN(const json* aj, field(d, "after"));
        WP_RETURN_IF_ERROR(apply_change(uid, *aj, "DELIVER"));
    }
    return ok_status();
}

Status Replayer::apply_change(const wpid1::Uid& uid, const json& after_json,
                              const std::string& type) {
    auto it = records_.find(uid);
    if (it == records_.end()) return bad("UID " + to_hex(uid) + " was never issued");
    LedgerRecord after = it->second;
    WP_RETURN_IF_ERROR(read_mutable(after_json, after, legacy()));
    const LedgerRecord& before = it->second;
    if (!legal_transition(type, before, after))
        return bad(std::string("illegal transition ") + to_string(before.state) + " -> " +
                   to_string(after.state) + " for UID " + to_hex(uid));
    it->second = std::move(after);
    return ok_status();
}

Status Replayer::apply_final(const json& j, const std::string& type, int64_t time) {
    const bool challenge = type == "FINAL_CHALLENGE";
    if (challenge)
        WP_RETURN_IF_ERROR(check_keys(
            j, {"seq", "type", "time", "uid", "challenge", "session", "tester", "location"}));
    else
        WP_RETURN_IF_ERROR(check_keys(
            j, {"seq", "type", "time", "uid", "challenge", "session", "tester", "outcome", "bin"}));
    WP_ASSIGN_OR_RETURN(const wpid1::Uid uid, get_hex_fixed<wpid1::kUidSize>(j, "uid"));
    WP_ASSIGN_OR_RETURN(const auto nonce, get_hex_fixed<32>(j, "challenge"));
    WP_ASSIGN_OR_RETURN(const std::string session, get_text(j, "session", false));
    WP_ASSIGN_OR_RETURN(const std::string tester, get_text(j, "tester"));
    if (session.size() != 16 || session.find_first_not_of("0123456789abcdef") != std::string::npos)
        return bad("session '" + session + "' is not 16 lower-case hex digits");
    const uint64_t session_id = std::stoull(session, nullptr, 16);
    auto rec = records_.find(uid);
    if (rec == records_.end()) return bad("UID " + to_hex(uid) + " was never issued");
    if (challenge) {
        if (rec->second.state != DieState::kProgrammed)
            return bad("final-test challenge for UID " + to_hex(uid) + " in state " +
                       to_string(rec->second.state) + ", not PROGRAMMED");
        WP_ASSIGN_OR_RETURN(const json* loc, field(j, "location"));
        WP_RETURN_IF_ERROR(
            check_keys(*loc, {"lot", "handler", "site", "carrier", "row", "column"}));
        // A part seen for the first time is CHALLENGED; one seen before (a verdict, or
        // PROVISIONED here) keeps its state until it answers.
        auto [it, first] = finals_.try_emplace(uid);
        FinalRecord& f = it->second;
        f.uid = uid;
        if (first) f.state = FinalState::kChallenged;
        WP_ASSIGN_OR_RETURN(f.loc.lot, get_text(*loc, "lot", false));
        WP_ASSIGN_OR_RETURN(f.loc.handler, get_text(*loc, "handler", false));
        WP_ASSIGN_OR_RETURN(f.loc.carrier, get_text(*loc, "carrier"));
        WP_ASSIGN_OR_RETURN(f.loc.site, get_int32(*loc, "site"));
        WP_ASSIGN_OR_RETURN(f.loc.row, get_int32(*loc, "row"));
        WP_ASSIGN_OR_RETURN(f.loc.column, get_int32(*loc, "column"));
        f.nonce = nonce;
        f.session = session_id;
        f.open = true;
        f.tester = tester;
        ++f.challenges;
        f.updated_us = time;
        return ok_status();
    }
    WP_ASSIGN_OR_RETURN(const std::string outcome, get_text(j, "outcome", false));
    if (outcome != "VERIFIED" && outcome != "FAILED" && outcome != "MISMATCH")
        return bad("final-test outcome '" + outcome + "' is not VERIFIED, FAILED or MISMATCH");
    WP_ASSIGN_OR_RETURN(const std::string bin, get_text(j, "bin"));
    auto open = finals_.find(uid);
    if (open == finals_.end() || !open->second.open || open->second.nonce != nonce ||
        open->second.session != session_id)
        return bad("final-test result for UID " + to_hex(uid) +
                   " answers no open challenge of its session (a replayed challenge)");
    FinalRecord& f = open->second;
    f.open = false;
    f.state = outcome == "VERIFIED" ? FinalState::kVerified
              : outcome == "FAILED" ? FinalState::kFailed
                                    : FinalState::kMismatch;
    f.bin = bin;
    f.tester = tester;
    f.updated_us = time;
    return ok_status();
}

Status Replayer::apply_final_provision(const json& j, int64_t time) {
    WP_RETURN_IF_ERROR(check_keys(j, {"seq", "type", "time", "uid", "tester", "location"}));
    WP_ASSIGN_OR_RETURN(const wpid1::Uid uid, get_hex_fixed<wpid1::kUidSize>(j, "uid"));
    auto rec = records_.find(uid);
    if (rec == records_.end()) return bad("UID " + to_hex(uid) + " was never issued");
    if (!rec->second.loc.packaged)
        return bad("FINAL_PROVISION for UID " + to_hex(uid) + ", which sits on a wafer");
    if (finals_.count(uid) != 0)
        return bad("FINAL_PROVISION for UID " + to_hex(uid) + ", which final test saw before");
    WP_ASSIGN_OR_RETURN(const json* loc, field(j, "location"));
    WP_RETURN_IF_ERROR(check_keys(*loc, {"lot", "handler", "site", "carrier", "row", "column"}));
    FinalRecord f;
    f.uid = uid;
    f.state = FinalState::kProvisioned;
    WP_ASSIGN_OR_RETURN(f.loc.lot, get_text(*loc, "lot", false));
    if (f.loc.lot != rec->second.loc.lot)
        return bad("FINAL_PROVISION places UID " + to_hex(uid) + " in lot " + f.loc.lot +
                   ", its record says " + rec->second.loc.lot);
    WP_ASSIGN_OR_RETURN(f.loc.handler, get_text(*loc, "handler", false));
    WP_ASSIGN_OR_RETURN(f.loc.carrier, get_text(*loc, "carrier"));
    WP_ASSIGN_OR_RETURN(f.loc.site, get_int32(*loc, "site"));
    WP_ASSIGN_OR_RETURN(f.loc.row, get_int32(*loc, "row"));
    WP_ASSIGN_OR_RETURN(f.loc.column, get_int32(*loc, "column"));
    WP_ASSIGN_OR_RETURN(f.tester, get_text(j, "tester"));
    f.updated_us = time;
    finals_.emplace(uid, std::move(f));
    return ok_status();
}

Status Replayer::apply_migrate(const json& j) {
    WP_ASSIGN_OR_RETURN(const std::string from, get_text(j, "from_format"));
    WP_ASSIGN_OR_RETURN(const std::string to, get_text(j, "to_format"));
    if (format_ == 4 && from == kWaferOnlyFormat && to == kLedgerFormat) {
        // Packaged parts may be issued from here on; the records are unchanged.
        WP_RETURN_IF_ERROR(check_keys(j, {"seq", "type", "time", "from_format", "to_format"}));
        format_ = 5;
        return ok_status();
    }
    if (format_ == 3 && from == kPerDieDeliverFormat && to == kWaferOnlyFormat) {
        // One DELIVER per touchdown from here on; the records are unchanged.
        WP_RETURN_IF_ERROR(check_keys(j, {"seq", "type", "time", "from_format", "to_format"}));
        format_ = 4;
        return ok_status();
    }
    if (format_ != 2 || from != kLegacyLedgerFormat || to != kPerDieDeliverFormat)
        return bad("MIGRATE from a format this ledger is not in");
    WP_RETURN_IF_ERROR(
        check_keys(j, {"seq", "type", "time", "from_format", "to_format", "wafers"}));
    WP_ASSIGN_OR_RETURN(const json* wafers, field(j, "wafers"));
    if (!wafers->is_array()) return bad("wafers is not an array");
    std::map<std::pair<std::string, int>, std::string> given;
    for (const json& w : *wafers) {
        WP_RETURN_IF_ERROR(check_keys(w, {"lot", "wafer", "substrate"}));
        WP_ASSIGN_OR_RETURN(const std::string lot, get_text(w, "lot", false));
        WP_ASSIGN_OR_RETURN(const int wafer, get_int32(w, "wafer"));
        WP_ASSIGN_OR_RETURN(std::string substrate, get_text(w, "substrate", false));
        if (!given.emplace(std::pair{lot, wafer}, std::move(substrate)).second)
            return bad("MIGRATE lists " + lot + " wafer " + std::to_string(wafer) + " twice");
    }
    format_ = 3;
    for (auto& [uid, r] : records_) {
        auto it = given.find({r.loc.lot, r.loc.wafer});
        if (it == given.end())
            return bad("MIGRATE gives no substrate id for " + r.loc.lot + " wafer " +
                       std::to_string(r.loc.wafer));
        r.loc.substrate = it->second;
        WP_RETURN_IF_ERROR(bind_wafer(r.loc));
    }
    return ok_status();
}

Status Replayer::bind_wafer(const DieLocation& loc) {
    const auto wafer = std::pair{loc.lot, loc.wafer};
    auto [it, fresh] = substrate_of_.emplace(wafer, loc.substrate);
    if (!fresh && it->second != loc.substrate)
        return bad(loc.lot + " wafer " + std::to_string(loc.wafer) + " is substrate '" +
                   it->second + "', not '" + loc.substrate + "'");
    if (loc.substrate.empty()) return ok_status();
    auto [w, new_id] = wafer_of_.emplace(loc.substrate, wafer);
    if (!new_id && w->second != wafer)
        return bad("substrate '" + loc.substrate + "' is " + w->second.first + " wafer " +
                   std::to_string(w->second.second) + ", not wafer " + std::to_string(loc.wafer));
    return ok_status();
}

// ---- base64 ---------------------------------------------------------------------------------

namespace {
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64_encode(ByteSpan data) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= data.size(); i += 3) {
        const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
        out += kB64[v >> 18];
        out += kB64[(v >> 12) & 63];
        out += kB64[(v >> 6) & 63];
        out += kB64[v & 63];
    }
    if (data.size() - i == 1) {
        const uint32_t v = uint32_t{data[i]} << 16;
        out += kB64[v >> 18];
        out += kB64[(v >> 12) & 63];
        out += "==";
    } else if (data.size() - i == 2) {
        const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8);
        out += kB64[v >> 18];
        out += kB64[(v >> 12) & 63];
        out += kB64[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

std::optional<Bytes> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    Bytes out;
    out.reserve(text.size() / 4 * 3);
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    for (size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = text[i + static_cast<size_t>(k)];
            if (c == '=' && last && k >= 2) {
                v[k] = 0;
                ++pad;
            } else {
                if (pad != 0) return std::nullopt;
                v[k] = val(c);
                if (v[k] < 0) return std::nullopt;
            }
        }
        const uint32_t w = (static_cast<uint32_t>(v[0]) << 18) |
                           (static_cast<uint32_t>(v[1]) << 12) |
                           (static_cast<uint32_t>(v[2]) << 6) | static_cast<uint32_t>(v[3]);
        out.push_back(static_cast<uint8_t>(w >> 16));
        if (pad < 2) out.push_back(static_cast<uint8_t>(w >> 8));
        if (pad < 1) out.push_back(static_cast<uint8_t>(w));
    }
    // Only the canonical encoding is accepted (no stray bits in the padding).
    if (base64_encode(out) != text) return std::nullopt;
    return out;
}

}  // namespace waferprov::host::chain
