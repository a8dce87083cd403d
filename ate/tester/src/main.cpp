// waferprov-tester: a prober + tester simulator over the tester link (docs/tester-simulator.md).
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "options.hpp"
#include "simulator.hpp"

int main(int argc, char** argv) {
    using namespace waferprov::tester;
    try {
        std::vector<std::string> args(argv + 1, argv + argc);
        std::string error;
        auto options = parse_options(args, error);
        if (!options) {
            std::cerr << "waferprov-tester: " << error << "\n" << kUsage;
            return kExitUsage;
        }
        if (options->help) {
            std::cout << kUsage;
            return kExitOk;
        }
        return run_simulation(*options, std::cout, std::cerr);
    } catch (const std::exception& e) {
        std::cerr << "waferprov-tester: internal error: " << e.what() << "\n";
        return kExitFailure;
    }
}
