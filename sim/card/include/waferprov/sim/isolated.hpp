// SystemC elaborates once per process: modules cannot be built after sc_start(), and a
// simulation cannot be restarted. Each model run (a test, one point of `plan --sweep`)
// therefore runs in a child process: fork, run `body` there, hand its text result back over a
// pipe. The parent must not have started SystemC itself.
#pragma once

#include <functional>
#include <string>

#include "waferprov/result.hpp"

namespace waferprov::sim {

// Runs `body` in a forked child and returns what it returned; an error if it returned one,
// threw, or died.
Result<std::string> run_isolated(const std::function<Result<std::string>()>& body);

}  // namespace waferprov::sim
