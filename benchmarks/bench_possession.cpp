// Final test's proof of possession (drivers/common possession.hpp, docs/final-test.md): what
// `serve` pays per part to verify a signature against the certificate the ledger holds.
//
//   BM_VerifyRawKey      baseline: OpenSSL's ECDSA P-256 / SHA-256 verify with a key parsed once
//   BM_VerifyPossession  possession::verify: parse the DER certificate, r||s to DER, verify
//   BM_SignPossession    possession::sign from d (what the tester simulator does per part)
//
// The figure is BM_VerifyPossession / BM_VerifyRawKey: the cost of taking the key from the
// certificate on every verification instead of caching parsed keys.
#include <openssl/core_names.h>
#include <openssl/x509.h>

#include <benchmark/benchmark.h>

#include "waferprov/ossl_sig.hpp"
#include "waferprov/possession.hpp"

namespace {

using namespace waferprov;

struct Fixture {
    ossl::Pkey key{EVP_EC_gen("P-256")};
    Bytes cert;
    SecretArray<32> d;
    Bytes msg = possession::challenge_message(wpid1::Uid{}, 42, possession::Nonce{});
    possession::Signature sig{};
    Bytes der_sig;

    Fixture() {
        ossl::X509Ptr c(X509_new());
        X509_set_version(c.get(), 2);
        ASN1_INTEGER_set(X509_get_serialNumber(c.get()), 1);
        X509_gmtime_adj(X509_getm_notBefore(c.get()), 0);
        X509_gmtime_adj(X509_getm_notAfter(c.get()), 3600);
        X509_set_issuer_name(c.get(), X509_get_subject_name(c.get()));
        X509_set_pubkey(c.get(), key.get());
        X509_sign(c.get(), key.get(), EVP_sha256());
        cert = ossl::der_of(c.get()).value();
        BIGNUM* raw = nullptr;
        EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_PRIV_KEY, &raw);
        ossl::Bn bn(raw);
        BN_bn2binpad(bn.get(), d.data(), 32);
        sig = possession::sign(d, msg).value();
        ossl::EcdsaSig es(ECDSA_SIG_new());
        ECDSA_SIG_set0(es.get(), BN_bin2bn(sig.data(), 32, nullptr),
                       BN_bin2bn(sig.data() + 32, 32, nullptr));
        unsigned char* p = nullptr;
        const int n = i2d_ECDSA_SIG(es.get(), &p);
        ossl::Buffer owner(p);
        der_sig.assign(p, p + n);
    }
};

Fixture& fixture() {
    static Fixture f;
    return f;
}

void BM_VerifyRawKey(benchmark::State& state) {
    auto& f = fixture();
    for (auto _ : state) {
        ossl::MdCtx md(EVP_MD_CTX_new());
        EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, f.key.get());
        const int ok = EVP_DigestVerify(md.get(), f.der_sig.data(), f.der_sig.size(), f.msg.data(),
                                        f.msg.size());
        if (ok != 1) state.SkipWithError("reference verify failed");
        benchmark::DoNotOptimize(ok);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyRawKey);

void BM_VerifyPossession(benchmark::State& state) {
    auto& f = fixture();
    for (auto _ : state) {
        auto ok = possession::verify(f.cert, f.msg, f.sig);
        if (!ok.ok() || !*ok) state.SkipWithError("possession::verify failed");
        benchmark::DoNotOptimize(ok);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyPossession);

void BM_SignPossession(benchmark::State& state) {
    auto& f = fixture();
    for (auto _ : state) {
        auto s = possession::sign(f.d, f.msg);
        if (!s.ok()) state.SkipWithError("possession::sign failed");
        benchmark::DoNotOptimize(s);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SignPossession);

}  // namespace

BENCHMARK_MAIN();
