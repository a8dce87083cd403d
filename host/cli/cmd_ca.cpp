// waferprov ca init --out DIR [--hsm --module PATH --token-label L --key-label K --pin-env VAR]
//                   [--product NAME] [--organization O]
#include <iostream>

#include "cli.hpp"
#include "waferprov/host/ca_init.hpp"

namespace waferprov::cli {
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
    if (!parse_args(args, {"out", "module", "token-label", "key-label", "pin-env", "product", "organization"},
                    {"hsm", "help"}, pa, err)) {
        std::cerr << "waferprov ca init: " << err << "\n" << kUsage;
        return kExitUsage;
    }
    if (pa.has("help")) {
        std::cout << kUsage;
        return kExitOk;
    }
    if (!pa.positionals.empty() || pa.get("out").empty()) {
        std::cerr << "waferprov ca init: --out DIR is required (and takes no positional arguments)\n" << kUsage;
        return kExitUsage;
    }
    host::ChainOptions chain;
    if (pa.has("organization")) chain.organization = pa.get("organization");
    chain.product = pa.get("product");

    Result<host::ChainFiles> files = make_error(ErrorCode::kInternal, "not run");
    if (pa.has("hsm")) {
        host::HsmChainOptions h;
        h.module = pa.get("module");
        h.token_label = pa.get("token-label");
        h.key_label = pa.get("key-label");
        if (pa.has("pin-env")) h.pin_env = pa.get("pin-env");
        h.chain = chain;
        if (h.module.empty() || h.token_label.empty() || h.key_label.empty()) {
            std::cerr << "waferprov ca init: --hsm needs --module, --token-label and --key-label\n" << kUsage;
            return kExitUsage;
        }
        files = host::init_hsm_chain(pa.get("out"), h);
    } else {
        if (pa.has("module") || pa.has("token-label") || pa.has("key-label") || pa.has("pin-env")) {
            std::cerr << "waferprov ca init: --module/--token-label/--key-label/--pin-env need --hsm\n" << kUsage;
            return kExitUsage;
        }
        files = host::init_pem_chain(pa.get("out"), chain);
    }
    if (!files.ok()) {
        std::cerr << "waferprov ca init: " << files.error().describe() << "\n";
        return kExitFailure;
    }
    std::cout << "root CA          " << files->root_cert.string() << " (key " << files->root_key.string() << ")\n"
              << "manufacturer CA  " << files->ca_cert.string();
    if (!files->ca_key.empty()) std::cout << " (key " << files->ca_key.string() << ")\n";
    else std::cout << " (key in token '" << pa.get("token-label") << "', label '" << pa.get("key-label") << "')\n";
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

WAFERPROV_COMMAND(ca, "ca init: create a development root + manufacturer CA (PEM or PKCS#11 key)", run_ca);

}  // namespace waferprov::cli
