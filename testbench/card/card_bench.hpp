// Shared pieces of the card benches: a driver-level wrapper over CardHarness (KIK, DRBG,
// status), the software engine as the byte-exact reference, and deterministic inputs.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "waferprov/card/card_regs.hpp"
#include "waferprov/reference.hpp"
#include "waferprov/sim/card_harness.hpp"
#include "waferprov/software/software_engine.hpp"

namespace cardbench {

using namespace waferprov::sim;

namespace regs = waferprov::card::regs;
using waferprov::Bytes;
using waferprov::wpid1::Uid;

// The development test device key (docs/identity-spec.md §1), the one the software engine
// and the job tooling use in development builds: the card's key port carries it in simulation.
inline Bytes test_dk() {
    auto k = waferprov::software::test_device_key();
    if (!k.ok()) throw std::runtime_error("no test device key (WAFERPROV_DEVELOPMENT_BUILD off)");
    return Bytes(k->bytes.begin(), k->bytes.end());
}

// Deterministic random inputs; WAFERPROV_CARD_SEED picks another seed.
class Inputs {
public:
    explicit Inputs(uint64_t salt = 0) {
        uint64_t seed = 0x43415244ULL;  // "CARD"
        if (const char* e = std::getenv("WAFERPROV_CARD_SEED"); e != nullptr && *e != '\0')
            seed = std::strtoull(e, nullptr, 0);
        eng_.seed(seed ^ salt);
    }
    Bytes bytes(std::size_t n) {
        Bytes b(n);
        for (auto& x : b) x = static_cast<uint8_t>(eng_());
        return b;
    }
    std::vector<Uid> uids(std::size_t n) {
        std::vector<Uid> out(n);
        for (auto& u : out)
            for (auto& x : u) x = static_cast<uint8_t>(eng_());
        return out;
    }

private:
    std::mt19937_64 eng_;
};

inline Record serialize(const waferprov::wpid1::IdentityRecord& r, uint64_t seq_offset = 0) {
    auto copy = r;
    copy.sequence += seq_offset;
    return copy.serialize();
}

inline uint64_t record_seq(const Record& r) {
    uint64_t s = 0;
    for (int i = 0; i < 8; ++i) s = (s << 8) | r[static_cast<std::size_t>(i)];
    return s;
}

// The card driven as a driver would, over AXI4-Lite and the two streams.
template <class Model>
class Card : public CardHarness<Model> {
public:
    using H = CardHarness<Model>;
    static constexpr uint64_t kWait = 200000;

    explicit Card(bool trace = false, const std::string& vcd = "card.vcd")
        : H(test_dk(), trace, vcd) {
        H::reset();
    }

    uint32_t status() { return H::read32(regs::kStatus); }
    uint32_t err() { return H::read32(regs::kErr); }
    uint64_t err_seq() {
        return H::read32(regs::kErrSeqLo) | (uint64_t{H::read32(regs::kErrSeqHi)} << 32);
    }
    uint64_t seq_next() {
        return H::read32(regs::kSeqNextLo) | (uint64_t{H::read32(regs::kSeqNextHi)} << 32);
    }
    void ctrl(const regs::Field& f) { H::write32(regs::kCtrl, f.put(1)); }

    // Waits until no LOAD_KIK / INSTANTIATE / RESEED is pending or running.
    void wait_cmd() {
        H::run_until([&] { return regs::kStatusCmdBusy.get(status()) == 0; }, kWait);
    }
    void load_kik(const Bytes& wrapped) {
        H::write_bytes(regs::kKikWrapped, wrapped);
        ctrl(regs::kCtrlLoadKik);
        wait_cmd();
    }
    void instantiate(const Bytes& entropy, const Bytes& pers, uint64_t interval,
                     uint64_t seq_start = 0) {
        H::write_bytes(regs::kEntropy, entropy);
        H::write_bytes(regs::kPers, pers);
        H::write32(regs::kPersLen, static_cast<uint32_t>(pers.size()));
        H::write32(regs::kReseedIntervalLo, static_cast<uint32_t>(interval));
        H::write32(regs::kReseedIntervalHi, static_cast<uint32_t>(interval >> 32));
        H::write32(regs::kSeqStartLo, static_cast<uint32_t>(seq_start));
        H::write32(regs::kSeqStartHi, static_cast<uint32_t>(seq_start >> 32));
        ctrl(regs::kCtrlInstantiate);
        wait_cmd();
    }
    // RESEED is queued behind the dies already started; the card holds later requests until it
    // is done, so the caller need not wait (but must before writing ENTROPY again).
    void reseed(const Bytes& entropy) {
        H::write_bytes(regs::kEntropy, entropy);
        ctrl(regs::kCtrlReseed);
    }
    // Steps until `n` records are out (in total), or throws.
    void wait_records(std::size_t n, uint64_t timeout) {
        H::run_until([&] { return H::records().size() >= n; }, timeout);
    }
    void wait_idle(uint64_t timeout) {
        H::run_until([&] { return !H::requests_pending() && regs::kStatusBusy.get(status()) == 0; },
                     timeout);
    }
};

// The software engine (drivers/software) with the same device key: the byte-exact reference.
struct SoftwareRef {
    waferprov::software::SoftwareEngine engine;

    SoftwareRef() : engine(make_dk()) {}
    static waferprov::software::DeviceKey make_dk() {
        auto k = waferprov::software::test_device_key();
        if (!k.ok()) throw std::runtime_error("no test device key");
        return *k;
    }
    // The records for `uids` as one batch; fails the test on any engine error.
    std::vector<Record> run(const std::vector<Uid>& uids, uint64_t seq_offset = 0) {
        std::vector<Record> out;
        auto t = engine.submit(uids);
        EXPECT_TRUE(t.ok());
        if (!t.ok()) return out;
        auto recs = engine.collect(*t);
        EXPECT_TRUE(recs.ok());
        if (!recs.ok()) return out;
        for (const auto& r : *recs) out.push_back(serialize(r, seq_offset));
        return out;
    }
};

// Compares the records taken off the card with the expected ones, byte for byte, and checks
// every record as the die would (reference KDF, unwrap, d*G) with OpenSSL.
inline void expect_records(const std::deque<RecordOut>& got, std::size_t from,
                           const std::vector<Record>& want, const Bytes& kik,
                           bool die_check = true) {
    ASSERT_GE(got.size(), from + want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        const Record& g = got[from + i].bytes;
        ASSERT_TRUE(g == want[i]) << "record " << i << " (seq " << record_seq(want[i])
                                  << ") differs from the software engine's";
        if (die_check) {
            auto parsed = waferprov::wpid1::IdentityRecord::parse(g);
            ASSERT_TRUE(parsed.ok());
            EXPECT_EQ(waferprov::reference::die_check(kik, *parsed), "") << "record " << i;
        }
    }
}

}  // namespace cardbench
