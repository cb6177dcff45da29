#include "query/prefilter.h"

#include <string.h>

namespace cairn::query {

namespace {

// The bytes a string value equal to `s` has in a JSON text without escapes,
// quotes included; empty when such a value would need an escape.
std::string Quoted(const std::string& s) {
  for (const char c : s) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return std::string();
  }
  return "\"" + s + "\"";
}

bool OnId(const Path& p) { return !p.segments.empty() && p.segments[0] == kIdField; }

}  // namespace

RawPrefilter::RawPrefilter(const Node& filter) { Collect(filter); }

void RawPrefilter::Collect(const Node& n) {
  switch (n.kind) {
    case NodeKind::kAnd:
      for (const Node& c : n.children) Collect(c);
      return;
    case NodeKind::kCompare: {
      if (n.op != CompareOp::kEq || n.value.type() != TypeClass::kString || OnId(n.path)) return;
      std::string q = Quoted(n.value.str());
      if (!q.empty()) required_.push_back({std::move(q)});
      return;
    }
    case NodeKind::kIn: {
      if (n.values.empty() || OnId(n.path)) return;
      std::vector<std::string> any;
      for (const Value& v : n.values) {
        if (v.type() != TypeClass::kString) return;  // a non-string could match unseen
        std::string q = Quoted(v.str());
        if (q.empty()) return;
        any.push_back(std::move(q));
      }
      required_.push_back(std::move(any));
      return;
    }
    default:
      return;  // no string that every match must hold
  }
}

bool RawPrefilter::MayMatch(std::string_view json) const {
  if (required_.empty() || json.find('\\') != std::string_view::npos) return true;
  for (const std::vector<std::string>& any : required_) {
    bool found = false;
    for (const std::string& q : any) {
      // glibc's memmem: std::string_view::find stops at every '"' (the
      // pattern's first byte, frequent in JSON) to compare.
      if (::memmem(json.data(), json.size(), q.data(), q.size()) != nullptr) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

}  // namespace cairn::query
