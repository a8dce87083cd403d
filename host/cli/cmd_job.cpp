// waferprov job init --out DIR [options]: a complete development job in one folder.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <openssl/rand.h>

#include "ca_args.hpp"
#include "waferprov/backends.hpp"
#include "waferprov/host/curve_keys.hpp"
#include "waferprov/host/job.hpp"

namespace waferprov::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUsage =
    "usage: waferprov job init --out DIR [--id ID] [--product NAME] [--customer NAME]\n"
    "                          [--quota N] [--uid-policy derived|tester] [--tester ID ...]\n"
    "                          [--backend SPEC]\n"
    "                          [--hsm --module PATH --token-label LABEL --key-label LABEL\n"
    "                           [--pin-env VAR]]\n"
    "\n"
    "Writes a complete development job into DIR: DIR/job.toml, the CA chain (DIR/root.pem,\n"
    "DIR/ca.pem and their keys, or with --hsm the manufacturer CA key generated inside the\n"
    "PKCS#11 token, where it stays), the software engine's device key DIR/device.key (0600),\n"
    "the wrapped KIK DIR/kik.wrapped and DIR/kik.hex, the plaintext KIK the demo's dies hold\n"
    "in ROM (a development convenience that production jobs never have), and the tester\n"
    "link's CurveZMQ keys: DIR/server.key (0600) and DIR/server.pub for `waferprov serve`, and\n"
    "for each --tester ID the tester's DIR/tester-ID.key (0600) and DIR/tester-ID.pub, its\n"
    "public key admitted in the job's [testers] table.\n"
    "With --hsm the token's user PIN is read from $WAFERPROV_HSM_PIN (or --pin-env VAR).\n"
    "--backend SPEC: the job's backend and its parameters, NAME[:KEY=VALUE,...] (default\n"
    "software; verilator[:engines=N]; xdma[:device=PREFIX]; docs/drivers.md). The device key\n"
    "and the KIK's wrap go through the backend registry; software and verilator take the same\n"
    "device.key file. A card (xdma) carries its own device key: no device.key is written and\n"
    "the KIK is wrapped under the development test key the emulated card holds.\n";

Status write_text(const fs::path& p, const std::string& text, mode_t mode) {
    std::ofstream out(p, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return make_error(ErrorCode::kIo, "cannot write " + p.string());
    if (::chmod(p.c_str(), mode) != 0)
        return make_error(ErrorCode::kIo, "cannot chmod " + p.string());
    return ok_status();
}

// The engine's device key, and the KIK wrapped under it: the KIK reaches the engine only as
// AES-KW(DK, KIK). Both through the backend registry (drivers/backends).
Status write_engine_keys(const ParsedArgs& a, const fs::path& dir, host::Job& job) {
    BackendOptions backend;
    if (a.has("backend")) {
        WP_ASSIGN_OR_RETURN(backend, parse_backend_spec(a.get("backend")));
        if (backend.params.count("device_key") != 0)
            return make_error(ErrorCode::kInvalidArgument,
                              "--backend: job init writes the device key itself (device.key)");
    }
    job.backend = backend.name;
    job.backend_params = backend.params;
    // A backend whose device key the host chooses gets a fresh device.key; a card (xdma)
    // carries its own, and the KIK is wrapped under the development test key it holds.
    WP_ASSIGN_OR_RETURN(backend, create_device_key(backend, dir));
    if (auto dk = backend.params.find("device_key"); dk != backend.params.end())
        job.device_key = dk->second;
    SecretArray<32> kik;
    if (RAND_priv_bytes(kik.data(), 32) != 1)
        return make_error(ErrorCode::kCrypto, "RAND_priv_bytes failed");
    WP_ASSIGN_OR_RETURN(Bytes wrapped, wrap_kik_for(backend, kik.span()));
    WP_RETURN_IF_ERROR(write_text(job.wrapped_kik, to_hex(wrapped) + "\n", 0644));
    std::string kik_hex = to_hex(kik.span()) + "\n";
    auto st = write_text(dir / "kik.hex", kik_hex, 0600);
    secure_wipe(kik_hex.data(), kik_hex.size());
    return st;
}

// The tester link's keys: the server's pair, and one pair per tester admitted.
Status write_link_keys(const ParsedArgs& a, const fs::path& dir, host::Job& job) {
    WP_ASSIGN_OR_RETURN(auto server, host::protocol::generate_curve_keys());
    WP_RETURN_IF_ERROR(host::protocol::write_curve_key_files(
        server, "waferprov serve " + job.id, dir / "server.key", dir / "server.pub"));
    for (const auto& id : a.all("tester")) {
        const bool file_safe = !id.empty() && id.size() <= 64 &&
                               std::all_of(id.begin(), id.end(),
                                           [](char c) {
                                               return std::isalnum(static_cast<unsigned char>(c)) ||
                                                      c == '-' || c == '_' || c == '.';
                                           }) &&
                               id[0] != '.';
        if (!file_safe)
            return make_error(
                ErrorCode::kInvalidArgument,
                "--tester '" + id + "': use 1..64 of A-Z a-z 0-9 - _ . (it names a file)");
        for (const auto& t : job.testers)
            if (t.id == id)
                return make_error(ErrorCode::kInvalidArgument, "--tester '" + id + "' given twice");
        WP_ASSIGN_OR_RETURN(auto keys, host::protocol::generate_curve_keys());
        WP_RETURN_IF_ERROR(host::protocol::write_curve_key_files(
            keys, id, dir / ("tester-" + id + ".key"), dir / ("tester-" + id + ".pub")));
        job.testers.push_back(host::TesterKey{id, keys.public_z85});
    }
    return ok_status();
}

// Builds the job in `dir` (which exists and is empty).
Status build_job(const ParsedArgs& a, const fs::path& dir, const std::string& name) {
    const fs::path job_file = dir / "job.toml";

    host::Job job;
    job.file = job_file;
    job.id = a.has("id") ? a.get("id") : "DEV-" + name;
    job.product = a.has("product") ? a.get("product") : "WPDEMO";
    job.customer = a.has("customer") ? a.get("customer") : "Development customer";
    job.quota = 100000;
    if (a.has("quota")) {
        try {
            job.quota = std::stoull(a.get("quota"));
        } catch (const std::exception&) {
            return make_error(ErrorCode::kInvalidArgument, "--quota must be a whole number");
        }
    }
    job.ledger = dir / "ledger.sqlite";
    job.wrapped_kik = dir / "kik.wrapped";
    job.ca.certificate = dir / "ca.pem";
    job.ca.root = dir / "root.pem";
    job.certificate.organization = "waferprov development";

    const std::string policy = a.has("uid-policy") ? a.get("uid-policy") : "derived";
    if (policy == "derived") {
        job.uid_policy = host::UidPolicy::kDerived;
        job.uid_salt.resize(16);
        if (RAND_bytes(job.uid_salt.data(), 16) != 1)
            return make_error(ErrorCode::kCrypto, "RAND_bytes failed");
    } else if (policy == "tester") {
        job.uid_policy = host::UidPolicy::kTester;
    } else {
        return make_error(ErrorCode::kInvalidArgument, "--uid-policy must be derived or tester");
    }

    host::ChainOptions chain;
    chain.product = job.product;
    WP_ASSIGN_OR_RETURN(auto files, init_chain_from_args(a, dir, chain));
    if (a.has("hsm")) {
        job.ca.kind = host::JobCa::Kind::kPkcs11;
        job.ca.module = a.get("module");
        job.ca.token_label = a.get("token-label");
        job.ca.key_label = a.get("key-label");
        if (a.has("pin-env")) job.ca.pin_env = a.get("pin-env");
    } else {
        job.ca.kind = host::JobCa::Kind::kPem;
        job.ca.key = files.ca_key;
    }

    WP_RETURN_IF_ERROR(write_engine_keys(a, dir, job));
    WP_RETURN_IF_ERROR(write_link_keys(a, dir, job));
    WP_RETURN_IF_ERROR(host::write_job(job));
    std::cout << "development job " << job.id << ": product " << job.product << ", quota "
              << job.quota << ", CA key "
              << (a.has("hsm") ? "in token '" + job.ca.token_label + "'" : std::string("in ca.key"))
              << "\n";
    return ok_status();
}

// All or nothing: the job is built in a sibling temporary folder and renamed into place, so a
// failure part-way leaves no half-written job behind (a CA key already generated inside a
// token stays there; its label is then taken and a retry needs another --key-label).
Status init_job(const ParsedArgs& a) {
    const fs::path dir = fs::absolute(a.get("out")).lexically_normal();
    std::error_code ec;
    if (fs::exists(dir) && !(fs::is_directory(dir) && fs::is_empty(dir, ec)))
        return make_error(
            ErrorCode::kInvalidArgument,
            dir.string() + " exists and is not an empty folder; refusing to overwrite");
    const fs::path work =
        dir.parent_path() / ("." + dir.filename().string() + ".init-" + std::to_string(::getpid()));
    fs::create_directories(work, ec);
    if (ec)
        return make_error(ErrorCode::kIo, "cannot create " + work.string() + ": " + ec.message());
    auto st = build_job(a, work, dir.filename().string());
    if (st.ok()) {
        fs::remove(dir, ec);  // the empty folder, if there was one
        fs::rename(work, dir, ec);
        if (ec)
            st = make_error(ErrorCode::kIo, "cannot rename " + work.string() + " to " +
                                                dir.string() + ": " + ec.message());
    }
    if (!st.ok()) {
        fs::remove_all(work, ec);
        return st;
    }
    std::cout << "wrote " << (dir / "job.toml").string() << ", root.pem, ca.pem"
              << (fs::exists(dir / "device.key") ? ", device.key" : "")
              << ", kik.wrapped, kik.hex, server.key, server.pub";
    for (const auto& id : a.all("tester"))
        std::cout << ", tester-" << id << ".key, tester-" << id << ".pub";
    std::cout << "\n";
    std::cout << "note: the die-location certificate extension uses OID "
              << host::kDevelopmentLocationOid
              << ", under the documentation enterprise number 32473 (RFC 5612): a development "
                 "default. Set [certificate] location_oid to an OID under your own IANA "
                 "enterprise number before production (docs/certificates.md).\n";
    return ok_status();
}

int run_job(const Args& args) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h") {
        std::cout << kUsage;
        return args.empty() ? kExitUsage : kExitOk;
    }
    if (args[0] != "init") {
        std::cerr << "waferprov job: unknown subcommand '" << args[0] << "'\n" << kUsage;
        return kExitUsage;
    }
    ParsedArgs a;
    std::string err;
    std::vector<std::string_view> value_options = {"out",   "id",         "product", "customer",
                                                   "quota", "uid-policy", "tester",  "backend"};
    value_options.insert(value_options.end(), kCaValueOptions.begin(), kCaValueOptions.end());
    if (!parse_args(Args(args.begin() + 1, args.end()), value_options, {kCaFlagOption, "help"}, a,
                    err) ||
        !a.positionals.empty()) {
        std::cerr << "waferprov job init: " << (err.empty() ? "unexpected argument" : err) << "\n"
                  << kUsage;
        return kExitUsage;
    }
    if (a.has("help")) {
        std::cout << kUsage;
        return kExitOk;
    }
    if (!a.has("out")) {
        std::cerr << "waferprov job init: --out DIR is required\n" << kUsage;
        return kExitUsage;
    }
    if (auto problem = ca_args_problem(a); !problem.empty()) {
        std::cerr << "waferprov job init: " << problem << "\n" << kUsage;
        return kExitUsage;
    }
    if (auto st = init_job(a); !st.ok()) {
        std::cerr << "waferprov job init: " << st.error().describe() << "\n";
        return kExitFailure;
    }
    return kExitOk;
}

}  // namespace

WAFERPROV_COMMAND(job, "job init: write a complete development job (CA, keys, job file)", run_job);

}  // namespace waferprov::cli
