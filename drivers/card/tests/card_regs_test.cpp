// The generated register header says what rtl/card/card_regs.toml says: every register's offset,
// width in words, access and reset, and every field's position, read from the TOML with toml++
// (not with the generator), and the header's own invariants.
#include <gtest/gtest.h>

#include <toml++/toml.h>
#include <map>
#include <string>

#include "waferprov/card/card_regs.hpp"

namespace waferprov::card::regs {
namespace {

const char* access_name(Access a) {
    switch (a) {
        case Access::kRo: return "ro";
        case Access::kRw: return "rw";
        case Access::kWo: return "wo";
        case Access::kW1s: return "w1s";
        case Access::kRw1c: return "rw1c";
    }
    return "?";
}

TEST(CardRegs, EveryRegisterMatchesTheTomlSource) {
    const toml::table map = toml::parse_file(WAFERPROV_CARD_REGS_TOML);
    EXPECT_EQ(map["card"]["id"].value<int64_t>(), int64_t{kCardId});
    EXPECT_EQ(map["card"]["version_major"].value<int64_t>(), int64_t{kMapVersionMajor});
    const auto* regs = map["reg"].as_array();
    ASSERT_NE(regs, nullptr);
    ASSERT_EQ(regs->size(), kRegisters.size());
    std::map<std::string, const Register*> by_name;
    for (const auto& r : kRegisters) by_name[std::string(r.name)] = &r;
    for (const auto& node : *regs) {
        const auto& t = *node.as_table();
        const std::string name = t["name"].value_or(std::string{});
        SCOPED_TRACE(name);
        ASSERT_TRUE(by_name.count(name));
        const Register& r = *by_name[name];
        EXPECT_EQ(t["offset"].value_or(int64_t{-1}), int64_t{r.offset});
        EXPECT_EQ(t["count"].value_or(int64_t{1}), int64_t{r.words});
        EXPECT_EQ(t["access"].value_or(std::string{}), access_name(r.access));
        EXPECT_EQ(t["secret"].value_or(false), r.secret);
        EXPECT_EQ(t["reset"].value_or(int64_t{0}), int64_t{r.reset});
    }
}

TEST(CardRegs, FieldsSitWhereTheTomlPutsThem) {
    // A sample of fields the drivers depend on, against the TOML's "bits" strings.
    const toml::table map = toml::parse_file(WAFERPROV_CARD_REGS_TOML);
    std::map<std::string, std::string> bits;
    for (const auto& node : *map["reg"].as_array()) {
        const auto& t = *node.as_table();
        if (const auto* fields = t["fields"].as_array())
            for (const auto& f : *fields)
                bits[t["name"].value_or(std::string{}) + "." +
                     f.as_table()->get("name")->value_or(std::string{})] =
                    f.as_table()->get("bits")->value_or(std::string{});
    }
    auto spec = [](const Field& f) {
        return f.width == 1 ? std::to_string(f.lsb)
                            : std::to_string(f.lsb + f.width - 1) + ":" + std::to_string(f.lsb);
    };
    EXPECT_EQ(bits.at("CAPS.ENGINES"), spec(kCapsEngines));
    EXPECT_EQ(bits.at("CAPS.STREAM_BYTES_LOG2"), spec(kCapsStreamBytesLog2));
    EXPECT_EQ(bits.at("VERSION.MAJOR"), spec(kVersionMajor));
    EXPECT_EQ(bits.at("CTRL.ZEROIZE"), spec(kCtrlZeroize));
    EXPECT_EQ(bits.at("STATUS.KIK_VALID"), spec(kStatusKikValid));
    EXPECT_EQ(bits.at("ERR.BAD_TKEEP"), spec(kErrBadTkeep));
    EXPECT_EQ(bits.at("ST_OP.OP"), spec(kStOpOp));
}

TEST(CardRegs, RegistersAreAlignedInsideTheWindowAndDoNotOverlap) {
    for (size_t i = 0; i < kRegisters.size(); ++i) {
        const auto& r = kRegisters[i];
        SCOPED_TRACE(std::string(r.name));
        EXPECT_EQ(r.offset % 4, 0u);
        EXPECT_LE(r.offset + 4 * r.words, kWindowBytes);
        if (r.secret) {
            EXPECT_EQ(r.access, Access::kWo) << "a secret must never read back";
        }
        if (i > 0) {
            const auto& p = kRegisters[i - 1];
            EXPECT_GE(r.offset, p.offset + 4 * p.words) << "overlaps " << p.name;
        }
    }
}

TEST(CardRegs, FieldHelpersPackAndUnpack) {
    const uint32_t caps = kCapsEngines.put(8) | kCapsStreamBytesLog2.put(5) | kCapsSelftest.put(1);
    EXPECT_EQ(kCapsEngines.get(caps), 8u);
    EXPECT_EQ(kCapsStreamBytesLog2.get(caps), 5u);
    EXPECT_EQ(kCapsSelftest.get(caps), 1u);
    EXPECT_EQ(kCapsRecordFormat.get(caps), 0u);
    EXPECT_EQ(kCapsEngines.put(0x3f), 0x1fu) << "a value wider than its field is cut to it";
}

}  // namespace
}  // namespace waferprov::card::regs
