#include "options.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <string_view>

#include "waferprov_ate.h"

namespace waferprov::tester {

const char* const kUsage =
    "usage: waferprov-tester --map FILE --sites N --endpoint EP --job-id ID --tester-id ID\n"
    "                        --key FILE --server-key FILE --kik FILE --ca FILE --root FILE\n"
    "                        [--bins CODE,...] [--uid-from-map] [--index-ms T]\n"
    "                        [--program-ms T] [--fail-rate P] [--retest-rate P] [--seed S] "
    "[--give-up-s S]\n"
    "                        [--timeout-ms T] [--clock-skew-s S] [--lot ID] [--wafer N]\n"
    "                        [--substrate ID | --no-substrate] [--insecure]\n"
    "                        [--json FILE] [--quiet]\n"
    "\n"
    "Simulates a prober and a tester provisioning one wafer over the tester link: an N-site\n"
    "probe card (a near-square rectangle, columns >= rows) steps in a serpentine raster over\n"
    "the map; at each touchdown with a die to provision under it the tester asks the host for\n"
    "the identities, checks each payload as the die would (KEK from the KIK and the UID,\n"
    "AES-KW unwrap, d*G against the certificate, the certificate chain, its serialNumber, the\n"
    "chain id) and reports PROGRAMMED (bin 01) or FAILED (bin CHK: a check failed; bin PF: a\n"
    "simulated programming failure).\n"
    "\n"
    "  --map FILE         wafer map (E142 or SINF); dies to provision: those in --bins\n"
    "  --bins CODE,...    the bins to provision (default 01)\n"
    "  --sites N          probe card sites, 1..1024\n"
    "  --endpoint EP      the host, e.g. tcp://127.0.0.1:7450\n"
    "  --job-id ID        the job the host serves\n"
    "  --tester-id ID     this tester's id, as the job admits it\n"
    "  --key FILE         this tester's CURVE key pair (secret key file)\n"
    "  --server-key FILE  the host's CURVE public key\n"
    "  --kik FILE         the KIK the dies hold in ROM (64 hex digits)\n"
    "  --ca FILE          the manufacturer CA certificate (PEM)\n"
    "  --root FILE        the root CA certificate (PEM)\n"
    "  --uid-from-map     send the map's DeviceIdMap UID where it has one (has_uid = 1)\n"
    "  --index-ms T       prober index time: sleep T ms between touchdowns (default 0)\n"
    "  --program-ms T     programming time of a touchdown (its sites in parallel): the results\n"
    "                     go back T ms after the host's answer, the payload checks included\n"
    "                     (default 0: as soon as the checks are done)\n"
    "  --fail-rate P      probability that programming a good payload fails (default 0)\n"
    "  --retest-rate P    probability that the prober retests a failed die at the end of\n"
    "                     the wafer (default 0)\n"
    "  --seed S           seed of the random choices (default: random)\n"
    "  --give-up-s S      retry a request that times out for S seconds (default 60)\n"
    "  --timeout-ms T     per attempt (default 5000)\n"
    "  --clock-skew-s S   verify certificates at this clock's time + S s (default 0; the host\n"
    "                     backdates notBefore by an hour, so a die's clock may lag that much)\n"
    "  --lot ID, --wafer N  override the map's lot and wafer number\n"
    "  --substrate ID     the wafer's substrate id sent with each touchdown (default: the map's)\n"
    "  --no-substrate     send none (protocol 1.0 TOUCHDOWN, as an older tester does)\n"
    "  --insecure         plain TCP, no CURVE (against `serve --insecure`)\n"
    "  --json FILE        write the summary (and every die's outcome) as JSON\n"
    "  --quiet            print only the summary\n"
    "\n"
    "Exit status: 0 every die to provision got an identity that passed the checks and every\n"
    "result was acknowledged; 1 otherwise (or an error); 2 usage.\n";

namespace {

bool parse_int(std::string_view text, long long lo, long long hi, long long& out) {
    long long v = 0;
    const auto* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, v);
    if (ec != std::errc() || p != end || v < lo || v > hi) return false;
    out = v;
    return true;
}

bool parse_u64(std::string_view text, uint64_t& out) {
    const auto* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, out);
    return ec == std::errc() && p == end && !text.empty();
}

bool parse_double(std::string_view text, double lo, double hi, double& out) {
    double v = 0;
    const auto* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, v);
    if (ec != std::errc() || p != end || !std::isfinite(v) || v < lo || v > hi) return false;
    out = v;
    return true;
}

std::vector<std::string> split_commas(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size()) {
        const size_t comma = s.find(',', start);
        const size_t end = comma == std::string::npos ? s.size() : comma;
        out.push_back(s.substr(start, end - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

}  // namespace

std::optional<Options> parse_options(const std::vector<std::string>& args, std::string& error) {
    static const std::set<std::string_view> kValueOptions = {
        "map",        "sites",     "endpoint",    "job-id",       "tester-id", "key",
        "server-key", "kik",       "ca",          "root",         "bins",      "index-ms",
        "program-ms", "fail-rate", "retest-rate", "seed",         "give-up-s", "timeout-ms",
        "lot",        "wafer",     "json",        "clock-skew-s", "substrate"};
    static const std::set<std::string_view> kFlags = {"uid-from-map", "insecure", "quiet", "help",
                                                      "no-substrate"};

    std::map<std::string, std::string> values;
    std::set<std::string> flags;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "-h") {
            flags.insert("help");
            continue;
        }
        if (a.rfind("--", 0) != 0) {
            error = "unexpected argument '" + a + "'";
            return std::nullopt;
        }
        std::string name = a.substr(2);
        std::optional<std::string> inline_value;
        if (const size_t eq = name.find('='); eq != std::string::npos) {
            inline_value = name.substr(eq + 1);
            name.resize(eq);
        }
        if (kFlags.count(name)) {
            if (inline_value) {
                error = "--" + name + " takes no value";
                return std::nullopt;
            }
            flags.insert(name);
            continue;
        }
        if (!kValueOptions.count(name)) {
            error = "unknown option --" + name;
            return std::nullopt;
        }
        if (values.count(name)) {
            error = "--" + name + " given twice";
            return std::nullopt;
        }
        if (inline_value) {
            values[name] = *inline_value;
        } else if (i + 1 < args.size()) {
            values[name] = args[++i];
        } else {
            error = "--" + name + " needs a value";
            return std::nullopt;
        }
    }

    Options o;
    o.help = flags.count("help") > 0;
    if (o.help) return o;
    o.uid_from_map = flags.count("uid-from-map") > 0;
    o.insecure = flags.count("insecure") > 0;
    o.quiet = flags.count("quiet") > 0;

    std::vector<std::string> required = {"map",       "sites", "endpoint", "job-id",
                                         "tester-id", "kik",   "ca",       "root"};
    if (!o.insecure) {
        required.push_back("key");
        required.push_back("server-key");
    }
    for (const auto& r : required) {
        if (!values.count(r)) {
            error = "--" + r + " is required";
            return std::nullopt;
        }
    }
    auto get = [&](const char* name) -> const std::string& { return values.at(name); };
    auto has = [&](const char* name) { return values.count(name) > 0; };
    long long n = 0;

    o.map = get("map");
    if (!parse_int(get("sites"), 1, WP_ATE_MAX_SITES, n)) {
        error = "--sites must be a whole number 1.." + std::to_string(WP_ATE_MAX_SITES) +
                ", got '" + get("sites") + "'";
        return std::nullopt;
    }
    o.sites = static_cast<int>(n);
    o.endpoint = get("endpoint");
    o.job_id = get("job-id");
    o.tester_id = get("tester-id");
    for (const char* name : {"endpoint", "job-id", "tester-id"}) {
        if (get(name).empty()) {
            error = std::string("--") + name + " must not be empty";
            return std::nullopt;
        }
    }
    if (has("key")) o.key = get("key");
    if (has("server-key")) o.server_key = get("server-key");
    o.kik = get("kik");
    o.ca = get("ca");
    o.root = get("root");
    if (has("bins")) {
        o.bins = split_commas(get("bins"));
        for (const auto& b : o.bins) {
            if (b.empty()) {
                error = "--bins: empty bin code in '" + get("bins") + "'";
                return std::nullopt;
            }
        }
    }
    if (has("index-ms")) {
        if (!parse_int(get("index-ms"), 0, 600000, n)) {
            error = "--index-ms must be a whole number of milliseconds 0..600000, got '" +
                    get("index-ms") + "'";
            return std::nullopt;
        }
        o.index_ms = static_cast<int>(n);
    }
    if (has("program-ms")) {
        if (!parse_int(get("program-ms"), 0, 600000, n)) {
            error = "--program-ms must be a whole number of milliseconds 0..600000, got '" +
                    get("program-ms") + "'";
            return std::nullopt;
        }
        o.program_ms = static_cast<int>(n);
    }
    for (auto [name, target] :
         {std::pair{"fail-rate", &o.fail_rate}, std::pair{"retest-rate", &o.retest_rate}}) {
        if (has(name) && !parse_double(get(name), 0.0, 1.0, *target)) {
            error =
                std::string("--") + name + " must be a probability 0..1, got '" + get(name) + "'";
            return std::nullopt;
        }
    }
    if (has("seed")) {
        uint64_t s = 0;
        if (!parse_u64(get("seed"), s)) {
            error = "--seed must be a whole number 0..2^64-1, got '" + get("seed") + "'";
            return std::nullopt;
        }
        o.seed = s;
    }
    if (has("give-up-s") && !parse_double(get("give-up-s"), 0.0, 86400.0, o.give_up_s)) {
        error = "--give-up-s must be 0..86400 seconds, got '" + get("give-up-s") + "'";
        return std::nullopt;
    }
    if (has("timeout-ms")) {
        if (!parse_int(get("timeout-ms"), 1, 3600000, n)) {
            error =
                "--timeout-ms must be a whole number 1..3600000, got '" + get("timeout-ms") + "'";
            return std::nullopt;
        }
        o.timeout_ms = static_cast<int>(n);
    }
    if (has("clock-skew-s")) {
        if (!parse_int(get("clock-skew-s"), 0, 86400, n)) {
            error = "--clock-skew-s must be a whole number of seconds 0..86400, got '" +
                    get("clock-skew-s") + "'";
            return std::nullopt;
        }
        o.clock_skew_s = static_cast<int>(n);
    }
    if (has("lot")) {
        if (get("lot").empty()) {
            error = "--lot must not be empty";
            return std::nullopt;
        }
        o.lot = get("lot");
    }
    if (has("wafer")) {
        if (!parse_int(get("wafer"), 0, 65535, n)) {
            error = "--wafer must be a whole number 0..65535, got '" + get("wafer") + "'";
            return std::nullopt;
        }
        o.wafer = static_cast<int>(n);
    }
    if (has("substrate") && flags.count("no-substrate")) {
        error = "--substrate and --no-substrate exclude each other";
        return std::nullopt;
    }
    if (has("substrate")) {
        const std::string& id = get("substrate");
        const bool printable =
            !id.empty() && id.size() <= 255 &&
            std::all_of(id.begin(), id.end(), [](char ch) { return ch >= 0x20 && ch <= 0x7e; });
        if (!printable) {
            error = "--substrate must be 1..255 printable ASCII characters";
            return std::nullopt;
        }
        o.substrate = id;
    }
    o.no_substrate = flags.count("no-substrate") != 0;
    if (has("json")) o.json = get("json");
    return o;
}

}  // namespace waferprov::tester
