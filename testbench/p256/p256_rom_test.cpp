// The fixed-base table (rtl/p256/p256_base_table.mem, written by p256_gen.py) against OpenSSL: line
// 16*w + j must hold j * 16^w * G as {X, Y}, and entry j = 0 must be (0, 1).
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "p256_ref.hpp"

namespace p256bench {
namespace {

std::vector<std::string> read_lines(const char* path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

TEST(P256Rom, EveryEntryIsTheRightMultipleOfG) {
    const auto lines = read_lines(P256_ROM_FILE);
    ASSERT_EQ(lines.size(), 1024u) << P256_ROM_FILE;
    Ref ref;
    for (unsigned w = 0; w < 64; ++w) {
        for (unsigned j = 0; j < 16; ++j) {
            const std::string& line = lines[16 * w + j];
            ASSERT_EQ(line.size(), 128u) << "line " << 16 * w + j;
            const std::string x = line.substr(0, 64);
            const std::string y = line.substr(64);
            if (j == 0) {
                EXPECT_EQ(x, std::string(64, '0'));
                EXPECT_EQ(y, std::string(63, '0') + "1");
                continue;
            }
            // k = j * 2^(4w)
            Bytes32 k{};
            const unsigned bit = 4 * w;
            k[31 - bit / 8] = static_cast<uint8_t>(j << (bit % 8));
            const auto q = ref.mul_g(k);
            ASSERT_TRUE(q.has_value());
            EXPECT_EQ(x, to_hex(q->first)) << "w=" << w << " j=" << j;
            EXPECT_EQ(y, to_hex(q->second)) << "w=" << w << " j=" << j;
        }
    }
}

}  // namespace
}  // namespace p256bench
