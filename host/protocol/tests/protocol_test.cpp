// The WPTL codec: round trips, the doc's golden frames byte for byte, and every refusal.
#include <climits>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "samples.hpp"
#include "waferprov/host/curve_keys.hpp"
#include "waferprov/host/protocol.hpp"

namespace waferprov::host::protocol {
namespace {

Bytes must_encode(const Frame& f) {
    auto r = encode(f);
    EXPECT_TRUE(r.ok()) << r.error().describe();
    return r.ok() ? *r : Bytes{};
}

void expect_round_trip(const Frame& f) {
    const Bytes b = must_encode(f);
    auto d = decode(b);
    ASSERT_TRUE(d.ok()) << d.error().text;
    EXPECT_TRUE(d.value() == f);
    EXPECT_EQ(must_encode(d.value()), b);
}

DecodeError expect_refused(const Bytes& b, StatusCode code) {
    auto d = decode(b);
    EXPECT_FALSE(d.ok());
    if (d.ok()) return {};
    EXPECT_EQ(d.error().code, code) << to_string(d.error().code) << ": " << d.error().text;
    return d.error();
}

Frame golden_frame(const std::string& name) {
    for (const auto& [n, f] : samples::golden_frames())
        if (n == name) return f;
    ADD_FAILURE() << "no golden frame " << name;
    return {};
}

Bytes golden(const std::string& name) {
    for (const auto& [n, f] : samples::golden_frames())
        if (n == name) return must_encode(f);
    ADD_FAILURE() << "no golden frame " << name;
    return {};
}

// Rewrites the header's body length after a test edited the body.
void fix_length(Bytes& b) {
    const auto n = static_cast<uint32_t>(b.size() - kHeaderSize);
    for (int i = 0; i < 4; ++i) b[12 + static_cast<size_t>(i)] = static_cast<uint8_t>(n >> (8 * i));
}

// ---- Golden frames: the doc and the code agree to the byte ----------------------------------

// Reads the "<!-- golden:KIND -->" blocks of docs/tester-protocol.md: each line's hex bytes
// before a '|' (the rest of the line annotates them).
std::map<std::string, Bytes> doc_golden_frames() {
    std::ifstream in(std::string(WAFERPROV_SOURCE_DIR) + "/docs/tester-protocol.md");
    EXPECT_TRUE(in.good()) << "docs/tester-protocol.md not found";
    std::map<std::string, Bytes> out;
    std::string line, current;
    bool in_block = false;
    while (std::getline(in, line)) {
        const auto tag = line.find("<!-- golden:");
        if (tag != std::string::npos) {
            current = line.substr(tag + 12, line.find(' ', tag + 12) - tag - 12);
            continue;
        }
        if (line.rfind("```", 0) == 0) {
            if (in_block) current.clear();
            in_block = !in_block && !current.empty();
            continue;
        }
        if (!in_block) continue;
        std::istringstream hex(line.substr(0, line.find('|')));
        std::string tok;
        while (hex >> tok) {
            auto b = from_hex(tok, "golden byte");
            EXPECT_TRUE(b.ok() && b->size() == 1) << current << ": bad token '" << tok << "'";
            if (b.ok()) out[current].insert(out[current].end(), b->begin(), b->end());
        }
    }
    return out;
}

TEST(ProtocolGolden, DocumentedFramesMatchTheEncoderByteForByte) {
    const auto doc = doc_golden_frames();
    const auto frames = samples::golden_frames();
    EXPECT_EQ(doc.size(), frames.size());
    for (const auto& [name, frame] : frames) {
        SCOPED_TRACE(name);
        ASSERT_TRUE(doc.count(name)) << "docs/tester-protocol.md lacks golden:" << name;
        EXPECT_EQ(to_hex(doc.at(name)), to_hex(must_encode(frame)));
        auto d = decode(doc.at(name));
        ASSERT_TRUE(d.ok()) << d.error().text;
        EXPECT_TRUE(d.value() == frame);
        EXPECT_EQ(kind_of(d.value().message), kind_of(frame.message));
    }
}

TEST(ProtocolGolden, HeaderIsLittleEndianWithMagicVersionKindFlagsRequestIdLength) {
    const Bytes b = golden("TOUCHDOWN");
    EXPECT_EQ(to_hex(ByteSpan(b).first(16)),
              "5750544c0100100002000000"
              "4b000000");
    auto h = peek_header(b);
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->kind, 0x10);
    EXPECT_EQ(h->request_id, 2u);
    EXPECT_EQ(h->body_length, b.size() - kHeaderSize);
}

// ---- Round trips ------------------------------------------------------------------------------

TEST(ProtocolRoundTrip, EveryGoldenKind) {
    for (const auto& [name, frame] : samples::golden_frames()) {
        SCOPED_TRACE(name);
        expect_round_trip(frame);
    }
}

TEST(ProtocolRoundTrip, SiteCountsOneSixtyFourAndMaximum) {
    for (size_t n : {size_t{1}, size_t{64}, kMaxSites}) {
        SCOPED_TRACE(n);
        expect_round_trip(samples::touchdown(n));
        expect_round_trip(samples::touchdown_result(n));
        expect_round_trip(samples::results(n));
        expect_round_trip(samples::results_ack(n));
    }
}

TEST(ProtocolRoundTrip, MaximumSitesWithMaximumCertificatesFitTheFrameLimit) {
    const Frame f = samples::touchdown_result(kMaxSites, kMaxCertificateSize);
    const Bytes b = must_encode(f);
    EXPECT_LE(b.size(), kMaxFrameSize);
    expect_round_trip(f);
}

TEST(ProtocolRoundTrip, ExtremeCoordinatesSiteNumbersAndIds) {
    Touchdown td{UINT64_MAX, "L", UINT16_MAX, UINT32_MAX, {}, ""};
    td.sites.push_back({UINT16_MAX, INT32_MIN, INT32_MAX, samples::uid_of(1)});
    td.sites.push_back({0, -1, 0, std::nullopt});
    td.sites.push_back({7, INT32_MAX, INT32_MIN, wpid1::Uid{}});  // an all-zero UID is a UID
    expect_round_trip(Frame{UINT32_MAX, 0, td});
    expect_round_trip(Frame{0, 0, HelloOk{0, "", 1, 4096}});
    expect_round_trip(Frame{0, 0, ErrorReply{StatusCode::kInternal, ""}});
}

TEST(ProtocolRoundTrip, MaximumLengthStringsIncludingMultiByteUtf8) {
    const std::string ascii(kMaxStringSize, 'x');
    std::string utf8;  // 85 x U+00E9 (2 bytes) + U+20AC (3 bytes) ... exactly 255 bytes
    while (utf8.size() + 3 <= kMaxStringSize) utf8 += "\xe2\x82\xac";  // U+20AC
    ASSERT_EQ(utf8.size(), kMaxStringSize);
    expect_round_trip(Frame{1, 0, Hello{ascii, utf8, ascii, utf8}});
    Results r{1, 2, {{3, samples::uid_of(3), DieOutcome::kFailed, ascii}}};
    expect_round_trip(Frame{1, 0, r});
    expect_round_trip(Frame{1, 0, ErrorReply{StatusCode::kBusy, "\xf0\x9f\x98\x80 busy"}});
}

TEST(ProtocolRoundTrip, HelloMayAnnounceAHigherMinor) {
    Frame f = samples::golden_frames()[0].second;
    f.minor = 7;
    expect_round_trip(f);
}

TEST(ProtocolRoundTrip, EncodeToReusesTheBuffer) {
    Bytes out(3, 0xee);
    ASSERT_TRUE(encode_to(samples::touchdown(4), out).ok());
    EXPECT_EQ(out, must_encode(samples::touchdown(4)));
}

// ---- Frame-level refusals -----------------------------------------------------------------

TEST(ProtocolRefuse, TruncatedAtEveryByteOffsetOfEveryKind) {
    std::vector<Bytes> frames;
    for (const auto& [name, f] : samples::golden_frames()) frames.push_back(must_encode(f));
    frames.push_back(must_encode(samples::touchdown_result(3, 40)));
    for (const Bytes& b : frames) {
        for (size_t n = 0; n < b.size(); ++n) {
            auto d = decode(ByteSpan(b).first(n));
            ASSERT_FALSE(d.ok()) << "prefix " << n;
            ASSERT_EQ(d.error().code, StatusCode::kTruncated) << n << ": " << d.error().text;
            if (n >= kHeaderSize) {
                ASSERT_EQ(d.error().request_id, peek_header(b)->request_id);
            }
        }
    }
}

TEST(ProtocolRefuse, BodyTruncatedInsideAConsistentHeaderNamesTheField) {
    // The header's length agrees with the frame, but the body ends inside the second site's text.
    Bytes b = golden("TOUCHDOWN_RESULT");
    b.resize(b.size() - 5);
    fix_length(b);
    DecodeError e = expect_refused(b, StatusCode::kTruncated);
    EXPECT_EQ(e.text, "TOUCHDOWN_RESULT.text at offset 131: needs 13 bytes, 8 remain");
    // ... and a TOUCHDOWN whose site list cannot fit is refused at the count, before reserving.
    b = golden("TOUCHDOWN");
    b.resize(b.size() - 5);
    fix_length(b);
    e = expect_refused(b, StatusCode::kTruncated);
    EXPECT_EQ(e.offset, 35u) << e.text;
}

TEST(ProtocolRefuse, OversizedBodyLengthIsRefusedBeforeAnyAllocation) {
    Bytes b = golden("BYE");
    for (uint32_t len : {0xffffffffu, uint32_t{kMaxFrameSize - kHeaderSize + 1}}) {
        for (int i = 0; i < 4; ++i)
            b[12 + static_cast<size_t>(i)] = static_cast<uint8_t>(len >> (8 * i));
        const DecodeError e = expect_refused(b, StatusCode::kOversized);
        EXPECT_EQ(e.offset, 12u);
        EXPECT_EQ(e.request_id, 4u);
    }
    // A smaller limit (as advertised in HELLO_OK) is enforced too.
    const Bytes big = must_encode(samples::touchdown_result(64));
    auto d = decode(big, Limits{8192, kMaxSites});
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.error().code, StatusCode::kOversized);
    EXPECT_FALSE(encode(samples::touchdown_result(64), Limits{8192, kMaxSites}).ok());
}

TEST(ProtocolRefuse, HugeSiteCountInASmallFrameIsTruncatedNotAllocated) {
    Bytes b = golden("TOUCHDOWN");
    b[35] = 0x00;  // site_count = 1024 (0x0400) but only 2 entries follow
    b[36] = 0x04;
    const DecodeError e = expect_refused(b, StatusCode::kTruncated);
    EXPECT_NE(e.text.find("TOUCHDOWN.site_count at offset 35"), std::string::npos) << e.text;
}

TEST(ProtocolRefuse, BadMagic) {
    Bytes b = golden("HELLO");
    b[2] = 'X';
    EXPECT_EQ(expect_refused(b, StatusCode::kBadFrame).offset, 2u);
    EXPECT_EQ(expect_refused(Bytes{'G', 'E', 'T'}, StatusCode::kBadFrame).offset, 0u);
}

TEST(ProtocolRefuse, UnknownKind) {
    for (const uint8_t k : std::vector<uint8_t>{0x00, 0x03, 0x14, 0x23, 0x40, 0x7e, 0x80, 0xff}) {
        Bytes b = golden("BYE_OK");
        b[6] = k;
        const DecodeError e = expect_refused(b, StatusCode::kUnknownKind);
        EXPECT_EQ(e.offset, 6u);
        EXPECT_EQ(e.request_id, 4u);
    }
}

TEST(ProtocolRefuse, UnsupportedMajorAndUnnegotiatedMinor) {
    for (const uint8_t major : std::vector<uint8_t>{0, 2, 255}) {
        Bytes b = golden("HELLO");
        b[4] = major;
        EXPECT_EQ(expect_refused(b, StatusCode::kUnsupportedVersion).offset, 4u);
    }
    Bytes b = golden("TOUCHDOWN");
    b[5] = kVersionMinor + 1;
    EXPECT_EQ(expect_refused(b, StatusCode::kUnsupportedVersion).offset, 5u);
    Frame f = samples::touchdown(1);
    f.minor = kVersionMinor + 1;
    EXPECT_FALSE(encode(f).ok());
}

// 1.2: final test (docs/final-test.md): FINAL_TOUCHDOWN, VERIFY sites, FINAL_RESULTS.
TEST(ProtocolFinalTest, ManySitesWithAndWithoutCarrierPositionsRoundTrip) {
    for (size_t n : {size_t{1}, size_t{16}, kMaxSites}) {
        SCOPED_TRACE(n);
        FinalTouchdown ft{samples::kSession, "LOT9", "HDL-1", 3, {}};
        TouchdownResult tr{3, {}};
        Results res{samples::kSession, 3, {}, true};
        for (size_t i = 0; i < n; ++i) {
            const auto site = static_cast<uint16_t>(i);
            const auto uid = samples::uid_of(static_cast<uint32_t>(i));
            ft.sites.push_back({site, uid, std::nullopt});
            if (i % 3 != 0)
                ft.sites.back().carrier =
                    CarrierPosition{"STRIP-" + std::to_string(i / 40), static_cast<uint16_t>(i % 5),
                                    static_cast<uint16_t>(i % 8)};
            if (i % 2 == 0) {
                SiteChallenge c{uid, Bytes(600, 0x30), {}, {}};
                c.nonce[0] = static_cast<uint8_t>(i);
                tr.sites.push_back({site, StatusCode::kVerify, "", std::nullopt, c});
                res.sites.push_back({site, uid, DieOutcome::kProgrammed, "1", Signature{}});
            } else {
                tr.sites.push_back({site, StatusCode::kOk, "", samples::identity_of(1, 600)});
                res.sites.push_back({site, uid, DieOutcome::kFailed, "7"});
            }
        }
        expect_round_trip(Frame{1, 2, ft});
        expect_round_trip(Frame{1, 2, tr});
        expect_round_trip(Frame{1, 2, res});
        EXPECT_LE(must_encode(Frame{1, 2, tr}).size(), kMaxFrameSize);
    }
}

TEST(ProtocolFinalTest, KindsAndVerifyAreRefusedBelowMinorTwo) {
    for (const char* name : {"FINAL_TOUCHDOWN", "FINAL_RESULTS", "TOUCHDOWN_RESULT_VERIFY"}) {
        SCOPED_TRACE(name);
        Frame f = golden_frame(name);
        f.minor = 1;
        const auto e = encode(f);
        ASSERT_FALSE(e.ok());
        EXPECT_NE(e.error().message.find("from 1.2"), std::string::npos) << e.error().message;
        Bytes b = golden(name);
        b[5] = 1;
        // The new kinds are refused at the header; a VERIFY status in a 1.1 answer is a bad
        // field (a 1.1 client would not know its layout).
        expect_refused(b, std::string(name) == "TOUCHDOWN_RESULT_VERIFY"
                              ? StatusCode::kBadField
                              : StatusCode::kUnsupportedVersion);
    }
    EXPECT_EQ(minor_of(Kind::kFinalTouchdown), 2);
    EXPECT_EQ(minor_of(Kind::kFinalResults), 2);
}

TEST(ProtocolFinalTest, VerifyNeverInAnAckOrAnError) {
    Bytes ack = golden("RESULTS_ACK");
    ack[ack.size() - 3] = 0x02;  // status (u16 before the empty text) := VERIFY
    expect_refused(ack, StatusCode::kBadField);
    Bytes err = golden("ERROR");
    err[16] = 0x02;
    err[17] = 0x00;
    expect_refused(err, StatusCode::kBadField);
    EXPECT_FALSE(encode(Frame{0, 2, ErrorReply{StatusCode::kVerify, ""}}).ok());
    EXPECT_FALSE(encode(Frame{0, 2, ResultsAck{1, {{0, {}, StatusCode::kVerify, ""}}}}).ok());
}

TEST(ProtocolFinalTest, AVerifySiteMustCarryAChallengeAndNothingElse) {
    Frame f = golden_frame("TOUCHDOWN_RESULT_VERIFY");
    auto& site = std::get<TouchdownResult>(f.message).sites[0];
    site.challenge.reset();
    EXPECT_FALSE(encode(f).ok());
    f = golden_frame("TOUCHDOWN_RESULT_VERIFY");
    std::get<TouchdownResult>(f.message).sites[1].challenge =
        std::get<TouchdownResult>(f.message).sites[0].challenge;
    EXPECT_FALSE(encode(f).ok());  // NOT_PROVISIONED with a challenge
    f = golden_frame("TOUCHDOWN_RESULT_VERIFY");
    std::get<TouchdownResult>(f.message).sites[0].challenge->certificate_der.clear();
    EXPECT_FALSE(encode(f).ok());
}

TEST(ProtocolFinalTest, HandlerAndCarrierIdsMustBePrintableAsciiAndFlagsZeroOrOne) {
    Frame f = golden_frame("FINAL_TOUCHDOWN");
    std::get<FinalTouchdown>(f.message).handler_id = "H\x7f";
    EXPECT_FALSE(encode(f).ok());
    f = golden_frame("FINAL_TOUCHDOWN");
    std::get<FinalTouchdown>(f.message).sites[0].carrier->carrier_id = "";
    EXPECT_FALSE(encode(f).ok());
    // On the wire (offsets in docs/tester-protocol.md): the handler id's length byte at 29, its
    // first byte at 30; the first site's has_carrier at 59, its carrier id's length at 60 and
    // first byte at 61; the second site's has_carrier at 85.
    Bytes b = golden("FINAL_TOUCHDOWN");
    ASSERT_EQ(b[30], 'H');
    b[30] = 0x01;
    EXPECT_EQ(expect_refused(b, StatusCode::kBadField).offset, 29u);
    b = golden("FINAL_TOUCHDOWN");
    ASSERT_EQ(b[61], 'S');
    b[61] = 0x7f;
    EXPECT_EQ(expect_refused(b, StatusCode::kBadField).offset, 60u);
    b = golden("FINAL_TOUCHDOWN");
    ASSERT_EQ(b[59], 1);
    b[59] = 2;
    EXPECT_EQ(expect_refused(b, StatusCode::kBadField).offset, 59u);
    b = golden("FINAL_TOUCHDOWN");
    ASSERT_EQ(b[85], 0);
    b[85] = 1;  // says a carrier follows, and the frame ends: truncated
    expect_refused(b, StatusCode::kTruncated);
}

TEST(ProtocolFinalTest, SignaturesOnlyInFinalResults) {
    Results r{
        samples::kSession, 1, {{0, samples::uid_of(0), DieOutcome::kProgrammed, "1", Signature{}}}};
    const auto e = encode(Frame{1, 2, r});
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.error().message.find("only FINAL_RESULTS"), std::string::npos);
    Bytes b = golden("FINAL_RESULTS");
    // has_signature is the byte before the 64-byte signature.
    b[b.size() - 65] = 2;
    EXPECT_EQ(expect_refused(b, StatusCode::kBadField).offset, b.size() - 65);
    // A final result without a signature (a part provisioned at final test, a failed part).
    r.final_test = true;
    r.sites[0].signature.reset();
    expect_round_trip(Frame{1, 2, r});
    EXPECT_EQ(kind_of(r), Kind::kFinalResults);
}

// 1.1: TOUCHDOWN_WAFER, the touchdown naming the wafer's substrate id.
TEST(ProtocolTouchdownWafer, ATouchdownWithASubstrateIdIsTouchdownWafer) {
    Frame f = samples::touchdown(3);
    f.minor = 1;
    std::get<Touchdown>(f.message).substrate_id = "PH8Q66-02B6";
    EXPECT_EQ(kind_of(f.message), Kind::kTouchdownWafer);
    expect_round_trip(f);
    const Bytes b = must_encode(f);
    EXPECT_EQ(b[6], 0x12);
    // A session that agreed on 1.0 cannot send it, and a 1.0 frame of that kind is refused.
    f.minor = 0;
    const auto e = encode(f);
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.error().message.find("TOUCHDOWN_WAFER is defined from 1.1"), std::string::npos)
        << e.error().message;
    Bytes old = b;
    old[5] = 0;
    EXPECT_EQ(expect_refused(old, StatusCode::kUnsupportedVersion).offset, 5u);
}

TEST(ProtocolTouchdownWafer, ASubstrateIdMustBePrintableAscii) {
    Frame f = golden_frame("TOUCHDOWN_WAFER");
    std::get<Touchdown>(f.message).substrate_id = "W\x01";
    EXPECT_FALSE(encode(f).ok());
    // On the wire: byte 0x01 in the id (frame offset 32 is its first byte, see the doc).
    Bytes b = golden("TOUCHDOWN_WAFER");
    b[32] = 0x01;
    const DecodeError e = expect_refused(b, StatusCode::kBadField);
    EXPECT_NE(e.text.find("TOUCHDOWN_WAFER.substrate_id"), std::string::npos) << e.text;
}

TEST(ProtocolRefuse, NonZeroFlags) {
    Bytes b = golden("BYE");
    b[7] = 0x01;
    EXPECT_EQ(expect_refused(b, StatusCode::kBadField).offset, 7u);
}

TEST(ProtocolRefuse, TrailingGarbageAfterTheFrameOrInsideTheBody) {
    Bytes b = golden("RESULTS");
    b.push_back(0);
    expect_refused(b, StatusCode::kBadFrame);
    fix_length(b);  // now the extra byte is inside the body, after the last field
    const DecodeError e = expect_refused(b, StatusCode::kBadFrame);
    EXPECT_EQ(e.offset, b.size() - 1);
    Bytes bye_ok = golden("BYE_OK");
    bye_ok.push_back(1);
    fix_length(bye_ok);
    expect_refused(bye_ok, StatusCode::kBadFrame);
}

// ---- Field-level refusals ------------------------------------------------------------------

TEST(ProtocolRefuse, SiteCountZeroOrAboveTheLimit) {
    for (const uint16_t n : {uint16_t{0}, uint16_t{1025}, uint16_t{0xffff}}) {
        Bytes b = golden("TOUCHDOWN");
        b[35] = static_cast<uint8_t>(n);
        b[36] = static_cast<uint8_t>(n >> 8);
        const DecodeError e = expect_refused(b, StatusCode::kBadField);
        EXPECT_EQ(e.offset, 35u);
    }
    Bytes b = must_encode(samples::touchdown(64));
    EXPECT_FALSE(decode(b, Limits{kMaxFrameSize, 63}).ok());
    EXPECT_FALSE(encode(samples::touchdown(0)).ok());
    Frame too_many = samples::touchdown(kMaxSites);
    std::get<Touchdown>(too_many.message).sites.push_back({1024, 0, 0, std::nullopt});
    EXPECT_FALSE(encode(too_many).ok());
    EXPECT_FALSE(encode(samples::touchdown_result(0)).ok());
}

TEST(ProtocolRefuse, DuplicateSiteNumbers) {
    Bytes b = golden("TOUCHDOWN");
    b[64] = 0;  // second entry's site number 1 -> 0
    const DecodeError e = expect_refused(b, StatusCode::kBadField);
    EXPECT_NE(e.text.find("TOUCHDOWN.site at offset 64"), std::string::npos) << e.text;
    Frame f = samples::touchdown(2);
    std::get<Touchdown>(f.message).sites[1].site = 0;
    EXPECT_FALSE(encode(f).ok());
}

TEST(ProtocolRefuse, BadEnumValues) {
    {  // has_uid 2
        Bytes b = golden("TOUCHDOWN");
        b[47] = 2;
        EXPECT_EQ(expect_refused(b, StatusCode::kBadField).offset, 47u);
    }
    {  // has_uid 0 with a non-zero UID
        Bytes b = golden("TOUCHDOWN");
        b[47] = 0;
        expect_refused(b, StatusCode::kBadField);
    }
    {  // outcome 3 (RESULTS: header 16, session 8, seq 4, count 2, site 2, uid 16 -> 48)
        Bytes b = golden("RESULTS");
        b[48] = 3;
        const DecodeError e = expect_refused(b, StatusCode::kBadField);
        EXPECT_NE(e.text.find("RESULTS.outcome at offset 48"), std::string::npos) << e.text;
    }
    {  // unknown per-site status (TOUCHDOWN_RESULT site 0 status at 24)
        Bytes b = golden("TOUCHDOWN_RESULT");
        b[24] = 0x99;
        EXPECT_EQ(expect_refused(b, StatusCode::kBadField).offset, 24u);
    }
    {  // ERROR with code OK
        Bytes b = golden("ERROR");
        b[16] = 0;
        b[17] = 0;
        EXPECT_EQ(expect_refused(b, StatusCode::kBadField).offset, 16u);
    }
    // Key blob header at 43: usage, algorithm, version, length.
    const std::pair<size_t, uint8_t> key_edits[] = {{43, 2}, {44, 0}, {45, 2}, {46, 39}, {46, 41}};
    for (const auto& [at, v] : key_edits) {
        Bytes b = golden("TOUCHDOWN_RESULT");
        b[at] = v;
        EXPECT_EQ(expect_refused(b, StatusCode::kBadField).offset, at);
    }
    {  // certificate length 0 and 3073 (at 87)
        Bytes b = golden("TOUCHDOWN_RESULT");
        b[87] = 0;
        b[88] = 0;
        EXPECT_EQ(expect_refused(b, StatusCode::kBadField).offset, 87u);
        b[87] = 0x01;
        b[88] = 0x0c;
        EXPECT_EQ(expect_refused(b, StatusCode::kBadField).offset, 87u);
    }
}

TEST(ProtocolRefuse, StringsEmptyTooLongOrNotUtf8) {
    // Decoder: empty lot, NUL, invalid UTF-8 (overlong, surrogate, lone continuation).
    {
        Bytes b = golden("HELLO");  // tester_id "ATE-07" at 17..22
        b[18] = 0;
        EXPECT_EQ(expect_refused(b, StatusCode::kBadField).offset, 16u);
        for (const auto& bad : {Bytes{0xc0, 0x80}, Bytes{0xed, 0xa0}, Bytes{0x80, 0x41}}) {
            Bytes c = golden("HELLO");
            c[17] = bad[0];
            c[18] = bad[1];
            expect_refused(c, StatusCode::kBadField);
        }
    }
    EXPECT_FALSE(valid_text("\xed\xa0\x80"));      // surrogate
    EXPECT_FALSE(valid_text("\xf4\x90\x80\x80"));  // > U+10FFFF
    EXPECT_FALSE(valid_text("\xe2\x82"));          // cut short
    EXPECT_TRUE(valid_text("\xf4\x8f\xbf\xbf"));   // U+10FFFF
    // Encoder: 256 bytes, empty required fields, bad UTF-8.
    EXPECT_FALSE(encode(Frame{1, 0, Hello{std::string(256, 'a'), "J", "", ""}}).ok());
    EXPECT_FALSE(encode(Frame{1, 0, Hello{"", "J", "", ""}}).ok());
    EXPECT_FALSE(encode(Frame{1, 0, Hello{"T", "", "", ""}}).ok());
    EXPECT_FALSE(encode(Frame{1, 0, Hello{"T", "J", "\xff", ""}}).ok());
    Frame td = samples::touchdown(1);
    std::get<Touchdown>(td.message).lot.clear();
    EXPECT_FALSE(encode(td).ok());
}

TEST(ProtocolRefuse, EncoderRefusesIdentityStatusMismatchAndBadLimits) {
    Frame f = samples::touchdown_result(1);
    std::get<TouchdownResult>(f.message).sites[0].status = StatusCode::kConflict;
    EXPECT_FALSE(encode(f).ok());
    f = samples::touchdown_result(1);
    std::get<TouchdownResult>(f.message).sites[0].identity.reset();
    EXPECT_FALSE(encode(f).ok());
    f = samples::touchdown_result(1, kMaxCertificateSize + 1);
    EXPECT_FALSE(encode(f).ok());
    EXPECT_FALSE(encode(Frame{0, 0, HelloOk{1, "", 0, 4096}}).ok());
    EXPECT_FALSE(encode(Frame{0, 0, HelloOk{1, "", 1025, 4096}}).ok());
    EXPECT_FALSE(encode(Frame{0, 0, HelloOk{1, "", 64, 4095}}).ok());
    EXPECT_FALSE(encode(Frame{0, 0, ErrorReply{StatusCode::kReissued, ""}}).ok());
    EXPECT_FALSE(encode(Frame{0, 0, ErrorReply{static_cast<StatusCode>(0x1234), ""}}).ok());
}

TEST(ProtocolErrors, DecodeErrorConvertsToAnErrorNamingCodeFieldAndOffset) {
    Bytes b = golden("TOUCHDOWN");
    b[47] = 9;
    auto d = decode(b);
    ASSERT_FALSE(d.ok());
    const Error e = d.error().to_error();
    EXPECT_EQ(e.code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(e.message, "BAD_FIELD: TOUCHDOWN.has_uid at offset 47: value 9, expected 0 or 1");
}

TEST(ProtocolErrors, EveryStatusCodeHasAName) {
    int named = 0;
    for (unsigned v = 0; v <= 0xffff; ++v) {
        const auto c = static_cast<StatusCode>(v);
        if (is_known(c)) {
            ++named;
            EXPECT_STRNE(to_string(c), "?");
        }
    }
    EXPECT_EQ(named,
              30);  // 1.2 added VERIFY, NOT_PROVISIONED, SIGNATURE_MISMATCH, CHALLENGE_REFUSED
    EXPECT_STREQ(to_string(StatusCode::kQuotaExhausted), "QUOTA_EXHAUSTED");
    EXPECT_STREQ(to_string(Kind::kTouchdownResult), "TOUCHDOWN_RESULT");
}

TEST(ProtocolText, ClipKeepsCharactersWhole) {
    EXPECT_EQ(clip_text("abc", 5), "abc");
    EXPECT_EQ(clip_text("abcdef", 3), "abc");
    const std::string e = "a\xc3\xa9\xe2\x82\xac";  // a, e-acute (2 bytes), euro sign (3 bytes)
    EXPECT_EQ(clip_text(e, 2), "a");
    EXPECT_EQ(clip_text(e, 3), "a\xc3\xa9");
    EXPECT_EQ(clip_text(e, 5), "a\xc3\xa9");
    EXPECT_EQ(clip_text(e, 6), e);
    EXPECT_TRUE(valid_text(clip_text(std::string(300, 'x') + e, 255)));
}

}  // namespace
}  // namespace waferprov::host::protocol

// Issue #11: a key file path that never ends (/dev/zero) is refused at a cap, not read forever.
TEST(CurveKeyFile, EndlessDeviceIsRefusedAtTheCap) {
    auto k = waferprov::host::protocol::read_curve_key_file("/dev/zero", true);
    ASSERT_FALSE(k.ok());
    EXPECT_EQ(k.error().message, "key file /dev/zero is larger than the limit of 65536 bytes");
}
