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
    for (size_t i = 0; i < ft.sites.size(); ++i) {
        const auto& in = ft.sites[i];
        auto& site = out.sites[i];
        site.site = in.site;
        if (!seen.insert(in.uid).second) {
            refuse_site(site, StatusCode::kConflict,
                        "UID " + to_hex(in.uid) + " is in another site of this touchdown", c);
            continue;
        }
        WP_ASSIGN_OR_RETURN(auto rec, ledger_->find_uid(in.uid));
        if (!rec) {
            if (job_.uid_policy == UidPolicy::kDerived)
                refuse_site(site, StatusCode::kNotProvisioned,
                            "UID " + to_hex(in.uid) + " is unknown to job " + job_.id +
                                ", which derives UIDs from wafer locations: a part it did not "
                                "provision at sort cannot be provisioned at final test",
                            c);
            else
                refuse_site(site, StatusCode::kNotProvisioned,
                            "UID " + to_hex(in.uid) +
                                " was not provisioned at sort; "
                                "provisioning at final test is not served yet",
                            c);
            continue;
        }
        FinalChallenge ch;
        ch.uid = in.uid;
        ch.loc = FinalLocation{ft.lot, ft.handler_id, in.site, "", -1, -1};
        if (in.carrier) {
            ch.loc.carrier = in.carrier->carrier_id;
            ch.loc.row = in.carrier->row;
            ch.loc.column = in.carrier->column;
        }
        // The nonce is what makes the challenge fresh: from OpenSSL's CSPRNG, never reused.
        if (RAND_bytes(ch.nonce.data(), static_cast<int>(ch.nonce.size())) != 1)
            return make_error(ErrorCode::kCrypto, "final test: RAND_bytes failed");
        want.push_back(std::move(ch));
        index.push_back(i);
    }
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
    for (size_t i = 0; i < r.sites.size(); ++i) {
        const auto& in = r.sites[i];
        auto& ack = out.sites[i];
        ack.site = in.site;
        ack.uid = in.uid;
        WP_ASSIGN_OR_RETURN(auto fin, ledger_->find_final(in.uid));
        WP_ASSIGN_OR_RETURN(auto rec, ledger_->find_uid(in.uid));
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
