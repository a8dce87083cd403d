// The software engine end to end: every record checked as the die would and against the
// OpenSSL reference stream; KIK loading; ordering under concurrency; bounded resources.
#include <algorithm>
#include <thread>

#include <gtest/gtest.h>

#include "waferprov/reference.hpp"
#include "waferprov/software/aes.hpp"
#include "waferprov/software/software_engine.hpp"
#include "waferprov/test_vectors.hpp"

using namespace waferprov;
using namespace waferprov::software;
namespace ref = waferprov::reference;

namespace {

std::vector<wpid1::Uid> random_uids(size_t n) {
    std::vector<wpid1::Uid> out(n);
    for (auto& u : out) {
        Bytes b = ref::random_bytes(16);
        std::copy(b.begin(), b.end(), u.begin());
    }
    return out;
}

struct Fixture {
    DeviceKey dk;
    Bytes kik = ref::random_bytes(32);
    Bytes entropy = ref::random_bytes(48);
    Bytes pers = ref::random_bytes(20);
    std::unique_ptr<SoftwareEngine> engine;

    Fixture() {
        Bytes k = ref::random_bytes(32);
        std::copy(k.begin(), k.end(), dk.bytes.begin());
        engine = std::make_unique<SoftwareEngine>(dk);
        Bytes wrapped = ref::kw_wrap(dk.span(), kik);  // AES-KW(DK, KIK) via OpenSSL
        EXPECT_TRUE(engine->load_kik(wrapped).ok());
        EXPECT_TRUE(engine->instantiate(entropy, pers, 1u << 20).ok());
    }
};

}  // namespace

TEST(SoftwareEngine, RecordsMatchReferenceStreamAndPassTheDieCheck) {
    Fixture f;
    auto uids = random_uids(64);
    std::vector<wpid1::IdentityRecord> got;
    for (size_t off = 0; off < uids.size(); off += 16) {
        auto t = f.engine->submit(std::span(uids).subspan(off, 16));
        ASSERT_TRUE(t.ok()) << t.error().describe();
        auto recs = f.engine->collect(*t);
        ASSERT_TRUE(recs.ok());
        got.insert(got.end(), recs->begin(), recs->end());
    }
    ref::Drbg drbg(f.entropy, f.pers);
    auto expected = ref::identities(f.kik, drbg, uids);
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].sequence, i);
        EXPECT_EQ(got[i].serialize(), expected[i].record.serialize()) << "record " << i;
        EXPECT_EQ(ref::die_check(f.kik, got[i]), "") << "record " << i;
    }
}

TEST(SoftwareEngine, LoadKikRejectsWrongDeviceKeyAndLeavesEngineUnloaded) {
    Fixture f;
    Bytes other = ref::random_bytes(32);
    auto st = f.engine->load_kik(ref::kw_wrap(other, f.kik));
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, ErrorCode::kIntegrityFailure);
    EXPECT_NE(st.error().message.find("device key"), std::string::npos);
    auto uids = random_uids(1);
    auto t = f.engine->submit(uids);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error().code, ErrorCode::kNotLoaded);
    EXPECT_EQ(f.engine->load_kik(Bytes(39)).error().code, ErrorCode::kInvalidArgument);
}

TEST(SoftwareEngine, SubmitBeforeInstantiateIsAnError) {
    SoftwareEngine e(DeviceKey{});
    Bytes kik = ref::random_bytes(32);
    ASSERT_TRUE(e.load_kik(ref::kw_wrap(Bytes(32, 0), kik)).ok());
    auto uids = random_uids(1);
    EXPECT_EQ(e.submit(uids).error().code, ErrorCode::kNotInstantiated);
    EXPECT_EQ(e.reseed(Bytes(48)).error().code, ErrorCode::kNotInstantiated);
}

TEST(SoftwareEngine, BatchPastReseedIntervalIsRefusedWholeAndStateKept) {
    Fixture f;
    ASSERT_TRUE(f.engine->instantiate(f.entropy, f.pers, 10).ok());
    auto uids = random_uids(12);
    auto refused = f.engine->submit(uids);  // needs >= 12 generates, interval allows 10
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, ErrorCode::kReseedRequired);
    // Nothing was consumed: the next 8 identities are the first 8 of the reference stream.
    auto first = std::vector<wpid1::Uid>(uids.begin(), uids.begin() + 8);
    auto t = f.engine->submit(first);
    ASSERT_TRUE(t.ok());
    auto recs = f.engine->collect(*t);
    ref::Drbg drbg(f.entropy, f.pers);
    auto expected = ref::identities(f.kik, drbg, first);
    for (size_t i = 0; i < first.size(); ++i)
        EXPECT_EQ((*recs)[i].serialize(), expected[i].record.serialize());
    // After a reseed, generation continues and agrees with the reseeded reference.
    Bytes e2 = ref::random_bytes(48);
    ASSERT_TRUE(f.engine->reseed(e2).ok());
    drbg.reseed(e2);
    auto more = random_uids(5);
    auto t2 = f.engine->submit(more);
    ASSERT_TRUE(t2.ok());
    auto recs2 = f.engine->collect(*t2);
    auto expected2 = ref::identities(f.kik, drbg, more, 8);
    for (size_t i = 0; i < more.size(); ++i)
        EXPECT_EQ((*recs2)[i].serialize(), expected2[i].record.serialize());
}

TEST(SoftwareEngine, ConcurrentSubmittersConsumeTheStreamInSubmissionOrder) {
    Fixture f;
    constexpr int kThreads = 4, kBatches = 10, kBatch = 8;
    std::vector<std::vector<wpid1::IdentityRecord>> per_thread(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int b = 0; b < kBatches; ++b) {
                auto uids = random_uids(kBatch);
                auto ticket = f.engine->submit(uids);
                ASSERT_TRUE(ticket.ok());
                auto recs = f.engine->collect(*ticket);
                ASSERT_TRUE(recs.ok());
                per_thread[t].insert(per_thread[t].end(), recs->begin(), recs->end());
            }
        });
    }
    for (auto& th : threads) th.join();
    std::vector<wpid1::IdentityRecord> all;
    for (auto& v : per_thread) all.insert(all.end(), v.begin(), v.end());
    std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.sequence < b.sequence; });
    ASSERT_EQ(all.size(), size_t{kThreads * kBatches * kBatch});
    std::vector<wpid1::Uid> uids_in_order;
    for (size_t i = 0; i < all.size(); ++i) {
        ASSERT_EQ(all[i].sequence, i);
        uids_in_order.push_back(all[i].uid);
    }
    ref::Drbg drbg(f.entropy, f.pers);
    auto expected = ref::identities(f.kik, drbg, uids_in_order);
    for (size_t i = 0; i < all.size(); ++i)
        EXPECT_EQ(all[i].serialize(), expected[i].record.serialize()) << i;
}

TEST(SoftwareEngine, TicketsAreSingleUseAndBatchesBounded) {
    Fixture f;
    auto uids = random_uids(1);
    auto t = f.engine->submit(uids);
    ASSERT_TRUE(f.engine->collect(*t).ok());
    EXPECT_EQ(f.engine->collect(*t).error().code, ErrorCode::kNotFound);
    EXPECT_EQ(f.engine->submit({}).error().code, ErrorCode::kInvalidArgument);
    std::vector<wpid1::Uid> huge(SoftwareEngine::kMaxBatchSize + 1);
    EXPECT_EQ(f.engine->submit(huge).error().code, ErrorCode::kInvalidArgument);
    for (size_t i = 0; i < SoftwareEngine::kMaxPendingBatches; ++i)
        ASSERT_TRUE(f.engine->submit(uids).ok());
    EXPECT_EQ(f.engine->submit(uids).error().code, ErrorCode::kResourceExhausted);
}

TEST(SoftwareEngine, PrimitivesTakeOnlyCallerKeys) {
    Fixture f;
    Bytes key = ref::random_bytes(32), block = ref::random_bytes(16);
    auto enc = f.engine->aes_encrypt_block(key, block);
    ASSERT_TRUE(enc.ok());
    EXPECT_EQ(to_hex(*enc), to_hex(ref::aes_encrypt(key, block)));
    auto dec = f.engine->aes_decrypt_block(key, *enc);
    EXPECT_EQ(to_hex(*dec), to_hex(block));
    EXPECT_EQ(f.engine->aes_encrypt_block(key, Bytes(15)).error().code,
              ErrorCode::kInvalidArgument);
}
