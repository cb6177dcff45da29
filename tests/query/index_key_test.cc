// Index keys (query/index_key.h): the encoding orders exactly as Compare,
// equal values encode alike, and no key is a proper prefix of another;
// index paths follow the query grammar.
#include "query/index_key.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/random.h"
#include "tests/common/test_seeds.h"

namespace cairn::query {
namespace {

int Sign(int c) { return c < 0 ? -1 : (c > 0 ? 1 : 0); }

int ByteCompare(const std::string& a, const std::string& b) { return Sign(a.compare(b)); }

std::string Hex(const std::string& s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : s) {
    out.push_back(kHex[(static_cast<unsigned char>(c) >> 4) & 0xF]);
    out.push_back(kHex[static_cast<unsigned char>(c) & 0xF]);
  }
  return out;
}

void ExpectSameOrder(const Value& a, const Value& b) {
  const std::string ka = EncodeIndexKey(a);
  const std::string kb = EncodeIndexKey(b);
  ASSERT_EQ(Sign(Compare(a, b)), ByteCompare(ka, kb))
      << a.ToJson() << " vs " << b.ToJson() << ": " << Hex(ka) << " vs " << Hex(kb);
  if (ka != kb) {
    // Prefix-free: a key followed by anything still orders as the key.
    EXPECT_FALSE(kb.size() > ka.size() && kb.compare(0, ka.size(), ka) == 0)
        << a.ToJson() << " is a prefix of " << b.ToJson();
    EXPECT_FALSE(ka.size() > kb.size() && ka.compare(0, kb.size(), kb) == 0)
        << b.ToJson() << " is a prefix of " << a.ToJson();
  }
}

std::vector<Value> Numbers() {
  const double kMin = std::numeric_limits<double>::denorm_min();
  const double kMax = std::numeric_limits<double>::max();
  std::vector<Value> v;
  for (int64_t i : {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{2}, int64_t{-2}, int64_t{3},
                    int64_t{255}, int64_t{256}, int64_t{-256}, int64_t{9007199254740992},
                    int64_t{9007199254740993}, int64_t{-9007199254740993},
                    std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max() - 1,
                    std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::min() + 1}) {
    v.push_back(Value::Int(i));
  }
  for (uint64_t u :
       {uint64_t{9223372036854775808ull}, uint64_t{9223372036854775809ull},
        std::numeric_limits<uint64_t>::max(), std::numeric_limits<uint64_t>::max() - 1}) {
    v.push_back(Value::Num(Number::Uint(u)));
  }
  for (double d : {0.0,
                   -0.0,
                   0.1,
                   -0.1,
                   0.5,
                   1.0,
                   -1.0,
                   1.5,
                   -1.5,
                   2.0,
                   255.5,
                   1e-300,
                   -1e-300,
                   kMin,
                   -kMin,
                   2 * kMin,
                   std::numeric_limits<double>::min(),
                   1e300,
                   -1e300,
                   kMax,
                   -kMax,
                   9007199254740992.0,
                   9223372036854775808.0,
                   -9223372036854775808.0,
                   18446744073709551616.0,
                   18446744073709549568.0,
                   3.0e19}) {
    v.push_back(Value::Double(d));
  }
  return v;
}

TEST(IndexKeyTest, NumbersOrderExactly) {
  const std::vector<Value> v = Numbers();
  for (const Value& a : v) {
    for (const Value& b : v) ExpectSameOrder(a, b);
  }
  EXPECT_EQ(EncodeIndexKey(Value::Int(1)), EncodeIndexKey(Value::Double(1.0)));
  EXPECT_EQ(EncodeIndexKey(Value::Double(-0.0)), EncodeIndexKey(Value::Int(0)));
  EXPECT_EQ(EncodeIndexKey(Value::Num(Number::Uint(9223372036854775808ull))),
            EncodeIndexKey(Value::Double(9223372036854775808.0)));
}

TEST(IndexKeyTest, ClassesInDocumentedOrder) {
  // null < false < true < numbers < strings < arrays < objects
  const std::vector<Value> v = {
      Value::Null(),
      Value::Bool(false),
      Value::Bool(true),
      Value::Double(-1e300),
      Value::Int(0),
      Value::Num(Number::Uint(std::numeric_limits<uint64_t>::max())),
      Value::Double(1e300),
      Value::Str(""),
      Value::Str(std::string("\0", 1)),
      Value::Str("a"),
      Value::Str(std::string("a\0", 2)),
      Value::Str(std::string("a\0\0", 3)),
      Value::Str(std::string("a\x01", 2)),
      Value::Str("ab"),
      Value::Str("\xff"),
      Value::Arr({}),
      Value::Arr({Value::Null()}),
      Value::Arr({Value::Int(1)}),
      Value::Arr({Value::Int(1), Value::Null()}),
      Value::Arr({Value::Int(2)}),
      Value::Arr({Value::Arr({})}),
      Value::Obj({}),
      Value::Obj({{"", Value::Null()}}),
      Value::Obj({{std::string("\0", 1), Value::Null()}}),
      Value::Obj({{"a", Value::Int(1)}}),
      Value::Obj({{"a", Value::Int(1)}, {"b", Value::Null()}}),
      Value::Obj({{"a", Value::Int(2)}}),
      Value::Obj({{"b", Value::Null()}}),
  };
  for (size_t i = 0; i < v.size(); ++i) {
    for (size_t j = 0; j < v.size(); ++j) {
      ExpectSameOrder(v[i], v[j]);
      EXPECT_EQ(Sign(Compare(v[i], v[j])), i < j ? -1 : (i > j ? 1 : 0))
          << v[i].ToJson() << " vs " << v[j].ToJson();
    }
  }
  for (TypeClass c : {TypeClass::kNull, TypeClass::kBool, TypeClass::kNumber, TypeClass::kString,
                      TypeClass::kArray, TypeClass::kObject}) {
    for (const Value& x : v) {
      if (x.type() == c) {
        EXPECT_EQ(EncodeIndexKey(x)[0], IndexKeyClassByte(c));
      }
    }
  }
}

class ValueGen {
 public:
  explicit ValueGen(uint64_t seed) : rnd_(seed) {}
  Value Any(int depth) {
    switch (rnd_.Uniform(depth > 0 ? 9 : 6)) {
      case 0:
        return Value::Null();
      case 1:
        return Value::Bool(rnd_.OneIn(2));
      case 2:
        return Num();
      case 3:
      case 4:
        return Value::Num(Number::Int(static_cast<int64_t>(rnd_.Uniform(9)) - 4));
      case 5:
        return Value::Str(Str());
      case 6:
      case 7: {
        Value::Array a;
        const uint64_t n = rnd_.Uniform(4);
        for (uint64_t i = 0; i < n; ++i) a.push_back(Any(depth - 1));
        return Value::Arr(std::move(a));
      }
      default: {
        Value::Object o;
        const uint64_t n = rnd_.Uniform(4);
        for (uint64_t i = 0; i < n; ++i) o.emplace_back(Str(), Any(depth - 1));
        return Value::Obj(std::move(o));
      }
    }
  }
  Value Num() {
    static const std::vector<Value> kFixed = Numbers();
    switch (rnd_.Uniform(5)) {
      case 0:
        return kFixed[rnd_.Uniform(kFixed.size())];
      case 1:
        return Value::Int(static_cast<int64_t>(rnd_.Next()));
      case 2:
        return Value::Num(Number::Uint(rnd_.Next()));
      case 3: {
        double d = std::bit_cast<double>(rnd_.Next());
        if (!std::isfinite(d)) d = 1.25;
        return Value::Double(d);
      }
      default:
        return Value::Double((static_cast<double>(rnd_.Uniform(41)) - 20) / 4);
    }
  }
  std::string Str() {
    std::string s;
    const uint64_t n = rnd_.Uniform(4);
    static const char kBytes[] = {'\0', '\x01', 'a', 'b', '\xff', '\x7f'};
    for (uint64_t i = 0; i < n; ++i) s.push_back(kBytes[rnd_.Uniform(sizeof(kBytes))]);
    return s;
  }

 private:
  Random rnd_;
};

TEST(IndexKeyTest, RandomValuesOrderAsCompare) {
  for (uint64_t seed : test::Seeds(20, 51)) {
    SCOPED_TRACE(test::SeedTrace(seed));
    ValueGen g(seed);
    std::vector<Value> v;
    for (int i = 0; i < 120; ++i) v.push_back(g.Any(3));
    for (const Value& a : v) {
      for (const Value& b : v) {
        ExpectSameOrder(a, b);
        if (testing::Test::HasFatalFailure()) return;
      }
    }
  }
}

TEST(IndexKeyTest, ParseIndexPath) {
  auto ok = [](std::string_view text, const std::string& canonical) {
    Result<Path> p = ParseIndexPath(text);
    ASSERT_TRUE(p.ok()) << text << ": " << p.status().ToString();
    EXPECT_EQ(p->ToString(), canonical);
  };
  ok("a", "a");
  ok("customer.country", "customer.country");
  ok(" items.0.sku ", "items.0.sku");
  ok("`first name`.x", "`first name`.x");
  ok("in", "in");
  ok("_id", "_id");
  for (std::string_view bad : {"", "  ", "a..b", "a b", "a == 1", "a exists", "a.", ".a",
                               "a ?limit=1", "(a)", "a && b", "`unterminated", "1a"}) {
    Result<Path> p = ParseIndexPath(bad);
    EXPECT_FALSE(p.ok()) << "'" << bad << "' parsed as " << p->ToString();
  }
  EXPECT_NE(ParseIndexPath("a b").status().message().find("column"), std::string::npos);
}

}  // namespace
}  // namespace cairn::query
