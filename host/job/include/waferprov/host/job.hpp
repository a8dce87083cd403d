// A provisioning job: who it is for, which keys and CA it uses, which dies it provisions, and
// where it keeps its ledger. Read from a TOML job file (docs/jobs.md describes every key).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "waferprov/bytes.hpp"
#include "waferprov/host/model.hpp"
#include "waferprov/result.hpp"
#include "waferprov/wpid1.hpp"

namespace waferprov::host {

struct JobCa {
    enum class Kind { kPem, kPkcs11 };
    Kind kind = Kind::kPem;
    std::filesystem::path certificate;  // the manufacturer (intermediate) CA certificate, PEM
    std::filesystem::path root;         // the root CA certificate, PEM (for verification)
    std::filesystem::path key;          // PEM private key (kind == kPem)
    std::string module;                 // PKCS#11 module path (kind == kPkcs11)
    std::string token_label;
    std::string key_label;
    std::string pin_env = "WAFERPROV_HSM_PIN";  // the PIN comes from this environment variable
};

// The die-location extension's OID when a job names none: under 1.3.6.1.4.1.32473, the
// enterprise number RFC 5612 reserves for documentation. A development default only; a
// production job names an OID under the manufacturer's own IANA enterprise number.
inline constexpr const char* kDevelopmentLocationOid = "1.3.6.1.4.1.32473.1.1";

struct JobCertificateTemplate {
    std::string organization;
    std::string organizational_unit;
    std::string country;
    std::string location_oid = kDevelopmentLocationOid;  // [certificate] location_oid
};

// Whether `oid` is a dotted OID under the private-enterprise arc: 1.3.6.1.4.1.<PEN>[.<arc>...],
// each arc a decimal number without leading zeros.
bool valid_oid(std::string_view oid);

enum class UidPolicy {
    kDerived,  // the host derives the UID from lot, wafer, x, y (derive_uid)
    kTester,   // the tester reads the UID from the die (or the map's DeviceIdMap carries it)
};

// A tester admitted to the job's tester link: its id (printable ASCII, what the ledger records)
// and the CurveZMQ public key (Z85, 40 characters) it must connect with. `waferprov serve` binds
// the two: a connection with this key may only speak as this id.
struct TesterKey {
    std::string id;
    std::string public_key;
    bool operator==(const TesterKey&) const = default;
};

// --ledger on a command line: a PostgreSQL URI as given, a SQLite file ("sqlite:PATH" or a
// path) made absolute.
std::filesystem::path ledger_argument(const std::string& text);

struct Job {
    std::filesystem::path file;  // the job file; relative paths in it are relative to its folder
    std::string id;
    std::string product;
    std::string customer;
    uint64_t quota = 0;
    std::string backend = "software";
    // [backend]: the backend's parameters (drivers/backends: e.g. engines for verilator),
    // as text; keys.device_key is passed as its device_key parameter.
    std::map<std::string, std::string> backend_params;
    std::filesystem::path wrapped_kik;                // hex of AES-KW(DK, KIK), 40 bytes
    std::optional<std::filesystem::path> device_key;  // software engine DK file (0600)
    // The ledger (docs/ledger.md "Stores"): a SQLite file, or a PostgreSQL URI several hosts
    // share; then `anchor` names this host's anchor file (for SQLite: beside the file if unset).
    std::filesystem::path ledger;
    std::optional<std::filesystem::path> anchor;
    JobCa ca;
    JobCertificateTemplate certificate;
    UidPolicy uid_policy = UidPolicy::kDerived;
    Bytes uid_salt;  // 16..64 bytes, derived policy only
    std::vector<std::string> provision_bins = {"01"};
    // [map] uid_overlay: the E142 DeviceIdMap overlay (its Overlay MapName) UIDs come from;
    // unset = the map's only DeviceIdMap (see MapReadOptions::uid_overlay).
    std::optional<std::string> map_uid_overlay;
    uint64_t reseed_interval = uint64_t{1} << 20;  // DRBG Generate calls between reseeds
    std::vector<TesterKey> testers;                // the testers admitted to the job
    // [job] max_deliveries: how often the tester link delivers one die's identity (its first
    // delivery and retests); beyond it the site is refused DELIVERY_CAP (1 .. 65535).
    uint32_t max_deliveries = 16;
};

// Reads and validates a job file. Errors name the file, the key and what is wrong; TOML syntax
// errors carry the line and column.
Result<Job> load_job(const std::filesystem::path& file);

// Writes `job` as a TOML job file at job.file (paths written relative to its folder).
Status write_job(const Job& job);

// The derived UID policy (docs/identity-spec.md, "UID"):
//   UID = first 16 bytes of SHA-256("WPID-1 UID/2" || 0x00 || salt || [len(lot)]16 || lot ||
//                                   [wafer]32 || [x]32 || [y]32 ||
//                                   [len(substrate)]16 || substrate)
// with the integers big-endian two's complement. Deterministic, so a retest of the same die
// yields the same UID; the substrate id makes two physical wafers that share a lot and wafer
// number derive different UIDs.
wpid1::Uid derive_uid(ByteSpan salt, const DieLocation& loc);
// The UID before substrate ids (tag "WPID-1 UID", no substrate): what ledgers migrated from
// schema version 2 hold. Only to recognise those identities on a retest; never for a new one.
wpid1::Uid derive_legacy_uid(ByteSpan salt, const DieLocation& loc);

// Reads the wrapped KIK file (80 hex digits).
Result<Bytes> read_wrapped_kik(const Job& job);

}  // namespace waferprov::host
