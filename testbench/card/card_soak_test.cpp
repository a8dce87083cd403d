// The card's figures run and its N = 8 bench (label soak): cycles per die over 512 dies at
// N = 1, 2, 4 (128-bit) and N = 8 (512-bit), every record byte-identical to the software
// engine. The figures are printed ("[figure]" lines, recorded in docs/card.md), never asserted
// as timings. WAFERPROV_CARD_DIES overrides the die count.
#include <gtest/gtest.h>

#include "Vwp_card_vl_n1_w128.h"
#include "Vwp_card_vl_n2_w128.h"
#include "Vwp_card_vl_n4_w128.h"
#include "Vwp_card_vl_n8_w512.h"
#include "card_bench.hpp"

using namespace cardbench;
namespace ref = waferprov::reference;

namespace {

constexpr uint64_t kKeygenCycles = 9293;  // p256_keygen, docs/rtl-p256.md

std::size_t die_count() {
    if (const char* e = std::getenv("WAFERPROV_CARD_DIES"); e != nullptr && *e != '\0')
        return static_cast<std::size_t>(std::strtoull(e, nullptr, 10));
    return 512;
}

// All dies as one request packet, no gaps, no back-pressure: the card's own throughput, from
// the first request beat accepted to the last record beat out.
template <class Model>
void figure(const char* name, unsigned n_engines, double gaps, double stalls) {
    std::string vcd;
    const bool trace = detail::trace_requested(::testing::internal::GetArgvs(), vcd);
    Card<Model> card(trace, vcd);
    Inputs in(n_engines);
    const Bytes kik = in.bytes(32), wrapped = ref::kw_wrap(test_dk(), kik);
    const Bytes entropy = in.bytes(48), pers = in.bytes(16);
    SoftwareRef sw;
    ASSERT_TRUE(sw.engine.load_kik(wrapped).ok());
    ASSERT_TRUE(sw.engine.instantiate(entropy, pers, 1u << 20).ok());
    card.load_kik(wrapped);
    card.instantiate(entropy, pers, 1u << 20);
    card.set_request_gaps(gaps);
    card.set_record_stalls(stalls);
    const std::size_t n = die_count();
    auto uids = in.uids(n);
    card.push_uids(uids, n);
    card.wait_records(1, 4 * kKeygenCycles);
    card.wait_records(n, n * (kKeygenCycles + 4000));
    const uint64_t cycles = card.records().back().cycle - card.accepted_cycles().front();
    expect_records(card.records(), 0, sw.run(uids), kik);
    const double per_die = static_cast<double>(cycles) / static_cast<double>(n);
    const double ideal = static_cast<double>(kKeygenCycles) / n_engines;
    std::cout << "[figure] " << name << ": " << n << " dies in " << cycles
              << " cycles = " << per_die << " cycles/die; keygen/N = " << ideal << "; ratio "
              << per_die / ideal << " (target <= 1.03)\n";
}

}  // namespace

TEST(CardFigures, N1W128) { figure<Vwp_card_vl_n1_w128>("N=1 128-bit", 1, 0.0, 0.0); }
TEST(CardFigures, N2W128) { figure<Vwp_card_vl_n2_w128>("N=2 128-bit", 2, 0.0, 0.0); }
TEST(CardFigures, N4W128) { figure<Vwp_card_vl_n4_w128>("N=4 128-bit", 4, 0.0, 0.0); }
TEST(CardFigures, N8W512) { figure<Vwp_card_vl_n8_w512>("N=8 512-bit", 8, 0.0, 0.0); }
TEST(CardSoak, N8W512WithGapsAndBackPressure) {
    figure<Vwp_card_vl_n8_w512>("N=8 512-bit, gaps 0.5, stalls 0.5", 8, 0.5, 0.5);
}
