// The card's TLM model (sim/card) against the Verilated card (sim/card_rtl) on the same
// batches, N = 1, 2, 4 at 128 bits: every batch's cycles, from its UIDs handed to the request
// stream to its last record out, within 2 % (issue 16), the transients of small batches, the
// first die after LOAD_KIK and the reseed between batches included. One TLM front end (Driver)
// drives both: the model's sockets, and the Verilated card through the TLM-to-AXI bridge
// (CardRtlBridge: the same three sockets, carried out on the card's AXI4-Lite port and
// streams). The records that come back through the bridge are checked against the software
// engine byte for byte and as the die would check them, so a broken card cannot pass by being
// fast.
//
// The batches here are not the ones card_calibrate measures (single dies and one 4N+4 batch).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

// The Verilated models first: verilated.h must not see SystemC (they are not --sc models).
#include "Vwp_card_vl_n1_w128.h"
#include "Vwp_card_vl_n2_w128.h"
#include "Vwp_card_vl_n4_w128.h"
#include "card_bench.hpp"
#include "waferprov/sim/card_rtl_bridge.hpp"

// Then SystemC.
#include <tlm_utils/simple_initiator_socket.h>

#include "waferprov/sim/card_tlm.hpp"
#include "waferprov/sim/isolated.hpp"

using namespace cardbench;
namespace ref = waferprov::reference;
namespace wsim = waferprov::sim;

namespace {

std::vector<std::size_t> batches_for(unsigned n) { return {1, 2, n + 1, 4 * n + 3, 3}; }

constexpr uint64_t kReseedInterval = 1u << 20;

// What the driver writes, the same for the model and the card: the wrapped KIK, the DRBG's
// inputs, and per batch its reseed entropy (none before the first) and its UIDs.
struct Script {
    Bytes kik, wrapped, entropy, pers;
    std::vector<Bytes> reseeds;
    std::vector<std::vector<Uid>> batches;
};

Script script_for(unsigned n) {
    Inputs in(0x7E57 + n);
    Script s;
    s.kik = in.bytes(32);
    s.wrapped = ref::kw_wrap(test_dk(), s.kik);
    s.entropy = in.bytes(48);
    s.pers = in.bytes(16);
    for (std::size_t size : batches_for(n)) {
        s.reseeds.push_back(s.batches.empty() ? Bytes{} : in.bytes(48));
        s.batches.push_back(in.uids(size));
    }
    return s;
}

struct BatchCycles {
    std::vector<double> cycles;  // per batch
    double total = 0;            // first batch handed over to the last record out
};

// The TLM front end: what the card driver does (docs/drivers.md), through three initiator
// sockets: LOAD_KIK and INSTANTIATE, each polled until done, then per batch a RESEED after the
// first, the UIDs as one H2C write and their records as one C2H read.
struct Driver : sc_core::sc_module {
    tlm_utils::simple_initiator_socket<Driver> regs{"regs"}, h2c{"h2c"}, c2h{"c2h"};
    Script script;
    sc_core::sc_time period;
    BatchCycles out;
    std::vector<Record> records;
    std::string failed;  // what failed, "" if nothing

    SC_HAS_PROCESS(Driver);
    Driver(const sc_core::sc_module_name& nm, Script s, sc_core::sc_time p)
        : sc_module(nm), script(std::move(s)), period(p) {
        SC_THREAD(run);
    }
    uint32_t access(tlm::tlm_command cmd, uint32_t addr, uint32_t v, sc_core::sc_time& d) {
        tlm::tlm_generic_payload gp;
        gp.set_command(cmd);
        gp.set_address(addr);
        gp.set_data_ptr(reinterpret_cast<unsigned char*>(&v));
        gp.set_data_length(4);
        regs->b_transport(gp, d);
        if (!gp.is_response_ok() && failed.empty())
            failed = "register access at " + std::to_string(addr);
        return v;
    }
    void write(uint32_t addr, uint32_t v, sc_core::sc_time& d) {
        access(tlm::TLM_WRITE_COMMAND, addr, v, d);
    }
    // A byte string into consecutive words, byte 4k in bits 31:24 of word k (the map's rule).
    void write_bytes(uint32_t addr, const Bytes& b, sc_core::sc_time& d) {
        for (std::size_t k = 0; k * 4 < b.size(); ++k) {
            uint32_t w = 0;
            for (std::size_t j = 0; j < 4; ++j) {
                const std::size_t i = k * 4 + j;
                w = (w << 8) | (i < b.size() ? b[i] : 0);
            }
            write(addr + static_cast<uint32_t>(4 * k), w, d);
        }
    }
    void command(const regs::Field& f, sc_core::sc_time& d) {
        write(regs::kCtrl, f.put(1), d);
        for (int i = 0; i < 100000; ++i)
            if (regs::kStatusCmdBusy.get(access(tlm::TLM_READ_COMMAND, regs::kStatus, 0, d)) == 0)
                return;
        failed = "a command never finished";
    }
    void run() {
        sc_core::sc_time d = sc_core::SC_ZERO_TIME;
        write_bytes(regs::kKikWrapped, script.wrapped, d);
        command(regs::kCtrlLoadKik, d);
        write_bytes(regs::kEntropy, script.entropy, d);
        write_bytes(regs::kPers, script.pers, d);
        write(regs::kPersLen, static_cast<uint32_t>(script.pers.size()), d);
        write(regs::kReseedIntervalLo, static_cast<uint32_t>(kReseedInterval), d);
        write(regs::kReseedIntervalHi, 0, d);
        write(regs::kSeqStartLo, 0, d);
        write(regs::kSeqStartHi, 0, d);
        command(regs::kCtrlInstantiate, d);
        wait(d);
        d = sc_core::SC_ZERO_TIME;
        double first = 0;
        for (std::size_t b = 0; b < script.batches.size(); ++b) {
            if (b > 0) {
                write_bytes(regs::kEntropy, script.reseeds[b], d);
                write(regs::kCtrl, regs::kCtrlReseed.put(1), d);  // queued: no need to wait
            }
            const double c0 = (sc_core::sc_time_stamp() + d) / period;
            if (b == 0) first = c0;
            const auto& uids = script.batches[b];
            std::vector<uint8_t> req(16 * uids.size()), recs(128 * uids.size());
            for (std::size_t i = 0; i < uids.size(); ++i)
                std::copy(uids[i].begin(), uids[i].end(), req.begin() + static_cast<long>(16 * i));
            tlm::tlm_generic_payload w, r;
            w.set_command(tlm::TLM_WRITE_COMMAND);
            w.set_data_ptr(req.data());
            w.set_data_length(static_cast<unsigned>(req.size()));
            h2c->b_transport(w, d);
            r.set_command(tlm::TLM_READ_COMMAND);
            r.set_data_ptr(recs.data());
            r.set_data_length(static_cast<unsigned>(recs.size()));
            c2h->b_transport(r, d);
            if ((!w.is_response_ok() || !r.is_response_ok()) && failed.empty())
                failed = "a stream transfer of batch " + std::to_string(b);
            wait(d);  // the initiator syncs; the targets only annotate
            d = sc_core::SC_ZERO_TIME;
            const double end = sc_core::sc_time_stamp() / period;
            out.cycles.push_back(end - c0);
            out.total = end - first;
            for (std::size_t i = 0; i < uids.size(); ++i) {
                Record rec;
                std::copy_n(recs.begin() + static_cast<long>(128 * i), 128, rec.begin());
                records.push_back(rec);
            }
        }
    }
};

// "total c0 c1 ...\n" then one line of hex per record: what a child process hands back.
std::string encode(const Driver& drv) {
    std::ostringstream o;
    o.precision(17);
    o << drv.out.total;
    for (double c : drv.out.cycles) o << ' ' << c;
    o << '\n';
    for (const auto& r : drv.records) o << waferprov::to_hex(r) << '\n';
    return o.str();
}

struct Run {
    BatchCycles cycles;
    std::vector<Record> records;
};

Run decode(const std::string& text) {
    Run out;
    std::istringstream in(text);
    std::string line;
    std::getline(in, line);
    std::istringstream head(line);
    head >> out.cycles.total;
    for (double c; head >> c;) out.cycles.cycles.push_back(c);
    while (std::getline(in, line)) {
        auto b = waferprov::from_hex(line, "record");
        Record r{};
        if (b.ok() && b->size() == r.size()) std::copy(b->begin(), b->end(), r.begin());
        out.records.push_back(r);
    }
    return out;
}

// One front end, one target, one SystemC simulation in a child process (isolated.hpp).
template <class Target>
waferprov::Result<std::string> drive(Target& target, const Script& script) {
    Driver drv("driver", script, target.clock_period());
    drv.regs.bind(target.regs);
    drv.h2c.bind(target.h2c);
    drv.c2h.bind(target.c2h);
    sc_core::sc_start();
    if (!drv.failed.empty())
        return waferprov::make_error(waferprov::ErrorCode::kInternal, "TLM: " + drv.failed);
    return encode(drv);
}

Run run_child(const std::function<waferprov::Result<std::string>()>& body) {
    auto r = wsim::run_isolated(body);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
    return r.ok() ? decode(*r) : Run{};
}

Run run_tlm(unsigned n, const Script& script) {
    return run_child([&]() -> waferprov::Result<std::string> {
        WP_ASSIGN_OR_RETURN(auto cal,
                            wsim::load_card_calibration(wsim::default_card_calibration_path()));
        wsim::CardTlmConfig cfg;
        cfg.engines = n;
        cfg.model_link = false;  // the bridge reaches the card's ports with no link either
        wsim::CardTlm card("card", cal, cfg);
        return drive(card, script);
    });
}

template <class Model>
Run run_rtl(const Script& script) {
    return run_child([&]() -> waferprov::Result<std::string> {
        const wsim::CardTlmConfig cfg;  // the model's clock, so cycles convert alike
        wsim::CardRtlBridge<Model> card("card", test_dk(), cfg.clock_mhz);
        auto r = drive(card, script);
        if (!r.ok() && !card.last_error().empty())
            return waferprov::make_error(waferprov::ErrorCode::kInternal,
                                         r.error().message + " (" + card.last_error() + ")");
        return r;
    });
}

// The records the software engine makes from the same script.
std::vector<Record> software_records(const Script& script) {
    SoftwareRef sw;
    EXPECT_TRUE(sw.engine.load_kik(script.wrapped).ok());
    EXPECT_TRUE(sw.engine.instantiate(script.entropy, script.pers, kReseedInterval).ok());
    std::vector<Record> want;
    for (std::size_t b = 0; b < script.batches.size(); ++b) {
        if (b > 0) {
            EXPECT_TRUE(sw.engine.reseed(script.reseeds[b]).ok());
        }
        auto w = sw.run(script.batches[b]);
        want.insert(want.end(), w.begin(), w.end());
    }
    return want;
}

template <class Model>
void agree(unsigned n) {
    // Each simulation in its own child: SystemC runs once per process (isolated.hpp).
    const Script script = script_for(n);
    const Run tlm = run_tlm(n, script);
    const Run rtl = run_rtl<Model>(script);
    std::deque<RecordOut> got;
    for (const auto& r : rtl.records) got.push_back(RecordOut{r, false, 0});
    expect_records(got, 0, software_records(script), script.kik);
    const auto& t = tlm.cycles;
    const auto& v = rtl.cycles;
    ASSERT_EQ(t.cycles.size(), v.cycles.size());
    const auto sizes = batches_for(n);
    for (std::size_t b = 0; b < v.cycles.size(); ++b) {
        const double err = (t.cycles[b] - v.cycles[b]) / v.cycles[b];
        std::cout << "[figure] N=" << n << " batch " << b << " (" << sizes[b] << " dies): RTL "
                  << v.cycles[b] << " cycles, TLM " << t.cycles[b] << " cycles, error "
                  << 100.0 * err << " %\n";
        EXPECT_LE(std::abs(err), 0.02) << "batch " << b;
    }
    const double err = (t.total - v.total) / v.total;
    std::cout << "[figure] N=" << n << " total: RTL " << v.total << " cycles, TLM " << t.total
              << " cycles, error " << 100.0 * err << " %\n";
    EXPECT_LE(std::abs(err), 0.02);
}

}  // namespace

TEST(CardTlmAgreesWithRtl, N1) { agree<Vwp_card_vl_n1_w128>(1); }
TEST(CardTlmAgreesWithRtl, N2) { agree<Vwp_card_vl_n2_w128>(2); }
TEST(CardTlmAgreesWithRtl, N4) { agree<Vwp_card_vl_n4_w128>(4); }

// The register space answers as the map says, and a stream before LOAD_KIK is refused.
TEST(CardTlm, RegistersAndRefusals) {
    auto r = wsim::run_isolated([]() -> waferprov::Result<std::string> {
        WP_ASSIGN_OR_RETURN(auto cal,
                            wsim::load_card_calibration(wsim::default_card_calibration_path()));
        wsim::CardTlmConfig cfg;
        cfg.engines = 8;
        cfg.stream_bits = 512;
        wsim::CardTlm card("card", cal, cfg);
        sc_core::sc_time d = sc_core::SC_ZERO_TIME;
        auto rd = [&](uint32_t a) {
            uint32_t v = 0xffffffff;
            tlm::tlm_generic_payload gp;
            gp.set_command(tlm::TLM_READ_COMMAND);
            gp.set_address(a);
            gp.set_data_ptr(reinterpret_cast<unsigned char*>(&v));
            gp.set_data_length(4);
            card.regs.get_base_interface().b_transport(gp, d);
            return v;
        };
        std::vector<uint8_t> uid(16);
        tlm::tlm_generic_payload w;
        w.set_command(tlm::TLM_WRITE_COMMAND);
        w.set_data_ptr(uid.data());
        w.set_data_length(16);
        card.h2c.get_base_interface().b_transport(w, d);
        std::ostringstream o;
        o << std::hex << rd(regs::kId) << ' ' << std::dec << regs::kCapsEngines.get(rd(regs::kCaps))
          << ' ' << regs::kCapsStreamBytesLog2.get(rd(regs::kCaps)) << ' '
          << (w.get_response_status() == tlm::TLM_COMMAND_ERROR_RESPONSE);
        return o.str();
    });
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(*r, "57504331 8 6 1");
}

// The calibration file is checked key by key.
TEST(CardCalibration, MissingKeyIsNamed) {
    const auto dir = std::filesystem::temp_directory_path() / "wp_cal_test";
    std::filesystem::create_directories(dir);
    const auto f = dir / "bad.toml";
    {
        std::ofstream o(f);
        o << "[model]\nkeygen_cycles = 9297\n";
    }
    auto c = wsim::load_card_calibration(f);
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.error().message.find("model.sym_cycles"), std::string::npos) << c.error().message;
    std::filesystem::remove_all(dir);
}
