// waferprov ledger verify|export|show|summary|list|void|migrate  (docs/ledger.md)
#include <charconv>
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli.hpp"
#include "maps.hpp"
#include "waferprov/host/ca_signers.hpp"
#include "waferprov/host/job.hpp"
#include "waferprov/host/ledger.hpp"
#include "waferprov/host/pipeline.hpp"

namespace waferprov::cli {
namespace {

constexpr const char* kUsage =
    "usage: waferprov ledger verify [--job FILE] [--ledger FILE] [--quick] [--head SEQ:HASH]\n"
    "                               [--anchor FILE]\n"
    "       waferprov ledger verify --export DIR --ca FILE\n"
    "       waferprov ledger export [--job FILE] [--ledger FILE] --out DIR\n"
    "                               [--ca-key FILE --ca-cert FILE]\n"
    "       waferprov ledger show [--job FILE] [--ledger FILE] [--uid HEX | --at LOT:WAFER:X:Y]\n"
    "       waferprov ledger summary [--job FILE] [--ledger FILE]\n"
    "       waferprov ledger list [--job FILE] [--ledger FILE] [--state STATE]\n"
    "       waferprov ledger void --job FILE --uid HEX --reason TEXT\n"
    "       waferprov ledger migrate [--job FILE] [--ledger FILE]\n"
    "                                [--map FILE [--wafer N] ...]\n"
    "\n"
    "--job FILE: the job's ledger and CA (PEM key or PKCS#11 token); --ledger overrides the\n"
    "  ledger, --ca-key/--ca-cert sign an export with a PEM key instead of the job's CA.\n"
    "--ledger: a SQLite file (a path, or sqlite:PATH) or a PostgreSQL database\n"
    "  (postgresql://...; docs/ledger.md \"Stores\").\n"
    "verify --ledger: runs SQLite's integrity_check on the file (--quick: its quick_check,\n"
    "  structure only), recomputes the event hash chain and checks that replaying it yields the\n"
    "  records table, the quota counter and the stored head; checks that the chain contains the\n"
    "  head in the anchor beside the ledger (FILE.anchor; --anchor FILE or the job's `anchor`\n"
    "  for PostgreSQL, whose hosts each keep one), with --job of a PKCS#11 job the head\n"
    "  in the CA's token, and, with --head SEQ:HASH, a head you\n"
    "  hold (an earlier export's manifest, a verify's output): a ledger behind either was\n"
    "  rolled back. Opens the ledger read-only (works on read-only media, never writes).\n"
    "verify --export: checks an export as the customer does, without the ledger: the manifest\n"
    "  signature under the CA certificate (--ca: PEM, a bundle is accepted if it contains the\n"
    "  manifest's CA certificate), the file hashes, the chain, the counts and every device\n"
    "  certificate (key, serial, subject serialNumber = UID, signed by the CA).\n"
    "export: writes records.jsonl, events.jsonl, manifest.json and manifest.sig into DIR (which\n"
    "  must not exist), signing the manifest with the manufacturer CA key.\n"
    "show/summary: the job, counts per state, quota used and left, the chain head; with --uid,\n"
    "  one die's record; with --at, the record of the die at that location (lot, wafer number,\n"
    "  x, y; the lot is everything before the last three colons).\n"
    "list: one tab-separated line per record (uid, lot, wafer, substrate, x, y, state, serial,\n"
    "  tester, bin), ordered by lot, wafer, y, x; --state ISSUED|DELIVERED|PROGRAMMED|FAILED|VOID\n"
    "  lists only records in that state.\n"
    "void: takes a die's identity out of service for good (a die scrapped, a key known to be\n"
    "  exposed): its record becomes VOID with the reason (1..256 printable ASCII), one VOID\n"
    "  event of the hash chain; it is never delivered again and keeps counting against the\n"
    "  quota. Needs --job (the ledger's anchors, a PKCS#11 job's token). A VOID identity cannot\n"
    "  be voided again.\n"
    "migrate: brings an older ledger to this version (4), in one transaction, keeping its\n"
    "  history: from version 3 (one DELIVER event per die) it takes no maps; from version 2\n"
    "  (before substrate ids) every wafer it holds gets the substrate id of its map (--map, one\n"
    "  per wafer; --wafer N numbers the map before it), refused with nothing changed unless\n"
    "  every wafer has exactly one map. Each step is one MIGRATE event of the hash chain.\n"
    "  Identities keep their UIDs.\n"
    "Exit status: 0 ok; 1 verification failed or an error; 2 usage.\n";

int usage_error(const std::string& msg) {
    std::cerr << "waferprov ledger: " << msg << "\n" << kUsage;
    return kExitUsage;
}

int fail(const Error& e) {
    std::cerr << "waferprov ledger: " << e.describe() << "\n";
    return kExitFailure;
}

int report(const host::VerifyReport& rep, const std::string& what) {
    for (const auto& n : rep.notes) std::cout << "note: " << n << "\n";
    if (rep.ok()) {
        std::cout << what << ": OK - " << rep.events << " events, " << rep.records
                  << " records, chain head " << host::describe_head(rep.head) << "\n";
        return kExitOk;
    }
    std::cout << what << ": FAILED - " << rep.problems.size() << " problem(s)\n";
    for (const auto& p : rep.problems) std::cout << "  " << p << "\n";
    return kExitFailure;
}

// The ledger to work on: --ledger, else the one the --job file names.
Result<std::string> ledger_path(const ParsedArgs& a) {
    if (a.has("ledger")) return a.get("ledger");
    if (!a.has("job"))
        return make_error(ErrorCode::kInvalidArgument, "give --job FILE or --ledger FILE");
    WP_ASSIGN_OR_RETURN(host::Job job, host::load_job(a.get("job")));
    return job.ledger.string();
}

int run_verify(const ParsedArgs& a) {
    if (a.has("export")) {
        if (!a.has("ca")) return usage_error("verify --export needs --ca FILE");
        if (a.has("head") || a.has("quick"))
            return usage_error("--head and --quick check a ledger, not an export");
        auto rep = host::Ledger::verify_export(a.get("export"), a.get("ca"));
        if (!rep.ok()) return fail(rep.error());
        return report(*rep, "export " + a.get("export"));
    }
    if (!a.has("ledger") && !a.has("job"))
        return usage_error("verify needs --job FILE, --ledger FILE or --export DIR --ca FILE");
    auto path = ledger_path(a);
    if (!path.ok()) return fail(path.error());
    host::VerifyOptions options;
    options.quick = a.has("quick");
    if (a.has("head")) {
        auto head = host::parse_head(a.get("head"));
        if (!head.ok()) return usage_error("--head: " + head.error().message);
        options.expected_head = *head;
    }
    if (a.has("job")) {
        // A PKCS#11 job's head also lives in its token: compare against it too (read only).
        auto job = host::load_job(a.get("job"));
        if (!job.ok()) return fail(job.error());
        auto lc = host::job_ledger_config(*job);
        if (!lc.ok()) return fail(lc.error());
        options.token_anchor = lc->token_anchor;
        if (job->anchor) options.anchor_file = *job->anchor;
    }
    if (a.has("anchor")) options.anchor_file = a.get("anchor");
    auto l = host::Ledger::open_existing(*path);
    if (!l.ok()) return fail(l.error());
    auto rep = (*l)->verify(options);
    if (!rep.ok()) return fail(rep.error());
    return report(*rep, "ledger " + *path);
}

int run_export(const ParsedArgs& a) {
    if (!a.has("out")) return usage_error("export needs --out DIR");
    const bool pem = a.has("ca-key") || a.has("ca-cert");
    if (pem && !(a.has("ca-key") && a.has("ca-cert")))
        return usage_error("export needs both --ca-key and --ca-cert");
    if (!pem && !a.has("job")) return usage_error("export needs --job FILE or --ca-key/--ca-cert");
    auto path = ledger_path(a);
    if (!path.ok()) return fail(path.error());
    auto l = host::Ledger::open_existing(*path);
    if (!l.ok()) return fail(l.error());
    Result<std::unique_ptr<host::Signer>> signer = make_error(ErrorCode::kInternal, "no signer");
    if (pem) {
        signer = host::make_signer(host::PemSignerConfig{a.get("ca-key"), a.get("ca-cert")});
    } else {
        auto job = host::load_job(a.get("job"));
        if (!job.ok()) return fail(job.error());
        signer = host::open_job_signer(*job, 1);
    }
    if (!signer.ok()) return fail(signer.error());
    if (auto st = (*l)->export_to(a.get("out"), **signer); !st.ok()) return fail(st.error());
    std::cout << "exported " << *path << " to " << a.get("out") << " (manifest signed by "
              << (*signer)->describe() << ")\n";
    return kExitOk;
}

void print_record(const host::LedgerRecord& r) {
    std::cout << "uid          " << to_hex(r.uid) << "\n"
              << "location     " << r.loc.describe() << "\n"
              << "state        " << host::to_string(r.state) << "\n"
              << "serial       " << to_hex(r.serial) << "\n"
              << "public key   " << to_hex(r.public_key) << "\n"
              << "wrapped key  " << to_hex(r.wrapped) << "\n"
              << "certificate  " << r.certificate_der.size() << " bytes DER\n"
              << "issued       " << host::iso8601_utc(r.issued_us) << "\n"
              << "delivered    " << host::iso8601_utc(r.delivered_us) << "\n"
              << "result       " << host::iso8601_utc(r.result_us) << "\n"
              << "updated      " << host::iso8601_utc(r.updated_us) << "\n"
              << "tester       " << r.tester << "\n"
              << "bin          " << r.bin << "\n"
              << "reissues     " << r.reissues << "\n";
    if (!r.void_reason.empty()) std::cout << "void reason  " << r.void_reason << "\n";
}

// --at LOT:WAFER:X:Y. A lot may itself contain colons: the last three fields are the numbers.
Result<host::DieLocation> parse_at(const std::string& text) {
    const auto bad = [&] {
        return make_error(ErrorCode::kInvalidArgument,
                          "--at " + text +
                              ": expected LOT:WAFER:X:Y (a wafer number and x, y "
                              "as integers)");
    };
    std::vector<int> numbers;
    size_t end = text.size();
    for (int k = 0; k < 3; ++k) {
        const size_t colon = end == 0 ? std::string::npos : text.rfind(':', end - 1);
        if (colon == std::string::npos) return bad();
        int v = 0;
        const char* first = text.data() + colon + 1;
        const char* last = text.data() + end;
        auto [ptr, ec] = std::from_chars(first, last, v);
        if (ec != std::errc() || ptr != last || first == last) return bad();
        numbers.push_back(v);
        end = colon;
    }
    if (end == 0) return bad();
    host::DieLocation loc;
    loc.lot = text.substr(0, end);
    loc.wafer = numbers[2];
    loc.x = numbers[1];
    loc.y = numbers[0];
    return loc;
}

int run_show(const ParsedArgs& a) {
    if (!a.has("ledger") && !a.has("job"))
        return usage_error("show needs --job FILE or --ledger FILE");
    auto path = ledger_path(a);
    if (!path.ok()) return fail(path.error());
    auto l = host::Ledger::open_existing(*path);
    if (!l.ok()) return fail(l.error());
    if (a.has("uid")) {
        auto uid = from_hex_fixed<wpid1::kUidSize>(a.get("uid"), "--uid");
        if (!uid.ok()) return usage_error(uid.error().message);
        auto r = (*l)->find_uid(*uid);
        if (!r.ok()) return fail(r.error());
        if (!r->has_value()) {
            std::cerr << "waferprov ledger: UID " << a.get("uid") << " is not in the ledger\n";
            return kExitFailure;
        }
        print_record(**r);
        return kExitOk;
    }
    if (a.has("at")) {
        auto loc = parse_at(a.get("at"));
        if (!loc.ok()) return usage_error(loc.error().message);
        auto r = (*l)->find_location(*loc);
        if (!r.ok()) return fail(r.error());
        if (!r->has_value()) {
            std::cerr << "waferprov ledger: no record at " << loc->lot << " wafer " << loc->wafer
                      << " (" << loc->x << ", " << loc->y << ")\n";
            return kExitFailure;
        }
        print_record(**r);
        return kExitOk;
    }
    const auto& c = (*l)->config();
    auto counts = (*l)->counts();
    auto quota = (*l)->quota();
    auto head = (*l)->head();
    if (!counts.ok()) return fail(counts.error());
    if (!quota.ok()) return fail(quota.error());
    if (!head.ok()) return fail(head.error());
    std::cout << "job          " << c.job_id << "\n"
              << "customer     " << c.customer << "\n"
              << "product      " << c.product << "\n";
    for (host::DieState s :
         {host::DieState::kIssued, host::DieState::kDelivered, host::DieState::kProgrammed,
          host::DieState::kFailed, host::DieState::kVoid}) {
        std::string name = host::to_string(s);
        name.resize(13, ' ');
        std::cout << name << counts->of(s) << "\n";
    }
    std::cout << "total        " << counts->total() << "\n"
              << "quota        " << quota->quota << " (used " << quota->used << ", left "
              << quota->left() << ")\n"
              << "chain head   event " << head->events << " " << to_hex(head->hash) << "\n";
    return kExitOk;
}

int run_migrate(const ParsedArgs& a) {
    auto path = ledger_path(a);
    if (!path.ok()) return fail(path.error());
    auto list = map_args(a);
    if (!list.ok()) return fail(list.error());
    host::MapReadOptions options;
    if (a.has("job")) {
        auto job = host::load_job(a.get("job"));
        if (!job.ok()) return fail(job.error());
        options = map_options_of(*job);
    }
    std::vector<host::WaferSubstrate> wafers;
    for (const auto& m : *list) {
        auto map = read_map(m, options);
        if (!map.ok()) return fail(map.error());
        wafers.push_back(host::WaferSubstrate{map->lot, map->wafer, map->substrate_id});
    }
    auto rep = host::Ledger::migrate(*path, wafers);
    if (!rep.ok()) return fail(rep.error());
    for (const auto& w : rep->wafers)
        std::cout << w.lot << " wafer " << w.wafer << ": substrate " << w.substrate << "\n";
    if (rep->from_version == 2)
        std::cout << "migrated " << *path << ": " << rep->records << " records on "
                  << rep->wafers.size() << " wafer(s) now carry their substrate id\n";
    std::cout << "migrated " << *path << " from schema version " << rep->from_version << " to "
              << rep->to_version << ": one DELIVER event per touchdown from here on\n";
    return kExitOk;
}

int run_list(const ParsedArgs& a) {
    if (!a.has("ledger") && !a.has("job"))
        return usage_error("list needs --job FILE or --ledger FILE");
    std::optional<host::DieState> only;
    if (a.has("state")) {
        auto st = host::die_state_from_string(a.get("state"));
        if (!st.ok()) return usage_error("--state: " + st.error().message);
        only = *st;
    }
    auto path = ledger_path(a);
    if (!path.ok()) return fail(path.error());
    auto l = host::Ledger::open_existing(*path);
    if (!l.ok()) return fail(l.error());
    std::cout << "uid\tlot\twafer\tsubstrate\tx\ty\tstate\tserial\ttester\tbin\n";
    const Status st = (*l)->for_each([&](const host::LedgerRecord& r) {
        if (only && r.state != *only) return ok_status();
        // A packaged part (provisioned at final test) has no wafer position: "-".
        auto pos = [&](int v) { return r.loc.packaged ? std::string("-") : std::to_string(v); };
        std::cout << to_hex(r.uid) << "\t" << r.loc.lot << "\t" << pos(r.loc.wafer) << "\t"
                  << r.loc.substrate << "\t" << pos(r.loc.x) << "\t" << pos(r.loc.y) << "\t"
                  << host::to_string(r.state) << "\t" << to_hex(r.serial) << "\t" << r.tester
                  << "\t" << r.bin << "\n";
        return ok_status();
    });
    if (!st.ok()) return fail(st.error());
    return kExitOk;
}

int run_void(const ParsedArgs& a) {
    if (!a.has("job")) return usage_error("void needs --job FILE (the job's ledger and anchors)");
    if (a.has("ledger")) return usage_error("void takes the ledger from --job, not --ledger");
    if (!a.has("uid")) return usage_error("void needs --uid HEX");
    if (!a.has("reason")) return usage_error("void needs --reason TEXT");
    auto uid = from_hex_fixed<wpid1::kUidSize>(a.get("uid"), "--uid");
    if (!uid.ok()) return usage_error(uid.error().message);
    auto job = host::load_job(a.get("job"));
    if (!job.ok()) return fail(job.error());
    // Never creates a ledger: voiding names an identity the job issued.
    if (std::error_code ec; !std::filesystem::exists(job->ledger, ec)) {
        std::cerr << "waferprov ledger: job " << job->id << " has no ledger at "
                  << job->ledger.string() << " (nothing was issued, nothing to void)\n";
        return kExitFailure;
    }
    auto config = host::job_ledger_config(*job);
    if (!config.ok()) return fail(config.error());
    auto l = host::Ledger::open(job->ledger, *config);
    if (!l.ok()) return fail(l.error());
    auto r = (*l)->void_identity(*uid, a.get("reason"));
    if (!r.ok()) return fail(r.error());
    if (r->status != host::TransitionStatus::kOk) {
        std::cerr << "waferprov ledger: void refused (" << host::to_string(r->status)
                  << "): " << r->message << "\n";
        return kExitFailure;
    }
    std::cout << "voided UID " << to_hex(*uid) << " (" << r->record->loc.describe()
              << "): " << r->record->void_reason << "\n";
    return kExitOk;
}

int run_ledger(const Args& args) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h") {
        (args.empty() ? std::cerr : std::cout) << kUsage;
        return args.empty() ? kExitUsage : kExitOk;
    }
    const std::string sub = args[0];
    ParsedArgs a;
    std::string error;
    if (!parse_args(Args(args.begin() + 1, args.end()),
                    {"job", "ledger", "export", "ca", "out", "ca-key", "ca-cert", "uid", "map",
                     "wafer", "head", "at", "state", "reason", "anchor"},
                    {"help", "quick"}, a, error))
        return usage_error(error);
    if (a.has("help")) {
        std::cout << kUsage;
        return kExitOk;
    }
    if (!a.positionals.empty()) return usage_error("unexpected argument " + a.positionals[0]);
    if (sub != "verify" && (a.has("head") || a.has("quick")))
        return usage_error("--head and --quick belong to verify");
    if (sub == "verify") return run_verify(a);
    if (sub == "export") return run_export(a);
    if (sub == "migrate") return run_migrate(a);
    if (sub != "show" && a.has("at")) return usage_error("--at belongs to show");
    if (sub != "list" && a.has("state")) return usage_error("--state belongs to list");
    if (sub != "void" && a.has("reason")) return usage_error("--reason belongs to void");
    if (sub == "list") {
        if (a.has("uid")) return usage_error("list takes no --uid (show --uid shows one record)");
        return run_list(a);
    }
    if (sub == "void") return run_void(a);
    if (sub == "show" || sub == "summary") {
        if (sub == "summary" && (a.has("uid") || a.has("at")))
            return usage_error("summary takes no --uid or --at");
        if (a.has("uid") && a.has("at")) return usage_error("show takes --uid or --at, not both");
        return run_show(a);
    }
    return usage_error("unknown subcommand '" + sub + "'");
}

}  // namespace

WAFERPROV_COMMAND(ledger, "verify, export and inspect the production ledger", run_ledger);

}  // namespace waferprov::cli
