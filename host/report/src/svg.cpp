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

// Where the map sits in the picture: pitch, axis signs, the centre of the die field, the wafer
// outline's radius and the view box, all in drawing units (mm when the die size is known, die
// pitches otherwise).
struct Layout {
    bool physical = false;
    double pw = 1, ph = 1;   // pitch
    double sx = 1, sy = -1;  // axis signs (SVG y grows downwards)
    double cx = 0, cy = 0;   // centre of the die field, map coordinates
    double wafer_r = 0;      // 0: no outline
    double view_half_w = 0, view_half_h = 0;
    // Picture position of the centre of die (x, y).
    double px(int x) const { return sx * (x - cx) * pw; }
    double py(int y) const { return sy * (y - cy) * ph; }
};

// Smallest standard wafer that holds a field reaching `reach` from the centre; edge dies may
// hang over by a die.
double standard_wafer_radius(double reach, double pitch) {
    for (double d : {100.0, 125.0, 150.0, 200.0, 300.0, 450.0})
        if (d / 2 >= reach - pitch) return d / 2;
    return reach;
}

Layout layout_of(const WaferRun& run) {
    const MapGeometry& g = run.geometry;
    Layout l;
    l.physical = g.die_width_mm > 0 && g.die_height_mm > 0;
    l.pw = l.physical ? g.die_width_mm : 1.0;
    l.ph = l.physical ? g.die_height_mm : 1.0;
    // E142 AxisDirection names where +y and +x point: "UpRight" = y up, x right (default).
    l.sx = contains_ci(g.axis, "left") ? -1.0 : 1.0;
    l.sy = contains_ci(g.axis, "down") ? 1.0 : -1.0;

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
    l.cx = (xmin + xmax) / 2.0;
    l.cy = (ymin + ymax) / 2.0;
    l.view_half_w = ((xmax - xmin) / 2.0 + 0.5) * l.pw;  // die field half extents
    l.view_half_h = ((ymax - ymin) / 2.0 + 0.5) * l.ph;

    if (l.physical && !run.dies.empty()) {
        double reach = 0;  // farthest die corner from the centre
        for (const DieRecord& d : run.dies)
            reach = std::max(reach, std::hypot(std::abs(d.x - l.cx) * l.pw + l.pw / 2,
                                               std::abs(d.y - l.cy) * l.ph + l.ph / 2));
        l.wafer_r = g.wafer_diameter_mm > 0 ? g.wafer_diameter_mm / 2
                                            : standard_wafer_radius(reach, std::max(l.pw, l.ph));
    }
    if (l.wafer_r > 0) {
        l.view_half_w = std::max(l.view_half_w, l.wafer_r);
        l.view_half_h = std::max(l.view_half_h, l.wafer_r);
    }
    const double margin =
        std::max(l.view_half_w, l.view_half_h) * 0.03 + std::max(l.pw, l.ph) * 0.5;
    l.view_half_w += margin;
    l.view_half_h += margin;
    return l;
}

void write_prologue(std::string& out, int width, int height) {
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
}

// Title: lot, wafer, substrate, time; below it the job and the map's geometry.
void write_title(std::string& out, const WaferRun& run, const Layout& l) {
    const MapGeometry& g = run.geometry;
    std::string title = "Lot " + xml_text(run.lot) + "  wafer " + wafer_label(run.wafer);
    if (!run.substrate_id.empty()) title += "  (" + xml_text(run.substrate_id) + ")";
    title += "  " + iso_time(run.start_unix) + " \xE2\x80\x93 " + iso_time(run.finish_unix);
    std::string sub = "job " + xml_text(run.job) + "  product " + xml_text(run.product) +
                      "  node " + xml_text(run.tester_node) + "  map " + std::to_string(g.columns) +
                      "\xC3\x97" + std::to_string(g.rows);
    if (l.physical)
        sub += ", die " + num(g.die_width_mm) + "\xC3\x97" + num(g.die_height_mm) + " mm";
    sub += ", origin " + xml_text(g.origin) + ", axis " + xml_text(g.axis);
    if (g.flat_deg >= 0) sub += ", notch " + std::to_string(g.flat_deg) + "\xC2\xB0";
    out += "<text x=\"10\" y=\"26\" font-size=\"20\" font-weight=\"bold\">" + title + "</text>\n";
    out += "<text x=\"10\" y=\"50\" font-size=\"13\">" + sub + "</text>\n";
}

// The wafer outline, with its notch/flat mark where the map gives one: a V cut into the edge at
// flat_deg degrees clockwise from the top of the picture.
void write_outline(std::string& out, const MapGeometry& g, const Layout& l) {
    if (l.wafer_r <= 0) return;
    const double stroke = std::max(l.wafer_r * 0.004, 0.01);
    out += "<circle cx=\"0\" cy=\"0\" r=\"" + num(l.wafer_r) +
           "\" fill=\"#f7f7f7\" stroke=\"#555555\" stroke-width=\"" + num(stroke) + "\"/>\n";
    if (g.flat_deg < 0) return;
    const double a = g.flat_deg * 3.14159265358979323846 / 180.0;
    const double depth = std::max(l.wafer_r * 0.03, 0.5);
    auto at = [&](double r, double da) {  // picture point at radius r, angle a + da
        return num(r * std::sin(a + da)) + "," + num(-r * std::cos(a + da));
    };
    const double half = depth / l.wafer_r;  // half the notch's opening, radians
    out += "<path id=\"notch\" d=\"M" + at(l.wafer_r, -half) + " L" + at(l.wafer_r - depth, 0) +
           " L" + at(l.wafer_r, half) + "\" fill=\"#ffffff\" stroke=\"#555555\" stroke-width=\"" +
           num(stroke) + "\"/>\n";
}

// One <rect> per die (class = its category), then a frame around the origin die (0, 0).
void write_dies(std::string& out, const WaferRun& run, const Layout& l, const SvgOptions& options) {
    const double gap = 0.08;  // fraction of the pitch left between dies
    const double w = l.pw * (1 - gap), h = l.ph * (1 - gap);
    const std::string rw = num(w), rh = num(h);
    bool origin_present = false;
    for (const DieRecord& d : run.dies) {
        origin_present |= d.x == 0 && d.y == 0;
        MapCategory c = category_of(d);
        out += "<rect x=\"";
        num(out, l.px(d.x) - w / 2);
        out += "\" y=\"";
        num(out, l.py(d.y) - h / 2);
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
    if (!origin_present) return;
    const double sw = std::max(l.pw, l.ph) * 0.12;
    out += "<rect id=\"origin-die\" x=\"" + num(l.px(0) - l.pw / 2) + "\" y=\"" +
           num(l.py(0) - l.ph / 2) + "\" width=\"" + num(l.pw) + "\" height=\"" + num(l.ph) +
           "\" fill=\"none\" stroke=\"#000000\" stroke-width=\"" + num(sw) + "\"/>\n";
}

// Legend with counts, then the outcome counts, the axis directions and the origin die.
void write_legend(std::string& out, const WaferRun& run, const Layout& l, int lx, int ly) {
    std::array<uint64_t, kMapCategoryCount> counts{};
    for (const DieRecord& d : run.dies) counts[static_cast<size_t>(category_of(d))]++;
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
               "\" font-size=\"13\">" + xml_text(to_string(c)) + ": " + std::to_string(counts[i]) +
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
           "\" font-size=\"13\">+x " + (l.sx > 0 ? "\xE2\x86\x92" : "\xE2\x86\x90") + "   +y " +
           (l.sy < 0 ? "\xE2\x86\x91" : "\xE2\x86\x93") + "   (axis " +
           xml_text(run.geometry.axis) + ")</text>\n";
    ly += 24;
    out += "<rect x=\"" + std::to_string(lx) + "\" y=\"" + std::to_string(ly - 13) +
           "\" width=\"16\" height=\"16\" fill=\"none\" stroke=\"#000000\" stroke-width=\"2\"/>";
    out += "<text x=\"" + std::to_string(lx + 26) + "\" y=\"" + std::to_string(ly) +
           "\" font-size=\"13\">origin die (0,0)</text>\n";
}

}  // namespace

std::string xml_text(std::string_view s) {
    std::string out;
    xml_escape(out, s);
    return out;
}

std::string wafer_svg(const WaferRun& run, const SvgOptions& options) {
    const Layout l = layout_of(run);
    const int map_px = std::max(options.map_pixels, 100);
    const int legend_px = 340;
    const int title_px = 64;
    const int width = map_px + legend_px + 20;
    const int height = std::max(map_px, 500) + title_px + 10;  // the legend needs ~500 px

    std::string out;
    out.reserve(run.dies.size() * (options.die_tooltips ? 110 : 70) + 8192);
    write_prologue(out, width, height);
    write_title(out, run, l);
    // The map: a nested viewport whose user units are mm (or die pitches), centred on the wafer.
    out += "<svg x=\"10\" y=\"" + std::to_string(title_px) + "\" width=\"" +
           std::to_string(map_px) + "\" height=\"" + std::to_string(map_px) + "\" viewBox=\"";
    num(out, -l.view_half_w);
    out += ' ';
    num(out, -l.view_half_h);
    out += ' ';
    num(out, 2 * l.view_half_w);
    out += ' ';
    num(out, 2 * l.view_half_h);
    out += "\">\n";
    write_outline(out, run.geometry, l);
    write_dies(out, run, l, options);
    out += "</svg>\n";
    write_legend(out, run, l, map_px + 30, title_px + 20);
    out += "</svg>\n";
    return out;
}

}  // namespace waferprov::host::report
