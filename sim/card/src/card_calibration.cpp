#include "waferprov/sim/card_calibration.hpp"

#include <toml++/toml.h>
#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace waferprov::sim {

#ifndef WAFERPROV_CARD_CALIBRATION
#define WAFERPROV_CARD_CALIBRATION "card_calibration.toml"
#endif

std::filesystem::path default_card_calibration_path() {
    if (const char* env = std::getenv("WAFERPROV_CARD_CALIBRATION"); env != nullptr && *env != '\0')
        return env;
    // An installed program (<prefix>/bin/waferprov): the package's copy in
    // <prefix>/share/waferprov, written by the build it came from.
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const auto installed =
            exe.parent_path().parent_path() / "share/waferprov/card_calibration.toml";
        if (std::filesystem::is_regular_file(installed, ec)) return installed;
    }
    return WAFERPROV_CARD_CALIBRATION;
}

Result<CardCalibration> load_card_calibration(const std::filesystem::path& file) {
    toml::table root;
    try {
        root = toml::parse_file(file.string());
    } catch (const toml::parse_error& e) {
        return make_error(
            ErrorCode::kInvalidArgument,
            file.string() + ": not a calibration file: " + std::string(e.description()));
    }
    CardCalibration c;
    auto num = [&](const char* key, double lo, double hi, double& out) -> Status {
        const std::string path = std::string("model.") + key;
        auto v = root.at_path(path).value<double>();
        if (!v)
            return make_error(ErrorCode::kInvalidArgument,
                              file.string() + ": missing number '" + path + "'");
        if (!std::isfinite(*v) || *v < lo || *v > hi)
            return make_error(ErrorCode::kInvalidArgument,
                              file.string() + ": '" + path + "' out of range [" +
                                  std::to_string(lo) + ", " + std::to_string(hi) + "]");
        out = *v;
        return ok_status();
    };
    WP_RETURN_IF_ERROR(num("keygen_cycles", 1, 1e7, c.keygen_cycles));
    WP_RETURN_IF_ERROR(num("sym_cycles", 1, 1e7, c.sym_cycles));
    WP_RETURN_IF_ERROR(num("kik_first_extra_cycles", -1e4, 1e6, c.kik_first_extra_cycles));
    WP_RETURN_IF_ERROR(num("reseed_extra_cycles", -1e4, 1e6, c.reseed_extra_cycles));
    WP_RETURN_IF_ERROR(num("fixed_cycles", -1e4, 1e6, c.fixed_cycles));
    WP_RETURN_IF_ERROR(num("reg_write_cycles", 0, 1e4, c.reg_write_cycles));
    double beats = 0;
    WP_RETURN_IF_ERROR(num("record_beats_128", 1, 64, beats));
    c.record_beats_128 = static_cast<unsigned>(beats);
    return c;
}

double PcieLink::bytes_per_second() const {
    // Raw rate per lane in GT/s and the line code: Gen1/2 8b/10b, Gen3+ 128b/130b
    // (PCI-SIG base specifications; Gen5 32 GT/s).
    static constexpr double kGts[] = {2.5, 5.0, 8.0, 16.0, 32.0};
    const double gts = kGts[std::clamp(generation, 1, 5) - 1];
    const double code = generation <= 2 ? 8.0 / 10.0 : 128.0 / 130.0;
    return gts * 1e9 * code / 8.0 * lanes * efficiency;
}

double PcieLink::transfer_seconds(double bytes) const {
    return dma_setup_us * 1e-6 + bytes / bytes_per_second();
}

Status PcieLink::validate() const {
    if (generation < 1 || generation > 5)
        return make_error(ErrorCode::kInvalidArgument, "pcie generation must be 1..5");
    if (lanes != 1 && lanes != 2 && lanes != 4 && lanes != 8 && lanes != 16)
        return make_error(ErrorCode::kInvalidArgument, "pcie lanes must be 1, 2, 4, 8 or 16");
    if (!(efficiency > 0.0 && efficiency <= 1.0))
        return make_error(ErrorCode::kInvalidArgument, "pcie efficiency must be in (0, 1]");
    if (!(dma_setup_us >= 0.0 && dma_setup_us < 1e6))
        return make_error(ErrorCode::kInvalidArgument, "pcie dma_setup_us must be >= 0");
    return ok_status();
}

}  // namespace waferprov::sim
