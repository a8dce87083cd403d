#include "waferprov/host/job.hpp"

#include <fstream>
#include <set>
#include <sstream>

#include <openssl/sha.h>
#include <toml++/toml.h>

#include "waferprov/files.hpp"
#include "waferprov/host/curve_keys.hpp"

namespace waferprov::host {
namespace {

namespace fs = std::filesystem;

class Reader {
public:
    Reader(const fs::path& file, const toml::table& root) : file_(file), root_(root) {}

    [[noreturn]] void fail(const std::string& key, const std::string& what) const {
        throw Error{ErrorCode::kInvalidArgument, file_.string() + ": " + key + ": " + what};
    }

    const toml::node* node(const std::string& key) const { return root_.at_path(key).node(); }

    // A text field (everything but paths): printable ASCII, at most kMaxTextField characters.
    std::optional<std::string> opt_string(const std::string& key) const {
        auto v = raw_string(key);
        if (v)
            if (auto problem = text_field_problem(*v)) fail(key, *problem);
        return v;
    }

    std::string string(const std::string& key) const {
        auto v = opt_string(key);
        if (!v) fail(key, "missing");
        if (v->empty()) fail(key, "must not be empty");
        return *v;
    }

    std::optional<int64_t> opt_int(const std::string& key) const {
        const auto* n = node(key);
        if (n == nullptr) return std::nullopt;
        if (!n->is_integer()) fail(key, "must be an integer");
        return n->as_integer()->get();
    }

    fs::path path(const std::string& key) const {
        auto p = opt_path(key);
        if (!p) fail(key, "missing");
        return *p;
    }
    // A path may hold any characters a file name can (a folder named in the operator's
    // language), but no control characters and no more than a path can be long.
    std::optional<fs::path> opt_path(const std::string& key) const {
        auto v = opt_path_text(key);
        if (!v) return std::nullopt;
        return resolve(*v);
    }
    // The same text, not yet resolved against the job file's folder.
    std::optional<std::string> opt_path_text(const std::string& key) const {
        auto v = raw_string(key);
        if (!v) return std::nullopt;
        if (v->empty()) fail(key, "must not be empty");
        if (v->size() > kMaxPath)
            fail(key, "is " + std::to_string(v->size()) +
                          " characters long; the limit for a path is " + std::to_string(kMaxPath));
        for (size_t i = 0; i < v->size(); ++i)
            if (static_cast<unsigned char>((*v)[i]) < 0x20 || (*v)[i] == 0x7f)
                fail(key, "has a control character at character " + std::to_string(i + 1));
        return v;
    }

    std::vector<std::string> strings(const std::string& key) const {
        const auto* n = node(key);
        std::vector<std::string> out;
        if (n == nullptr) return out;
        if (!n->is_array()) fail(key, "must be an array of strings");
        for (const auto& e : *n->as_array()) {
            if (!e.is_string()) fail(key, "must be an array of strings");
            out.push_back(e.as_string()->get());
            if (auto problem = text_field_problem(out.back()))
                fail(key, "element " + std::to_string(out.size()) + " " + *problem);
        }
        return out;
    }

    // A path as the job file writes it, relative to the job file's folder.
    fs::path resolve(const std::string& p) const {
        fs::path q(p);
        return q.is_absolute() ? q : file_.parent_path() / q;
    }

private:
    static constexpr size_t kMaxPath = 4096;  // PATH_MAX on Linux

    std::optional<std::string> raw_string(const std::string& key) const {
        const auto* n = node(key);
        if (n == nullptr) return std::nullopt;
        if (!n->is_string()) fail(key, "must be a string");
        return n->as_string()->get();
    }
    const fs::path& file_;
    const toml::table& root_;
};

std::string relative_to(const fs::path& p, const fs::path& dir) {
    std::error_code ec;
    auto rel = fs::relative(p, dir, ec);
    return (ec || rel.empty() || rel.string().rfind("..", 0) == 0) ? p.string() : rel.string();
}

// TOML basic string with escapes.
std::string q(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
            continue;
        }
        out += c;
    }
    return out + "\"";
}

// What a job file may be: far more than any real job (a few KB) and little enough that reading
// and parsing it can never exhaust the host.
constexpr size_t kMaxJobFileBytes = size_t{1} << 20;
// Brackets/braces open at once, and parts of one dotted key. toml++ parses a dotted key
// recursively, one stack frame per part, so a table header of 50,000 parts overflows the stack
// (a crash, not an error); our keys have two parts and our values no nesting at all.
constexpr int kMaxNesting = 32;
constexpr int kMaxKeyParts = 32;
// Whatever the lexer below makes of strings, no line may hold more dots than this: a second
// line of defence that does not depend on reading strings the way toml++ does.
constexpr size_t kMaxDotsPerLine = 1024;

struct PrescanError {
    long line;
    std::string what;
};

// Bounds a job file's structure before toml++ sees it: a lexer that knows TOML's four string
// forms and comments (so dots and brackets inside strings do not count) and refuses a key of
// more than kMaxKeyParts parts or brackets nested deeper than kMaxNesting, naming the line.
std::optional<PrescanError> prescan_job(std::string_view t) {
    enum class In { kCode, kComment, kBasic, kLiteral, kMlBasic, kMlLiteral };
    In in = In::kCode;
    long line = 1;
    int depth = 0;
    int dots = 0;  // dots since the last delimiter: the parts of the key being read, minus one
    size_t line_dots = 0;
    auto run_of = [&](size_t i, char q) {
        size_t k = 0;
        while (i + k < t.size() && t[i + k] == q) ++k;
        return k;
    };
    for (size_t i = 0; i < t.size(); ++i) {
        const char c = t[i];
        if (c == '\n') {
            ++line;
            line_dots = 0;
        } else if (c == '.' && ++line_dots > kMaxDotsPerLine) {
            return PrescanError{
                line, "more than " + std::to_string(kMaxDotsPerLine) + " '.' on one line"};
        }
        switch (in) {
            case In::kComment:
                if (c == '\n') in = In::kCode;
                continue;
            case In::kBasic:
            case In::kMlBasic:
                if (c == '\\') {
                    if (i + 1 < t.size() && t[i + 1] == '\n') {
                        ++line;
                        line_dots = 0;
                    }
                    ++i;
                } else if (c == '"') {
                    if (in == In::kBasic) {
                        in = In::kCode;
                    } else if (const size_t k = run_of(i, '"'); k >= 3) {
                        // Up to two quotes before the closing three belong to the string.
                        in = In::kCode;
                        i += k - 1;
                    }
                } else if (c == '\n' && in == In::kBasic) {
                    in = In::kCode;  // unterminated: toml++ reports it
                    dots = 0;
                }
                continue;
            case In::kLiteral:
            case In::kMlLiteral:
                if (c == '\'') {
                    if (in == In::kLiteral) {
                        in = In::kCode;
                    } else if (const size_t k = run_of(i, '\''); k >= 3) {
                        in = In::kCode;
                        i += k - 1;
                    }
                } else if (c == '\n' && in == In::kLiteral) {
                    in = In::kCode;
                    dots = 0;
                }
                continue;
            case In::kCode: break;
        }
        switch (c) {
            case '#': in = In::kComment; break;
            case '"':
                if (run_of(i, '"') >= 3) {
                    in = In::kMlBasic;
                    i += 2;
                } else {
                    in = In::kBasic;
                }
                break;
            case '\'':
                if (run_of(i, '\'') >= 3) {
                    in = In::kMlLiteral;
                    i += 2;
                } else {
                    in = In::kLiteral;
                }
                break;
            case '.':
                if (++dots >= kMaxKeyParts)
                    return PrescanError{line, "a key of more than " + std::to_string(kMaxKeyParts) +
                                                  " dotted parts"};
                break;
            case '[':
            case '{':
                dots = 0;
                if (++depth > kMaxNesting)
                    return PrescanError{
                        line, "brackets nested deeper than " + std::to_string(kMaxNesting)};
                break;
            case ']':
            case '}':
                dots = 0;
                if (depth > 0) --depth;
                break;
            case '=':
            case ',':
            case '\n': dots = 0; break;
            default: break;
        }
    }
    return std::nullopt;
}

}  // namespace

bool valid_oid(std::string_view oid) {
    constexpr std::string_view kEnterprise = "1.3.6.1.4.1.";
    if (oid.size() > 128 || oid.substr(0, kEnterprise.size()) != kEnterprise) return false;
    std::string_view rest = oid.substr(kEnterprise.size());
    int arcs = 0;
    while (true) {
        const size_t dot = rest.find('.');
        const std::string_view arc = rest.substr(0, dot);
        if (arc.empty() || arc.size() > 9 || (arc.size() > 1 && arc[0] == '0') ||
            arc.find_first_not_of("0123456789") != std::string_view::npos)
            return false;
        ++arcs;
        if (dot == std::string_view::npos) break;
        rest.remove_prefix(dot + 1);
    }
    return arcs >= 2;  // the enterprise number and at least one arc of its own
}

namespace {

// [job] and [keys]: who the job is for, how many identities, where its ledger and keys are.
void read_job_and_keys(const Reader& r, Job& job) {
    job.id = r.string("job.id");
    job.product = r.string("job.product");
    job.customer = r.string("job.customer");
    auto quota = r.opt_int("job.quota");
    if (!quota) r.fail("job.quota", "missing");
    if (*quota < 0) r.fail("job.quota", "must not be negative");
    job.quota = static_cast<uint64_t>(*quota);
    if (auto b = r.opt_string("job.backend")) job.backend = *b;
    // A PostgreSQL URI as written; a SQLite file ("sqlite:PATH" or a path) relative to the job.
    const auto ledger = r.opt_path_text("job.ledger");
    if (ledger && is_postgres_location(*ledger))
        job.ledger = *ledger;
    else if (ledger && ledger->rfind("sqlite:", 0) == 0)
        job.ledger = r.resolve(sqlite_path_of(*ledger));
    else
        job.ledger = r.path("job.ledger");
    job.anchor = r.opt_path("job.anchor");
    if (!job.anchor && is_postgres_location(job.ledger.string()))
        r.fail("job.anchor",
               "missing: a PostgreSQL ledger's anchor (the head log that catches a restored or "
               "rolled-back database) is a file on this host; name it");
    if (auto md = r.opt_int("job.max_deliveries")) {
        if (*md < 1 || *md > 65535) r.fail("job.max_deliveries", "must be 1 .. 65535");
        job.max_deliveries = static_cast<uint32_t>(*md);
    }
    job.wrapped_kik = r.path("keys.wrapped_kik");
    job.device_key = r.opt_path("keys.device_key");
    if (auto ri = r.opt_int("keys.reseed_interval")) {
        if (*ri < 1 || static_cast<uint64_t>(*ri) > wpid1::kMaxReseedInterval)
            r.fail("keys.reseed_interval", "must be 1 .. 2^48");
        job.reseed_interval = static_cast<uint64_t>(*ri);
    }
}

// [ca]: the issuing CA, as a PEM key or a PKCS#11 token (never its PIN).
void read_ca(const Reader& r, Job& job) {
    const std::string ca_type = r.opt_string("ca.type").value_or("pem");
    job.ca.certificate = r.path("ca.certificate");
    job.ca.root = r.path("ca.root");
    if (ca_type == "pem") {
        job.ca.kind = JobCa::Kind::kPem;
        job.ca.key = r.path("ca.key");
    } else if (ca_type == "pkcs11") {
        job.ca.kind = JobCa::Kind::kPkcs11;
        job.ca.module = r.string("ca.module");
        job.ca.token_label = r.string("ca.token_label");
        job.ca.key_label = r.string("ca.key_label");
        if (auto pe = r.opt_string("ca.pin_env")) job.ca.pin_env = *pe;
        if (r.node("ca.pin") != nullptr)
            r.fail("ca.pin",
                   "a PIN never goes into a job file; set ca.pin_env to the name "
                   "of the environment variable that holds it");
    } else {
        r.fail("ca.type", "must be \"pem\" or \"pkcs11\", got \"" + ca_type + "\"");
    }
}

// [certificate]: the device certificate's subject fields and the location OID.
void read_certificate_profile(const Reader& r, Job& job) {
    job.certificate.organization = r.opt_string("certificate.organization").value_or("");
    job.certificate.organizational_unit =
        r.opt_string("certificate.organizational_unit").value_or("");
    job.certificate.country = r.opt_string("certificate.country").value_or("");
    job.certificate.location_oid =
        r.opt_string("certificate.location_oid").value_or(std::string(kDevelopmentLocationOid));
    if (!valid_oid(job.certificate.location_oid))
        r.fail("certificate.location_oid",
               "must be a dotted OID under the manufacturer's enterprise number "
               "(1.3.6.1.4.1.<PEN>.<arc>...), got \"" +
                   job.certificate.location_oid + "\"");
    if (!job.certificate.country.empty() && job.certificate.country.size() != 2)
        r.fail("certificate.country", "must be a two-letter country code");
}

// [uid]: where dies' UIDs come from (derived from the salt, or read by the tester).
void read_uid_policy(const Reader& r, Job& job) {
    const std::string policy = r.opt_string("uid.policy").value_or("derived");
    if (policy == "derived") {
        job.uid_policy = UidPolicy::kDerived;
        auto salt = from_hex(r.string("uid.salt"), "uid.salt");
        if (!salt.ok()) r.fail("uid.salt", salt.error().message);
        if (salt->size() < 16 || salt->size() > 64)
            r.fail("uid.salt", "must be 16..64 bytes of hex");
        job.uid_salt = *salt;
    } else if (policy == "tester") {
        job.uid_policy = UidPolicy::kTester;
    } else {
        r.fail("uid.policy", "must be \"derived\" or \"tester\", got \"" + policy + "\"");
    }
}

// [backend]: the accelerator backend's parameters, passed on as text.
void read_backend_params(const Reader& r, Job& job) {
    if (const auto* t = r.node("backend")) {
        if (!t->is_table())
            r.fail("backend", "must be a table of the backend's parameters (docs/jobs.md)");
        for (const auto& [k, v] : *t->as_table()) {
            const std::string key = "backend." + std::string(k.str());
            std::string value;
            if (v.is_integer())
                value = std::to_string(v.as_integer()->get());
            else if (v.is_string())
                value = *r.opt_string(key);
            else
                r.fail(key, "must be a string or an integer");
            if (k.str() == "device_key") r.fail(key, "the device key file is keys.device_key");
            job.backend_params.emplace(std::string(k.str()), value);
        }
    }
}

// [map]: the wafer-map overlay and the bins that get an identity.
void read_map_options(const Reader& r, Job& job) {
    job.map_uid_overlay = r.opt_string("map.uid_overlay");
    auto bins = r.strings("map.provision_bins");
    if (!bins.empty()) job.provision_bins = bins;
}

// [testers]: the tester ids and the CurveZMQ public keys allowed on the link.
void read_testers(const Reader& r, Job& job) {
    if (const auto* t = r.node("testers")) {
        if (!t->is_table())
            r.fail("testers", "must be a table of tester id = \"<Z85 public key>\"");
        std::set<std::string> keys;
        for (const auto& [k, v] : *t->as_table()) {
            const std::string id(k.str());
            const std::string key = "testers.\"" + id + "\"";
            if (id == "public_keys")
                r.fail("testers.public_keys",
                       "the key list became a table: write one line "
                       "per tester, <tester id> = \"<Z85 public key>\"");
            if (id.empty() || id.size() > 255 || !printable_ascii(id))
                r.fail(key, "a tester id is 1..255 printable ASCII characters");
            if (!v.is_string())
                r.fail(key, "must be the tester's CurveZMQ public key (Z85 string)");
            const std::string pub = v.as_string()->get();
            if (!protocol::valid_curve_key(pub))
                r.fail(key, "is not a CurveZMQ public key (40 characters of Z85)");
            if (!keys.insert(pub).second)
                r.fail(key, "the same public key is listed for another tester");
            job.testers.push_back(TesterKey{id, pub});
        }
    }
}

}  // namespace

Result<Job> load_job(const fs::path& file) {
    WP_ASSIGN_OR_RETURN(const std::string text,
                        read_file_capped(file, kMaxJobFileBytes, "job file"));
    if (auto bad = prescan_job(text))
        return make_error(ErrorCode::kInvalidArgument,
                          file.string() + ":" + std::to_string(bad->line) + ": " + bad->what +
                              " (the limit for a job file)");
    toml::table root;
    try {
        root = toml::parse(text, file.string());
    } catch (const toml::parse_error& e) {
        std::ostringstream o;
        o << file.string() << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
          << e.description();
        return make_error(ErrorCode::kInvalidArgument, o.str());
    }
    Job job;
    job.file = fs::absolute(file);
    try {
        Reader r(job.file, root);
        read_job_and_keys(r, job);
        read_ca(r, job);
        read_certificate_profile(r, job);
        read_uid_policy(r, job);
        read_backend_params(r, job);
        read_map_options(r, job);
        read_testers(r, job);
    } catch (const Error& e) {
        return e;
    }
    return job;
}

Status write_job(const Job& job) {
    const fs::path dir = job.file.parent_path();
    std::ostringstream o;
    o << "# waferprov job file (docs/jobs.md). Relative paths are relative to this file.\n\n";
    o << "[job]\n";
    o << "id = " << q(job.id) << "\n";
    o << "product = " << q(job.product) << "\n";
    o << "customer = " << q(job.customer) << "\n";
    o << "quota = " << job.quota << "            # identities this job may ever issue\n";
    o << "backend = " << q(job.backend) << "\n";
    if (job.max_deliveries != Job{}.max_deliveries)
        o << "max_deliveries = " << job.max_deliveries << "   # deliveries of one die's identity\n";
    o << "ledger = "
      << q(is_postgres_location(job.ledger.string()) ? job.ledger.string()
                                                     : relative_to(job.ledger, dir))
      << "\n";
    if (job.anchor) o << "anchor = " << q(relative_to(*job.anchor, dir)) << "\n";
    o << "\n";
    o << "[keys]\n";
    o << "wrapped_kik = " << q(relative_to(job.wrapped_kik, dir)) << "   # AES-KW(DK, KIK), hex\n";
    if (job.device_key)
        o << "device_key = " << q(relative_to(*job.device_key, dir))
          << "   # the software engine's DK (0600)\n";
    o << "reseed_interval = " << job.reseed_interval << "\n\n";
    if (!job.backend_params.empty()) {
        o << "[backend]   # the backend's parameters (docs/drivers.md)\n";
        for (const auto& [k, v] : job.backend_params) o << k << " = " << q(v) << "\n";
        o << "\n";
    }
    o << "[ca]\n";
    if (job.ca.kind == JobCa::Kind::kPem) {
        o << "type = \"pem\"\n";
        o << "key = " << q(relative_to(job.ca.key, dir)) << "\n";
    } else {
        o << "type = \"pkcs11\"\n";
        o << "module = " << q(job.ca.module) << "\n";
        o << "token_label = " << q(job.ca.token_label) << "\n";
        o << "key_label = " << q(job.ca.key_label) << "\n";
        o << "pin_env = " << q(job.ca.pin_env) << "   # the PIN is read from this variable\n";
    }
    o << "certificate = " << q(relative_to(job.ca.certificate, dir)) << "\n";
    o << "root = " << q(relative_to(job.ca.root, dir)) << "\n\n";
    o << "[certificate]\n";
    if (!job.certificate.organization.empty())
        o << "organization = " << q(job.certificate.organization) << "\n";
    if (!job.certificate.organizational_unit.empty())
        o << "organizational_unit = " << q(job.certificate.organizational_unit) << "\n";
    if (!job.certificate.country.empty()) o << "country = " << q(job.certificate.country) << "\n";
    if (job.certificate.location_oid == kDevelopmentLocationOid)
        o << "# The die-location extension's OID. This default sits under 32473, the enterprise\n"
             "# number RFC 5612 reserves for documentation: development only. Replace it with an\n"
             "# OID under your own IANA enterprise number before production "
             "(docs/certificates.md).\n";
    o << "location_oid = " << q(job.certificate.location_oid) << "\n";
    o << "\n[uid]\n";
    if (job.uid_policy == UidPolicy::kDerived) {
        o << "policy = \"derived\"   # UID from lot, wafer, x, y, substrate id (docs/jobs.md)\n";
        o << "salt = " << q(to_hex(job.uid_salt)) << "\n";
    } else {
        o << "policy = \"tester\"    # UID read from the die by the tester\n";
    }
    o << "\n[map]\nprovision_bins = [";
    for (size_t i = 0; i < job.provision_bins.size(); ++i)
        o << (i ? ", " : "") << q(job.provision_bins[i]);
    o << "]\n";
    if (job.map_uid_overlay)
        o << "uid_overlay = " << q(*job.map_uid_overlay)
          << "   # the E142 DeviceIdMap overlay (MapName) UIDs come from\n";
    o << "\n[testers]   # tester id = its CurveZMQ public key (Z85); only these may connect\n";
    for (const auto& t : job.testers) o << q(t.id) << " = " << q(t.public_key) << "\n";

    const fs::path tmp = job.file.string() + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << o.str();
        out.flush();
        if (!out) return make_error(ErrorCode::kIo, "cannot write " + tmp.string());
    }
    std::error_code ec;
    fs::rename(tmp, job.file, ec);
    if (ec)
        return make_error(ErrorCode::kIo, "cannot rename " + tmp.string() + ": " + ec.message());
    return ok_status();
}

namespace {

void put_text16(Bytes& m, const std::string& s) {
    const auto len = static_cast<uint16_t>(std::min<size_t>(s.size(), 0xffff));
    m.push_back(static_cast<uint8_t>(len >> 8));
    m.push_back(static_cast<uint8_t>(len));
    m.insert(m.end(), s.begin(), s.begin() + len);
}

wpid1::Uid uid_of(const std::string& tag, ByteSpan salt, const DieLocation& loc,
                  bool with_substrate) {
    Bytes m;
    m.insert(m.end(), tag.begin(), tag.end());
    m.push_back(0x00);
    m.insert(m.end(), salt.begin(), salt.end());
    put_text16(m, loc.lot);
    for (int v : {loc.wafer, loc.x, loc.y}) {
        uint8_t b[4];
        store_be32(b, static_cast<uint32_t>(v));
        m.insert(m.end(), b, b + 4);
    }
    if (with_substrate) put_text16(m, loc.substrate);
    uint8_t h[SHA256_DIGEST_LENGTH];
    SHA256(m.data(), m.size(), h);
    wpid1::Uid uid;
    std::copy(h, h + wpid1::kUidSize, uid.begin());
    return uid;
}

}  // namespace

wpid1::Uid derive_uid(ByteSpan salt, const DieLocation& loc) {
    return uid_of("WPID-1 UID/2", salt, loc, true);
}

wpid1::Uid derive_legacy_uid(ByteSpan salt, const DieLocation& loc) {
    return uid_of("WPID-1 UID", salt, loc, false);
}

Result<Bytes> read_wrapped_kik(const Job& job) {
    // 80 hex digits and a line end; the cap leaves room for blanks and CRLF, nothing more.
    WP_ASSIGN_OR_RETURN(const std::string content,
                        read_file_capped(job.wrapped_kik, 4096, "wrapped KIK"));
    const std::string_view ws = " \t\r\n";
    std::string_view text(content);
    text.remove_prefix(std::min(text.size(), text.find_first_not_of(ws)));
    text = text.substr(0, text.find_last_not_of(ws) + 1);
    auto b = from_hex(text, "wrapped KIK " + job.wrapped_kik.string());
    if (!b.ok()) return b.error();
    if (b->size() != wpid1::kWrappedKikSize)
        return make_error(ErrorCode::kInvalidArgument, "wrapped KIK " + job.wrapped_kik.string() +
                                                           ": expected 40 bytes, got " +
                                                           std::to_string(b->size()));
    return b;
}

fs::path ledger_argument(const std::string& text) {
    if (is_postgres_location(text)) return text;
    return fs::absolute(sqlite_path_of(text));
}

}  // namespace waferprov::host
