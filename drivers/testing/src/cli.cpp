#include "waferprov/testing/cli.hpp"

#include <sstream>

#include "waferprov/testing/process.hpp"

namespace waferprov::testing {

CliRun run_cli(const std::filesystem::path& binary, const std::vector<std::string>& args,
               const std::filesystem::path& dir, std::chrono::milliseconds timeout) {
    std::vector<std::string> argv{binary.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto out = dir / "cli.stdout";
    const auto err = dir / "cli.stderr";
    CliRun r;
    const pid_t pid = spawn_process(argv, out, err, /*append=*/false);
    if (pid < 0) {
        r.status = kSpawnFailed;
        return r;
    }
    r.status = wait_process(pid, timeout);
    r.out = read_text(out);
    r.err = read_text(err);
    return r;
}

std::vector<std::string> split_args(const std::string& line) {
    std::vector<std::string> out;
    std::istringstream in(line);
    for (std::string word; in >> word;) out.push_back(word);
    return out;
}

}  // namespace waferprov::testing
