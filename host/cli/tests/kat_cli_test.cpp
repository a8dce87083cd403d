// `waferprov kat` as a floor engineer runs it: the built-in vectors pass on every backend, a run
// that finds no vector files fails instead of passing vacuously, an unknown backend is a usage
// error that names it.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "waferprov/testing/cli.hpp"
#include "waferprov/testing/temp_dir.hpp"

namespace {

using waferprov::testing::CliRun;
using waferprov::testing::run_cli;
using waferprov::testing::TempDir;

TEST(KatCommand, BuiltinVectorsPassOnEveryBackend) {
    TempDir dir;
    const CliRun r = run_cli(WAFERPROV_BINARY, {"kat"}, dir.path());
    EXPECT_EQ(r.status, 0) << r.all();
}

TEST(KatCommand, NoVectorFilesFails) {
    TempDir dir;
    const auto empty = dir / "empty";
    ASSERT_EQ(::setenv("WAFERPROV_VECTOR_DIR", empty.c_str(), 1), 0);
    const CliRun r = run_cli(WAFERPROV_BINARY, {"kat"}, dir.path());
    ::unsetenv("WAFERPROV_VECTOR_DIR");
    EXPECT_NE(r.status, 0) << r.all();
}

TEST(KatCommand, UnknownBackendIsAUsageErrorNamingIt) {
    TempDir dir;
    const CliRun r = run_cli(WAFERPROV_BINARY, {"kat", "--backend", "nosuch"}, dir.path());
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.all().find("nosuch"), std::string::npos) << r.all();
}

}  // namespace
