// The wafer map picture: one <rect> per die in map coordinates, drawn the way the map's axis
// direction says the wafer lies on the prober, coloured by ledger state / outcome.
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

#include "report_internal.hpp"
#include "waferprov/host/report.hpp"

namespace waferprov::host::report {

namespace {

// Appends `s` escaped for XML text or a double-quoted attribute. Bytes XML 1.0 forbids
// (control characters) and invalid UTF-8 become '?', so the document stays well-formed
// whatever a lot id holds.
void xml_escape(std::string& out, std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        auto b = static_cast<unsigned char>(s[i]);
        if (b < 0x80) {
            switch (b) {
                case '&': out += "&amp;"; break;
                case '<': out += "&lt;"; break;
                case '>': out += "&gt;"; break;
                case '"': out += "&quot;"; break;
                case '\'': out += "&apos;"; break;
                default:
                    out += (b < 0x20 && b != '\t' && b != '\n') || b == 0x7f ? '?'
                                                                             : static_cast<char>(b);
            }
            ++i;
            continue;
        }
        // Multi-byte UTF-8: copy a well-formed sequence, else one '?' per bad byte.
        size_t len = (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
        bool good = len != 0 && i + len <= s.size() && b != 0xC0 && b != 0xC1 && b <= 0xF4;
        for (size_t k = 1; good && k < len; ++k)
            good = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
        if (good) {
            out.append(s.substr(i, len));
            i += len;
        } else {
            out += '?';
            ++i;
        }
    }
}

std::string esc(std::string_view s) {
    std::string out;
    xml_escape(out, s);
    return out;
}

// Short decimal: at most 3 decimals, trailing zeros dropped.
void num(std::string& out, double v) {
    if (std::abs(v) < 0.0005) v = 0;  // no "-0"
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, 3);
    if (ec != std::errc{}) {
        out += '0';
        return;
    }
    char* p = end;
    while (p > buf && p[-1] == '0') --p;
    if (p > buf && p[-1] == '.') --p;
    out.append(buf, p);
}

std::string num(double v) {
    std::string s;
    num(s, v);
    return s;
}

bool contains_ci(std::string_view hay, std::string_view needle) {
    auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) ==
               std::tolower(static_cast<unsigned char>(b));
    });
    return it != hay.end();
}

}  // namespace

std::string wafer_svg(const WaferRun& run, const SvgOptions& options) {
    const MapGeometry& g = run.geometry;
    const bool physical = g.die_width_mm > 0 && g.die_height_mm > 0;
    const double pw = physical ? g.die_width_mm : 1.0;  // pitch in drawing units
    const double ph = physical ? g.die_height_mm : 1.0;
    // E142 AxisDirection names where +y and +x point: "UpRight" = y up, x right (default).
    const double sx = contains_ci(g.axis, "left") ? -1.0 : 1.0;
    const double sy = contains_ci(g.axis, "down") ? 1.0 : -1.0;  // SVG y grows downwards

    int xmin = 0, xmax = 0, ymin = 0, ymax = 0;
    if (!run.dies.empty()) {
        xmin = xmax = run.dies.front().x;
        ymin = ymax = run.dies.front().y;
        for (const DieRecord& d : run.dies) {
            xmin = std::min(xmin, d.x);
            xmax = std::max(xmax, d.x);
            ymin = std::min(ymin, d.y);
            ymax = std::max(ymax, d.y);
        }
    }
    // The wafer centre is taken as the centre of the die field.
    const double cx = (xmin + xmax) / 2.0;
    const double cy = (ymin + ymax) / 2.0;
    const double half_w = ((xmax - xmin) / 2.0 + 0.5) * pw;  // die field half extents
    const double half_h = ((ymax - ymin) / 2.0 + 0.5) * ph;

    double wafer_r = 0;  // 0: no outline
    if (physical && !run.dies.empty()) {
        double reach = 0;  // farthest die corner from the centre
        for (const DieRecord& d : run.dies) {
            double dx = std::abs(d.x - cx) * pw + pw / 2;
            double dy = std::abs(d.y - cy) * ph + ph / 2;
            reach = std::max(reach, std::hypot(dx, dy));
        }
        if (g.wafer_diameter_mm > 0) {
            wafer_r = g.wafer_diameter_mm / 2;
        } else {
            // Smallest standard wafer that holds the field; edge dies may hang over by a die.
            wafer_r = reach;
            for (double d : {100.0, 125.0, 150.0, 200.0, 300.0, 450.0})
                if (d / 2 >= reach - std::max(pw, ph)) {
                    wafer_r = d / 2;
                    break;
                }
        }
    }
    double view_half_w = half_w, view_half_h = half_h;
    if (wafer_r > 0) {
        view_half_w = std::max(view_half_w, wafer_r);
        view_half_h = std::max(view_half_h, wafer_r);
    }
    const double margin = std::max(view_half_w, view_half_h) * 0.03 + std::max(pw, ph) * 0.5;
    view_half_w += margin;
    view_half_h += margin;

    std::array<uint64_t, kMapCategoryCount> counts{};
    for (const DieRecord& d : run.dies) counts[static_cast<size_t>(category_of(d))]++;

    const int map_px = std::max(options.map_pixels, 100);
    const int legend_px = 340;
    const int title_px = 64;
    const int width = map_px + legend_px + 20;
    const int height = std::max(map_px, 480) + title_px + 10;  // the legend needs ~480 px

    std::string out;
    out.reserve(run.dies.size() * (options.die_tooltips ? 110 : 70) + 8192);
    out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" +
           std::to_string(width) + "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " +
           std::to_string(width) + " " + std::to_string(height) +
           "\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n";
    out += "<style>";
    for (size_t i = 0; i < kMapCategoryCount; ++i)
        out += ".c" + std::to_string(i) + "{fill:" + colour_of(static_cast<MapCategory>(i)) + "}";
    out += ".c" + std::to_string(static_cast<int>(MapCategory::kNoRecord)) +
           "{stroke:#000;stroke-width:0.05}";  // white on white needs an edge
    out += "</style>\n";
    out += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";

    // Title: lot, wafer, time.
    std::string title = "Lot " + esc(run.lot) + "  wafer " + wafer_label(run.wafer);
    if (!run.substrate_id.empty()) title += "  (" + esc(run.substrate_id) + ")";
    title += "  " + iso_time(run.start_unix) + " \xE2\x80\x93 " + iso_time(run.finish_unix);
    std::string sub = "job " + esc(run.job) + "  product " + esc(run.product) + "  node " +
                      esc(run.tester_node) + "  map " + std::to_string(g.columns) + "\xC3\x97" +
                      std::to_string(g.rows);
    if (physical) sub += ", die " + num(g.die_width_mm) + "\xC3\x97" + num(g.die_height_mm) + " mm";
    sub += ", origin " + esc(g.origin) + ", axis " + esc(g.axis);
    out += "<text x=\"10\" y=\"26\" font-size=\"20\" font-weight=\"bold\">" + title + "</text>\n";
    out += "<text x=\"10\" y=\"50\" font-size=\"13\">" + sub + "</text>\n";

    // The map: a nested viewport whose user units are mm (or die pitches), centred on the wafer.
    out += "<svg x=\"10\" y=\"" + std::to_string(title_px) + "\" width=\"" +
           std::to_string(map_px) + "\" height=\"" + std::to_string(map_px) + "\" viewBox=\"";
    num(out, -view_half_w);
    out += ' ';
    num(out, -view_half_h);
    out += ' ';
    num(out, 2 * view_half_w);
    out += ' ';
    num(out, 2 * view_half_h);
    out += "\">\n";
    if (wafer_r > 0) {
        out += "<circle cx=\"0\" cy=\"0\" r=\"" + num(wafer_r) +
               "\" fill=\"#f7f7f7\" stroke=\"#555555\" stroke-width=\"" +
               num(std::max(wafer_r * 0.004, 0.01)) + "\"/>\n";
    }
    const double gap = 0.08;  // fraction of the pitch left between dies
    const std::string rw = num(pw * (1 - gap));
    const std::string rh = num(ph * (1 - gap));
    for (const DieRecord& d : run.dies) {
        const double px = sx * (d.x - cx) * pw - pw * (1 - gap) / 2;
        const double py = sy * (d.y - cy) * ph - ph * (1 - gap) / 2;
        MapCategory c = category_of(d);
        out += "<rect x=\"";
        num(out, px);
        out += "\" y=\"";
        num(out, py);
        out += "\" width=\"" + rw + "\" height=\"" + rh + "\" class=\"c";
        out += static_cast<char>('0' + static_cast<int>(c));
        if (options.die_tooltips) {
            out += "\"><title>(" + std::to_string(d.x) + "," + std::to_string(d.y) + ") ";
            out += d.state ? to_string(*d.state) : "-";
            out += ' ';
            out += to_string(d.outcome);
            out += "</title></rect>\n";
        } else {
            out += "\"/>\n";
        }
    }
    out += "</svg>\n";

    // Legend with counts, then the outcome counts and the axis directions.
    const int lx = map_px + 30;
    int ly = title_px + 20;
    out += "<text x=\"" + std::to_string(lx) + "\" y=\"" + std::to_string(ly) +
           "\" font-size=\"15\" font-weight=\"bold\">Dies (" + std::to_string(run.dies.size()) +
           ")</text>\n";
    ly += 14;
    for (size_t i = 0; i < kMapCategoryCount; ++i) {
        auto c = static_cast<MapCategory>(i);
        if (c == MapCategory::kNoRecord && counts[i] == 0) continue;
        out += "<rect x=\"" + std::to_string(lx) + "\" y=\"" + std::to_string(ly) +
               "\" width=\"18\" height=\"18\" fill=\"" + colour_of(c) +
               "\" stroke=\"#000000\" stroke-width=\"0.5\"/>";
        out += "<text x=\"" + std::to_string(lx + 26) + "\" y=\"" + std::to_string(ly + 14) +
               "\" font-size=\"13\">" + esc(to_string(c)) + ": " + std::to_string(counts[i]) +
               "</text>\n";
        ly += 26;
    }
    ly += 14;
    Tally t = tally(run);
    out += "<text x=\"" + std::to_string(lx) + "\" y=\"" + std::to_string(ly) +
           "\" font-size=\"15\" font-weight=\"bold\">This run</text>\n";
    for (size_t i = 0; i < kOutcomeCount; ++i) {
        ly += 20;
        out += "<text x=\"" + std::to_string(lx) + "\" y=\"" + std::to_string(ly) +
               "\" font-size=\"13\">" + to_string(static_cast<Outcome>(i)) + ": " +
               std::to_string(t.outcomes.n[i]) + "</text>\n";
    }
    ly += 34;
    out += "<text x=\"" + std::to_string(lx) + "\" y=\"" + std::to_string(ly) +
           "\" font-size=\"13\">+x " + (sx > 0 ? "\xE2\x86\x92" : "\xE2\x86\x90") + "   +y " +
           (sy < 0 ? "\xE2\x86\x91" : "\xE2\x86\x93") + "   (axis " + esc(g.axis) + ")</text>\n";
    out += "</svg>\n";
    return out;
}

}  // namespace waferprov::host::report
