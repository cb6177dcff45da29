// libFuzzer target for the query parser (and, on what parses, the evaluator,
// projection and index planner). Properties checked on every input:
//  - no crash, no leak, no sanitizer report, bounded time;
//  - a rejected query has an error "at column N: ..." with N within the text
//    (or just past it);
//  - an accepted query's canonical text parses back to the same tree and the
//    same text.
// Built three ways (tests/query/CMakeLists.txt): with libFuzzer and ASan+UBSan
// under Clang, and as a plain corpus replay (fuzz_replay_main.cc) under any
// compiler.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/assert.h"
#include "query/evaluator.h"
#include "query/index_plan.h"
#include "query/parser.h"
#include "query/topk.h"

namespace {

using namespace cairn::query;  // NOLINT(google-build-using-namespace)

void CollectPaths(const Node& n, std::vector<Path>* out) {
  if (!n.path.segments.empty()) out->push_back(n.path);
  for (const Node& c : n.children) CollectPaths(c, out);
}

constexpr std::string_view kDocs[] = {
    R"({"a": 1, "b": {"c": [1, "x", null, {"d": true}]}, "s": "abc", "_id": "own",
        "n": 18446744073709551615, "f": -2.5e10, "e": {}, "l": []})",
    R"({"a": "1", "b": [[]], "tags": ["x", "y"], "first name": {"a.b": 0}})",
    "not json",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  // The same bytes as one JSON value, and as encoded sort keys.
  if (auto v = ParseValue(text); v.ok()) {
    const std::string json = v->ToJson();
    auto back = ParseValue(json, ParseLimits{.max_query_bytes = 64 << 20, .max_depth = 1000});
    CAIRN_CHECK(back.ok() && back->ToJson() == json) << json;
  }
  if (auto keys = DecodeSortKeys(text); keys.ok()) {
    auto again = DecodeSortKeys(EncodeSortKeys(*keys));
    CAIRN_CHECK(again.ok() && again->size() == keys->size());
  }

  auto q = Parse(text);
  if (!q.ok()) {
    const std::string& m = q.status().message();
    CAIRN_CHECK(m.rfind("at column ", 0) == 0) << m;
    const unsigned long column = std::stoul(m.substr(10));
    CAIRN_CHECK(column >= 1 && column <= size + 1) << m;
    return 0;
  }
  // The canonical text parenthesizes every && and || operand, so it may nest
  // deeper and run longer than the input: reparse it with room to spare.
  ParseLimits roomy;
  roomy.max_depth = 1000;
  roomy.max_query_bytes = 64 << 20;
  const std::string canon = q->ToString();
  auto again = Parse(canon, roomy);
  CAIRN_CHECK(again.ok()) << canon << ": " << again.status().ToString();
  CAIRN_CHECK(SameTree(q->filter, again->filter)) << canon;
  CAIRN_CHECK(again->ToString() == canon) << canon << " vs " << again->ToString();

  std::vector<Path> paths;
  CollectPaths(q->filter, &paths);
  (void)PlanIndex(q->filter, paths).ToString();
  static Document* doc = new Document();  // reused across inputs, never freed
  for (const std::string_view d : kDocs) {
    if (doc->Load("id-1", d)) {
      (void)Matches(q->filter, *doc);
      (void)SortKeyOf(q->sort, *doc);
      (void)Project(q->fields, *doc);
    }
  }
  return 0;
}
