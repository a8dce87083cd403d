// Shared plumbing for the subcommands of `waferprov`.
//
// A subcommand lives in its own host/cli/cmd_<name>.cpp and registers itself:
//     static int run_wafer(const waferprov::cli::Args& args) { ... }
//     WAFERPROV_COMMAND(wafer, "wafer synth: write a synthetic SEMI E142 map", run_wafer);
// `waferprov <name> ...` then calls it with the arguments after the name.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "waferprov/result.hpp"

namespace waferprov::cli {

using Args = std::vector<std::string>;
using CommandFn = int (*)(const Args&);

// Exit statuses shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command ran and found a failure / an error
inline constexpr int kExitUsage = 2;    // bad command line

struct Command {
    std::string_view name;
    std::string_view summary;
    CommandFn run;
};

// Registry filled by WAFERPROV_COMMAND at static-initialization time.
std::vector<Command>& commands();

struct Registrar {
    Registrar(std::string_view name, std::string_view summary, CommandFn fn) {
        commands().push_back(Command{name, summary, fn});
    }
};

// Small argument helper: `--name VALUE` options, `--flag` flags and positionals.
// get(name) returns the value of the last --name, or "" if absent.
struct ParsedArgs {
    std::vector<std::pair<std::string, std::string>> options;
    std::vector<std::string> flags;
    std::vector<std::string> positionals;
    std::string get(std::string_view name) const;
    bool has(std::string_view name) const;  // option or flag present
    std::vector<std::string> all(std::string_view name) const;
};

// Parses args; `value_options` take a value, `flag_options` do not (names without "--").
// Unknown options or a missing value: returns false and writes "error" to `error`.
bool parse_args(const Args& args, const std::vector<std::string_view>& value_options,
                const std::vector<std::string_view>& flag_options, ParsedArgs& out,
                std::string& error);

// The whole number option --name in lo..hi, `dflt` when absent; anything else is
// kInvalidArgument "--name must be lo..hi".
Result<size_t> number_option(const ParsedArgs& a, std::string_view name, size_t lo, size_t hi,
                             size_t dflt);

// The command line of one subcommand: its name as `waferprov <name>` prints it ("run",
// "ca init"), its usage text, the options taking a value, the flags ("help" is always one) and
// the options it cannot run without.
struct CommandLine {
    std::string_view name;
    const char* usage;
    std::vector<std::string_view> options;
    std::vector<std::string_view> flags;
    std::vector<std::string_view> required;
};

// What every subcommand does around its work: parses `args` against `line` (an unknown option,
// a missing value, a stray argument or a missing required option prints what was wrong and the
// usage to stderr and returns kExitUsage), prints the usage for --help, then runs `body`; an
// Error from it is printed as "waferprov <name>: <error>" and returns kExitFailure.
int run_command(const Args& args, const CommandLine& line,
                const std::function<Result<int>(const ParsedArgs&)>& body);

}  // namespace waferprov::cli

#define WAFERPROV_COMMAND(name, summary, fn) \
    static const ::waferprov::cli::Registrar wp_registrar_##name(#name, summary, fn)
