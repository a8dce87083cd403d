// The floor description (TOML) and its checks; every error names the file and the key.
#include <toml++/toml.h>
#include <cmath>
#include <set>
#include <sstream>

#include "waferprov/sim/floor.hpp"

namespace waferprov::sim {

namespace {

class Reader {
public:
    Reader(std::string file, const toml::table& root) : file_(std::move(file)), root_(root) {}

    Error bad(const std::string& key, const std::string& what) const {
        return make_error(ErrorCode::kInvalidArgument, file_ + ": '" + key + "' " + what);
    }
    const toml::node* node(const std::string& key) {
        seen_.insert(key);
        return root_.at_path(key).node();
    }
    Status num(const std::string& key, double lo, double hi, double& out) {
        const toml::node* n = node(key);
        if (n == nullptr) return ok_status();
        std::optional<double> v = n->value<double>();
        if (!v || n->is_boolean()) return bad(key, "must be a number");
        if (!std::isfinite(*v) || *v < lo || *v > hi)
            return bad(key, "must be in [" + fmt(lo) + ", " + fmt(hi) + "], got " + fmt(*v));
        out = *v;
        return ok_status();
    }
    template <class I>
    Status integer(const std::string& key, int64_t lo, int64_t hi, I& out) {
        const toml::node* n = node(key);
        if (n == nullptr) return ok_status();
        if (!n->is_integer()) return bad(key, "must be an integer");
        const int64_t v = *n->value<int64_t>();
        if (v < lo || v > hi)
            return bad(key, "must be in " + std::to_string(lo) + ".." + std::to_string(hi) +
                                ", got " + std::to_string(v));
        out = static_cast<I>(v);
        return ok_status();
    }
    Status boolean(const std::string& key, bool& out) {
        const toml::node* n = node(key);
        if (n == nullptr) return ok_status();
        if (!n->is_boolean()) return bad(key, "must be true or false");
        out = *n->value<bool>();
        return ok_status();
    }
    Status path(const std::string& key, const std::filesystem::path& base,
                std::filesystem::path& out) {
        const toml::node* n = node(key);
        if (n == nullptr) return ok_status();
        if (!n->is_string() || n->value<std::string>()->empty())
            return bad(key, "must be a file name");
        std::filesystem::path p = *n->value<std::string>();
        out = p.is_absolute() ? p : base / p;
        return ok_status();
    }
    // Every key in the file must be one this reader asked for: a typo is an error, not a
    // silently ignored parameter.
    Status no_unknown_keys() {
        for (const auto& [section, v] : root_) {
            const std::string s(section.str());
            const toml::table* t = v.as_table();
            if (t == nullptr) return bad(s, "is not a known section");
            for (const auto& [k, _] : *t) {
                const std::string key = s + "." + std::string(k.str());
                if (!seen_.count(key)) return bad(key, "is not a known key");
            }
        }
        return ok_status();
    }

private:
    static std::string fmt(double v) {
        std::ostringstream o;
        o << v;
        return o.str();
    }
    std::string file_;
    const toml::table& root_;
    std::set<std::string> seen_;
};

}  // namespace

Result<FloorConfig> load_floor(const std::filesystem::path& file) {
    toml::table root;
    // toml++ reports a missing file as a parse error at "line 0": say what it is.
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec))
        return make_error(ErrorCode::kInvalidArgument,
                          file.string() + ": no such floor file (or not a regular file)");
    try {
        root = toml::parse_file(file.string());
    } catch (const toml::parse_error& e) {
        return make_error(ErrorCode::kInvalidArgument, file.string() + ": line " +
                                                           std::to_string(e.source().begin.line) +
                                                           ": " + std::string(e.description()));
    }
    FloorConfig c;
    Reader r(file.string(), root);
    const auto base = file.parent_path();
    WP_RETURN_IF_ERROR(r.integer("floor.testers", 1, 4096, c.testers));
    WP_RETURN_IF_ERROR(r.integer("floor.sites", 1, 1024, c.sites));
    WP_RETURN_IF_ERROR(r.integer("floor.wafers_per_tester", 1, 10000, c.wafers_per_tester));
    WP_RETURN_IF_ERROR(r.num("floor.index_time_s", 0, 3600, c.index_time_s));
    WP_RETURN_IF_ERROR(r.num("floor.program_time_s", 0, 3600, c.program_time_s));
    WP_RETURN_IF_ERROR(r.num("floor.wafer_change_s", 0, 86400, c.wafer_change_s));
    WP_RETURN_IF_ERROR(r.num("floor.fail_rate", 0, 0.5, c.fail_rate));
    WP_RETURN_IF_ERROR(r.integer("floor.seed", 0, INT64_MAX, c.seed));

    WP_RETURN_IF_ERROR(r.path("wafer.map", base, c.map));
    WP_RETURN_IF_ERROR(r.num("wafer.diameter_mm", 25, 450, c.diameter_mm));
    if (const toml::node* n = r.node("wafer.die_mm"); n != nullptr) {
        const toml::array* a = n->as_array();
        if (a == nullptr || a->size() != 2 || !(*a)[0].value<double>() || !(*a)[1].value<double>())
            return r.bad("wafer.die_mm", "must be [width, height] in mm");
        c.die_width_mm = *(*a)[0].value<double>();
        c.die_height_mm = *(*a)[1].value<double>();
        if (!(c.die_width_mm >= 0.1 && c.die_width_mm <= 100 && c.die_height_mm >= 0.1 &&
              c.die_height_mm <= 100))
            return r.bad("wafer.die_mm", "must be between 0.1 and 100 mm a side");
    }
    if (const toml::node* n = r.node("wafer.bins"); n != nullptr) {
        const toml::array* a = n->as_array();
        if (a == nullptr || a->empty()) return r.bad("wafer.bins", "must be a list of bin codes");
        c.bins.clear();
        for (const auto& b : *a) {
            if (!b.is_string()) return r.bad("wafer.bins", "must be a list of bin codes");
            c.bins.push_back(*b.value<std::string>());
        }
    }

    WP_RETURN_IF_ERROR(r.integer("hosts.count", 1, 1024, c.hosts));
    WP_RETURN_IF_ERROR(r.integer("hosts.signing_threads", 1, 1024, c.signing_threads));
    WP_RETURN_IF_ERROR(r.num("hosts.sign_per_s", 1, 1e9, c.sign_per_s));
    WP_RETURN_IF_ERROR(r.num("hosts.ledger_fixed_ms", 0, 1e5, c.ledger_fixed_ms));
    WP_RETURN_IF_ERROR(r.num("hosts.ledger_per_die_ms", 0, 1e5, c.ledger_per_die_ms));
    WP_RETURN_IF_ERROR(r.num("hosts.ledger_sigma", 0, 3, c.ledger_sigma));
    WP_RETURN_IF_ERROR(r.num("hosts.transport_ms", 0, 1e5, c.transport_ms));
    WP_RETURN_IF_ERROR(r.boolean("hosts.generate_on_host", c.generate_on_host));
    WP_RETURN_IF_ERROR(r.num("hosts.host_keygen_per_s", 1, 1e9, c.host_keygen_per_s));

    WP_RETURN_IF_ERROR(r.integer("cards.per_host", 0, 64, c.cards_per_host));
    WP_RETURN_IF_ERROR(r.integer("cards.engines", 1, 16, c.engines));
    WP_RETURN_IF_ERROR(r.integer("cards.stream_bits", 128, 512, c.stream_bits));
    if (c.stream_bits != 128 && c.stream_bits != 256 && c.stream_bits != 512)
        return r.bad("cards.stream_bits", "must be 128, 256 or 512");
    WP_RETURN_IF_ERROR(r.num("cards.clock_mhz", 1, 2000, c.clock_mhz));
    WP_RETURN_IF_ERROR(r.path("cards.calibration", base, c.calibration));

    WP_RETURN_IF_ERROR(r.integer("pcie.generation", 1, 5, c.pcie.generation));
    WP_RETURN_IF_ERROR(r.integer("pcie.lanes", 1, 16, c.pcie.lanes));
    WP_RETURN_IF_ERROR(r.num("pcie.efficiency", 0.01, 1, c.pcie.efficiency));
    WP_RETURN_IF_ERROR(r.num("pcie.dma_setup_us", 0, 1e6, c.pcie.dma_setup_us));
    if (auto s = c.pcie.validate(); !s.ok()) return r.bad("pcie.lanes", s.error().message);
    WP_RETURN_IF_ERROR(r.no_unknown_keys());
    if (c.cards_per_host == 0) c.generate_on_host = true;
    WP_RETURN_IF_ERROR(validate_floor(c));
    return c;
}

Status validate_floor(const FloorConfig& c) {
    auto bad = [](const std::string& what) {
        return make_error(ErrorCode::kInvalidArgument, what);
    };
    if (c.testers < 1) return bad("floor.testers must be >= 1");
    if (c.sites < 1) return bad("floor.sites must be >= 1");
    if (c.hosts < 1) return bad("hosts.count must be >= 1");
    if (c.engines < 1 || c.engines > 16) return bad("cards.engines must be 1..16");
    if (c.cards_per_host < 0) return bad("cards.per_host must be >= 0");
    if (c.wafers_per_tester < 1) return bad("floor.wafers_per_tester must be >= 1");
    return c.pcie.validate();
}

Status set_floor_param(FloorConfig& c, const std::string& name, int value) {
    if (name == "engines") {
        if (value < 1 || value > 16)
            return make_error(ErrorCode::kInvalidArgument, "engines must be 1..16");
        c.engines = static_cast<unsigned>(value);
    } else if (name == "testers") {
        c.testers = value;
    } else if (name == "hosts") {
        c.hosts = value;
    } else if (name == "cards") {
        c.cards_per_host = value;
        c.generate_on_host = value == 0;
    } else if (name == "sites") {
        c.sites = value;
    } else {
        return make_error(
            ErrorCode::kInvalidArgument,
            "cannot sweep '" + name + "': one of engines, testers, hosts, cards, sites");
    }
    return validate_floor(c);
}

}  // namespace waferprov::sim
