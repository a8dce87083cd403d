// The command line of waferprov-tester (docs/tester-simulator.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace waferprov::tester {

struct Options {
    std::filesystem::path map;             // --map: the wafer map (E142 or SINF)
    int sites = 0;                         // --sites: probe card sites, 1..WP_ATE_MAX_SITES
    std::string endpoint;                  // --endpoint: the host, "tcp://host:port"
    std::string job_id;                    // --job-id
    std::string tester_id;                 // --tester-id
    std::filesystem::path key;             // --key: the tester's CURVE secret key file
    std::filesystem::path server_key;      // --server-key: the host's CURVE public key file
    std::filesystem::path kik;             // --kik: the KIK the dies hold in ROM (hex)
    std::filesystem::path ca;              // --ca: the manufacturer CA certificate (PEM)
    std::filesystem::path root;            // --root: the root CA certificate (PEM)
    std::vector<std::string> bins{"01"};   // --bins: the map's bins to provision
    bool uid_from_map = false;             // --uid-from-map: send the map's DeviceIdMap UIDs
    int index_ms = 0;                      // --index-ms: prober index time between touchdowns
    int program_ms = 0;                    // --program-ms: programming the dies of a touchdown
    double fail_rate = 0;                  // --fail-rate: programming failures of good payloads
    double retest_rate = 0;                // --retest-rate: failed dies the prober comes back for
    std::optional<uint64_t> seed;          // --seed: reproducible random choices
    double give_up_s = 60;                 // --give-up-s: how long one request is retried
    int timeout_ms = 5000;                 // --timeout-ms: per attempt
    int clock_skew_s = 0;                  // --clock-skew-s: certificates verified at now + this
    std::optional<std::string> lot;        // --lot: overrides the map's lot
    std::optional<int> wafer;              // --wafer: overrides the map's wafer number
    std::optional<std::string> substrate;  // --substrate: overrides the map's substrate id
    bool no_substrate = false;             // --no-substrate: 1.0 TOUCHDOWN, no substrate id
    bool insecure = false;                 // --insecure: plain TCP (serve --insecure)
    // Handler mode (final test, docs/final-test.md): after the wafer, the parts it provisioned
    // go through a handler of --handler-sites sites; each signs its challenge with its key.
    int handler_sites = 0;                // --handler-sites: 0 = no final test
    int swapped = 0;                      // --swapped: parts carrying another part's key
    int unsorted = 0;                     // --unsorted: parts never provisioned at sort
    std::string handler_id{"HANDLER-1"};  // --handler-id
    // --strip-map (repeatable): SEMI E142 strip maps; the handler places the parts in the
    // strips' good positions, in file order, and sends each part's strip, row and column.
    // None: every part is sent with "carrier unknown" (has_carrier = 0).
    std::vector<std::filesystem::path> strip_maps;
    int final_fail = 0;  // --final-fail: parts that sign but fail final test (outcome FAILED)
    std::filesystem::path json;  // --json: the summary as JSON
    bool quiet = false;          // --quiet: no progress, summary only
    bool help = false;
};

// Parses argv (without the program name). On a usage error returns nullopt and sets `error` to
// a message naming the option and what is wrong with it.
std::optional<Options> parse_options(const std::vector<std::string>& args, std::string& error);

extern const char* const kUsage;

}  // namespace waferprov::tester
