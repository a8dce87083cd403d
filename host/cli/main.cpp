// waferprov: the provisioning host's command line.
#include <algorithm>
#include <cstring>
#include <exception>
#include <iostream>

#include "cli.hpp"

namespace waferprov::cli {

std::vector<Command>& commands() {
    static std::vector<Command> registry;
    return registry;
}

std::string ParsedArgs::get(std::string_view name) const {
    std::string v;
    for (const auto& [k, val] : options)
        if (k == name) v = val;
    return v;
}

bool ParsedArgs::has(std::string_view name) const {
    for (const auto& [k, val] : options)
        if (k == name) return true;
    return std::find(flags.begin(), flags.end(), name) != flags.end();
}

std::vector<std::string> ParsedArgs::all(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, val] : options)
        if (k == name) out.push_back(val);
    return out;
}

Result<size_t> number_option(const ParsedArgs& a, std::string_view name, size_t lo, size_t hi,
                             size_t dflt) {
    if (!a.has(name)) return dflt;
    const std::string text = a.get(name);
    size_t v = 0;
    try {
        size_t pos = 0;
        v = std::stoul(text, &pos);
        if (pos != text.size()) v = 0;
    } catch (const std::exception&) {
        v = 0;
    }
    if (v < lo || v > hi)
        return make_error(ErrorCode::kInvalidArgument, "--" + std::string(name) + " must be " +
                                                           std::to_string(lo) + ".." +
                                                           std::to_string(hi));
    return v;
}

bool parse_args(const Args& args, const std::vector<std::string_view>& value_options,
                const std::vector<std::string_view>& flag_options, ParsedArgs& out,
                std::string& error) {
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a.rfind("--", 0) != 0 || a == "--") {
            out.positionals.push_back(a);
            continue;
        }
        std::string name = a.substr(2), value;
        const auto eq = name.find('=');
        const bool inline_value = eq != std::string::npos;
        if (inline_value) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        if (std::find(value_options.begin(), value_options.end(), name) != value_options.end()) {
            if (!inline_value) {
                if (i + 1 >= args.size()) {
                    error = "option --" + name + " needs a value";
                    return false;
                }
                value = args[++i];
            }
            out.options.emplace_back(name, value);
        } else if (std::find(flag_options.begin(), flag_options.end(), name) !=
                       flag_options.end() &&
                   !inline_value) {
            out.flags.push_back(name);
        } else {
            error = "unknown option --" + name;
            return false;
        }
    }
    return true;
}

int run_command(const Args& args, const CommandLine& line,
                const std::function<Result<int>(const ParsedArgs&)>& body) {
    const std::string me = "waferprov " + std::string(line.name) + ": ";
    std::vector<std::string_view> flags = line.flags;
    flags.push_back("help");
    ParsedArgs a;
    std::string err;
    if (!parse_args(args, line.options, flags, a, err) || !a.positionals.empty()) {
        std::cerr << me << (err.empty() ? "unexpected argument " + a.positionals[0] : err) << "\n"
                  << line.usage;
        return kExitUsage;
    }
    if (a.has("help")) {
        std::cout << line.usage;
        return kExitOk;
    }
    std::vector<std::string> missing;
    for (auto r : line.required)
        if (!a.has(r)) missing.push_back("--" + std::string(r));
    if (!missing.empty()) {
        std::string list;
        for (size_t i = 0; i < missing.size(); ++i)
            list += (i == 0 ? "" : i + 1 == missing.size() ? " and " : ", ") + missing[i];
        std::cerr << me << list << (missing.size() == 1 ? " is" : " are") << " required\n"
                  << line.usage;
        return kExitUsage;
    }
    auto r = body(a);
    if (!r.ok()) {
        std::cerr << me << r.error().describe() << "\n";
        return kExitFailure;
    }
    return *r;
}

}  // namespace waferprov::cli

namespace {

void usage(std::ostream& out) {
    auto cmds = waferprov::cli::commands();
    std::sort(cmds.begin(), cmds.end(), [](auto& a, auto& b) { return a.name < b.name; });
    out << "usage: waferprov <command> [options]\n\ncommands:\n";
    for (const auto& c : cmds) out << "  " << c.name << "\t" << c.summary << "\n";
    out << "\n'waferprov <command> --help' describes a command; 'waferprov --version' the "
           "version.\n";
}

}  // namespace

int main(int argc, char** argv) {
    using namespace waferprov::cli;
    if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? std::cerr : std::cout);
        return argc < 2 ? kExitUsage : kExitOk;
    }
    if (std::strcmp(argv[1], "--version") == 0) {
        std::cout << "waferprov " << WAFERPROV_VERSION_STRING << "\n";
        return kExitOk;
    }
    const std::string_view name = argv[1];
    for (const auto& c : commands()) {
        if (c.name != name) continue;
        try {
            return c.run(Args(argv + 2, argv + argc));
        } catch (const std::exception& e) {
            std::cerr << "waferprov " << name << ": internal error: " << e.what() << "\n";
            return kExitFailure;
        }
    }
    std::cerr << "waferprov: unknown command '" << name << "'\n";
    usage(std::cerr);
    return kExitUsage;
}
