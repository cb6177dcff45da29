// The evaluator's documented semantics, one rule at a time; the order of
// values; projection; top-k and merge.
#include "query/evaluator.h"

#include <gtest/gtest.h>

#include <string>

#include "query/parser.h"
#include "query/topk.h"
#include "query/value.h"

namespace cairn::query {
namespace {

bool Match(std::string_view query, std::string_view json, std::string_view id = "doc-1") {
  auto q = Parse(query);
  EXPECT_TRUE(q.ok()) << query << ": " << q.status().ToString();
  if (!q.ok()) return false;
  Document doc;
  doc.Load(id, json);
  return Matches(q->filter, doc);
}

constexpr std::string_view kOrder = R"({
  "status": "paid", "total": 120, "price": 9.5, "big": 18446744073709551615,
  "customer": {"country": "FR", "name": "Ana", "address": {"city": "Lyon"}},
  "tags": ["a", "b", 3], "empty": [], "none": null, "flag": false,
  "items": [{"sku": "x1", "qty": 2}, {"sku": "y2", "qty": 1}],
  "first name": "Bo", "a.b": 1, "_id": "own", "obj": {"k": 1, "j": [1, 2]}
})";

TEST(QueryEvaluator, DesignExamples) {
  EXPECT_TRUE(Match(R"(status == "paid" && total >= 100)", kOrder));
  EXPECT_FALSE(Match(R"(status == "paid" && total >= 121)", kOrder));
  EXPECT_TRUE(Match(R"(customer.country in ["FR","DE"])", kOrder));
  EXPECT_FALSE(Match(R"(customer.country in ["IT","DE"])", kOrder));
  EXPECT_FALSE(Match("!(tags exists)", kOrder));
  EXPECT_TRUE(Match("!(nope exists)", kOrder));
  EXPECT_TRUE(Match("", kOrder));
  EXPECT_TRUE(Match("?limit=1", kOrder));
}

TEST(QueryEvaluator, Comparisons) {
  EXPECT_TRUE(Match("total == 120", kOrder));
  EXPECT_TRUE(Match("total == 120.0", kOrder));  // numbers by value
  EXPECT_TRUE(Match("total != 121", kOrder));
  EXPECT_TRUE(Match("total < 120.5", kOrder));
  EXPECT_TRUE(Match("total <= 120", kOrder));
  EXPECT_FALSE(Match("total < 120", kOrder));
  EXPECT_TRUE(Match("total > 119.999", kOrder));
  EXPECT_TRUE(Match("price >= 9.5 && price <= 9.5", kOrder));
  EXPECT_TRUE(Match("big == 18446744073709551615", kOrder));
  EXPECT_TRUE(Match("big > 9223372036854775807", kOrder));
  EXPECT_TRUE(Match("big < 18446744073709551616", kOrder));  // a double: 2^64
  EXPECT_TRUE(Match("status > \"p\" && status < \"paie\"", kOrder));
  EXPECT_TRUE(Match("none == null && none <= null && !(none < null)", kOrder));
  EXPECT_TRUE(Match("flag == false && flag < true", kOrder));
  EXPECT_TRUE(Match("customer.address.city == \"Lyon\"", kOrder));
  EXPECT_TRUE(Match("items.1.sku == \"y2\" && items.0.qty == 2", kOrder));
  EXPECT_FALSE(Match("items.2.sku exists", kOrder));
  EXPECT_FALSE(Match("items.01.sku exists", kOrder));  // not a canonical index
  EXPECT_FALSE(Match("items.sku exists", kOrder));     // no implicit array traversal
  EXPECT_TRUE(Match("`first name` == \"Bo\" && `a.b` == 1", kOrder));
  EXPECT_FALSE(Match("a.b exists", kOrder));
}

TEST(QueryEvaluator, AcrossTypes) {
  // Range operators hold only within one type class.
  EXPECT_FALSE(Match("status > 5", kOrder));
  EXPECT_FALSE(Match("total < \"a\"", kOrder));
  EXPECT_FALSE(Match("none < false", kOrder));
  // == is false and != true across types.
  EXPECT_FALSE(Match("total == \"120\"", kOrder));
  EXPECT_TRUE(Match("total != \"120\"", kOrder));
  EXPECT_FALSE(Match("flag == 0", kOrder));
  EXPECT_FALSE(Match("none == false", kOrder));
}

TEST(QueryEvaluator, MissingFields) {
  for (const char* op : {"==", "!=", "<", "<=", ">", ">="}) {
    EXPECT_FALSE(Match(std::string("nope ") + op + " 1", kOrder)) << op;
    EXPECT_FALSE(Match(std::string("customer.zip ") + op + " 1", kOrder)) << op;
    EXPECT_FALSE(Match(std::string("total.x ") + op + " 1", kOrder)) << op;
  }
  EXPECT_FALSE(Match("nope in [null]", kOrder));
  EXPECT_FALSE(Match("nope ^= \"\"", kOrder));
  EXPECT_FALSE(Match("nope contains 1", kOrder));
  EXPECT_TRUE(Match("!(nope == 1)", kOrder));
  EXPECT_TRUE(Match("none exists", kOrder));  // null is present
}

TEST(QueryEvaluator, Arrays) {
  // A comparison takes the array whole...
  EXPECT_FALSE(Match("tags == \"a\"", kOrder));
  EXPECT_TRUE(Match("tags == [\"a\", \"b\", 3]", kOrder));
  EXPECT_TRUE(Match("tags > [\"a\", \"b\"]", kOrder));  // a prefix first
  EXPECT_TRUE(Match("tags < [\"a\", \"c\"]", kOrder));
  EXPECT_TRUE(Match("empty == []", kOrder));
  // ...and `contains` looks at the elements.
  EXPECT_TRUE(Match("tags contains \"a\"", kOrder));
  EXPECT_TRUE(Match("tags contains 3.0", kOrder));
  EXPECT_FALSE(Match("tags contains \"c\"", kOrder));
  EXPECT_FALSE(Match("empty contains null", kOrder));
  EXPECT_FALSE(Match("status contains \"paid\"", kOrder));
  EXPECT_TRUE(Match("items contains {\"qty\": 1, \"sku\": \"y2\"}", kOrder));
  EXPECT_TRUE(Match("tags.0 == \"a\"", kOrder));
}

TEST(QueryEvaluator, Objects) {
  EXPECT_TRUE(Match("obj == {\"j\": [1, 2], \"k\": 1}", kOrder));  // key order does not matter
  EXPECT_TRUE(Match("obj == {\"k\": 1.0, \"j\": [1, 2.0]}", kOrder));
  EXPECT_FALSE(Match("obj == {\"k\": 1}", kOrder));
  EXPECT_TRUE(Match("obj > {\"j\": [1, 1]}", kOrder));
  EXPECT_TRUE(Match("obj in [1, {\"k\": 1, \"j\": [1, 2]}]", kOrder));
}

TEST(QueryEvaluator, PrefixMatch) {
  EXPECT_TRUE(Match("status ^= \"pa\"", kOrder));
  EXPECT_TRUE(Match("status ^= \"\"", kOrder));
  EXPECT_TRUE(Match("status ^= \"paid\"", kOrder));
  EXPECT_FALSE(Match("status ^= \"paidx\"", kOrder));
  EXPECT_FALSE(Match("status ^= \"P\"", kOrder));  // bytes, case-sensitive
  EXPECT_FALSE(Match("total ^= \"1\"", kOrder));   // strings only
  EXPECT_TRUE(Match("s ^= \"\xc3\xa9\"", R"({"s": "\u00e9t\u00e9"})"));
}

TEST(QueryEvaluator, IdField) {
  EXPECT_TRUE(Match("_id == \"doc-1\"", kOrder));  // the store's id, not the document's "own"
  EXPECT_FALSE(Match("_id == \"own\"", kOrder));
  EXPECT_TRUE(Match("_id ^= \"doc\" && _id > \"doc-0\" && _id in [\"x\", \"doc-1\"]", kOrder));
  EXPECT_FALSE(Match("_id > 5", kOrder));
  EXPECT_FALSE(Match("_id.x exists", kOrder));
  EXPECT_TRUE(Match("_id exists", "{}", "k"));
}

TEST(QueryEvaluator, NonJsonNeverMatches) {
  for (const std::string_view body :
       {std::string_view(""), std::string_view("not json"), std::string_view("[1]"),
        std::string_view("42"), std::string_view("\"s\""), std::string_view("{\"a\":1"),
        std::string_view("{\"a\":\"\xff\"}"), std::string_view("\x00\x01", 2)}) {
    EXPECT_FALSE(Match("", body)) << body;
    EXPECT_FALSE(Match("!(a exists)", body)) << body;
    Document doc;
    EXPECT_FALSE(doc.Load("x", body));
  }
  // A Document reused after a bad load matches nothing until a good one.
  Document doc;
  ASSERT_TRUE(doc.Load("a", "{\"v\":1}"));
  ASSERT_FALSE(doc.Load("b", "nope"));
  EXPECT_FALSE(Matches(Parse("")->filter, doc));
  ASSERT_TRUE(doc.Load("c", "{\"v\":2}"));
  EXPECT_TRUE(Matches(Parse("v == 2")->filter, doc));
}

TEST(QueryValueOrder, TypeClassesThenValues) {
  const Value ordered[] = {
      Value::Null(),
      Value::Bool(false),
      Value::Bool(true),
      Value::Double(-1e300),
      Value::Int(INT64_MIN),
      Value::Double(-9223372036854775808.0 + 0.0),  // == INT64_MIN
      Value::Int(-1),
      Value::Double(-0.5),
      Value::Int(0),
      Value::Double(0.5),
      Value::Int(9007199254740992),
      Value::Int(9007199254740993),  // not a double
      Value::Double(9007199254740994.0),
      Value::Int(INT64_MAX),
      Value::Double(9223372036854775808.0),
      Value::Num(Number::Uint(9223372036854775809ull)),
      Value::Num(Number::Uint(UINT64_MAX)),
      Value::Double(18446744073709551616.0),
      Value::Str(""),
      Value::Str("A"),
      Value::Str("a"),
      Value::Str("ab"),
      Value::Str("\x7f"),
      Value::Str("\xc3\xa9"),  // bytes above ASCII sort after it
      Value::Arr({}),
      Value::Arr({Value::Null()}),
      Value::Arr({Value::Int(1)}),
      Value::Arr({Value::Int(1), Value::Int(0)}),
      Value::Arr({Value::Str("")}),
      Value::Obj({}),
      Value::Obj({{"a", Value::Int(2)}}),
      Value::Obj({{"a", Value::Int(2)}, {"b", Value::Null()}}),
      Value::Obj({{"b", Value::Null()}}),
  };
  const size_t n = sizeof(ordered) / sizeof(ordered[0]);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      int want = i < j ? -1 : (i > j ? 1 : 0);
      if ((i == 4 && j == 5) || (i == 5 && j == 4)) want = 0;
      EXPECT_EQ(Compare(ordered[i], ordered[j]), want)
          << ordered[i].ToJson() << " vs " << ordered[j].ToJson();
    }
  }
  EXPECT_EQ(Compare(Value::Int(1), Value::Double(1.0)), 0);
  EXPECT_EQ(Compare(Value::Double(-0.0), Value::Int(0)), 0);
  EXPECT_EQ(Value::Double(1.0).ToJson(), "1.0");
  EXPECT_EQ(Value::Double(0.1).ToJson(), "0.1");
  EXPECT_EQ(Value::Str("a\"\n\x01").ToJson(), "\"a\\\"\\n\\u0001\"");
}

std::string ProjectText(std::string_view fields, std::string_view json, std::string_view id = "k") {
  auto q = Parse(fields.empty() ? "" : "?fields=" + std::string(fields));
  EXPECT_TRUE(q.ok()) << fields;
  Document doc;
  EXPECT_TRUE(doc.Load(id, json));
  return Project(q->fields, doc);
}

TEST(QueryProjection, WholeDocumentWithIdFirst) {
  EXPECT_EQ(ProjectText("", R"({"b": 1, "_id": "own", "a": [1, {"x": null}]})"),
            R"({"_id":"k","b":1,"a":[1,{"x":null}]})");
  EXPECT_EQ(ProjectText("", "{}", "a\"b"), R"({"_id":"a\"b"})");
  // An id is any bytes: what is not UTF-8 becomes U+FFFD, the output stays JSON.
  EXPECT_EQ(ProjectText("", "{}", "\xff\xc3\xa9\xc3"), "{\"_id\":\"\\ufffd\xc3\xa9\\ufffd\"}");
  EXPECT_TRUE(Match("_id == \"\u00e9\"", "{}", "\xc3\xa9"));
}

// Without an "_id" of its own, the whole document is its own text minified:
// whitespace outside strings goes, strings (escapes, spaces, braces inside)
// and the spelling of numbers stay; the result parses to the same values.
TEST(QueryProjection, WholeDocumentFromItsText) {
  EXPECT_EQ(ProjectText("",
                        "{ \"a\" : 1.50 ,\n\t\"s\": \"x { y } \\\" \\u00e9\",\r\n \"e\": 1e2,"
                        " \"n\": {\"m\": [ ] } }\n"),
            R"({"_id":"k","a":1.50,"s":"x { y } \" \u00e9","e":1e2,"n":{"m":[]}})");
  EXPECT_EQ(ProjectText("", " {  } "), R"({"_id":"k"})");
  // Duplicate keys stay as written (the parsed way wrote them both too).
  EXPECT_EQ(ProjectText("", R"({"a":1,"a":2})"), R"({"_id":"k","a":1,"a":2})");
  // With an "_id" of its own the parsed values are written out without it.
  EXPECT_EQ(ProjectText("", R"({"_id": 7, "a": 1.50})"), R"({"_id":"k","a":1.5})");
}

TEST(QueryProjection, Fields) {
  const std::string_view doc =
      R"({"total": 5, "customer": {"name": "Ana", "country": "FR", "zip": {}}, "items": [{"sku": 1}, 2], "s": "x"})";
  EXPECT_EQ(ProjectText("total,customer.name", doc),
            R"({"_id":"k","total":5,"customer":{"name":"Ana"}})");
  EXPECT_EQ(ProjectText("customer.name,total,customer.country", doc),
            R"({"_id":"k","customer":{"name":"Ana","country":"FR"},"total":5})");
  // A shorter path takes the whole value, in whichever order.
  EXPECT_EQ(ProjectText("customer.name,customer", doc),
            R"({"_id":"k","customer":{"name":"Ana","country":"FR","zip":{}}})");
  EXPECT_EQ(ProjectText("customer,customer.name", doc), ProjectText("customer", doc));
  // Missing paths, and parents left empty, are left out; an empty value stays.
  EXPECT_EQ(ProjectText("nope,customer.nope,s.x,total.y", doc), R"({"_id":"k"})");
  EXPECT_EQ(ProjectText("customer.zip", doc), R"({"_id":"k","customer":{"zip":{}}})");
  // Array elements by index, nested under their index as a key.
  EXPECT_EQ(ProjectText("items.0.sku,items.1", doc),
            R"({"_id":"k","items":{"0":{"sku":1},"1":2}})");
  // "_id" is always the store's and always first.
  EXPECT_EQ(ProjectText("_id,s", R"({"_id": "own", "s": 1})"), R"({"_id":"k","s":1})");
}

TEST(QuerySortKey, ValuesAndMissing) {
  auto q = Parse("?sort=a,-b.c,_id,nope");
  ASSERT_TRUE(q.ok());
  Document doc;
  ASSERT_TRUE(doc.Load("id7", R"({"a": [1, "x"], "b": {"c": 2.5}})"));
  const auto keys = SortKeyOf(q->sort, doc);
  ASSERT_EQ(keys.size(), 4u);
  EXPECT_EQ(keys[0]->ToJson(), "[1,\"x\"]");
  EXPECT_EQ(keys[1]->ToJson(), "2.5");
  EXPECT_EQ(keys[2]->ToJson(), "\"id7\"");
  EXPECT_FALSE(keys[3].has_value());
}

Row R(std::string id, std::vector<std::optional<Value>> keys) {
  return Row{std::move(id), std::move(keys), ""};
}

std::vector<std::string> Ids(const std::vector<Row>& rows) {
  std::vector<std::string> out;
  for (const Row& r : rows) out.push_back(r.id);
  return out;
}

TEST(QueryTopK, OrderMissingFirstDescendingAndIdTieBreak) {
  auto q = Parse("?sort=-a");
  ASSERT_TRUE(q.ok());
  const RowOrder order(q->sort);
  TopK all(order, std::nullopt);
  all.Offer(R("b", {Value::Int(1)}));
  all.Offer(R("a", {Value::Int(1)}));
  all.Offer(R("m", {std::nullopt}));
  all.Offer(R("s", {Value::Str("x")}));
  all.Offer(R("n", {Value::Null()}));
  all.Offer(R("d", {Value::Double(1.5)}));
  // Descending: strings > numbers > null > missing; equal keys by id ascending.
  EXPECT_EQ(Ids(all.Take()), (std::vector<std::string>{"s", "d", "a", "b", "n", "m"}));

  TopK top(RowOrder(Parse("?sort=a")->sort), 2);
  for (int i = 9; i >= 0; --i) {
    Row r = R("id" + std::to_string(i), {Value::Int(i % 5)});
    if (top.Admits(r)) top.Offer(std::move(r));
    EXPECT_LE(top.size(), 2u);
  }
  EXPECT_FALSE(top.Admits(R("id9", {Value::Int(1)})));
  EXPECT_FALSE(top.Admits(R("id5", {Value::Int(0)})));  // equal to the worst kept
  EXPECT_TRUE(top.Admits(R("a", {Value::Int(0)})));
  EXPECT_EQ(Ids(top.Take()), (std::vector<std::string>{"id0", "id5"}));
  EXPECT_EQ(top.size(), 0u);

  // The bytes held follow what is kept.
  TopK sized(RowOrder(), 2);
  sized.Offer(Row{"c", {}, "ccc"});
  sized.Offer(Row{"b", {}, "bb"});
  EXPECT_EQ(sized.json_bytes(), 5u);
  sized.Offer(Row{"a", {}, "a"});  // evicts "c"
  EXPECT_EQ(sized.json_bytes(), 3u);
  EXPECT_EQ(Ids(sized.Take()), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(sized.json_bytes(), 0u);
}

TEST(QueryTopK, MergeRunsWithLimit) {
  const RowOrder order;  // by id only
  std::vector<std::vector<Row>> runs = {
      {R("a", {}), R("d", {}), R("g", {})}, {}, {R("b", {}), R("c", {}), R("h", {})}, {R("e", {})}};
  EXPECT_EQ(Ids(MergeSorted(runs, order, std::nullopt)),
            (std::vector<std::string>{"a", "b", "c", "d", "e", "g", "h"}));
  EXPECT_EQ(Ids(MergeSorted(runs, order, 3)), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(MergeSorted({}, order, 3).empty());
}

}  // namespace
}  // namespace cairn::query

namespace cairn::query {
namespace {

TEST(QuerySortKeyCodec, RoundTripKeepsOrderAndRepresentation) {
  const std::vector<std::optional<Value>> keys = {
      std::nullopt,
      Value::Null(),
      Value::Int(-3),
      Value::Double(-0.0),
      Value::Double(0.1),
      Value::Double(2.0),
      Value::Num(Number::Uint(UINT64_MAX)),
      Value::Str("a\"\\\n\xc3\xa9"),
      Value::Arr({Value::Bool(true), Value::Arr({})}),
      Value::Obj({{"b", Value::Int(1)}, {"a", Value::Null()}}),
  };
  const std::string text = EncodeSortKeys(keys);
  EXPECT_EQ(text.substr(0, 24), "[[],[null],[-3],[-0.0],[");
  auto back = DecodeSortKeys(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ(back.value()[i].has_value(), keys[i].has_value()) << i;
    if (!keys[i].has_value()) continue;
    EXPECT_EQ(Compare(*back.value()[i], *keys[i]), 0) << i;
    EXPECT_EQ(back.value()[i]->ToJson(), keys[i]->ToJson()) << i;
  }
  EXPECT_EQ(EncodeSortKeys({}), "[]");
  EXPECT_TRUE(DecodeSortKeys("[]")->empty());
  // Deeper than a query may nest: keys come from documents.
  const std::string deep = "[[" + std::string(500, '[') + std::string(500, ']') + "]]";
  EXPECT_TRUE(DecodeSortKeys(deep).ok());
}

TEST(QuerySortKeyCodec, RejectsMalformed) {
  for (const char* bad : {"", "[", "{}", "[1]", "[[1,2]]", "[[]] x", "[[nul]]"}) {
    auto r = DecodeSortKeys(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace cairn::query
