#include "query/ast.h"

namespace cairn::query {

namespace {

bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
}
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

bool IsPlainSegment(const std::string& s) {
  if (s.empty()) return false;
  bool all_digits = true;
  for (const char c : s) all_digits = all_digits && c >= '0' && c <= '9';
  if (all_digits) return true;
  if (!IsNameStart(s[0])) return false;
  for (const char c : s) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

void AppendValueList(const std::vector<Value>& values, std::string* out) {
  out->push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out->push_back(',');
    values[i].AppendJson(out);
  }
  out->push_back(']');
}

void AppendNode(const Node& n, std::string* out) {
  switch (n.kind) {
    case NodeKind::kTrue:
      return;
    case NodeKind::kAnd:
    case NodeKind::kOr: {
      // Every child in parentheses: simple, and never ambiguous.
      const char* sep = n.kind == NodeKind::kAnd ? " && " : " || ";
      for (size_t i = 0; i < n.children.size(); ++i) {
        if (i > 0) out->append(sep);
        out->push_back('(');
        AppendNode(n.children[i], out);
        out->push_back(')');
      }
      return;
    }
    case NodeKind::kNot:
      out->append("!(");
      AppendNode(n.children[0], out);
      out->push_back(')');
      return;
    case NodeKind::kCompare:
      out->append(n.path.ToString());
      out->push_back(' ');
      out->append(CompareOpText(n.op));
      out->push_back(' ');
      n.value.AppendJson(out);
      return;
    case NodeKind::kIn:
      out->append(n.path.ToString());
      out->append(" in ");
      AppendValueList(n.values, out);
      return;
    case NodeKind::kExists:
      out->append(n.path.ToString());
      out->append(" exists");
      return;
    case NodeKind::kPrefix:
      out->append(n.path.ToString());
      out->append(" ^= ");
      n.value.AppendJson(out);
      return;
    case NodeKind::kContains:
      out->append(n.path.ToString());
      out->append(" contains ");
      n.value.AppendJson(out);
      return;
  }
}

}  // namespace

std::string Path::ToString() const {
  std::string out;
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out.push_back('.');
    const std::string& s = segments[i];
    if (IsPlainSegment(s)) {
      out.append(s);
      continue;
    }
    out.push_back('`');
    for (const char c : s) {
      if (c == '`') out.push_back('`');  // a backtick is doubled
      out.push_back(c);
    }
    out.push_back('`');
  }
  return out;
}

std::string_view CompareOpText(CompareOp op) {
  switch (op) {
    case CompareOp::kEq:
      return "==";
    case CompareOp::kNe:
      return "!=";
    case CompareOp::kLt:
      return "<";
    case CompareOp::kLe:
      return "<=";
    case CompareOp::kGt:
      return ">";
    case CompareOp::kGe:
      return ">=";
  }
  return "?";
}

std::string Node::ToString() const {
  std::string out;
  AppendNode(*this, &out);
  return out;
}

bool SameTree(const Node& a, const Node& b) {
  if (a.kind != b.kind || !(a.path == b.path)) return false;
  switch (a.kind) {
    case NodeKind::kTrue:
    case NodeKind::kExists:
      return true;
    case NodeKind::kCompare:
      return a.op == b.op && a.value.type() == b.value.type() && a.value == b.value;
    case NodeKind::kPrefix:
    case NodeKind::kContains:
      return a.value.type() == b.value.type() && a.value == b.value;
    case NodeKind::kIn:
      if (a.values.size() != b.values.size()) return false;
      for (size_t i = 0; i < a.values.size(); ++i) {
        if (!(a.values[i] == b.values[i])) return false;
      }
      return true;
    case NodeKind::kAnd:
    case NodeKind::kOr:
    case NodeKind::kNot:
      if (a.children.size() != b.children.size()) return false;
      for (size_t i = 0; i < a.children.size(); ++i) {
        if (!SameTree(a.children[i], b.children[i])) return false;
      }
      return true;
  }
  return false;
}

std::string Query::ToString() const {
  std::string out = filter.ToString();
  char sep = '?';
  if (limit.has_value()) {
    out.push_back(sep);
    sep = '&';
    out.append("limit=" + std::to_string(*limit));
  }
  if (!sort.empty()) {
    out.push_back(sep);
    sep = '&';
    out.append("sort=");
    for (size_t i = 0; i < sort.size(); ++i) {
      if (i > 0) out.push_back(',');
      if (sort[i].descending) out.push_back('-');
      out.append(sort[i].path.ToString());
    }
  }
  if (!fields.empty()) {
    out.push_back(sep);
    out.append("fields=");
    for (size_t i = 0; i < fields.size(); ++i) {
      if (i > 0) out.push_back(',');
      out.append(fields[i].ToString());
    }
  }
  return out;
}

}  // namespace cairn::query
