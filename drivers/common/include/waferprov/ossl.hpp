// OpenSSL objects in unique_ptrs with per-type deleters (after BoringSSL's bssl::UniquePtr):
// no raw *_free anywhere else in the code base. ossl_error() drains OpenSSL's error queue into
// an Error with the caller's context, so a failure never leaves stale errors behind for the next
// call on the same thread.
#pragma once

#include <memory>
#include <string>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/x509.h>

#include "waferprov/bytes.hpp"
#include "waferprov/result.hpp"

namespace waferprov::ossl {

template <class T, void (*F)(T*)>
struct Deleter {
    void operator()(T* p) const noexcept { F(p); }
};

template <class T, void (*F)(T*)>
using Ptr = std::unique_ptr<T, Deleter<T, F>>;

using CipherCtx = Ptr<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using Cipher = Ptr<EVP_CIPHER, EVP_CIPHER_free>;
using Mac = Ptr<EVP_MAC, EVP_MAC_free>;
using MacCtx = Ptr<EVP_MAC_CTX, EVP_MAC_CTX_free>;
using Kdf = Ptr<EVP_KDF, EVP_KDF_free>;
using KdfCtx = Ptr<EVP_KDF_CTX, EVP_KDF_CTX_free>;
using Rand = Ptr<EVP_RAND, EVP_RAND_free>;
using RandCtx = Ptr<EVP_RAND_CTX, EVP_RAND_CTX_free>;
using Pkey = Ptr<EVP_PKEY, EVP_PKEY_free>;
using PkeyCtx = Ptr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using MdCtx = Ptr<EVP_MD_CTX, EVP_MD_CTX_free>;
using EcGroup = Ptr<EC_GROUP, EC_GROUP_free>;
using EcPoint = Ptr<EC_POINT, EC_POINT_free>;
using Bn = Ptr<BIGNUM, BN_clear_free>;
using BnCtx = Ptr<BN_CTX, BN_CTX_free>;
using X509Ptr = Ptr<X509, X509_free>;
using X509Store = Ptr<X509_STORE, X509_STORE_free>;
using X509StoreCtx = Ptr<X509_STORE_CTX, X509_STORE_CTX_free>;
using Bio = Ptr<BIO, BIO_free_all>;

// A STACK_OF(X509) that owns its certificates (sk_X509_pop_free).
void x509_stack_free(STACK_OF(X509) * stack) noexcept;
using X509Stack = Ptr<STACK_OF(X509), x509_stack_free>;

// A buffer OpenSSL allocated (OPENSSL_malloc/OPENSSL_memdup), freed with OPENSSL_free.
void buffer_free(unsigned char* buffer) noexcept;
using Buffer = Ptr<unsigned char, buffer_free>;

// The DER encoding of `cert` (the one certificate-to-DER helper of the code base).
Result<Bytes> der_of(const X509* cert);

// Takes another reference to `cert` and returns it as an owning handle.
Result<X509Ptr> share(X509* cert);

// Drains the thread's OpenSSL error queue into an Error{kCrypto, "<context>: <openssl text>"}.
Error ossl_error(const std::string& context);

// Clears the thread's OpenSSL error queue (after an expected failure, e.g. a rejected unwrap).
void clear_errors() noexcept;

}  // namespace waferprov::ossl
