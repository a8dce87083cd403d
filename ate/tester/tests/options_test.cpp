// waferprov-tester's command line: what is required, what is refused and how it is named.
#include <gtest/gtest.h>

#include "options.hpp"

using namespace waferprov::tester;

namespace {

std::vector<std::string> base() {
    return {
        "--map",        "w.xml",   "--sites",     "16",      "--endpoint", "tcp://127.0.0.1:7450",
        "--job-id",     "J1",      "--tester-id", "SIM-01",  "--key",      "t.key",
        "--server-key", "s.pub",   "--kik",       "kik.hex", "--ca",       "ca.pem",
        "--root",       "root.pem"};
}

std::string error_of(std::vector<std::string> args) {
    std::string error;
    auto o = parse_options(args, error);
    EXPECT_FALSE(o.has_value());
    return error;
}

}  // namespace

TEST(TesterOptions, DefaultsFollowTheDocumentation) {
    std::string error;
    auto o = parse_options(base(), error);
    ASSERT_TRUE(o) << error;
    EXPECT_EQ(o->sites, 16);
    EXPECT_EQ(o->bins, std::vector<std::string>{"01"});
    EXPECT_EQ(o->index_ms, 0);
    EXPECT_EQ(o->program_ms, 0);
    EXPECT_EQ(o->fail_rate, 0);
    EXPECT_EQ(o->retest_rate, 0);
    EXPECT_EQ(o->give_up_s, 60);
    EXPECT_EQ(o->timeout_ms, 5000);
    EXPECT_EQ(o->clock_skew_s, 0);
    EXPECT_FALSE(o->seed);
    EXPECT_FALSE(o->lot);
    EXPECT_FALSE(o->wafer);
    EXPECT_FALSE(o->insecure);
    EXPECT_FALSE(o->uid_from_map);
}

TEST(TesterOptions, EveryOptionIsRead) {
    auto args = base();
    for (const char* a : {"--bins=01,0A",   "--uid-from-map",
                          "--index-ms",     "25",
                          "--program-ms",   "40",
                          "--fail-rate",    "0.25",
                          "--retest-rate",  "1",
                          "--seed",         "18446744073709551615",
                          "--give-up-s",    "2.5",
                          "--timeout-ms",   "750",
                          "--clock-skew-s", "7",
                          "--lot",          "LOT9",
                          "--wafer",        "65535",
                          "--json",         "s.json",
                          "--quiet"})
        args.emplace_back(a);
    std::string error;
    auto o = parse_options(args, error);
    ASSERT_TRUE(o) << error;
    EXPECT_EQ(o->bins, (std::vector<std::string>{"01", "0A"}));
    EXPECT_TRUE(o->uid_from_map);
    EXPECT_EQ(o->index_ms, 25);
    EXPECT_EQ(o->program_ms, 40);
    EXPECT_EQ(o->fail_rate, 0.25);
    EXPECT_EQ(o->retest_rate, 1.0);
    EXPECT_EQ(*o->seed, 18446744073709551615ull);
    EXPECT_EQ(o->give_up_s, 2.5);
    EXPECT_EQ(o->timeout_ms, 750);
    EXPECT_EQ(o->clock_skew_s, 7);
    EXPECT_EQ(*o->lot, "LOT9");
    EXPECT_EQ(*o->wafer, 65535);
    EXPECT_EQ(o->json, "s.json");
    EXPECT_TRUE(o->quiet);
}

TEST(TesterOptions, InsecureNeedsNoCurveKeys) {
    std::vector<std::string> args = {
        "--map",    "w.xml", "--sites",     "1", "--endpoint", "tcp://h:1",
        "--job-id", "J",     "--tester-id", "T", "--kik",      "k",
        "--ca",     "c",     "--root",      "r", "--insecure"};
    std::string error;
    auto o = parse_options(args, error);
    ASSERT_TRUE(o) << error;
    EXPECT_TRUE(o->insecure);
    args.pop_back();
    EXPECT_EQ(error_of(args), "--key is required");
}

TEST(TesterOptions, UsageErrorsNameTheOption) {
    auto with = [](std::vector<std::string> extra) {
        auto a = base();
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    };
    auto without = [](const std::string& name) {
        auto a = base();
        for (size_t i = 0; i < a.size(); ++i)
            if (a[i] == name)
                a.erase(a.begin() + static_cast<long>(i), a.begin() + static_cast<long>(i) + 2);
        return a;
    };
    EXPECT_EQ(error_of(without("--map")), "--map is required");
    EXPECT_EQ(error_of(without("--kik")), "--kik is required");
    EXPECT_EQ(error_of(without("--server-key")), "--server-key is required");
    auto sites0 = base();
    sites0[3] = "0";
    EXPECT_NE(error_of(sites0).find("--sites must be a whole number 1..1024"), std::string::npos);
    sites0[3] = "1025";
    EXPECT_NE(error_of(sites0).find("--sites"), std::string::npos);
    EXPECT_NE(error_of(with({"--fail-rate", "1.5"})).find("--fail-rate must be a probability"),
              std::string::npos);
    EXPECT_NE(error_of(with({"--retest-rate", "x"})).find("--retest-rate"), std::string::npos);
    EXPECT_NE(error_of(with({"--wafer", "70000"})).find("--wafer"), std::string::npos);
    EXPECT_NE(error_of(with({"--program-ms", "-5"})).find("--program-ms must be"),
              std::string::npos);
    EXPECT_NE(error_of(with({"--clock-skew-s", "-1"})).find("--clock-skew-s"), std::string::npos);
    EXPECT_NE(error_of(with({"--seed", "-1"})).find("--seed"), std::string::npos);
    EXPECT_NE(error_of(with({"--bins", "01,,02"})).find("empty bin code"), std::string::npos);
    EXPECT_EQ(error_of(with({"--frobnicate"})), "unknown option --frobnicate");
    EXPECT_EQ(error_of(with({"--sites", "4"})), "--sites given twice");
    EXPECT_EQ(error_of(with({"--json"})), "--json needs a value");
    EXPECT_EQ(error_of(with({"stray"})), "unexpected argument 'stray'");
    EXPECT_EQ(error_of(with({"--quiet=1"})), "--quiet takes no value");
}

TEST(TesterOptions, HelpNeedsNothingElse) {
    std::string error;
    auto o = parse_options({"--help"}, error);
    ASSERT_TRUE(o);
    EXPECT_TRUE(o->help);
}

TEST(TesterOptions, StripMapsAreRepeatableInHandlerMode) {
    auto args = base();
    for (const char* a :
         {"--handler-sites", "8", "--strip-map", "a.xml", "--strip-map=b.xml", "--final-fail", "2"})
        args.push_back(a);
    std::string error;
    auto o = parse_options(args, error);
    ASSERT_TRUE(o) << error;
    EXPECT_EQ(o->strip_maps, (std::vector<std::filesystem::path>{"a.xml", "b.xml"}));
    EXPECT_EQ(o->final_fail, 2);
    // Defaults: no strip map (carrier unknown), nobody fails final test.
    auto d = parse_options(base(), error);
    ASSERT_TRUE(d) << error;
    EXPECT_TRUE(d->strip_maps.empty());
    EXPECT_EQ(d->final_fail, 0);
}

TEST(TesterOptions, StripMapsAndFinalFailuresNeedHandlerMode) {
    auto strip = base();
    strip.insert(strip.end(), {"--strip-map", "a.xml"});
    EXPECT_EQ(error_of(strip),
              "--strip-map needs --handler-sites: strip maps are the carriers of final test "
              "(handler mode); the wafer is read with --map");
    auto fail = base();
    fail.insert(fail.end(), {"--final-fail", "1"});
    EXPECT_EQ(error_of(fail), "--final-fail needs --handler-sites");
    auto empty = base();
    empty.insert(empty.end(), {"--handler-sites", "4", "--strip-map="});
    EXPECT_EQ(error_of(empty), "--strip-map must not be empty");
    auto missing = base();
    missing.insert(missing.end(), {"--handler-sites", "4", "--strip-map"});
    EXPECT_EQ(error_of(missing), "--strip-map needs a value");
    auto negative = base();
    negative.insert(negative.end(), {"--handler-sites", "4", "--final-fail", "-1"});
    EXPECT_EQ(error_of(negative), "--final-fail must be a whole number 0..1000000, got '-1'");
}
