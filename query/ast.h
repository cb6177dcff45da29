// The parsed form of a query (docs/query-language.md): a filter tree and the
// options after `?`. Produced by Parse (query/parser.h); plain data, copyable,
// thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "query/value.h"

namespace cairn::query {

// A field path: the keys from the document's root. A segment made of decimal
// digits also indexes an array ("items.0.sku").
struct Path {
  std::vector<std::string> segments;

  bool operator==(const Path&) const = default;
  // Dotted text; a segment that is not a plain name is quoted with backticks.
  std::string ToString() const;
};

enum class CompareOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };
std::string_view CompareOpText(CompareOp op);

enum class NodeKind : uint8_t {
  kTrue,      // the empty filter: matches every JSON document
  kAnd,       // children, >= 2
  kOr,        // children, >= 2
  kNot,       // children[0]
  kCompare,   // path op value
  kIn,        // path in [values]
  kExists,    // path exists
  kPrefix,    // path ^= "string"
  kContains,  // path contains value (an array element equals value)
};

struct Node {
  NodeKind kind = NodeKind::kTrue;
  CompareOp op = CompareOp::kEq;  // kCompare
  Path path;                      // the leaf kinds
  Value value;                    // kCompare, kPrefix (a string), kContains
  std::vector<Value> values;      // kIn
  std::vector<Node> children;     // kAnd, kOr, kNot
  uint32_t column = 0;            // 1-based column where the node starts

  // Canonical text: parses back to an equal tree (columns aside).
  std::string ToString() const;
};

// Structural equality, ignoring columns (tests, the fuzzer's round trip).
bool SameTree(const Node& a, const Node& b);

struct SortKey {
  Path path;
  bool descending = false;
  bool operator==(const SortKey&) const = default;
};

struct Query {
  Node filter;
  std::optional<uint64_t> limit;  // absent: no limit (bounded by the result-size limit)
  std::vector<SortKey> sort;      // empty: by _id only
  std::vector<Path> fields;       // empty: the whole document

  // Canonical text, options included: "filter?limit=..&sort=..&fields=..".
  std::string ToString() const;
};

// The path that names a document's id ("_id"): it resolves to the id the
// store holds, never to a key of the document's own.
inline constexpr std::string_view kIdField = "_id";

}  // namespace cairn::query
