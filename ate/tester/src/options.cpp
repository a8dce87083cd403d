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
    "                        [--handler-sites N [--swapped K] [--unsorted K] [--handler-id ID]\n"
    "                         [--strip-map FILE ...] [--final-fail K]]\n"
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
    "  --handler-sites N  handler mode (final test, protocol 1.2): after the wafer, its\n"
    "                     PROGRAMMED dies, packaged, go through an N-site handler; the host\n"
    "                     challenges each part and the part signs with its key (d unwrapped\n"
    "                     as the die does)\n"
    "  --swapped K        K of those parts carry another part's key: the host must catch them\n"
    "  --unsorted K       K more parts with UIDs never provisioned at sort (refused by a\n"
    "                     derived-UID job, provisioned at final test by a tester-UID job)\n"
    "  --handler-id ID    the handler's id (default HANDLER-1)\n"
    "  --strip-map FILE   a SEMI E142 file of strips (SubstrateType Strip), repeatable: the\n"
    "                     handler places the parts in the strips' good positions, in order,\n"
    "                     and sends each part's strip id, row and column; without one every\n"
    "                     part is sent with its carrier unknown\n"
    "  --final-fail K     K of the parts from sort fail final test: they sign their challenge\n"
    "                     and are reported FAILED (bin FT)\n"
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

namespace {

const std::set<std::string_view> kValueOptions = {
    "map",        "sites",     "endpoint",    "job-id",       "tester-id", "key",
    "server-key", "kik",       "ca",          "root",         "bins",      "index-ms",
    "program-ms", "fail-rate", "retest-rate", "seed",         "give-up-s", "timeout-ms",
    "lot",        "wafer",     "json",        "clock-skew-s", "substrate", "handler-sites",
    "swapped",    "unsorted",  "handler-id",  "final-fail"};
// Options that may be given more than once, each value kept in order.
const std::set<std::string_view> kRepeatable = {"strip-map"};
const std::set<std::string_view> kFlags = {"uid-from-map", "insecure", "quiet", "help",
                                           "no-substrate"};

// The command line split into --name value pairs and flags, every name checked; the first
// problem goes to `error`.
struct Tokens {
    std::map<std::string, std::string> values;
    std::map<std::string, std::vector<std::string>> repeated;
    std::set<std::string> flags;
    std::string error;

    bool has(const char* name) const { return values.count(name) > 0; }
    const std::string& get(const char* name) const { return values.at(name); }
    bool flag(const char* name) const { return flags.count(name) > 0; }

    bool fail(std::string text) {
        error = std::move(text);
        return false;
    }

    bool read(const std::vector<std::string>& args) {
        for (size_t i = 0; i < args.size(); ++i) {
            const std::string& a = args[i];
            if (a == "-h") {
                flags.insert("help");
                continue;
            }
            if (a.rfind("--", 0) != 0) return fail("unexpected argument '" + a + "'");
            std::string name = a.substr(2);
            std::optional<std::string> inline_value;
            if (const size_t eq = name.find('='); eq != std::string::npos) {
                inline_value = name.substr(eq + 1);
                name.resize(eq);
            }
            if (kFlags.count(name)) {
                if (inline_value) return fail("--" + name + " takes no value");
                flags.insert(name);
                continue;
            }
            if (kRepeatable.count(name)) {
                if (inline_value)
                    repeated[name].push_back(*inline_value);
                else if (i + 1 < args.size())
                    repeated[name].push_back(args[++i]);
                else
                    return fail("--" + name + " needs a value");
                if (repeated[name].back().empty()) return fail("--" + name + " must not be empty");
                continue;
            }
            if (!kValueOptions.count(name)) return fail("unknown option --" + name);
            if (values.count(name)) return fail("--" + name + " given twice");
            if (inline_value)
                values[name] = *inline_value;
            else if (i + 1 < args.size())
                values[name] = args[++i];
            else
                return fail("--" + name + " needs a value");
        }
        return true;
    }

    // --name as a whole number lo..hi into `out` when given; `unit` ("milliseconds", or "")
    // names it in the error.
    bool whole(const char* name, long long lo, long long hi, const char* unit, int& out) {
        if (!has(name)) return true;
        long long n = 0;
        if (!parse_int(get(name), lo, hi, n))
            return fail(std::string("--") + name + " must be a whole number " +
                        (*unit != '\0' ? std::string("of ") + unit + " " : "") +
                        std::to_string(lo) + ".." + std::to_string(hi) + ", got '" + get(name) +
                        "'");
        out = static_cast<int>(n);
        return true;
    }

    bool not_empty(const char* name, std::optional<std::string>& out) {
        if (!has(name)) return true;
        if (get(name).empty()) return fail(std::string("--") + name + " must not be empty");
        out = get(name);
        return true;
    }
};

// The options every run needs: present, and the names not empty.
bool read_required(Tokens& t, Options& o) {
    std::vector<std::string> required = {"map",       "sites", "endpoint", "job-id",
                                         "tester-id", "kik",   "ca",       "root"};
    if (!o.insecure) {
        required.push_back("key");
        required.push_back("server-key");
    }
    for (const auto& r : required)
        if (!t.values.count(r)) return t.fail("--" + r + " is required");
    o.map = t.get("map");
    if (!t.whole("sites", 1, WP_ATE_MAX_SITES, "", o.sites)) return false;
    for (const char* name : {"endpoint", "job-id", "tester-id"})
        if (t.get(name).empty()) return t.fail(std::string("--") + name + " must not be empty");
    o.endpoint = t.get("endpoint");
    o.job_id = t.get("job-id");
    o.tester_id = t.get("tester-id");
    if (t.has("key")) o.key = t.get("key");
    if (t.has("server-key")) o.server_key = t.get("server-key");
    o.kik = t.get("kik");
    o.ca = t.get("ca");
    o.root = t.get("root");
    return true;
}

// The prober's and the tester's behaviour: bins, times, rates, seed, retries.
bool read_behaviour(Tokens& t, Options& o) {
    if (t.has("bins")) {
        o.bins = split_commas(t.get("bins"));
        for (const auto& b : o.bins)
            if (b.empty()) return t.fail("--bins: empty bin code in '" + t.get("bins") + "'");
    }
    if (!t.whole("index-ms", 0, 600000, "milliseconds", o.index_ms) ||
        !t.whole("program-ms", 0, 600000, "milliseconds", o.program_ms))
        return false;
    for (auto [name, target] :
         {std::pair{"fail-rate", &o.fail_rate}, std::pair{"retest-rate", &o.retest_rate}})
        if (t.has(name) && !parse_double(t.get(name), 0.0, 1.0, *target))
            return t.fail(std::string("--") + name + " must be a probability 0..1, got '" +
                          t.get(name) + "'");
    if (t.has("seed")) {
        uint64_t s = 0;
        if (!parse_u64(t.get("seed"), s))
            return t.fail("--seed must be a whole number 0..2^64-1, got '" + t.get("seed") + "'");
        o.seed = s;
    }
    if (t.has("give-up-s") && !parse_double(t.get("give-up-s"), 0.0, 86400.0, o.give_up_s))
        return t.fail("--give-up-s must be 0..86400 seconds, got '" + t.get("give-up-s") + "'");
    if (!t.whole("handler-sites", 0, WP_ATE_MAX_SITES, "", o.handler_sites) ||
        !t.whole("swapped", 0, 1000000, "", o.swapped) ||
        !t.whole("unsorted", 0, 1000000, "", o.unsorted) ||
        !t.whole("final-fail", 0, 1000000, "", o.final_fail))
        return false;
    if ((o.swapped > 0 || o.unsorted > 0 || t.has("handler-id")) && o.handler_sites == 0)
        return t.fail("--swapped, --unsorted and --handler-id need --handler-sites");
    if (t.repeated.count("strip-map") && o.handler_sites == 0)
        return t.fail(
            "--strip-map needs --handler-sites: strip maps are the carriers of final test "
            "(handler mode); the wafer is read with --map");
    if (t.has("final-fail") && o.handler_sites == 0)
        return t.fail("--final-fail needs --handler-sites");
    if (auto it = t.repeated.find("strip-map"); it != t.repeated.end())
        o.strip_maps.assign(it->second.begin(), it->second.end());
    if (t.has("handler-id")) {
        o.handler_id = t.get("handler-id");
        if (o.handler_id.empty() || o.handler_id.size() > 255 ||
            !std::all_of(o.handler_id.begin(), o.handler_id.end(),
                         [](char ch) { return ch >= 0x20 && ch <= 0x7e; }))
            return t.fail("--handler-id must be 1..255 printable ASCII characters");
    }
    return t.whole("timeout-ms", 1, 3600000, "", o.timeout_ms) &&
           t.whole("clock-skew-s", 0, 86400, "seconds", o.clock_skew_s);
}

// The wafer the touchdowns name: lot, number and substrate id overrides.
bool read_wafer(Tokens& t, Options& o) {
    if (!t.not_empty("lot", o.lot)) return false;
    if (t.has("wafer")) {
        int w = 0;
        if (!t.whole("wafer", 0, 65535, "", w)) return false;
        o.wafer = w;
    }
    if (t.has("substrate") && t.flag("no-substrate"))
        return t.fail("--substrate and --no-substrate exclude each other");
    if (t.has("substrate")) {
        const std::string& id = t.get("substrate");
        const bool printable =
            !id.empty() && id.size() <= 255 &&
            std::all_of(id.begin(), id.end(), [](char ch) { return ch >= 0x20 && ch <= 0x7e; });
        if (!printable) return t.fail("--substrate must be 1..255 printable ASCII characters");
        o.substrate = id;
    }
    o.no_substrate = t.flag("no-substrate");
    return true;
}

}  // namespace

std::optional<Options> parse_options(const std::vector<std::string>& args, std::string& error) {
    Tokens t;
    Options o;
    bool ok = t.read(args);
    if (ok) {
        o.help = t.flag("help");
        if (o.help) return o;
        o.uid_from_map = t.flag("uid-from-map");
        o.insecure = t.flag("insecure");
        o.quiet = t.flag("quiet");
        ok = read_required(t, o) && read_behaviour(t, o) && read_wafer(t, o);
        if (t.has("json")) o.json = t.get("json");
    }
    if (!ok) {
        error = t.error;
        return std::nullopt;
    }
    return o;
}

}  // namespace waferprov::tester
