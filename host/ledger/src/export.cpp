// Ledger::export_to and Ledger::verify_export (docs/ledger.md, "Export").
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ledger_impl.hpp"
#include "waferprov/files.hpp"
#include "waferprov/ossl.hpp"

namespace waferprov::host {

using nlohmann::json;
using nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

// 2: events.jsonl carries ledger format 2 (certificates bound by SHA-256 in ISSUE).
// 3: records carry "substrate" (the physical wafer's id); events.jsonl is ledger format 3, or
// format 2 up to a MIGRATE event for a ledger migrated from schema version 2.
constexpr const char* kExportFormat = "waferprov-ledger-export/3";
constexpr const char* kRecordsFile = "records.jsonl";
constexpr const char* kEventsFile = "events.jsonl";
constexpr const char* kManifestFile = "manifest.json";
constexpr const char* kSignatureFile = "manifest.sig";

using Bio = ossl::Ptr<BIO, BIO_free_all>;
using Asn1Integer = ossl::Ptr<ASN1_INTEGER, ASN1_INTEGER_free>;

void fclose_file(std::FILE* f) { std::fclose(f); }
using FilePtr = ossl::Ptr<std::FILE, fclose_file>;

Status fsync_path(const fs::path& p, bool directory) {
    const int fd = ::open(p.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return make_error(ErrorCode::kIo, "opening " + p.string() + ": " + std::strerror(errno));
    int rc;
    do {
        rc = ::fsync(fd);
    } while (rc != 0 && errno == EINTR);
    const int err = errno;
    ::close(fd);
    if (rc != 0)
        return make_error(ErrorCode::kIo, "fsync " + p.string() + ": " + std::strerror(err));
    return ok_status();
}

// A file being written: buffered, SHA-256 over everything written, fsynced on finish().
class HashingFile {
public:
    static Result<HashingFile> create(const fs::path& p) {
        HashingFile f;
        f.path_ = p;
        f.file_.reset(std::fopen(p.c_str(), "wbx"));
        if (!f.file_)
            return make_error(ErrorCode::kIo,
                              "creating " + p.string() + ": " + std::strerror(errno));
        f.md_.reset(EVP_MD_CTX_new());
        if (!f.md_ || EVP_DigestInit_ex(f.md_.get(), EVP_sha256(), nullptr) != 1)
            return ossl::ossl_error("SHA-256 init");
        return f;
    }
    Status write(std::string_view s) {
        if (std::fwrite(s.data(), 1, s.size(), file_.get()) != s.size())
            return make_error(ErrorCode::kIo,
                              "writing " + path_.string() + ": " + std::strerror(errno));
        if (EVP_DigestUpdate(md_.get(), s.data(), s.size()) != 1)
            return ossl::ossl_error("SHA-256");
        size_ += s.size();
        return ok_status();
    }
    Status finish() {
        if (std::fflush(file_.get()) != 0 || ::fsync(::fileno(file_.get())) != 0)
            return make_error(ErrorCode::kIo,
                              "flushing " + path_.string() + ": " + std::strerror(errno));
        if (std::fclose(file_.release()) != 0)
            return make_error(ErrorCode::kIo,
                              "closing " + path_.string() + ": " + std::strerror(errno));
        unsigned int n = 0;
        if (EVP_DigestFinal_ex(md_.get(), hash_.data(), &n) != 1)
            return ossl::ossl_error("SHA-256");
        return ok_status();
    }
    const chain::Hash& hash() const { return hash_; }
    uint64_t size() const { return size_; }

private:
    fs::path path_;
    FilePtr file_;
    ossl::MdCtx md_;
    chain::Hash hash_{};
    uint64_t size_ = 0;
};

ordered_json export_record_json(const LedgerRecord& r) {
    // A packaged part (provisioned at final test) has no wafer position: null wafer, x and y.
    auto position = [&](int v) { return r.loc.packaged ? ordered_json(nullptr) : ordered_json(v); };
    return ordered_json{{"uid", to_hex(r.uid)},
                        {"lot", r.loc.lot},
                        {"wafer", position(r.loc.wafer)},
                        {"substrate", r.loc.substrate},
                        {"x", position(r.loc.x)},
                        {"y", position(r.loc.y)},
                        {"serial", to_hex(r.serial)},
                        {"state", to_string(r.state)},
                        {"public_key", to_hex(r.public_key)},
                        {"wrapped_key", to_hex(r.wrapped)},
                        {"certificate", chain::base64_encode(r.certificate_der)}};
}

// The small files of an export and of the customer's CA bundle: bounded, so a wrong path (a
// device, a log) is refused instead of read without end. records.jsonl and events.jsonl are
// read up to the size the signed manifest declares (verify_export).
constexpr size_t kMaxSmallFileBytes = 16u << 20;

Result<std::string> read_file(const fs::path& p, size_t max_bytes = kMaxSmallFileBytes) {
    return read_file_capped(p, max_bytes, "export file");
}

std::string lower(std::string s) {
    for (auto& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

Result<ossl::X509Ptr> parse_der_cert(ByteSpan der) {
    const unsigned char* p = der.data();
    ossl::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    if (!cert) return ossl::ossl_error("not a DER X.509 certificate");
    if (p != der.data() + der.size()) {
        return make_error(ErrorCode::kInvalidArgument, "trailing bytes after the certificate");
    }
    return cert;
}

// Empty when the certificate cannot be encoded (it then matches no CA).
Bytes cert_der(const X509* cert) {
    auto der = ossl::der_of(cert);
    return der.ok() ? std::move(der).value() : Bytes{};
}

}  // namespace

// ---- export ---------------------------------------------------------------------------------

namespace {

// The job row of the export's snapshot.
struct JobRow {
    LedgerConfig job;
    uint64_t quota_used = 0, head_seq = 0;
    Bytes head_hash;
};

Result<JobRow> read_job_row(Ledger::Impl& m) {
    JobRow j;
    WP_ASSIGN_OR_RETURN(auto* s, m.stmt("SELECT job_id, customer, product, quota, "
                                        "quota_used, head_seq, head_hash FROM job"));
    sql::Query q(s);
    WP_ASSIGN_OR_RETURN(const bool row, q.step());
    if (!row) return make_error(ErrorCode::kIntegrityFailure, "export: no job row");
    j.job.job_id = q.text_col(0);
    j.job.customer = q.text_col(1);
    j.job.product = q.text_col(2);
    j.job.quota = static_cast<uint64_t>(q.int_col(3));
    j.quota_used = static_cast<uint64_t>(q.int_col(4));
    j.head_seq = static_cast<uint64_t>(q.int_col(5));
    j.head_hash = q.blob_col(6);
    return j;
}

// events.jsonl: each line is the exact payload the chain hashes. Replayed by `rp` as it is
// written, so a ledger that fails verification is never exported and signed.
Status write_events(Ledger::Impl& m, chain::Replayer& rp, HashingFile& events) {
    WP_ASSIGN_OR_RETURN(auto* s, m.stmt("SELECT payload, hash FROM events ORDER BY seq"));
    sql::Query q(s);
    q.stream();  // a scan: rows one at a time
    for (;;) {
        WP_ASSIGN_OR_RETURN(const bool row, q.step());
        if (!row) break;
        const std::string payload = q.text_col(0);
        chain::Hash stored{};
        const Bytes hb = q.blob_col(1);
        if (hb.size() == stored.size()) std::copy(hb.begin(), hb.end(), stored.begin());
        rp.apply(payload, stored);
        WP_RETURN_IF_ERROR(events.write(payload));
        WP_RETURN_IF_ERROR(events.write("\n"));
    }
    return events.finish();
}

// records.jsonl, each record checked against the replayed chain; counts them by state.
Status write_records(Ledger::Impl& m, chain::Replayer& rp, HashingFile& records,
                     StateCounts& counts, uint64_t& n_records) {
    WP_ASSIGN_OR_RETURN(auto* s, m.stmt(WP_RECORD_SELECT_ORDERED));
    sql::Query q(s);
    q.stream();  // a scan: rows one at a time
    for (;;) {
        WP_ASSIGN_OR_RETURN(const bool row, q.step());
        if (!row) break;
        WP_ASSIGN_OR_RETURN(auto r, row_to_record(q));
        auto it = rp.records().find(r.uid);
        if (it == rp.records().end() || !(it->second == chain::chain_form(r)))
            rp.problem("record UID " + to_hex(r.uid) + " differs from the event log");
        ++n_records;
        ++counts.of(r.state);
        WP_RETURN_IF_ERROR(records.write(export_record_json(r).dump()));
        WP_RETURN_IF_ERROR(records.write("\n"));
    }
    return records.finish();
}

// The export's data files written into `tmp` from one read snapshot, and the manifest that
// describes them (unsigned). Refuses a ledger that fails verification.
Result<ordered_json> write_data_files(Ledger::Impl& m, const fs::path& tmp, Signer& ca) {
    std::lock_guard lock(m.mu);
    WP_ASSIGN_OR_RETURN(auto txn, Txn::begin(*m.db, false));  // one snapshot
    WP_ASSIGN_OR_RETURN(const JobRow j, read_job_row(m));
    chain::Replayer rp;
    WP_ASSIGN_OR_RETURN(auto events, HashingFile::create(tmp / kEventsFile));
    WP_RETURN_IF_ERROR(write_events(m, rp, events));
    if (rp.events() != j.head_seq || Bytes(rp.head().begin(), rp.head().end()) != j.head_hash)
        rp.problem("the stored chain head differs from the recomputed one");
    if (rp.quota_used() != j.quota_used) rp.problem("the quota counter differs from the chain");

    WP_ASSIGN_OR_RETURN(auto records, HashingFile::create(tmp / kRecordsFile));
    StateCounts counts;
    uint64_t n_records = 0;
    WP_RETURN_IF_ERROR(write_records(m, rp, records, counts, n_records));
    if (n_records != rp.records().size())
        rp.problem("the records table and the event log hold different numbers of records");
    WP_RETURN_IF_ERROR(txn.commit());
    if (!rp.problems().empty())
        return make_error(
            ErrorCode::kIntegrityFailure,
            "export refused: the ledger fails verification: " + rp.problems().front());

    const LedgerConfig& job = j.job;
    const uint64_t quota_used = j.quota_used;
    ordered_json manifest;
    ordered_json jcounts;
    for (DieState st : {DieState::kIssued, DieState::kDelivered, DieState::kProgrammed,
                        DieState::kFailed, DieState::kVoid})
        jcounts[to_string(st)] = counts.of(st);
    manifest["format"] = kExportFormat;
    manifest["job_id"] = job.job_id;
    manifest["customer"] = job.customer;
    manifest["product"] = job.product;
    manifest["quota"] = job.quota;
    manifest["quota_used"] = quota_used;
    manifest["records"] = n_records;
    manifest["counts"] = jcounts;
    manifest["chain"] = ordered_json{{"events", rp.events()}, {"head", to_hex(rp.head())}};
    manifest["files"] = ordered_json{
        {kRecordsFile, ordered_json{{"sha256", to_hex(records.hash())}, {"bytes", records.size()}}},
        {kEventsFile, ordered_json{{"sha256", to_hex(events.hash())}, {"bytes", events.size()}}}};
    manifest["ca_certificate"] = chain::base64_encode(ca.certificate_der());
    manifest["signature"] = "ECDSA P-256 SHA-256 over manifest.json, DER, in manifest.sig";
    manifest["exported_at"] = iso8601_utc(chain::now_us());
    return manifest;
}

// A fresh hidden sibling of `dir` to build the export in.
Result<fs::path> make_partial_dir(const fs::path& dir) {
    const fs::path parent = dir.parent_path();
    std::error_code ec;
    fs::create_directories(parent, ec);
    std::random_device rd;
    const fs::path tmp = parent / ("." + dir.filename().string() + ".partial-" +
                                   std::to_string(::getpid()) + "-" + std::to_string(rd()));
    fs::remove_all(tmp, ec);
    if (!fs::create_directory(tmp, ec))
        return make_error(ErrorCode::kIo, "export: creating " + tmp.string() + ": " + ec.message());
    return tmp;
}

// manifest.json and its signature by the CA, manifest.sig.
Status write_signed_manifest(const fs::path& tmp, const ordered_json& manifest, Signer& ca) {
    const std::string manifest_text = manifest.dump(2) + "\n";
    const chain::Hash digest = chain::sha256(
        ByteSpan(reinterpret_cast<const uint8_t*>(manifest_text.data()), manifest_text.size()));
    WP_ASSIGN_OR_RETURN(const Bytes sig, ca.sign_sha256_digest(digest));
    WP_ASSIGN_OR_RETURN(auto mf, HashingFile::create(tmp / kManifestFile));
    WP_RETURN_IF_ERROR(mf.write(manifest_text));
    WP_RETURN_IF_ERROR(mf.finish());
    WP_ASSIGN_OR_RETURN(auto sf, HashingFile::create(tmp / kSignatureFile));
    WP_RETURN_IF_ERROR(
        sf.write(std::string_view(reinterpret_cast<const char*>(sig.data()), sig.size())));
    return sf.finish();
}

}  // namespace

Status Ledger::export_to(const fs::path& dir_in, Signer& ca) {
    const fs::path dir = fs::absolute(dir_in).lexically_normal();
    std::error_code ec;
    if (fs::exists(dir, ec))
        return make_error(
            ErrorCode::kInvalidArgument,
            "export: " + dir.string() + " already exists (an export never overwrites)");
    WP_ASSIGN_OR_RETURN(const fs::path tmp, make_partial_dir(dir));
    // Whatever happens below, a failed export leaves no partial directory behind (a crash may,
    // but its name starts with '.' and ends in .partial-*, and it has no manifest.sig).
    struct Cleanup {
        fs::path p;
        bool armed = true;
        ~Cleanup() {
            std::error_code e;
            if (armed) fs::remove_all(p, e);
        }
    } cleanup{tmp};

    WP_ASSIGN_OR_RETURN(const ordered_json manifest, write_data_files(*impl_, tmp, ca));
    WP_RETURN_IF_ERROR(write_signed_manifest(tmp, manifest, ca));
    WP_RETURN_IF_ERROR(fsync_path(tmp, true));
    // rename(2) of a directory is atomic; RENAME_NOREPLACE semantics come from the check above
    // plus the fact that rename onto a non-empty directory fails.
    fs::rename(tmp, dir, ec);
    if (ec)
        return make_error(ErrorCode::kIo, "export: renaming " + tmp.string() + " to " +
                                              dir.string() + ": " + ec.message());
    cleanup.armed = false;
    return fsync_path(dir.parent_path(), true);
}

// ---- verify_export --------------------------------------------------------------------------

namespace {

// The trusted CA certificates of a PEM bundle.
Result<std::vector<ossl::X509Ptr>> read_ca_bundle(const fs::path& ca_pem) {
    std::vector<ossl::X509Ptr> bundle;
    WP_ASSIGN_OR_RETURN(const std::string pem, read_file(ca_pem));
    Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) return ossl::ossl_error("BIO");
    for (;;) {
        ossl::X509Ptr c(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
        if (!c) break;
        bundle.push_back(std::move(c));
    }
    ossl::clear_errors();  // the loop ends on "no start line"
    if (bundle.empty())
        return make_error(ErrorCode::kInvalidArgument,
                          ca_pem.string() + " holds no PEM certificate");
    return bundle;
}

std::optional<uint64_t> number_of(const json& j, const char* k) {
    if (j.is_object() && j.contains(k) && j[k].is_number_unsigned()) return j[k].get<uint64_t>();
    return std::nullopt;
}

// A record line of records.jsonl as the export writes it (exactly these keys).
LedgerRecord parse_record_line(std::string_view line) {
    const json j = json::parse(line);
    static const char* const kKeys[] = {"uid",        "lot",         "wafer",      "substrate",
                                        "x",          "y",           "serial",     "state",
                                        "public_key", "wrapped_key", "certificate"};
    if (!j.is_object() || j.size() != std::size(kKeys))
        throw std::runtime_error("not an object with exactly the record keys");
    for (const char* k : kKeys)
        if (!j.contains(k)) throw std::runtime_error(std::string("no ") + k);
    auto uid = from_hex_fixed<wpid1::kUidSize>(j.at("uid").get<std::string>(), "uid");
    auto pub = from_hex_fixed<65>(j.at("public_key").get<std::string>(), "public_key");
    auto wrapped = from_hex_fixed<wpid1::kWrappedKeySize>(j.at("wrapped_key").get<std::string>(),
                                                          "wrapped_key");
    auto serial = from_hex(j.at("serial").get<std::string>(), "serial");
    auto state = die_state_from_string(j.at("state").get<std::string>());
    auto cert = chain::base64_decode(j.at("certificate").get<std::string>());
    if (!uid.ok() || !pub.ok() || !wrapped.ok() || !serial.ok() || !state.ok() || !cert)
        throw std::runtime_error("a malformed field");
    LedgerRecord r;
    r.uid = *uid;
    r.public_key = *pub;
    r.wrapped = *wrapped;
    r.serial = *serial;
    r.state = *state;
    r.certificate_der = *cert;
    r.loc.lot = j.at("lot").get<std::string>();
    r.loc.substrate = j.at("substrate").get<std::string>();
    r.loc.packaged = j.at("wafer").is_null();
    if (r.loc.packaged != j.at("x").is_null() || r.loc.packaged != j.at("y").is_null())
        throw std::runtime_error("wafer, x and y are null only together (a packaged part)");
    if (!r.loc.packaged) {
        r.loc.wafer = j.at("wafer").get<int>();
        r.loc.x = j.at("x").get<int>();
        r.loc.y = j.at("y").get<int>();
    }
    return r;
}

// Calls `each(line)` for every newline-terminated line of `text`; a last line without its
// newline is reported, not passed on.
template <typename F>
void for_each_line(std::string_view text, const char* file, chain::Replayer& rp, F&& each) {
    while (!text.empty()) {
        const auto nl = text.find('\n');
        if (nl == std::string_view::npos) {
            rp.problem(std::string(file) + ": the last line has no newline");
            return;
        }
        each(text.substr(0, nl));
        text.remove_prefix(nl + 1);
    }
}

// One verify_export(): every check of docs/ledger.md "Verifying an export", each a step; the
// problems are collected in the replayer, in the order found.
class ExportVerifier {
public:
    ExportVerifier(const fs::path& dir, const fs::path& ca_pem, std::vector<ossl::X509Ptr> bundle)
        : dir_(dir), ca_pem_(ca_pem), bundle_(std::move(bundle)) {}

    VerifyReport run() {
        if (!read_manifest() || !check_signature()) return done();
        if (manifest_string("format") != kExportFormat)
            rp_.problem("manifest.json: unknown format");
        events_text_ = check_file(kEventsFile);
        records_text_ = check_file(kRecordsFile);
        if (events_text_) replay_chain();
        if (records_text_) check_records();
        check_counts();
        rep_.events = rp_.events();
        rep_.head = ChainHead{rp_.events(), rp_.head()};
        return done();
    }

private:
    VerifyReport done() {
        rep_.problems = std::move(rp_.problems());
        return rep_;
    }

    std::string manifest_string(const char* k) const {
        return manifest_.contains(k) && manifest_[k].is_string() ? manifest_[k].get<std::string>()
                                                                 : "";
    }

    bool read_manifest() {
        auto text = read_file(dir_ / kManifestFile);
        auto sig = read_file(dir_ / kSignatureFile);
        if (!text.ok() || !sig.ok()) {
            rp_.problem(std::string("missing ") + (text.ok() ? kSignatureFile : kManifestFile) +
                        " in " + dir_.string() + ": not a complete export");
            return false;
        }
        manifest_text_ = std::move(*text);
        signature_ = std::move(*sig);
        try {
            manifest_ = json::parse(manifest_text_);
            if (!manifest_.is_object()) throw std::runtime_error("not an object");
        } catch (const std::exception& e) {
            rp_.problem(std::string("manifest.json is not valid JSON: ") + e.what());
            return false;
        }
        return true;
    }

    // 1. The manifest's CA certificate must be one the customer trusts, and its key must have
    //    signed the manifest bytes; otherwise nothing in the manifest can be trusted.
    bool check_signature() {
        std::optional<Bytes> ca_der;
        if (manifest_.contains("ca_certificate") && manifest_["ca_certificate"].is_string())
            ca_der = chain::base64_decode(manifest_["ca_certificate"].get<std::string>());
        for (auto& c : bundle_)
            if (ca_der && cert_der(c.get()) == *ca_der) ca_ = c.get();
        if (ca_ == nullptr) {
            rp_.problem("the manifest's CA certificate is not in " + ca_pem_.string() +
                        "; checking against its first certificate");
            ca_ = bundle_.front().get();
        }
        ca_key_ = X509_get0_pubkey(ca_);
        const auto digest = chain::sha256(ByteSpan(
            reinterpret_cast<const uint8_t*>(manifest_text_.data()), manifest_text_.size()));
        ossl::PkeyCtx ctx(ca_key_ != nullptr ? EVP_PKEY_CTX_new(ca_key_, nullptr) : nullptr);
        const bool good =
            ctx && EVP_PKEY_verify_init(ctx.get()) == 1 &&
            EVP_PKEY_verify(ctx.get(), reinterpret_cast<const unsigned char*>(signature_.data()),
                            signature_.size(), digest.data(), digest.size()) == 1;
        ossl::clear_errors();
        if (!good)
            rp_.problem(
                "manifest.sig: the signature over manifest.json does not verify under the "
                "CA certificate's key");
        return good;
    }

    // 2. A file the manifest lists: its size and hash. Content that is not what the CA signed
    //    is not evaluated any further.
    std::optional<std::string> check_file(const char* name) {
        const json files = manifest_.value("files", json::object());
        const json entry = files.is_object() ? files.value(name, json::object()) : json::object();
        // Read no more than the signed manifest says the file holds (and one byte to see more).
        const auto declared = number_of(entry, "bytes");
        if (!declared) {
            rp_.problem(std::string("manifest.json gives no size for ") + name);
            return std::nullopt;
        }
        auto text = read_file(dir_ / name, static_cast<size_t>(std::min<uint64_t>(
                                               *declared + 1, std::numeric_limits<size_t>::max())));
        if (!text.ok()) {
            rp_.problem(text.error().code == ErrorCode::kResourceExhausted
                            ? std::string(name) + " is larger than the " +
                                  std::to_string(*declared) + " bytes the manifest declares"
                            : std::string(name) + " is missing or unreadable (" +
                                  text.error().message + ")");
            return std::nullopt;
        }
        const std::string want = entry.is_object() ? entry.value("sha256", "") : "";
        const auto have = to_hex(
            chain::sha256(ByteSpan(reinterpret_cast<const uint8_t*>(text->data()), text->size())));
        if (want != have) {
            rp_.problem(std::string(name) + ": SHA-256 " + have + " differs from the manifest's '" +
                        want + "' (the file was changed; its content is not checked further)");
            return std::nullopt;
        }
        if (number_of(entry, "bytes") != std::optional<uint64_t>(text->size()))
            rp_.problem(std::string(name) + ": size differs from the manifest");
        return std::move(*text);
    }

    // 3. The chain: recompute the head and replay it; the manifest's binding must be its
    //    GENESIS.
    void replay_chain() {
        for_each_line(*events_text_, "events.jsonl", rp_,
                      [&](std::string_view line) { rp_.apply(line); });
        const json jchain = manifest_.value("chain", json::object());
        const std::string head = jchain.is_object() ? jchain.value("head", "") : "";
        const auto events = number_of(jchain, "events");
        if (events != std::optional<uint64_t>(rp_.events()) || head != to_hex(rp_.head()))
            rp_.problem("events.jsonl: the chain recomputes to event " +
                        std::to_string(rp_.events()) + " head " + to_hex(rp_.head()) +
                        ", the manifest says event " + (events ? std::to_string(*events) : "?") +
                        " head '" + head + "'");
        const auto& g = rp_.genesis();
        if (!g || g->job_id != manifest_string("job_id") ||
            g->customer != manifest_string("customer") ||
            g->product != manifest_string("product") ||
            std::optional<uint64_t>(g->quota) != number_of(manifest_, "quota"))
            rp_.problem(
                "manifest.json: job id, customer, product or quota differ from the chain's "
                "GENESIS event");
        if (number_of(manifest_, "quota_used") != std::optional<uint64_t>(rp_.quota_used()))
            rp_.problem("manifest.json: quota_used differs from the number of ISSUE events (" +
                        std::to_string(rp_.quota_used()) + ")");
    }

    // 4. The records: format, order, agreement with the chain, certificates.
    void check_records() {
        uint64_t line_no = 0;
        // The export's order: lot, then packaged parts by UID, then wafer, y, x.
        std::optional<std::tuple<std::string, bool, int, int, int, wpid1::Uid>> prev;
        std::map<wpid1::Uid, bool> seen;
        for_each_line(*records_text_, "records.jsonl", rp_, [&](std::string_view line) {
            ++line_no;
            ++rep_.records;
            const std::string where = "records.jsonl line " + std::to_string(line_no);
            LedgerRecord r;
            try {
                r = parse_record_line(line);
            } catch (const std::exception& e) {
                rp_.problem(where + ": " + e.what());
                return;
            }
            const std::string who = where + " (UID " + to_hex(r.uid) + ")";
            const auto key =
                std::make_tuple(r.loc.lot, !r.loc.packaged, r.loc.wafer, r.loc.y, r.loc.x, r.uid);
            if (prev && !(*prev < key)) rp_.problem(who + ": not in (lot, wafer, y, x) order");
            prev = key;
            ++counts_.of(r.state);
            if (seen[r.uid]) rp_.problem(who + ": UID listed twice");
            seen[r.uid] = true;
            if (events_text_) check_against_chain(r, who);
            check_certificate(r, who);
        });
        if (events_text_)
            for (const auto& [uid, rec] : rp_.records())
                if (seen.count(uid) == 0)
                    rp_.problem("records.jsonl: UID " + to_hex(uid) + " (" + rec.loc.describe() +
                                ") is in the event log but not exported");
    }

    void check_against_chain(const LedgerRecord& r, const std::string& who) {
        auto it = rp_.records().find(r.uid);
        if (it == rp_.records().end()) {
            rp_.problem(who + ": no ISSUE event for this UID");
            return;
        }
        const auto& e = it->second;
        if (e.loc != r.loc || e.serial != r.serial || e.state != r.state ||
            e.public_key != r.public_key || e.wrapped != r.wrapped ||
            !chain::sha256_matches(e.certificate_der, r.certificate_der))
            rp_.problem(who + ": differs from the record the event log replays to");
    }

    // The device certificate: its key is the record's (P-256), its serial number the record's,
    // its subject serialNumber the UID, and the CA signed it.
    void check_certificate(const LedgerRecord& r, const std::string& who) {
        auto cert = parse_der_cert(r.certificate_der);
        if (!cert.ok()) {
            ossl::clear_errors();
            rp_.problem(who + ": certificate: " + cert.error().message);
            return;
        }
        X509* c = cert->get();
        const ASN1_BIT_STRING* bits = X509_get0_pubkey_bitstr(c);
        EVP_PKEY* pk = X509_get0_pubkey(c);
        char group[64] = {};
        size_t glen = 0;
        if (bits == nullptr || pk == nullptr ||
            EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           &glen) != 1 ||
            std::string(group) != "prime256v1" ||
            Bytes(ASN1_STRING_get0_data(bits),
                  ASN1_STRING_get0_data(bits) + ASN1_STRING_length(bits)) !=
                Bytes(r.public_key.begin(), r.public_key.end()))
            rp_.problem(who + ": the certificate's public key is not public_key (P-256)");
        ossl::Bn a(ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), nullptr));
        ossl::Bn b(BN_bin2bn(r.serial.data(), static_cast<int>(r.serial.size()), nullptr));
        if (!a || !b || BN_is_negative(a.get()) || BN_cmp(a.get(), b.get()) != 0)
            rp_.problem(who + ": the certificate's serial number is not serial");
        X509_NAME* subject = X509_get_subject_name(c);
        const int idx = X509_NAME_get_index_by_NID(subject, NID_serialNumber, -1);
        std::string sn;
        if (idx >= 0) {
            const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
            sn.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                      static_cast<size_t>(ASN1_STRING_length(s)));
        }
        if (lower(sn) != to_hex(r.uid))
            rp_.problem(who + ": the certificate's subject serialNumber '" + sn +
                        "' is not the UID");
        if (X509_NAME_cmp(X509_get_issuer_name(c), X509_get_subject_name(ca_)) != 0 ||
            X509_verify(c, ca_key_) != 1)
            rp_.problem(who + ": the certificate is not signed by the CA certificate");
        ossl::clear_errors();
    }

    // 5. The manifest's counts against the records.
    void check_counts() {
        if (!records_text_) return;
        if (number_of(manifest_, "records") != std::optional<uint64_t>(rep_.records))
            rp_.problem("manifest.json: records differs from the " + std::to_string(rep_.records) +
                        " lines of records.jsonl");
        const json jcounts = manifest_.value("counts", json::object());
        for (DieState st : {DieState::kIssued, DieState::kDelivered, DieState::kProgrammed,
                            DieState::kFailed, DieState::kVoid})
            if (number_of(jcounts, to_string(st)) != std::optional<uint64_t>(counts_.of(st)))
                rp_.problem(std::string("manifest.json: count of ") + to_string(st) +
                            " differs from records.jsonl (" + std::to_string(counts_.of(st)) + ")");
    }

    const fs::path& dir_;
    const fs::path& ca_pem_;
    std::vector<ossl::X509Ptr> bundle_;
    X509* ca_ = nullptr;
    EVP_PKEY* ca_key_ = nullptr;
    std::string manifest_text_, signature_;
    json manifest_;
    std::optional<std::string> events_text_, records_text_;
    chain::Replayer rp_;  // collects the problems
    VerifyReport rep_;
    StateCounts counts_;
};

}  // namespace

Result<VerifyReport> Ledger::verify_export(const fs::path& dir, const fs::path& ca_pem) {
    WP_ASSIGN_OR_RETURN(auto bundle, read_ca_bundle(ca_pem));
    return ExportVerifier(dir, ca_pem, std::move(bundle)).run();
}

}  // namespace waferprov::host
