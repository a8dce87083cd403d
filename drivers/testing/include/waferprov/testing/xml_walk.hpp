// An XML document as a parser (expat) reads it, for tests that check generated SVG or XML by its
// structure, not by matching text: every element with its attributes, in document order, and all
// character data.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace waferprov::testing {

struct XmlElement {
    std::string name;
    std::map<std::string, std::string> attributes;

    // The attribute's value, or "" when the element has none of that name.
    std::string attribute(const std::string& key) const;
};

struct XmlDocument {
    bool ok = false;
    std::string error;                 // expat's message and the line, when !ok
    std::vector<XmlElement> elements;  // start tags in document order (elements[0]: the root)
    std::string text;                  // all character data, concatenated
};

// Parses `xml` with expat. A document that is not well-formed gives ok = false and the error.
XmlDocument walk_xml(const std::string& xml);

}  // namespace waferprov::testing
