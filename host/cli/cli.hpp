// Shared plumbing for the subcommands of `waferprov`.
#pragma once

#include <string>
#include <vector>

namespace waferprov::cli {

// A subcommand's arguments after its name; returns the process exit status.
using Args = std::vector<std::string>;

int cmd_kat(const Args& args);

// Exit statuses shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command ran and found a failure
inline constexpr int kExitUsage = 2;    // bad command line

}  // namespace waferprov::cli
