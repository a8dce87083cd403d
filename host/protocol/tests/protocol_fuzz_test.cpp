// A self-contained randomized mutator over the WPTL decoder (no libFuzzer needed). It starts from
// valid frames of every kind, applies random bit flips, byte sets, truncations, insertions,
// deletions and length-field edits, and decodes. Properties checked on every input:
//   - decode never crashes, throws or hangs (the test's timeout), and its largest single
//     allocation stays within a small multiple of the input's size;
//   - a refusal carries a known frame-level status and a text;
//   - an accepted frame re-encodes to exactly the input bytes (the encoding is canonical) and
//     decodes again to an equal Frame.
// WAFERPROV_FUZZ_ITERATIONS (default 100000) and WAFERPROV_FUZZ_SEED (default fixed) steer it;
// the `soak` CTest entry (protocol.fuzz_soak) runs 200M iterations.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <random>

#include <gtest/gtest.h>

#include "samples.hpp"
#include "waferprov/host/protocol.hpp"

// Track the largest single allocation while decoding (not under ASan, which owns operator new).
#if defined(__SANITIZE_ADDRESS__)
#define WAFERPROV_FUZZ_TRACK_ALLOC 0
#else
#define WAFERPROV_FUZZ_TRACK_ALLOC 1
#endif

namespace {
std::atomic<size_t> g_max_alloc{0};
std::atomic<bool> g_tracking{false};
}  // namespace

#if WAFERPROV_FUZZ_TRACK_ALLOC
// The replacements pair malloc with free; GCC cannot see that and warns at inlined call sites.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(size_t n) {
    if (g_tracking.load(std::memory_order_relaxed) &&
        n > g_max_alloc.load(std::memory_order_relaxed))
        g_max_alloc.store(n, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void* operator new[](size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
#endif

namespace waferprov::host::protocol {
namespace {

uint64_t env_u64(const char* name, uint64_t fallback) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

class Mutator {
public:
    explicit Mutator(uint64_t seed) : rng_(seed) {}

    size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng_() % n); }
    uint8_t byte() { return static_cast<uint8_t>(rng_()); }

    void mutate(Bytes& b) {
        const size_t edits = 1 + below(4);
        for (size_t e = 0; e < edits; ++e) one(b);
        // Half the time keep the header's body length consistent so the body parser is reached.
        if (b.size() >= kHeaderSize && below(2) == 0)
            set_u32(b, 12, static_cast<uint32_t>(b.size() - kHeaderSize));
    }

private:
    static void set_u16(Bytes& b, size_t at, uint16_t v) {
        b[at] = static_cast<uint8_t>(v);
        b[at + 1] = static_cast<uint8_t>(v >> 8);
    }
    static void set_u32(Bytes& b, size_t at, uint32_t v) {
        for (size_t i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
    }

    void one(Bytes& b) {
        static constexpr uint8_t kInteresting8[] = {0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, 40, 39, 41};
        static constexpr uint16_t kInteresting16[] = {
            0, 1, 2, 63, 64, 65, 1023, 1024, 1025, 3072, 3073, 0x7fff, 0x8000, 0xffff};
        switch (below(10)) {
            case 0:  // bit flip
                if (!b.empty()) b[below(b.size())] ^= static_cast<uint8_t>(1u << below(8));
                break;
            case 1:  // random byte
                if (!b.empty()) b[below(b.size())] = byte();
                break;
            case 2:  // interesting byte
                if (!b.empty()) b[below(b.size())] = kInteresting8[below(std::size(kInteresting8))];
                break;
            case 3:  // interesting u16 (counts, lengths, codes)
                if (b.size() >= 2)
                    set_u16(b, below(b.size() - 1),
                            kInteresting16[below(std::size(kInteresting16))]);
                break;
            case 4:  // truncate
                b.resize(below(b.size() + 1));
                break;
            case 5: {  // insert random bytes
                const size_t at = below(b.size() + 1), n = 1 + below(8);
                Bytes ins(n);
                for (auto& x : ins) x = byte();
                b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), ins.begin(), ins.end());
                break;
            }
            case 6: {  // delete a range
                if (b.empty()) break;
                const size_t at = below(b.size()),
                             n = 1 + below(std::min<size_t>(16, b.size() - at));
                b.erase(b.begin() + static_cast<std::ptrdiff_t>(at),
                        b.begin() + static_cast<std::ptrdiff_t>(at + n));
                break;
            }
            case 7: {  // duplicate a range (grows lists and strings plausibly)
                if (b.empty()) break;
                const size_t at = below(b.size()),
                             n = 1 + below(std::min<size_t>(64, b.size() - at));
                Bytes chunk(b.begin() + static_cast<std::ptrdiff_t>(at),
                            b.begin() + static_cast<std::ptrdiff_t>(at + n));
                const size_t to = below(b.size() + 1);
                b.insert(b.begin() + static_cast<std::ptrdiff_t>(to), chunk.begin(), chunk.end());
                break;
            }
            case 8:  // header body-length edit: random, off by a little, or huge
                if (b.size() >= kHeaderSize) {
                    const uint32_t cur = static_cast<uint32_t>(b.size() - kHeaderSize);
                    const uint32_t choices[] = {
                        static_cast<uint32_t>(rng_()),       cur + 1, cur - 1, 0xffffffffu, 0,
                        static_cast<uint32_t>(kMaxFrameSize)};
                    set_u32(b, 12, choices[below(std::size(choices))]);
                }
                break;
            default:  // header field edit: version, kind, flags
                if (b.size() >= 8) b[4 + below(4)] = below(2) ? byte() : kInteresting8[below(4)];
                break;
        }
    }

    std::mt19937_64 rng_;
};

std::vector<Bytes> seed_corpus() {
    std::vector<Bytes> corpus;
    auto add = [&](const Frame& f) {
        auto b = encode(f);
        ASSERT_TRUE(b.ok()) << b.error().describe();
        corpus.push_back(*b);
    };
    for (const auto& [name, f] : samples::golden_frames()) add(f);
    add(samples::touchdown(3));
    add(samples::touchdown(64));
    add(samples::touchdown_result(4, 24));
    add(samples::results(5));
    add(samples::results_ack(5));
    return corpus;
}

TEST(ProtocolFuzz, MutatedFramesNeverCrashAndAcceptedOnesRoundTripExactly) {
    const uint64_t iterations = env_u64("WAFERPROV_FUZZ_ITERATIONS", 100000);
    const uint64_t seed = env_u64("WAFERPROV_FUZZ_SEED", 0x57505446);
    std::vector<Bytes> corpus = seed_corpus();
    const size_t seeds = corpus.size();
    Mutator m(seed);
    uint64_t accepted = 0;
    std::array<uint64_t, 256> refusals{};
    Bytes reencoded;
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < iterations; ++i) {
        Bytes input = corpus[m.below(corpus.size())];
        m.mutate(input);
        g_max_alloc = 0;
        g_tracking = true;
        auto d = decode(input);
        g_tracking = false;
        if (WAFERPROV_FUZZ_TRACK_ALLOC) {
            ASSERT_LE(g_max_alloc.load(), 64 * input.size() + 8192)
                << "iteration " << i << " seed " << seed << ": allocation out of proportion";
        }
        if (!d.ok()) {
            const auto code = d.error().code;
            ASSERT_TRUE(code == StatusCode::kBadFrame || code == StatusCode::kTruncated ||
                        code == StatusCode::kOversized || code == StatusCode::kUnknownKind ||
                        code == StatusCode::kUnsupportedVersion || code == StatusCode::kBadField)
                << to_string(code) << " at iteration " << i;
            ASSERT_FALSE(d.error().text.empty());
            ++refusals[static_cast<uint8_t>(code)];
            continue;
        }
        ++accepted;
        const Status st = encode_to(d.value(), reencoded);
        ASSERT_TRUE(st.ok()) << "iteration " << i << " seed " << seed << ": decoded frame does not "
                             << "re-encode: " << st.error().describe() << " input "
                             << to_hex(input);
        ASSERT_EQ(to_hex(reencoded), to_hex(input)) << "iteration " << i << " seed " << seed;
        auto again = decode(reencoded);
        ASSERT_TRUE(again.ok());
        ASSERT_TRUE(again.value() == d.value());
        // Keep some accepted mutants so later mutations start from new valid shapes.
        if (corpus.size() < seeds + 256)
            corpus.push_back(input);
        else
            corpus[seeds + m.below(256)] = input;
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf(
        "[fuzz] %llu iterations in %.2f s (%.0f/s), seed %llu, accepted %llu; refused: "
        "BAD_FRAME %llu TRUNCATED %llu OVERSIZED %llu UNKNOWN_KIND %llu "
        "UNSUPPORTED_VERSION %llu BAD_FIELD %llu\n",
        static_cast<unsigned long long>(iterations), secs,
        secs > 0 ? static_cast<double>(iterations) / secs : 0.0,
        static_cast<unsigned long long>(seed), static_cast<unsigned long long>(accepted),
        static_cast<unsigned long long>(refusals[0x10]),
        static_cast<unsigned long long>(refusals[0x11]),
        static_cast<unsigned long long>(refusals[0x12]),
        static_cast<unsigned long long>(refusals[0x13]),
        static_cast<unsigned long long>(refusals[0x14]),
        static_cast<unsigned long long>(refusals[0x15]));
    // The mutator must reach every refusal path and also produce accepted frames.
    if (iterations >= 100000) {
        EXPECT_GT(accepted, 0u);
        for (int c = 0x10; c <= 0x15; ++c) EXPECT_GT(refusals[static_cast<size_t>(c)], 0u) << c;
    }
}

TEST(ProtocolFuzz, RandomBytesBehindAValidHeader) {
    const uint64_t iterations = env_u64("WAFERPROV_FUZZ_ITERATIONS", 100000) / 4;
    Mutator m(env_u64("WAFERPROV_FUZZ_SEED", 0x57505446) + 1);
    for (uint64_t i = 0; i < iterations; ++i) {
        const size_t body = m.below(200);
        Bytes b = {'W', 'P', 'T', 'L', 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
        static constexpr uint8_t kKinds[] = {0x01, 0x02, 0x10, 0x11, 0x12, 0x13,
                                             0x20, 0x21, 0x22, 0x30, 0x31, 0x7f};
        b[6] = kKinds[m.below(std::size(kKinds))];
        b[5] = kVersionMinor;  // every kind is defined at the newest minor
        for (int k = 0; k < 4; ++k)
            b[12 + static_cast<size_t>(k)] = static_cast<uint8_t>(body >> (8 * k));
        for (size_t k = 0; k < body; ++k) b.push_back(m.byte());
        auto d = decode(b);
        if (d.ok()) {
            auto r = encode(d.value());
            ASSERT_TRUE(r.ok());
            ASSERT_EQ(*r, b);
        }
    }
}

}  // namespace
}  // namespace waferprov::host::protocol
