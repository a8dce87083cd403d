// waferprov: the provisioning host's command line.
#include <cstring>
#include <exception>
#include <iostream>
#include <string_view>

#include "cli.hpp"

namespace {

struct Command {
    std::string_view name;
    int (*run)(const waferprov::cli::Args&);
    std::string_view summary;
};

constexpr Command kCommands[] = {
    {"kat", waferprov::cli::cmd_kat,
     "run known-answer test files (default: the built-in vectors on every backend)"},
};

void usage(std::ostream& out) {
    out << "usage: waferprov <command> [options]\n\ncommands:\n";
    for (const auto& c : kCommands) out << "  " << c.name << "\t" << c.summary << "\n";
    out << "\n'waferprov <command> --help' describes a command.\n";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? std::cerr : std::cout);
        return argc < 2 ? waferprov::cli::kExitUsage : waferprov::cli::kExitOk;
    }
    const std::string_view name = argv[1];
    for (const auto& c : kCommands) {
        if (c.name != name) continue;
        try {
            return c.run(waferprov::cli::Args(argv + 2, argv + argc));
        } catch (const std::exception& e) {
            std::cerr << "waferprov " << name << ": internal error: " << e.what() << "\n";
            return waferprov::cli::kExitFailure;
        }
    }
    std::cerr << "waferprov: unknown command '" << name << "'\n";
    usage(std::cerr);
    return waferprov::cli::kExitUsage;
}
