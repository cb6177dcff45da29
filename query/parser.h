// The query parser: text -> Query (query/ast.h), grammar in
// docs/query-language.md. Recursive descent over the bytes, bounded in input
// length, nesting depth and list sizes, so any input (the fuzzer's included)
// costs time linear in its length and stack bounded by max_depth. Nothing in
// a query is ever executed.
//
// Errors are InvalidArgument "at column N: expected X, found Y" where N is the
// 1-based byte offset of the mistake; limit violations are TooLarge with the
// column where the limit was crossed. Thread-safe (no shared state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/status.h"
#include "query/ast.h"

namespace cairn::query {

struct ParseLimits {
  size_t max_query_bytes = 64 * 1024;  // the whole text, options included
  uint32_t max_depth = 64;             // nested ( and ! plus nested [ { in literals
  size_t max_in_values = 1000;         // values in one `in` list
  size_t max_path_segments = 32;       // keys in one field path
  size_t max_segment_bytes = 1024;     // bytes in one key of a path
  uint64_t max_limit = 1000000;        // the `limit=` option
  size_t max_sort_keys = 8;            // keys in `sort=`
  size_t max_fields = 64;              // paths in `fields=`
};

Result<Query> Parse(std::string_view text, const ParseLimits& limits = ParseLimits());

// One JSON value (RFC 8259, surrounding whitespace allowed), as the literals
// of a query: integers stay int64/uint64, other numbers are doubles. Bounded
// by limits.max_query_bytes and limits.max_depth; errors as Parse's.
Result<Value> ParseValue(std::string_view text, const ParseLimits& limits = ParseLimits());

}  // namespace cairn::query
