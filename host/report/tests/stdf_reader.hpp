// A small STDF V4 reader written for the tests only, independent of the library's writer: it
// walks records by REC_LEN, knows each record's field list and insists that every field list
// consumes the record exactly.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace stdf_test {

struct Part {
    int pir_head = -1, pir_site = -1;
    std::vector<std::string> dtr;  // DTR texts between PIR and PRR
    int head = 0, site = 0;
    uint8_t flags = 0;
    uint16_t num_test = 0, hard_bin = 0, soft_bin = 0;
    int16_t x = 0, y = 0;
    uint32_t test_t = 0;
    std::string part_id, part_txt;
};

struct Bin {
    int head = 0, site = 0;
    uint16_t number = 0;
    uint32_t count = 0;
    char pf = ' ';
    std::string name;
};

struct File {
    std::vector<std::pair<int, int>> sequence;  // (typ, sub) of every record
    uint8_t cpu_type = 0, stdf_ver = 0;
    uint32_t setup_t = 0, start_t = 0;
    std::vector<std::string> mir_strings;  // LOT_ID, PART_TYP, NODE_NAM, TSTR_TYP, JOB_NAM, ...
    std::vector<int> sdr_sites;
    char wcr_pos_x = 0, wcr_pos_y = 0;
    float wcr_die_w = 0;
    float wcr_wafer_size = 0;
    char wcr_flat = 0;
    uint32_t wir_start = 0;
    std::string wir_wafer_id;
    std::vector<Part> parts;
    uint32_t wrr_finish = 0, wrr_parts = 0, wrr_retests = 0, wrr_good = 0;
    std::string wrr_wafer_id, wrr_exc_desc;
    uint32_t pcr_parts = 0, pcr_retests = 0, pcr_good = 0;
    std::vector<Bin> hbr, sbr;
    uint32_t mrr_finish = 0;
};

// Parses `data`; on any structural problem returns false and says what in `error`.
bool parse(const std::vector<uint8_t>& data, File& out, std::string& error);

}  // namespace stdf_test
