// SEMI E142 substrate map reader (expat, SAX). The handlers only collect what the map says,
// with the line of each element; every check runs afterwards on the collected data, so element
// order inside MapData does not matter and each message can name the line of its element.
#include <expat.h>

#include <algorithm>
#include <climits>
#include <map>
#include <memory>
#include <type_traits>
#include <unordered_map>

#include "internal.hpp"
#include "waferprov/bytes.hpp"
#include "waferprov/host/wafermap.hpp"

namespace waferprov::host {
namespace {

using detail::line_error;

struct Attributes {
    std::vector<std::pair<std::string, std::string>> items;
    const std::string* find(std::string_view name) const {
        for (const auto& [k, v] : items)
            if (k == name) return &v;
        return nullptr;
    }
    std::string get(std::string_view name, std::string_view fallback = "") const {
        const std::string* v = find(name);
        return v != nullptr ? *v : std::string(fallback);
    }
};

struct LayoutInfo {
    long line = 0;
    std::string id;
    Attributes dimension, step, device_size;
    std::string units = "mm";  // DefaultUnits
    bool has_dimension = false;
    std::string product;
    std::vector<std::string> children;
};

struct SubstrateInfo {
    long line = 0;
    std::string type, id;
    std::optional<std::string> lot, slot;
    long lot_line = 0, slot_line = 0;
};

struct Located {
    long line = 0;
    Attributes attrs;
    std::string text;
};

// A BinCode or DeviceId element, kept lean: a map may hold a million of them.
struct Entry {
    long line = 0;
    std::optional<std::string> x, y;
    std::string text;
};

// A DeviceIdMap and the Overlay around it (its MapName names it for `[map] uid_overlay`).
struct IdMapInfo {
    long line = 0;
    std::string name;  // the Overlay's MapName ("" outside an Overlay or without one)
    std::vector<Entry> ids;
};

// What one SubstrateMap holds, as index ranges [begin, end) into Collected's lists: the
// elements inside a SubstrateMap are contiguous in document order.
struct SubstrateMapSpan {
    size_t bcm_begin = 0, bcm_end = 0;    // bin_code_maps
    size_t def_begin = 0, def_end = 0;    // bin_definitions
    size_t code_begin = 0, code_end = 0;  // bin_codes
    size_t ids_begin = 0, ids_end = 0;    // id_maps
};

struct Collected {
    std::vector<std::string> root;  // root element's local name
    std::vector<LayoutInfo> layouts;
    std::vector<SubstrateInfo> substrates;
    std::vector<Located> substrate_maps;  // attrs only
    std::vector<SubstrateMapSpan> spans;  // one per substrate_maps entry
    std::vector<Located> bin_code_maps;   // attrs only
    std::vector<Located> bin_definitions;
    std::vector<Entry> bin_codes;  // rows (2DArray) or X/Y entries (Coordinate)
    std::vector<IdMapInfo> id_maps;
    std::string overlay_name;  // MapName of the Overlay being read
};

// Element names arrive as "namespace-uri|local" (XML_ParserCreateNS); keep the local part.
std::string local_name(const XML_Char* name) {
    std::string_view s(name);
    const auto bar = s.rfind('|');
    return std::string(bar == std::string_view::npos ? s : s.substr(bar + 1));
}

struct ParserDeleter {
    void operator()(XML_Parser p) const noexcept { XML_ParserFree(p); }
};
using ParserPtr = std::unique_ptr<std::remove_pointer_t<XML_Parser>, ParserDeleter>;

class E142Parser {
public:
    E142Parser(std::string_view source, const MapReadOptions& options)
        : source_(source), options_(options) {}

    Result<WaferMap> parse(std::string_view xml);
    Result<std::vector<CarrierMap>> parse_carriers(std::string_view xml);

private:
    static void XMLCALL on_start(void* self, const XML_Char* name, const XML_Char** attrs) {
        static_cast<E142Parser*>(self)->start(name, attrs);
    }
    static void XMLCALL on_end(void* self, const XML_Char* /*name*/) {
        static_cast<E142Parser*>(self)->end();
    }
    static void XMLCALL on_text(void* self, const XML_Char* s, int len) {
        auto* p = static_cast<E142Parser*>(self);
        if (p->text_ != nullptr) p->text_->append(s, static_cast<size_t>(len));
    }
    static void XMLCALL on_doctype(void* self, const XML_Char* /*name*/, const XML_Char*,
                                   const XML_Char*, int) {
        static_cast<E142Parser*>(self)->fail(
            "DOCTYPE declarations are not accepted in wafer maps (entity expansion guard)");
    }
    static void XMLCALL on_entity(void* self, const XML_Char* name, int, const XML_Char*, int,
                                  const XML_Char*, const XML_Char*, const XML_Char*,
                                  const XML_Char*) {
        static_cast<E142Parser*>(self)->fail("entity declaration '" + std::string(name) +
                                             "' refused");
    }

    void fail(const std::string& what) {
        if (!error_) error_ = line_error(source_, line(), what);
        XML_StopParser(parser_.get(), XML_FALSE);
    }
    long line() const { return static_cast<long>(XML_GetCurrentLineNumber(parser_.get())); }
    const std::string& parent() const {
        static const std::string none;
        return stack_.size() >= 2 ? stack_[stack_.size() - 2] : none;
    }
    void start(const XML_Char* name, const XML_Char** attrs);
    void end();
    Status collect(std::string_view xml);  // runs expat over the document into c_
    Result<WaferMap> build();
    Result<std::vector<CarrierMap>> build_carriers();

    std::string source_;
    MapReadOptions options_;
    ParserPtr parser_;
    std::optional<Error> error_;
    std::vector<std::string> stack_;
    std::string* text_ = nullptr;  // where character data goes, if the element carries text
    size_t text_depth_ = 0;
    size_t smap_depth_ = 0;  // stack depth of the open SubstrateMap (0: none open)
    Collected c_;
};

Attributes read_attributes(const XML_Char** attrs) {
    Attributes a;
    for (size_t i = 0; attrs[i] != nullptr; i += 2)
        a.items.emplace_back(local_name(attrs[i]), attrs[i + 1]);
    return a;
}

void E142Parser::start(const XML_Char* raw_name, const XML_Char** raw_attrs) {
    std::string name = local_name(raw_name);
    stack_.push_back(name);
    if (stack_.size() == 1) c_.root.push_back(name);
    if (text_ != nullptr) return;  // markup inside a text element: ignore, keep collecting
    const std::string& up = parent();
    const long ln = line();
    auto collect_text = [&](std::string& into) {
        text_ = &into;
        text_depth_ = stack_.size();
    };
    if (name == "Layout" && up == "Layouts") {
        LayoutInfo l;
        l.line = ln;
        const Attributes a = read_attributes(raw_attrs);
        l.id = a.get("LayoutId");
        l.units = a.get("DefaultUnits", "mm");
        c_.layouts.push_back(std::move(l));
    } else if (!c_.layouts.empty() && up == "Layout") {
        LayoutInfo& l = c_.layouts.back();
        if (name == "Dimension") {
            l.dimension = read_attributes(raw_attrs);
            l.has_dimension = true;
        } else if (name == "StepSize") {
            l.step = read_attributes(raw_attrs);
        } else if (name == "DeviceSize") {
            l.device_size = read_attributes(raw_attrs);
        } else if (name == "ProductId") {
            collect_text(l.product);
        }
    } else if (name == "ChildLayout" && up == "ChildLayouts" && !c_.layouts.empty()) {
        c_.layouts.back().children.push_back(read_attributes(raw_attrs).get("LayoutId"));
    } else if (name == "Substrate" && up == "Substrates") {
        SubstrateInfo s;
        s.line = ln;
        Attributes a = read_attributes(raw_attrs);
        s.type = a.get("SubstrateType");
        s.id = a.get("SubstrateId");
        c_.substrates.push_back(std::move(s));
    } else if (up == "Substrate" && !c_.substrates.empty() &&
               (name == "LotId" || name == "SlotNumber")) {
        SubstrateInfo& s = c_.substrates.back();
        auto& field = name == "LotId" ? s.lot : s.slot;
        if (field) return fail("Substrate '" + s.id + "' has more than one " + name);
        field.emplace();
        (name == "SlotNumber" ? s.slot_line : s.lot_line) = ln;
        collect_text(*field);
    } else if (name == "SubstrateMap" && up == "SubstrateMaps") {
        c_.substrate_maps.push_back(Located{ln, read_attributes(raw_attrs), {}});
        const size_t bcm = c_.bin_code_maps.size(), def = c_.bin_definitions.size();
        const size_t code = c_.bin_codes.size(), ids = c_.id_maps.size();
        c_.spans.push_back(SubstrateMapSpan{bcm, bcm, def, def, code, code, ids, ids});
        smap_depth_ = stack_.size();
    } else if (name == "BinCodeMap" && up == "Overlay") {
        c_.bin_code_maps.push_back(Located{ln, read_attributes(raw_attrs), {}});
    } else if (name == "BinDefinition" && up == "BinDefinitions") {
        if (c_.bin_definitions.size() >= 65536) return fail("more than 65536 BinDefinitions");
        c_.bin_definitions.push_back(Located{ln, read_attributes(raw_attrs), {}});
    } else if (name == "Overlay") {
        c_.overlay_name = read_attributes(raw_attrs).get("MapName");
    } else if ((name == "BinCode" && up == "BinCodeMap") ||
               (name == "DeviceId" && up == "DeviceIdMap" && !c_.id_maps.empty())) {
        // Bounded before the layout is known: no acceptable map has more rows (2DArray) or
        // entries (Coordinate, DeviceIdMap) than max_dies.
        auto& list = name == "BinCode" ? c_.bin_codes : c_.id_maps.back().ids;
        if (list.size() >= std::max(options_.max_dies, static_cast<size_t>(options_.max_dimension)))
            return fail("more " + name + " elements than the limit of " +
                        std::to_string(options_.max_dies) + " dies");
        Entry e;
        e.line = ln;
        for (size_t i = 0; raw_attrs[i] != nullptr; i += 2) {
            const std::string attr = local_name(raw_attrs[i]);
            if (attr == "X")
                e.x = raw_attrs[i + 1];
            else if (attr == "Y")
                e.y = raw_attrs[i + 1];
        }
        list.push_back(std::move(e));
        collect_text(list.back().text);
    } else if (name == "DeviceIdMap" && (up == "Overlay" || up == "SubstrateMap")) {
        if (c_.id_maps.size() >= 64) return fail("more than 64 DeviceIdMaps");
        c_.id_maps.push_back(IdMapInfo{ln, up == "Overlay" ? c_.overlay_name : "", {}});
    }
}

void E142Parser::end() {
    if (text_ != nullptr && stack_.size() == text_depth_) text_ = nullptr;
    if (smap_depth_ != 0 && stack_.size() == smap_depth_) {
        SubstrateMapSpan& span = c_.spans.back();
        span.bcm_end = c_.bin_code_maps.size();
        span.def_end = c_.bin_definitions.size();
        span.code_end = c_.bin_codes.size();
        span.ids_end = c_.id_maps.size();
        smap_depth_ = 0;
    }
    if (stack_.back() == "Overlay") c_.overlay_name.clear();
    stack_.pop_back();
}

Status E142Parser::collect(std::string_view xml) {
    if (xml.size() > options_.max_bytes || xml.size() > static_cast<size_t>(INT_MAX))
        return make_error(ErrorCode::kResourceExhausted,
                          source_ + ": " + std::to_string(xml.size()) +
                              " bytes; the limit for a wafer map is " +
                              std::to_string(options_.max_bytes));
    parser_.reset(XML_ParserCreateNS(nullptr, '|'));
    if (!parser_) return make_error(ErrorCode::kInternal, "expat: cannot create a parser");
    XML_SetUserData(parser_.get(), this);
    XML_SetElementHandler(parser_.get(), &E142Parser::on_start, &E142Parser::on_end);
    XML_SetCharacterDataHandler(parser_.get(), &E142Parser::on_text);
    XML_SetStartDoctypeDeclHandler(parser_.get(), &E142Parser::on_doctype);
    XML_SetEntityDeclHandler(parser_.get(), &E142Parser::on_entity);
    // The size is at most INT_MAX (checked above), so one call takes the whole document.
    const XML_Status status =
        XML_Parse(parser_.get(), xml.data(), static_cast<int>(xml.size()), XML_TRUE);
    if (error_) return *error_;
    if (status != XML_STATUS_OK) {
        const XML_Error code = XML_GetErrorCode(parser_.get());
        return line_error(source_, line(),
                          std::string("malformed XML: ") + XML_ErrorString(code) + " (column " +
                              std::to_string(XML_GetCurrentColumnNumber(parser_.get()) + 1) + ")");
    }
    return ok_status();
}

Result<WaferMap> E142Parser::parse(std::string_view xml) {
    WP_RETURN_IF_ERROR(collect(xml));
    return build();
}

Result<std::vector<CarrierMap>> E142Parser::parse_carriers(std::string_view xml) {
    WP_RETURN_IF_ERROR(collect(xml));
    return build_carriers();
}

// ---- checks on the collected map ----

Result<int> dimension_value(const std::string& source, const LayoutInfo& l, const char* axis,
                            int cap) {
    const std::string* v = l.dimension.find(axis);
    if (v == nullptr)
        return line_error(source, l.line,
                          "Layout '" + l.id + "': Dimension has no " + axis + " attribute");
    auto n = detail::parse_int(detail::trim(*v));
    if (!n || *n <= 0)
        return line_error(
            source, l.line,
            "Layout '" + l.id + "': Dimension " + axis + "='" + *v + "' is not a positive integer");
    if (*n > cap)
        return line_error(source, l.line,
                          "Layout '" + l.id + "': Dimension " + axis + "=" + *v +
                              " exceeds the limit of " + std::to_string(cap) + " dies");
    return *n;
}

std::string coords(int x, int y) {
    return "(" + std::to_string(x) + ", " + std::to_string(y) + ")";
}

// Builds the WaferMap from what the parser collected, in named steps; each step refuses what is
// wrong with an error naming the file and the line of the offending element.
// What the map describes: a wafer (read_e142) or one strip of a carrier map file
// (read_e142_carriers; no wafer number, the lot optional).
enum class SubstrateKind { kWafer, kStrip };

class MapBuilder {
public:
    MapBuilder(const std::string& source, const MapReadOptions& options, const Collected& c,
               SubstrateKind kind = SubstrateKind::kWafer)
        : src_(source), options_(options), c_(c), kind_(kind) {}

    Result<WaferMap> build() {
        WP_RETURN_IF_ERROR(read_substrate_map());
        WP_RETURN_IF_ERROR(read_layout());
        WP_RETURN_IF_ERROR(read_substrate());
        WP_RETURN_IF_ERROR(read_bin_definitions());
        WP_RETURN_IF_ERROR(read_bin_codes());
        WP_RETURN_IF_ERROR(read_device_ids());
        place_dies();
        WP_RETURN_IF_ERROR(check_bin_counts());
        return std::move(map_);
    }

private:
    // A die position the map names, on the picture grid (column from the left, row from the
    // top). Only cells that the map names are stored, so a hostile Dimension costs no memory.
    struct Cell {
        std::string code;
        long line = 0;
        std::optional<wpid1::Uid> uid;
        long uid_line = 0;
    };

    Status read_substrate_map();    // the root, the one SubstrateMap, text fields
    Status read_layout();           // Layout, units, wafer size and notch, coordinate system
    Status read_substrate();        // Substrate, lot, wafer number
    Status read_bin_definitions();  // BinCodeMap attributes and BinDefinitions
    Status read_bin_codes();        // the dies: 2DArray rows or Coordinate entries
    Status read_device_ids();       // UIDs from the DeviceIdMap the job names
    void place_dies();              // the dies in picture order, in floor coordinates
    Status check_bin_counts();      // BinCount against the dies

    // Text fields are checked before any message quotes them: printable ASCII, at most 256
    // characters, as the ledger records them.
    Status text_field(std::string_view value, long line, const std::string& field,
                      bool may_be_empty) const {
        if (auto problem = text_field_problem(value, may_be_empty))
            return line_error(src_, line, field + ": " + *problem);
        return ok_status();
    }
    // A bin code in canonical form, defined in BinDefinitions (or the NullBin). `where` makes
    // the element's description only when there is an error to report.
    template <class Where>
    Result<std::string> check_code(std::string_view raw, long ln, const Where& where) const {
        auto code = detail::normalize_code(map_.bin_type, raw);
        if (!code)
            return line_error(
                src_, ln,
                where() + ": '" + std::string(raw) + "' is not a " + map_.bin_type + " bin code");
        if (*code != map_.null_bin && map_.bin_descriptions.count(*code) == 0)
            return line_error(src_, ln,
                              where() + ": bin code '" + *code + "' is not in BinDefinitions");
        return *code;
    }
    uint64_t cell_key(GridPosition p) const {
        return static_cast<uint64_t>(p.row) * static_cast<uint64_t>(map_.columns) +
               static_cast<uint64_t>(p.column);
    }
    Status add_cell(GridPosition p, std::string code, long ln) {
        if (code != map_.null_bin && ++die_count_ > options_.max_dies)
            return line_error(src_, ln,
                              "the map holds more than the limit of " +
                                  std::to_string(options_.max_dies) + " dies");
        cells_.emplace(cell_key(p), Cell{std::move(code), ln, std::nullopt, 0});
        return ok_status();
    }

    const std::string& src_;
    const MapReadOptions& options_;
    const Collected& c_;
    SubstrateKind kind_;
    WaferMap map_;
    const Located* smap_ = nullptr;
    std::optional<CoordinateSystem> cs_;
    const Located* bcm_ = nullptr;
    std::string map_type_;
    std::unordered_map<std::string, std::pair<long, long>> declared_counts_;  // code -> line, count
    std::unordered_map<uint64_t, Cell> cells_;
    size_t die_count_ = 0;
};

Status MapBuilder::read_substrate_map() {
    const std::string& src = src_;
    WaferMap& map = map_;
    if (c_.root.empty() || c_.root.front() != "MapData")
        return line_error(src, 1,
                          "root element is <" + (c_.root.empty() ? "" : c_.root.front()) +
                              ">, not <MapData> (not a SEMI E142 substrate map)");
    map.format = "E142";
    // A wafer map holds wafers: a strip (or tray, frame, ...) file is refused by its type
    // before anything else about it, so the message says what the file is.
    if (kind_ == SubstrateKind::kWafer) {
        auto not_wafer = [&](const std::string& type, long ln, const std::string& what) {
            return line_error(src, ln,
                              what + " is SubstrateType '" + type +
                                  "', not Wafer: this reads wafer maps" +
                                  (detail::iequals(type, "Strip")
                                       ? " (a strip map is a carrier map at final test: "
                                         "waferprov-tester --strip-map)"
                                       : ""));
        };
        for (const auto& sub : c_.substrates)
            if (!sub.type.empty() && !detail::iequals(sub.type, "Wafer"))
                return not_wafer(sub.type, sub.line, "Substrate '" + sub.id + "'");
        for (const auto& m : c_.substrate_maps) {
            const std::string type = m.attrs.get("SubstrateType");
            if (!type.empty() && !detail::iequals(type, "Wafer"))
                return not_wafer(type, m.line, "SubstrateMap '" + m.attrs.get("SubstrateId") + "'");
        }
    }

    // SubstrateMap: exactly one (one wafer per file).
    if (c_.substrate_maps.size() != 1)
        return line_error(src, c_.substrate_maps.empty() ? 1 : c_.substrate_maps[1].line,
                          "expected exactly one SubstrateMap, found " +
                              std::to_string(c_.substrate_maps.size()) +
                              " (waferprov reads one wafer per map)");
    smap_ = &c_.substrate_maps.front();
    const Located& smap = *smap_;
    map.origin = smap.attrs.get("OriginLocation", "LowerLeft");
    map.axis = smap.attrs.get("AxisDirection", "UpRight");
    const std::string smap_substrate = smap.attrs.get("SubstrateId");
    WP_RETURN_IF_ERROR(text_field(smap_substrate, smap.line, "SubstrateMap SubstrateId", true));
    for (const auto& s : c_.substrates) {
        WP_RETURN_IF_ERROR(text_field(s.id, s.line, "Substrate SubstrateId", true));
        if (s.lot) WP_RETURN_IF_ERROR(text_field(detail::trim(*s.lot), s.lot_line, "LotId", true));
    }

    return ok_status();
}

Status MapBuilder::read_layout() {
    const std::string& src = src_;
    WaferMap& map = map_;
    const Located& smap = *smap_;
    // Layout: the one the SubstrateMap's LayoutSpecifier names ("WaferLayout/Devices" -> the
    // last part), else the only one, else the only leaf (a layout with no ChildLayouts).
    const LayoutInfo* layout = nullptr;
    if (const std::string* spec = smap.attrs.find("LayoutSpecifier"); spec != nullptr) {
        const std::string last = spec->substr(spec->rfind('/') + 1);
        for (const auto& l : c_.layouts)
            if (l.id == last) layout = &l;
        if (layout == nullptr)
            return line_error(
                src, smap.line,
                "SubstrateMap: LayoutSpecifier '" + *spec + "' names no Layout in Layouts");
    } else {
        std::vector<const LayoutInfo*> leaves;
        for (const auto& l : c_.layouts)
            if (l.children.empty()) leaves.push_back(&l);
        if (leaves.size() == 1)
            layout = leaves.front();
        else if (leaves.empty())
            return line_error(src, smap.line, "the map has no Layout (Layouts/Layout)");
        else
            return line_error(src, smap.line,
                              "SubstrateMap has no LayoutSpecifier and the map has " +
                                  std::to_string(leaves.size()) + " device layouts");
    }
    if (!layout->has_dimension)
        return line_error(src, layout->line, "Layout '" + layout->id + "' has no Dimension");
    WP_ASSIGN_OR_RETURN(map.columns, dimension_value(src, *layout, "X", options_.max_dimension));
    WP_ASSIGN_OR_RETURN(map.rows, dimension_value(src, *layout, "Y", options_.max_dimension));
    // Lengths are in the layout's DefaultUnits.
    auto mm_per_unit = [&](const LayoutInfo& l) -> Result<double> {
        if (l.units == "mm") return 1.0;
        if (l.units == "micron" || l.units == "um") return 0.001;
        if (l.units == "mil") return 0.0254;
        if (l.units == "cm") return 10.0;
        return line_error(src, l.line,
                          "Layout '" + l.id + "': DefaultUnits '" + l.units +
                              "' is not a length waferprov reads (mm, micron, um, cm, mil)");
    };
    const Attributes& size = layout->step.items.empty() ? layout->device_size : layout->step;
    if (!size.items.empty()) {
        auto w = detail::parse_number(detail::trim(size.get("X")));
        auto h = detail::parse_number(detail::trim(size.get("Y")));
        if (!w || !h)
            return line_error(src, layout->line,
                              "Layout '" + layout->id + "': StepSize X/Y must be numbers");
        WP_ASSIGN_OR_RETURN(const double scale, mm_per_unit(*layout));
        map.die_width_mm = *w * scale;
        map.die_height_mm = *h * scale;
    }
    // The wafer's diameter: a layout of one 1 x 1 "device" (the wafer) whose child is the die
    // layout, with a round DeviceSize (X = Y), as floor tools nest them ("Wafer/Devices").
    for (const auto& l : c_.layouts) {
        if (std::find(l.children.begin(), l.children.end(), layout->id) == l.children.end())
            continue;
        if (detail::trim(l.dimension.get("X")) != "1" || detail::trim(l.dimension.get("Y")) != "1")
            continue;
        auto x = detail::parse_number(detail::trim(l.device_size.get("X")));
        auto y = detail::parse_number(detail::trim(l.device_size.get("Y")));
        if (!x || !y || *x != *y) continue;
        WP_ASSIGN_OR_RETURN(const double scale, mm_per_unit(l));
        const double d = *x * scale;
        if (!(d > 0 && d <= 1000))
            return line_error(src, l.line,
                              "Layout '" + l.id + "': a wafer DeviceSize of " + std::to_string(d) +
                                  " mm is not a wafer diameter");
        map.wafer_diameter_mm = d;
    }
    // Orientation: the flat or notch, degrees clockwise from the top of the map's picture.
    if (const std::string* o = smap.attrs.find("Orientation"); o != nullptr) {
        auto deg = detail::parse_number(detail::trim(*o));
        if (!deg || *deg < 0 || *deg >= 360 || *deg != static_cast<int>(*deg))
            return line_error(src, smap.line,
                              "SubstrateMap Orientation '" + *o +
                                  "' is not the flat/notch angle in whole degrees (0 to 359)");
        map.flat_deg = static_cast<int>(*deg);
    }
    map.device = std::string(detail::trim(layout->product));
    WP_RETURN_IF_ERROR(text_field(map.device, layout->line, "ProductId", true));

    auto cs_or = coordinate_system(map.columns, map.rows, map.origin, map.axis);
    if (!cs_or.ok()) return line_error(src, smap.line, "SubstrateMap: " + cs_or.error().message);
    cs_ = *cs_or;

    return ok_status();
}

Status MapBuilder::read_substrate() {
    const std::string& src = src_;
    WaferMap& map = map_;
    const Located& smap = *smap_;
    const std::string smap_substrate = smap.attrs.get("SubstrateId");
    // Substrate: the one the SubstrateMap names, else the only one.
    const SubstrateInfo* sub = nullptr;
    for (const auto& s : c_.substrates)
        if (!smap_substrate.empty() && s.id == smap_substrate) sub = &s;
    if (sub == nullptr) {
        if (c_.substrates.size() != 1)
            return line_error(src, smap.line,
                              c_.substrates.empty()
                                  ? std::string("the map has no Substrate (Substrates/Substrate)")
                                  : "SubstrateMap SubstrateId '" + smap_substrate +
                                        "' matches none of the " +
                                        std::to_string(c_.substrates.size()) + " Substrates");
        sub = &c_.substrates.front();
        if (!smap_substrate.empty() && !sub->id.empty() && sub->id != smap_substrate)
            return line_error(src, smap.line,
                              "SubstrateMap SubstrateId '" + smap_substrate +
                                  "' differs from Substrate '" + sub->id + "'");
    }
    const std::string sub_name = "Substrate '" + sub->id + "'";
    // The substrate id tells physical wafers apart (wafer numbers repeat): it is part of every
    // die's location, so a map without one provisions nothing.
    if (detail::trim(sub->id).empty())
        return line_error(src, sub->line,
                          "Substrate has no SubstrateId (the id of the physical wafer, part of "
                          "every die's identity)");
    if (kind_ == SubstrateKind::kStrip) {  // a strip: no wafer number; the lot if it has one
        map.lot = sub->lot ? std::string(detail::trim(*sub->lot)) : std::string();
        map.substrate_id = sub->id;
        return ok_status();
    }
    if (!sub->lot || detail::trim(*sub->lot).empty())
        return line_error(src, sub->line, sub_name + " has no LotId");
    map.lot = std::string(detail::trim(*sub->lot));
    map.substrate_id = sub->id;
    // The wafer number: SlotNumber (the field that means it), else --wafer, else a substrate id
    // of an unambiguous form; a given --wafer must agree with the map's own number.
    std::optional<int> number;
    long number_line = sub->line;
    std::string number_source;
    if (sub->slot && !detail::trim(*sub->slot).empty()) {
        auto slot = detail::parse_int(detail::trim(*sub->slot));
        if (!slot || *slot < 0)
            return line_error(
                src, sub->slot_line,
                sub_name + ": SlotNumber '" + *sub->slot + "' is not a non-negative integer");
        number = *slot;
        number_line = sub->slot_line;
        number_source = "SlotNumber " + std::to_string(*slot);
    } else if (auto own = wafer_number_of_substrate(sub->id, map.lot)) {
        number = *own;
        number_source = "SubstrateId '" + sub->id + "'";
    }
    if (options_.wafer_number) {
        if (number && *number != *options_.wafer_number)
            return line_error(src, number_line,
                              sub_name + ": " + number_source + " is wafer " +
                                  std::to_string(*number) + ", not wafer " +
                                  std::to_string(*options_.wafer_number) + " as --wafer says");
        number = options_.wafer_number;
    }
    if (!number)
        return line_error(src, sub->line,
                          sub_name +
                              " has no SlotNumber and its SubstrateId does not give a wafer "
                              "number (only all digits or '" +
                              map.lot +
                              "-<digits>' do); give the number with --wafer N after "
                              "this --map");
    map.wafer = *number;

    return ok_status();
}

Status MapBuilder::read_bin_definitions() {
    const std::string& src = src_;
    WaferMap& map = map_;
    const Located& smap = *smap_;
    // BinCodeMap: exactly one.
    if (c_.bin_code_maps.size() != 1)
        return line_error(src, c_.bin_code_maps.empty() ? smap.line : c_.bin_code_maps[1].line,
                          "expected exactly one Overlay/BinCodeMap, found " +
                              std::to_string(c_.bin_code_maps.size()));
    bcm_ = &c_.bin_code_maps.front();
    const Located& bcm = *bcm_;
    const std::string raw_type = bcm.attrs.get("BinType");
    auto bin_type = detail::canonical_bin_type(raw_type);
    if (!bin_type)
        return line_error(src, bcm.line,
                          "BinCodeMap: unknown BinType '" + raw_type +
                              "' (expected Ascii, HexaDecimal, Integer2 or Decimal)");
    map.bin_type = *bin_type;
    map_type_ = bcm.attrs.get("MapType", "2DArray");
    const std::string& map_type = map_type_;
    if (map_type != "2DArray" && map_type != "Coordinate")
        return line_error(
            src, bcm.line,
            "BinCodeMap: unknown MapType '" + map_type + "' (expected 2DArray or Coordinate)");
    if (const std::string* nb = bcm.attrs.find("NullBin"); nb != nullptr) {
        auto code = detail::normalize_code(map.bin_type, *nb);
        if (!code)
            return line_error(
                src, bcm.line,
                "BinCodeMap: NullBin '" + *nb + "' is not a " + map.bin_type + " bin code");
        map.null_bin = *code;
    }

    // BinDefinitions.
    auto& declared_counts = declared_counts_;
    for (const auto& def : c_.bin_definitions) {
        const std::string raw = def.attrs.get("BinCode");
        auto code = detail::normalize_code(map.bin_type, raw);
        if (!code)
            return line_error(
                src, def.line,
                "BinDefinition: BinCode '" + raw + "' is not a " + map.bin_type + " bin code");
        if (map.bin_descriptions.count(*code) != 0)
            return line_error(src, def.line, "BinDefinition: bin '" + *code + "' defined twice");
        const std::string quality = def.attrs.get("BinQuality");
        std::string text = def.attrs.get("BinDescription");
        WP_RETURN_IF_ERROR(text_field(text, def.line, "BinDefinition BinDescription", true));
        WP_RETURN_IF_ERROR(text_field(quality, def.line, "BinDefinition BinQuality", true));
        if (text.empty())
            text = quality;
        else if (!quality.empty())
            text += " (" + quality + ")";
        map.bin_descriptions[*code] = text;
        if (detail::iequals(quality, "Pass") || detail::iequals(quality, "Good") ||
            detail::iequals(def.attrs.get("Pick"), "true"))
            map.good_bins.push_back(*code);
        if (const std::string* count = def.attrs.find("BinCount"); count != nullptr) {
            auto n = detail::parse_int(detail::trim(*count));
            if (!n || *n < 0)
                return line_error(src, def.line,
                                  "BinDefinition " + *code + ": BinCount '" + *count +
                                      "' is not a non-negative integer");
            declared_counts[*code] = {def.line, *n};
        }
    }
    std::sort(map.good_bins.begin(), map.good_bins.end());

    return ok_status();
}

Status MapBuilder::read_bin_codes() {
    const std::string& src = src_;
    WaferMap& map = map_;
    const Located& bcm = *bcm_;
    const std::string& map_type = map_type_;
    const CoordinateSystem& cs = *cs_;
    auto& cells = cells_;
    const std::string layout_size = std::to_string(map.columns) + " x " + std::to_string(map.rows);
    if (map_type == "2DArray") {
        if (c_.bin_codes.size() != static_cast<size_t>(map.rows))
            return line_error(src,
                              c_.bin_codes.size() > static_cast<size_t>(map.rows)
                                  ? c_.bin_codes[static_cast<size_t>(map.rows)].line
                                  : bcm.line,
                              "BinCodeMap has " + std::to_string(c_.bin_codes.size()) +
                                  " BinCode rows; Layout Dimension Y is " +
                                  std::to_string(map.rows));
        const int width = detail::code_width(map.bin_type);
        for (size_t r = 0; r < c_.bin_codes.size(); ++r) {
            const Entry& row = c_.bin_codes[r];
            // Line breaks and tabs are layout; a space is a code only for an Ascii map whose
            // NullBin is a space.
            std::string_view text = detail::trim(
                row.text,
                map.bin_type == "Ascii" && map.null_bin == " " ? "\t\r\n" : detail::kWhitespace);
            std::vector<std::string_view> codes;
            std::string compact;
            if (width == 0) {
                size_t i = 0;
                while (i < text.size()) {
                    const size_t j = text.find_first_of(" \t\r\n,", i);
                    const size_t e = j == std::string_view::npos ? text.size() : j;
                    if (e > i) codes.push_back(text.substr(i, e - i));
                    i = e + 1;
                }
                if (codes.size() != static_cast<size_t>(map.columns))
                    return line_error(src, row.line,
                                      "BinCode row " + std::to_string(r + 1) + " has " +
                                          std::to_string(codes.size()) + " codes; Dimension X is " +
                                          std::to_string(map.columns));
            } else {
                std::string_view body = text;
                if (width > 1 &&
                    body.find_first_of(detail::kWhitespace) != std::string_view::npos) {
                    // Hex rows may separate codes with blanks.
                    for (char ch : body)
                        if (detail::kWhitespace.find(ch) == std::string_view::npos) compact += ch;
                    body = compact;
                }
                const size_t w = static_cast<size_t>(width);
                if (body.size() != static_cast<size_t>(map.columns) * w)
                    return line_error(
                        src, row.line,
                        "BinCode row " + std::to_string(r + 1) + " has " +
                            std::to_string(body.size()) + " characters; Dimension X " +
                            std::to_string(map.columns) + " at " + std::to_string(width) +
                            " per die needs " + std::to_string(map.columns * width));
                for (size_t i = 0; i < body.size(); i += w) codes.push_back(body.substr(i, w));
            }
            for (size_t col = 0; col < codes.size(); ++col) {
                WP_ASSIGN_OR_RETURN(std::string code, check_code(codes[col], row.line, [&] {
                                        return "BinCode row " + std::to_string(r + 1) + " column " +
                                               std::to_string(col + 1);
                                    }));
                if (code == map.null_bin) continue;
                WP_RETURN_IF_ERROR(add_cell({static_cast<int>(col), static_cast<int>(r)},
                                            std::move(code), row.line));
            }
        }
    } else {
        for (const Entry& e : c_.bin_codes) {
            auto x = detail::parse_int(detail::trim(e.x.value_or("")));
            auto y = detail::parse_int(detail::trim(e.y.value_or("")));
            if (!x || !y)
                return line_error(src, e.line,
                                  "BinCode (Coordinate form) needs integer X and Y attributes");
            const GridPosition p = cs.to_grid(*x, *y);
            const auto where = [&] { return "BinCode at " + coords(*x, *y); };
            if (!cs.contains(p))
                return line_error(src, e.line,
                                  where() + " is outside the " + layout_size + " layout (" +
                                      map.origin + ", " + map.axis + ")");
            if (auto it = cells.find(cell_key(p)); it != cells.end())
                return line_error(
                    src, e.line,
                    where() + " duplicates the BinCode on line " + std::to_string(it->second.line));
            WP_ASSIGN_OR_RETURN(std::string code, check_code(detail::trim(e.text), e.line, where));
            WP_RETURN_IF_ERROR(add_cell(p, std::move(code), e.line));
        }
    }

    return ok_status();
}

Status MapBuilder::read_device_ids() {
    const std::string& src = src_;
    WaferMap& map = map_;
    const Located& smap = *smap_;
    const CoordinateSystem& cs = *cs_;
    auto& cells = cells_;
    const std::string layout_size = std::to_string(map.columns) + " x " + std::to_string(map.rows);
    // DeviceIdMap: per-die UIDs by floor coordinate, from the overlay the job names; other
    // DeviceIdMaps (a supplier's own die ids) are not UIDs and are not read.
    const IdMapInfo* ids = nullptr;
    auto overlay_names = [&] {
        std::string names;
        for (const auto& m : c_.id_maps)
            names +=
                (names.empty() ? "'" : ", '") + m.name + "' (line " + std::to_string(m.line) + ")";
        return names;
    };
    if (options_.uid_overlay && options_.uid_overlay->empty()) {
        // The job reads no UIDs from maps.
    } else if (options_.uid_overlay) {
        for (const auto& m : c_.id_maps)
            if (m.name == *options_.uid_overlay) {
                if (ids != nullptr)
                    return line_error(src, m.line,
                                      "a second DeviceIdMap overlay named '" + m.name +
                                          "' (the first is on line " + std::to_string(ids->line) +
                                          ")");
                ids = &m;
            }
        if (ids == nullptr)
            return line_error(src, smap.line,
                              "no DeviceIdMap overlay has MapName '" + *options_.uid_overlay +
                                  "' ([map] uid_overlay); the map has " +
                                  (c_.id_maps.empty() ? std::string("none") : overlay_names()));
    } else if (c_.id_maps.size() > 1) {
        return line_error(src, c_.id_maps[1].line,
                          "a second DeviceIdMap: the map has " + overlay_names() +
                              "; name the overlay the UIDs come from with [map] uid_overlay in "
                              "the job");
    } else if (c_.id_maps.size() == 1) {
        ids = &c_.id_maps.front();
    }
    static const std::vector<Entry> kNoIds;
    for (const Entry& e : ids != nullptr ? ids->ids : kNoIds) {
        auto x = detail::parse_int(detail::trim(e.x.value_or("")));
        auto y = detail::parse_int(detail::trim(e.y.value_or("")));
        if (!x || !y) return line_error(src, e.line, "DeviceId needs integer X and Y attributes");
        const GridPosition p = cs.to_grid(*x, *y);
        const auto where = [&] { return "DeviceId at " + coords(*x, *y); };
        if (!cs.contains(p))
            return line_error(src, e.line, where() + " is outside the " + layout_size + " layout");
        auto it = cells.find(cell_key(p));
        if (it == cells.end() || it->second.code == map.null_bin)
            return line_error(src, e.line, where() + ": no die at that position in the BinCodeMap");
        if (it->second.uid_line != 0)
            return line_error(src, e.line,
                              where() + " duplicates the DeviceId on line " +
                                  std::to_string(it->second.uid_line));
        const std::string_view hex = detail::trim(e.text);
        auto uid = from_hex_fixed<wpid1::kUidSize>(hex, "UID");
        if (hex.size() != 2 * wpid1::kUidSize || !uid.ok())
            return line_error(
                src, e.line,
                where() + ": UID '" + std::string(hex.substr(0, 40)) + "' is not 32 hex digits");
        it->second.uid = *uid;
        it->second.uid_line = e.line;
    }

    return ok_status();
}

void MapBuilder::place_dies() {
    WaferMap& map = map_;
    const CoordinateSystem& cs = *cs_;
    auto& cells = cells_;
    // Dies in picture order: top row first, left to right.
    std::vector<std::pair<uint64_t, Cell*>> order;
    order.reserve(cells.size());
    for (auto& [key, c] : cells)
        if (c.code != map.null_bin) order.emplace_back(key, &c);
    std::sort(order.begin(), order.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    map.dies.reserve(order.size());
    for (auto& [key, c] : order) {
        MapDie d;
        cs.to_floor(static_cast<int>(key % static_cast<uint64_t>(map.columns)),
                    static_cast<int>(key / static_cast<uint64_t>(map.columns)), d.x, d.y);
        d.bin = std::move(c->code);
        d.uid = c->uid;
        map.dies.push_back(std::move(d));
    }
}

Status MapBuilder::check_bin_counts() {
    const std::string& src = src_;
    WaferMap& map = map_;
    const auto& declared_counts = declared_counts_;
    // BinCount, where given, must agree with the dies: a disagreement means a damaged map.
    if (!declared_counts.empty()) {
        const auto counts = count_by_bin(map);
        for (const auto& [code, declared] : declared_counts) {
            if (code == map.null_bin) continue;
            const auto it = counts.find(code);
            const long actual = it == counts.end() ? 0 : static_cast<long>(it->second);
            if (actual != declared.second)
                return line_error(
                    src, declared.first,
                    "BinDefinition " + code + ": BinCount=" + std::to_string(declared.second) +
                        " but the map holds " + std::to_string(actual) + " dies of that bin");
        }
    }
    return ok_status();
}

Result<WaferMap> E142Parser::build() { return MapBuilder(source_, options_, c_).build(); }

// The part of the collected document that belongs to SubstrateMap `i`: every layout and
// Substrate (the SubstrateMap picks its own), and only its own overlays.
Collected strip_part(const Collected& c, size_t i) {
    const SubstrateMapSpan& span = c.spans[i];
    auto slice = [](const auto& v, size_t b, size_t e) {
        return std::remove_cvref_t<decltype(v)>(v.begin() + static_cast<std::ptrdiff_t>(b),
                                                v.begin() + static_cast<std::ptrdiff_t>(e));
    };
    Collected one;
    one.root = c.root;
    one.layouts = c.layouts;
    one.substrates = c.substrates;
    one.substrate_maps = {c.substrate_maps[i]};
    one.spans = {span};
    one.bin_code_maps = slice(c.bin_code_maps, span.bcm_begin, span.bcm_end);
    one.bin_definitions = slice(c.bin_definitions, span.def_begin, span.def_end);
    one.bin_codes = slice(c.bin_codes, span.code_begin, span.code_end);
    one.id_maps = slice(c.id_maps, span.ids_begin, span.ids_end);
    return one;
}

// A strip's map as a carrier: positions by (row, column) = (Y, X), both from 0.
Result<CarrierMap> carrier_of(const std::string& src, long line, WaferMap&& map) {
    CarrierMap cm;
    cm.strip_id = std::move(map.substrate_id);
    cm.lot = std::move(map.lot);
    cm.product = std::move(map.device);
    cm.rows = map.rows;
    cm.columns = map.columns;
    cm.origin = map.origin;
    cm.axis = map.axis;
    cm.bin_type = map.bin_type;
    cm.null_bin = map.null_bin;
    cm.good_bins = map.good_bins;
    cm.bin_descriptions = std::move(map.bin_descriptions);
    for (auto& d : map.dies) {
        if (d.x < 0 || d.y < 0)
            return line_error(src, line,
                              "strip '" + cm.strip_id + "': the position at " + coords(d.x, d.y) +
                                  " has a negative coordinate under OriginLocation " + cm.origin +
                                  " / AxisDirection " + cm.axis +
                                  "; carrier rows and columns count from 0 (use a corner origin)");
        const bool good =
            std::find(cm.good_bins.begin(), cm.good_bins.end(), d.bin) != cm.good_bins.end();
        cm.positions.push_back(CarrierMapPosition{d.y, d.x, std::move(d.bin), good, d.uid});
    }
    std::sort(cm.positions.begin(), cm.positions.end(), [](const auto& a, const auto& b) {
        return std::pair(a.row, a.column) < std::pair(b.row, b.column);
    });
    return cm;
}

Result<std::vector<CarrierMap>> E142Parser::build_carriers() {
    if (c_.root.empty() || c_.root.front() != "MapData")
        return line_error(source_, 1,
                          "root element is <" + (c_.root.empty() ? "" : c_.root.front()) +
                              ">, not <MapData> (not a SEMI E142 substrate map)");
    // Only strips: a wafer map (or a tray, a frame) is not a carrier map of strips.
    for (const auto& sub : c_.substrates)
        if (!detail::iequals(sub.type, "Strip"))
            return line_error(
                source_, sub.line,
                "Substrate '" + sub.id + "' is " +
                    (sub.type.empty() ? std::string("of no SubstrateType")
                                      : "SubstrateType '" + sub.type + "'") +
                    ", not Strip: carrier maps hold strips (a wafer map is read with --map)");
    if (c_.substrates.empty())
        return line_error(source_, 1, "the file has no Substrate (Substrates/Substrate)");
    if (c_.substrate_maps.empty())
        return line_error(source_, 1, "the file has no SubstrateMap (SubstrateMaps/SubstrateMap)");
    std::vector<CarrierMap> out;
    std::map<std::string, long> seen;  // strip id -> line of its SubstrateMap
    for (size_t i = 0; i < c_.substrate_maps.size(); ++i) {
        const Located& m = c_.substrate_maps[i];
        const std::string type = m.attrs.get("SubstrateType");
        if (!type.empty() && !detail::iequals(type, "Strip"))
            return line_error(source_, m.line,
                              "SubstrateMap '" + m.attrs.get("SubstrateId") +
                                  "' is SubstrateType '" + type + "', not Strip");
        if (c_.substrates.size() > 1 && m.attrs.get("SubstrateId").empty())
            return line_error(source_, m.line,
                              "SubstrateMap has no SubstrateId, and the file has " +
                                  std::to_string(c_.substrates.size()) +
                                  " strips: name the strip it maps");
        const Collected part = strip_part(c_, i);
        WP_ASSIGN_OR_RETURN(WaferMap map,
                            MapBuilder(source_, options_, part, SubstrateKind::kStrip).build());
        WP_ASSIGN_OR_RETURN(CarrierMap cm, carrier_of(source_, m.line, std::move(map)));
        if (auto [it, fresh] = seen.emplace(cm.strip_id, m.line); !fresh)
            return line_error(source_, m.line,
                              "strip '" + cm.strip_id + "' is mapped twice (first on line " +
                                  std::to_string(it->second) + ")");
        out.push_back(std::move(cm));
    }
    for (const auto& sub : c_.substrates)
        if (seen.count(sub.id) == 0)
            return line_error(source_, sub.line, "Substrate '" + sub.id + "' has no SubstrateMap");
    return out;
}

}  // namespace

Result<WaferMap> read_e142(std::string_view xml, std::string_view source,
                           const MapReadOptions& options) {
    E142Parser parser(source, options);
    return parser.parse(xml);
}

Result<std::vector<CarrierMap>> read_e142_carriers(std::string_view xml, std::string_view source,
                                                   const MapReadOptions& options) {
    E142Parser parser(source, options);
    return parser.parse_carriers(xml);
}

}  // namespace waferprov::host
