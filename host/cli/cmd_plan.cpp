// waferprov plan FLOOR.toml [--sweep PARAM=LO..HI[:STEP]] [--svg FILE]: capacity planning with
// the floor model (sim/floor, docs/planning.md). One run prints the floor's throughput, the
// utilization of every resource and the bottleneck; a sweep runs the model once per value of
// one parameter, prints a table and draws it as an SVG.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "cli.hpp"
#include "waferprov/host/report.hpp"
#include "waferprov/sim/floor.hpp"

namespace waferprov::cli {
namespace {

namespace fs = std::filesystem;
namespace wsim = waferprov::sim;

constexpr const char* kUsage =
    "usage: waferprov plan FLOOR.toml [--sweep PARAM=LO..HI[:STEP]] [--svg FILE]\n"
    "\n"
    "Runs the floor model (docs/planning.md) on the floor FLOOR.toml describes and prints\n"
    "dies/hour, wafers/hour, the mean wafer time, the utilization of every resource and the\n"
    "bottleneck. --sweep runs it once per value of PARAM (engines, testers, hosts, cards per\n"
    "host, sites) from LO to HI in steps of STEP (default 1), prints one row per value and\n"
    "writes the plot to --svg FILE (default plan-sweep.svg).\n"
    "Exit status: 0 ok; 1 the floor file or the model failed; 2 usage.\n";

// Sweeps longer than this are a typo, not a plan: each point is one simulation.
constexpr int kMaxSweepPoints = 256;

int usage_error(const std::string& what) {
    std::cerr << "waferprov plan: " << what << "\n" << kUsage;
    return kExitUsage;
}

struct Sweep {
    std::string param;
    std::vector<int> values;
};

bool parse_int(const std::string& s, int& out) {
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
        return false;
    out = std::stoi(s);
    return true;
}

// PARAM=LO..HI[:STEP]. The parameter's own range is checked later, per value, by the model's
// set_floor_param(), so that the message is the model's.
Result<Sweep> parse_sweep(const std::string& text) {
    auto bad = [&](const std::string& why) {
        return make_error(ErrorCode::kInvalidArgument,
                          "--sweep '" + text + "': " + why + " (expected PARAM=LO..HI[:STEP])");
    };
    const auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0) return bad("no PARAM=");
    Sweep s;
    s.param = text.substr(0, eq);
    std::string range = text.substr(eq + 1);
    int step = 1;
    if (const auto colon = range.find(':'); colon != std::string::npos) {
        if (!parse_int(range.substr(colon + 1), step) || step < 1)
            return bad("STEP must be a whole number >= 1");
        range = range.substr(0, colon);
    }
    const auto dots = range.find("..");
    int lo = 0, hi = 0;
    if (dots == std::string::npos || !parse_int(range.substr(0, dots), lo) ||
        !parse_int(range.substr(dots + 2), hi))
        return bad("LO and HI must be whole numbers");
    if (lo > hi) return bad("LO is greater than HI");
    if ((hi - lo) / step + 1 > kMaxSweepPoints)
        return bad("more than " + std::to_string(kMaxSweepPoints) + " points");
    for (int v = lo; v <= hi; v += step) s.values.push_back(v);
    return s;
}

std::string fixed(double v, int digits) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(digits) << v;
    return o.str();
}

// 1234567 -> "1,234,567": dies/hour is read by people.
std::string grouped(double v) {
    std::string s = std::to_string(static_cast<long long>(std::llround(v)));
    for (int i = static_cast<int>(s.size()) - 3; i > 0 && s[static_cast<size_t>(i - 1)] != '-';
         i -= 3)
        s.insert(static_cast<size_t>(i), ",");
    return s;
}

std::string describe_floor(const wsim::FloorConfig& c) {
    std::ostringstream o;
    o << c.testers << " tester(s) of " << c.sites << " sites, " << c.wafers_per_tester
      << " wafer(s) each, index " << c.index_time_s << " s, programming " << c.program_time_s
      << " s, wafer change " << c.wafer_change_s << " s; " << c.hosts << " host(s), ";
    if (c.generate_on_host)
        o << "keys on the hosts' CPUs";
    else
        o << c.cards_per_host << " card(s) each of " << c.engines << " engines at " << c.clock_mhz
          << " MHz (card calibration "
          << (c.calibration.empty() ? wsim::default_card_calibration_path() : c.calibration)
                 .string()
          << ")";
    return o.str();
}

void print_result(std::ostream& out, const wsim::FloorResult& r) {
    const double wafers = static_cast<double>(std::max<uint64_t>(r.wafers, 1));
    out << "  dies/hour          " << grouped(r.dies_per_hour) << "\n"
        << "  wafers/hour        " << fixed(r.wafers_per_hour, 2) << "\n"
        << "  wafer time         " << fixed(r.wafer_time_s, 1) << " s (mean on a tester, "
        << grouped(static_cast<double>(r.dies) / wafers) << " dies in "
        << fixed(static_cast<double>(r.touchdowns) / wafers, 0) << " touchdowns)\n"
        << "  lot                " << r.wafers << " wafers in " << fixed(r.makespan_s / 3600, 2)
        << " h, " << r.retests << " dies retested\n"
        << "  utilization\n";
    for (const auto& u : r.utilization)
        out << "    " << std::left << std::setw(32) << u.resource << std::right << std::setw(6)
            << fixed(100 * u.busy, 1) << " %\n";
    out << "  bottleneck         " << r.bottleneck << "\n";
}

// The busiest shared resource (hosts and cards, not the testers' own cycle): what the plot
// draws as the second line.
const wsim::Utilization* busiest_shared(const wsim::FloorResult& r) {
    const wsim::Utilization* top = nullptr;
    for (const auto& u : r.utilization) {
        if (u.resource.rfind("probers", 0) == 0 || u.resource.rfind("testers", 0) == 0) continue;
        if (top == nullptr || u.busy > top->busy) top = &u;
    }
    return top;
}

// A "nice" axis step (1, 2 or 5 x 10^k) giving about `ticks` intervals over [0, hi].
double nice_step(double hi, int ticks) {
    const double raw = std::max(hi, 1e-9) / ticks;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (m * mag >= raw) return m * mag;
    return 10 * mag;
}

using host::report::xml_text;

// The sweep as a plot a person reads at a glance: dies/hour (black, left axis) against the
// parameter, one marker per value coloured by that point's bottleneck (legend below), the
// busiest shared resource's utilization (dashed, right axis, 0-100 %), the bottleneck's name
// written where it changes, and a title. Every marker carries a <title> (hover text) with the
// point's figures.
class SweepPlot {
public:
    SweepPlot(const Sweep& sweep, const std::vector<wsim::FloorResult>& results)
        : s(sweep), rs(results), x0(sweep.values.front()), x1(sweep.values.back()) {
        double ymax = 0;
        for (const auto& r : rs) ymax = std::max(ymax, r.dies_per_hour);
        ystep = nice_step(ymax * 1.05, 5);
        ytop = std::max(ystep, std::ceil(ymax * 1.05 / ystep) * ystep);
        for (const auto& r : rs) colour_of(r.bottleneck);
    }

    std::string svg(const std::string& floor_name) {
        std::ostringstream o;
        o << std::fixed << std::setprecision(1);
        o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
          << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
          << "\" viewBox=\"0 0 " << W << ' ' << H
          << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
          << "<rect x=\"0\" y=\"0\" width=\"" << W << "\" height=\"" << H
          << "\" fill=\"white\"/>\n";
        o << "<text class=\"title\" x=\"" << W / 2 << "\" y=\"28\" text-anchor=\"middle\" "
          << "font-size=\"17\" font-weight=\"bold\">" << xml_text(floor_name)
          << ": dies/hour against " << xml_text(s.param) << "</text>\n";
        axes(o);
        curves(o);
        o << "</g>\n<g class=\"legend\">\n";
        legend(o);
        o << "</g>\n</svg>\n";
        return o.str();
    }

private:
    static constexpr double W = 900, H = 560, L = 105, R = 70, T = 60, B = 150;
    static constexpr double pw = W - L - R, ph = H - T - B;

    double px(double v) const { return x1 > x0 ? L + (v - x0) / (x1 - x0) * pw : L + pw / 2; }
    double py(double v) const { return T + ph - v / ytop * ph; }
    static double pu(double busy) { return T + ph - std::clamp(busy, 0.0, 1.0) * ph; }

    // One colour per distinct bottleneck, in order of appearance.
    const char* colour_of(const std::string& b) {
        static const char* const kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                               "#9467bd", "#8c564b", "#e377c2", "#17becf"};
        auto it = std::find(bottlenecks.begin(), bottlenecks.end(), b);
        if (it == bottlenecks.end()) it = bottlenecks.insert(bottlenecks.end(), b);
        return kColours[static_cast<size_t>(it - bottlenecks.begin()) % std::size(kColours)];
    }

    // Axes, grid, ticks and the axis labels.
    void axes(std::ostream& o) const {
        o << "<g class=\"axes\" stroke=\"black\">\n"
          << "<line x1=\"" << L << "\" y1=\"" << T + ph << "\" x2=\"" << L + pw << "\" y2=\""
          << T + ph << "\"/>\n"
          << "<line x1=\"" << L << "\" y1=\"" << T << "\" x2=\"" << L << "\" y2=\"" << T + ph
          << "\"/>\n"
          << "<line x1=\"" << L + pw << "\" y1=\"" << T << "\" x2=\"" << L + pw << "\" y2=\""
          << T + ph << "\"/>\n</g>\n";
        o << "<g class=\"yticks\">\n";
        for (double v = 0; v <= ytop + ystep / 2; v += ystep) {
            o << "<line x1=\"" << L - 5 << "\" y1=\"" << py(v) << "\" x2=\"" << L + pw << "\" y2=\""
              << py(v) << "\" stroke=\"#dddddd\"/>\n"
              << "<text x=\"" << L - 8 << "\" y=\"" << py(v) + 4 << "\" text-anchor=\"end\">"
              << grouped(v) << "</text>\n";
        }
        o << "</g>\n<g class=\"uticks\">\n";
        for (int pct = 0; pct <= 100; pct += 20)
            o << "<line x1=\"" << L + pw << "\" y1=\"" << pu(pct / 100.0) << "\" x2=\""
              << L + pw + 5 << "\" y2=\"" << pu(pct / 100.0) << "\" stroke=\"black\"/>\n"
              << "<text x=\"" << L + pw + 8 << "\" y=\"" << pu(pct / 100.0) + 4 << "\">" << pct
              << " %</text>\n";
        o << "</g>\n<g class=\"xticks\">\n";
        // At most ~16 labelled ticks; every value still gets its marker.
        const size_t every = (s.values.size() + 15) / 16;
        for (size_t i = 0; i < s.values.size(); i += every) {
            const double x = px(s.values[i]);
            o << "<line x1=\"" << x << "\" y1=\"" << T + ph << "\" x2=\"" << x << "\" y2=\""
              << T + ph + 5 << "\" stroke=\"black\"/>\n"
              << "<text x=\"" << x << "\" y=\"" << T + ph + 19 << "\" text-anchor=\"middle\">"
              << s.values[i] << "</text>\n";
        }
        o << "</g>\n";
        o << "<text class=\"xlabel\" x=\"" << L + pw / 2 << "\" y=\"" << T + ph + 40
          << "\" text-anchor=\"middle\" font-size=\"14\">" << xml_text(s.param) << "</text>\n"
          << "<text class=\"ylabel\" transform=\"translate(18," << T + ph / 2
          << ") rotate(-90)\" text-anchor=\"middle\" font-size=\"14\">dies/hour</text>\n"
          << "<text class=\"ulabel\" transform=\"translate(" << W - 14 << "," << T + ph / 2
          << ") rotate(90)\" text-anchor=\"middle\" font-size=\"14\" fill=\"#555555\">"
          << "busiest host/card resource, utilization</text>\n";
    }

    // The busiest shared resource's utilization (dashed), dies/hour on top, the markers and the
    // bottleneck's name where it changes.
    void curves(std::ostream& o) {
        o << "<polyline class=\"utilization\" fill=\"none\" stroke=\"#777777\" "
             "stroke-dasharray=\"6,4\" stroke-width=\"1.5\" points=\"";
        for (size_t i = 0; i < rs.size(); ++i) {
            const auto* u = busiest_shared(rs[i]);
            o << (i ? " " : "") << px(s.values[i]) << ',' << pu(u ? u->busy : 0);
        }
        o << "\"/>\n<polyline class=\"dies-per-hour\" fill=\"none\" stroke=\"black\" "
             "stroke-width=\"2\" points=\"";
        for (size_t i = 0; i < rs.size(); ++i)
            o << (i ? " " : "") << px(s.values[i]) << ',' << py(rs[i].dies_per_hour);
        o << "\"/>\n<g class=\"points\">\n";
        for (size_t i = 0; i < rs.size(); ++i) {
            const auto& r = rs[i];
            o << "<circle class=\"point\" cx=\"" << px(s.values[i]) << "\" cy=\""
              << py(r.dies_per_hour) << "\" r=\"5\" fill=\"" << colour_of(r.bottleneck)
              << "\" stroke=\"black\"><title>" << xml_text(s.param) << " = " << s.values[i] << ": "
              << grouped(r.dies_per_hour) << " dies/h, " << fixed(r.wafers_per_hour, 2)
              << " wafers/h, bottleneck " << xml_text(r.bottleneck) << "</title></circle>\n";
        }
        o << "</g>\n<g class=\"bottleneck-changes\" font-size=\"11\">\n";
        // The bottleneck's name where it changes (and at the first point), above the marker.
        for (size_t i = 0; i < rs.size(); ++i) {
            if (i > 0 && rs[i].bottleneck == rs[i - 1].bottleneck) continue;
            const double x = px(s.values[i]), y = py(rs[i].dies_per_hour) - 12;
            o << "<text x=\"" << x << "\" y=\"" << std::max(y, T + 10.0) << "\" text-anchor=\""
              << (x > L + pw * 0.7 ? "end" : "start") << "\" fill=\"" << colour_of(rs[i].bottleneck)
              << "\">" << xml_text(rs[i].bottleneck.substr(0, rs[i].bottleneck.find(" (")))
              << "</text>\n";
        }
    }

    void legend(std::ostream& o) {
        double ly = T + ph + 66;
        o << "<line x1=\"" << L << "\" y1=\"" << ly - 4 << "\" x2=\"" << L + 24 << "\" y2=\""
          << ly - 4 << "\" stroke=\"black\" stroke-width=\"2\"/><text x=\"" << L + 30 << "\" y=\""
          << ly << "\">dies/hour (left axis); marker colour: the bottleneck at that point</text>\n";
        ly += 18;
        o << "<line x1=\"" << L << "\" y1=\"" << ly - 4 << "\" x2=\"" << L + 24 << "\" y2=\""
          << ly - 4
          << "\" stroke=\"#777777\" stroke-dasharray=\"6,4\" stroke-width=\"1.5\"/><text x=\""
          << L + 30 << "\" y=\"" << ly
          << "\">utilization of the busiest host or card resource (right axis)</text>\n";
        for (const auto& b : bottlenecks) {
            ly += 18;
            o << "<circle cx=\"" << L + 12 << "\" cy=\"" << ly - 4 << "\" r=\"5\" fill=\""
              << colour_of(b) << "\" stroke=\"black\"/><text x=\"" << L + 30 << "\" y=\"" << ly
              << "\">bottleneck: " << xml_text(b) << "</text>\n";
        }
    }

    const Sweep& s;
    const std::vector<wsim::FloorResult>& rs;
    const double x0, x1;
    double ystep = 0, ytop = 0;
    std::vector<std::string> bottlenecks;
};

std::string sweep_svg(const std::string& floor_name, const Sweep& s,
                      const std::vector<wsim::FloorResult>& rs) {
    return SweepPlot(s, rs).svg(floor_name);
}

Result<int> plan(const ParsedArgs& a) {
    const fs::path file = a.positionals.front();
    WP_ASSIGN_OR_RETURN(const wsim::FloorConfig floor, wsim::load_floor(file));
    if (!a.has("sweep")) {
        WP_ASSIGN_OR_RETURN(const auto r, wsim::run_floor(floor));
        std::cout << "floor " << file.string() << ": " << describe_floor(floor) << "\n";
        print_result(std::cout, r);
        return kExitOk;
    }
    WP_ASSIGN_OR_RETURN(const Sweep s, parse_sweep(a.get("sweep")));
    // Every value is checked before the first simulation, so a bad range fails at once.
    std::vector<wsim::FloorConfig> points;
    for (int v : s.values) {
        wsim::FloorConfig c = floor;
        if (auto st = wsim::set_floor_param(c, s.param, v); !st.ok())
            return st.error().with_context("--sweep " + s.param + "=" + std::to_string(v));
        points.push_back(c);
    }
    const fs::path svg = a.has("svg") ? fs::path(a.get("svg")) : fs::path("plan-sweep.svg");
    std::cout << "floor " << file.string() << ": " << describe_floor(floor) << "\n"
              << "sweep " << s.param << " " << s.values.front() << ".." << s.values.back() << " ("
              << s.values.size() << " points)\n\n";
    std::vector<wsim::FloorResult> results;
    for (size_t i = 0; i < points.size(); ++i) {
        auto r = wsim::run_floor(points[i]);
        if (!r.ok())
            return r.error().with_context("--sweep " + s.param + "=" + std::to_string(s.values[i]));
        results.push_back(std::move(*r));
    }
    // The table's columns: the parameter, throughput, every resource's utilization in the
    // model's order (named as the model names them, without the parenthesis), the bottleneck.
    // A sweep over cards from 0 changes the resources (keys on the CPU, then cards): the
    // columns are all that appear, "-" where a point has no such resource.
    auto short_name = [](const std::string& n) { return n.substr(0, n.find(" (")); };
    std::vector<std::string> columns;
    for (const auto& r : results)
        for (const auto& u : r.utilization)
            if (std::find(columns.begin(), columns.end(), short_name(u.resource)) == columns.end())
                columns.push_back(short_name(u.resource));
    auto width = [](const std::string& c) { return std::max<int>(8, static_cast<int>(c.size())); };
    std::cout << std::left << std::setw(9) << s.param << std::right << std::setw(13) << "dies/h"
              << std::setw(10) << "wafers/h";
    for (const auto& c : columns) std::cout << "  " << std::setw(width(c)) << c;
    std::cout << "  bottleneck\n";
    for (size_t i = 0; i < results.size(); ++i) {
        const auto& r = results[i];
        std::cout << std::left << std::setw(9) << s.values[i] << std::right << std::setw(13)
                  << grouped(r.dies_per_hour) << std::setw(10) << fixed(r.wafers_per_hour, 2);
        for (const auto& c : columns) {
            std::string cell = "-";
            for (const auto& u : r.utilization)
                if (short_name(u.resource) == c) cell = fixed(100 * u.busy, 1) + " %";
            std::cout << "  " << std::setw(width(c)) << cell;
        }
        std::cout << "  " << r.bottleneck << "\n";
    }
    std::ofstream out(svg, std::ios::binary | std::ios::trunc);
    out << sweep_svg(file.filename().string(), s, results);
    out.close();
    if (!out)
        return make_error(ErrorCode::kIo, "--svg " + svg.string() + ": cannot write the plot");
    std::cout << "\nplot: " << svg.string() << "\n";
    return kExitOk;
}

int run_plan(const Args& args) {
    ParsedArgs p;
    std::string error;
    if (!parse_args(args, {"sweep", "svg"}, {"help"}, p, error)) return usage_error(error);
    if (p.has("help")) {
        std::cout << kUsage;
        return kExitOk;
    }
    if (p.positionals.size() != 1)
        return usage_error(p.positionals.empty()
                               ? "FLOOR.toml is required"
                               : "one floor file only, got '" + p.positionals[1] + "' as well");
    if (p.has("svg") && !p.has("sweep")) return usage_error("--svg needs --sweep");
    if (p.has("sweep")) {
        // A malformed --sweep is a usage error; a parameter value the model refuses is not.
        if (auto s = parse_sweep(p.get("sweep")); !s.ok()) return usage_error(s.error().message);
    }
    auto r = plan(p);
    if (!r.ok()) {
        std::cerr << "waferprov plan: " << r.error().describe() << "\n";
        return kExitFailure;
    }
    return *r;
}

}  // namespace

WAFERPROV_COMMAND(plan, "plan: floor capacity (dies/hour, utilization, bottleneck) from a model",
                  run_plan);

}  // namespace waferprov::cli
