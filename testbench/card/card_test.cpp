// The card (rtl/card/wp_card.sv) in Verilator against the software engine (drivers/software,
// byte for byte) and OpenSSL (drivers/reference: every record checked as the die would):
// N = 1, 2, 4 at 128 bits, N = 4 at 256 bits, and a 256-bit N = 2 card with a lowered scalar
// limit for the rejection path. Register rules, errors, zeroize and constant time.
// Cycle figures are printed, never asserted as timings (the >= 512-die figures run is in
// card_soak_test.cpp).
#include <gtest/gtest.h>

#include <map>

#include "Vwp_card_vl_n1_w128.h"
#include "Vwp_card_vl_n2_w128.h"
#include "Vwp_card_vl_n2_w256_lim.h"
#include "Vwp_card_vl_n4_w128.h"
#include "Vwp_card_vl_n4_w256.h"
#include "card_bench.hpp"

using namespace cardbench;
namespace ref = waferprov::reference;

namespace {

constexpr uint64_t kKeygenCycles = 9293;  // p256_keygen, docs/rtl-p256.md

bool want_trace(std::string& path) {
    return detail::trace_requested(::testing::internal::GetArgvs(), path);
}

template <class Model>
std::unique_ptr<Card<Model>> make_card() {
    std::string vcd;
    const bool trace = want_trace(vcd);
    return std::make_unique<Card<Model>>(trace, vcd);
}

// The common setup: a KIK wrapped under the test DK loaded into both the card and the
// software engine, and both instantiated from the same entropy and personalization.
struct Bed {
    Inputs in;
    Bytes kik, wrapped, entropy, pers;
    SoftwareRef sw;

    explicit Bed(uint64_t salt) : in(salt) {
        kik = in.bytes(32);
        wrapped = ref::kw_wrap(test_dk(), kik);  // AES-KW(DK, KIK) by OpenSSL
        entropy = in.bytes(48);
        pers = in.bytes(static_cast<std::size_t>(salt % 49));
    }
    template <class Model>
    void start(Card<Model>& card, uint64_t interval, uint64_t seq_start = 0) {
        card.load_kik(wrapped);
        ASSERT_EQ(regs::kStatusKikValid.get(card.status()), 1u);
        card.instantiate(entropy, pers, interval, seq_start);
        ASSERT_EQ(regs::kStatusInstantiated.get(card.status()), 1u);
        ASSERT_EQ(card.err(), 0u);
        ASSERT_TRUE(sw.engine.load_kik(wrapped).ok());
        ASSERT_TRUE(sw.engine.instantiate(entropy, pers, interval).ok());
    }
};

// `batches` batches of `per_batch` UIDs with a reseed between batches (the reseed interval is
// one batch, so every batch after the first crosses a reseed boundary); request packets of
// `per_packet` UIDs; random gaps and back-pressure. Records byte-identical to the software
// engine's and the die check on each. Prints cycles per die.
template <class Model>
void stream_matches_software(const char* name, unsigned n_engines, std::size_t batches,
                             std::size_t per_batch, std::size_t per_packet, double gaps,
                             double stalls, uint64_t salt) {
    auto card = make_card<Model>();
    Bed s(salt);
    s.start(*card, per_batch);
    card->set_request_gaps(gaps);
    card->set_record_stalls(stalls);
    card->seed(salt);
    std::vector<Record> want;
    const uint64_t c0 = card->cycles();
    const uint64_t timeout = (per_batch + 4) * (kKeygenCycles + 2000) * 4;
    for (std::size_t b = 0; b < batches; ++b) {
        auto uids = s.in.uids(per_batch);
        if (b > 0) {
            // the reseed must come after the previous batch's last scalar, as in the software
            // engine: a driver reseeds between batches
            card->wait_records(want.size(), timeout);
            const Bytes e = s.in.bytes(48);
            card->reseed(e);
            ASSERT_TRUE(s.sw.engine.reseed(e).ok());
        }
        card->push_uids(uids, per_packet);
        auto w = s.sw.run(uids);
        want.insert(want.end(), w.begin(), w.end());
    }
    card->wait_records(want.size(), timeout);
    const uint64_t cycles = card->records().back().cycle - c0;
    expect_records(card->records(), 0, want, s.kik);
    EXPECT_EQ(card->records().size(), want.size());
    EXPECT_EQ(card->err(), 0u);
    // tlast on the last record of every request packet
    for (std::size_t i = 0; i < want.size(); ++i) {
        const bool end =
            ((i % per_batch) + 1) % per_packet == 0 || (i % per_batch) + 1 == per_batch;
        EXPECT_EQ(card->records()[i].last, end) << "record " << i;
    }
    card->wait_idle(1000);
    EXPECT_EQ(card->seq_next(), want.size());
    std::cout << "[figure] " << name << ": " << want.size() << " dies, " << cycles << " cycles, "
              << static_cast<double>(cycles) / static_cast<double>(want.size())
              << " cycles/die incl. a reseed drain per batch (keygen/N = "
              << static_cast<double>(kKeygenCycles) / n_engines << ", gaps " << gaps << ", stalls "
              << stalls << ")\n";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Records byte-identical to the software engine, across reseed boundaries, for N = 1, 2, 4.
// ---------------------------------------------------------------------------------------------
TEST(CardRecords, N1W128MatchSoftwareEngineAcrossReseeds) {
    stream_matches_software<Vwp_card_vl_n1_w128>("N=1 128-bit", 1, 3, 8, 3, 0.0, 0.0, 1);
}
TEST(CardRecords, N2W128MatchSoftwareEngineWithGapsAndBackPressure) {
    stream_matches_software<Vwp_card_vl_n2_w128>("N=2 128-bit", 2, 4, 16, 5, 0.3, 0.3, 2);
}
TEST(CardRecords, N4W128MatchSoftwareEngineAcrossReseeds) {
    stream_matches_software<Vwp_card_vl_n4_w128>("N=4 128-bit", 4, 4, 64, 64, 0.0, 0.0, 3);
}
TEST(CardRecords, N4W256MatchSoftwareEngineWithGapsAndBackPressure) {
    // packets of 7: the last beat of each packet carries one UID (tkeep low half)
    stream_matches_software<Vwp_card_vl_n4_w256>("N=4 256-bit", 4, 2, 48, 7, 0.5, 0.5, 4);
}

// A sequence start other than 0: the card numbers records from SEQ_START.
TEST(CardRecords, SequenceNumbersStartAtSeqStart) {
    auto card = make_card<Vwp_card_vl_n2_w128>();
    Bed s(5);
    const uint64_t start = 0x0123456789abcdefULL;
    s.start(*card, 1000, start);
    EXPECT_EQ(card->seq_next(), start);
    auto uids = s.in.uids(6);
    card->push_uids(uids, 6);
    card->wait_records(6, 6 * kKeygenCycles * 3);
    expect_records(card->records(), 0, s.sw.run(uids, start), s.kik);
}

// ---------------------------------------------------------------------------------------------
// The scalar-rejection path: a card built with SCALAR_LIMIT = 2^255 (about half the
// candidates rejected) against an OpenSSL reference with the same limit.
// ---------------------------------------------------------------------------------------------
namespace {

struct LimRef {
    std::vector<Record> records;
    std::vector<unsigned> rejects;
};

LimRef lim_reference(const Bytes& kik, ref::Drbg& drbg, const std::vector<Uid>& uids,
                     uint64_t first_seq) {
    LimRef out;
    for (std::size_t i = 0; i < uids.size(); ++i) {
        Bytes d;
        unsigned rej = 0;
        for (;;) {
            d = drbg.generate(32);
            const bool zero = std::all_of(d.begin(), d.end(), [](uint8_t x) { return x == 0; });
            if (!zero && d[0] < 0x80) break;  // 0 < d < 2^255
            ++rej;
        }
        waferprov::wpid1::IdentityRecord r;
        r.sequence = first_seq + i;
        r.uid = uids[i];
        auto q = ref::base_mul(d);
        EXPECT_TRUE(q.has_value());
        r.x = q->x;
        r.y = q->y;
        const Bytes w = ref::kw_wrap(ref::kek(kik, uids[i]), d);
        std::copy(w.begin(), w.end(), r.wrapped.begin());
        out.records.push_back(r.serialize());
        out.rejects.push_back(rej);
    }
    return out;
}

}  // namespace

TEST(CardRecords, RejectionPathMatchesReferenceWithLoweredLimit) {
    auto card = make_card<Vwp_card_vl_n2_w256_lim>();
    Bed s(6);
    s.start(*card, 1000);
    card->set_record_stalls(0.2);
    auto uids = s.in.uids(24);
    card->push_uids(uids, 24);
    ref::Drbg drbg(s.entropy, s.pers);
    const LimRef want = lim_reference(s.kik, drbg, uids, 0);
    card->wait_records(uids.size(), uids.size() * kKeygenCycles * 3);
    unsigned total = 0;
    for (unsigned r : want.rejects) total += r;
    EXPECT_GT(total, 4u) << "the lowered limit should reject about half the candidates";
    expect_records(card->records(), 0, want.records, s.kik);
}

// ---------------------------------------------------------------------------------------------
// Constant time: cycles from a request accepted to its record out do not depend on d, only on
// the public rejection count.
// ---------------------------------------------------------------------------------------------
namespace {

// The first die after a KIK load also carries the KIK into wpid_kdf (its CMAC subkeys: 19
// cycles more, a public event), so callers leave it out.
template <class Model>
std::vector<uint64_t> latencies(Card<Model>& card, const std::vector<Uid>& uids) {
    std::vector<uint64_t> out;
    for (const Uid& u : uids) {
        card.accepted_cycles().clear();
        const std::size_t before = card.records().size();
        card.push_uids(std::vector<Uid>{u}, 1);
        card.wait_records(before + 1, 4 * kKeygenCycles);
        out.push_back(card.records().back().cycle - card.accepted_cycles().front());
        card.run(20);  // the engine's wipe, before the next request
    }
    return out;
}

}  // namespace

TEST(CardConstantTime, LatencyIndependentOfScalar) {
    auto card = make_card<Vwp_card_vl_n1_w128>();
    Bed s(7);
    s.start(*card, 1000);
    auto uids = s.in.uids(10);
    const auto lat = latencies(*card, uids);
    // with the P-256 order as the limit a rejection has probability ~2^-32: none here
    const auto want = s.sw.run(uids);
    expect_records(card->records(), 0, want, s.kik, false);
    for (std::size_t i = 2; i < lat.size(); ++i) EXPECT_EQ(lat[i], lat[1]) << "die " << i;
    std::cout << "[figure] request accepted -> record out (N=1, 128-bit): " << lat[1] << " cycles ("
              << lat[0] << " for the first die after LOAD_KIK)\n";
}

TEST(CardConstantTime, LatencyDependsOnlyOnRejectionCount) {
    auto card = make_card<Vwp_card_vl_n2_w256_lim>();
    Bed s(8);
    s.start(*card, 1000);
    auto uids = s.in.uids(24);
    const auto lat = latencies(*card, uids);
    ref::Drbg drbg(s.entropy, s.pers);
    const LimRef want = lim_reference(s.kik, drbg, uids, 0);
    expect_records(card->records(), 0, want.records, s.kik, false);
    std::map<unsigned, uint64_t> by_rejects;
    for (std::size_t i = 1; i < lat.size(); ++i) {
        auto [it, fresh] = by_rejects.emplace(want.rejects[i], lat[i]);
        if (!fresh) {
            EXPECT_EQ(lat[i], it->second) << "die " << i << ", rejects " << want.rejects[i];
        }
    }
    EXPECT_GE(by_rejects.size(), 2u) << "want dies with different rejection counts";
    for (auto [r, c] : by_rejects)
        std::cout << "[figure] " << r << " rejections: " << c << " cycles to the record\n";
}

// ---------------------------------------------------------------------------------------------
// Keys, zeroize and errors.
// ---------------------------------------------------------------------------------------------
TEST(CardKeys, BadWrappedKikIsRefusedAndLeavesNoKik) {
    auto card = make_card<Vwp_card_vl_n1_w128>();
    Bed s(9);
    s.start(*card, 1000);
    card->write32(regs::kIrqEnable, regs::kIrqEnableErr.put(1));
    Bytes bad = s.wrapped;
    bad[17] ^= 0x01;
    card->load_kik(bad);
    EXPECT_EQ(regs::kErrKikUnwrap.get(card->err()), 1u);
    EXPECT_EQ(regs::kStatusKikValid.get(card->status()), 0u) << "the earlier KIK must be gone";
    EXPECT_EQ(regs::kStatusHalted.get(card->status()), 1u);
    EXPECT_EQ(card->dut().irq_o, 1);
    card->ctrl(regs::kCtrlClearErr);
    EXPECT_EQ(card->err(), 0u);
    // a request now: refused with NO_KIK at sequence 0, no record
    card->push_uids(s.in.uids(2), 2);
    card->run(200);
    EXPECT_EQ(regs::kErrNoKik.get(card->err()), 1u);
    EXPECT_EQ(card->err_seq(), 0u);
    EXPECT_TRUE(card->records().empty());
    // a good KIK again, and the DRBG is still where it was: records resume from sequence 0
    card->ctrl(regs::kCtrlClearErr);
    card->load_kik(s.wrapped);
    ASSERT_EQ(regs::kStatusKikValid.get(card->status()), 1u);
    auto uids = s.in.uids(3);
    card->push_uids(uids, 3);
    card->wait_records(3, 3 * kKeygenCycles * 3);
    expect_records(card->records(), 0, s.sw.run(uids), s.kik);
}

TEST(CardKeys, ZeroizeMidBatchThenReloadAndContinue) {
    auto card = make_card<Vwp_card_vl_n2_w128>();
    Bed s(10);
    s.start(*card, 1000);
    auto uids = s.in.uids(12);
    card->push_uids(uids, 12);
    const auto want = s.sw.run(uids);
    card->wait_records(3, 12 * kKeygenCycles);
    card->ctrl(regs::kCtrlZeroize);
    card->run(100);
    const uint32_t st = card->status();
    EXPECT_EQ(regs::kStatusZeroized.get(st), 1u);
    EXPECT_EQ(regs::kStatusKikValid.get(st), 0u);
    EXPECT_EQ(regs::kStatusInstantiated.get(st), 0u);
    EXPECT_EQ(regs::kStatusBusy.get(st), 0u) << "zeroize drops the work in flight";
    // What came out is a prefix of the stream (a record already on the wire is finished and
    // ends the packet); nothing comes out after.
    const std::size_t got = card->records().size();
    ASSERT_GE(got, 3u);
    ASSERT_LT(got, uids.size());
    expect_records(card->records(), 0, std::vector<Record>(want.begin(), want.begin() + got),
                   s.kik);
    card->run(3 * kKeygenCycles);
    EXPECT_EQ(card->records().size(), got);
    // Requests now are refused: not instantiated.
    card->push_uids(s.in.uids(1), 1);
    card->run(50);
    EXPECT_EQ(regs::kErrNotInstantiated.get(card->err()), 1u);
    card->ctrl(regs::kCtrlClearErr);
    // Reload and continue: a fresh instantiate, compared with a fresh software engine.
    Bed s2(11);
    s2.kik = s.kik;
    s2.wrapped = s.wrapped;
    s2.start(*card, 1000);
    EXPECT_EQ(regs::kStatusZeroized.get(card->status()), 0u);
    auto uids2 = s2.in.uids(8);
    card->push_uids(uids2, 8);
    card->wait_records(got + 8, 8 * kKeygenCycles * 3);
    expect_records(card->records(), got, s2.sw.run(uids2), s2.kik);
}

TEST(CardErrors, ReseedRequiredHaltsAtTheRightSequenceAndResumes) {
    auto card = make_card<Vwp_card_vl_n2_w128>();
    Bed s(12);
    s.start(*card, 5);
    card->write32(regs::kIrqEnable, regs::kIrqEnableErr.put(1));
    auto uids = s.in.uids(8);
    card->push_uids(uids, 8);  // the 6th request exceeds the interval
    card->wait_records(5, 8 * kKeygenCycles * 3);
    card->run(kKeygenCycles);
    EXPECT_EQ(card->records().size(), 5u) << "no record after the refused request";
    EXPECT_EQ(regs::kErrReseedRequired.get(card->err()), 1u);
    EXPECT_EQ(card->err_seq(), 5u);
    EXPECT_EQ(card->seq_next(), 5u);
    EXPECT_EQ(regs::kStatusReseedRequired.get(card->status()), 1u);
    EXPECT_EQ(regs::kStatusHalted.get(card->status()), 1u);
    EXPECT_EQ(card->dut().irq_o, 1);
    // the software engine refuses the same way; the host reseeds and resubmits from SEQ_NEXT
    std::vector<Uid> first(uids.begin(), uids.begin() + 5), rest(uids.begin() + 5, uids.end());
    auto want = s.sw.run(first);
    const Bytes e = s.in.bytes(48);
    card->reseed(e);
    card->wait_cmd();
    card->ctrl(regs::kCtrlClearErr);
    card->write32(regs::kIrqStatus, regs::kIrqStatusErr.put(1));
    EXPECT_EQ(card->dut().irq_o, 0);
    EXPECT_EQ(regs::kStatusReseedRequired.get(card->status()), 0u);
    ASSERT_TRUE(s.sw.engine.reseed(e).ok());
    card->push_uids(rest, rest.size());
    auto w2 = s.sw.run(rest);
    want.insert(want.end(), w2.begin(), w2.end());
    card->wait_records(8, 8 * kKeygenCycles * 3);
    expect_records(card->records(), 0, want, s.kik);
}

namespace {

// A malformed request beat after `good` whole UIDs: sticky error, ERR_SEQ, halt, no partial
// record; beats sent while halted are dropped; after CLEAR_ERR the stream resumes at SEQ_NEXT.
template <class Model>
void malformed(const Beat& bad, const regs::Field& err_bit, uint64_t salt) {
    auto card = make_card<Model>();
    Bed s(salt);
    s.start(*card, 1000);
    constexpr std::size_t kGood = 3;
    auto uids = s.in.uids(kGood);
    card->push_uids(uids, kGood);
    card->push_beat(bad);
    card->push_uids(s.in.uids(2), 2);  // sent while halted: dropped
    card->wait_records(kGood, kGood * kKeygenCycles * 3);
    card->run(2 * kKeygenCycles);
    EXPECT_EQ(err_bit.get(card->err()), 1u);
    EXPECT_EQ(card->err_seq(), kGood);
    EXPECT_EQ(regs::kStatusHalted.get(card->status()), 1u);
    EXPECT_EQ(card->records().size(), kGood);
    EXPECT_FALSE(card->requests_pending()) << "a halted card drains the request stream";
    auto want = s.sw.run(uids);
    card->ctrl(regs::kCtrlClearErr);
    EXPECT_EQ(card->seq_next(), kGood);
    auto more = s.in.uids(2);
    card->push_uids(more, 2);
    auto w2 = s.sw.run(more);
    want.insert(want.end(), w2.begin(), w2.end());
    card->wait_records(kGood + 2, 2 * kKeygenCycles * 3);
    expect_records(card->records(), 0, want, s.kik);
}

Beat beat_of(std::size_t bytes, uint64_t keep, bool last) {
    Beat b;
    b.data.assign(bytes, 0x5a);
    b.keep = keep;
    b.last = last;
    return b;
}

}  // namespace

TEST(CardErrors, PartialUidHaltsWithoutAPartialRecord) {
    malformed<Vwp_card_vl_n1_w128>(beat_of(16, 0x00ff, true), regs::kErrPartialUid, 13);
}
TEST(CardErrors, PartialUidOn256BitStream) {
    // one UID and a half: 24 bytes on the tlast beat
    malformed<Vwp_card_vl_n4_w256>(beat_of(32, 0x00ffffff, true), regs::kErrPartialUid, 14);
}
TEST(CardErrors, BadTkeepBeforeTlast) {
    malformed<Vwp_card_vl_n1_w128>(beat_of(16, 0xfff7, false), regs::kErrBadTkeep, 15);
}
TEST(CardErrors, EmptyTkeepOnTlast) {
    malformed<Vwp_card_vl_n1_w128>(beat_of(16, 0x0000, true), regs::kErrBadTkeep, 18);
}
TEST(CardErrors, ARunEndingOnTheFirstByteOfTheSecondUidIsPartial) {
    malformed<Vwp_card_vl_n4_w256>(beat_of(32, 0x0001ffff, true), regs::kErrPartialUid, 19);
}
TEST(CardErrors, NonContiguousTkeepOnTlast) {
    malformed<Vwp_card_vl_n4_w256>(beat_of(32, 0xffff0000, true), regs::kErrBadTkeep, 16);
}

TEST(CardErrors, RequestBeforeInstantiateOrKik) {
    auto card = make_card<Vwp_card_vl_n1_w128>();
    Bed s(17);
    card->push_uids(s.in.uids(1), 1);
    card->run(50);
    EXPECT_EQ(regs::kErrNotInstantiated.get(card->err()), 1u);
    EXPECT_EQ(card->err_seq(), 0u);
    card->ctrl(regs::kCtrlClearErr);
    card->instantiate(s.entropy, s.pers, 10);  // a DRBG but no KIK
    card->push_uids(s.in.uids(1), 1);
    card->run(50);
    EXPECT_EQ(regs::kErrNoKik.get(card->err()), 1u);
    EXPECT_TRUE(card->records().empty());
}

// ---------------------------------------------------------------------------------------------
// Register rules.
// ---------------------------------------------------------------------------------------------
TEST(CardRegisters, IdentityVersionAndCapabilities) {
    auto card = make_card<Vwp_card_vl_n4_w256>();
    EXPECT_EQ(card->read32(regs::kId), regs::kCardId);
    const uint32_t v = card->read32(regs::kVersion);
    EXPECT_EQ(regs::kVersionMajor.get(v), regs::kMapVersionMajor);
    EXPECT_EQ(regs::kVersionMinor.get(v), regs::kMapVersionMinor);
    const uint32_t caps = card->read32(regs::kCaps);
    EXPECT_EQ(regs::kCapsEngines.get(caps), 4u);
    EXPECT_EQ(regs::kCapsStreamBytesLog2.get(caps), 5u);
    EXPECT_EQ(regs::kCapsRecordFormat.get(caps), 1u);
    EXPECT_EQ(regs::kCapsSelftest.get(caps), 1u);  // card_selftest_test.cpp
    EXPECT_EQ(regs::kCapsScanRandomized.get(caps), 1u);
    auto c1 = make_card<Vwp_card_vl_n1_w128>();
    const uint32_t caps1 = c1->read32(regs::kCaps);
    EXPECT_EQ(regs::kCapsEngines.get(caps1), 1u);
    EXPECT_EQ(regs::kCapsStreamBytesLog2.get(caps1), 4u);
}

TEST(CardRegisters, ReadWriteStrobesAndSecretsReadZero) {
    auto card = make_card<Vwp_card_vl_n1_w128>();
    card->write32(regs::kScratch, 0xdeadbeef);
    EXPECT_EQ(card->read32(regs::kScratch), 0xdeadbeefu);
    card->write32(regs::kScratch, 0x11223344, 0x5);  // bytes 0 and 2 only
    EXPECT_EQ(card->read32(regs::kScratch), 0xde22be44u);
    card->write32(regs::kSeqStartHi, 0x01020304);
    EXPECT_EQ(card->read32(regs::kSeqStartHi), 0x01020304u);
    card->write32(regs::kPersLen, 48);
    EXPECT_EQ(card->read32(regs::kPersLen), 48u);
    // every write-only register and every secret reads 0 after being written
    const std::pair<uint32_t, uint32_t> wo[] = {{regs::kEntropy, regs::kEntropyWords},
                                                {regs::kPers, regs::kPersWords},
                                                {regs::kKikWrapped, regs::kKikWrappedWords},
                                                {regs::kStKey, regs::kStKeyWords},
                                                {regs::kStData, regs::kStDataWords}};
    for (auto [base, words] : wo) {
        for (uint32_t k = 0; k < words; ++k) {
            card->write32(base + 4 * k, 0xa5a5a5a5u ^ k);
            EXPECT_EQ(card->read32(base + 4 * k), 0u) << std::hex << base + 4 * k;
        }
    }
    EXPECT_EQ(card->read32(regs::kCtrl), 0u);
    EXPECT_EQ(card->err(), 0u) << "mapped addresses are no bus error";
}

TEST(CardRegisters, UnmappedAddressReadsZeroAndSetsErrBus) {
    auto card = make_card<Vwp_card_vl_n1_w128>();
    card->write32(regs::kIrqEnable, regs::kIrqEnableErr.put(1));
    for (uint32_t a : {0x04Cu, 0x07Cu, 0x130u, 0x240u, 0x700u, 0xffcu}) {
        EXPECT_EQ(card->read32(a), 0u) << std::hex << a;
        EXPECT_EQ(regs::kErrBus.get(card->err()), 1u) << std::hex << a;
        EXPECT_EQ(card->dut().irq_o, 1);
        card->write32(regs::kErr, regs::kErrBus.put(1));  // write 1 to clear
        EXPECT_EQ(card->err(), 0u);
        card->write32(regs::kIrqStatus, regs::kIrqStatusErr.put(1));
        EXPECT_EQ(card->dut().irq_o, 0);
    }
    card->write32(0x300, 0x12345678);
    EXPECT_EQ(regs::kErrBus.get(card->err()), 1u) << "a write to an unmapped address too";
    // ST_START with no operation selected (ST_OP 0 after reset) is refused
    card->ctrl(regs::kCtrlClearErr);
    card->ctrl(regs::kCtrlStStart);
    EXPECT_EQ(regs::kErrSelftest.get(card->err()), 1u);
}
