// The report input for one wafer, filled from its map and the ledger's records: shared by `run`
// (which adds what the pipeline did to each die) and `report` (which reads the ledger alone).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "waferprov/host/job.hpp"
#include "waferprov/host/ledger.hpp"
#include "waferprov/host/report.hpp"

namespace waferprov::cli {

// Every die of the map with its bin, whether it is `selected`, and the ledger's state, serial and
// UID where the ledger holds the die. Outcomes are left at kNotSelected for the caller.
// `retests`: Ledger::retests() (deliveries again after a FAILED result), for the STDF retest
// flags and counts.
inline host::report::WaferRun wafer_run_from_ledger(
    const host::Job& job, const host::WaferMap& map, const std::vector<host::LedgerRecord>& records,
    const std::set<std::pair<int, int>>& selected,
    const std::map<wpid1::Uid, uint32_t>& retests = {}) {
    host::report::WaferRun wr;
    wr.job = job.id;
    wr.product = job.product;
    wr.customer = job.customer;
    wr.lot = map.lot;
    wr.wafer = map.wafer;
    wr.substrate_id = map.substrate_id;
    char host_name[256] = {};
    ::gethostname(host_name, sizeof host_name - 1);
    wr.tester_node = host_name;
    wr.geometry = host::report::geometry_of(map);
    wr.dies = host::report::dies_from_map(map);
    // Only this physical wafer's records: a record of the same lot and wafer number under
    // another substrate id belongs to another wafer.
    std::map<std::pair<int, int>, const host::LedgerRecord*> by_loc;
    for (const auto& rec : records)
        if (rec.loc.substrate == map.substrate_id) by_loc[{rec.loc.x, rec.loc.y}] = &rec;
    for (auto& d : wr.dies) {
        const std::pair<int, int> key{d.x, d.y};
        d.selected = selected.count(key) > 0;
        if (auto it = by_loc.find(key); it != by_loc.end()) {
            d.state = it->second->state;
            d.serial_hex = to_hex(it->second->serial);
            d.uid_hex = to_hex(it->second->uid);
            if (auto r = retests.find(it->second->uid); r != retests.end()) d.retests = r->second;
            // STDF SITE_NUM counts from 1: the tester link's site s is STDF site s + 1.
            if (it->second->site >= 0) d.site = std::min(it->second->site + 1, 255);
        }
    }
    return wr;
}

}  // namespace waferprov::cli
