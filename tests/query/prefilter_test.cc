// RawPrefilter (query/prefilter.h): never rules out a document the filter
// matches (random documents, some written with escapes, and random
// queries), and does rule out documents in the plain cases it is for.
#include "query/prefilter.h"

#include <gtest/gtest.h>

#include <string>

#include "query/evaluator.h"
#include "query/parser.h"
#include "tests/common/test_seeds.h"
#include "tests/query/generators.h"

namespace cairn::query {
namespace {

// The same JSON with every 'b' written as an escape (a 'b' is only ever
// inside a string or a key in the generated documents).
std::string EscapeBs(const std::string& json) {
  std::string out;
  for (const char c : json) {
    if (c == 'b') {
      out += "\\u0062";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

TEST(RawPrefilter, NeverRulesOutAMatch) {
  int ruled_out = 0, tested = 0;
  for (const uint64_t seed : test::Seeds(8, 911)) {
    testgen::Gen g(seed);
    std::vector<std::string> docs;
    for (int i = 0; i < 150; ++i) {
      std::string d = g.DocText(i);
      if (g.OneIn(4)) d = EscapeBs(d);
      docs.push_back(std::move(d));
    }
    Document doc;
    for (int k = 0; k < 150; ++k) {
      const std::string text = g.QueryText();
      Result<Query> q = Parse(text);
      ASSERT_TRUE(q.ok()) << text;
      const RawPrefilter pre(q->filter);
      for (size_t i = 0; i < docs.size(); ++i) {
        const bool may = pre.MayMatch(docs[i]);
        const bool matches =
            doc.Load("id-" + std::to_string(i), docs[i]) && Matches(q->filter, doc);
        ASSERT_TRUE(may || !matches)
            << test::SeedTrace(seed) << " query " << text << " doc " << docs[i];
        ++tested;
        ruled_out += may ? 0 : 1;
      }
    }
  }
  EXPECT_GT(ruled_out, tested / 50) << ruled_out << " of " << tested;
}

TEST(RawPrefilter, Cases) {
  auto may = [](const char* filter, const char* json) {
    Result<Query> q = Parse(filter);
    EXPECT_TRUE(q.ok()) << filter;
    return RawPrefilter(q->filter).MayMatch(json);
  };
  EXPECT_FALSE(may(R"(s == "paid")", R"({"s":"open"})"));
  EXPECT_TRUE(may(R"(s == "paid")", R"({"s":"paid"})"));
  EXPECT_TRUE(may(R"(s == "paid")", R"({"s":"p\u0061id"})"));  // escapes: always parsed
  EXPECT_FALSE(may(R"(s == "paid" && c == "FR")", R"({"s":"paid","c":"DE"})"));
  EXPECT_TRUE(may(R"(s == "paid" || c == "FR")", R"({"s":"x","c":"DE"})"));  // no conjunction
  EXPECT_FALSE(may(R"(s in ["a", "b"])", R"({"s":"c"})"));
  EXPECT_TRUE(may(R"(s in ["a", "b"])", R"({"s":"b"})"));
  EXPECT_TRUE(may(R"(s in ["a", 1])", R"({"s":1})"));  // a non-string: no test
  EXPECT_TRUE(may(R"(_id == "x")", R"({"s":1})"));     // the id is not in the body
  EXPECT_TRUE(may(R"(s == "a\"b")", R"({"s":1})"));    // would need an escape: no test
  EXPECT_TRUE(may(R"(s != "paid")", R"({"s":"open"})"));
  EXPECT_TRUE(RawPrefilter(Parse("n > 1")->filter).empty());
}

}  // namespace
}  // namespace cairn::query
