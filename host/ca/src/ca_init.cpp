#include "waferprov/host/ca_init.hpp"

#include <openssl/obj_mac.h>
#include <openssl/pem.h>

#include "ca_internal.hpp"
#include "token_key.hpp"

namespace waferprov::host {

using namespace ca_detail;

namespace {

struct CaProfile {
    std::string common_name;
    std::string organization;
    int path_len = 0;
    std::chrono::system_clock::time_point not_before;
    int validity_years = 20;
};

Status add_conf_ext(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
    X509ExtPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
        return ossl::ossl_error(std::string("CA extension ") + OBJ_nid2sn(nid) + " = " + value);
    return ok_status();
}

// A CA certificate over `subject_key`, signed by `issuer_key` (issuer == nullptr: self-signed).
Result<ossl::X509Ptr> make_ca_certificate(const CaProfile& p, EVP_PKEY* subject_key, X509* issuer,
                                          EVP_PKEY* issuer_key) {
    ossl::X509Ptr x(X509_new());
    if (!x || X509_set_version(x.get(), X509_VERSION_3) != 1) return ossl::ossl_error("X509_new");
    WP_ASSIGN_OR_RETURN(Bytes serial_bytes, random_serial());
    ossl::Bn bn(BN_bin2bn(serial_bytes.data(), static_cast<int>(serial_bytes.size()), nullptr));
    Asn1IntegerPtr serial(bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr);
    if (!serial || X509_set_serialNumber(x.get(), serial.get()) != 1)
        return ossl::ossl_error("CA serial");

    X509NamePtr name(X509_NAME_new());
    if (!name) return ossl::ossl_error("CA subject");
    for (auto [nid, value] : {std::pair{NID_organizationName, &p.organization},
                              std::pair{NID_commonName, &p.common_name}}) {
        if (value->empty()) continue;
        if (X509_NAME_add_entry_by_NID(name.get(), nid, MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(value->data()),
                                       static_cast<int>(value->size()), -1, 0) != 1)
            return ossl::ossl_error("CA subject '" + *value + "'");
    }
    if (X509_set_subject_name(x.get(), name.get()) != 1 ||
        X509_set_issuer_name(x.get(),
                             issuer != nullptr ? X509_get_subject_name(issuer) : name.get()) != 1)
        return ossl::ossl_error("CA names");

    const auto not_after = p.not_before + std::chrono::hours(24 * 365) * p.validity_years +
                           std::chrono::hours(24 * (p.validity_years / 4));  // leap days, roughly
    WP_ASSIGN_OR_RETURN(Asn1TimePtr nb, asn1_time(p.not_before));
    WP_ASSIGN_OR_RETURN(Asn1TimePtr na, asn1_time(not_after));
    if (X509_set1_notBefore(x.get(), nb.get()) != 1 || X509_set1_notAfter(x.get(), na.get()) != 1 ||
        X509_set_pubkey(x.get(), subject_key) != 1)
        return ossl::ossl_error("CA validity / key");

    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : x.get(), x.get(), nullptr, nullptr, 0);
    const std::string bc = "critical,CA:TRUE,pathlen:" + std::to_string(p.path_len);
    WP_RETURN_IF_ERROR(add_conf_ext(x.get(), &ctx, NID_basic_constraints, bc.c_str()));
    // The manufacturer CA also signs the ledger's export manifests, hence digitalSignature.
    WP_RETURN_IF_ERROR(add_conf_ext(x.get(), &ctx, NID_key_usage,
                                    issuer != nullptr
                                        ? "critical,keyCertSign,cRLSign,digitalSignature"
                                        : "critical,keyCertSign,cRLSign"));
    WP_RETURN_IF_ERROR(add_conf_ext(x.get(), &ctx, NID_subject_key_identifier, "hash"));
    WP_RETURN_IF_ERROR(add_conf_ext(x.get(), &ctx, NID_authority_key_identifier, "keyid:always"));

    if (X509_sign(x.get(), issuer_key, EVP_sha256()) <= 0)
        return ossl::ossl_error("signing CA certificate");
    return x;
}

struct Root {
    ossl::Pkey key;
    ossl::X509Ptr cert;
};

Result<Root> make_root(const ChainOptions& o) {
    Root r;
    WP_ASSIGN_OR_RETURN(r.key, generate_p256_key());
    CaProfile p{o.organization.empty() ? "waferprov Development Root CA"
                                       : o.organization + " Development Root CA",
                o.organization, 1, o.not_before, o.validity_years};
    WP_ASSIGN_OR_RETURN(r.cert, make_ca_certificate(p, r.key.get(), nullptr, r.key.get()));
    return r;
}

CaProfile manufacturer_profile(const ChainOptions& o) {
    return CaProfile{manufacturer_ca_common_name(o), o.organization, 0, o.not_before,
                     o.validity_years};
}

Status check_options(const ChainOptions& o) {
    if (o.validity_years < 1 || o.validity_years > 100)
        return make_error(ErrorCode::kInvalidArgument, "CA validity must be 1..100 years");
    if (o.organization.size() > 40 || o.product.size() > 20)
        return make_error(
            ErrorCode::kInvalidArgument,
            "organization (<= 40) or product (<= 20 characters) too long for a CA name");
    return ok_status();
}

Status write_chain(const ChainFiles& f, const Root& root, X509* ca_cert) {
    WP_ASSIGN_OR_RETURN(std::string root_pem, certificate_to_pem(root.cert.get()));
    WP_ASSIGN_OR_RETURN(std::string root_key_pem, private_key_to_pem(root.key.get()));
    WP_ASSIGN_OR_RETURN(std::string ca_pem, certificate_to_pem(ca_cert));
    WP_RETURN_IF_ERROR(write_new_file(f.root_key, root_key_pem, 0600));
    secure_wipe(root_key_pem.data(), root_key_pem.size());
    WP_RETURN_IF_ERROR(write_new_file(f.root_cert, root_pem, 0644));
    WP_RETURN_IF_ERROR(write_new_file(f.ca_cert, ca_pem, 0644));
    return ok_status();
}

Status prepare_dir(const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
        return make_error(ErrorCode::kIo, "cannot create " + dir.string() + ": " + ec.message());
    return ok_status();
}

}  // namespace

Result<ChainFiles> init_pem_chain(const std::filesystem::path& dir, const ChainOptions& options) {
    WP_RETURN_IF_ERROR(check_options(options));
    ChainFiles f{dir / "root.pem", dir / "root.key", dir / "ca.pem", dir / "ca.key", {}};
    WP_RETURN_IF_ERROR(refuse_existing({f.root_cert, f.root_key, f.ca_cert, f.ca_key}));
    WP_RETURN_IF_ERROR(prepare_dir(dir));

    WP_ASSIGN_OR_RETURN(Root root, make_root(options));
    WP_ASSIGN_OR_RETURN(ossl::Pkey ca_key, generate_p256_key());
    WP_ASSIGN_OR_RETURN(ossl::X509Ptr ca_cert,
                        make_ca_certificate(manufacturer_profile(options), ca_key.get(),
                                            root.cert.get(), root.key.get()));
    WP_ASSIGN_OR_RETURN(std::string ca_key_pem, private_key_to_pem(ca_key.get()));
    Status st = write_new_file(f.ca_key, ca_key_pem, 0600);
    secure_wipe(ca_key_pem.data(), ca_key_pem.size());
    WP_RETURN_IF_ERROR(st);
    WP_RETURN_IF_ERROR(write_chain(f, root, ca_cert.get()));
    f.signer = PemSignerConfig{f.ca_key, f.ca_cert};
    return f;
}

Result<ChainFiles> init_hsm_chain(const std::filesystem::path& dir,
                                  const HsmChainOptions& options) {
    WP_RETURN_IF_ERROR(check_options(options.chain));
    ChainFiles f{dir / "root.pem", dir / "root.key", dir / "ca.pem", {}, {}};
    WP_RETURN_IF_ERROR(refuse_existing({f.root_cert, f.root_key, f.ca_cert}));
    WP_ASSIGN_OR_RETURN(TokenSession token, open_ca_token(options));
    WP_RETURN_IF_ERROR(refuse_existing_key(token, options));
    WP_RETURN_IF_ERROR(prepare_dir(dir));

    // The key pair is generated in the token; the private half is sensitive and never leaves.
    WP_ASSIGN_OR_RETURN(TokenKey key, generate_ca_key(token, options));
    // From here on a failure leaves the new key pair behind; destroy it so a retry with the
    // same label works.
    auto result = [&]() -> Result<ChainFiles> {
        WP_ASSIGN_OR_RETURN(Root root, make_root(options.chain));
        WP_ASSIGN_OR_RETURN(
            ossl::X509Ptr ca_cert,
            make_ca_certificate(manufacturer_profile(options.chain), key.public_key.get(),
                                root.cert.get(), root.key.get()));
        ChainFiles out = f;
        WP_RETURN_IF_ERROR(write_chain(out, root, ca_cert.get()));
        out.signer = Pkcs11SignerConfig{options.module,  options.token_label, options.key_label,
                                        options.pin_env, out.ca_cert,         0};
        return out;
    }();
    if (!result.ok()) destroy_key(token, key);
    return result;
}

std::string manufacturer_ca_common_name(const ChainOptions& o) {
    std::string cn = (o.organization.empty() ? "waferprov" : o.organization) + " Manufacturer CA";
    if (!o.product.empty()) cn += " " + o.product;
    return cn;
}

Status check_chain_options(const ChainOptions& o) { return check_options(o); }

}  // namespace waferprov::host
