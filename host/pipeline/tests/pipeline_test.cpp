// The provisioning pipeline end to end on real components: the software engine, a PEM CA chain
// made by ca init, a SQLite ledger. Every record is checked as the die would (OpenSSL
// reference), every certificate against the chain with OpenSSL's verifier.
#include <unistd.h>

#include <filesystem>
#include <set>

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

#include "waferprov/host/ca_init.hpp"
#include "waferprov/host/ca_signers.hpp"
#include "waferprov/host/pipeline.hpp"
#include "waferprov/ossl.hpp"
#include "waferprov/reference.hpp"
#include "waferprov/software/software_engine.hpp"
#include "waferprov/test_vectors.hpp"
#include "waferprov/testing/temp_dir.hpp"

using namespace waferprov;
using namespace waferprov::host;
namespace ref = waferprov::reference;
namespace fs = std::filesystem;
using waferprov::testing::TempDir;

namespace {

void sk_X509_free_fn(STACK_OF(X509) * s) { sk_X509_free(s); }

ossl::X509Ptr load_pem(const fs::path& p) {
    FILE* f = std::fopen(p.c_str(), "r");
    X509* x = f ? PEM_read_X509(f, nullptr, nullptr, nullptr) : nullptr;
    if (f) std::fclose(f);
    return ossl::X509Ptr(x);
}

// A faulty accelerator: the real engine, with the public key of every `every`-th record
// knocked off the curve.
class FaultyEngine final : public Accelerator {
public:
    FaultyEngine(Accelerator& inner, size_t every) : inner_(inner), every_(every) {}
    std::string name() const override { return "faulty"; }
    Status load_kik(ByteSpan w) override { return inner_.load_kik(w); }
    Status instantiate(ByteSpan e, ByteSpan p, uint64_t i) override {
        return inner_.instantiate(e, p, i);
    }
    Status reseed(ByteSpan e) override { return inner_.reseed(e); }
    Result<BatchTicket> submit(std::span<const wpid1::Uid> u) override { return inner_.submit(u); }
    Result<std::vector<wpid1::IdentityRecord>> collect(BatchTicket t) override {
        auto r = inner_.collect(t);
        if (r.ok())
            for (auto& rec : *r)
                if (rec.sequence % every_ == 0) rec.y[31] ^= 1;
        return r;
    }
    Result<std::array<uint8_t, 16>> aes_encrypt_block(ByteSpan k, ByteSpan b) override {
        return inner_.aes_encrypt_block(k, b);
    }
    Result<std::array<uint8_t, 16>> aes_decrypt_block(ByteSpan k, ByteSpan b) override {
        return inner_.aes_decrypt_block(k, b);
    }
    Result<std::array<uint8_t, 16>> aes_cmac(ByteSpan k, ByteSpan m) override {
        return inner_.aes_cmac(k, m);
    }
    Result<Bytes> aes_kw_wrap(ByteSpan k, ByteSpan p) override { return inner_.aes_kw_wrap(k, p); }
    Result<SecureBytes> aes_kw_unwrap(ByteSpan k, ByteSpan w) override {
        return inner_.aes_kw_unwrap(k, w);
    }
    Result<P256Point> p256_base_mul(ByteSpan s) override { return inner_.p256_base_mul(s); }

private:
    Accelerator& inner_;
    size_t every_;
};

struct World {
    TempDir dir{"pipe"};
    Bytes kik = ref::random_bytes(32);
    std::unique_ptr<software::SoftwareEngine> engine;
    std::unique_ptr<Signer> signer;
    std::unique_ptr<Ledger> ledger;
    ossl::X509Ptr root, ca;

    explicit World(uint64_t quota = 100000) {
        auto files = init_pem_chain(dir.path() / "ca", ChainOptions{});
        EXPECT_TRUE(files.ok()) << files.error().describe();
        auto s = make_signer(files->signer);
        EXPECT_TRUE(s.ok()) << s.error().describe();
        signer = std::move(*s);
        root = load_pem(files->root_cert);
        ca = load_pem(files->ca_cert);
        software::DeviceKey dk;
        Bytes k = ref::random_bytes(32);
        std::copy(k.begin(), k.end(), dk.bytes.begin());
        engine = std::make_unique<software::SoftwareEngine>(dk);
        EXPECT_TRUE(engine->load_kik(ref::kw_wrap(dk.span(), kik)).ok());
        EXPECT_TRUE(engine->instantiate(ref::random_bytes(48), {}, 1u << 20).ok());
        auto l =
            Ledger::open(dir.path() / "ledger.sqlite", LedgerConfig{"JOB", "CUST", "PROD", quota});
        EXPECT_TRUE(l.ok()) << l.error().describe();
        ledger = std::move(*l);
    }

    bool verifies(const Bytes& der) {
        const uint8_t* p = der.data();
        ossl::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
        if (!cert) return false;
        ossl::Ptr<X509_STORE, X509_STORE_free> store(X509_STORE_new());
        X509_STORE_add_cert(store.get(), root.get());
        ossl::Ptr<STACK_OF(X509), sk_X509_free_fn> chain(sk_X509_new_null());
        sk_X509_push(chain.get(), ca.get());
        ossl::Ptr<X509_STORE_CTX, X509_STORE_CTX_free> ctx(X509_STORE_CTX_new());
        X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), chain.get());
        return X509_verify_cert(ctx.get()) == 1;
    }
};

std::vector<DieRequest> dies(size_t n, const std::string& lot = "LOT1", int wafer = 1) {
    std::vector<DieRequest> out;
    Bytes salt(16, 7);
    for (size_t i = 0; i < n; ++i) {
        DieRequest r;
        r.loc = DieLocation{lot, wafer, static_cast<int>(i % 20), static_cast<int>(i / 20),
                            lot + "-" + std::to_string(wafer)};
        r.uid = derive_uid(salt, r.loc);
        out.push_back(r);
    }
    return out;
}

PipelineOptions opts(int threads) {
    PipelineOptions o;
    o.threads = threads;
    o.batch_size = 16;
    o.product = "PROD";
    return o;
}

}  // namespace

TEST(Pipeline, EveryDieGetsAVerifiedIdentityInDieOrder) {
    World w;
    auto req = dies(200);
    std::vector<DieReport> reports;
    auto stats = provision(req, *w.engine, *w.signer, *w.ledger, opts(2), reports);
    ASSERT_TRUE(stats.ok()) << stats.error().describe();
    EXPECT_EQ(stats->provisioned, 200u);
    ASSERT_EQ(reports.size(), 200u);
    std::set<Bytes> serials;
    for (size_t i = 0; i < reports.size(); ++i) {
        const auto& r = reports[i];
        EXPECT_EQ(r.request.loc, req[i].loc);
        ASSERT_EQ(r.outcome, DieOutcome::kProvisioned) << r.message;
        ASSERT_TRUE(r.record.has_value());
        const LedgerRecord& rec = *r.record;
        wpid1::IdentityRecord ir;
        ir.uid = rec.uid;
        std::copy(rec.public_key.begin() + 1, rec.public_key.begin() + 33, ir.x.begin());
        std::copy(rec.public_key.begin() + 33, rec.public_key.end(), ir.y.begin());
        ir.wrapped = rec.wrapped;
        EXPECT_EQ(ref::die_check(w.kik, ir), "") << i;
        EXPECT_TRUE(w.verifies(rec.certificate_der)) << i;
        serials.insert(rec.serial);
    }
    EXPECT_EQ(serials.size(), 200u);
    auto v = w.ledger->verify();
    ASSERT_TRUE(v.ok());
    EXPECT_TRUE(v->ok());
}

TEST(Pipeline, SerialBaselineAndParallelRunsAgreeOnOutcomes) {
    World w;
    std::vector<DieReport> r1, r2;
    auto a = dies(64, "LOTA");
    auto b = dies(64, "LOTB");
    ASSERT_TRUE(provision(a, *w.engine, *w.signer, *w.ledger, opts(1), r1).ok());
    ASSERT_TRUE(provision(b, *w.engine, *w.signer, *w.ledger, opts(2), r2).ok());
    for (const auto& r : r1) EXPECT_EQ(r.outcome, DieOutcome::kProvisioned);
    for (const auto& r : r2) EXPECT_EQ(r.outcome, DieOutcome::kProvisioned);
    EXPECT_EQ(w.ledger->counts()->issued, 128u);
}

TEST(Pipeline, RetestGetsTheSameIdentityBackAndIsNotCountedAgain) {
    World w;
    auto req = dies(40);
    std::vector<DieReport> first, second;
    ASSERT_TRUE(provision(req, *w.engine, *w.signer, *w.ledger, opts(2), first).ok());
    auto stats = provision(req, *w.engine, *w.signer, *w.ledger, opts(2), second);
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->reissued, 40u);
    for (size_t i = 0; i < req.size(); ++i) {
        EXPECT_EQ(second[i].outcome, DieOutcome::kReissued);
        EXPECT_EQ(second[i].record->public_key, first[i].record->public_key);
        EXPECT_EQ(second[i].record->certificate_der, first[i].record->certificate_der);
    }
    EXPECT_EQ(w.ledger->quota()->used, 40u);
}

TEST(Pipeline, QuotaIsNeverExceeded) {
    World w(50);
    auto req = dies(80);
    std::vector<DieReport> reports;
    auto stats = provision(req, *w.engine, *w.signer, *w.ledger, opts(2), reports);
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->provisioned, 50u);
    EXPECT_EQ(stats->quota_refused, 30u);
    EXPECT_EQ(w.ledger->quota()->used, 50u);
    EXPECT_EQ(w.ledger->counts()->total(), 50u);
}

TEST(Pipeline, AFaultyAcceleratorNeverGetsACertificate) {
    World w;
    FaultyEngine faulty(*w.engine, 5);
    auto req = dies(50);
    std::vector<DieReport> reports;
    auto stats = provision(req, faulty, *w.signer, *w.ledger, opts(2), reports);
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->check_failed, 10u);
    for (const auto& r : reports) {
        if (r.outcome == DieOutcome::kCheckFailed) {
            EXPECT_FALSE(r.record.has_value());
            EXPECT_NE(r.message.find("not a point on P-256"), std::string::npos) << r.message;
            auto in_ledger = w.ledger->find_uid(r.request.uid);
            ASSERT_TRUE(in_ledger.ok());
            EXPECT_FALSE(in_ledger->has_value());
        }
    }
    EXPECT_EQ(w.ledger->counts()->total(), 40u);
}

TEST(Pipeline, AnotherUidAtAProvisionedLocationIsRefusedAndAlarmed) {
    World w;
    auto req = dies(10);
    std::vector<DieReport> reports;
    ASSERT_TRUE(provision(req, *w.engine, *w.signer, *w.ledger, opts(1), reports).ok());
    auto clash = req;
    clash[3].uid[0] ^= 0xff;  // another UID at (3, 0)
    std::vector<DieReport> again;
    auto stats =
        provision(std::span(clash).subspan(3, 1), *w.engine, *w.signer, *w.ledger, opts(1), again);
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(again[0].outcome, DieOutcome::kConflict);
    EXPECT_EQ(stats->conflicts, 1u);
}
