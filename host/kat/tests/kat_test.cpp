// The KAT runner and the built-in vector files: the files are cross-checked against OpenSSL
// directly (never through a backend), every built-in file passes on every backend, and the
// runner demonstrably fails on wrong answers and names what is malformed.
#include <filesystem>
#include <fstream>
#include <iostream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "waferprov/backends.hpp"
#include "waferprov/kat.hpp"
#include "waferprov/reference.hpp"
#include "waferprov/test_vectors.hpp"
#include "waferprov/testing/temp_dir.hpp"

using namespace waferprov;
namespace ref = waferprov::reference;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const fs::path kVectors = WAFERPROV_VECTOR_DIR;

json load(const fs::path& p) {
    std::ifstream in(p);
    return json::parse(in);
}

Bytes hex(const json& v) { return from_hex(v.get<std::string>(), "vector").value(); }

struct Backend {
    std::unique_ptr<Accelerator> engine;
    kat::Options options;
    explicit Backend(const std::string& name) {
        BackendOptions o{name, {}};
        engine = std::move(make_backend(o)).value();
        options.wrap_kik = [o](ByteSpan kik) { return wrap_kik_for(o, kik); };
    }
};

// Modified copies of the built-in files, removed when the test program ends.
const fs::path& scratch() {
    static const waferprov::testing::TempDir dir("kat");
    return dir.path();
}

fs::path write_temp(const std::string& name, const json& doc) {
    fs::path p = scratch() / name;
    std::ofstream(p) << doc.dump();
    return p;
}

}  // namespace

TEST(BuiltinVectors, Wpid1FileAgreesWithOpenSslDirectly) {
    json doc = load(kVectors / "wpid1.json");
    ASSERT_EQ(doc["algorithm"], "WPID-1");
    size_t checked = 0;
    for (const auto& g : doc["testGroups"]) {
        Bytes kik = hex(g["kik"]);
        ref::Drbg drbg(hex(g["entropy"]), hex(g["personalization"]));
        for (const auto& t : g["tests"]) {
            wpid1::Uid uid;
            Bytes u = hex(t["uid"]);
            std::copy(u.begin(), u.end(), uid.begin());
            auto id = ref::identities(kik, drbg, {uid})[0];
            const bool same = to_hex(id.record.x) == t["qx"] && to_hex(id.record.y) == t["qy"] &&
                              to_hex(id.record.wrapped) == t["wrapped"];
            EXPECT_EQ(same, t["result"] == "valid") << "tcId " << t["tcId"];
            if (t["result"] == "valid") {
                wpid1::IdentityRecord r = id.record;
                EXPECT_EQ(ref::die_check(kik, r), "");
            }
            ++checked;
        }
    }
    EXPECT_GE(checked, 25u);
}

TEST(BuiltinVectors, P256BaseMulFileAgreesWithOpenSslDirectly) {
    json doc = load(kVectors / "p256_basemul.json");
    size_t valid = 0, invalid = 0;
    for (const auto& t : doc["testGroups"][0]["tests"]) {
        auto q = ref::base_mul(hex(t["d"]));
        if (t["result"] == "valid") {
            ASSERT_TRUE(q.has_value()) << t["tcId"];
            EXPECT_EQ(to_hex(q->x), t["qx"]);
            EXPECT_EQ(to_hex(q->y), t["qy"]);
            ++valid;
        } else {
            EXPECT_FALSE(q.has_value()) << t["tcId"];
            ++invalid;
        }
    }
    EXPECT_GE(valid, 30u);
    EXPECT_EQ(invalid, 5u);
}

TEST(BuiltinVectors, EveryFilePassesOnEveryBackendWithNothingSkippedOnSoftware) {
    size_t files = 0;
    for (const auto& name : available_backends()) {
        // A backend built for hardware that is absent here (xdma without a card) is skipped,
        // saying so; every other one must open.
        if (auto made = make_backend(BackendOptions{name, {}});
            !made.ok() && made.error().code == ErrorCode::kUnavailable) {
            std::cout << "backend " << name << " skipped: " << made.error().describe() << "\n";
            continue;
        }
        Backend b(name);
        for (const auto& e : fs::recursive_directory_iterator(kVectors)) {
            if (e.path().extension() != ".json") continue;
            auto c = kat::run_file(*b.engine, e.path(), b.options);
            ASSERT_TRUE(c.ok()) << e.path() << ": " << c.error().describe();
            EXPECT_EQ(c->failed, 0u)
                << e.path() << ": " << (c->failures.empty() ? "" : c->failures[0]);
            if (name == "software") {
                EXPECT_GT(c->passed, 0u) << e.path();
                EXPECT_EQ(c->skipped, 0u) << e.path();
            } else {
                // The card runs every file on its self-test path (issue #15) and skips only
                // what it cannot take (AES-128/192 keys, long inputs), naming itself.
                EXPECT_GT(c->passed, 0u) << e.path();
                for (const auto& why : c->skip_reasons)
                    EXPECT_NE(why.find("backend " + name + ": the card's"), std::string::npos)
                        << why;
            }
            ++files;
        }
    }
    EXPECT_GE(files, 5u);
}

TEST(KatRunner, CountsAWrongWycheproofAnswerAsFailed) {
    json doc = load(kVectors / "wycheproof/aes_cmac_test.json");
    auto& t = doc["testGroups"][0]["tests"][0];
    ASSERT_EQ(t["result"], "valid");
    std::string tag = t["tag"];
    tag[0] = tag[0] == '0' ? '1' : '0';
    t["tag"] = tag;
    Backend b("software");
    auto c = kat::run_file(*b.engine, write_temp("cmac.json", doc), b.options);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->failed, 1u);
    ASSERT_EQ(c->failures.size(), 1u);
    EXPECT_NE(c->failures[0].find("tcId 1"), std::string::npos);
}

TEST(KatRunner, CountsAWrongWpid1RecordAsFailed) {
    json doc = load(kVectors / "wpid1.json");
    auto& t = doc["testGroups"][0]["tests"][5];
    std::string qx = t["qx"];
    qx[63] = qx[63] == 'a' ? 'b' : 'a';
    t["qx"] = qx;
    Backend b("software");
    auto c = kat::run_file(*b.engine, write_temp("wpid1.json", doc), b.options);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->failed, 1u);
}

TEST(KatRunner, NamesTheMalformedFieldAndCase) {
    Backend b("software");
    json doc = load(kVectors / "p256_basemul.json");
    doc["testGroups"][0]["tests"][2].erase("d");
    auto c = kat::run_file(*b.engine, write_temp("bm.json", doc), b.options);
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.error().message.find("tcId 3"), std::string::npos) << c.error().message;
    EXPECT_NE(c.error().message.find("'d'"), std::string::npos) << c.error().message;

    json bad_hex = load(kVectors / "p256_basemul.json");
    bad_hex["testGroups"][0]["tests"][0]["d"] = "xyz";
    auto c2 = kat::run_file(*b.engine, write_temp("bm2.json", bad_hex), b.options);
    ASSERT_FALSE(c2.ok());
    EXPECT_NE(c2.error().message.find("tcId 1"), std::string::npos);

    json unknown = {{"algorithm", "ROT13"}, {"testGroups", json::array()}};
    auto c3 = kat::run_file(*b.engine, write_temp("u.json", unknown), b.options);
    ASSERT_FALSE(c3.ok());
    EXPECT_NE(c3.error().message.find("ROT13"), std::string::npos);

    fs::path garbage = scratch() / "garbage.json";
    std::ofstream(garbage) << "{ not json";
    auto c4 = kat::run_file(*b.engine, garbage, b.options);
    ASSERT_FALSE(c4.ok());
    EXPECT_NE(c4.error().message.find("not valid JSON"), std::string::npos);
}
