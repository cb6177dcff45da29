// Which secondary index can drive a query: from a filter and the collection's
// indexed field paths, the index lookups whose union holds every matching
// document (a superset: the full filter still runs on each candidate).
// Pure logic, no I/O; a chunk server (phase 2) walks its index per lookup.
//
// The index this plans for maps, per indexed path, the whole value at that
// path (as query/value.h orders it; arrays are one key, not one per element)
// to the documents holding it; documents where the path is missing are not
// in it. See docs/query-language.md, "Indexes".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "query/ast.h"
#include "query/value.h"

namespace cairn::query {

// The keys of one type class between two optional bounds.
struct IndexRange {
  TypeClass type = TypeClass::kNull;
  std::optional<Value> lower;  // absent: from the class's first value
  bool lower_inclusive = true;
  std::optional<Value> upper;  // absent: to the class's last value
  bool upper_inclusive = true;

  bool Contains(const Value& key) const;
};

struct IndexLookup {
  enum class Kind : uint8_t { kPoints, kRange };
  Path path;
  Kind kind = Kind::kPoints;
  std::vector<Value> points;  // kPoints: sorted, without duplicates, not empty
  IndexRange range;           // kRange

  // Whether an index entry with this key is a candidate.
  bool Contains(const Value& key) const;
  std::string ToString() const;
};

struct IndexPlan {
  enum class Kind : uint8_t {
    kFullScan,  // no index fits: scan every document
    kEmpty,     // no document can match (e.g. `a in []`, `a > 5 && a < 1`)
    kLookups,   // candidates: the union of what the lookups find
  };
  Kind kind = Kind::kFullScan;
  std::vector<IndexLookup> lookups;

  std::string ToString() const;
};

// Conjunctions use the most selective fitting lookup (equality, then `in`,
// then a two-sided range, then a one-sided one, ranges and points on one path
// intersected); a disjunction fits when every branch does (a union). `!`,
// `!=`, `exists` and `contains` never use an index.
IndexPlan PlanIndex(const Node& filter, const std::vector<Path>& indexed);

}  // namespace cairn::query
