#include "query/evaluator.h"

#include <simdjson.h>

#include <charconv>

#include "common/assert.h"

namespace cairn::query {

namespace dom = simdjson::dom;

struct Document::Impl {
  dom::parser parser;
  dom::element root;
  std::string raw;  // a copy of the text parsed (the caller's may go away)
};

Document::Document() : impl_(std::make_unique<Impl>()) {}
Document::~Document() = default;

bool Document::Load(std::string_view id, std::string_view json) {
  id_.assign(id);
  loaded_ = false;
  dom::element root;
  if (impl_->parser.parse(json.data(), json.size(), true).get(root) != simdjson::SUCCESS) {
    return false;
  }
  if (root.type() != dom::element_type::OBJECT) return false;
  impl_->root = root;
  impl_->raw.assign(json);
  loaded_ = true;
  return true;
}

namespace {

// By value: a range-for over `e.get_array().value_unsafe()` would iterate a
// reference into a destroyed temporary.
dom::array AsArray(dom::element e) {
  dom::array a;
  const simdjson::error_code err = e.get_array().get(a);
  CAIRN_DCHECK(err == simdjson::SUCCESS);  // callers checked the type
  (void)err;
  return a;
}
dom::object AsObject(dom::element e) {
  dom::object o;
  const simdjson::error_code err = e.get_object().get(o);
  CAIRN_DCHECK(err == simdjson::SUCCESS);
  (void)err;
  return o;
}

int Cmp3(int c) { return c < 0 ? -1 : (c > 0 ? 1 : 0); }

TypeClass ClassOf(dom::element e) {
  switch (e.type()) {
    case dom::element_type::NULL_VALUE:
      return TypeClass::kNull;
    case dom::element_type::BOOL:
      return TypeClass::kBool;
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE:
      return TypeClass::kNumber;
    case dom::element_type::STRING:
      return TypeClass::kString;
    case dom::element_type::ARRAY:
      return TypeClass::kArray;
    case dom::element_type::OBJECT:
      return TypeClass::kObject;
  }
  return TypeClass::kNull;
}

Number NumberOf(dom::element e) {
  switch (e.type()) {
    case dom::element_type::INT64:
      return Number::Int(e.get_int64().value_unsafe());
    case dom::element_type::UINT64:
      return Number::Uint(e.get_uint64().value_unsafe());
    default:
      return Number::Double(e.get_double().value_unsafe());
  }
}

Value ToValue(dom::element e) {
  switch (e.type()) {
    case dom::element_type::NULL_VALUE:
      return Value::Null();
    case dom::element_type::BOOL:
      return Value::Bool(e.get_bool().value_unsafe());
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE:
      return Value::Num(NumberOf(e));
    case dom::element_type::STRING:
      return Value::Str(std::string(e.get_string().value_unsafe()));
    case dom::element_type::ARRAY: {
      Value::Array a;
      for (dom::element x : AsArray(e)) a.push_back(ToValue(x));
      return Value::Arr(std::move(a));
    }
    case dom::element_type::OBJECT: {
      Value::Object o;
      for (dom::key_value_pair kv : AsObject(e)) {
        o.emplace_back(std::string(kv.key), ToValue(kv.value));
      }
      return Value::Obj(std::move(o));
    }
  }
  return Value::Null();
}

// The total order of value.h between a document element and a literal.
int CompareElement(dom::element e, const Value& v) {
  const TypeClass c = ClassOf(e);
  if (c != v.type()) return Cmp3(static_cast<int>(c) - static_cast<int>(v.type()));
  switch (c) {
    case TypeClass::kNull:
      return 0;
    case TypeClass::kBool: {
      const bool b = e.get_bool().value_unsafe();
      return Cmp3(static_cast<int>(b) - static_cast<int>(v.boolean()));
    }
    case TypeClass::kNumber:
      return CompareNumbers(NumberOf(e), v.number());
    case TypeClass::kString:
      return Cmp3(e.get_string().value_unsafe().compare(v.str()));
    case TypeClass::kArray: {
      const auto& items = v.array();
      size_t i = 0;
      for (dom::element x : AsArray(e)) {
        if (i == items.size()) return 1;
        if (const int r = CompareElement(x, items[i]); r != 0) return r;
        ++i;
      }
      return i == items.size() ? 0 : -1;
    }
    case TypeClass::kObject:
      return Compare(ToValue(e), v);  // needs keys sorted: rare
  }
  return 0;
}

// What a path resolves to: nothing, the document's id, or an element.
struct Resolved {
  enum class Kind : uint8_t { kMissing, kId, kElement };
  Kind kind = Kind::kMissing;
  dom::element element;
};

// A canonical decimal array index ("0", "17"; not "007").
bool ArrayIndex(const std::string& seg, size_t* out) {
  if (seg.empty() || (seg.size() > 1 && seg[0] == '0')) return false;
  size_t v = 0;
  const auto r = std::from_chars(seg.data(), seg.data() + seg.size(), v);
  if (r.ec != std::errc() || r.ptr != seg.data() + seg.size()) return false;
  *out = v;
  return true;
}

// One step down: the member `seg` of an object (its first occurrence) or the
// element `seg` of an array.
bool Step(dom::element cur, const std::string& seg, dom::element* next) {
  if (cur.type() == dom::element_type::OBJECT) {
    return AsObject(cur).at_key(seg).get(*next) == simdjson::SUCCESS;
  }
  if (cur.type() == dom::element_type::ARRAY) {
    size_t index = 0;
    if (!ArrayIndex(seg, &index)) return false;
    return AsArray(cur).at(index).get(*next) == simdjson::SUCCESS;
  }
  return false;
}

Resolved Resolve(const Path& path, const Document& doc) {
  Resolved r;
  if (path.segments.size() == 1 && path.segments[0] == kIdField) {
    r.kind = Resolved::Kind::kId;
    return r;
  }
  if (!path.segments.empty() && path.segments[0] == kIdField) return r;  // a string has no keys
  dom::element cur = doc.impl().root;
  for (const std::string& seg : path.segments) {
    if (!Step(cur, seg, &cur)) return r;
  }
  r.kind = Resolved::Kind::kElement;
  r.element = cur;
  return r;
}

TypeClass ClassOf(const Resolved& r) {
  return r.kind == Resolved::Kind::kId ? TypeClass::kString : ClassOf(r.element);
}

int CompareResolved(const Resolved& r, const Value& v, const Document& doc) {
  if (r.kind == Resolved::Kind::kId) {
    if (v.type() != TypeClass::kString) {
      return Cmp3(static_cast<int>(TypeClass::kString) - static_cast<int>(v.type()));
    }
    return Cmp3(std::string_view(doc.id()).compare(v.str()));
  }
  return CompareElement(r.element, v);
}

bool EvalCompare(const Node& n, const Document& doc) {
  const Resolved r = Resolve(n.path, doc);
  if (r.kind == Resolved::Kind::kMissing) return false;
  if (ClassOf(r) != n.value.type()) return n.op == CompareOp::kNe;
  const int c = CompareResolved(r, n.value, doc);
  switch (n.op) {
    case CompareOp::kEq:
      return c == 0;
    case CompareOp::kNe:
      return c != 0;
    case CompareOp::kLt:
      return c < 0;
    case CompareOp::kLe:
      return c <= 0;
    case CompareOp::kGt:
      return c > 0;
    case CompareOp::kGe:
      return c >= 0;
  }
  return false;
}

bool Eval(const Node& n, const Document& doc) {
  switch (n.kind) {
    case NodeKind::kTrue:
      return true;
    case NodeKind::kAnd:
      for (const Node& c : n.children) {
        if (!Eval(c, doc)) return false;
      }
      return true;
    case NodeKind::kOr:
      for (const Node& c : n.children) {
        if (Eval(c, doc)) return true;
      }
      return false;
    case NodeKind::kNot:
      return !Eval(n.children[0], doc);
    case NodeKind::kCompare:
      return EvalCompare(n, doc);
    case NodeKind::kIn: {
      const Resolved r = Resolve(n.path, doc);
      if (r.kind == Resolved::Kind::kMissing) return false;
      for (const Value& v : n.values) {
        if (CompareResolved(r, v, doc) == 0) return true;
      }
      return false;
    }
    case NodeKind::kExists:
      return Resolve(n.path, doc).kind != Resolved::Kind::kMissing;
    case NodeKind::kPrefix: {
      const Resolved r = Resolve(n.path, doc);
      if (r.kind == Resolved::Kind::kMissing || ClassOf(r) != TypeClass::kString) return false;
      const std::string_view s = r.kind == Resolved::Kind::kId
                                     ? std::string_view(doc.id())
                                     : r.element.get_string().value_unsafe();
      return s.starts_with(n.value.str());
    }
    case NodeKind::kContains: {
      const Resolved r = Resolve(n.path, doc);
      if (r.kind != Resolved::Kind::kElement || r.element.type() != dom::element_type::ARRAY) {
        return false;
      }
      for (dom::element x : AsArray(r.element)) {
        if (CompareElement(x, n.value) == 0) return true;
      }
      return false;
    }
  }
  return false;
}

// ---- projection ----

// The requested paths as a tree; a node marked `whole` takes its whole value.
struct FieldTree {
  std::string key;
  bool whole = false;
  std::vector<FieldTree> children;  // in the order of first mention

  FieldTree* Child(const std::string& k) {
    for (FieldTree& c : children) {
      if (c.key == k) return &c;
    }
    children.push_back(FieldTree{k, false, {}});
    return &children.back();
  }
  void Add(const Path& p) {
    FieldTree* cur = this;
    for (const std::string& seg : p.segments) {
      if (cur->whole) return;  // a shorter path already takes all of it
      cur = cur->Child(seg);
    }
    cur->whole = true;
    cur->children.clear();
  }
};

// Appends the members of `tree` found under `e` as "key":value pairs joined
// by commas (no braces); returns how many it wrote.
size_t AppendMembers(const FieldTree& tree, dom::element e, bool at_root, std::string* out) {
  size_t written = 0;
  for (const FieldTree& c : tree.children) {
    if (at_root && c.key == kIdField) continue;  // "_id" is the store's, written first
    dom::element v;
    if (!Step(e, c.key, &v)) continue;
    std::string member;
    AppendJsonString(c.key, &member);
    member.push_back(':');
    if (c.whole) {
      member.append(simdjson::minify(v));
    } else {
      member.push_back('{');
      if (AppendMembers(c, v, false, &member) == 0) continue;  // nothing below: left out
      member.push_back('}');
    }
    if (written++ > 0) out->push_back(',');
    out->append(member);
  }
  return written;
}

}  // namespace

bool Matches(const Node& filter, const Document& doc) { return doc.loaded() && Eval(filter, doc); }

std::optional<Value> ValueAt(const Path& path, const Document& doc) {
  if (!doc.loaded()) return std::nullopt;
  const Resolved r = Resolve(path, doc);
  switch (r.kind) {
    case Resolved::Kind::kMissing:
      return std::nullopt;
    case Resolved::Kind::kId:
      return Value::Str(doc.id());
    case Resolved::Kind::kElement:
      return ToValue(r.element);
  }
  return std::nullopt;
}

std::vector<std::optional<Value>> SortKeyOf(const std::vector<SortKey>& sort, const Document& doc) {
  std::vector<std::optional<Value>> out;
  out.reserve(sort.size());
  for (const SortKey& k : sort) out.push_back(ValueAt(k.path, doc));
  return out;
}

namespace {

// Appends `,` and the members of the JSON object `text` (valid: it parsed),
// minified; nothing for an empty object. False, leaving `out` as it was,
// when the minified text is not `{...}` (the caller then writes the parsed
// values out).
bool AppendRawMembers(std::string_view text, std::string* out) {
  thread_local std::string buf;
  buf.resize(text.size() + simdjson::SIMDJSON_PADDING);
  size_t len = 0;
  if (simdjson::minify(text.data(), text.size(), buf.data(), len) != simdjson::SUCCESS || len < 2 ||
      buf[0] != '{' || buf[len - 1] != '}') {
    return false;
  }
  if (len > 2) {
    out->push_back(',');
    out->append(buf.data() + 1, len - 2);
  }
  return true;
}

}  // namespace

std::string Project(const std::vector<Path>& fields, const Document& doc) {
  std::string out = "{\"_id\":";
  AppendJsonString(doc.id(), &out);
  if (!doc.loaded()) {
    out.push_back('}');
    return out;
  }
  const dom::element root = doc.impl().root;
  if (fields.empty()) {
    // The whole document: its own text minified (much faster than writing
    // the parsed values out again, and numbers keep their spelling), unless
    // it has an "_id" of its own to leave out.
    if (root[kIdField].error() == simdjson::NO_SUCH_FIELD &&
        AppendRawMembers(doc.impl().raw, &out)) {
      out.push_back('}');
      return out;
    }
    for (dom::key_value_pair kv : AsObject(root)) {
      if (kv.key == kIdField) continue;
      out.push_back(',');
      AppendJsonString(kv.key, &out);
      out.push_back(':');
      out.append(simdjson::minify(kv.value));
    }
  } else {
    FieldTree tree;
    for (const Path& p : fields) tree.Add(p);
    std::string members;
    if (AppendMembers(tree, root, true, &members) > 0) {
      out.push_back(',');
      out.append(members);
    }
  }
  out.push_back('}');
  return out;
}

}  // namespace cairn::query
