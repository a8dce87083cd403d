// Final test on the tester link (docs/final-test.md): FINAL_TOUCHDOWN opens challenges for parts
// provisioned at sort, FINAL_RESULTS verifies the parts' signatures and records the verdicts.
// Kept out of job_link.cpp so the sort path stays as it is.
#include <openssl/rand.h>

#include <set>

#include "job_link.hpp"
#include "waferprov/possession.hpp"

namespace waferprov::host::link {

namespace pr = protocol;
using pr::StatusCode;

namespace {

void refuse_site(pr::SiteResponse& s, StatusCode code, std::string text, Counters& c) {
    s.status = code;
    s.text = pr::clip_text(std::move(text));
    ++c.refused_sites;
}

void refuse_ack(pr::ResultAck& a, StatusCode code, std::string text) {
    a.status = code;
    a.text = pr::clip_text(std::move(text));
}

StatusCode status_for(FinalStatus s) {
    switch (s) {
        case FinalStatus::kOk: return StatusCode::kOk;
        case FinalStatus::kUnknownUid:
        case FinalStatus::kNotProgrammed: return StatusCode::kNotProvisioned;
        case FinalStatus::kVoided: return StatusCode::kVoided;
        case FinalStatus::kChallengeRefused: return StatusCode::kChallengeRefused;
        case FinalStatus::kInvalidArgument: return StatusCode::kBadField;
    }
    return StatusCode::kInternal;
}

}  // namespace

Result<pr::TouchdownResult> JobLink::final_touchdown(const pr::FinalTouchdown& ft, uint64_t session,
                                                     const std::string& tester, Counters& c) {
    pr::TouchdownResult out;
    out.sequence = ft.sequence;
    out.sites.resize(ft.sites.size());
    std::set<wpid1::Uid> seen;
    std::vector<FinalChallenge> want;
    std::vector<size_t> index;
    // Parts never seen (provisioned here) and parts provisioned here before but not yet
    // PROGRAMMED (delivered again).
    std::vector<DieRequest> generate;
    std::vector<size_t> generate_index;
    std::vector<int> generate_sites;
    std::vector<FinalLocation> packages;
    std::vector<Delivery> again;
    std::vector<size_t> again_index;
    for (size_t i = 0; i < ft.sites.size(); ++i) {
        const auto& in = ft.sites[i];
        auto& site = out.sites[i];
        site.site = in.site;
        if (!seen.insert(in.uid).second) {
            refuse_site(site, StatusCode::kConflict,
                        "UID " + to_hex(in.uid) + " is in another site of this touchdown", c);
            continue;
        }
        FinalLocation where{ft.lot, ft.handler_id, in.site, "", -1, -1};
        if (in.carrier) {
            where.carrier = in.carrier->carrier_id;
            where.row = in.carrier->row;
            where.column = in.carrier->column;
        }
        WP_ASSIGN_OR_RETURN(auto rec, ledger_->find_uid(in.uid));
        if (!rec) {
            if (job_.uid_policy == UidPolicy::kDerived) {
                refuse_site(site, StatusCode::kNotProvisioned,
                            "UID " + to_hex(in.uid) + " is unknown to job " + job_.id +
                                ", which derives UIDs from wafer locations: a part it did not "
                                "provision at sort cannot be provisioned at final test",
                            c);
                continue;
            }
            // A packaged part's ledger location: the lot, no wafer position.
            generate.push_back(DieRequest{DieLocation{ft.lot, 0, 0, 0, "", true}, in.uid});
            generate_index.push_back(i);
            generate_sites.push_back(in.site);
            packages.push_back(where);
            continue;
        }
        if (rec->loc.packaged &&
            (rec->state == DieState::kDelivered || rec->state == DieState::kFailed)) {
            again.push_back(Delivery{in.uid, rec->loc, in.site});
            again_index.push_back(i);
            continue;
        }
        FinalChallenge ch;
        ch.uid = in.uid;
        ch.loc = where;
        // The nonce is what makes the challenge fresh: from OpenSSL's CSPRNG, never reused.
        if (RAND_bytes(ch.nonce.data(), static_cast<int>(ch.nonce.size())) != 1)
            return make_error(ErrorCode::kCrypto, "final test: RAND_bytes failed");
        want.push_back(std::move(ch));
        index.push_back(i);
    }
    if (!again.empty()) {
        WP_ASSIGN_OR_RETURN(auto delivered, ledger_->deliver(again, tester));
        for (size_t k = 0; k < delivered.size(); ++k)
            apply_delivery(out.sites[again_index[k]], std::move(delivered[k]), chain_id_, c);
    }
    if (!generate.empty())
        WP_RETURN_IF_ERROR(generate_and_deliver(tester, generate, generate_index, generate_sites,
                                                packages, out, c));
    if (want.empty()) return out;
    WP_ASSIGN_OR_RETURN(auto opened, ledger_->open_challenges(want, session, tester));
    for (size_t k = 0; k < opened.size(); ++k) {
        auto& site = out.sites[index[k]];
        auto& t = opened[k];
        if (t.status != FinalStatus::kOk) {
            refuse_site(site, status_for(t.status), std::move(t.message), c);
            continue;
        }
        site.status = StatusCode::kVerify;
        site.challenge = pr::SiteChallenge{t.uid, std::move(t.record->certificate_der), chain_id_,
                                           want[k].nonce};
    }
    return out;
}

Result<pr::ResultsAck> JobLink::final_results(const pr::Results& r, uint64_t session,
                                              const std::string& tester, Counters& c) {
    pr::ResultsAck out;
    out.sequence = r.sequence;
    out.sites.resize(r.sites.size());
    std::vector<FinalResult> items;
    std::vector<size_t> index;
    // Results of parts provisioned at final test (and not challenged since): recorded as at
    // sort, a result sent again acknowledged as there.
    pr::Results provisioned;
    provisioned.sequence = r.sequence;
    std::vector<size_t> provisioned_index;
    for (size_t i = 0; i < r.sites.size(); ++i) {
        const auto& in = r.sites[i];
        auto& ack = out.sites[i];
        ack.site = in.site;
        ack.uid = in.uid;
        WP_ASSIGN_OR_RETURN(auto fin, ledger_->find_final(in.uid));
        WP_ASSIGN_OR_RETURN(auto rec, ledger_->find_uid(in.uid));
        if (rec && rec->loc.packaged && fin && !fin->open &&
            fin->state == FinalState::kProvisioned) {
            if (in.signature) {
                refuse_ack(ack, StatusCode::kBadField,
                           "UID " + to_hex(in.uid) +
                               " was given its identity at final test: its result carries no "
                               "signature (there is no challenge to answer)");
                continue;
            }
            provisioned.sites.push_back(in);
            provisioned_index.push_back(i);
            continue;
        }
        if (!fin || !rec) {
            refuse_ack(ack, StatusCode::kChallengeRefused,
                       "no challenge was issued for UID " + to_hex(in.uid));
            continue;
        }
        FinalResult item{in.uid, fin->nonce, FinalVerdict::kFailed, in.bin};
        if (in.signature) {
            // Verified against the certificate the ledger holds for the UID, never against
            // anything the tester sent: a swapped part signs with another part's key.
            const Bytes msg = possession::challenge_message(in.uid, session, fin->nonce);
            WP_ASSIGN_OR_RETURN(const bool good,
                                possession::verify(rec->certificate_der, msg, *in.signature));
            item.verdict = !good                                       ? FinalVerdict::kMismatch
                           : in.outcome == pr::DieOutcome::kProgrammed ? FinalVerdict::kVerified
                                                                       : FinalVerdict::kFailed;
        } else if (in.outcome == pr::DieOutcome::kProgrammed) {
            refuse_ack(ack, StatusCode::kBadField,
                       "UID " + to_hex(in.uid) +
                           ": a passed part's result needs its signature over the challenge");
            continue;
        }
        items.push_back(std::move(item));
        index.push_back(i);
    }
    if (!provisioned.sites.empty()) {
        WP_ASSIGN_OR_RETURN(auto acks, results(provisioned, tester, c));
        for (size_t k = 0; k < acks.sites.size(); ++k)
            out.sites[provisioned_index[k]] = std::move(acks.sites[k]);
    }
    if (items.empty()) return out;
    WP_ASSIGN_OR_RETURN(auto done, ledger_->record_final_results(items, session, tester));
    for (size_t k = 0; k < done.size(); ++k) {
        auto& ack = out.sites[index[k]];
        if (done[k].status != FinalStatus::kOk) {
            refuse_ack(ack, status_for(done[k].status), std::move(done[k].message));
            continue;
        }
        ++c.results;
        if (items[k].verdict == FinalVerdict::kMismatch)
            refuse_ack(ack, StatusCode::kSignatureMismatch,
                       "UID " + to_hex(ack.uid) +
                           ": the signature does not verify against the part's certificate (a "
                           "swapped or counterfeit part); ALARM recorded");
    }
    return out;
}

}  // namespace waferprov::host::link
