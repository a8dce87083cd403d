#include "waferprov/backends.hpp"

#include <algorithm>
#include <charconv>
#include <functional>

#include "waferprov/card/card_driver.hpp"
#include "waferprov/software/aes.hpp"
#include "waferprov/software/software_engine.hpp"
#include "waferprov/xdma/xdma_transport.hpp"
#if WAFERPROV_HAVE_VERILATOR
#include "waferprov/verilator/verilator_transport.hpp"
#endif

namespace waferprov {
namespace {

using namespace std::chrono_literals;

struct Entry {
    const char* name;
    std::vector<std::string> params;
    std::function<Result<std::unique_ptr<Accelerator>>(const BackendOptions&)> make;
    // Whether the host chooses the device key (software, verilator: the key is a file the
    // host hands to the engine). A card on PCIe carries its own DK: `job init` writes no
    // device.key for it and wraps the KIK under the DK the job names (or the development key).
    bool host_device_key = true;
};

Result<software::DeviceKey> key_of(const BackendOptions& o) {
    if (auto it = o.params.find("device_key"); it != o.params.end())
        return software::load_device_key(it->second);
    return software::test_device_key();
}

// A whole number parameter in [lo, hi], or `fallback` when absent.
Result<uint64_t> number_param(const BackendOptions& o, const std::string& key, uint64_t lo,
                              uint64_t hi, uint64_t fallback) {
    auto it = o.params.find(key);
    if (it == o.params.end()) return fallback;
    const std::string& v = it->second;
    uint64_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size() || n < lo || n > hi)
        return make_error(ErrorCode::kInvalidArgument, "backend " + o.name + ": " + key + "='" + v +
                                                           "' is not a whole number in " +
                                                           std::to_string(lo) + ".." +
                                                           std::to_string(hi));
    return n;
}

// The card on PCIe through the Xilinx XDMA driver's nodes <device>_user, _h2c_0, _c2h_0,
// _events_0. The defaults suit a real card (microseconds per die): a deadline only catches a
// hung card. The emulated card (sim/cardsim) runs ~100 dies/s and needs per_die_us=50000.
Result<std::unique_ptr<Accelerator>> make_xdma(const BackendOptions& o) {
    std::string prefix = "/dev/xdma0";
    if (auto it = o.params.find("device"); it != o.params.end()) prefix = it->second;
    card::CardOptions co;
    co.backend_name = "xdma";
    WP_ASSIGN_OR_RETURN(uint64_t timeout_ms, number_param(o, "timeout_ms", 1, 3'600'000, 5000));
    WP_ASSIGN_OR_RETURN(uint64_t per_die_us, number_param(o, "per_die_us", 0, 10'000'000, 100));
    co.command_timeout = std::chrono::milliseconds(timeout_ms);
    co.records_timeout_base = std::chrono::milliseconds(timeout_ms);
    co.records_timeout_per_die = std::chrono::microseconds(per_die_us);
    // Missing nodes are the common case (no card, no driver loaded, the emulator not mounted):
    // one clear "unavailable" naming the node looked for.
    const std::string user = prefix + "_user";
    std::error_code ec;
    if (!std::filesystem::exists(user, ec))
        return make_error(ErrorCode::kUnavailable,
                          "no XDMA card at " + prefix + ": " + user +
                              " does not exist (is the xdma driver loaded, or waferprov-cardsim "
                              "mounted? set the prefix with xdma:device=PATH)");
    auto t = xdma::XdmaTransport::open(prefix);
    if (!t.ok()) {
        Error e = t.error();
        if (e.code == ErrorCode::kNotFound) e.code = ErrorCode::kUnavailable;
        return e;
    }
    return card::make_card_accelerator(std::move(*t), co);
}

#if WAFERPROV_HAVE_VERILATOR
Result<std::unique_ptr<Accelerator>> make_verilator(const BackendOptions& o) {
    verilator::VerilatorOptions vo;
    vo.engines = verilator::default_verilator_engines();
    if (auto it = o.params.find("engines"); it != o.params.end()) {
        const std::string& v = it->second;
        uint32_t n = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc() || p != v.data() + v.size())
            return make_error(ErrorCode::kInvalidArgument,
                              "backend verilator: engines='" + v + "' is not a number");
        vo.engines = n;
    }
    WP_ASSIGN_OR_RETURN(software::DeviceKey dk, key_of(o));
    vo.device_key.assign(dk.bytes.begin(), dk.bytes.end());
    auto t = verilator::make_verilator_transport(vo);
    secure_wipe(vo.device_key.data(), vo.device_key.size());
    if (!t.ok()) return t.error();
    card::CardOptions co;
    co.backend_name = "verilator";
    // A simulated card runs a few hundred thousand cycles per second: ~10 ms per die at four
    // engines, and a register command a few milliseconds. Generous deadlines, still finite.
    co.command_timeout = 60s;
    co.records_timeout_base = 60s;
    co.records_timeout_per_die = 500ms;
    return card::make_card_accelerator(std::move(*t), co);
}
#endif

const std::vector<Entry>& registry() {
    static const std::vector<Entry> entries = {
        {"software",
         {"device_key"},
         [](const BackendOptions& o) -> Result<std::unique_ptr<Accelerator>> {
             WP_ASSIGN_OR_RETURN(software::DeviceKey dk, key_of(o));
             return std::unique_ptr<Accelerator>(
                 std::make_unique<software::SoftwareEngine>(std::move(dk)));
         }},
#if WAFERPROV_HAVE_VERILATOR
        {"verilator", {"engines", "device_key"}, make_verilator},
#endif
        {"xdma", {"device", "timeout_ms", "per_die_us", "device_key"}, make_xdma, false},
    };
    return entries;
}

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
}

Result<const Entry*> find(const BackendOptions& o) {
    for (const auto& e : registry()) {
        if (o.name != e.name) continue;
        for (const auto& [k, v] : o.params)
            if (std::find(e.params.begin(), e.params.end(), k) == e.params.end())
                return make_error(ErrorCode::kInvalidArgument,
                                  "backend " + o.name + " takes no parameter '" + k +
                                      "' (it takes: " + join(e.params) + ")");
        return &e;
    }
    return make_error(ErrorCode::kNotFound, "unknown backend '" + o.name + "' (this build has: " +
                                                join(available_backends()) + ")");
}

}  // namespace

std::vector<std::string> available_backends() {
    std::vector<std::string> out;
    for (const auto& e : registry()) out.emplace_back(e.name);
    return out;
}

Result<std::vector<std::string>> backend_params(const std::string& name) {
    WP_ASSIGN_OR_RETURN(const Entry* e, find(BackendOptions{name, {}}));
    return e->params;
}

Result<BackendOptions> parse_backend_spec(const std::string& spec) {
    BackendOptions o;
    const auto colon = spec.find(':');
    o.name = spec.substr(0, colon);
    if (o.name.empty())
        return make_error(ErrorCode::kInvalidArgument, "backend spec '" + spec + "' has no name");
    if (colon == std::string::npos) return o;
    std::string rest = spec.substr(colon + 1);
    size_t pos = 0;
    while (pos <= rest.size()) {
        const size_t comma = std::min(rest.find(',', pos), rest.size());
        const std::string kv = rest.substr(pos, comma - pos);
        const auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == kv.size())
            return make_error(ErrorCode::kInvalidArgument,
                              "backend spec '" + spec + "': '" + kv + "' is not KEY=VALUE");
        if (!o.params.emplace(kv.substr(0, eq), kv.substr(eq + 1)).second)
            return make_error(ErrorCode::kInvalidArgument, "backend spec '" + spec + "': '" +
                                                               kv.substr(0, eq) + "' given twice");
        pos = comma + 1;
    }
    return o;
}

Result<std::unique_ptr<Accelerator>> make_backend(const BackendOptions& options) {
    WP_ASSIGN_OR_RETURN(const Entry* e, find(options));
    auto b = e->make(options);
    if (!b.ok()) return b.error().with_context("backend " + options.name);
    return b;
}

Result<SecretArray<32>> device_key_for(const BackendOptions& options) {
    WP_ASSIGN_OR_RETURN(const Entry* e, find(options));
    (void)e;
    return key_of(options);
}

Result<Bytes> wrap_kik_for(const BackendOptions& options, ByteSpan kik) {
    if (kik.size() != 32)
        return make_error(ErrorCode::kInvalidArgument,
                          "KIK must be 32 bytes, got " + std::to_string(kik.size()));
    WP_ASSIGN_OR_RETURN(SecretArray<32> dk, device_key_for(options));
    return software::kw_wrap(dk.span(), kik);
}

Result<BackendOptions> create_device_key(BackendOptions options, const std::filesystem::path& dir) {
    WP_ASSIGN_OR_RETURN(const Entry* e, find(options));
    if (!e->host_device_key) return options;
    const std::filesystem::path file = dir / "device.key";
    WP_RETURN_IF_ERROR(software::write_new_device_key(file));
    options.params["device_key"] = file.string();
    return options;
}

}  // namespace waferprov
