// The card driver (drivers/card) over the Verilator transport: records byte-identical to the
// software engine (several batches in flight, across reseeds), each also checked as the die
// would check it with OpenSSL (drivers/reference); a bad wrapped KIK; the checks on every record
// and the deadlines, exercised through test-only Transport decorators defined here (the
// production path has no fault hooks); the card's own error path (ERR, recovery).
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <random>
#include <thread>

#include "waferprov/card/card_driver.hpp"
#include "waferprov/card/card_regs.hpp"
#include "waferprov/reference.hpp"
#include "waferprov/software/aes.hpp"
#include "waferprov/software/software_engine.hpp"
#include "waferprov/verilator/verilator_transport.hpp"

using namespace waferprov;
using namespace std::chrono_literals;
namespace regs = waferprov::card::regs;

namespace {

std::mt19937_64& rng() {
    static std::mt19937_64 r(0x44525652);  // "DRVR"
    return r;
}
Bytes random_bytes(size_t n) {
    Bytes b(n);
    for (auto& x : b) x = static_cast<uint8_t>(rng()());
    return b;
}
std::vector<wpid1::Uid> random_uids(size_t n) {
    std::vector<wpid1::Uid> out(n);
    for (auto& u : out)
        for (auto& x : u) x = static_cast<uint8_t>(rng()());
    return out;
}

software::DeviceKey test_dk() {
    auto k = software::test_device_key();
    EXPECT_TRUE(k.ok());
    return *k;
}

Bytes wrap_under_test_dk(const Bytes& kik) {
    auto w = software::kw_wrap(test_dk().span(), kik);
    EXPECT_TRUE(w.ok());
    return *w;
}

// A transport that forwards to the real Verilator transport, with test-only hooks.
class Decorator : public card::Transport {
public:
    explicit Decorator(std::unique_ptr<card::Transport> inner) : inner_(std::move(inner)) {}

    std::function<void(uint32_t, uint32_t&)> on_read32;         // may change the value read
    std::function<bool(std::span<const uint8_t>)> on_requests;  // false: swallow the packet
    std::function<void(std::span<uint8_t>)> on_records;         // may corrupt what was read

    Result<uint32_t> read32(uint32_t offset) override {
        auto v = inner_->read32(offset);
        if (v.ok() && on_read32) {
            uint32_t x = *v;
            on_read32(offset, x);
            return x;
        }
        return v;
    }
    Status write32(uint32_t offset, uint32_t value) override {
        return inner_->write32(offset, value);
    }
    Status write_requests(std::span<const uint8_t> bytes,
                          std::chrono::milliseconds timeout) override {
        if (on_requests && !on_requests(bytes)) return ok_status();
        return inner_->write_requests(bytes, timeout);
    }
    Status read_records(std::span<uint8_t> out, std::chrono::milliseconds timeout) override {
        WP_RETURN_IF_ERROR(inner_->read_records(out, timeout));
        if (on_records) on_records(out);
        return ok_status();
    }
    Status wait_event(std::chrono::milliseconds timeout) override {
        return inner_->wait_event(timeout);
    }
    std::string describe() const override { return "test(" + inner_->describe() + ")"; }

    card::Transport& inner() { return *inner_; }

private:
    std::unique_ptr<card::Transport> inner_;
};

card::CardOptions sim_options() {
    card::CardOptions o;
    o.backend_name = "verilator";
    o.command_timeout = 60s;
    o.records_timeout_base = 60s;
    o.records_timeout_per_die = 1s;
    return o;
}

std::unique_ptr<card::Transport> sim_transport(uint32_t engines = 4) {
    verilator::VerilatorOptions vo;
    vo.engines = engines;
    auto t = verilator::make_verilator_transport(vo);
    EXPECT_TRUE(t.ok()) << t.error().describe();
    return std::move(*t);
}

// The card (through `decorator` if given) and the software engine, loaded and instantiated
// alike.
struct Pair {
    Decorator* deco = nullptr;
    std::unique_ptr<Accelerator> card;
    software::SoftwareEngine soft{test_dk()};
    Bytes kik = random_bytes(32);

    explicit Pair(uint64_t interval = wpid1::kMaxReseedInterval, bool decorate = false,
                  card::CardOptions opts = sim_options()) {
        std::unique_ptr<card::Transport> t = sim_transport();
        if (decorate) {
            auto d = std::make_unique<Decorator>(std::move(t));
            deco = d.get();
            t = std::move(d);
        }
        auto c = card::make_card_accelerator(std::move(t), opts);
        EXPECT_TRUE(c.ok()) << c.error().describe();
        card = std::move(*c);
        const Bytes wrapped = wrap_under_test_dk(kik);
        EXPECT_TRUE(card->load_kik(wrapped).ok());
        EXPECT_TRUE(soft.load_kik(wrapped).ok());
        instantiate(interval);
    }
    void instantiate(uint64_t interval) {
        const Bytes entropy = random_bytes(48), pers = random_bytes(11);
        auto st = card->instantiate(entropy, pers, interval);
        EXPECT_TRUE(st.ok()) << st.error().describe();
        EXPECT_TRUE(soft.instantiate(entropy, pers, interval).ok());
    }
    void reseed() {
        const Bytes entropy = random_bytes(48);
        auto st = card->reseed(entropy);
        EXPECT_TRUE(st.ok()) << st.error().describe();
        EXPECT_TRUE(soft.reseed(entropy).ok());
    }
};

void expect_same(const std::vector<wpid1::IdentityRecord>& got,
                 const std::vector<wpid1::IdentityRecord>& want, const Bytes& kik) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_TRUE(got[i].serialize() == want[i].serialize())
            << "record " << i << " (seq " << want[i].sequence
            << ") differs from the software engine's";
        EXPECT_EQ(reference::die_check(kik, got[i]), "") << "record " << i;
    }
}

}  // namespace

TEST(CardDriver, OpensTheCardAndReportsItsParameters) {
    auto c = card::make_card_accelerator(sim_transport(2), sim_options());
    ASSERT_TRUE(c.ok()) << c.error().describe();
    EXPECT_EQ((*c)->name(), "verilator");
    auto info = card::card_info(**c);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->engines, 2u);
    EXPECT_EQ(info->stream_bytes, 16u);
    EXPECT_EQ(info->version_major, regs::kMapVersionMajor);
    EXPECT_TRUE(info->selftest);  // CAPS.SELFTEST (map 1.2)
}

TEST(CardDriver, RecordsMatchSoftwareEngineWithBatchesInFlightAcrossReseeds) {
    // Interval 10: batches of 4, 3, 3 fit; the next one needs a reseed on both.
    Pair p(10);
    std::vector<std::vector<wpid1::Uid>> batches = {random_uids(4), random_uids(3), random_uids(3)};
    std::vector<BatchTicket> ct, st;
    for (const auto& b : batches) {  // three batches in flight before the first collect
        auto c = p.card->submit(b);
        ASSERT_TRUE(c.ok()) << c.error().describe();
        auto s = p.soft.submit(b);
        ASSERT_TRUE(s.ok());
        ct.push_back(*c);
        st.push_back(*s);
    }
    auto refused = p.card->submit(random_uids(2));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, ErrorCode::kReseedRequired);
    EXPECT_EQ(p.soft.submit(random_uids(2)).error().code, ErrorCode::kReseedRequired);
    // Reseed with batches still uncollected: they were drawn before it, as in the software
    // engine.
    p.reseed();
    const auto after = random_uids(5);
    auto c4 = p.card->submit(after);
    ASSERT_TRUE(c4.ok()) << c4.error().describe();
    auto s4 = p.soft.submit(after);
    ASSERT_TRUE(s4.ok());
    // Collected out of order.
    for (size_t i : {2u, 0u, 1u}) {
        auto got = p.card->collect(ct[i]);
        ASSERT_TRUE(got.ok()) << got.error().describe();
        auto want = p.soft.collect(st[i]);
        ASSERT_TRUE(want.ok());
        expect_same(*got, *want, p.kik);
    }
    auto got = p.card->collect(*c4);
    ASSERT_TRUE(got.ok()) << got.error().describe();
    auto want = p.soft.collect(*s4);
    expect_same(*got, *want, p.kik);
    EXPECT_EQ(got->front().sequence, 10u);
    EXPECT_EQ(p.card->collect(*c4).error().code, ErrorCode::kNotFound);
}

TEST(CardDriver, CollectsFromSeveralThreads) {
    Pair p;
    std::vector<std::vector<wpid1::Uid>> batches;
    std::vector<BatchTicket> ct;
    for (int i = 0; i < 4; ++i) {
        batches.push_back(random_uids(3));
        auto t = p.card->submit(batches.back());
        ASSERT_TRUE(t.ok());
        ct.push_back(*t);
    }
    std::vector<Result<std::vector<wpid1::IdentityRecord>>> got(
        4, make_error(ErrorCode::kInternal, "not run"));
    std::vector<std::thread> threads;
    for (size_t i = 0; i < 4; ++i)
        threads.emplace_back([&, i] { got[i] = p.card->collect(ct[i]); });
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < 4; ++i) {
        ASSERT_TRUE(got[i].ok()) << got[i].error().describe();
        auto s = p.soft.submit(batches[i]);
        auto want = p.soft.collect(*s);
        expect_same(*got[i], *want, p.kik);
    }
}

TEST(CardDriver, BadWrappedKikIsIntegrityFailureAndLeavesNoKik) {
    Pair p;
    Bytes bad = wrap_under_test_dk(p.kik);
    bad[17] ^= 0x01;
    auto st = p.card->load_kik(bad);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, ErrorCode::kIntegrityFailure) << st.error().describe();
    // The KIK loaded before is gone too.
    auto t = p.card->submit(random_uids(1));
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error().code, ErrorCode::kNotLoaded);
    EXPECT_EQ(p.card->load_kik(Bytes(39, 0)).error().code, ErrorCode::kInvalidArgument);
    // A good KIK again, a fresh DRBG on both, and the card matches the software engine.
    const Bytes good = wrap_under_test_dk(p.kik);
    ASSERT_TRUE(p.card->load_kik(good).ok());
    ASSERT_TRUE(p.soft.load_kik(good).ok());
    p.instantiate(wpid1::kMaxReseedInterval);
    const auto uids = random_uids(2);
    auto got = p.card->collect(*p.card->submit(uids));
    ASSERT_TRUE(got.ok()) << got.error().describe();
    expect_same(*got, *p.soft.collect(*p.soft.submit(uids)), p.kik);
}

TEST(CardDriver, RefusesRecordsThatDoNotMatchWhatWasSubmitted) {
    struct Case {
        const char* name;
        size_t byte;  // byte of the second record to flip
        const char* message;
    };
    for (const Case& c : {Case{"sequence", 7, "sequence number"}, Case{"uid", 8 + 3, "UID"},
                          Case{"off-curve Q", 56 + 31, "not a point on P-256"}}) {
        SCOPED_TRACE(c.name);
        Pair p(wpid1::kMaxReseedInterval, /*decorate=*/true);
        bool armed = true;
        p.deco->on_records = [&](std::span<uint8_t> out) {
            if (armed && out.size() >= 256) out[128 + c.byte] ^= 0x01;
            armed = false;
        };
        auto t = p.card->submit(random_uids(3));
        ASSERT_TRUE(t.ok());
        auto got = p.card->collect(*t);
        ASSERT_FALSE(got.ok());
        EXPECT_EQ(got.error().code, ErrorCode::kDeviceFault);
        EXPECT_NE(got.error().message.find(c.message), std::string::npos) << got.error().message;
        EXPECT_NE(got.error().message.find("record 1 "), std::string::npos) << got.error().message;
        // The card was zeroized: nothing more is drawn until the caller instantiates again
        // (the driver keeps no entropy); the KIK was reloaded from its wrapped form.
        auto again = p.card->submit(random_uids(1));
        ASSERT_FALSE(again.ok());
        EXPECT_EQ(again.error().code, ErrorCode::kNotInstantiated);
        p.instantiate(wpid1::kMaxReseedInterval);
        const auto uids = random_uids(2);
        auto ok = p.card->collect(*p.card->submit(uids));
        ASSERT_TRUE(ok.ok()) << ok.error().describe();
        expect_same(*ok, *p.soft.collect(*p.soft.submit(uids)), p.kik);
    }
}

TEST(CardDriver, ACardThatNeverDeliversTimesOut) {
    card::CardOptions o = sim_options();
    o.records_timeout_base = 300ms;
    o.records_timeout_per_die = 0us;
    Pair p(wpid1::kMaxReseedInterval, /*decorate=*/true, o);
    p.deco->on_requests = [](std::span<const uint8_t>) { return false; };  // a lost H2C packet
    auto t = p.card->submit(random_uids(2));
    ASSERT_TRUE(t.ok());
    const auto start = std::chrono::steady_clock::now();
    auto got = p.card->collect(*t);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code, ErrorCode::kTimeout) << got.error().describe();
    (void)start;
}

TEST(CardDriver, CardErrorIsDeviceFaultNamingTheBits) {
    Pair p(wpid1::kMaxReseedInterval, /*decorate=*/true);
    Decorator* d = p.deco;
    // Before the next packet, an access to an unmapped address: the card sets ERR.BUS, halts
    // and raises its interrupt; the packet is discarded, no record comes.
    d->on_requests = [d](std::span<const uint8_t>) {
        EXPECT_TRUE(d->inner().write32(0x300, 1).ok());
        d->on_requests = nullptr;
        return true;
    };
    auto t = p.card->submit(random_uids(2));
    ASSERT_TRUE(t.ok());
    auto got = p.card->collect(*t);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code, ErrorCode::kDeviceFault);
    EXPECT_NE(got.error().message.find("ERR BUS"), std::string::npos) << got.error().message;
    // Recovered: instantiate again and the stream matches the software engine's.
    p.instantiate(wpid1::kMaxReseedInterval);
    const auto uids = random_uids(2);
    auto ok = p.card->collect(*p.card->submit(uids));
    ASSERT_TRUE(ok.ok()) << ok.error().describe();
    expect_same(*ok, *p.soft.collect(*p.soft.submit(uids)), p.kik);
}

TEST(CardDriver, RefusesAnotherCardOrMapVersionByName) {
    {
        auto d = std::make_unique<Decorator>(sim_transport(1));
        d->on_read32 = [](uint32_t off, uint32_t& v) {
            if (off == regs::kVersion) v = regs::kVersionMajor.put(2) | regs::kVersionMinor.put(0);
        };
        auto c = card::make_card_accelerator(std::move(d), sim_options());
        ASSERT_FALSE(c.ok());
        EXPECT_EQ(c.error().code, ErrorCode::kUnsupported);
        EXPECT_NE(c.error().message.find("version 2.0"), std::string::npos) << c.error().message;
    }
    {
        auto d = std::make_unique<Decorator>(sim_transport(1));
        d->on_read32 = [](uint32_t off, uint32_t& v) {
            if (off == regs::kId) v = 0x12345678;
        };
        auto c = card::make_card_accelerator(std::move(d), sim_options());
        ASSERT_FALSE(c.ok());
        EXPECT_EQ(c.error().code, ErrorCode::kUnavailable);
        EXPECT_NE(c.error().message.find("0x12345678"), std::string::npos) << c.error().message;
    }
}

// The Accelerator's self-test primitives (what `kat` runs) go through the card's ST_* path when
// the card has it; what it cannot take is kUnsupported naming the backend, and a card built
// without the path (CAPS.SELFTEST = 0, made so here) offers none of them.
TEST(CardDriver, SelfTestPrimitivesRunOnTheCardAndWhatItCannotTakeIsUnsupported) {
    {
        auto c = card::make_card_accelerator(sim_transport(1), sim_options());
        ASSERT_TRUE(c.ok());
        const Capabilities caps = (*c)->capabilities();
        EXPECT_TRUE(caps.aes_block && caps.aes_cmac && caps.aes_kw && caps.p256_base_mul);
        const Bytes d = random_bytes(32), key = random_bytes(32), msg = random_bytes(40);
        auto q = (*c)->p256_base_mul(d);
        ASSERT_TRUE(q.ok()) << q.error().describe();
        const auto want = reference::base_mul(d);
        ASSERT_TRUE(want.has_value());
        EXPECT_EQ(q->x, want->x);
        EXPECT_EQ(q->y, want->y);
        auto mac = (*c)->aes_cmac(key, msg);
        ASSERT_TRUE(mac.ok()) << mac.error().describe();
        EXPECT_EQ(Bytes(mac->begin(), mac->end()), reference::cmac(key, msg));
        auto short_key = (*c)->aes_cmac(Bytes(16, 0), msg);
        ASSERT_FALSE(short_key.ok());
        EXPECT_EQ(short_key.error().code, ErrorCode::kUnsupported);
        EXPECT_NE(short_key.error().message.find("takes AES-256 keys only, not 128-bit ones"),
                  std::string::npos)
            << short_key.error().message;
        EXPECT_EQ((*c)->aes_kw_wrap(key, Bytes(256, 1)).error().code, ErrorCode::kUnsupported);
        // A length RFC 3394 rules out is a refusal, not something the card lacks.
        EXPECT_EQ((*c)->aes_kw_wrap(key, Bytes(12, 1)).error().code, ErrorCode::kInvalidArgument);
    }
    auto d = std::make_unique<Decorator>(sim_transport(1));
    d->on_read32 = [](uint32_t off, uint32_t& v) {
        if (off == regs::kCaps) v &= ~regs::kCapsSelftest.put(1);
    };
    auto c = card::make_card_accelerator(std::move(d), sim_options());
    ASSERT_TRUE(c.ok());
    const Capabilities caps = (*c)->capabilities();
    EXPECT_FALSE(caps.aes_block || caps.aes_cmac || caps.aes_kw || caps.p256_base_mul);
    auto q = (*c)->p256_base_mul(Bytes(32, 1));
    ASSERT_FALSE(q.ok());
    EXPECT_EQ(q.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(q.error().message.find("verilator"), std::string::npos) << q.error().message;
    EXPECT_NE(q.error().message.find("CAPS.SELFTEST = 0"), std::string::npos) << q.error().message;
}

// card::self_test: each operation on the card's datapath against OpenSSL (drivers/reference),
// with batches submitted before it that it reads off first and that still match the software
// engine.
TEST(CardDriver, SelfTestMatchesOpenSslAndLeavesTheBatchesAlone) {
    Pair p;
    using Op = card::SelfTestOp;
    const auto uids = random_uids(3);
    auto ticket = p.card->submit(uids);
    ASSERT_TRUE(ticket.ok());
    const Bytes key = random_bytes(32), block = random_bytes(16), msg = random_bytes(77),
                d = random_bytes(32);
    const Bytes key_data = random_bytes(248);
    auto run = [&](Op op, ByteSpan k, ByteSpan data) {
        auto r = card::self_test(*p.card, op, k, data);
        EXPECT_TRUE(r.ok()) << r.error().describe();
        return r.ok() ? *r : Bytes{};
    };
    EXPECT_EQ(run(Op::kAesEncrypt, key, block), reference::aes_encrypt(key, block));
    EXPECT_EQ(run(Op::kAesDecrypt, key, reference::aes_encrypt(key, block)), block);
    EXPECT_EQ(run(Op::kAesCmac, key, msg), reference::cmac(key, msg));
    EXPECT_EQ(run(Op::kAesCmac, key, {}), reference::cmac(key, {}));
    const Bytes wrapped = reference::kw_wrap(key, key_data);
    EXPECT_EQ(run(Op::kAesKwWrap, key, key_data), wrapped);
    EXPECT_EQ(run(Op::kAesKwUnwrap, key, wrapped), key_data);
    const auto q = reference::base_mul(d);
    ASSERT_TRUE(q.has_value());
    Bytes xy(q->x.begin(), q->x.end());
    xy.insert(xy.end(), q->y.begin(), q->y.end());
    EXPECT_EQ(run(Op::kP256BaseMul, {}, d), xy);
    auto got = p.card->collect(*ticket);
    ASSERT_TRUE(got.ok()) << got.error().describe();
    expect_same(*got, *p.soft.collect(*p.soft.submit(uids)), p.kik);
}

TEST(CardDriver, SelfTestRefusalsAreTypedErrorsAndTheCardRunsOn) {
    Pair p;
    using Op = card::SelfTestOp;
    const Bytes key = random_bytes(32);
    Bytes bad = reference::kw_wrap(key, random_bytes(32));
    bad[9] ^= 0x40;
    auto u = card::self_test(*p.card, Op::kAesKwUnwrap, key, bad);
    ASSERT_FALSE(u.ok());
    EXPECT_EQ(u.error().code, ErrorCode::kIntegrityFailure) << u.error().describe();
    auto z = card::self_test(*p.card, Op::kP256BaseMul, {}, Bytes(32, 0));
    ASSERT_FALSE(z.ok());
    EXPECT_EQ(z.error().code, ErrorCode::kInvalidScalar) << z.error().describe();
    auto len = card::self_test(*p.card, Op::kAesKwWrap, key, random_bytes(20));
    ASSERT_FALSE(len.ok());
    EXPECT_EQ(len.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(len.error().message.find("16..248 in steps of 8"), std::string::npos)
        << len.error().message;
    auto k = card::self_test(*p.card, Op::kAesEncrypt, random_bytes(16), random_bytes(16));
    ASSERT_FALSE(k.ok());
    EXPECT_EQ(k.error().code, ErrorCode::kInvalidArgument);
    // the refusals cleared ERR.SELFTEST: identities and self-tests go on
    const auto uids = random_uids(2);
    auto got = p.card->collect(*p.card->submit(uids));
    ASSERT_TRUE(got.ok()) << got.error().describe();
    expect_same(*got, *p.soft.collect(*p.soft.submit(uids)), p.kik);
    const Bytes m = random_bytes(40);
    auto c = card::self_test(*p.card, Op::kAesCmac, key, m);
    ASSERT_TRUE(c.ok()) << c.error().describe();
    EXPECT_EQ(*c, reference::cmac(key, m));
}

TEST(CardDriver, SelfTestRefusesACardWithoutSelfTestByName) {
    auto d = std::make_unique<Decorator>(sim_transport(1));
    d->on_read32 = [](uint32_t off, uint32_t& v) {
        if (off == regs::kCaps) v &= ~regs::kCapsSelftest.put(1);
    };
    auto c = card::make_card_accelerator(std::move(d), sim_options());
    ASSERT_TRUE(c.ok()) << c.error().describe();
    EXPECT_FALSE(card::card_info(**c)->selftest);
    auto r = card::self_test(**c, card::SelfTestOp::kAesCmac, Bytes(32, 1), Bytes(16, 2));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
    for (const char* part : {"verilator", "test(", "CAPS.SELFTEST = 0", "AES-256-CMAC"})
        EXPECT_NE(r.error().message.find(part), std::string::npos) << r.error().message;
    // and a backend that is no card at all
    software::SoftwareEngine soft{test_dk()};
    auto s = card::self_test(soft, card::SelfTestOp::kAesCmac, Bytes(32, 1), Bytes(16, 2));
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
}

TEST(VerilatorTransport, RefusesAnEngineCountNotBuilt) {
    verilator::VerilatorOptions vo;
    vo.engines = 3;
    auto t = verilator::make_verilator_transport(vo);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(t.error().message.find("1, 2, 4"), std::string::npos) << t.error().message;
}
