// The card's self-test primitives (ST_* registers, docs/card.md "Self-test") in Verilator on the
// N = 1, 128-bit card, each against OpenSSL (drivers/reference: EVP AES-256-ECB, EVP_MAC CMAC,
// AES-256-WRAP, EC_POINT_mul) on random keys, data and lengths with the edges, and against the
// known-answer files `waferprov kat` runs (testbench/vectors). Register rules, refusals, ZEROIZE
// in the middle of a self-test, and the identity record stream unchanged by self-tests. Also
// the KIK clear after a failed LOAD_KIK (sym_die's copy). Cycles per primitive are printed
// ("[figure]"), never asserted.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "Vwp_card_vl_n1_w128.h"
#include "card_bench.hpp"

using namespace cardbench;
namespace ref = waferprov::reference;
using json = nlohmann::json;
using Model = Vwp_card_vl_n1_w128;
using waferprov::ByteSpan;

namespace {

constexpr uint64_t kKeygenCycles = 9293;  // p256_keygen, docs/rtl-p256.md

enum Op : uint32_t { kEnc = 1, kDec = 2, kCmac = 3, kWrap = 4, kUnwrap = 5, kBaseMul = 6 };

// The P-256 group order n, big-endian.
const Bytes kOrderN = {0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
                       0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
                       0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};

struct StOut {
    bool refused = false;  // ERR.SELFTEST
    Bytes result;          // ST_RESULT_LEN bytes of ST_RESULT
    uint64_t cycles = 0;   // ST_START's write response to the ST_DONE interrupt
};

std::unique_ptr<Card<Model>> make_card() {
    std::string vcd;
    const bool trace = detail::trace_requested(::testing::internal::GetArgvs(), vcd);
    return std::make_unique<Card<Model>>(trace, vcd);
}

Bytes read_result(Card<Model>& card, std::size_t n) {
    Bytes out;
    for (std::size_t k = 0; k * 4 < n; ++k) {
        const uint32_t w = card.read32(regs::kStResult + static_cast<uint32_t>(4 * k));
        for (int j = 3; j >= 0 && out.size() < n; --j)
            out.push_back(static_cast<uint8_t>(w >> (8 * j)));
    }
    return out;
}

// Starts a self-test (ST_OP, ST_LEN = data.size(), ST_KEY if given, ST_DATA) and waits for the
// ST_DONE interrupt; a refusal (ERR.SELFTEST) is cleared again so that the card runs on.
StOut start_and_wait(Card<Model>& card, uint32_t op, uint32_t len) {
    card.write32(regs::kIrqEnable, regs::kIrqEnableStDone.put(1));
    card.write32(regs::kIrqStatus, 0x3);
    card.write32(regs::kStOp, op);
    card.write32(regs::kStLen, len);
    card.ctrl(regs::kCtrlStStart);
    StOut out;
    const uint64_t c0 = card.cycles();
    card.run_until([&] { return card.dut().irq_o != 0; }, 4 * kKeygenCycles);
    out.cycles = card.cycles() - c0;
    const uint32_t st = card.status();
    EXPECT_EQ(regs::kStatusStBusy.get(st), 0u);
    EXPECT_EQ(regs::kStatusStDone.get(st), 1u);
    EXPECT_EQ(regs::kIrqStatusStDone.get(card.read32(regs::kIrqStatus)), 1u);
    const uint32_t err = card.err();
    out.refused = regs::kErrSelftest.get(err) != 0;
    EXPECT_EQ(err & ~regs::kErrSelftest.put(1), 0u) << "only ERR.SELFTEST may be set";
    const uint32_t rlen = card.read32(regs::kStResultLen);
    if (out.refused) {
        EXPECT_EQ(rlen, 0u) << "a failed self-test returns no data";
        EXPECT_EQ(read_result(card, 256), Bytes(256, 0)) << "a failed self-test returns no data";
        card.write32(regs::kErr, regs::kErrSelftest.put(1));
    } else {
        out.result = read_result(card, rlen);
    }
    card.write32(regs::kIrqStatus, 0x3);
    return out;
}

StOut self_test(Card<Model>& card, uint32_t op, ByteSpan key, ByteSpan data) {
    // at most the registers' 32 and 256 bytes (a longer input is refused by its ST_LEN)
    card.write_bytes(regs::kStKey, key.first(std::min<std::size_t>(key.size(), 32)));
    card.write_bytes(regs::kStData, data.first(std::min<std::size_t>(data.size(), 256)));
    return start_and_wait(card, op, static_cast<uint32_t>(data.size()));
}

Bytes concat(ByteSpan a, ByteSpan b) {
    Bytes r(a.begin(), a.end());
    r.insert(r.end(), b.begin(), b.end());
    return r;
}

Bytes point_bytes(const waferprov::P256Point& q) { return concat(q.x, q.y); }

json load_vectors(const std::string& name) {
    std::ifstream f(std::string(WAFERPROV_VECTOR_DIR) + "/" + name);
    if (!f) throw std::runtime_error("no vector file " + name);
    return json::parse(f);
}

Bytes hex(const json& tc, const char* field) {
    auto b = waferprov::from_hex(tc.at(field).get<std::string>(), field);
    if (!b.ok()) throw std::runtime_error(std::string("bad hex in ") + field);
    return *b;
}

void print_figure(const std::string& what, uint64_t cycles) {
    std::cout << "[figure] self-test " << what << ": " << cycles << " cycles\n";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Registers.
// ---------------------------------------------------------------------------------------------
TEST(CardSelfTest, CapabilityAndRegisterRules) {
    auto card = make_card();
    EXPECT_EQ(regs::kCapsSelftest.get(card->read32(regs::kCaps)), 1u);
    EXPECT_EQ(regs::kVersionMinor.get(card->read32(regs::kVersion)), regs::kMapVersionMinor);
    Inputs in(101);
    card->write_bytes(regs::kStKey, in.bytes(32));
    card->write_bytes(regs::kStData, in.bytes(256));
    for (uint32_t k = 0; k < regs::kStKeyWords; ++k)
        EXPECT_EQ(card->read32(regs::kStKey + 4 * k), 0u) << "ST_KEY word " << k;
    for (uint32_t k = 0; k < regs::kStDataWords; ++k)
        EXPECT_EQ(card->read32(regs::kStData + 4 * k), 0u) << "ST_DATA word " << k;
    card->write32(regs::kStOp, 5);
    card->write32(regs::kStLen, 0x1234);
    EXPECT_EQ(card->read32(regs::kStOp), 5u);
    EXPECT_EQ(card->read32(regs::kStLen), 0x1234u);
    EXPECT_EQ(card->read32(regs::kStResultLen), 0u);
    EXPECT_EQ(card->err(), 0u) << "every ST_* address is mapped";
    const uint32_t st = card->status();
    EXPECT_EQ(regs::kStatusStBusy.get(st), 0u);
    EXPECT_EQ(regs::kStatusStDone.get(st), 0u);
}

// ---------------------------------------------------------------------------------------------
// AES-256 block encrypt / decrypt.
// ---------------------------------------------------------------------------------------------
TEST(CardSelfTest, AesBlockMatchesOpenSsl) {
    auto card = make_card();
    // FIPS-197 appendix C.3 (AES-256).
    Bytes key(32), pt(16);
    for (std::size_t i = 0; i < 32; ++i) key[i] = static_cast<uint8_t>(i);
    for (std::size_t i = 0; i < 16; ++i) pt[i] = static_cast<uint8_t>(0x11 * i);
    auto ct = waferprov::from_hex("8ea2b7ca516745bfeafc49904b496089");
    ASSERT_TRUE(ct.ok());
    const StOut e = self_test(*card, kEnc, key, pt);
    ASSERT_FALSE(e.refused);
    EXPECT_EQ(e.result, *ct);
    const StOut d = self_test(*card, kDec, key, *ct);
    ASSERT_FALSE(d.refused);
    EXPECT_EQ(d.result, pt);
    print_figure("AES-256 encrypt (16 bytes)", e.cycles);
    print_figure("AES-256 decrypt (16 bytes)", d.cycles);

    Inputs in(102);
    for (int i = 0; i < 24; ++i) {
        SCOPED_TRACE(i);
        const Bytes k = in.bytes(32), p = in.bytes(16);
        const Bytes c = ref::aes_encrypt(k, p);
        EXPECT_EQ(self_test(*card, kEnc, k, p).result, c);
        // decrypt: OpenSSL's ciphertext back to the plaintext, and a random block through the
        // card's decryption and OpenSSL's encryption back to itself
        EXPECT_EQ(self_test(*card, kDec, k, c).result, p);
        const StOut r = self_test(*card, kDec, k, p);
        ASSERT_EQ(r.result.size(), 16u);
        EXPECT_EQ(ref::aes_encrypt(k, r.result), p);
        EXPECT_EQ(r.cycles, d.cycles) << "the decryption time does not depend on key or data";
    }
}

// ---------------------------------------------------------------------------------------------
// AES-256-CMAC, 0..256 bytes.
// ---------------------------------------------------------------------------------------------
TEST(CardSelfTest, CmacMatchesOpenSslOnEveryEdgeAndRandomLengths) {
    auto card = make_card();
    Inputs in(103);
    std::vector<std::size_t> lens = {0, 1, 15, 16, 17, 31, 32, 33, 48, 100, 240, 241, 255, 256};
    for (int i = 0; i < 12; ++i) lens.push_back(in.bytes(2)[0] % 257);
    std::map<std::size_t, uint64_t> cycles;
    for (std::size_t n : lens) {
        SCOPED_TRACE("length " + std::to_string(n));
        const Bytes k = in.bytes(32), m = in.bytes(n);
        const StOut r = self_test(*card, kCmac, k, m);
        ASSERT_FALSE(r.refused);
        EXPECT_EQ(r.result, ref::cmac(k, m));
        cycles[n] = r.cycles;
    }
    for (std::size_t n : {0, 16, 17, 256})
        print_figure("AES-256-CMAC (" + std::to_string(n) + " bytes)", cycles[n]);
}

// ---------------------------------------------------------------------------------------------
// AES-256-KW (RFC 3394): wrap 16..248 bytes, unwrap 24..256 bytes, a tampered blob refused.
// ---------------------------------------------------------------------------------------------
TEST(CardSelfTest, KeyWrapMatchesOpenSslAndRefusesATamperedBlob) {
    auto card = make_card();
    Inputs in(104);
    std::vector<std::size_t> lens = {16, 24, 32, 40, 64, 128, 240, 248};
    for (int i = 0; i < 8; ++i) lens.push_back(16 + 8 * (in.bytes(1)[0] % 30));
    std::map<std::size_t, uint64_t> wrap_cycles, unwrap_cycles;
    for (std::size_t n : lens) {
        SCOPED_TRACE("length " + std::to_string(n));
        const Bytes k = in.bytes(32), m = in.bytes(n);
        const Bytes want = ref::kw_wrap(k, m);
        const StOut w = self_test(*card, kWrap, k, m);
        ASSERT_FALSE(w.refused);
        EXPECT_EQ(w.result, want);
        const StOut u = self_test(*card, kUnwrap, k, want);
        ASSERT_FALSE(u.refused);
        EXPECT_EQ(u.result, m);
        wrap_cycles[n] = w.cycles;
        unwrap_cycles[n + 8] = u.cycles;

        // one bit flipped anywhere: OpenSSL refuses it, and so must the card, with no data
        Bytes bad = want;
        const std::size_t bit =
            (in.bytes(2)[0] | (std::size_t{in.bytes(1)[0]} << 8)) % (bad.size() * 8);
        bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
        ASSERT_FALSE(ref::kw_unwrap(k, bad).has_value());
        const StOut t = self_test(*card, kUnwrap, k, bad);
        EXPECT_TRUE(t.refused) << "tampered bit " << bit;
        EXPECT_TRUE(t.result.empty());
        EXPECT_EQ(t.cycles, u.cycles) << "an integrity failure takes as long as a success";
        // the wrong key: refused too
        EXPECT_TRUE(self_test(*card, kUnwrap, in.bytes(32), want).refused);
    }
    for (std::size_t n : {16, 32, 248})
        print_figure("AES-256-KW wrap (" + std::to_string(n) + " bytes)", wrap_cycles[n]);
    for (std::size_t n : {24, 40, 256})
        print_figure("AES-256-KW unwrap (" + std::to_string(n) + " bytes)", unwrap_cycles[n]);
}

// ---------------------------------------------------------------------------------------------
// P-256 d*G on engine 0.
// ---------------------------------------------------------------------------------------------
TEST(CardSelfTest, BaseMulMatchesOpenSslAndRefusesZeroAndOrder) {
    auto card = make_card();
    Inputs in(105);
    Bytes one(32, 0);
    one[31] = 1;
    Bytes n_minus_1 = kOrderN;
    n_minus_1[31] -= 1;
    std::vector<Bytes> ds = {one, n_minus_1};
    for (int i = 0; i < 4; ++i) ds.push_back(in.bytes(32));
    uint64_t cycles = 0;
    for (const Bytes& d : ds) {
        SCOPED_TRACE(waferprov::to_hex(d));
        const auto q = ref::base_mul(d);
        ASSERT_TRUE(q.has_value());
        const StOut r = self_test(*card, kBaseMul, {}, d);
        ASSERT_FALSE(r.refused);
        EXPECT_EQ(r.result, point_bytes(*q));
        if (cycles != 0) {
            EXPECT_EQ(r.cycles, cycles) << "d*G time does not depend on d";
        }
        cycles = r.cycles;
    }
    print_figure("P-256 d*G (32-byte d, engine 0)", cycles);

    Bytes n_plus_1 = kOrderN;
    n_plus_1[31] += 1;
    for (const Bytes& d : {Bytes(32, 0), kOrderN, n_plus_1, Bytes(32, 0xff)}) {
        SCOPED_TRACE(waferprov::to_hex(d));
        EXPECT_TRUE(self_test(*card, kBaseMul, {}, d).refused);
    }
}

// ---------------------------------------------------------------------------------------------
// The known-answer files of `waferprov kat` (testbench/vectors) that fit the card: every test
// with a 256-bit key (the card's self-test is AES-256 only) and every P-256 base-point test.
// ---------------------------------------------------------------------------------------------
TEST(CardSelfTest, KnownAnswerFiles) {
    auto card = make_card();
    struct Count {
        int run = 0, outside = 0;
    };
    std::map<std::string, Count> counts;

    // AES block: FIPS-197 is in AesBlockMatchesOpenSsl (no block file among the vectors).
    for (const char* file : {"wycheproof/aes_wrap_test.json", "rfc3394.json"}) {
        const json doc = load_vectors(file);
        Count& c = counts[file];
        for (const json& g : doc.at("testGroups")) {
            if (g.at("keySize").get<int>() != 256) continue;
            for (const json& tc : g.at("tests")) {
                SCOPED_TRACE(std::string(file) + " tcId " +
                             std::to_string(tc.at("tcId").get<int>()));
                const std::string result = tc.at("result").get<std::string>();
                const Bytes key = hex(tc, "key"), msg = hex(tc, "msg"), ct = hex(tc, "ct");
                const bool wrap_fits = msg.size() >= 16 && msg.size() <= 248 && msg.size() % 8 == 0;
                const bool unwrap_fits = ct.size() >= 24 && ct.size() <= 256 && ct.size() % 8 == 0;
                if (result == "valid" && !(wrap_fits && unwrap_fits)) {
                    // e.g. 384-byte key data: beyond the card's 256-byte ST_DATA
                    ++c.outside;
                    EXPECT_TRUE(self_test(*card, kWrap, key, msg).refused);
                    continue;
                }
                ++c.run;
                const StOut u = self_test(*card, kUnwrap, key, ct);
                if (result == "valid") {
                    EXPECT_EQ(self_test(*card, kWrap, key, msg).result, ct);
                    EXPECT_FALSE(u.refused);
                    EXPECT_EQ(u.result, msg);
                } else if (result == "invalid") {
                    EXPECT_TRUE(u.refused) << "an invalid wrapped key was accepted";
                } else if (!u.refused) {
                    EXPECT_EQ(u.result, msg) << "acceptable: accepted, so it must be the key";
                }
            }
        }
    }
    {
        const json doc = load_vectors("wycheproof/aes_cmac_test.json");
        Count& c = counts["wycheproof/aes_cmac_test.json"];
        for (const json& g : doc.at("testGroups")) {
            if (g.at("keySize").get<int>() != 256) continue;
            const std::size_t tag_bytes = g.at("tagSize").get<std::size_t>() / 8;
            for (const json& tc : g.at("tests")) {
                SCOPED_TRACE("aes_cmac tcId " + std::to_string(tc.at("tcId").get<int>()));
                const Bytes key = hex(tc, "key"), msg = hex(tc, "msg"), tag = hex(tc, "tag");
                ++c.run;
                const StOut r = self_test(*card, kCmac, key, msg);
                ASSERT_FALSE(r.refused);
                ASSERT_EQ(r.result.size(), 16u);
                const bool matches =
                    tag.size() == tag_bytes && std::equal(tag.begin(), tag.end(), r.result.begin());
                EXPECT_EQ(matches, tc.at("result").get<std::string>() == "valid");
            }
        }
    }
    {
        const json doc = load_vectors("p256_basemul.json");
        Count& c = counts["p256_basemul.json"];
        for (const json& g : doc.at("testGroups")) {
            for (const json& tc : g.at("tests")) {
                SCOPED_TRACE("p256_basemul tcId " + std::to_string(tc.at("tcId").get<int>()));
                const Bytes d = hex(tc, "d");
                if (d.size() != 32) {  // the card takes exactly 32 bytes
                    ++c.outside;
                    EXPECT_TRUE(self_test(*card, kBaseMul, {}, d).refused);
                    continue;
                }
                ++c.run;
                const StOut r = self_test(*card, kBaseMul, {}, d);
                if (tc.at("result").get<std::string>() == "valid") {
                    ASSERT_FALSE(r.refused);
                    EXPECT_EQ(r.result, concat(hex(tc, "qx"), hex(tc, "qy")));
                } else {
                    EXPECT_TRUE(r.refused) << "an invalid scalar was accepted";
                }
            }
        }
    }
    for (const auto& [file, c] : counts) {
        std::cout << "[kat] " << file << ": " << c.run << " tests run on the card, " << c.outside
                  << " outside its lengths (refused)\n";
        EXPECT_GT(c.run, 0) << file;
    }
}

// ---------------------------------------------------------------------------------------------
// Refusals: unknown operations, lengths outside each operation's range, a second ST_START.
// ---------------------------------------------------------------------------------------------
TEST(CardSelfTest, RefusesUnknownOperationsAndBadLengths) {
    auto card = make_card();
    Inputs in(106);
    const Bytes k = in.bytes(32);
    const std::vector<std::pair<uint32_t, uint32_t>> bad = {
        {0, 16},       {7, 16},       {kEnc, 15},     {kEnc, 17},     {kDec, 0},
        {kCmac, 257},  {kWrap, 8},    {kWrap, 12},    {kWrap, 20},    {kWrap, 256},
        {kUnwrap, 16}, {kUnwrap, 28}, {kUnwrap, 264}, {kBaseMul, 31}, {kBaseMul, 33}};
    card->write_bytes(regs::kStKey, k);
    card->write_bytes(regs::kStData, in.bytes(256));
    for (const auto& [op, len] : bad) {
        SCOPED_TRACE("op " + std::to_string(op) + " length " + std::to_string(len));
        EXPECT_TRUE(start_and_wait(*card, op, len).refused);
    }
    // a good one after all the refusals
    const Bytes m = in.bytes(48);
    EXPECT_EQ(self_test(*card, kCmac, k, m).result, ref::cmac(k, m));
}

TEST(CardSelfTest, SecondStartWhileRunningIsRefusedAndTheFirstCompletes) {
    auto card = make_card();
    Inputs in(107);
    const Bytes k = in.bytes(32), m = in.bytes(248);
    card->write_bytes(regs::kStKey, k);
    card->write_bytes(regs::kStData, m);
    card->write32(regs::kStOp, kWrap);
    card->write32(regs::kStLen, 248);
    card->ctrl(regs::kCtrlStStart);
    EXPECT_EQ(regs::kStatusStBusy.get(card->status()), 1u);
    // inputs are held while it runs: these writes are ignored
    card->write32(regs::kStOp, kEnc);
    card->write_bytes(regs::kStKey, in.bytes(32));
    card->write_bytes(regs::kStData, in.bytes(16));
    card->ctrl(regs::kCtrlStStart);
    EXPECT_EQ(regs::kErrSelftest.get(card->err()), 1u);
    card->run_until([&] { return regs::kStatusStDone.get(card->status()) == 1; }, 20000);
    EXPECT_EQ(card->read32(regs::kStResultLen), 256u);
    EXPECT_EQ(read_result(*card, 256), ref::kw_wrap(k, m));
}

// ---------------------------------------------------------------------------------------------
// ZEROIZE in the middle of a self-test: aborted, key, data and result gone.
// ---------------------------------------------------------------------------------------------
TEST(CardSelfTest, ZeroizeMidSelfTestAbortsItAndClearsKeyDataAndResult) {
    auto card = make_card();
    Inputs in(108);
    for (uint32_t op : {kUnwrap, kCmac, kBaseMul}) {
        SCOPED_TRACE("op " + std::to_string(op));
        const Bytes k = in.bytes(32);
        // a result first, so that there is one to clear
        const Bytes m = in.bytes(16);
        ASSERT_EQ(self_test(*card, kEnc, k, m).result, ref::aes_encrypt(k, m));
        Bytes data = op == kUnwrap ? ref::kw_wrap(k, in.bytes(248))
                     : op == kCmac ? in.bytes(256)
                                   : in.bytes(32);
        card->write_bytes(regs::kStKey, k);
        card->write_bytes(regs::kStData, data);
        card->write32(regs::kStOp, op);
        card->write32(regs::kStLen, static_cast<uint32_t>(data.size()));
        card->ctrl(regs::kCtrlStStart);
        card->run(100);
        ASSERT_EQ(regs::kStatusStBusy.get(card->status()), 1u);
        card->ctrl(regs::kCtrlZeroize);
        const uint32_t st = card->status();
        EXPECT_EQ(regs::kStatusStBusy.get(st), 0u);
        EXPECT_EQ(regs::kStatusStDone.get(st), 0u);
        EXPECT_EQ(regs::kStatusZeroized.get(st), 1u);
        card->run(3 * kKeygenCycles);  // nothing finishes later
        EXPECT_EQ(regs::kStatusStDone.get(card->status()), 0u);
        EXPECT_EQ(card->read32(regs::kStResultLen), 0u);
        EXPECT_EQ(read_result(*card, 256), Bytes(256, 0));
        EXPECT_EQ(card->err(), 0u);
        // ST_KEY and ST_DATA were cleared: a block encryption with neither written again is
        // AES(0^256, 0^128)
        const StOut z = start_and_wait(*card, kEnc, 16);
        ASSERT_FALSE(z.refused);
        EXPECT_EQ(z.result, ref::aes_encrypt(Bytes(32, 0), Bytes(16, 0)));
    }
    // and the card's self-test works on after ZEROIZE (no KIK needed)
    const Bytes k = in.bytes(32), d = in.bytes(32);
    EXPECT_EQ(self_test(*card, kBaseMul, k, d).result, point_bytes(*ref::base_mul(d)));
}

// ---------------------------------------------------------------------------------------------
// Self-tests never change the identity record stream.
// ---------------------------------------------------------------------------------------------
TEST(CardSelfTest, IdentityStreamUnchangedBySelfTests) {
    auto card = make_card();
    Inputs in(109);
    const Bytes kik = in.bytes(32), wrapped = ref::kw_wrap(test_dk(), kik);
    const Bytes entropy = in.bytes(48), pers = in.bytes(20);
    SoftwareRef sw;
    card->load_kik(wrapped);
    card->instantiate(entropy, pers, 1000);
    ASSERT_EQ(card->err(), 0u);
    ASSERT_TRUE(sw.engine.load_kik(wrapped).ok());
    ASSERT_TRUE(sw.engine.instantiate(entropy, pers, 1000).ok());

    std::vector<Record> want;
    auto batch = [&](std::size_t n) {
        auto uids = in.uids(n);
        card->push_uids(uids, n);
        auto w = sw.run(uids);
        want.insert(want.end(), w.begin(), w.end());
    };
    const uint64_t timeout = 16 * (kKeygenCycles + 2000);
    batch(4);
    // block, CMAC and KW self-tests beside the requests in flight (they use the management AES
    // core, not sym_die's)
    const Bytes k = in.bytes(32), m = in.bytes(40);
    const Bytes blk(m.begin(), m.begin() + 16);
    EXPECT_EQ(self_test(*card, kEnc, k, blk).result, ref::aes_encrypt(k, blk));
    EXPECT_EQ(self_test(*card, kCmac, k, m).result, ref::cmac(k, m));
    EXPECT_EQ(self_test(*card, kWrap, k, m).result, ref::kw_wrap(k, m));
    EXPECT_EQ(regs::kStatusBusy.get(card->status()), 1u) << "the test must overlap the dies";
    card->wait_records(want.size(), timeout);
    card->wait_idle(1000);
    // d*G on engine 0 between batches, then a KW unwrap, then more dies
    const Bytes d = in.bytes(32);
    EXPECT_EQ(self_test(*card, kBaseMul, {}, d).result, point_bytes(*ref::base_mul(d)));
    EXPECT_EQ(self_test(*card, kUnwrap, k, ref::kw_wrap(k, m)).result, m);
    batch(5);
    card->wait_records(want.size(), timeout);
    expect_records(card->records(), 0, want, kik);
    EXPECT_EQ(card->records().size(), want.size());
    EXPECT_EQ(card->err(), 0u);
}

// d*G needs engine 0: refused while requests are in flight; the records still come out.
TEST(CardSelfTest, BaseMulRefusedWhileRequestsAreInFlight) {
    auto card = make_card();
    Inputs in(110);
    const Bytes kik = in.bytes(32), wrapped = ref::kw_wrap(test_dk(), kik);
    const Bytes entropy = in.bytes(48);
    SoftwareRef sw;
    card->load_kik(wrapped);
    card->instantiate(entropy, {}, 1000);
    ASSERT_TRUE(sw.engine.load_kik(wrapped).ok());
    ASSERT_TRUE(sw.engine.instantiate(entropy, {}, 1000).ok());
    auto uids = in.uids(2);
    card->push_uids(uids, 2);
    card->run_until([&] { return regs::kStatusBusy.get(card->status()) == 1; }, 1000);
    const StOut r = self_test(*card, kBaseMul, {}, in.bytes(32));
    EXPECT_TRUE(r.refused);
    // ERR.SELFTEST halted the card like any error: the die started finishes, the rest waits
    // for the host to resubmit from SEQ_NEXT
    card->wait_idle(4 * (kKeygenCycles + 2000));
    const uint64_t next = card->seq_next();
    ASSERT_GE(next, 1u);
    auto want = sw.run(uids);
    expect_records(card->records(), 0, std::vector<Record>(want.begin(), want.begin() + next), kik);
}

// ---------------------------------------------------------------------------------------------
// A failed LOAD_KIK leaves no KIK anywhere: not in the card's register, not in sym_die's KDF.
// ---------------------------------------------------------------------------------------------
TEST(CardKeys, FailedLoadKikClearsTheKdfCopyAndNoDieIsProvisioned) {
    auto card = make_card();
    Inputs in(111);
    const Bytes kik = in.bytes(32), wrapped = ref::kw_wrap(test_dk(), kik);
    const Bytes entropy = in.bytes(48);
    card->load_kik(wrapped);
    card->instantiate(entropy, {}, 1000);
    EXPECT_EQ(card->dut().dbg_kdf_kik_o, 0u) << "the KIK enters the KDF with the first die";
    card->push_uids(in.uids(1), 1);
    card->wait_records(1, 4 * kKeygenCycles);
    EXPECT_EQ(card->dut().dbg_kdf_kik_o, 1u);

    Bytes bad = wrapped;
    bad[5] ^= 0x01;
    card->load_kik(bad);
    EXPECT_EQ(regs::kErrKikUnwrap.get(card->err()), 1u);
    EXPECT_EQ(regs::kStatusKikValid.get(card->status()), 0u);
    EXPECT_EQ(card->dut().dbg_kdf_kik_o, 0u) << "sym_die still holds the old KIK";
    card->write32(regs::kCtrl, regs::kCtrlClearErr.put(1));
    // no die is provisioned: refused with NO_KIK, no record, nothing started
    card->push_uids(in.uids(2), 2);
    card->run_until([&] { return card->err() != 0; }, 10000);
    EXPECT_EQ(card->err(), regs::kErrNoKik.put(1));
    EXPECT_EQ(card->err_seq(), 1u);
    card->run(2 * kKeygenCycles);
    EXPECT_EQ(card->records().size(), 1u);
    EXPECT_EQ(card->seq_next(), 1u);
    EXPECT_EQ(card->dut().dbg_kdf_kik_o, 0u);
}
