// Final-test reports (issue #20): the lot's STDF read back by a small reader written here (not
// the writer's code, nor tests/stdf_reader.cpp), field by field, every record consumed
// exactly; the sort / final-test reconciliation's lists and checks; the files.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "waferprov/host/final_report.hpp"
#include "waferprov/testing/temp_dir.hpp"

using namespace waferprov;
using namespace waferprov::host::report;

namespace {

// ---- an independent STDF V4 reader: little-endian (FAR CPU_TYPE 2 is checked) ----
struct Record {
    uint8_t typ = 0, sub = 0;
    std::vector<uint8_t> body;
};

class Body {
public:
    explicit Body(const Record& r) : b_(r.body) {}
    uint8_t u1() {
        need(1);
        return b_[at_++];
    }
    uint16_t u2() {
        need(2);
        const uint16_t v = static_cast<uint16_t>(b_[at_] | (b_[at_ + 1] << 8));
        at_ += 2;
        return v;
    }
    uint32_t u4() {
        need(4);
        uint32_t v = 0;
        for (int i = 3; i >= 0; --i) v = (v << 8) | b_[at_ + static_cast<size_t>(i)];
        at_ += 4;
        return v;
    }
    int16_t i2() { return static_cast<int16_t>(u2()); }
    char c1() { return static_cast<char>(u1()); }
    std::string cn() {
        const size_t n = u1();
        need(n);
        std::string s(b_.begin() + static_cast<long>(at_), b_.begin() + static_cast<long>(at_ + n));
        at_ += n;
        return s;
    }
    bool done() const { return at_ == b_.size(); }

private:
    void need(size_t n) const {
        if (at_ + n > b_.size()) throw std::runtime_error("record body too short");
    }
    const std::vector<uint8_t>& b_;
    size_t at_ = 0;
};

std::vector<Record> records_of(const Bytes& file) {
    std::vector<Record> out;
    size_t at = 0;
    while (at < file.size()) {
        if (at + 4 > file.size()) throw std::runtime_error("truncated record header");
        const size_t len = file[at] | (file[at + 1] << 8);
        if (at + 4 + len > file.size()) throw std::runtime_error("truncated record body");
        Record r;
        r.typ = file[at + 2];
        r.sub = file[at + 3];
        r.body.assign(file.begin() + static_cast<long>(at + 4),
                      file.begin() + static_cast<long>(at + 4 + len));
        out.push_back(std::move(r));
        at += 4 + len;
    }
    return out;
}

struct Prr {
    uint8_t head = 0, site = 0, flags = 0;
    uint16_t num_test = 0, hard = 0, soft = 0;
    int16_t x = 0, y = 0;
    uint32_t test_t = 0;
    std::string part_id, part_txt;
};

Prr read_prr(const Record& r) {
    Body b(r);
    Prr p;
    p.head = b.u1();
    p.site = b.u1();
    p.flags = b.u1();
    p.num_test = b.u2();
    p.hard = b.u2();
    p.soft = b.u2();
    p.x = b.i2();
    p.y = b.i2();
    p.test_t = b.u4();
    p.part_id = b.cn();
    p.part_txt = b.cn();
    EXPECT_EQ(b.u1(), 0u);  // PART_FIX: empty B*n
    EXPECT_TRUE(b.done()) << "PRR not consumed exactly";
    return p;
}

FinalPart part(std::string uid, FinalOutcome o, std::string handler, int site) {
    FinalPart p;
    p.uid_hex = std::move(uid);
    p.outcome = o;
    p.handler = std::move(handler);
    p.site = site;
    p.tester = "FT-01";
    p.updated_us = 1700000000000000;
    return p;
}

// A lot with one part of every outcome, two handlers, a retested part, a site above 255 and
// two parts provisioned at sort that final test never saw.
FinalLot sample_lot() {
    FinalLot lot;
    lot.lot = "LOT7";
    lot.job = "J1";
    lot.product = "CHIP9";
    lot.customer = "ACME";
    lot.parts = {part("a1", FinalOutcome::kVerified, "H1", 1),
                 part("a2", FinalOutcome::kVerified, "H1", 2),
                 part("b1", FinalOutcome::kProvisioned, "H2", 3),
                 part("c1", FinalOutcome::kFailed, "H1", 4),
                 part("d1", FinalOutcome::kMismatch, "H2", 300),
                 part("e1", FinalOutcome::kUnanswered, "H2", 5)};
    lot.parts[1].challenges = 2;  // retested
    lot.parts[0].carrier = "S1";
    lot.parts[0].row = 0;
    lot.parts[0].column = 3;
    lot.parts[3].bin = "FT";
    lot.parts[5].updated_us = 1700000100000000;
    lot.sorted_uids = {"a1", "a2", "c1", "d1", "e1", "f1", "f2"};
    return lot;
}

}  // namespace

TEST(FinalReport, StdfHasOnePrrPerPartWithoutXYAndTheUidAsPartId) {
    const FinalLot lot = sample_lot();
    const auto recs = records_of(final_stdf_bytes(lot));
    ASSERT_GE(recs.size(), 3u);
    // FAR: little-endian, V4.
    ASSERT_TRUE(recs[0].typ == 0 && recs[0].sub == 10);
    {
        Body b(recs[0]);
        EXPECT_EQ(b.u1(), 2u);
        EXPECT_EQ(b.u1(), 4u);
        EXPECT_TRUE(b.done());
    }
    // MIR
    ASSERT_TRUE(recs[1].typ == 1 && recs[1].sub == 10);
    {
        Body b(recs[1]);
        EXPECT_EQ(b.u4(), 1700000000u);  // SETUP_T: the first part's time
        EXPECT_EQ(b.u4(), 1700000000u);  // START_T
        b.u1();                          // STAT_NUM
        EXPECT_EQ(b.c1(), 'P');
        b.c1();
        b.c1();
        EXPECT_EQ(b.u2(), 65535u);
        b.c1();
        EXPECT_EQ(b.cn(), "LOT7");           // LOT_ID
        EXPECT_EQ(b.cn(), "CHIP9");          // PART_TYP
        EXPECT_EQ(b.cn(), "FT-01");          // NODE_NAM
        b.cn();                              // TSTR_TYP
        EXPECT_EQ(b.cn(), "J1");             // JOB_NAM
        for (int i = 0; i < 5; ++i) b.cn();  // JOB_REV SBLOT_ID OPER_NAM EXEC_TYP EXEC_VER
        EXPECT_EQ(b.cn(), "FT");             // TEST_COD
        b.cn();                              // TST_TEMP
        EXPECT_EQ(b.cn(), "customer=ACME");
        EXPECT_TRUE(b.done());
    }
    std::map<std::string, uint8_t> head_of;  // handler -> HEAD_NUM, from the SDRs
    std::map<std::string, Prr> prr;
    std::map<std::string, std::string> dtr;
    std::map<uint16_t, std::pair<uint32_t, char>> hbr, sbr;
    uint32_t pcr_parts = 0, pcr_retests = 0, pcr_good = 0;
    std::string last_dtr;
    int pirs = 0;
    for (size_t i = 2; i < recs.size(); ++i) {
        const Record& r = recs[i];
        Body b(r);
        if (r.typ == 1 && r.sub == 80) {  // SDR
            const uint8_t head = b.u1();
            EXPECT_EQ(b.u1(), 1u);
            const size_t n = b.u1();
            for (size_t k = 0; k < n; ++k) b.u1();
            b.cn();  // HAND_TYP
            head_of[b.cn()] = head;
            for (int k = 0; k < 14; ++k) b.cn();
        } else if (r.typ == 5 && r.sub == 10) {  // PIR
            b.u1();
            b.u1();
            ++pirs;
        } else if (r.typ == 50 && r.sub == 30) {  // DTR
            last_dtr = b.cn();
        } else if (r.typ == 5 && r.sub == 20) {
            Prr p = read_prr(r);
            dtr[p.part_id] = last_dtr;
            prr[p.part_id] = p;
            continue;
        } else if (r.typ == 1 && r.sub == 30) {  // PCR
            EXPECT_EQ(b.u1(), 255u);
            EXPECT_EQ(b.u1(), 255u);
            pcr_parts = b.u4();
            pcr_retests = b.u4();
            EXPECT_EQ(b.u4(), 0u);
            pcr_good = b.u4();
            EXPECT_EQ(b.u4(), 0xFFFFFFFFu);
        } else if (r.typ == 1 && (r.sub == 40 || r.sub == 50)) {  // HBR, SBR
            b.u1();
            b.u1();
            const uint16_t bin = b.u2();
            const uint32_t n = b.u4();
            const char pf = b.c1();
            b.cn();
            (r.sub == 40 ? hbr : sbr)[bin] = {n, pf};
        } else if (r.typ == 1 && r.sub == 20) {  // MRR, the last record
            EXPECT_EQ(i, recs.size() - 1);
            EXPECT_EQ(b.u4(), 1700000100u);  // FINISH_T: the last part's time
            b.c1();
            b.cn();
            EXPECT_EQ(b.cn(), "reconciliation MISMATCH");  // d1 is a mismatch
        } else {
            ADD_FAILURE() << "unexpected record " << int(r.typ) << "," << int(r.sub);
            continue;
        }
        EXPECT_TRUE(b.done()) << "record " << int(r.typ) << "," << int(r.sub)
                              << " not consumed exactly";
    }
    EXPECT_EQ(pirs, 6);
    ASSERT_EQ(prr.size(), 6u);
    EXPECT_EQ(head_of.size(), 2u);
    struct Want {
        uint8_t site, flags;
        uint16_t hard, soft;
    };
    const std::map<std::string, Want> want = {{"a1", {1, 0x00, 1, 1}},    {"a2", {2, 0x01, 1, 1}},
                                              {"b1", {3, 0x00, 1, 2}},    {"c1", {4, 0x08, 3, 30}},
                                              {"d1", {255, 0x08, 4, 40}}, {"e1", {5, 0x10, 5, 50}}};
    for (const FinalPart& p : lot.parts) {
        const Prr& got = prr.at(p.uid_hex);
        const Want& w = want.at(p.uid_hex);
        EXPECT_EQ(got.head, head_of.at(p.handler)) << p.uid_hex;
        EXPECT_EQ(got.site, w.site) << p.uid_hex;
        EXPECT_EQ(got.flags, w.flags) << p.uid_hex;
        EXPECT_EQ(got.hard, w.hard) << p.uid_hex;
        EXPECT_EQ(got.soft, w.soft) << p.uid_hex;
        EXPECT_EQ(got.x, -32768) << p.uid_hex;
        EXPECT_EQ(got.y, -32768) << p.uid_hex;
        EXPECT_EQ(got.num_test, 1u);
    }
    EXPECT_NE(dtr.at("a1").find("carrier=S1 row=0 column=3"), std::string::npos) << dtr.at("a1");
    EXPECT_NE(dtr.at("d1").find("site=300"), std::string::npos) << dtr.at("d1");
    EXPECT_EQ(pcr_parts, 6u);
    EXPECT_EQ(pcr_retests, 1u);
    EXPECT_EQ(pcr_good, 3u);
    EXPECT_EQ(hbr.at(1), std::pair(3u, 'P'));
    EXPECT_EQ(hbr.at(3), std::pair(1u, 'F'));
    EXPECT_EQ(hbr.at(4), std::pair(1u, 'F'));
    EXPECT_EQ(hbr.at(5), std::pair(1u, ' '));
    EXPECT_EQ(sbr.at(1), std::pair(2u, 'P'));
    EXPECT_EQ(sbr.at(2), std::pair(1u, 'P'));
    EXPECT_EQ(sbr.at(30), std::pair(1u, 'F'));
    EXPECT_EQ(sbr.at(40), std::pair(1u, 'F'));
    EXPECT_EQ(sbr.at(50), std::pair(1u, ' '));
}

TEST(FinalReport, ReconciliationListsEveryPartOnceAndAMismatchFailsIt) {
    const FinalReconciliation r = reconcile_final(sample_lot());
    EXPECT_EQ(r.verified, (std::vector<std::string>{"a1", "a2"}));
    EXPECT_EQ(r.provisioned, std::vector<std::string>{"b1"});
    EXPECT_EQ(r.failed, std::vector<std::string>{"c1"});
    EXPECT_EQ(r.mismatched, std::vector<std::string>{"d1"});
    EXPECT_EQ(r.unanswered, std::vector<std::string>{"e1"});
    EXPECT_EQ(r.never_seen, (std::vector<std::string>{"f1", "f2"}));
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.mismatches(), 1u);
    const std::string text = final_reconciliation_text(r);
    EXPECT_NE(text.find("MISMATCH  signature mismatches = 0: 1 (parts that could not prove their "
                        "identity: swapped or counterfeit: d1)"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("RESULT MISMATCH (1 of 3 checks)"), std::string::npos) << text;
    const auto j = nlohmann::json::parse(final_reconciliation_json(r));
    EXPECT_EQ(j["format"], "waferprov-final-reconciliation-1");
    EXPECT_EQ(j["ok"], false);
    EXPECT_EQ(j["counts"]["never_seen"], 2);
    EXPECT_EQ(j["counts"]["provisioned_at_final_test"], 1);
    EXPECT_EQ(j["uids"]["unanswered"], nlohmann::json::array({"e1"}));
}

TEST(FinalReport, JoinProblemsAreChecksThatFail) {
    FinalLot lot = sample_lot();
    lot.parts.erase(lot.parts.begin() + 4);  // no mismatch any more
    EXPECT_TRUE(reconcile_final(lot).ok()) << final_reconciliation_text(reconcile_final(lot));
    // A verdict on a part sort never provisioned, and a second identity for a sorted part.
    lot.parts.push_back(part("99", FinalOutcome::kVerified, "H1", 9));
    lot.parts.push_back(part("f1", FinalOutcome::kProvisioned, "H1", 10));
    const FinalReconciliation r = reconcile_final(lot);
    EXPECT_EQ(r.mismatches(), 2u);
    const std::string text = final_reconciliation_text(r);
    EXPECT_NE(text.find("MISMATCH  parts challenged at final test that sort did not provision = "
                        "0: 1 (a verdict on a part with no PROGRAMMED sort record in this lot: "
                        "99)"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("MISMATCH  parts provisioned at final test that sort provisioned = 0: 1"),
              std::string::npos)
        << text;
}

TEST(FinalReport, BadInputIsRefusedAndTheFilesAreWritten) {
    FinalLot lot = sample_lot();
    lot.parts.push_back(lot.parts.front());
    EXPECT_FALSE(validate(lot).ok());
    lot.parts.pop_back();
    lot.parts[0].uid_hex = "not-hex";
    ASSERT_FALSE(validate(lot).ok());
    EXPECT_NE(validate(lot).error().message.find("'not-hex' is not hex"), std::string::npos);

    waferprov::testing::TempDir tmp("final_report");
    lot = sample_lot();
    lot.lot = "LOT/7";  // made a safe path component
    auto w = write_final_reports(tmp.path(), lot);
    ASSERT_TRUE(w.ok()) << w.error().message;
    const auto dir = tmp.path() / "LOT_7";
    EXPECT_EQ(w->files, (std::vector<std::filesystem::path>{dir / "LOT_7_final.stdf",
                                                            dir / "final_reconciliation.txt",
                                                            dir / "final_reconciliation.json"}));
    EXPECT_EQ(std::filesystem::file_size(dir / "LOT_7_final.stdf"), final_stdf_bytes(lot).size());
}
