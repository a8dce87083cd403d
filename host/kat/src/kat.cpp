#include "waferprov/kat.hpp"
#include "waferprov/files.hpp"

#include <sstream>

#include <nlohmann/json.hpp>

namespace waferprov::kat {
namespace {

using json = nlohmann::json;

// A malformed file: names the file, the case and the field.
struct FileError {
    Error error;
};

class CaseRunner {
public:
    CaseRunner(Accelerator& backend, const std::filesystem::path& file, const Options& options)
        : backend_(backend), file_(file), options_(options) {}

    Counts counts;

    std::string where(const json& tc) const {
        std::ostringstream o;
        o << file_.filename().string();
        if (tc.contains("tcId")) o << " tcId " << tc["tcId"].dump();
        return o.str();
    }

    [[noreturn]] void malformed(const json& tc, const std::string& what) const {
        throw FileError{make_error(ErrorCode::kInvalidArgument, where(tc) + ": " + what)};
    }

    std::string str(const json& obj, const char* field) const {
        if (!obj.contains(field)) malformed(obj, std::string("missing field '") + field + "'");
        if (!obj[field].is_string())
            malformed(obj, std::string("field '") + field + "' is not a string");
        return obj[field].get<std::string>();
    }

    Bytes hex(const json& obj, const char* field) const {
        auto b = from_hex(str(obj, field), field);
        if (!b.ok()) malformed(obj, b.error().message);
        return std::move(b).value();
    }

    std::string result_of(const json& tc) const {
        std::string r = str(tc, "result");
        if (r != "valid" && r != "invalid" && r != "acceptable")
            malformed(tc, "result must be valid, invalid or acceptable, got '" + r + "'");
        return r;
    }

    void pass() { ++counts.passed; }
    void skip(const Error& why) {
        ++counts.skipped;
        auto& r = counts.skip_reasons;
        if (std::find(r.begin(), r.end(), why.message) == r.end()) r.push_back(why.message);
    }
    void fail(const json& tc, const std::string& why) {
        ++counts.failed;
        std::string c = tc.contains("comment") && tc["comment"].is_string()
                            ? " (" + tc["comment"].get<std::string>() + ")"
                            : "";
        counts.failures.push_back(where(tc) + c + ": " + why);
    }

    static bool unsupported(const Error& e) { return e.code == ErrorCode::kUnsupported; }

    void keywrap_case(const json& tc) {
        const std::string result = result_of(tc);
        const Bytes key = hex(tc, "key"), msg = hex(tc, "msg"), ct = hex(tc, "ct");
        auto unwrapped = backend_.aes_kw_unwrap(key, ct);
        if (!unwrapped.ok() && unsupported(unwrapped.error())) return skip(unwrapped.error());
        if (result == "valid") {
            auto wrapped = backend_.aes_kw_wrap(key, msg);
            if (!wrapped.ok() && unsupported(wrapped.error())) return skip(wrapped.error());
            if (!wrapped.ok()) return fail(tc, "wrap failed: " + wrapped.error().describe());
            if (*wrapped != ct) return fail(tc, "wrap gave " + to_hex(*wrapped));
            if (!unwrapped.ok()) return fail(tc, "unwrap failed: " + unwrapped.error().describe());
            if (!ct_equal(unwrapped->span(), msg)) return fail(tc, "unwrap gave the wrong key");
            return pass();
        }
        if (result == "invalid") {
            if (unwrapped.ok()) return fail(tc, "unwrap accepted an invalid wrapped key");
            return pass();
        }
        // acceptable: rejecting is fine; accepting must give the listed key.
        if (unwrapped.ok() && !ct_equal(unwrapped->span(), msg))
            return fail(tc, "unwrap accepted and gave a different key");
        pass();
    }

    void mac_case(const json& group, const json& tc) {
        const std::string result = result_of(tc);
        if (!group.contains("tagSize") || !group["tagSize"].is_number_unsigned())
            malformed(group, "test group lacks a numeric tagSize");
        const size_t tag_bytes = group["tagSize"].get<size_t>() / 8;
        const Bytes key = hex(tc, "key"), msg = hex(tc, "msg"), tag = hex(tc, "tag");
        auto mac = backend_.aes_cmac(key, msg);
        if (!mac.ok() && unsupported(mac.error())) return skip(mac.error());
        const bool matches = mac.ok() && tag_bytes <= 16 && tag.size() == tag_bytes &&
                             ct_equal(ByteSpan(mac->data(), tag_bytes), tag);
        if (result == "valid") {
            if (!mac.ok()) return fail(tc, "CMAC failed: " + mac.error().describe());
            if (!matches)
                return fail(
                    tc, "tag " + to_hex(ByteSpan(mac->data(), std::min<size_t>(tag_bytes, 16))));
            return pass();
        }
        if (result == "invalid" && matches) return fail(tc, "an invalid tag verified");
        pass();
    }

    void basemul_case(const json& tc) {
        const std::string result = result_of(tc);
        const Bytes d = hex(tc, "d");
        auto q = backend_.p256_base_mul(d);
        if (!q.ok() && unsupported(q.error())) return skip(q.error());
        if (result == "valid") {
            if (!q.ok()) return fail(tc, "d*G failed: " + q.error().describe());
            if (to_hex(q->x) != str(tc, "qx") || to_hex(q->y) != str(tc, "qy"))
                return fail(tc, "d*G = (" + to_hex(q->x) + ", " + to_hex(q->y) + ")");
            return pass();
        }
        if (q.ok()) return fail(tc, "an invalid scalar was accepted");
        if (result == "invalid" && q.error().code != ErrorCode::kInvalidScalar &&
            q.error().code != ErrorCode::kInvalidArgument)
            return fail(tc, "rejected for the wrong reason: " + q.error().describe());
        pass();
    }

    void wpid1_group(const json& group) {
        const Bytes kik = hex(group, "kik"), entropy = hex(group, "entropy");
        const Bytes pers =
            group.contains("personalization") ? hex(group, "personalization") : Bytes{};
        if (kik.size() != 32) malformed(group, "kik must be 32 bytes");
        if (!group.contains("tests") || !group["tests"].is_array())
            malformed(group, "group has no tests array");
        // The KIK reaches the engine only wrapped under its device key, as in a job.
        if (!options_.wrap_kik)
            throw FileError{make_error(ErrorCode::kInvalidArgument,
                                       where(group) + ": no way to wrap the KIK for this backend")};
        auto wrapped = options_.wrap_kik(kik);
        if (!wrapped.ok())
            throw FileError{wrapped.error().with_context(where(group) + ": wrapping KIK")};
        if (auto st = backend_.load_kik(*wrapped); !st.ok())
            throw FileError{st.error().with_context(where(group) + ": loading KIK")};
        if (auto st = backend_.instantiate(entropy, pers, wpid1::kMaxReseedInterval); !st.ok())
            throw FileError{st.error().with_context(where(group) + ": instantiating DRBG")};
        uint64_t seq = 0;
        for (const auto& tc : group["tests"]) {
            const std::string result = result_of(tc);
            const Bytes uid = hex(tc, "uid");
            if (uid.size() != wpid1::kUidSize) malformed(tc, "uid must be 16 bytes");
            wpid1::Uid u;
            std::copy(uid.begin(), uid.end(), u.begin());
            auto ticket = backend_.submit(std::span(&u, 1));
            if (!ticket.ok()) {
                fail(tc, "submit failed: " + ticket.error().describe());
                continue;
            }
            auto recs = backend_.collect(*ticket);
            if (!recs.ok()) {
                fail(tc, "collect failed: " + recs.error().describe());
                continue;
            }
            const auto& r = recs->front();
            const bool same = r.sequence == seq && r.uid == u && to_hex(r.x) == str(tc, "qx") &&
                              to_hex(r.y) == str(tc, "qy") &&
                              to_hex(r.wrapped) == str(tc, "wrapped");
            ++seq;
            if (result == "valid" && !same)
                fail(tc, "record seq " + std::to_string(r.sequence) + " X " + to_hex(r.x) + " Y " +
                             to_hex(r.y) + " wrapped " + to_hex(r.wrapped));
            else if (result == "invalid" && same)
                fail(tc, "the backend reproduced a record listed as invalid");
            else
                pass();
        }
    }

    Counts run(const json& doc) {
        if (!doc.is_object()) malformed(doc, "top level is not an object");
        const std::string algorithm = str(doc, "algorithm");
        const std::string schema = doc.contains("schema") && doc["schema"].is_string()
                                       ? doc["schema"].get<std::string>()
                                       : "";
        if (!doc.contains("testGroups") || !doc["testGroups"].is_array())
            malformed(doc, "no testGroups array");
        enum class Kind { kKeywrap, kMac, kBaseMul, kWpid1 } kind;
        if (algorithm == "AES-WRAP" && schema.rfind("keywrap_test_schema", 0) == 0)
            kind = Kind::kKeywrap;
        else if (algorithm == "AES-CMAC" && schema.rfind("mac_test_schema", 0) == 0)
            kind = Kind::kMac;
        else if (algorithm == "P256-BASEMUL")
            kind = Kind::kBaseMul;
        else if (algorithm == "WPID-1")
            kind = Kind::kWpid1;
        else
            malformed(doc, "unsupported algorithm/schema '" + algorithm + "'/'" + schema +
                               "' (known: AES-WRAP keywrap_test_schema, AES-CMAC mac_test_schema, "
                               "P256-BASEMUL, WPID-1)");
        for (const auto& group : doc["testGroups"]) {
            if (!group.is_object()) malformed(doc, "a test group is not an object");
            if (kind == Kind::kWpid1) {
                wpid1_group(group);
                continue;
            }
            if (!group.contains("tests") || !group["tests"].is_array())
                malformed(group, "group has no tests array");
            for (const auto& tc : group["tests"]) {
                if (!tc.is_object()) malformed(group, "a test case is not an object");
                switch (kind) {
                    case Kind::kKeywrap: keywrap_case(tc); break;
                    case Kind::kMac: mac_case(group, tc); break;
                    case Kind::kBaseMul: basemul_case(tc); break;
                    case Kind::kWpid1: break;
                }
            }
        }
        return counts;
    }

private:
    Accelerator& backend_;
    const std::filesystem::path& file_;
    const Options& options_;
};

// Known-answer files are small (the built-in ones are tens of KiB); the cap keeps a wrong path
// (a device, a log) from growing the process without bound.
constexpr size_t kMaxKatFileBytes = 64u << 20;

Result<json> read_json(const std::filesystem::path& file) {
    WP_ASSIGN_OR_RETURN(const std::string text,
                        read_file_capped(file, kMaxKatFileBytes, "known-answer file"));
    try {
        return json::parse(text);
    } catch (const json::parse_error& e) {
        return make_error(ErrorCode::kInvalidArgument,
                          file.string() + ": not valid JSON (byte " + std::to_string(e.byte) + ")");
    }
}

}  // namespace

Result<std::string> algorithm_of(const std::filesystem::path& file) {
    WP_ASSIGN_OR_RETURN(json doc, read_json(file));
    if (!doc.is_object() || !doc.contains("algorithm") || !doc["algorithm"].is_string())
        return make_error(ErrorCode::kInvalidArgument, file.string() + ": no algorithm field");
    return doc["algorithm"].get<std::string>();
}

Result<Counts> run_file(Accelerator& backend, const std::filesystem::path& file,
                        const Options& options) {
    WP_ASSIGN_OR_RETURN(json doc, read_json(file));
    try {
        CaseRunner runner(backend, file, options);
        return runner.run(doc);
    } catch (const FileError& e) {
        return e.error;
    } catch (const json::exception& e) {
        return make_error(ErrorCode::kInvalidArgument, file.string() + ": " + e.what());
    }
}

}  // namespace waferprov::kat
