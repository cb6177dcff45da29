// RawPrefilter: a test on a document's raw JSON bytes, before it is parsed,
// that rules out documents a filter cannot match. A scan (the chunk server's
// query executor) parses only the documents that pass it.
//
// Sound by construction: MayMatch is false only when Matches(filter, doc)
// is false for every document with these bytes. It uses the string
// equalities (and `in` lists of strings) that every match needs: those of
// the filter's top-level conjunction, on paths other than _id (whose value
// is the store's id, not in the body). A document whose bytes hold no
// backslash writes every string literally, so a string value equal to "ab"
// appears in it as the bytes "ab" between quotes; when none of a required
// predicate's strings appears so, the document cannot match. Documents with
// a backslash anywhere (escapes) always pass, as do literals that would need
// escaping themselves (quotes, backslashes, control characters).
//
// Immutable after construction; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "query/ast.h"

namespace cairn::query {

class RawPrefilter {
 public:
  explicit RawPrefilter(const Node& filter);

  // False only if no document with exactly these bytes matches the filter.
  bool MayMatch(std::string_view json) const;
  // True when the filter gives nothing to test (MayMatch is always true).
  bool empty() const { return required_.empty(); }

 private:
  void Collect(const Node& n);

  // Each entry: quoted literals ("\"ab\""), at least one of which every
  // matching document holds.
  std::vector<std::vector<std::string>> required_;
};

}  // namespace cairn::query
