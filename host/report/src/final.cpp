// Final-test reports: the lot's STDF (parts by UID, no X/Y) and the sort / final-test
// reconciliation. Record choices and bins: docs/reports.md "Final-test STDF".
#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "report_internal.hpp"
#include "waferprov/host/final_report.hpp"

#ifndef WAFERPROV_VERSION_STRING
#define WAFERPROV_VERSION_STRING "0"
#endif

namespace waferprov::host::report {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr uint8_t kRetest = 0x01;      // supersedes an earlier result for the same PART_ID
constexpr uint8_t kFailed = 0x08;      // part failed
constexpr uint8_t kNoPassFail = 0x10;  // no pass/fail indication (bit 3 then means nothing)

bool is_hex(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c)) != 0;
    });
}

const char* hard_bin_name(uint16_t bin) {
    switch (bin) {
        case 1: return "PASS";
        case 3: return "FAILED";
        case 4: return "MISMATCH";
        case 5: return "NO_ANSWER";
    }
    return "";
}

const char* soft_bin_name(uint16_t bin) {
    switch (bin) {
        case 1: return "VERIFIED";
        case 2: return "PROVISIONED_FT";
        case 30: return "FAILED_FT";
        case 40: return "SIGNATURE_MISMATCH";
        case 50: return "CHALLENGE_UNANSWERED";
    }
    return "";
}

// HBIN_PF / SBIN_PF: P pass, F fail, ' ' unknown (never answered).
char pass_fail(uint16_t hard) { return hard == 1 ? 'P' : hard == 5 ? ' ' : 'F'; }

// The first few UIDs of a list, for a check's detail.
std::string some(const std::vector<std::string>& uids) {
    std::string s;
    for (size_t i = 0; i < uids.size() && i < 4; ++i) s += (i ? ", " : "") + uids[i];
    if (uids.size() > 4) s += ", ... (" + std::to_string(uids.size() - 4) + " more)";
    return s;
}

}  // namespace

const char* to_string(FinalOutcome o) noexcept {
    switch (o) {
        case FinalOutcome::kVerified: return "verified";
        case FinalOutcome::kProvisioned: return "provisioned-at-final-test";
        case FinalOutcome::kFailed: return "failed";
        case FinalOutcome::kMismatch: return "mismatch";
        case FinalOutcome::kUnanswered: return "unanswered";
    }
    return "?";
}

uint16_t final_hard_bin(FinalOutcome o) noexcept {
    switch (o) {
        case FinalOutcome::kVerified:
        case FinalOutcome::kProvisioned: return 1;
        case FinalOutcome::kFailed: return 3;
        case FinalOutcome::kMismatch: return 4;
        case FinalOutcome::kUnanswered: return 5;
    }
    return 0;
}

uint16_t final_soft_bin(FinalOutcome o) noexcept {
    switch (o) {
        case FinalOutcome::kVerified: return 1;
        case FinalOutcome::kProvisioned: return 2;
        case FinalOutcome::kFailed: return 30;
        case FinalOutcome::kMismatch: return 40;
        case FinalOutcome::kUnanswered: return 50;
    }
    return 0;
}

Status validate(const FinalLot& lot) {
    std::set<std::string> seen;
    for (const FinalPart& p : lot.parts) {
        if (!is_hex(p.uid_hex))
            return make_error(ErrorCode::kInvalidArgument,
                              "lot " + lot.lot + ": final-test part UID '" + printable(p.uid_hex) +
                                  "' is not hex");
        if (!seen.insert(p.uid_hex).second)
            return make_error(ErrorCode::kInvalidArgument,
                              "lot " + lot.lot + ": part " + p.uid_hex + " is listed twice");
    }
    std::set<std::string> sorted;
    for (const auto& uid : lot.sorted_uids)
        if (!is_hex(uid) || !sorted.insert(uid).second)
            return make_error(ErrorCode::kInvalidArgument, "lot " + lot.lot + ": sort UID '" +
                                                               printable(uid) +
                                                               "' is not hex or is listed twice");
    return ok_status();
}

bool FinalReconciliation::ok() const { return mismatches() == 0; }

size_t FinalReconciliation::mismatches() const {
    return static_cast<size_t>(
        std::count_if(checks.begin(), checks.end(), [](const Check& c) { return !c.ok; }));
}

FinalReconciliation reconcile_final(const FinalLot& lot) {
    FinalReconciliation r;
    r.lot = lot.lot;
    const std::set<std::string> sorted(lot.sorted_uids.begin(), lot.sorted_uids.end());
    std::set<std::string> seen;
    std::vector<std::string> unsorted_seen, sorted_provisioned;
    for (const FinalPart& p : lot.parts) {
        seen.insert(p.uid_hex);
        const bool at_sort = sorted.count(p.uid_hex) > 0;
        switch (p.outcome) {
            case FinalOutcome::kVerified: r.verified.push_back(p.uid_hex); break;
            case FinalOutcome::kProvisioned: r.provisioned.push_back(p.uid_hex); break;
            case FinalOutcome::kFailed: r.failed.push_back(p.uid_hex); break;
            case FinalOutcome::kMismatch: r.mismatched.push_back(p.uid_hex); break;
            case FinalOutcome::kUnanswered: r.unanswered.push_back(p.uid_hex); break;
        }
        if (p.outcome == FinalOutcome::kProvisioned && at_sort)
            sorted_provisioned.push_back(p.uid_hex);
        else if (p.outcome != FinalOutcome::kProvisioned && !at_sort)
            unsorted_seen.push_back(p.uid_hex);
    }
    for (const auto& uid : sorted)
        if (!seen.count(uid)) r.never_seen.push_back(uid);
    for (auto* v : {&r.verified, &r.provisioned, &r.failed, &r.mismatched, &r.unanswered,
                    &r.never_seen, &unsorted_seen, &sorted_provisioned})
        std::sort(v->begin(), v->end());

    auto check = [&](std::string name, const std::vector<std::string>& bad, std::string what) {
        Check c;
        c.name = std::move(name);
        c.ok = bad.empty();
        c.detail = std::to_string(bad.size());
        if (!bad.empty()) c.detail += " (" + what + ": " + some(bad) + ")";
        r.checks.push_back(std::move(c));
    };
    check("signature mismatches = 0", r.mismatched,
          "parts that could not prove their identity: swapped or counterfeit");
    check("parts challenged at final test that sort did not provision = 0", unsorted_seen,
          "a verdict on a part with no PROGRAMMED sort record in this lot");
    check("parts provisioned at final test that sort provisioned = 0", sorted_provisioned,
          "a second identity for a part that had one");
    return r;
}

std::string final_reconciliation_text(const FinalReconciliation& r) {
    std::ostringstream o;
    const size_t seen = r.verified.size() + r.provisioned.size() + r.failed.size() +
                        r.mismatched.size() + r.unanswered.size();
    auto row = [&](const char* name, size_t n) {
        o << "  " << name << std::string(44 - std::min<size_t>(44, std::string(name).size()), ' ')
          << n << "\n";
    };
    o << "FINAL TEST RECONCILIATION  lot " << printable(r.lot) << "\n\n";
    row("provisioned at sort and verified", r.verified.size());
    row("provisioned at final test", r.provisioned.size());
    row("provisioned at sort, never seen at final test", r.never_seen.size());
    row("mismatched (swapped or counterfeit)", r.mismatched.size());
    row("failed at final test", r.failed.size());
    row("challenged, never answered", r.unanswered.size());
    row("parts seen at final test", seen);
    o << "\nchecks\n";
    for (const Check& c : r.checks)
        o << "  " << (c.ok ? "OK        " : "MISMATCH  ") << c.name << ": " << c.detail << "\n";
    if (r.ok())
        o << "RESULT OK\n";
    else
        o << "RESULT MISMATCH (" << r.mismatches() << " of " << r.checks.size() << " checks)\n";
    for (auto [name, list] :
         {std::pair{"mismatched", &r.mismatched}, std::pair{"failed at final test", &r.failed},
          std::pair{"challenged, never answered", &r.unanswered},
          std::pair{"never seen at final test", &r.never_seen},
          std::pair{"provisioned at final test", &r.provisioned},
          std::pair{"verified", &r.verified}}) {
        if (list->empty()) continue;
        o << "\n" << name << " (" << list->size() << ")\n";
        for (const auto& uid : *list) o << "  " << uid << "\n";
    }
    return o.str();
}

std::string final_reconciliation_json(const FinalReconciliation& r) {
    json counts = json::object(), uids = json::object();
    for (auto [name, list] :
         {std::pair{"verified", &r.verified},
          std::pair{"provisioned_at_final_test", &r.provisioned},
          std::pair{"never_seen", &r.never_seen}, std::pair{"mismatched", &r.mismatched},
          std::pair{"failed", &r.failed}, std::pair{"unanswered", &r.unanswered}}) {
        counts[name] = list->size();
        uids[name] = *list;
    }
    json checks = json::array();
    for (const Check& c : r.checks)
        checks.push_back({{"name", c.name}, {"detail", c.detail}, {"ok", c.ok}});
    const json j = {{"format", "waferprov-final-reconciliation-1"},
                    {"lot", r.lot},
                    {"ok", r.ok()},
                    {"counts", counts},
                    {"uids", uids},
                    {"checks", checks}};
    return j.dump(1) + "\n";
}

namespace {

// FAR, MIR and one SDR per handler (HEAD_NUM = the handler's number, HAND_ID its id).
void emit_final_header(Bytes& out, const FinalLot& lot, const StdfOptions& options, uint32_t start,
                       const std::map<std::string, uint8_t>& heads,
                       const std::map<std::string, std::set<uint8_t>>& sites) {
    emit(out, 0, 10, Rec().u1(2).u1(4));  // FAR
    std::set<std::string> testers;
    for (const FinalPart& p : lot.parts)
        if (!p.tester.empty()) testers.insert(p.tester);
    std::string node;
    for (const auto& t : testers) node += (node.empty() ? "" : ",") + t;
    Rec mir;
    mir.u4(start)
        .u4(start)
        .u1(options.station)
        .c1(options.mode_code)
        .c1(' ')
        .c1(' ')
        .u2(65535)
        .c1(' ');
    mir.cn(lot.lot)
        .cn(lot.product)
        .cn(node)
        .cn(options.tester_type)
        .cn(lot.job)
        .cn("")  // JOB_REV
        .cn("")  // SBLOT_ID
        .cn("")  // OPER_NAM
        .cn("waferprov")
        .cn(options.exec_version.empty() ? WAFERPROV_VERSION_STRING : options.exec_version)
        .cn("FT")  // TEST_COD: final test
        .cn("")    // TST_TEMP
        .cn(lot.customer.empty() ? "" : "customer=" + lot.customer);
    emit(out, 1, 10, mir);
    for (const auto& [handler, head] : heads) {
        Rec sdr;
        const auto& s = sites.at(handler);
        sdr.u1(head).u1(1).u1(static_cast<uint8_t>(std::min<size_t>(s.size(), 255)));
        size_t n = 0;
        for (uint8_t site : s)
            if (n++ < 255) sdr.u1(site);
        sdr.cn("").cn(handler);                   // HAND_TYP, HAND_ID
        for (int i = 0; i < 14; ++i) sdr.cn("");  // CARD_TYP ... EXTR_ID
        emit(out, 1, 80, sdr);
    }
}

}  // namespace

Bytes final_stdf_bytes(const FinalLot& lot, const StdfOptions& options) {
    Bytes out;
    out.reserve(lot.parts.size() * 160 + 4096);
    int64_t first_us = 0, last_us = 0;
    std::map<std::string, uint8_t> heads;
    std::map<std::string, std::set<uint8_t>> sites;
    auto site_of = [](const FinalPart& p) {
        return static_cast<uint8_t>(std::clamp(p.site, 0, 255));
    };
    for (const FinalPart& p : lot.parts) {
        heads.emplace(p.handler, 0);
        sites[p.handler].insert(site_of(p));
        if (p.updated_us > 0)
            first_us = first_us == 0 ? p.updated_us : std::min(first_us, p.updated_us);
        last_us = std::max(last_us, p.updated_us);
    }
    uint8_t next = 1;
    for (auto& [handler, head] : heads) head = next < 255 ? next++ : 255;
    const uint32_t start = stdf_time(first_us / 1000000), finish = stdf_time(last_us / 1000000);
    emit_final_header(out, lot, options, start, heads, sites);

    std::map<uint16_t, uint32_t> hard, soft;
    uint32_t good = 0, retests = 0;
    for (const FinalPart& p : lot.parts) {
        const uint8_t head = heads.at(p.handler), site = site_of(p);
        const uint16_t hb = final_hard_bin(p.outcome), sb = final_soft_bin(p.outcome);
        uint8_t flags = p.challenges > 1 ? kRetest : 0;
        if (p.outcome == FinalOutcome::kFailed || p.outcome == FinalOutcome::kMismatch)
            flags |= kFailed;
        if (p.outcome == FinalOutcome::kUnanswered) flags |= kNoPassFail;
        emit(out, 5, 10, Rec().u1(head).u1(site));  // PIR
        std::string text = "WPID-FT uid=" + p.uid_hex + " outcome=" + to_string(p.outcome) +
                           " handler=" + p.handler + " site=" + std::to_string(p.site);
        if (!p.carrier.empty())
            text += " carrier=" + p.carrier + " row=" + std::to_string(p.row) +
                    " column=" + std::to_string(p.column);
        if (!p.bin.empty()) text += " bin=" + p.bin;
        if (!p.sort_where.empty()) text += " sort=" + p.sort_where;
        emit(out, 50, 30, Rec().cn(printable(text)));  // DTR
        Rec prr;
        prr.u1(head)
            .u1(site)
            .u1(flags)
            .u2(1)  // NUM_TEST: the final-test step
            .u2(hb)
            .u2(sb)
            .i2(kStdfMissingCoord)  // a packaged part has no wafer X/Y
            .i2(kStdfMissingCoord)
            .u4(0)  // TEST_T unknown
            .cn(p.uid_hex)
            .cn("")
            .u1(0);  // PART_FIX: empty B*n
        emit(out, 5, 20, prr);
        ++hard[hb];
        ++soft[sb];
        good += hb == 1;
        retests += (flags & kRetest) != 0;
    }
    const auto parts = static_cast<uint32_t>(lot.parts.size());
    emit(out, 1, 30,
         Rec().u1(255).u1(255).u4(parts).u4(retests).u4(0).u4(good).u4(kStdfMissingU4));  // PCR
    for (uint16_t bin : std::initializer_list<uint16_t>{1, 3, 4, 5})
        emit(out, 1, 40,
             Rec().u1(255).u1(255).u2(bin).u4(hard[bin]).c1(pass_fail(bin)).cn(hard_bin_name(bin)));
    for (auto [bin, hb] : std::initializer_list<std::pair<uint16_t, uint16_t>>{
             {1, 1}, {2, 1}, {30, 3}, {40, 4}, {50, 5}})
        emit(out, 1, 50,
             Rec().u1(255).u1(255).u2(bin).u4(soft[bin]).c1(pass_fail(hb)).cn(soft_bin_name(bin)));
    const bool ok = reconcile_final(lot).ok();
    emit(out, 1, 20,
         Rec()
             .u4(finish)
             .c1(' ')
             .cn("waferprov final test")
             .cn(ok ? "" : "reconciliation MISMATCH"));
    return out;
}

Result<Written> write_final_reports(const fs::path& out, const FinalLot& lot,
                                    const StdfOptions& options) {
    WP_RETURN_IF_ERROR(validate(lot));
    Written w;
    const fs::path dir = out / safe_path_component(lot.lot);
    const Bytes stdf = final_stdf_bytes(lot, options);
    const FinalReconciliation r = reconcile_final(lot);
    const fs::path stdf_path = dir / (safe_path_component(lot.lot) + "_final.stdf");
    const std::string text = final_reconciliation_text(r), js = final_reconciliation_json(r);
    for (const auto& [path, data] :
         {std::pair{stdf_path,
                    std::string_view(reinterpret_cast<const char*>(stdf.data()), stdf.size())},
          std::pair{dir / "final_reconciliation.txt", std::string_view(text)},
          std::pair{dir / "final_reconciliation.json", std::string_view(js)}}) {
        if (Status s = write_file_atomic(path, data); !s.ok())
            return s.error().with_context("writing the final-test reports of lot " + lot.lot);
        w.files.push_back(path);
    }
    return w;
}

}  // namespace waferprov::host::report
