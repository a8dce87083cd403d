// waferprov ca init --out DIR [--hsm --module PATH --token-label L --key-label K --pin-env VAR]
//                   [--product NAME] [--organization O]
// waferprov ca csr --out DIR [the same CA options]       (production ceremony, step 1)
// waferprov ca import --dir DIR --cert FILE --root FILE  (production ceremony, step 3)
#include <iostream>

#include "ca_args.hpp"
#include "waferprov/host/ca_ceremony.hpp"

namespace waferprov::cli {

std::string ca_args_problem(const ParsedArgs& a) {
    if (!a.has("hsm")) {
        if (a.has("module") || a.has("token-label") || a.has("key-label") || a.has("pin-env"))
            return "--module/--token-label/--key-label/--pin-env need --hsm";
        return "";
    }
    if (a.get("module").empty() || a.get("token-label").empty() || a.get("key-label").empty())
        return "--hsm needs --module, --token-label and --key-label";
    return "";
}

Result<host::ChainFiles> init_chain_from_args(const ParsedArgs& a, const std::filesystem::path& dir,
                                              const host::ChainOptions& chain) {
    if (auto problem = ca_args_problem(a); !problem.empty())
        return make_error(ErrorCode::kInvalidArgument, problem);
    if (!a.has("hsm")) return host::init_pem_chain(dir, chain);
    host::HsmChainOptions h;
    h.module = a.get("module");
    h.token_label = a.get("token-label");
    h.key_label = a.get("key-label");
    if (a.has("pin-env")) h.pin_env = a.get("pin-env");
    h.chain = chain;
    return host::init_hsm_chain(dir, h);
}

namespace {

constexpr const char* kUsage =
    "usage: waferprov ca init --out DIR [--product NAME] [--organization O]\n"
    "                         [--hsm --module PATH --token-label L --key-label K [--pin-env VAR]]\n"
    "\n"
    "Creates a development CA chain on P-256: a self-signed root CA (pathlen 1, 20 years) and the\n"
    "manufacturer CA it signs (pathlen 0), which signs device certificates. Writes DIR/root.pem,\n"
    "DIR/root.key (0600), DIR/ca.pem and, without --hsm, DIR/ca.key (0600). Never overwrites.\n"
    "--hsm: generate the manufacturer CA key pair inside the PKCS#11 token (it never leaves it);\n"
    "the user PIN is read from the environment variable named by --pin-env (default\n"
    "WAFERPROV_HSM_PIN), never from the command line.\n"
    "Exit status: 0 written; 1 an error (nothing overwritten); 2 usage.\n"
    "\n"
    "Production (the root stays offline; docs/certificates.md walks through it):\n"
    "  waferprov ca csr --out DIR [--product NAME] [--organization O] [--hsm ...]\n"
    "      generates the manufacturer CA key (in the token with --hsm, else DIR/ca.key 0600)\n"
    "      and writes the request DIR/ca.csr for the offline root to sign.\n"
    "  waferprov ca import --dir DIR --cert CA.pem --root ROOT.pem\n"
    "      checks the returned certificate against DIR/ca.csr and the root (same key and\n"
    "      subject, CA:TRUE pathlen 0, keyCertSign + digitalSignature, chain and validity)\n"
    "      and only then writes DIR/ca.pem and DIR/root.pem for the job's [ca] table.\n";

// Parses a ca subcommand's options: its own value options plus the CA ones when `with_ca`.
bool parse_ca_command(const Args& args, const char* name, std::vector<std::string_view> values,
                      bool with_ca, ParsedArgs& pa) {
    std::string err;
    std::vector<std::string_view> flags = {"help"};
    if (with_ca) {
        values.insert(values.end(), kCaValueOptions.begin(), kCaValueOptions.end());
        flags.push_back(kCaFlagOption);
    }
    if (!parse_args(args, values, flags, pa, err)) {
        std::cerr << "waferprov ca " << name << ": " << err << "\n" << kUsage;
        return false;
    }
    if (!pa.positionals.empty()) {
        std::cerr << "waferprov ca " << name << ": unexpected argument '" << pa.positionals[0]
                  << "'\n"
                  << kUsage;
        return false;
    }
    return true;
}

int run_csr(const Args& args) {
    ParsedArgs pa;
    if (!parse_ca_command(args, "csr", {"out", "product", "organization"}, true, pa))
        return kExitUsage;
    if (pa.has("help")) {
        std::cout << kUsage;
        return kExitOk;
    }
    std::string problem = pa.get("out").empty() ? "--out DIR is required" : ca_args_problem(pa);
    if (!problem.empty()) {
        std::cerr << "waferprov ca csr: " << problem << "\n" << kUsage;
        return kExitUsage;
    }
    host::ChainOptions chain;
    if (pa.has("organization")) chain.organization = pa.get("organization");
    chain.product = pa.get("product");
    Result<host::CsrFiles> files = make_error(ErrorCode::kInternal, "");
    if (pa.has("hsm")) {
        host::HsmChainOptions h;
        h.module = pa.get("module");
        h.token_label = pa.get("token-label");
        h.key_label = pa.get("key-label");
        if (pa.has("pin-env")) h.pin_env = pa.get("pin-env");
        h.chain = chain;
        files = host::make_hsm_csr(pa.get("out"), h);
    } else {
        files = host::make_pem_csr(pa.get("out"), chain);
    }
    if (!files.ok()) {
        std::cerr << "waferprov ca csr: " << files.error().describe() << "\n";
        return kExitFailure;
    }
    std::cout << "request          " << files->csr.string() << "\n";
    if (!files->key.empty())
        std::cout << "key              " << files->key.string() << " (0600)\n";
    else
        std::cout << "key              in token '" << pa.get("token-label") << "', label '"
                  << pa.get("key-label") << "'\n";
    std::cout << "next: have the offline root sign " << files->csr.string()
              << ", then run waferprov ca import\n";
    return kExitOk;
}

int run_import(const Args& args) {
    ParsedArgs pa;
    if (!parse_ca_command(args, "import", {"dir", "cert", "root"}, false, pa)) return kExitUsage;
    if (pa.has("help")) {
        std::cout << kUsage;
        return kExitOk;
    }
    if (pa.get("dir").empty() || pa.get("cert").empty() || pa.get("root").empty()) {
        std::cerr << "waferprov ca import: --dir, --cert and --root are required\n" << kUsage;
        return kExitUsage;
    }
    auto chain = host::import_ca_certificate(pa.get("dir"), pa.get("cert"), pa.get("root"));
    if (!chain.ok()) {
        std::cerr << "waferprov ca import: " << chain.error().describe() << "\n";
        return kExitFailure;
    }
    std::cout << "manufacturer CA  " << chain->ca_cert.string() << "\n"
              << "root CA          " << chain->root_cert.string() << "\n"
              << "point the job's [ca] table at them (certificate, root) and at the key\n";
    return kExitOk;
}

int run_init(const Args& args) {
    ParsedArgs pa;
    std::string err;
    std::vector<std::string_view> value_options = {"out", "product", "organization"};
    value_options.insert(value_options.end(), kCaValueOptions.begin(), kCaValueOptions.end());
    if (!parse_args(args, value_options, {kCaFlagOption, "help"}, pa, err)) {
        std::cerr << "waferprov ca init: " << err << "\n" << kUsage;
        return kExitUsage;
    }
    if (pa.has("help")) {
        std::cout << kUsage;
        return kExitOk;
    }
    if (!pa.positionals.empty() || pa.get("out").empty()) {
        std::cerr
            << "waferprov ca init: --out DIR is required (and takes no positional arguments)\n"
            << kUsage;
        return kExitUsage;
    }
    host::ChainOptions chain;
    if (pa.has("organization")) chain.organization = pa.get("organization");
    chain.product = pa.get("product");

    if (auto problem = ca_args_problem(pa); !problem.empty()) {
        std::cerr << "waferprov ca init: " << problem << "\n" << kUsage;
        return kExitUsage;
    }
    auto files = init_chain_from_args(pa, pa.get("out"), chain);
    if (!files.ok()) {
        std::cerr << "waferprov ca init: " << files.error().describe() << "\n";
        return kExitFailure;
    }
    std::cout << "root CA          " << files->root_cert.string() << " (key "
              << files->root_key.string() << ")\n"
              << "manufacturer CA  " << files->ca_cert.string();
    if (!files->ca_key.empty())
        std::cout << " (key " << files->ca_key.string() << ")\n";
    else
        std::cout << " (key in token '" << pa.get("token-label") << "', label '"
                  << pa.get("key-label") << "')\n";
    return kExitOk;
}

}  // namespace

static int run_ca(const Args& args) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h") {
        (args.empty() ? std::cerr : std::cout) << kUsage;
        return args.empty() ? kExitUsage : kExitOk;
    }
    if (args[0] == "init") return run_init(Args(args.begin() + 1, args.end()));
    if (args[0] == "csr") return run_csr(Args(args.begin() + 1, args.end()));
    if (args[0] == "import") return run_import(Args(args.begin() + 1, args.end()));
    std::cerr << "waferprov ca: unknown subcommand '" << args[0] << "'\n" << kUsage;
    return kExitUsage;
}

WAFERPROV_COMMAND(ca, "ca init | csr | import: a development chain, or the offline-root ceremony",
                  run_ca);

}  // namespace waferprov::cli
