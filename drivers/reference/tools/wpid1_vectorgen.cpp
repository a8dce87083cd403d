// Generates testbench/vectors/p256_basemul.json and wpid1.json with the OpenSSL reference model
// (drivers/reference), never with a backend. Inputs are derived from SHA-256 of fixed labels,
// so the files regenerate byte for byte.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <openssl/sha.h>
#include <nlohmann/json.hpp>

#include "waferprov/reference.hpp"

using namespace waferprov;
namespace ref = waferprov::reference;
using json = nlohmann::ordered_json;

namespace {

Bytes derive(const std::string& label, size_t n) {
    Bytes out;
    for (uint32_t i = 0; out.size() < n; ++i) {
        std::string in = label + "#" + std::to_string(i);
        uint8_t h[32];
        SHA256(reinterpret_cast<const uint8_t*>(in.data()), in.size(), h);
        out.insert(out.end(), h, h + 32);
    }
    out.resize(n);
    return out;
}

Bytes from(const char* h) { return from_hex(h, "constant").value(); }

Bytes add_small(Bytes v, int delta) {  // v + delta for small |delta|, big-endian, mod 2^256
    int carry = delta;
    for (size_t i = v.size(); i-- > 0 && carry != 0;) {
        int s = v[i] + carry;
        v[i] = static_cast<uint8_t>(s & 0xff);
        carry = s >> 8;  // arithmetic shift keeps borrows negative
    }
    return v;
}

json basemul_case(int id, const std::string& comment, const Bytes& d) {
    json t;
    t["tcId"] = id;
    t["comment"] = comment;
    t["d"] = to_hex(d);
    auto q = ref::base_mul(d);
    t["qx"] = q ? to_hex(q->x) : "";
    t["qy"] = q ? to_hex(q->y) : "";
    t["result"] = q ? "valid" : "invalid";
    return t;
}

json basemul_file() {
    const Bytes n = from("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    const Bytes p = from("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff");
    Bytes zero(32, 0), ones(32, 0xff);
    std::vector<std::pair<std::string, Bytes>> cases = {
        {"d = 1", add_small(zero, 1)},
        {"d = 2", add_small(zero, 2)},
        {"d = 3", add_small(zero, 3)},
        {"d = n - 1", add_small(n, -1)},
        {"d = n - 2", add_small(n, -2)},
        {"d = n - 3", add_small(n, -3)},
        {"RFC 6979 A.2.5 private key",
         from("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")},
    };
    // (n - 1) / 2 and (n + 1) / 2
    Bytes half(32, 0);
    {
        unsigned rem = 0;
        Bytes nm1 = add_small(n, -1);
        for (size_t i = 0; i < 32; ++i) {
            unsigned cur = (rem << 8) | nm1[i];
            half[i] = static_cast<uint8_t>(cur / 2);
            rem = cur % 2;
        }
    }
    cases.push_back({"d = (n - 1) / 2", half});
    cases.push_back({"d = (n + 1) / 2", add_small(half, 1)});
    for (int bit = 0; bit < 256; bit += 15) {
        Bytes d(32, 0);
        d[31 - bit / 8] = static_cast<uint8_t>(1u << (bit % 8));
        cases.push_back({"d = 2^" + std::to_string(bit), d});
    }
    {
        Bytes d(32, 0);
        d[0] = 0x80;
        cases.push_back({"d = 2^255", d});
        Bytes runs(32, 0);
        for (size_t i = 0; i < 32; ++i) runs[i] = (i / 4) % 2 ? 0x00 : 0xff;
        runs[0] = 0x0f;
        cases.push_back({"long runs of ones and zeros", runs});
        Bytes low(32, 0);
        for (size_t i = 16; i < 32; ++i) low[i] = 0xff;
        cases.push_back({"d = 2^128 - 1", low});
    }
    for (int i = 0; i < 24; ++i)
        cases.push_back({"pseudorandom", derive("basemul random " + std::to_string(i), 32)});
    cases.push_back({"d = 0", zero});
    cases.push_back({"d = n", n});
    cases.push_back({"d = n + 1", add_small(n, 1)});
    cases.push_back({"d = p", p});
    cases.push_back({"d = 2^256 - 1", ones});

    json tests = json::array();
    int id = 1;
    for (const auto& [comment, d] : cases) tests.push_back(basemul_case(id++, comment, d));
    json doc;
    doc["algorithm"] = "P256-BASEMUL";
    doc["schema"] = "p256_basemul_test_schema_v1";
    doc["generatorVersion"] = "wpid1_vectorgen 1";
    doc["numberOfTests"] = tests.size();
    doc["notes"] = {{"invalid", "d = 0 or d >= n: the backend must reject the scalar"}};
    doc["testGroups"] = json::array({{{"type", "P256BaseMul"}, {"tests", tests}}});
    return doc;
}

json wpid1_file() {
    json groups = json::array();
    int id = 1;
    const std::vector<size_t> pers_lens = {0, 16, 48};
    const std::vector<size_t> counts = {12, 8, 8};
    for (size_t g = 0; g < pers_lens.size(); ++g) {
        const std::string gl = "wpid1 group " + std::to_string(g);
        Bytes kik = derive(gl + " kik", 32), entropy = derive(gl + " entropy", 48);
        Bytes pers = derive(gl + " personalization", pers_lens[g]);
        std::vector<wpid1::Uid> uids(counts[g]);
        for (size_t i = 0; i < uids.size(); ++i) {
            Bytes u = derive(gl + " uid " + std::to_string(i), 16);
            std::copy(u.begin(), u.end(), uids[i].begin());
        }
        if (g == 0) {  // a run of equal UIDs: a retest still consumes fresh DRBG output
            uids[3] = uids[2];
        }
        ref::Drbg drbg(entropy, pers);
        auto ids = ref::identities(kik, drbg, uids);
        json tests = json::array();
        for (size_t i = 0; i < ids.size(); ++i) {
            const auto& r = ids[i].record;
            json t;
            t["tcId"] = id++;
            t["comment"] = i == 3 && g == 0 ? "same UID as the previous case: a new identity" : "";
            t["uid"] = to_hex(r.uid);
            t["qx"] = to_hex(r.x);
            t["qy"] = to_hex(r.y);
            t["wrapped"] = to_hex(r.wrapped);
            t["result"] = "valid";
            tests.push_back(t);
        }
        if (g == 1) {  // a listed record that is wrong (one bit of wrapped flipped): must not match
            Bytes u = derive(gl + " uid extra", 16);
            wpid1::Uid uid;
            std::copy(u.begin(), u.end(), uid.begin());
            auto extra = ref::identities(kik, drbg, {uid}, ids.size());
            auto r = extra[0].record;
            r.wrapped[39] ^= 1;
            json t;
            t["tcId"] = id++;
            t["comment"] = "listed wrapped key has one bit flipped";
            t["uid"] = to_hex(r.uid);
            t["qx"] = to_hex(r.x);
            t["qy"] = to_hex(r.y);
            t["wrapped"] = to_hex(r.wrapped);
            t["result"] = "invalid";
            tests.push_back(t);
        }
        json grp;
        grp["type"] = "Wpid1Stream";
        grp["kik"] = to_hex(kik);
        grp["entropy"] = to_hex(entropy);
        grp["personalization"] = to_hex(pers);
        grp["tests"] = tests;
        groups.push_back(grp);
    }
    json doc;
    doc["algorithm"] = "WPID-1";
    doc["schema"] = "wpid1_test_schema_v1";
    doc["generatorVersion"] = "wpid1_vectorgen 1";
    doc["numberOfTests"] = id - 1;
    doc["notes"] = {
        {"stream", "each group runs on a freshly instantiated DRBG; tests in stream order"},
        {"invalid", "the listed record is not what WPID-1 yields; the backend must differ"}};
    doc["testGroups"] = groups;
    return doc;
}

void write(const std::filesystem::path& path, const json& doc) {
    std::ofstream out(path);
    out << doc.dump(2) << "\n";
    if (!out) throw std::runtime_error("cannot write " + path.string());
    std::cout << "wrote " << path.string() << "\n";
}

// Prints the worked example of docs/identity-spec.md: the first identity of wpid1.json's
// first group with every intermediate value.
void worked_example() {
    const std::string gl = "wpid1 group 0";
    Bytes kik = derive(gl + " kik", 32), entropy = derive(gl + " entropy", 48);
    Bytes u = derive(gl + " uid 0", 16);
    wpid1::Uid uid;
    std::copy(u.begin(), u.end(), uid.begin());
    Bytes dk(32);
    for (size_t i = 0; i < 32; ++i) dk[i] = static_cast<uint8_t>(0xd0 + i);
    std::cout << "DK (test device key)   " << to_hex(dk) << "\n";
    std::cout << "KIK                    " << to_hex(kik) << "\n";
    std::cout << "AES-KW(DK, KIK)        " << to_hex(ref::kw_wrap(dk, kik)) << "\n";
    std::cout << "entropy                " << to_hex(entropy) << "\n";
    std::cout << "personalization        (empty)\n";
    std::cout << "UID                    " << to_hex(u) << "\n";
    for (uint32_t i = 1; i <= 2; ++i) {
        auto m = wpid1::kdf_fixed_input(i, uid);
        std::cout << "CMAC input K(" << i << ")         " << to_hex(m) << "\n";
        std::cout << "K(" << i << ")                   " << to_hex(ref::cmac(kik, m)) << "\n";
    }
    std::cout << "KEK (KBKDF)            " << to_hex(ref::kek(kik, u)) << "\n";
    {
        // CTR_DRBG instantiate spelled out with single AES blocks: Key = 0, V = 0, then
        // Update(seed_material): temp = AES(Key, V+1) || AES(Key, V+2) || AES(Key, V+3).
        Bytes key(32, 0), temp;
        for (uint8_t i = 1; i <= 3; ++i) {
            Bytes v(16, 0);
            v[15] = i;
            Bytes b = ref::aes_encrypt(key, v);
            temp.insert(temp.end(), b.begin(), b.end());
        }
        for (size_t i = 0; i < 48; ++i) temp[i] ^= entropy[i];
        std::cout << "DRBG Key after inst.   " << to_hex(ByteSpan(temp.data(), 32)) << "\n";
        std::cout << "DRBG V after inst.     " << to_hex(ByteSpan(temp.data() + 32, 16)) << "\n";
    }
    ref::Drbg drbg(entropy, {});
    Bytes d = drbg.generate(32);
    std::cout << "Generate #1 = d        " << to_hex(d) << "\n";
    auto q = *ref::base_mul(d);
    std::cout << "Q.x                    " << to_hex(q.x) << "\n";
    std::cout << "Q.y                    " << to_hex(q.y) << "\n";
    std::cout << "wrapped = AES-KW(KEK,d) " << to_hex(ref::kw_wrap(ref::kek(kik, u), d)) << "\n";
    ref::Drbg drbg2(entropy, {});
    auto id = ref::identities(kik, drbg2, {uid})[0];
    auto rec = id.record.serialize();
    std::cout << "record (128 bytes)     " << to_hex(rec) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && std::string(argv[1]) == "--worked-example") {
        worked_example();
        return 0;
    }
    if (argc != 2) {
        std::cerr << "usage: wpid1_vectorgen OUT_DIR | --worked-example\n";
        return 2;
    }
    try {
        const std::filesystem::path dir = argv[1];
        write(dir / "p256_basemul.json", basemul_file());
        write(dir / "wpid1.json", wpid1_file());
    } catch (const std::exception& e) {
        std::cerr << "wpid1_vectorgen: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
