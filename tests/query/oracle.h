// The brute-force oracle: the query semantics of docs/query-language.md
// written again, as plainly as possible, over nlohmann::json, sharing no code
// with query/evaluator.cc beyond the parsed tree. Property tests compare the
// library (simdjson, top-k, merge, indexes) against it.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "query/ast.h"

namespace cairn::query::oracle {

using Json = nlohmann::json;

struct Doc {
  std::string id;
  std::optional<Json> json;  // nullopt: not a JSON object
};

inline Doc MakeDoc(std::string id, const std::string& text) {
  Doc d{std::move(id), std::nullopt};
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded() && j.is_object()) d.json = std::move(j);
  return d;
}

inline Json ToJson(const Value& v) {
  switch (v.type()) {
    case TypeClass::kNull:
      return nullptr;
    case TypeClass::kBool:
      return v.boolean();
    case TypeClass::kNumber:
      switch (v.number().kind) {
        case Number::Kind::kInt:
          return v.number().i;
        case Number::Kind::kUint:
          return v.number().u;
        case Number::Kind::kDouble:
          return v.number().d;
      }
      return nullptr;
    case TypeClass::kString:
      return v.str();
    case TypeClass::kArray: {
      Json a = Json::array();
      for (const Value& x : v.array()) a.push_back(ToJson(x));
      return a;
    }
    case TypeClass::kObject: {
      Json o = Json::object();
      for (const auto& [k, x] : v.object()) o[k] = ToJson(x);
      return o;
    }
  }
  return nullptr;
}

inline int Rank(const Json& j) {
  if (j.is_null()) return 0;
  if (j.is_boolean()) return 1;
  if (j.is_number()) return 2;
  if (j.is_string()) return 3;
  if (j.is_array()) return 4;
  return 5;
}

// x87 long double holds every int64, uint64 and double exactly.
inline long double Num(const Json& j) {
  if (j.is_number_unsigned()) return static_cast<long double>(j.get<uint64_t>());
  if (j.is_number_integer()) return static_cast<long double>(j.get<int64_t>());
  return static_cast<long double>(j.get<double>());
}

inline int Order(const Json& a, const Json& b) {
  const int ra = Rank(a);
  const int rb = Rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 0:
      return 0;
    case 1:
      return a.get<bool>() == b.get<bool>() ? 0 : (a.get<bool>() ? 1 : -1);
    case 2: {
      const long double x = Num(a);
      const long double y = Num(b);
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    case 3: {
      const std::string& x = a.get_ref<const std::string&>();
      const std::string& y = b.get_ref<const std::string&>();
      // Bytewise, as unsigned bytes.
      return std::lexicographical_compare(x.begin(), x.end(), y.begin(), y.end(),
                                          [](char p, char q) {
                                            return static_cast<unsigned char>(p) <
                                                   static_cast<unsigned char>(q);
                                          })
                 ? -1
                 : (x == y ? 0 : 1);
    }
    case 4: {
      for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
        if (const int c = Order(a[i], b[i]); c != 0) return c;
      }
      return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
    }
    default: {
      // std::map order: keys sorted bytewise (all test keys are ASCII).
      auto ia = a.begin();
      auto ib = b.begin();
      for (; ia != a.end() && ib != b.end(); ++ia, ++ib) {
        if (ia.key() != ib.key()) return ia.key() < ib.key() ? -1 : 1;
        if (const int c = Order(ia.value(), ib.value()); c != 0) return c;
      }
      return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
    }
  }
}

inline std::optional<Json> Lookup(const Path& p, const Doc& d) {
  if (!d.json.has_value()) return std::nullopt;
  if (p.segments[0] == "_id") {
    if (p.segments.size() == 1) return Json(d.id);
    return std::nullopt;
  }
  const Json* cur = &*d.json;
  for (const std::string& s : p.segments) {
    if (cur->is_object()) {
      auto it = cur->find(s);
      if (it == cur->end()) return std::nullopt;
      cur = &*it;
    } else if (cur->is_array()) {
      if (s.empty() || s.size() > 9 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
      if (!std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
      }
      const size_t i = std::stoul(s);
      if (i >= cur->size()) return std::nullopt;
      cur = &(*cur)[i];
    } else {
      return std::nullopt;
    }
  }
  return *cur;
}

inline bool Eval(const Node& n, const Doc& d) {
  switch (n.kind) {
    case NodeKind::kTrue:
      return true;
    case NodeKind::kAnd:
      return std::all_of(n.children.begin(), n.children.end(),
                         [&](const Node& c) { return Eval(c, d); });
    case NodeKind::kOr:
      return std::any_of(n.children.begin(), n.children.end(),
                         [&](const Node& c) { return Eval(c, d); });
    case NodeKind::kNot:
      return !Eval(n.children[0], d);
    case NodeKind::kExists:
      return Lookup(n.path, d).has_value();
    case NodeKind::kCompare: {
      const auto v = Lookup(n.path, d);
      if (!v) return false;
      const Json lit = ToJson(n.value);
      const bool same_type = Rank(*v) == Rank(lit);
      const int c = Order(*v, lit);
      switch (n.op) {
        case CompareOp::kEq:
          return c == 0;
        case CompareOp::kNe:
          return c != 0;
        case CompareOp::kLt:
          return same_type && c < 0;
        case CompareOp::kLe:
          return same_type && c <= 0;
        case CompareOp::kGt:
          return same_type && c > 0;
        case CompareOp::kGe:
          return same_type && c >= 0;
      }
      return false;
    }
    case NodeKind::kIn: {
      const auto v = Lookup(n.path, d);
      if (!v) return false;
      for (const Value& x : n.values) {
        if (Order(*v, ToJson(x)) == 0) return true;
      }
      return false;
    }
    case NodeKind::kPrefix: {
      const auto v = Lookup(n.path, d);
      if (!v || !v->is_string()) return false;
      return v->get<std::string>().rfind(n.value.str(), 0) == 0;
    }
    case NodeKind::kContains: {
      const auto v = Lookup(n.path, d);
      if (!v || !v->is_array()) return false;
      const Json lit = ToJson(n.value);
      for (const Json& x : *v) {
        if (Order(x, lit) == 0) return true;
      }
      return false;
    }
  }
  return false;
}

inline Json Project(const std::vector<Path>& fields, const Doc& d) {
  Json out = Json::object();
  if (fields.empty()) {
    out = *d.json;
    out.erase("_id");
  } else {
    for (const Path& p : fields) {
      if (p.segments[0] == "_id") continue;
      // A shorter listed path takes the whole value: skip the longer ones.
      const bool covered = std::any_of(fields.begin(), fields.end(), [&](const Path& q) {
        return q.segments.size() < p.segments.size() &&
               std::equal(q.segments.begin(), q.segments.end(), p.segments.begin());
      });
      if (covered) continue;
      const auto v = Lookup(p, d);
      if (!v) continue;
      Json* cur = &out;
      for (size_t i = 0; i + 1 < p.segments.size(); ++i) {
        Json& next = (*cur)[p.segments[i]];
        if (!next.is_object()) next = Json::object();
        cur = &next;
      }
      (*cur)[p.segments.back()] = *v;
    }
  }
  out["_id"] = d.id;
  return out;
}

struct Result {
  std::string id;
  Json row;
};

// Every matching document, sorted (keys, then _id), limited, projected.
inline std::vector<Result> Run(const Query& q, const std::vector<Doc>& docs) {
  std::vector<const Doc*> hits;
  for (const Doc& d : docs) {
    if (d.json.has_value() && Eval(q.filter, d)) hits.push_back(&d);
  }
  std::sort(hits.begin(), hits.end(), [&](const Doc* a, const Doc* b) {
    for (const SortKey& k : q.sort) {
      const auto x = Lookup(k.path, *a);
      const auto y = Lookup(k.path, *b);
      int c = 0;
      if (!x || !y) {
        c = static_cast<int>(x.has_value()) - static_cast<int>(y.has_value());
      } else {
        c = Order(*x, *y);
      }
      if (c != 0) return k.descending ? c > 0 : c < 0;
    }
    return a->id < b->id;
  });
  if (q.limit && hits.size() > *q.limit) hits.resize(*q.limit);
  std::vector<Result> out;
  for (const Doc* d : hits) out.push_back({d->id, Project(q.fields, *d)});
  return out;
}

}  // namespace cairn::query::oracle
