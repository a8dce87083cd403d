// The tester link's wire protocol (docs/tester-protocol.md, "WPTL" version 1.0): message structs
// and a strict binary codec. The codec only encodes and decodes frames; sessions, admission,
// the ledger and ZeroMQ belong to the service (`waferprov serve`) and the client library.
//
// Thread-safety: every function here is pure (no shared state); call them from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "waferprov/bytes.hpp"
#include "waferprov/result.hpp"
#include "waferprov/wpid1.hpp"

namespace waferprov::host::protocol {

// ---- Constants (docs/tester-protocol.md, "Limits") -----------------------------------------
inline constexpr std::array<uint8_t, 4> kMagic = {'W', 'P', 'T', 'L'};
inline constexpr uint8_t kVersionMajor = 1;
// 1.1 adds TOUCHDOWN_WAFER (a touchdown naming the wafer's substrate id); 1.2 adds final test
// (FINAL_TOUCHDOWN, the VERIFY site status with its challenge, FINAL_RESULTS with signatures).
inline constexpr uint8_t kVersionMinor = 2;
inline constexpr size_t kHeaderSize = 16;
inline constexpr size_t kMaxFrameSize = size_t{4} << 20;  // header + body, 4 MiB
inline constexpr size_t kMaxSites = 1024;                 // site entries per message
inline constexpr size_t kMaxStringSize = 255;             // bytes of UTF-8 (u8 length prefix)
inline constexpr size_t kMaxCertificateSize = 3072;       // DER bytes per site
inline constexpr size_t kChainIdSize = 32;                // SHA-256 of the CA chain
inline constexpr size_t kChallengeSize = 32;              // final test: the host's nonce
inline constexpr size_t kSignatureSize = 64;              // final test: ECDSA P-256 r || s

using ChainId = std::array<uint8_t, kChainIdSize>;
using ChallengeNonce = std::array<uint8_t, kChallengeSize>;
// An ECDSA P-256 signature as a die's engine produces it: r then s, 32 bytes each, big-endian
// (the PKCS#11 CKM_ECDSA form; the host DER-encodes it for OpenSSL).
using Signature = std::array<uint8_t, kSignatureSize>;

// Message kinds (header byte 6). Requests go tester -> host, responses host -> tester.
enum class Kind : uint8_t {
    kHello = 0x01,
    kHelloOk = 0x02,
    kTouchdown = 0x10,
    kTouchdownResult = 0x11,
    kTouchdownWafer = 0x12,  // 1.1: TOUCHDOWN with the wafer's substrate id
    kFinalTouchdown = 0x13,  // 1.2: packaged parts in handler sites, by UID (final test)
    kResults = 0x20,
    kResultsAck = 0x21,
    kFinalResults = 0x22,  // 1.2: RESULTS with each verified part's signature
    kBye = 0x30,
    kByeOk = 0x31,
    kError = 0x7f,
};
const char* to_string(Kind k) noexcept;  // "HELLO", ...; "?" for an unknown value

// Status and error codes: one u16 enum for frame errors (ERROR frames), session errors and the
// per-site status of TOUCHDOWN_RESULT / RESULTS_ACK. The table in the doc maps them onto the
// ledger's RecordOutcome / TransitionStatus.
enum class StatusCode : uint16_t {
    kOk = 0,
    kReissued = 1,  // retest: the die's existing identity is delivered again
    kVerify = 2,    // 1.2, final test: a part provisioned at sort; its certificate + a challenge
    // Frame level (the decoder produces these).
    kBadFrame = 0x10,            // bad magic, trailing bytes, structurally invalid
    kTruncated = 0x11,           // frame or a field ends early
    kOversized = 0x12,           // body length beyond the frame limit
    kUnknownKind = 0x13,         // message kind not defined in this major version
    kUnsupportedVersion = 0x14,  // major version (or a minor not negotiated) not supported
    kBadField = 0x15,            // a field value out of range / not allowed
    kUnexpectedKind = 0x16,      // a known kind the receiver does not accept here
    // Session level.
    kNotAdmitted = 0x20,  // tester id not admitted / does not match its CURVE key
    kUnknownJob = 0x21,
    kNoSession = 0x22,  // no HELLO yet, or an unknown / closed session id
    kBusy = 0x23,       // the host is overloaded; retry the same request later
    kShuttingDown = 0x24,
    kSequenceReused = 0x25,  // a touchdown sequence reused with different content
    // Per die.
    kQuotaExhausted = 0x30,
    kConflict = 0x31,  // UID / location clash with the ledger or inside the request
    kUnknownUid = 0x32,
    kNotDelivered = 0x33,
    kDuplicateResult = 0x34,
    kVoided = 0x35,
    kNoUid = 0x36,  // the job needs the die's own UID and the site sent none
    kAlreadyProgrammed = 0x37,
    kNotOnMap = 0x38,     // (x, y) is not a die of this wafer's map
    kDeliveryCap = 0x39,  // the die was delivered as often as the job allows (max_deliveries)
    // Final test (1.2).
    kNotProvisioned = 0x3a,     // a UID the job never provisioned and cannot (derived policy)
    kSignatureMismatch = 0x3b,  // the part's signature does not verify: ALARM (swapped part?)
    kChallengeRefused = 0x3c,   // no open challenge of this session for the part (replay)
    kInternal = 0xff,
};
const char* to_string(StatusCode c) noexcept;  // "OK", "QUOTA_EXHAUSTED", ...; "?" if unknown
bool is_known(StatusCode c) noexcept;
// OK and REISSUED: a site entry that carries an identity.
inline bool carries_identity(StatusCode c) noexcept {
    return c == StatusCode::kOk || c == StatusCode::kReissued;
}
// VERIFY (1.2): a site entry that carries the part's certificate and a challenge.
inline bool carries_challenge(StatusCode c) noexcept { return c == StatusCode::kVerify; }

// ---- Messages ------------------------------------------------------------------------------
// Strings are UTF-8, at most kMaxStringSize bytes, without NUL. Site lists hold 1..kMaxSites
// entries with distinct site numbers.

struct Hello {
    std::string tester_id;
    std::string job_id;
    std::string node_name;
    std::string client_version;
    bool operator==(const Hello&) const = default;
};

struct HelloOk {
    uint64_t session_id = 0;
    std::string server_version;
    uint16_t max_sites = static_cast<uint16_t>(kMaxSites);
    uint32_t max_frame_size = static_cast<uint32_t>(kMaxFrameSize);
    bool operator==(const HelloOk&) const = default;
};

struct TouchdownSite {
    uint16_t site = 0;
    int32_t x = 0;
    int32_t y = 0;
    std::optional<wpid1::Uid> uid;  // the die's own UID, where it has one
    bool operator==(const TouchdownSite&) const = default;
};

struct Touchdown {
    uint64_t session_id = 0;
    std::string lot;
    uint16_t wafer = 0;
    uint32_t sequence = 0;  // touchdown sequence: a retry repeats it, a new touchdown increments
    std::vector<TouchdownSite> sites;
    // The wafer's substrate id (the id the prober read from the wafer), printable ASCII. Empty:
    // not sent, encoded as TOUCHDOWN (1.0); non-empty: TOUCHDOWN_WAFER (1.1).
    std::string substrate_id;
    bool operator==(const Touchdown&) const = default;
};

// Final test (1.2): where a packaged part sits in its carrier (a strip or a tray), when the
// handler knows it. carrier_id is printable ASCII, 1..255 bytes.
struct CarrierPosition {
    std::string carrier_id;
    uint16_t row = 0;
    uint16_t column = 0;
    bool operator==(const CarrierPosition&) const = default;
};

struct FinalSite {
    uint16_t site = 0;  // the handler's site number
    wpid1::Uid uid{};   // read from the part's fuses: a packaged part always has its UID
    std::optional<CarrierPosition> carrier{};
    bool operator==(const FinalSite&) const = default;
};

// FINAL_TOUCHDOWN (1.2): the parts in a handler's sites. Shares the session's touchdown
// sequence numbers with TOUCHDOWN / TOUCHDOWN_WAFER; answered with TOUCHDOWN_RESULT.
struct FinalTouchdown {
    uint64_t session_id = 0;
    std::string lot;         // non-empty
    std::string handler_id;  // printable ASCII, 1..255 bytes
    uint32_t sequence = 0;
    std::vector<FinalSite> sites;
    bool operator==(const FinalTouchdown&) const = default;
};

enum class KeyUsage : uint8_t { kDeviceIdentity = 1 };
enum class KeyAlgorithm : uint8_t { kWpid1P256 = 1 };  // AES-256-KW(KEK, P-256 scalar), 40 bytes
inline constexpr uint8_t kKeyBlobVersion = 1;

// The key blob: a 4-byte header (usage, algorithm, version, length) + the wrapped key.
struct KeyBlob {
    KeyUsage usage = KeyUsage::kDeviceIdentity;
    KeyAlgorithm algorithm = KeyAlgorithm::kWpid1P256;
    uint8_t version = kKeyBlobVersion;
    wpid1::WrappedKey wrapped{};
    bool operator==(const KeyBlob&) const = default;
};

struct SiteIdentity {
    wpid1::Uid uid{};
    KeyBlob key;
    Bytes certificate_der;  // 1..kMaxCertificateSize bytes
    ChainId chain_id{};
    bool operator==(const SiteIdentity&) const = default;
};

// What a VERIFY site carries: the part's certificate as the ledger holds it and a fresh nonce
// the part must sign (docs/final-test.md, "Proof of possession").
struct SiteChallenge {
    wpid1::Uid uid{};
    Bytes certificate_der;  // 1..kMaxCertificateSize bytes
    ChainId chain_id{};
    ChallengeNonce nonce{};
    bool operator==(const SiteChallenge&) const = default;
};

struct SiteResponse {
    uint16_t site = 0;
    StatusCode status = StatusCode::kOk;
    std::string text;                          // why, for a non-OK status ("" allowed)
    std::optional<SiteIdentity> identity;      // present iff carries_identity(status)
    std::optional<SiteChallenge> challenge{};  // present iff carries_challenge(status) (1.2)
    bool operator==(const SiteResponse&) const = default;
};

struct TouchdownResult {
    uint32_t sequence = 0;
    std::vector<SiteResponse> sites;
    bool operator==(const TouchdownResult&) const = default;
};

enum class DieOutcome : uint8_t { kProgrammed = 1, kFailed = 2 };

struct SiteResult {
    uint16_t site = 0;
    wpid1::Uid uid{};
    DieOutcome outcome = DieOutcome::kProgrammed;
    std::string bin;
    // FINAL_RESULTS only: the part's signature over its challenge (docs/final-test.md).
    std::optional<Signature> signature{};
    bool operator==(const SiteResult&) const = default;
};

struct Results {
    uint64_t session_id = 0;
    uint32_t sequence = 0;
    std::vector<SiteResult> sites;
    // Encoded as FINAL_RESULTS (1.2, each entry with has_signature) instead of RESULTS.
    bool final_test = false;
    bool operator==(const Results&) const = default;
};

struct ResultAck {
    uint16_t site = 0;
    wpid1::Uid uid{};
    StatusCode status = StatusCode::kOk;
    std::string text;
    bool operator==(const ResultAck&) const = default;
};

struct ResultsAck {
    uint32_t sequence = 0;
    std::vector<ResultAck> sites;
    bool operator==(const ResultsAck&) const = default;
};

struct Bye {
    uint64_t session_id = 0;
    bool operator==(const Bye&) const = default;
};

struct ByeOk {
    bool operator==(const ByeOk&) const = default;
};

// A frame-level or session-level refusal. `code` is never OK or REISSUED.
struct ErrorReply {
    StatusCode code = StatusCode::kInternal;
    std::string text;
    bool operator==(const ErrorReply&) const = default;
};

using Message = std::variant<Hello, HelloOk, Touchdown, TouchdownResult, Results, ResultsAck, Bye,
                             ByeOk, ErrorReply, FinalTouchdown>;
// The kind a message is sent as (a Touchdown with a substrate id is TOUCHDOWN_WAFER, a Results
// with final_test is FINAL_RESULTS).
Kind kind_of(const Message& m) noexcept;
// The lowest minor of major 1 that defines `k` (1 for TOUCHDOWN_WAFER, 2 for FINAL_TOUCHDOWN and
// FINAL_RESULTS, else 0).
uint8_t minor_of(Kind k) noexcept;

// One frame: the header fields a caller controls, and the message.
struct Frame {
    uint32_t request_id = 0;  // chosen by the requester, echoed by the response
    uint8_t minor = kVersionMinor;
    Message message;
    bool operator==(const Frame&) const = default;
};

// Limits a codec enforces; a server may advertise smaller ones in HELLO_OK.
struct Limits {
    size_t max_frame_size = kMaxFrameSize;  // <= kMaxFrameSize
    size_t max_sites = kMaxSites;           // <= kMaxSites
};

// ---- Codec ---------------------------------------------------------------------------------

// Encodes `frame` into `out` (replacing its contents, reusing its capacity). Refuses (with
// kInvalidArgument naming the field) anything decode() would refuse: a string too long or not
// UTF-8, a site count outside 1..max_sites, duplicate site numbers, an identity present on a
// non-OK site or missing on an OK one, a frame beyond max_frame_size, ...
Status encode_to(const Frame& frame, Bytes& out, const Limits& limits = {});
Result<Bytes> encode(const Frame& frame, const Limits& limits = {});

// Why a frame was refused: the protocol status to answer with (in an ERROR frame), a text that
// names the field and its byte offset in the frame, and the request id when the header was
// readable (so the ERROR can echo it).
struct DecodeError {
    StatusCode code = StatusCode::kBadFrame;
    std::string text;
    size_t offset = 0;
    std::optional<uint32_t> request_id;

    // "BAD_FIELD: ..." as a waferprov::Error (kInvalidArgument; kInternal for INTERNAL).
    Error to_error() const;
};

using DecodeResult = Result<Frame, DecodeError>;

// Decodes one complete frame. Strict: every length is checked before use, nothing is read past
// the end, allocations are bounded by what the frame's size implies, trailing bytes are refused.
// Never throws (an allocation failure becomes INTERNAL).
DecodeResult decode(ByteSpan frame, const Limits& limits = {}) noexcept;

// The header fields, for a receiver that wants the kind / request id before decoding.
struct Header {
    uint8_t major = 0;
    uint8_t minor = 0;
    uint8_t kind = 0;
    uint8_t flags = 0;
    uint32_t request_id = 0;
    uint32_t body_length = 0;
};
// The header if `frame` holds at least kHeaderSize bytes starting with the magic.
std::optional<Header> peek_header(ByteSpan frame) noexcept;

// Well-formed UTF-8 (no overlong forms, no surrogates, <= U+10FFFF) and no NUL byte.
bool valid_text(std::string_view s) noexcept;

// `s` cut to at most `max` bytes at a character boundary, so that valid text stays valid (for
// building an answer's text from a request's strings).
std::string clip_text(std::string s, size_t max = kMaxStringSize);

}  // namespace waferprov::host::protocol
