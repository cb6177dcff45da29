// The query parser: every construct, every error with its column, the limits.
#include "query/parser.h"

#include <gtest/gtest.h>

#include <string>

namespace cairn::query {
namespace {

Query MustParse(std::string_view text) {
  auto q = Parse(text);
  EXPECT_TRUE(q.ok()) << text << ": " << q.status().ToString();
  if (!q.ok()) return Query{};
  return std::move(q).value();
}

// The canonical text of a filter (every operand of && and || parenthesized).
std::string Canon(std::string_view text) { return MustParse(text).ToString(); }

std::string ErrorOf(std::string_view text, const ParseLimits& limits = ParseLimits()) {
  auto q = Parse(text, limits);
  EXPECT_FALSE(q.ok()) << text << " parsed as " << (q.ok() ? q->ToString() : "");
  return q.ok() ? "" : q.status().message();
}

TEST(QueryParser, Comparisons) {
  for (const char* op : {"==", "!=", "<", "<=", ">", ">="}) {
    const Query q = MustParse(std::string("total ") + op + " 100");
    EXPECT_EQ(q.filter.kind, NodeKind::kCompare);
    EXPECT_EQ(CompareOpText(q.filter.op), op);
    EXPECT_EQ(q.filter.path.segments, std::vector<std::string>{"total"});
    EXPECT_EQ(q.filter.value.ToJson(), "100");
  }
  EXPECT_EQ(Canon("a==1"), "a == 1");
  EXPECT_EQ(Canon("  a\t<=\n-2.5e3  "), "a <= -2500.0");
}

TEST(QueryParser, DesignExamples) {
  EXPECT_EQ(Canon(R"(status == "paid" && total >= 100)"),
            R"((status == "paid") && (total >= 100))");
  const Query in = MustParse(R"(customer.country in ["FR","DE"])");
  EXPECT_EQ(in.filter.kind, NodeKind::kIn);
  EXPECT_EQ(in.filter.path.segments, (std::vector<std::string>{"customer", "country"}));
  ASSERT_EQ(in.filter.values.size(), 2u);
  EXPECT_EQ(in.filter.values[1].str(), "DE");
  const Query ex = MustParse("!(tags exists)");
  EXPECT_EQ(ex.filter.kind, NodeKind::kNot);
  EXPECT_EQ(ex.filter.children[0].kind, NodeKind::kExists);
  const Query opt = MustParse("?limit=20&sort=-total,name&fields=total,customer.name");
  EXPECT_EQ(opt.filter.kind, NodeKind::kTrue);
  EXPECT_EQ(opt.limit, 20u);
  ASSERT_EQ(opt.sort.size(), 2u);
  EXPECT_TRUE(opt.sort[0].descending);
  EXPECT_FALSE(opt.sort[1].descending);
  EXPECT_EQ(opt.sort[1].path.ToString(), "name");
  ASSERT_EQ(opt.fields.size(), 2u);
  EXPECT_EQ(opt.fields[1].ToString(), "customer.name");
}

TEST(QueryParser, OtherPredicates) {
  const Query p = MustParse(R"(name ^= "ab")");
  EXPECT_EQ(p.filter.kind, NodeKind::kPrefix);
  EXPECT_EQ(p.filter.value.str(), "ab");
  const Query c = MustParse(R"(tags contains "x")");
  EXPECT_EQ(c.filter.kind, NodeKind::kContains);
  EXPECT_EQ(Canon("a in []"), "a in []");
  EXPECT_EQ(Canon("a exists"), "a exists");
}

TEST(QueryParser, PrecedenceAndGrouping) {
  // && binds tighter than ||; chains stay flat.
  const Query q = MustParse("a == 1 || b == 2 && c == 3 || d == 4");
  ASSERT_EQ(q.filter.kind, NodeKind::kOr);
  ASSERT_EQ(q.filter.children.size(), 3u);
  EXPECT_EQ(q.filter.children[1].kind, NodeKind::kAnd);
  EXPECT_EQ(Canon("(a == 1 || b == 2) && !c exists"), "((a == 1) || (b == 2)) && (!(c exists))");
  EXPECT_EQ(Canon("!!a exists"), "!(!(a exists))");
  EXPECT_EQ(Canon("((a == 1))"), "a == 1");
  EXPECT_EQ(Canon("a==1&&b==2&&c==3"), "(a == 1) && (b == 2) && (c == 3)");
}

TEST(QueryParser, Literals) {
  EXPECT_EQ(Canon("a == null"), "a == null");
  EXPECT_EQ(Canon("a == true"), "a == true");
  EXPECT_EQ(Canon("a == false"), "a == false");
  EXPECT_EQ(Canon("a == 0"), "a == 0");
  EXPECT_EQ(Canon("a == -0"), "a == 0");
  EXPECT_EQ(Canon("a == 1.0"), "a == 1.0");
  EXPECT_EQ(Canon("a == 1E2"), "a == 100.0");
  EXPECT_EQ(Canon("a == 9223372036854775807"), "a == 9223372036854775807");
  EXPECT_EQ(Canon("a == -9223372036854775808"), "a == -9223372036854775808");
  EXPECT_EQ(Canon("a == 18446744073709551615"), "a == 18446744073709551615");
  EXPECT_EQ(MustParse("a == 18446744073709551616").filter.value.number().kind,
            Number::Kind::kDouble);
  EXPECT_EQ(Canon(R"(a == "x\"\\\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00")"),
            "a == \"x\\\"\\\\/\\b\\f\\n\\r\\tA\xc3\xa9\xf0\x9f\x98\x80\"");
  EXPECT_EQ(Canon("a == \"\xc3\xa9\""), "a == \"\xc3\xa9\"");
  EXPECT_EQ(Canon(R"(a == [1, "b", [null], {}])"), R"(a == [1,"b",[null],{}])");
  // Objects are kept sorted by key; a repeated key keeps its first value.
  EXPECT_EQ(Canon(R"(a == {"z": 1, "b": {"y": 2, "x": 3}, "z": 9})"),
            R"(a == {"b":{"x":3,"y":2},"z":1})");
}

TEST(QueryParser, Paths) {
  EXPECT_EQ(MustParse("a.b.c exists").filter.path.segments,
            (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(MustParse("items.0.sku exists").filter.path.segments,
            (std::vector<std::string>{"items", "0", "sku"}));
  EXPECT_EQ(MustParse("`first name`.`a.b`.`x``y` exists").filter.path.segments,
            (std::vector<std::string>{"first name", "a.b", "x`y"}));
  EXPECT_EQ(MustParse("`` exists").filter.path.segments, (std::vector<std::string>{""}));
  EXPECT_EQ(Canon("`first name`.`a.b`.`x``y`.`` exists"), "`first name`.`a.b`.`x``y`.`` exists");
  EXPECT_EQ(Canon("_id == \"k\""), "_id == \"k\"");
  EXPECT_EQ(Canon("$x.y_1 exists"), "$x.y_1 exists");
  // Keywords are only keywords where an operator or a literal goes.
  EXPECT_EQ(MustParse("in in [1]").filter.path.segments, std::vector<std::string>{"in"});
  EXPECT_EQ(MustParse("exists exists").filter.kind, NodeKind::kExists);
  EXPECT_EQ(MustParse("true == true").filter.path.segments, std::vector<std::string>{"true"});
}

TEST(QueryParser, Options) {
  EXPECT_EQ(MustParse("a exists ?limit=1").limit, 1u);
  EXPECT_EQ(MustParse("a exists?limit=1000000").limit, 1000000u);
  const Query q = MustParse("a exists ? sort = +a , -`b c`.d & fields = x , y.z & limit = 5");
  ASSERT_EQ(q.sort.size(), 2u);
  EXPECT_FALSE(q.sort[0].descending);
  EXPECT_TRUE(q.sort[1].descending);
  EXPECT_EQ(q.sort[1].path.segments, (std::vector<std::string>{"b c", "d"}));
  EXPECT_EQ(q.ToString(), "a exists?limit=5&sort=a,-`b c`.d&fields=x,y.z");
  EXPECT_EQ(MustParse("").filter.kind, NodeKind::kTrue);
  EXPECT_EQ(MustParse("   ").ToString(), "");
  EXPECT_EQ(MustParse("a == \"?\"").filter.value.str(), "?");
}

TEST(QueryParser, ColumnsOfNodes) {
  const Query q = MustParse("a == 1 && (b == 2 || !c exists)");
  EXPECT_EQ(q.filter.column, 1u);
  EXPECT_EQ(q.filter.children[1].column, 12u);
  EXPECT_EQ(q.filter.children[1].children[1].column, 22u);
}

TEST(QueryParser, ErrorsPointAtTheMistake) {
  const struct {
    const char* text;
    const char* message;
  } cases[] = {
      {"a ==", "at column 5: expected a JSON value, found the end of the query"},
      {"a = 1",
       "at column 3: expected an operator (==, !=, <, <=, >, >=, ^=, in, exists, "
       "contains), found '='"},
      {"a",
       "at column 2: expected an operator (==, !=, <, <=, >, >=, ^=, in, exists, "
       "contains), found the end of the query"},
      {"== 1", "at column 1: expected a field path, '(' or '!', found '='"},
      {"a == 1 &&", "at column 10: expected a field path, '(' or '!', found the end of the query"},
      {"a == 1 && || b", "at column 11: expected a field path, '(' or '!', found '|'"},
      {"a == 1 b == 2", "at column 8: expected '&&', '||', '?' or the end of the query, found 'b'"},
      {"a == 1 & b == 2",
       "at column 8: expected '&&', '||', '?' or the end of the query, found '&'"},
      {"(a == 1",
       "at column 8: expected ')' or an operator ('&&', '||'), found the end of the query"},
      {"a == 1)", "at column 7: expected '&&', '||', '?' or the end of the query, found ')'"},
      {"a == abc", "at column 6: expected a JSON value, found 'abc'"},
      {"a == 'x'", "at column 6: expected a JSON value, found '''"},
      {"a == \"abc", "at column 6: unterminated string"},
      {"a == \"a\\qb\"",
       "at column 9: expected an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX), "
       "found 'qb'"},
      {"a == \"\\u12G4\"", "at column 11: expected a hexadecimal digit, found 'G4'"},
      {"a == \"\\udc00\"", "at column 7: lone low surrogate"},
      {"a == \"\\ud800\"", "at column 7: high surrogate without its low half"},
      {"a == \"\\ud800\\u0041\"", "at column 13: expected a low surrogate"},
      {"a == \"x\ty\"", "at column 8: control character in a string (escape it)"},
      {"a == \"\xc3(\"", "at column 7: invalid UTF-8 in a string"},
      {"a == \"\xed\xa0\x80\"", "at column 7: invalid UTF-8 in a string"},
      {"a == \"\xc0\xaf\"", "at column 7: invalid UTF-8 in a string"},
      {"a == 01", "at column 6: a number cannot start with 0"},
      {"a == 1.", "at column 8: expected a digit after '.', found the end of the query"},
      {"a == 1e", "at column 8: expected a digit in the exponent, found the end of the query"},
      {"a == -", "at column 7: expected a digit, found the end of the query"},
      {"a == +1", "at column 6: expected a JSON value, found '+'"},
      {"a == 1e999", "at column 6: number out of the range of a double"},
      {"a == [1,]", "at column 9: expected a JSON value, found ']'"},
      {"a == [1 2]", "at column 9: expected ',' or ']', found '2'"},
      {"a == {1:2}", "at column 7: expected a string key, found '1'"},
      {"a == {\"k\" 2}", "at column 11: expected ':', found '2'"},
      {"a == {\"k\":2", "at column 12: expected ',' or '}', found the end of the query"},
      {"a in 1", "at column 6: expected '[' after 'in', found '1'"},
      {"a in [1", "at column 8: expected ',' or ']', found the end of the query"},
      {"a ^= 1", "at column 6: expected a string after '^=', found '1'"},
      {"a contains", "at column 11: expected a JSON value, found the end of the query"},
      {"a. == 1", "at column 3: expected a key (a name, digits or a `quoted key`), found ' '"},
      {"a.`b == 1", "at column 3: unterminated `quoted key`"},
      {"1a == 1",
       "at column 1: a key that starts with a digit must be all digits or quoted with "
       "backticks"},
      {"\xc3\xa9 == 1", "at column 1: expected a field path, '(' or '!', found byte 0xc3"},
      {"a.`\x01` == 1", "at column 4: control character in a quoted key"},
      {"a.`\xff` == 1", "at column 4: invalid UTF-8 in a quoted key"},
      {"!", "at column 2: expected a field path, '(' or '!', found the end of the query"},
      {"a existsx",
       "at column 3: expected an operator (==, !=, <, <=, >, >=, ^=, in, exists, "
       "contains), found 'existsx'"},
      {"?", "at column 2: expected an option (limit, sort, fields), found the end of the query"},
      {"?top=1", "at column 2: expected an option (limit, sort, fields), found 'top'"},
      {"?limit", "at column 7: expected '=' after 'limit', found the end of the query"},
      {"?limit=", "at column 8: expected a positive integer, found the end of the query"},
      {"?limit=0", "at column 8: limit must be between 1 and 1000000"},
      {"?limit=1000001", "at column 8: limit must be between 1 and 1000000"},
      {"?limit=99999999999999999999999", "at column 8: limit must be between 1 and 1000000"},
      {"?limit=-1", "at column 8: expected a positive integer, found '-'"},
      {"?limit=1&limit=2", "at column 10: option 'limit' given twice"},
      {"?limit=1&",
       "at column 10: expected an option (limit, sort, fields), found the end of the "
       "query"},
      {"?limit=1 sort=a", "at column 10: expected '&' or the end of the query, found 'sort'"},
      {"?sort=",
       "at column 7: expected a key (a name, digits or a `quoted key`), found the end of "
       "the query"},
      {"?sort=a,",
       "at column 9: expected a key (a name, digits or a `quoted key`), found the end "
       "of the query"},
      {"?sort=--a", "at column 8: expected a key (a name, digits or a `quoted key`), found '-'"},
      {"?fields=a,,b",
       "at column 11: expected a key (a name, digits or a `quoted key`), found ','"},
      {"a == 1 ?? limit=1", "at column 9: expected an option (limit, sort, fields), found '?'"},
  };
  for (const auto& c : cases) {
    auto q = Parse(c.text);
    ASSERT_FALSE(q.ok()) << c.text;
    EXPECT_EQ(q.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_EQ(q.status().message(), c.message) << "query: " << c.text;
  }
}

TEST(QueryParser, Limits) {
  ParseLimits l;
  l.max_query_bytes = 10;
  EXPECT_EQ(ErrorOf("a == 123456", l), "at column 11: query longer than 10 bytes");
  EXPECT_TRUE(Parse("a == 12345", l).ok());
  EXPECT_EQ(Parse("a == 123456", l).status().code(), StatusCode::kTooLarge);

  // Depth: ( and ! and literal nesting, each counted.
  std::string deep = std::string(64, '(') + "a exists" + std::string(64, ')');
  EXPECT_TRUE(Parse(deep).ok());
  deep = std::string(65, '(') + "a exists" + std::string(65, ')');
  EXPECT_EQ(ErrorOf(deep), "at column 65: nesting deeper than 64");
  EXPECT_EQ(ErrorOf(std::string(100000, '!')), "at column 65537: query longer than 65536 bytes");
  EXPECT_EQ(ErrorOf(std::string(1000, '!') + "a exists"), "at column 65: nesting deeper than 64");
  EXPECT_EQ(ErrorOf("a == " + std::string(65, '[') + std::string(65, ']')),
            "at column 70: nesting deeper than 64");
  EXPECT_TRUE(Parse("a == " + std::string(64, '[') + std::string(64, ']')).ok());
  EXPECT_EQ(ErrorOf("(((a == [[[1]]])))", ParseLimits{.max_depth = 5}),
            "at column 11: nesting deeper than 5");

  // A long flat chain costs no depth.
  std::string chain = "a == 0";
  for (int i = 1; i < 2000; ++i) chain += " || a == " + std::to_string(i);
  ASSERT_TRUE(Parse(chain).ok());
  EXPECT_EQ(Parse(chain)->filter.children.size(), 2000u);

  std::string in = "a in [0";
  for (int i = 1; i < 1000; ++i) in += "," + std::to_string(i);
  EXPECT_TRUE(Parse(in + "]").ok());
  EXPECT_EQ(ErrorOf(in + ",1000]"), "at column 6: more than 1000 values in 'in'");

  std::string path = "a";
  for (int i = 1; i < 32; ++i) path += ".a";
  EXPECT_TRUE(Parse(path + " exists").ok());
  EXPECT_EQ(ErrorOf(path + ".b exists"), "at column 65: field path longer than 32 keys");
  EXPECT_TRUE(Parse(std::string(1024, 'k') + " exists").ok());
  EXPECT_EQ(ErrorOf("x." + std::string(1025, 'k') + " exists"),
            "at column 3: key longer than 1024 bytes");

  EXPECT_EQ(ErrorOf("?sort=a,b,c,d,e,f,g,h,i"), "at column 23: more than 8 sort keys");
  std::string fields = "?fields=f0";
  for (int i = 1; i < 64; ++i) fields += ",f" + std::to_string(i);
  EXPECT_TRUE(Parse(fields).ok());
  EXPECT_EQ(Parse(fields + ",x").status().message(),
            "at column " + std::to_string(fields.size() + 2) + ": more than 64 fields");
}

}  // namespace
}  // namespace cairn::query

namespace cairn::query {
namespace {

// The examples of docs/query-language.md, "Errors", verbatim.
TEST(QueryParser, DocumentedErrorExamples) {
  EXPECT_EQ(Parse("status == \"paid\" && || total > 1").status().message(),
            "at column 21: expected a field path, '(' or '!', found '|'");
  EXPECT_EQ(Parse("total >= ?limit=5").status().message(),
            "at column 10: expected a JSON value, found '?'");
  EXPECT_EQ(
      Parse("name == \"J\\qx\"").status().message(),
      "at column 12: expected an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX), found 'qx'");
  EXPECT_EQ(Parse("?limit=0").status().message(),
            "at column 8: limit must be between 1 and 1000000");
}

}  // namespace
}  // namespace cairn::query

namespace cairn::query {
namespace {

TEST(QueryParseValue, OneJsonValue) {
  EXPECT_EQ(ParseValue(" {\"b\": [1, 2.5, \"x\"], \"a\": null} ")->ToJson(),
            R"({"a":null,"b":[1,2.5,"x"]})");
  EXPECT_EQ(ParseValue("18446744073709551615")->number().kind, Number::Kind::kUint);
  EXPECT_EQ(ParseValue("1.0")->number().kind, Number::Kind::kDouble);
  EXPECT_EQ(ParseValue("1 2").status().message(),
            "at column 3: expected the end of the value, found '2'");
  EXPECT_EQ(ParseValue("").status().message(),
            "at column 1: expected a JSON value, found the end of the query");
  EXPECT_EQ(ParseValue(std::string(65, '[')).status().code(), StatusCode::kTooLarge);
}

}  // namespace
}  // namespace cairn::query
