// Sample frames shared by the protocol tests, the fuzz harness and the benchmark: the golden
// frames of docs/tester-protocol.md (one per kind) and large frames of N sites.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "waferprov/host/protocol.hpp"

namespace waferprov::host::protocol::samples {

inline constexpr uint64_t kSession = 0x0102030405060708ULL;

inline wpid1::Uid uid_of(uint32_t n) {
    wpid1::Uid u{};
    for (size_t i = 0; i < u.size(); ++i) u[i] = static_cast<uint8_t>(i);
    u[12] ^= static_cast<uint8_t>(n >> 24);
    u[13] ^= static_cast<uint8_t>(n >> 16);
    u[14] ^= static_cast<uint8_t>(n >> 8);
    u[15] ^= static_cast<uint8_t>(n);
    return u;
}

inline SiteIdentity identity_of(uint32_t n, size_t cert_size) {
    SiteIdentity id;
    id.uid = uid_of(n);
    for (size_t i = 0; i < id.key.wrapped.size(); ++i)
        id.key.wrapped[i] = static_cast<uint8_t>(0xa0 + i);
    id.certificate_der.resize(cert_size);
    for (size_t i = 0; i < cert_size; ++i) id.certificate_der[i] = static_cast<uint8_t>(i * 7 + n);
    if (cert_size >= 1) id.certificate_der[0] = 0x30;
    for (size_t i = 0; i < id.chain_id.size(); ++i) id.chain_id[i] = static_cast<uint8_t>(0xc0 + i);
    return id;
}

// One frame of every kind, as written out (to the byte) in docs/tester-protocol.md.
inline std::vector<std::pair<std::string, Frame>> golden_frames() {
    std::vector<std::pair<std::string, Frame>> v;
    v.emplace_back("HELLO", Frame{1, 0, Hello{"ATE-07", "J1", "v93k-07", "1.0.0"}});
    v.emplace_back("HELLO_OK", Frame{1, 0, HelloOk{kSession, "0.4.0", 64, 4194304}});
    Touchdown td{kSession, "LOT1", 3, 1, {}, ""};
    td.sites.push_back({0, 12, -4, uid_of(0)});
    td.sites.push_back({1, 13, -4, std::nullopt});
    v.emplace_back("TOUCHDOWN", Frame{2, 0, td});
    Touchdown tw{kSession, "LOT1", 3, 2, {}, "LOT1-03"};
    tw.sites.push_back({0, 12, -4, uid_of(0)});
    v.emplace_back("TOUCHDOWN_WAFER", Frame{6, 1, tw});
    TouchdownResult tr{1, {}};
    SiteIdentity id = identity_of(0, 5);
    id.certificate_der = {0x30, 0x03, 0x02, 0x01, 0x01};
    tr.sites.push_back({0, StatusCode::kOk, "", id});
    tr.sites.push_back({1, StatusCode::kQuotaExhausted, "quota used up", std::nullopt});
    v.emplace_back("TOUCHDOWN_RESULT", Frame{2, 0, tr});
    v.emplace_back(
        "RESULTS",
        Frame{3, 0, Results{kSession, 1, {{0, uid_of(0), DieOutcome::kProgrammed, "1"}}}});
    v.emplace_back("RESULTS_ACK",
                   Frame{3, 0, ResultsAck{1, {{0, uid_of(0), StatusCode::kOk, ""}}}});
    v.emplace_back("BYE", Frame{4, 0, Bye{kSession}});
    v.emplace_back("BYE_OK", Frame{4, 0, ByeOk{}});
    v.emplace_back("ERROR", Frame{5, 0, ErrorReply{StatusCode::kNoSession, "no session"}});
    // Final test (1.2): two packaged parts, one in strip "S7" at row 2 column 5, one without a
    // carrier position; the answer provisions a part never seen and challenges one from sort.
    FinalTouchdown ft{kSession, "LOT1", "HDL-3", 7, {}};
    ft.sites.push_back({1, uid_of(0), CarrierPosition{"S7", 2, 5}});
    ft.sites.push_back({2, uid_of(1), std::nullopt});
    v.emplace_back("FINAL_TOUCHDOWN", Frame{7, 2, ft});
    TouchdownResult fr{7, {}};
    SiteChallenge ch;
    ch.uid = uid_of(0);
    ch.certificate_der = {0x30, 0x03, 0x02, 0x01, 0x01};
    for (size_t i = 0; i < ch.chain_id.size(); ++i) ch.chain_id[i] = static_cast<uint8_t>(0xc0 + i);
    for (size_t i = 0; i < ch.nonce.size(); ++i) ch.nonce[i] = static_cast<uint8_t>(0x40 + i);
    fr.sites.push_back({1, StatusCode::kVerify, "", std::nullopt, ch});
    fr.sites.push_back({2, StatusCode::kNotProvisioned, "not provisioned", std::nullopt});
    v.emplace_back("TOUCHDOWN_RESULT_VERIFY", Frame{7, 2, fr});
    Results fres{kSession, 7, {}, true};
    Signature sig{};
    for (size_t i = 0; i < sig.size(); ++i) sig[i] = static_cast<uint8_t>(0x80 + i);
    fres.sites.push_back({1, uid_of(0), DieOutcome::kProgrammed, "1", sig});
    v.emplace_back("FINAL_RESULTS", Frame{8, 2, fres});
    return v;
}

// A TOUCHDOWN of n sites (a row of dies left of the origin, every other one without a UID).
inline Frame touchdown(size_t n) {
    Touchdown td{kSession, "LOT12345.1", 7, 42, {}, ""};
    td.sites.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        TouchdownSite s{static_cast<uint16_t>(i), -static_cast<int32_t>(i),
                        100 - static_cast<int32_t>(i / 8), std::nullopt};
        if (i % 2 == 0) s.uid = uid_of(static_cast<uint32_t>(i));
        td.sites.push_back(s);
    }
    return Frame{9, 0, std::move(td)};
}

// A TOUCHDOWN_RESULT of n sites with cert_size-byte certificates; every 16th site refused.
inline Frame touchdown_result(size_t n, size_t cert_size = 600) {
    TouchdownResult tr{42, {}};
    tr.sites.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        if (i % 16 == 15)
            tr.sites.push_back({static_cast<uint16_t>(i), StatusCode::kConflict,
                                "location taken by another UID", std::nullopt});
        else
            tr.sites.push_back({static_cast<uint16_t>(i),
                                i % 5 == 0 ? StatusCode::kReissued : StatusCode::kOk, "",
                                identity_of(static_cast<uint32_t>(i), cert_size)});
    }
    return Frame{9, 0, std::move(tr)};
}

inline Frame results(size_t n) {
    Results r{kSession, 42, {}};
    for (size_t i = 0; i < n; ++i)
        r.sites.push_back({static_cast<uint16_t>(i), uid_of(static_cast<uint32_t>(i)),
                           i % 3 ? DieOutcome::kProgrammed : DieOutcome::kFailed,
                           i % 3 ? "1" : "FAIL_PROG_7"});
    return Frame{10, 0, std::move(r)};
}

inline Frame results_ack(size_t n) {
    ResultsAck a{42, {}};
    for (size_t i = 0; i < n; ++i)
        a.sites.push_back({static_cast<uint16_t>(i), uid_of(static_cast<uint32_t>(i)),
                           i % 7 ? StatusCode::kOk : StatusCode::kDuplicateResult,
                           i % 7 ? "" : "already PROGRAMMED"});
    return Frame{10, 0, std::move(a)};
}

}  // namespace waferprov::host::protocol::samples
