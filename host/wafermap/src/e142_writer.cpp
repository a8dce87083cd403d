// SEMI E142 writer: 2DArray form, the map's own origin and axis, a DeviceIdMap overlay when any
// die carries a UID. read_e142(write_e142(m)) gives back m's dies (tested for every origin/axis).
#include <algorithm>
#include <map>
#include <ostream>
#include <set>
#include <sstream>

#include "internal.hpp"
#include "waferprov/bytes.hpp"
#include "waferprov/host/wafermap.hpp"

namespace waferprov::host {
namespace {

using detail::xml_escape;

// The map's bins laid out row by row as the 2DArray's text, and the count of each bin code.
struct BinPicture {
    std::string text;
    std::map<std::string, size_t> counts;
    bool any_uid = false;
};

Result<BinPicture> paint_bins(const WaferMap& map, const CoordinateSystem& cs,
                              const std::string& bin_type, int width, const std::string& null_bin) {
    const size_t columns = static_cast<size_t>(map.columns);
    const auto w = static_cast<size_t>(width);
    BinPicture pic;
    pic.text.assign(columns * static_cast<size_t>(map.rows) * w, ' ');
    for (size_t i = 0; i < pic.text.size(); i += w) pic.text.replace(i, w, null_bin);
    std::vector<bool> taken(columns * static_cast<size_t>(map.rows), false);
    for (const auto& d : map.dies) {
        const std::string where =
            "write_e142: die (" + std::to_string(d.x) + ", " + std::to_string(d.y) + ")";
        const GridPosition p = cs.to_grid(d.x, d.y);
        if (!cs.contains(p))
            return make_error(ErrorCode::kInvalidArgument, where + " is outside the layout");
        const auto code = detail::normalize_code(bin_type, d.bin);
        if (!code || *code == null_bin)
            return make_error(ErrorCode::kInvalidArgument,
                              where + ": bin '" + d.bin + "' is not a die " + bin_type + " code");
        const size_t cell = static_cast<size_t>(p.row) * columns + static_cast<size_t>(p.column);
        if (taken[cell]) return make_error(ErrorCode::kInvalidArgument, where + " appears twice");
        taken[cell] = true;
        pic.text.replace(cell * w, w, *code);
        ++pic.counts[*code];
        pic.any_uid = pic.any_uid || d.uid.has_value();
    }
    // A described bin no die carries is still defined, with a count of zero.
    for (const auto& [code, text] : map.bin_descriptions)
        if (auto c = detail::normalize_code(bin_type, code); c && *c != null_bin)
            pic.counts[*c] += 0;
    return pic;
}

// <Layouts>: the wafer as a 1 x 1 layout around the dies where its diameter is known, and the
// dies' layout.
void write_layouts(std::ostream& out, const WaferMap& map) {
    out << "  <Layouts>\n";
    if (map.wafer_diameter_mm > 0)
        out << "    <Layout LayoutId=\"Wafer\" DefaultUnits=\"mm\">\n"
            << "      <Dimension X=\"1\" Y=\"1\"/>\n"
            << "      <DeviceSize X=\"" << map.wafer_diameter_mm << "\" Y=\""
            << map.wafer_diameter_mm << "\"/>\n"
            << "      <ChildLayouts>\n"
            << "        <ChildLayout LayoutId=\"Devices\"/>\n"
            << "      </ChildLayouts>\n"
            << "    </Layout>\n";
    out << "    <Layout LayoutId=\"Devices\" DefaultUnits=\"mm\">\n"
        << "      <Dimension X=\"" << map.columns << "\" Y=\"" << map.rows << "\"/>\n";
    if (map.die_width_mm > 0 && map.die_height_mm > 0)
        out << "      <StepSize X=\"" << map.die_width_mm << "\" Y=\"" << map.die_height_mm
            << "\"/>\n";
    if (!map.device.empty())
        out << "      <ProductId>" << xml_escape(map.device) << "</ProductId>\n";
    out << "    </Layout>\n"
        << "  </Layouts>\n";
}

// The BinCodeMap overlay: the bin definitions (pass or fail by the map's good bins) and the rows.
void write_bin_code_map(std::ostream& out, const WaferMap& map, const BinPicture& pic,
                        const std::string& bin_type, int width, const std::string& null_bin) {
    out << "      <Overlay MapName=\"BinCodeMap\" MapVersion=\"1\">\n"
        << "        <BinCodeMap BinType=\"" << bin_type << "\" NullBin=\"" << xml_escape(null_bin)
        << "\" MapType=\"2DArray\">\n"
        << "          <BinDefinitions>\n";
    const std::set<std::string> good(map.good_bins.begin(), map.good_bins.end());
    for (const auto& [code, count] : pic.counts) {
        const bool pass = good.count(code) != 0;
        const auto it = map.bin_descriptions.find(code);
        out << "            <BinDefinition BinCode=\"" << xml_escape(code) << "\" BinCount=\""
            << count << "\" BinQuality=\"" << (pass ? "Pass" : "Fail") << "\" BinDescription=\""
            << xml_escape(it == map.bin_descriptions.end() ? "" : it->second) << "\" Pick=\""
            << (pass ? "true" : "false") << "\"/>\n";
    }
    out << "          </BinDefinitions>\n";
    const size_t row_chars = static_cast<size_t>(map.columns) * static_cast<size_t>(width);
    for (int r = 0; r < map.rows; ++r)
        out << "          <BinCode>"
            << xml_escape(
                   std::string_view(pic.text).substr(static_cast<size_t>(r) * row_chars, row_chars))
            << "</BinCode>\n";
    out << "        </BinCodeMap>\n"
        << "      </Overlay>\n";
}

// The DeviceIds overlay: each die's UID at its map coordinates.
void write_device_ids(std::ostream& out, const WaferMap& map) {
    out << "      <Overlay MapName=\"DeviceIds\" MapVersion=\"1\">\n"
        << "        <DeviceIdMap>\n";
    for (const auto& d : map.dies)
        if (d.uid)
            out << "          <DeviceId X=\"" << d.x << "\" Y=\"" << d.y << "\">" << to_hex(*d.uid)
                << "</DeviceId>\n";
    out << "        </DeviceIdMap>\n"
        << "      </Overlay>\n";
}

}  // namespace

Result<std::string> write_e142(const WaferMap& map) {
    const auto bin_type = detail::canonical_bin_type(map.bin_type);
    const int width = bin_type ? detail::code_width(*bin_type) : 0;
    if (width == 0)
        return make_error(
            ErrorCode::kUnsupported,
            "write_e142: BinType '" + map.bin_type + "' (writable: Ascii, HexaDecimal, Integer2)");
    const auto null_bin = detail::normalize_code(*bin_type, map.null_bin);
    if (!null_bin)
        return make_error(ErrorCode::kInvalidArgument, "write_e142: NullBin '" + map.null_bin +
                                                           "' is not a " + *bin_type + " code");
    WP_ASSIGN_OR_RETURN(const CoordinateSystem cs,
                        coordinate_system(map.columns, map.rows, map.origin, map.axis));
    if (map.columns <= 0 || map.rows <= 0)
        return make_error(ErrorCode::kInvalidArgument, "write_e142: the map has no layout size");
    WP_ASSIGN_OR_RETURN(const BinPicture pic, paint_bins(map, cs, *bin_type, width, *null_bin));

    const std::string substrate_id =
        map.substrate_id.empty() ? map.lot + "-" + std::to_string(map.wafer) : map.substrate_id;
    std::ostringstream out;
    out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        << "<MapData xmlns=\"urn:semi-org:xsd.E142-1.V1005.SubstrateMap\">\n";
    write_layouts(out, map);
    out << "  <Substrates>\n"
        << "    <Substrate SubstrateType=\"Wafer\" SubstrateId=\"" << xml_escape(substrate_id)
        << "\">\n"
        << "      <LotId>" << xml_escape(map.lot) << "</LotId>\n"
        << "      <SlotNumber>" << map.wafer << "</SlotNumber>\n"
        << "    </Substrate>\n"
        << "  </Substrates>\n"
        << "  <SubstrateMaps>\n"
        << "    <SubstrateMap SubstrateType=\"Wafer\" SubstrateId=\"" << xml_escape(substrate_id)
        << "\" LayoutSpecifier=\"" << (map.wafer_diameter_mm > 0 ? "Wafer/Devices" : "Devices")
        << "\" OriginLocation=\"" << map.origin << "\" AxisDirection=\"" << map.axis << "\"";
    if (map.flat_deg >= 0) out << " Orientation=\"" << map.flat_deg << "\"";
    out << ">\n";
    write_bin_code_map(out, map, pic, *bin_type, width, *null_bin);
    if (pic.any_uid) write_device_ids(out, map);
    out << "    </SubstrateMap>\n"
        << "  </SubstrateMaps>\n"
        << "</MapData>\n";
    return out.str();
}

}  // namespace waferprov::host
