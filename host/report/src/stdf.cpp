// STDF V4 writer (little-endian, CPU_TYPE 2). Record choices and bins: docs/reports.md.
#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>

#include "report_internal.hpp"
#include "waferprov/host/report.hpp"

#ifndef WAFERPROV_VERSION_STRING
#define WAFERPROV_VERSION_STRING "0"
#endif

namespace waferprov::host::report {

namespace {

int16_t coord(int v) {
    if (v <= kStdfMissingCoord || v > std::numeric_limits<int16_t>::max()) return kStdfMissingCoord;
    return static_cast<int16_t>(v);
}

const char* soft_bin_name(uint16_t bin) {
    switch (bin) {
        case 1: return "PROVISIONED";
        case 2: return "REISSUED";
        case 10: return "REFUSED_CONFLICT";
        case 11: return "REFUSED_QUOTA";
        case 12: return "FAILED_CHECK";
    }
    return "";
}

const char* hard_bin_name(uint16_t bin) {
    switch (bin) {
        case 1: return "PASS";
        case 2: return "REFUSED";
        case 3: return "FAILED";
    }
    return "";
}

}  // namespace

uint16_t stdf_soft_bin(Outcome o) noexcept {
    switch (o) {
        case Outcome::kProvisioned: return 1;
        case Outcome::kReissued: return 2;
        case Outcome::kRefusedConflict: return 10;
        case Outcome::kRefusedQuota: return 11;
        case Outcome::kFailedCheck: return 12;
        case Outcome::kNotSelected: return 0;
    }
    return 0;
}

uint16_t stdf_hard_bin(Outcome o) noexcept {
    switch (o) {
        case Outcome::kProvisioned:
        case Outcome::kReissued: return 1;
        case Outcome::kRefusedConflict:
        case Outcome::kRefusedQuota: return 2;
        case Outcome::kFailedCheck: return 3;
        case Outcome::kNotSelected: return 0;
    }
    return 0;
}

namespace {

// FAR and MIR: the file and the run.
void emit_header(Bytes& out, const WaferRun& run, const StdfOptions& options, uint32_t start) {
    emit(out, 0, 10, Rec().u1(2).u1(4));  // FAR: little-endian, STDF V4

    Rec mir;
    mir.u4(start)
        .u4(start)
        .u1(options.station)
        .c1(options.mode_code)
        .c1(' ')
        .c1(' ')
        .u2(65535)
        .c1(' ');
    mir.cn(run.lot)
        .cn(run.product)
        .cn(run.tester_node)
        .cn(options.tester_type)
        .cn(run.job)
        .cn("")           // JOB_REV
        .cn("")           // SBLOT_ID
        .cn("")           // OPER_NAM
        .cn("waferprov")  // EXEC_TYP
        .cn(options.exec_version.empty() ? WAFERPROV_VERSION_STRING : options.exec_version)
        .cn("PROV")                                                   // TEST_COD
        .cn("")                                                       // TST_TEMP
        .cn(run.customer.empty() ? "" : "customer=" + run.customer);  // USER_TXT
    emit(out, 1, 10, mir);
}

// SDR: the sites that tested a die.
void emit_sites(Bytes& out, const std::set<int>& sites) {
    Rec sdr;
    sdr.u1(1).u1(1).u1(static_cast<uint8_t>(sites.size()));
    for (int s : sites) sdr.u1(static_cast<uint8_t>(s));
    for (int i = 0; i < 16; ++i) sdr.cn("");  // HAND_TYP ... EXTR_ID
    emit(out, 1, 80, sdr);
}

// WCR: the wafer's size, die size, notch and axes.
void emit_wafer_configuration(Bytes& out, const MapGeometry& g) {
    // WF_FLAT: the notch/flat side as the picture shows it; blank when the map gives none or
    // puts it between the four sides.
    auto wf_flat = [](int deg) {
        switch (deg) {
            case 0: return 'U';
            case 90: return 'R';
            case 180: return 'D';
            case 270: return 'L';
            default: return ' ';
        }
    };
    const bool left =
        g.axis.find("Left") != std::string::npos || g.axis.find("left") != std::string::npos;
    const bool down =
        g.axis.find("Down") != std::string::npos || g.axis.find("down") != std::string::npos;
    Rec wcr;
    wcr.r4(static_cast<float>(g.wafer_diameter_mm))
        .r4(static_cast<float>(g.die_height_mm))
        .r4(static_cast<float>(g.die_width_mm))
        .u1(g.die_width_mm > 0 ? 3 : 0)  // WF_UNITS 3 = millimetres
        .c1(wf_flat(g.flat_deg))
        .i2(kStdfMissingCoord)
        .i2(kStdfMissingCoord)
        .c1(left ? 'L' : 'R')
        .c1(down ? 'D' : 'U');
    emit(out, 2, 30, wcr);
}

struct PartCounts {
    std::map<uint16_t, uint32_t> hard, soft;
    uint32_t parts = 0, good = 0, retests = 0;
    static uint32_t of(const std::map<uint16_t, uint32_t>& m, uint16_t bin) {
        auto it = m.find(bin);
        return it == m.end() ? 0 : it->second;
    }
};

// PIR, DTR and PRR for every tested die, in order.
PartCounts emit_parts(Bytes& out, const std::vector<const DieRecord*>& tested) {
    std::set<std::pair<int16_t, int16_t>> seen_xy;
    std::set<std::string> seen_id;
    PartCounts n;
    for (const DieRecord* d : tested) {
        const auto site = static_cast<uint8_t>(std::clamp(d->site, 1, 255));
        const int16_t x = coord(d->x);
        const int16_t y = coord(d->y);
        const std::string part_id = d->uid_hex.empty()
                                        ? "X" + std::to_string(d->x) + "Y" + std::to_string(d->y)
                                        : d->uid_hex;
        const uint16_t hard = stdf_hard_bin(d->outcome);
        const uint16_t soft = stdf_soft_bin(d->outcome);

        // Retest: the die was seen earlier in this file, or (reissued) in an earlier run of the
        // lot. Bits 0 and 1 are mutually exclusive: by X/Y when the coordinates fit, else by
        // PART_ID.
        uint8_t flags = 0;
        const bool have_xy = x != kStdfMissingCoord && y != kStdfMissingCoord;
        const bool again =
            have_xy ? !seen_xy.emplace(x, y).second : !seen_id.insert(part_id).second;
        if (again || d->outcome == Outcome::kReissued || d->retests > 0)
            flags |= have_xy ? 0x02 : 0x01;
        if (hard != 1) flags |= 0x08;

        emit(out, 5, 10, Rec().u1(1).u1(site));  // PIR
        std::string text = "WPID";
        if (!d->serial_hex.empty()) text += " serial=" + d->serial_hex;
        if (!d->uid_hex.empty()) text += " uid=" + d->uid_hex;
        text += " x=" + std::to_string(d->x) + " y=" + std::to_string(d->y);
        text += std::string(" outcome=") + to_string(d->outcome);
        text += std::string(" state=") + (d->state ? to_string(*d->state) : "-");
        emit(out, 50, 30, Rec().cn(text));  // DTR
        Rec prr;
        prr.u1(1)
            .u1(site)
            .u1(flags)
            .u2(1)
            .u2(hard)
            .u2(soft)
            .i2(x)
            .i2(y)
            .u4(d->test_time_ms)
            .cn(part_id)
            .cn(printable(d->note))
            .u1(0);  // PART_FIX: empty B*n
        emit(out, 5, 20, prr);

        n.parts++;
        if (hard == 1) n.good++;
        if (flags & 0x03) n.retests++;
        n.hard[hard]++;
        n.soft[soft]++;
    }

    return n;
}

// WRR, PCR, HBR, SBR and MRR: the wafer's and the file's summaries.
void emit_summaries(Bytes& out, const WaferRun& run, const PartCounts& n,
                    const std::string& wafer_id, uint32_t finish) {
    const bool ok = reconcile(run).ok();
    Rec wrr;
    wrr.u1(1)
        .u1(1)
        .u4(finish)
        .u4(n.parts)
        .u4(n.retests)
        .u4(0)
        .u4(n.good)
        .u4(kStdfMissingU4)
        .cn(wafer_id)
        .cn("")
        .cn("")
        .cn("")
        .cn("waferprov provisioning")
        .cn(ok ? "" : "reconciliation MISMATCH");
    emit(out, 2, 20, wrr);

    emit(out, 1, 30,
         Rec().u1(255).u1(255).u4(n.parts).u4(n.retests).u4(0).u4(n.good).u4(
             kStdfMissingU4));  // PCR
    for (uint16_t bin : std::initializer_list<uint16_t>{1, 2, 3})
        emit(out, 1, 40,
             Rec()
                 .u1(255)
                 .u1(255)
                 .u2(bin)
                 .u4(PartCounts::of(n.hard, bin))
                 .c1(bin == 1 ? 'P' : 'F')
                 .cn(hard_bin_name(bin)));  // HBR
    for (uint16_t bin : std::initializer_list<uint16_t>{1, 2, 10, 11, 12})
        emit(out, 1, 50,
             Rec()
                 .u1(255)
                 .u1(255)
                 .u2(bin)
                 .u4(PartCounts::of(n.soft, bin))
                 .c1(bin <= 2 ? 'P' : 'F')
                 .cn(soft_bin_name(bin)));                     // SBR
    emit(out, 1, 20, Rec().u4(finish).c1(' ').cn("").cn(""));  // MRR
}

}  // namespace

Bytes stdf_bytes(const WaferRun& run, const StdfOptions& options) {
    Bytes out;
    out.reserve(run.dies.size() * 140 + 4096);
    const uint32_t start = stdf_time(run.start_unix);
    const uint32_t finish = stdf_time(run.finish_unix);
    const std::string wafer_id =
        run.substrate_id.empty() ? run.lot + "-" + wafer_label(run.wafer) : run.substrate_id;
    emit_header(out, run, options, start);

    // Tested dies: every die this run did something to.
    std::vector<const DieRecord*> tested;
    std::set<int> sites;
    for (const DieRecord& d : run.dies)
        if (d.outcome != Outcome::kNotSelected) {
            tested.push_back(&d);
            sites.insert(std::clamp(d.site, 1, 255));
        }
    if (sites.empty()) sites.insert(1);
    emit_sites(out, sites);
    emit_wafer_configuration(out, run.geometry);
    emit(out, 2, 10, Rec().u1(1).u1(1).u4(start).cn(wafer_id));  // WIR
    const PartCounts n = emit_parts(out, tested);
    emit_summaries(out, run, n, wafer_id, finish);
    return out;
}

}  // namespace waferprov::host::report
