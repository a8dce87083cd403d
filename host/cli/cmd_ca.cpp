// waferprov ca init --out DIR [--hsm --module PATH --token-label L --key-label K --pin-env VAR]
//                   [--product NAME] [--organization O]
#include <iostream>

#include "ca_args.hpp"

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
    "Exit status: 0 written; 1 an error (nothing overwritten); 2 usage.\n";

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
    std::cerr << "waferprov ca: unknown subcommand '" << args[0] << "'\n" << kUsage;
    return kExitUsage;
}

WAFERPROV_COMMAND(ca, "ca init: create a development root + manufacturer CA (PEM or PKCS#11 key)",
                  run_ca);

}  // namespace waferprov::cli
