// The CA options `ca init` and `job init` share: --hsm --module --token-label --key-label
// --pin-env choose between a PEM chain and a manufacturer CA key generated inside a token.
#pragma once

#include <filesystem>

#include "cli.hpp"
#include "waferprov/host/ca_init.hpp"

namespace waferprov::cli {

// Option names to pass to parse_args alongside a command's own.
inline const std::vector<std::string_view> kCaValueOptions = {"module", "token-label", "key-label",
                                                              "pin-env"};
inline constexpr std::string_view kCaFlagOption = "hsm";

// What is wrong with the CA options (an incomplete --hsm, token options without --hsm), or ""
// when they are usable: a usage error, checked before anything is created.
std::string ca_args_problem(const ParsedArgs& a);

// Creates the chain in `dir` as the (checked) options say.
Result<host::ChainFiles> init_chain_from_args(const ParsedArgs& a, const std::filesystem::path& dir,
                                              const host::ChainOptions& chain);

}  // namespace waferprov::cli
