#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "waferprov/bytes.hpp"
#include "waferprov/files.hpp"
#include "waferprov/testing/temp_dir.hpp"
#include "waferprov/wpid1.hpp"

using namespace waferprov;

TEST(Hex, RoundTripsAndIsLowerCase) {
    auto b = from_hex("00ffA5", "x");
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(to_hex(*b), "00ffa5");
}

TEST(Hex, RejectsOddLengthAndNonHexWithFieldName) {
    auto odd = from_hex("abc", "uid");
    ASSERT_FALSE(odd.ok());
    EXPECT_NE(odd.error().message.find("uid"), std::string::npos);
    auto bad = from_hex("zz", "kik");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(bad.error().message.find("kik"), std::string::npos);
}

TEST(Hex, FixedRejectsWrongLength) {
    auto r = from_hex_fixed<16>("00", "uid");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("expected 16 bytes"), std::string::npos);
}

TEST(ScalarRange, EdgesAroundZeroAndOrder) {
    std::array<uint8_t, 32> d{};
    EXPECT_FALSE(wpid1::scalar_in_range(d));  // 0
    d[31] = 1;
    EXPECT_TRUE(wpid1::scalar_in_range(d));  // 1
    auto n = wpid1::kP256Order;
    EXPECT_FALSE(wpid1::scalar_in_range(n));  // n
    auto nm1 = n;
    nm1[31] -= 1;
    EXPECT_TRUE(wpid1::scalar_in_range(nm1));  // n - 1
    auto np1 = n;
    np1[31] += 1;
    EXPECT_FALSE(wpid1::scalar_in_range(np1));  // n + 1
    std::array<uint8_t, 32> ones;
    ones.fill(0xff);
    EXPECT_FALSE(wpid1::scalar_in_range(ones));  // 2^256 - 1
    // A value above n only in a middle byte: ffffffff 00000001 ... is > n.
    std::array<uint8_t, 32> mid{};
    mid.fill(0);
    for (int i = 0; i < 4; ++i) mid[i] = 0xff;
    mid[7] = 1;
    EXPECT_FALSE(wpid1::scalar_in_range(mid));
    EXPECT_FALSE(wpid1::scalar_in_range(ByteSpan(d.data(), 31)));  // wrong length
}

TEST(IdentityRecord, SerializesToTheSpecLayoutAndParsesBack) {
    wpid1::IdentityRecord r;
    r.sequence = 0x0102030405060708ULL;
    for (size_t i = 0; i < 16; ++i) r.uid[i] = static_cast<uint8_t>(0x10 + i);
    r.x.fill(0xaa);
    r.y.fill(0xbb);
    r.wrapped.fill(0xcc);
    auto s = r.serialize();
    EXPECT_EQ(to_hex(ByteSpan(s.data(), 8)), "0102030405060708");
    EXPECT_EQ(s[8], 0x10);
    EXPECT_EQ(s[23], 0x1f);
    EXPECT_EQ(s[24], 0xaa);
    EXPECT_EQ(s[56], 0xbb);
    EXPECT_EQ(s[88], 0xcc);
    EXPECT_EQ(s[127], 0xcc);
    auto back = wpid1::IdentityRecord::parse(s);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, r);
    EXPECT_FALSE(wpid1::IdentityRecord::parse(ByteSpan(s.data(), 127)).ok());
}

TEST(Kdf, FixedInputMatchesSp800108Layout) {
    wpid1::Uid uid;
    for (size_t i = 0; i < 16; ++i) uid[i] = static_cast<uint8_t>(i);
    auto m = wpid1::kdf_fixed_input(2, uid);
    EXPECT_EQ(to_hex(m),
              "00000002"                          // [i]32
              "575049442d31204b454b"              // "WPID-1 KEK"
              "00"                                // separator
              "000102030405060708090a0b0c0d0e0f"  // context = UID
              "00000100");                        // [L = 256]32
}

// A device that never ends has st_size 0: the cap must hold on what is read, not on stat.
TEST(ReadFileCapped, DevZeroStopsAtTheCapNamingTheFile) {
    auto r = read_file_capped("/dev/zero", 4096, "wrapped KIK");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kResourceExhausted);
    EXPECT_EQ(r.error().message, "wrapped KIK /dev/zero is larger than the limit of 4096 bytes");
}

TEST(ReadFileCapped, ExactlyTheCapIsReadOneMoreIsRefused) {
    waferprov::testing::TempDir d{"capped"};
    const auto p = d / "f";
    std::ofstream(p, std::ios::binary) << std::string(100, 'a');
    auto at = read_file_capped(p, 100, "file");
    ASSERT_TRUE(at.ok()) << at.error().describe();
    EXPECT_EQ(*at, std::string(100, 'a'));
    auto over = read_file_capped(p, 99, "file");
    ASSERT_FALSE(over.ok());
    EXPECT_EQ(over.error().code, ErrorCode::kResourceExhausted);
    auto empty_path = d / "empty";
    std::ofstream{empty_path};
    auto empty = read_file_capped(empty_path, 10, "file");
    ASSERT_TRUE(empty.ok());
    EXPECT_TRUE(empty->empty());
}

TEST(ReadFileCapped, DirectoryAndMissingFileSaySo) {
    waferprov::testing::TempDir d{"capped"};
    auto dir = read_file_capped(d.path(), 100, "job file");
    ASSERT_FALSE(dir.ok());
    EXPECT_EQ(dir.error().message, "job file " + d.path().string() + " is a directory");
    auto missing = read_file_capped(d / "nope", 100, "job file");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, ErrorCode::kIo);
    EXPECT_NE(missing.error().message.find("job file " + (d / "nope").string()), std::string::npos);
    EXPECT_NE(missing.error().message.find("No such file"), std::string::npos);
}

// A FIFO nobody writes to must not hang the open (the reader gets end of file at once).
TEST(ReadFileCapped, FifoWithoutWriterDoesNotHang) {
    waferprov::testing::TempDir d{"capped"};
    const auto p = d / "fifo";
    ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0);
    auto r = read_file_capped(p, 100, "map");
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_TRUE(r->empty());
}
