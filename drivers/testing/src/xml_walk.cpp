#include "waferprov/testing/xml_walk.hpp"

#include <expat.h>

#include <memory>

namespace waferprov::testing {

std::string XmlElement::attribute(const std::string& key) const {
    const auto it = attributes.find(key);
    return it == attributes.end() ? std::string() : it->second;
}

XmlDocument walk_xml(const std::string& xml) {
    XmlDocument doc;
    const std::unique_ptr<XML_ParserStruct, decltype(&XML_ParserFree)> p(XML_ParserCreate("UTF-8"),
                                                                         &XML_ParserFree);
    XML_SetUserData(p.get(), &doc);
    XML_SetElementHandler(
        p.get(),
        [](void* ud, const XML_Char* name, const XML_Char** attrs) {
            XmlElement e;
            e.name = name;
            for (int i = 0; attrs[i] != nullptr; i += 2) e.attributes[attrs[i]] = attrs[i + 1];
            static_cast<XmlDocument*>(ud)->elements.push_back(std::move(e));
        },
        [](void*, const XML_Char*) {});
    XML_SetCharacterDataHandler(p.get(), [](void* ud, const XML_Char* s, int len) {
        static_cast<XmlDocument*>(ud)->text.append(s, static_cast<size_t>(len));
    });
    doc.ok = XML_Parse(p.get(), xml.data(), static_cast<int>(xml.size()), 1) == XML_STATUS_OK;
    if (!doc.ok)
        doc.error = std::string(XML_ErrorString(XML_GetErrorCode(p.get()))) + " at line " +
                    std::to_string(XML_GetCurrentLineNumber(p.get()));
    return doc;
}

}  // namespace waferprov::testing
