// The card's calibration step: measures on the Verilated card (N = 1, 2, 4 at 128 bits) the
// cycle costs the TLM model of the card (sim/card) is built from, and writes them as TOML.
// Run by the build (sim/card/CMakeLists.txt) before anything reads the file; nothing in the
// model's latencies is typed in by hand.
//
//   card_calibrate OUT.toml
//
// Every cycle count is taken from the harness's clock; the reference point of a batch is the
// cycle at which its UIDs are handed to the request stream (the driver's view), the end is the
// cycle in which the last beat of its last record leaves. Records are checked against the
// software engine byte for byte, so a calibration of a broken card fails instead of lying.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <numeric>

#include "Vwp_card_vl_n1_w128.h"
#include "Vwp_card_vl_n2_w128.h"
#include "Vwp_card_vl_n4_w128.h"
#include "card_bench.hpp"

using namespace cardbench;
namespace ref = waferprov::reference;

namespace {

struct Measured {
    unsigned engines = 0;
    unsigned record_beats = 0;
    uint64_t latency_first = 0;    // one die, the first after LOAD_KIK
    uint64_t latency = 0;          // one die, warm
    uint64_t latency_reseed = 0;   // one die right after a RESEED
    uint64_t reg_write = 0;        // one AXI4-Lite write
    double record_gap_fill = 0;    // mean gap between the first N records of a batch (N >= 2)
    double record_gap_steady = 0;  // mean gap between records after the first N
    double cycles_per_die = 0;     // batch of `batch` dies, push to last record
    std::size_t batch = 0;
};

template <class Model>
Measured measure(unsigned n_engines) {
    Measured m;
    m.engines = n_engines;
    Card<Model> card;
    m.record_beats = static_cast<unsigned>(128 / Card<Model>::beat_bytes());
    Inputs in(0xCA11B ^ n_engines);
    const Bytes kik = in.bytes(32), wrapped = ref::kw_wrap(test_dk(), kik);
    const Bytes entropy = in.bytes(48), pers = in.bytes(16);
    SoftwareRef sw;
    if (!sw.engine.load_kik(wrapped).ok() || !sw.engine.instantiate(entropy, pers, 1u << 20).ok())
        throw std::runtime_error("software engine setup failed");
    card.load_kik(wrapped);
    card.instantiate(entropy, pers, 1u << 20);
    std::vector<Record> want;
    std::vector<Uid> all;

    const uint64_t timeout = 64 * 20000;
    auto one = [&](std::size_t n) {
        auto uids = in.uids(n);
        const std::size_t before = card.records().size();
        const uint64_t c0 = card.cycles();
        card.push_uids(uids, n);
        card.wait_records(before + n, timeout);
        auto w = sw.run(uids);
        want.insert(want.end(), w.begin(), w.end());
        return c0;
    };

    uint64_t c0 = one(1);
    m.latency_first = card.records().back().cycle - c0;
    c0 = one(1);
    m.latency = card.records().back().cycle - c0;

    {
        const uint64_t w0 = card.cycles();
        card.write32(regs::kScratch, 0x5a5a5a5a);
        m.reg_write = card.cycles() - w0;
    }
    {
        const Bytes e = in.bytes(48);
        card.reseed(e);
        if (!sw.engine.reseed(e).ok()) throw std::runtime_error("software reseed failed");
        c0 = one(1);
        m.latency_reseed = card.records().back().cycle - c0;
    }

    m.batch = 4 * n_engines + 4;
    const std::size_t first = card.records().size();
    c0 = one(m.batch);
    const auto& r = card.records();
    m.cycles_per_die = static_cast<double>(r.back().cycle - c0) / static_cast<double>(m.batch);
    std::vector<double> fill, steady;
    for (std::size_t i = first + 1; i < r.size(); ++i) {
        const double gap = static_cast<double>(r[i].cycle - r[i - 1].cycle);
        if (i - first < n_engines)
            fill.push_back(gap);
        else if (i - first >= 2 * n_engines)  // past the transient
            steady.push_back(gap * n_engines);
    }
    auto mean = [](const std::vector<double>& v) {
        return v.empty() ? 0.0
                         : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    };
    m.record_gap_fill = mean(fill);
    m.record_gap_steady = mean(steady);

    // A calibration of a card that produces wrong records is worthless: check every byte.
    if (r.size() != want.size()) throw std::runtime_error("record count differs");
    for (std::size_t i = 0; i < want.size(); ++i)
        if (r[i].bytes != want[i])
            throw std::runtime_error("record " + std::to_string(i) +
                                     " differs from the software engine's");
    if (card.err() != 0) throw std::runtime_error("card reported an error");
    return m;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: card_calibrate OUT.toml\n";
        return 2;
    }
    try {
        const Measured n1 = measure<Vwp_card_vl_n1_w128>(1);
        const Measured n2 = measure<Vwp_card_vl_n2_w128>(2);
        const Measured n4 = measure<Vwp_card_vl_n4_w128>(4);
        // The model's constants. keygen: the N = 1 record period (an engine's occupancy per
        // die, hand-off to hand-off). sym: sym_die's cycles per die, the record gap while the
        // engines fill (N = 2 and 4). fixed: what a single die's latency has beyond sym, keygen
        // and the record's beats (stream ingress, hand-offs), may be slightly negative.
        const double keygen = n1.record_gap_steady;
        const double sym = (n2.record_gap_fill + n4.record_gap_fill) / 2.0;
        const double fixed = static_cast<double>(n1.latency) - sym - keygen - n1.record_beats;
        const std::string tmp = std::string(argv[1]) + ".tmp";
        {
            std::ofstream o(tmp);
            o << "# Written by card_calibrate (testbench/card/card_calibrate.cpp) from the "
                 "Verilated card; do not edit.\n"
              << "# Cycles of the card's clock. Read by sim/card (card_calibration.hpp).\n\n"
              << "[model]\n"
              << "keygen_cycles = " << keygen << "\n"
              << "sym_cycles = " << sym << "\n"
              << "kik_first_extra_cycles = "
              << static_cast<double>(n1.latency_first) - static_cast<double>(n1.latency) << "\n"
              << "reseed_extra_cycles = "
              << static_cast<double>(n1.latency_reseed) - static_cast<double>(n1.latency) << "\n"
              << "fixed_cycles = " << fixed << "\n"
              << "reg_write_cycles = " << n1.reg_write << "\n"
              << "record_beats_128 = " << n1.record_beats << "\n";
            for (const Measured* m : {&n1, &n2, &n4}) {
                o << "\n[measured.n" << m->engines << "]\n"
                  << "engines = " << m->engines << "\n"
                  << "latency_first_cycles = " << m->latency_first << "\n"
                  << "latency_cycles = " << m->latency << "\n"
                  << "latency_after_reseed_cycles = " << m->latency_reseed << "\n"
                  << "record_gap_fill_cycles = " << m->record_gap_fill << "\n"
                  << "record_period_steady_cycles = " << m->record_gap_steady << "\n"
                  << "batch_dies = " << m->batch << "\n"
                  << "batch_cycles_per_die = " << m->cycles_per_die << "\n";
            }
            if (!o) throw std::runtime_error("cannot write " + tmp);
        }
        if (std::rename(tmp.c_str(), argv[1]) != 0)
            throw std::runtime_error(std::string("cannot rename to ") + argv[1]);
        std::cout << "card_calibrate: wrote " << argv[1] << "\n";
    } catch (const std::exception& e) {
        std::cerr << "card_calibrate: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
