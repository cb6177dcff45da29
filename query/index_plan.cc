#include "query/index_plan.h"

#include <algorithm>
#include <limits>

namespace cairn::query {

bool IndexRange::Contains(const Value& key) const {
  if (key.type() != type) return false;
  if (lower.has_value()) {
    const int c = Compare(key, *lower);
    if (c < 0 || (c == 0 && !lower_inclusive)) return false;
  }
  if (upper.has_value()) {
    const int c = Compare(key, *upper);
    if (c > 0 || (c == 0 && !upper_inclusive)) return false;
  }
  return true;
}

bool IndexLookup::Contains(const Value& key) const {
  if (kind == Kind::kRange) return range.Contains(key);
  return std::binary_search(points.begin(), points.end(), key,
                            [](const Value& a, const Value& b) { return Compare(a, b) < 0; });
}

std::string IndexLookup::ToString() const {
  std::string out = path.ToString();
  if (kind == Kind::kPoints) {
    out += " in [";
    for (size_t i = 0; i < points.size(); ++i) {
      if (i > 0) out += ",";
      out += points[i].ToJson();
    }
    return out + "]";
  }
  out += " ";
  out += TypeClassName(range.type);
  out += range.lower_inclusive ? " [" : " (";
  out += range.lower.has_value() ? range.lower->ToJson() : "-inf";
  out += ", ";
  out += range.upper.has_value() ? range.upper->ToJson() : "+inf";
  out += range.upper_inclusive ? "]" : ")";
  return out;
}

std::string IndexPlan::ToString() const {
  switch (kind) {
    case Kind::kFullScan:
      return "full scan";
    case Kind::kEmpty:
      return "empty";
    case Kind::kLookups:
      break;
  }
  std::string out;
  for (size_t i = 0; i < lookups.size(); ++i) {
    if (i > 0) out += " | ";
    out += lookups[i].ToString();
  }
  return out;
}

namespace {

IndexPlan FullScan() { return IndexPlan{}; }
IndexPlan Empty() { return IndexPlan{IndexPlan::Kind::kEmpty, {}}; }
IndexPlan One(IndexLookup l) { return IndexPlan{IndexPlan::Kind::kLookups, {std::move(l)}}; }

bool ValueLess(const Value& a, const Value& b) { return Compare(a, b) < 0; }

IndexPlan Points(const Path& path, std::vector<Value> points) {
  std::sort(points.begin(), points.end(), ValueLess);
  points.erase(std::unique(points.begin(), points.end()), points.end());
  if (points.empty()) return Empty();
  IndexLookup l;
  l.path = path;
  l.kind = IndexLookup::Kind::kPoints;
  l.points = std::move(points);
  return One(std::move(l));
}

IndexPlan Range(const Path& path, IndexRange r) {
  IndexLookup l;
  l.path = path;
  l.kind = IndexLookup::Kind::kRange;
  l.range = std::move(r);
  return One(std::move(l));
}

// The smallest string above every string that starts with `p`, if any.
std::optional<std::string> PrefixSuccessor(std::string p) {
  while (!p.empty() && static_cast<unsigned char>(p.back()) == 0xFF) p.pop_back();
  if (p.empty()) return std::nullopt;
  p.back() = static_cast<char>(static_cast<unsigned char>(p.back()) + 1);
  return p;
}

IndexPlan PlanLeaf(const Node& n) {
  switch (n.kind) {
    case NodeKind::kIn:
      return Points(n.path, n.values);
    case NodeKind::kPrefix: {
      IndexRange r;
      r.type = TypeClass::kString;
      r.lower = n.value;
      if (auto succ = PrefixSuccessor(n.value.str())) {
        r.upper = Value::Str(std::move(*succ));
        r.upper_inclusive = false;
      }
      return Range(n.path, std::move(r));
    }
    case NodeKind::kCompare: {
      if (n.op == CompareOp::kEq) return Points(n.path, {n.value});
      if (n.op == CompareOp::kNe) return FullScan();
      IndexRange r;
      r.type = n.value.type();
      if (n.op == CompareOp::kLt || n.op == CompareOp::kLe) {
        r.upper = n.value;
        r.upper_inclusive = n.op == CompareOp::kLe;
      } else {
        r.lower = n.value;
        r.lower_inclusive = n.op == CompareOp::kGe;
      }
      return Range(n.path, std::move(r));
    }
    default:
      return FullScan();
  }
}

// Lower is better: how much of the index a plan is expected to read.
uint64_t Cost(const IndexPlan& p) {
  switch (p.kind) {
    case IndexPlan::Kind::kEmpty:
      return 0;
    case IndexPlan::Kind::kFullScan:
      return std::numeric_limits<uint64_t>::max();
    case IndexPlan::Kind::kLookups:
      break;
  }
  uint64_t cost = 0;
  for (const IndexLookup& l : p.lookups) {
    if (l.kind == IndexLookup::Kind::kPoints) {
      cost += l.points.size();
    } else {
      cost += l.range.lower.has_value() && l.range.upper.has_value() ? 1000u : 100000u;
    }
  }
  return cost;
}

// Both lookups on one path: what satisfies both.
IndexPlan Intersect(const IndexLookup& a, const IndexLookup& b) {
  using K = IndexLookup::Kind;
  if (a.kind == K::kPoints || b.kind == K::kPoints) {
    const IndexLookup& pts = a.kind == K::kPoints ? a : b;
    const IndexLookup& other = a.kind == K::kPoints ? b : a;
    std::vector<Value> kept;
    for (const Value& v : pts.points) {
      if (other.Contains(v)) kept.push_back(v);
    }
    return Points(a.path, std::move(kept));
  }
  if (a.range.type != b.range.type) return Empty();
  IndexRange r = a.range;
  if (b.range.lower.has_value()) {
    const int c = r.lower.has_value() ? Compare(*b.range.lower, *r.lower) : 1;
    if (c > 0 || (c == 0 && !b.range.lower_inclusive)) {
      r.lower = b.range.lower;
      r.lower_inclusive = b.range.lower_inclusive;
    }
  }
  if (b.range.upper.has_value()) {
    const int c = r.upper.has_value() ? Compare(*b.range.upper, *r.upper) : -1;
    if (c < 0 || (c == 0 && !b.range.upper_inclusive)) {
      r.upper = b.range.upper;
      r.upper_inclusive = b.range.upper_inclusive;
    }
  }
  if (r.lower.has_value() && r.upper.has_value()) {
    const int c = Compare(*r.lower, *r.upper);
    if (c > 0 || (c == 0 && !(r.lower_inclusive && r.upper_inclusive))) return Empty();
  }
  return Range(a.path, std::move(r));
}

bool Indexed(const Path& p, const std::vector<Path>& indexed) {
  return std::find(indexed.begin(), indexed.end(), p) != indexed.end();
}

IndexPlan Plan(const Node& n, const std::vector<Path>& indexed) {
  switch (n.kind) {
    case NodeKind::kAnd: {
      // Single lookups, intersected per path; unions from `||` kept whole.
      std::vector<IndexPlan> plans;
      for (const Node& c : n.children) {
        IndexPlan p = Plan(c, indexed);
        if (p.kind == IndexPlan::Kind::kEmpty) return p;
        if (p.kind == IndexPlan::Kind::kFullScan) continue;
        if (p.lookups.size() == 1) {
          bool merged = false;
          for (IndexPlan& q : plans) {
            if (q.lookups.size() == 1 && q.lookups[0].path == p.lookups[0].path) {
              q = Intersect(q.lookups[0], p.lookups[0]);
              if (q.kind == IndexPlan::Kind::kEmpty) return q;
              merged = true;
              break;
            }
          }
          if (merged) continue;
        }
        plans.push_back(std::move(p));
      }
      IndexPlan best = FullScan();
      for (IndexPlan& p : plans) {
        if (Cost(p) < Cost(best)) best = std::move(p);
      }
      return best;
    }
    case NodeKind::kOr: {
      IndexPlan out{IndexPlan::Kind::kLookups, {}};
      for (const Node& c : n.children) {
        IndexPlan p = Plan(c, indexed);
        if (p.kind == IndexPlan::Kind::kFullScan) return p;
        for (IndexLookup& l : p.lookups) out.lookups.push_back(std::move(l));
      }
      if (out.lookups.empty()) return Empty();
      return out;
    }
    case NodeKind::kCompare:
    case NodeKind::kIn:
    case NodeKind::kPrefix:
      return Indexed(n.path, indexed) ? PlanLeaf(n) : FullScan();
    default:
      return FullScan();
  }
}

}  // namespace

IndexPlan PlanIndex(const Node& filter, const std::vector<Path>& indexed) {
  return Plan(filter, indexed);
}

}  // namespace cairn::query
