// The xdma transport (drivers/xdma) against the emulated card (waferprov-cardsim on FUSE): the
// card programmed with raw register writes through <prefix>_user, a batch through _h2c_0 and
// _c2h_0 compared byte for byte with the software engine (drivers/software), every record
// checked as the die would with OpenSSL (drivers/reference); short transfers, stalls, the
// emulator's record faults, the interrupt, and bad paths.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "cardsim_fixture.hpp"
#include "waferprov/card/card_regs.hpp"
#include "waferprov/reference.hpp"
#include "waferprov/software/device_key.hpp"
#include "waferprov/software/software_engine.hpp"
#include "waferprov/testing/temp_dir.hpp"
#include "waferprov/xdma/xdma_transport.hpp"

namespace {

namespace regs = waferprov::card::regs;
using cardsim_test::CardSim;
using waferprov::Bytes;
using waferprov::ErrorCode;
using waferprov::wpid1::Uid;
using waferprov::xdma::XdmaTransport;
using Record = std::array<uint8_t, 128>;
using namespace std::chrono_literals;

#define SKIP_WITHOUT_FUSE()                                                \
    do {                                                                   \
        if (auto why = cardsim_test::fuse_missing()) GTEST_SKIP() << *why; \
    } while (0)

waferprov::software::DeviceKey dk() {
    auto k = waferprov::software::test_device_key();
    EXPECT_TRUE(k.ok());
    return *k;
}

// The card driven by hand through the transport, the register sequence of docs/card.md (the
// same as testbench/card/card_bench.hpp): no card driver involved.
class RawCard {
public:
    explicit RawCard(XdmaTransport& t) : t_(t) {}

    uint32_t rd(uint32_t off) {
        auto v = t_.read32(off);
        EXPECT_TRUE(v.ok()) << v.error().describe();
        return v.ok() ? *v : 0xdeadbeef;
    }
    void wr(uint32_t off, uint32_t v) {
        auto s = t_.write32(off, v);
        EXPECT_TRUE(s.ok()) << s.error().describe();
    }
    // Byte 4k in bits 31:24 of word k (the map's rule for byte strings).
    void write_bytes(uint32_t off, const Bytes& b) {
        for (std::size_t k = 0; k * 4 < b.size(); ++k) {
            uint32_t w = 0;
            for (std::size_t j = 0; j < 4; ++j) {
                const std::size_t i = k * 4 + j;
                w = (w << 8) | (i < b.size() ? b[i] : 0);
            }
            wr(off + static_cast<uint32_t>(4 * k), w);
        }
    }
    void wait_cmd() {
        for (int i = 0; i < 100000; ++i)
            if (regs::kStatusCmdBusy.get(rd(regs::kStatus)) == 0) return;
        ADD_FAILURE() << "STATUS.CMD_BUSY never cleared";
    }
    void start(const Bytes& wrapped_kik, const Bytes& entropy, const Bytes& pers,
               uint64_t interval) {
        write_bytes(regs::kKikWrapped, wrapped_kik);
        wr(regs::kCtrl, regs::kCtrlLoadKik.put(1));
        wait_cmd();
        ASSERT_EQ(regs::kStatusKikValid.get(rd(regs::kStatus)), 1u);
        write_bytes(regs::kEntropy, entropy);
        write_bytes(regs::kPers, pers);
        wr(regs::kPersLen, static_cast<uint32_t>(pers.size()));
        wr(regs::kReseedIntervalLo, static_cast<uint32_t>(interval));
        wr(regs::kReseedIntervalHi, static_cast<uint32_t>(interval >> 32));
        wr(regs::kSeqStartLo, 0);
        wr(regs::kSeqStartHi, 0);
        wr(regs::kCtrl, regs::kCtrlInstantiate.put(1));
        wait_cmd();
        ASSERT_EQ(regs::kStatusInstantiated.get(rd(regs::kStatus)), 1u);
        ASSERT_EQ(rd(regs::kErr), 0u);
    }

private:
    XdmaTransport& t_;
};

// Same KIK, entropy, personalization and UIDs on the card and on the software engine.
struct Bed {
    std::mt19937_64 rng{0x58444d41};  // "XDMA"
    Bytes kik, wrapped, entropy, pers;
    waferprov::software::SoftwareEngine sw{dk()};

    Bed() {
        kik = bytes(32);
        wrapped = waferprov::reference::kw_wrap(dk().bytes, kik);  // AES-KW(DK, KIK), OpenSSL
        entropy = bytes(48);
        pers = bytes(19);
        EXPECT_TRUE(sw.load_kik(wrapped).ok());
        EXPECT_TRUE(sw.instantiate(entropy, pers, 1000).ok());
    }
    Bytes bytes(std::size_t n) {
        Bytes b(n);
        for (auto& x : b) x = static_cast<uint8_t>(rng());
        return b;
    }
    std::vector<Uid> uids(std::size_t n) {
        std::vector<Uid> u(n);
        for (auto& x : u)
            for (auto& b : x) b = static_cast<uint8_t>(rng());
        return u;
    }
    std::vector<Record> software(const std::vector<Uid>& u) {
        std::vector<Record> out;
        auto t = sw.submit(u);
        EXPECT_TRUE(t.ok());
        auto recs = sw.collect(*t);
        EXPECT_TRUE(recs.ok());
        for (const auto& r : *recs) out.push_back(r.serialize());
        return out;
    }
};

Bytes request_bytes(const std::vector<Uid>& u) {
    Bytes b;
    for (const Uid& x : u) b.insert(b.end(), x.begin(), x.end());
    return b;
}

std::unique_ptr<XdmaTransport> open_transport(const CardSim& sim) {
    auto t = XdmaTransport::open(sim.prefix());
    EXPECT_TRUE(t.ok()) << t.error().describe();
    return t.ok() ? std::move(*t) : nullptr;
}

#define START_CARDSIM(var, ...) \
    SKIP_WITHOUT_FUSE();        \
    CardSim var(__VA_ARGS__);   \
    ASSERT_TRUE(var.ok()) << "cardsim did not mount:\n" << var.log()

TEST(XdmaTransport, ReadsIdVersionAndCapsThroughUser) {
    START_CARDSIM(sim, {"--engines", "2"});
    auto t = open_transport(sim);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->describe(), "xdma " + sim.prefix());
    RawCard card(*t);
    EXPECT_EQ(card.rd(regs::kId), regs::kCardId);
    EXPECT_EQ(regs::kVersionMajor.get(card.rd(regs::kVersion)), regs::kMapVersionMajor);
    const uint32_t caps = card.rd(regs::kCaps);
    EXPECT_EQ(regs::kCapsEngines.get(caps), 2u);
    EXPECT_EQ(regs::kCapsStreamBytesLog2.get(caps), 4u);  // 128-bit streams
    card.wr(regs::kScratch, 0xa5c3e1f7u);
    EXPECT_EQ(card.rd(regs::kScratch), 0xa5c3e1f7u);
    EXPECT_EQ(sim.stop(), 0) << sim.log();
    EXPECT_FALSE(sim.mounted());
}

TEST(XdmaTransport, BatchesAreByteIdenticalToTheSoftwareEngine) {
    START_CARDSIM(sim, {"--engines", "2"});
    auto t = open_transport(sim);
    ASSERT_TRUE(t);
    Bed bed;
    RawCard card(*t);
    ASSERT_NO_FATAL_FAILURE(card.start(bed.wrapped, bed.entropy, bed.pers, 1000));
    // Two batches: the first ends at its own tlast, the second continues the sequence.
    for (std::size_t m : {5u, 3u}) {
        const auto uids = bed.uids(m);
        const auto want = bed.software(uids);
        ASSERT_TRUE(t->write_requests(request_bytes(uids), 60s).ok());
        std::vector<uint8_t> got(128 * m);
        auto s = t->read_records(got, 120s);
        ASSERT_TRUE(s.ok()) << s.error().describe();
        for (std::size_t i = 0; i < m; ++i) {
            Record r{};
            std::copy_n(got.begin() + static_cast<long>(128 * i), 128, r.begin());
            EXPECT_TRUE(r == want[i]) << "record " << i << " of the batch of " << m
                                      << " differs from the software engine's";
            auto parsed = waferprov::wpid1::IdentityRecord::parse(r);
            ASSERT_TRUE(parsed.ok());
            EXPECT_EQ(waferprov::reference::die_check(bed.kik, *parsed), "") << "record " << i;
        }
    }
    EXPECT_EQ(card.rd(regs::kSeqNextLo), 8u);
    EXPECT_EQ(card.rd(regs::kErr), 0u);
}

TEST(XdmaTransport, InterruptArrivesOnEvents) {
    START_CARDSIM(sim, {"--engines", "1"});
    auto t = open_transport(sim);
    ASSERT_TRUE(t);
    RawCard card(*t);
    // Nothing pending: the wait ends at its deadline, naming the node.
    auto none = t->wait_event(200ms);
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.error().code, ErrorCode::kTimeout);
    EXPECT_NE(none.error().message.find(sim.prefix() + "_events_0"), std::string::npos)
        << none.error().message;
    // ST_START with no self-test operation selected (ST_OP 0 after reset) sets ERR.SELFTEST:
    // with IRQ_ENABLE.ERR, the interrupt.
    card.wr(regs::kIrqEnable, regs::kIrqEnableErr.put(1));
    card.wr(regs::kCtrl, regs::kCtrlStStart.put(1));
    auto ev = t->wait_event(30s);
    ASSERT_TRUE(ev.ok()) << ev.error().describe();
    EXPECT_EQ(regs::kErrSelftest.get(card.rd(regs::kErr)), 1u);
    EXPECT_EQ(regs::kIrqStatusErr.get(card.rd(regs::kIrqStatus)), 1u);
    // Acknowledged by the read: no second event while the line stays up.
    auto again = t->wait_event(200ms);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, ErrorCode::kTimeout);
}

TEST(XdmaTransport, ShortTransferIsADeviceFaultNamingTheNode) {
    START_CARDSIM(sim, {"--engines", "2"});
    auto t = open_transport(sim);
    ASSERT_TRUE(t);
    Bed bed;
    RawCard card(*t);
    ASSERT_NO_FATAL_FAILURE(card.start(bed.wrapped, bed.entropy, bed.pers, 1000));
    // Two UIDs, three records asked: the card's tlast ends the transfer after two.
    ASSERT_TRUE(t->write_requests(request_bytes(bed.uids(2)), 60s).ok());
    std::vector<uint8_t> got(3 * 128);
    auto s = t->read_records(got, 120s);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::kDeviceFault);
    EXPECT_NE(s.error().message.find(sim.prefix() + "_c2h_0"), std::string::npos)
        << s.error().message;
    EXPECT_NE(s.error().message.find("short transfer: read 256 of 384"), std::string::npos)
        << s.error().message;
}

TEST(XdmaTransport, CardResetMidBatchEndsTheTransferShort) {
    START_CARDSIM(sim, {"--engines", "2", "--fault", "reset@2"});
    auto t = open_transport(sim);
    ASSERT_TRUE(t);
    Bed bed;
    RawCard card(*t);
    ASSERT_NO_FATAL_FAILURE(card.start(bed.wrapped, bed.entropy, bed.pers, 1000));
    const auto uids = bed.uids(4);
    const auto want = bed.software(uids);
    ASSERT_TRUE(t->write_requests(request_bytes(uids), 60s).ok());
    std::vector<uint8_t> got(4 * 128);
    auto s = t->read_records(got, 120s);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::kDeviceFault);
    EXPECT_NE(s.error().message.find("read 256 of 512"), std::string::npos) << s.error().message;
    // The card came back in its power-on state: no KIK, not instantiated.
    const uint32_t st = card.rd(regs::kStatus);
    EXPECT_EQ(regs::kStatusKikValid.get(st), 0u);
    EXPECT_EQ(regs::kStatusInstantiated.get(st), 0u);
}

TEST(XdmaTransport, StalledRecordStreamTimesOutNamingTheNode) {
    START_CARDSIM(sim, {"--engines", "2", "--fault", "stall@1"});
    auto t = open_transport(sim);
    ASSERT_TRUE(t);
    Bed bed;
    RawCard card(*t);
    ASSERT_NO_FATAL_FAILURE(card.start(bed.wrapped, bed.entropy, bed.pers, 1000));
    ASSERT_TRUE(t->write_requests(request_bytes(bed.uids(3)), 60s).ok());
    std::vector<uint8_t> got(3 * 128);
    auto s = t->read_records(got, 3s);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::kTimeout);
    EXPECT_NE(s.error().message.find(sim.prefix() + "_c2h_0"), std::string::npos)
        << s.error().message;
    // The emulator still unmounts cleanly with the transport open and the stream stalled.
    t.reset();
    EXPECT_EQ(sim.stop(), 0) << sim.log();
}

// The emulator's record faults change exactly the record they name, the way the driver must
// catch: a wrong UID, a wrong sequence number, a point off the curve, a key that does not unwrap.
TEST(XdmaTransport, RecordFaultsCorruptExactlyTheNamedRecord) {
    START_CARDSIM(sim, {"--engines", "2", "--fault", "uid@1", "--fault", "seq@2", "--fault",
                        "point@3", "--fault", "wrap@4"});
    auto t = open_transport(sim);
    ASSERT_TRUE(t);
    Bed bed;
    RawCard card(*t);
    ASSERT_NO_FATAL_FAILURE(card.start(bed.wrapped, bed.entropy, bed.pers, 1000));
    const auto uids = bed.uids(6);
    const auto want = bed.software(uids);
    ASSERT_TRUE(t->write_requests(request_bytes(uids), 60s).ok());
    std::vector<uint8_t> got(6 * 128);
    auto s = t->read_records(got, 120s);
    ASSERT_TRUE(s.ok()) << s.error().describe();
    std::vector<Record> recs(6);
    for (std::size_t i = 0; i < 6; ++i)
        std::copy_n(got.begin() + static_cast<long>(128 * i), 128, recs[i].begin());
    EXPECT_TRUE(recs[0] == want[0]);
    EXPECT_TRUE(recs[5] == want[5]);
    auto differs_in = [](const Record& a, const Record& b, std::size_t from, std::size_t to) {
        for (std::size_t i = 0; i < 128; ++i)
            if ((a[i] != b[i]) != (i >= from && i < to && a[i] != b[i])) return false;
        return a != b;
    };
    EXPECT_TRUE(differs_in(recs[1], want[1], 8, 24)) << "uid@1 changes the UID only";
    EXPECT_TRUE(differs_in(recs[2], want[2], 0, 8)) << "seq@2 changes the sequence only";
    EXPECT_TRUE(differs_in(recs[3], want[3], 56, 88)) << "point@3 changes Y only";
    EXPECT_TRUE(differs_in(recs[4], want[4], 88, 128)) << "wrap@4 changes the wrapped key only";
    auto check = [&](std::size_t i) {
        auto p = waferprov::wpid1::IdentityRecord::parse(recs[i]);
        EXPECT_TRUE(p.ok());
        return p.ok() ? waferprov::reference::die_check(bed.kik, *p) : std::string("unparsable");
    };
    EXPECT_NE(check(3), "") << "an off-curve point passes the die's check";
    EXPECT_NE(check(4), "") << "a corrupted wrapped key passes the die's check";
}

TEST(XdmaTransport, BadPathsAreNamed) {
    auto t = XdmaTransport::open("/nonexistent/xdma9");
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error().code, ErrorCode::kNotFound);
    EXPECT_NE(t.error().message.find("/nonexistent/xdma9_user"), std::string::npos)
        << t.error().message;

    // A prefix with only some of the nodes: the first missing one is named.
    waferprov::testing::TempDir dir("xdma-paths");
    std::ofstream(dir / "xdma0_user").put('\0');
    auto partial = XdmaTransport::open((dir / "xdma0").string());
    ASSERT_FALSE(partial.ok());
    EXPECT_EQ(partial.error().code, ErrorCode::kNotFound);
    EXPECT_NE(partial.error().message.find((dir / "xdma0_h2c_0").string()), std::string::npos)
        << partial.error().message;

    auto empty = XdmaTransport::open("");
    ASSERT_FALSE(empty.ok());
    EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);
}

TEST(XdmaTransport, RefusesUnalignedRegistersAndOversizedTransfers) {
    START_CARDSIM(sim, {"--engines", "1"});
    auto t = open_transport(sim);
    ASSERT_TRUE(t);
    auto r = t->read32(0x6);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find(sim.prefix() + "_user"), std::string::npos);
    std::vector<uint8_t> none;
    auto e = t->read_records(none, 1s);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(e.error().message.find(sim.prefix() + "_c2h_0"), std::string::npos);
}

TEST(CardSim, RefusesBadOptionsByName) {
    waferprov::testing::TempDir dir("cardsim-opts");
    const auto log = dir / "log";
    using waferprov::testing::read_text;
    using waferprov::testing::run_process;
    EXPECT_EQ(run_process({WAFERPROV_CARDSIM, dir.path().string(), "--engines", "3"}, log), 2);
    EXPECT_NE(read_text(log).find("--engines 3: no such card model"), std::string::npos)
        << read_text(log);
    EXPECT_EQ(run_process({WAFERPROV_CARDSIM, dir.path().string(), "--fault", "flip@1"}, log), 2);
    EXPECT_NE(read_text(log).find("unknown fault 'flip'"), std::string::npos) << read_text(log);
    EXPECT_EQ(run_process({WAFERPROV_CARDSIM, dir.path().string(), "--fault", "uid@x"}, log), 2);
    EXPECT_NE(read_text(log).find("'x' is not a decimal number"), std::string::npos)
        << read_text(log);
    EXPECT_EQ(run_process({WAFERPROV_CARDSIM, (dir / "nope").string()}, log), 2);
    EXPECT_NE(read_text(log).find("nope: not a directory"), std::string::npos) << read_text(log);
}

}  // namespace
