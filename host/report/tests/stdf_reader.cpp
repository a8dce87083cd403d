#include "stdf_reader.hpp"

#include <cstring>
#include <stdexcept>

namespace stdf_test {

namespace {

struct Cursor {
    const uint8_t* p;
    size_t n;
    size_t i = 0;
    void need(size_t k) {
        if (i + k > n) throw std::runtime_error("field runs past REC_LEN");
    }
    uint8_t u1() {
        need(1);
        return p[i++];
    }
    uint16_t u2() {
        need(2);
        uint16_t v = static_cast<uint16_t>(p[i] | (p[i + 1] << 8));
        i += 2;
        return v;
    }
    uint32_t u4() {
        need(4);
        uint32_t v = 0;
        for (int k = 3; k >= 0; --k) v = (v << 8) | p[i + static_cast<size_t>(k)];
        i += 4;
        return v;
    }
    int16_t i2() { return static_cast<int16_t>(u2()); }
    float r4() {
        uint32_t b = u4();
        float f;
        std::memcpy(&f, &b, 4);
        return f;
    }
    char c1() { return static_cast<char>(u1()); }
    std::string cn() {
        size_t len = u1();
        need(len);
        std::string s(reinterpret_cast<const char*>(p + i), len);
        i += len;
        return s;
    }
    bool done() const { return i == n; }
};

void expect_end(const Cursor& c, const char* name) {
    if (!c.done())
        throw std::runtime_error(std::string(name) + ": " + std::to_string(c.n - c.i) +
                                 " bytes left over after the last field");
}

}  // namespace

bool parse(const std::vector<uint8_t>& data, File& f, std::string& error) {
    size_t off = 0;
    Part* open = nullptr;
    f.parts.reserve(data.size() / 64);
    try {
        while (off < data.size()) {
            if (data.size() - off < 4) throw std::runtime_error("truncated record header");
            const size_t len = static_cast<size_t>(data[off] | (data[off + 1] << 8));
            const int typ = data[off + 2], sub = data[off + 3];
            if (off + 4 + len > data.size()) throw std::runtime_error("REC_LEN past end of file");
            Cursor c{data.data() + off + 4, len};
            if (f.sequence.empty() && (typ != 0 || sub != 10))
                throw std::runtime_error("first record is not FAR");
            f.sequence.emplace_back(typ, sub);
            const int key = typ * 1000 + sub;
            switch (key) {
                case 10:  // FAR
                    f.cpu_type = c.u1();
                    f.stdf_ver = c.u1();
                    expect_end(c, "FAR");
                    break;
                case 1010: {  // MIR: fixed part, then C*n fields until the end
                    f.setup_t = c.u4();
                    f.start_t = c.u4();
                    c.u1();
                    c.c1();
                    c.c1();
                    c.c1();
                    c.u2();
                    c.c1();
                    while (!c.done()) f.mir_strings.push_back(c.cn());
                    if (f.mir_strings.size() > 38) throw std::runtime_error("MIR: too many fields");
                    break;
                }
                case 1080: {  // SDR
                    c.u1();
                    c.u1();
                    int k = c.u1();
                    for (int s = 0; s < k; ++s) f.sdr_sites.push_back(c.u1());
                    for (int s = 0; s < 16; ++s) c.cn();
                    expect_end(c, "SDR");
                    break;
                }
                case 2030:  // WCR
                    f.wcr_wafer_size = c.r4();
                    c.r4();
                    f.wcr_die_w = c.r4();
                    c.u1();
                    f.wcr_flat = c.c1();
                    c.i2();
                    c.i2();
                    f.wcr_pos_x = c.c1();
                    f.wcr_pos_y = c.c1();
                    expect_end(c, "WCR");
                    break;
                case 2010:  // WIR
                    c.u1();
                    c.u1();
                    f.wir_start = c.u4();
                    f.wir_wafer_id = c.cn();
                    expect_end(c, "WIR");
                    break;
                case 5010: {  // PIR
                    if (open) throw std::runtime_error("PIR while a part is open");
                    f.parts.emplace_back();
                    open = &f.parts.back();
                    open->pir_head = c.u1();
                    open->pir_site = c.u1();
                    expect_end(c, "PIR");
                    break;
                }
                case 50030:  // DTR
                    if (!open) throw std::runtime_error("DTR outside a part");
                    open->dtr.push_back(c.cn());
                    expect_end(c, "DTR");
                    break;
                case 5020: {  // PRR
                    if (!open) throw std::runtime_error("PRR without PIR");
                    Part& p = *open;
                    p.head = c.u1();
                    p.site = c.u1();
                    p.flags = c.u1();
                    p.num_test = c.u2();
                    p.hard_bin = c.u2();
                    p.soft_bin = c.u2();
                    p.x = c.i2();
                    p.y = c.i2();
                    p.test_t = c.u4();
                    p.part_id = c.cn();
                    p.part_txt = c.cn();
                    size_t fix = c.u1();  // B*n
                    c.need(fix);
                    c.i += fix;
                    expect_end(c, "PRR");
                    if (p.head != p.pir_head || p.site != p.pir_site)
                        throw std::runtime_error("PRR head/site differ from PIR");
                    open = nullptr;
                    break;
                }
                case 2020:  // WRR
                    c.u1();
                    c.u1();
                    f.wrr_finish = c.u4();
                    f.wrr_parts = c.u4();
                    f.wrr_retests = c.u4();
                    c.u4();
                    f.wrr_good = c.u4();
                    c.u4();
                    f.wrr_wafer_id = c.cn();
                    c.cn();
                    c.cn();
                    c.cn();
                    c.cn();
                    f.wrr_exc_desc = c.cn();
                    expect_end(c, "WRR");
                    break;
                case 1030:  // PCR
                    c.u1();
                    c.u1();
                    f.pcr_parts = c.u4();
                    f.pcr_retests = c.u4();
                    c.u4();
                    f.pcr_good = c.u4();
                    c.u4();
                    expect_end(c, "PCR");
                    break;
                case 1040:
                case 1050: {  // HBR / SBR
                    Bin b;
                    b.head = c.u1();
                    b.site = c.u1();
                    b.number = c.u2();
                    b.count = c.u4();
                    b.pf = c.c1();
                    b.name = c.cn();
                    expect_end(c, key == 1040 ? "HBR" : "SBR");
                    (key == 1040 ? f.hbr : f.sbr).push_back(b);
                    break;
                }
                case 1020:  // MRR
                    f.mrr_finish = c.u4();
                    c.c1();
                    c.cn();
                    c.cn();
                    expect_end(c, "MRR");
                    break;
                default:
                    throw std::runtime_error("unexpected record " + std::to_string(typ) + "," +
                                             std::to_string(sub));
            }
            off += 4 + len;
        }
        if (open) throw std::runtime_error("file ends inside a part");
        if (f.sequence.empty() || f.sequence.back() != std::pair{1, 20})
            throw std::runtime_error("last record is not MRR");
    } catch (const std::exception& e) {
        error = "at byte " + std::to_string(off) + ": " + e.what();
        return false;
    }
    return true;
}

}  // namespace stdf_test
