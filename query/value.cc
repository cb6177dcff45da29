#include "query/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

namespace cairn::query {

std::string_view TypeClassName(TypeClass c) {
  switch (c) {
    case TypeClass::kNull:
      return "null";
    case TypeClass::kBool:
      return "boolean";
    case TypeClass::kNumber:
      return "number";
    case TypeClass::kString:
      return "string";
    case TypeClass::kArray:
      return "array";
    case TypeClass::kObject:
      return "object";
  }
  return "?";
}

Number Number::Uint(uint64_t v) {
  if (v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Int(static_cast<int64_t>(v));
  }
  return {Kind::kUint, 0, v, 0};
}

namespace {

constexpr double kTwo63 = 9223372036854775808.0;   // 2^63, exact in a double
constexpr double kTwo64 = 18446744073709551616.0;  // 2^64

template <typename T>
int Cmp(T a, T b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

// x against a finite double, exactly.
int CompareIntDouble(int64_t x, double d) {
  if (d >= kTwo63) return -1;
  if (d < -kTwo63) return 1;
  const double t = std::trunc(d);  // now in [-2^63, 2^63): fits int64 exactly
  const auto ti = static_cast<int64_t>(t);
  if (x != ti) return Cmp(x, ti);
  const double frac = d - t;
  return frac > 0 ? -1 : (frac < 0 ? 1 : 0);
}

// u (> INT64_MAX) against a finite double, exactly.
int CompareUintDouble(uint64_t u, double d) {
  if (d >= kTwo64) return -1;
  if (d < kTwo63) return 1;
  const double t = std::trunc(d);  // in [2^63, 2^64)
  const auto tu = static_cast<uint64_t>(t);
  if (u != tu) return Cmp(u, tu);
  const double frac = d - t;
  return frac > 0 ? -1 : (frac < 0 ? 1 : 0);
}

}  // namespace

int CompareNumbers(const Number& a, const Number& b) {
  using K = Number::Kind;
  if (a.kind == K::kDouble && b.kind == K::kDouble) return Cmp(a.d, b.d);
  if (a.kind == K::kDouble) return -CompareNumbers(b, a);
  // a is an integer.
  if (b.kind == K::kDouble) {
    return a.kind == K::kInt ? CompareIntDouble(a.i, b.d) : CompareUintDouble(a.u, b.d);
  }
  if (a.kind == K::kInt && b.kind == K::kInt) return Cmp(a.i, b.i);
  if (a.kind == K::kUint && b.kind == K::kUint) return Cmp(a.u, b.u);
  // One kUint (> INT64_MAX) and one kInt.
  return a.kind == K::kUint ? 1 : -1;
}

Value Value::Bool(bool b) {
  Value v;
  v.type_ = TypeClass::kBool;
  v.b_ = b;
  return v;
}

Value Value::Num(Number n) {
  Value v;
  v.type_ = TypeClass::kNumber;
  if (n.kind == Number::Kind::kUint) n = Number::Uint(n.u);
  v.n_ = n;
  return v;
}

Value Value::Str(std::string s) {
  Value v;
  v.type_ = TypeClass::kString;
  v.s_ = std::move(s);
  return v;
}

Value Value::Arr(Array a) {
  Value v;
  v.type_ = TypeClass::kArray;
  v.a_ = std::move(a);
  return v;
}

Value Value::Obj(Object o) {
  std::stable_sort(o.begin(), o.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  o.erase(std::unique(o.begin(), o.end(),
                      [](const auto& x, const auto& y) { return x.first == y.first; }),
          o.end());
  Value v;
  v.type_ = TypeClass::kObject;
  v.o_ = std::move(o);
  return v;
}

int Compare(const Value& a, const Value& b) {
  if (a.type() != b.type()) return Cmp(static_cast<int>(a.type()), static_cast<int>(b.type()));
  switch (a.type()) {
    case TypeClass::kNull:
      return 0;
    case TypeClass::kBool:
      return Cmp(a.boolean(), b.boolean());
    case TypeClass::kNumber:
      return CompareNumbers(a.number(), b.number());
    case TypeClass::kString: {
      const int c = a.str().compare(b.str());  // char_traits<char>: unsigned bytes
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    case TypeClass::kArray: {
      const auto& x = a.array();
      const auto& y = b.array();
      const size_t n = std::min(x.size(), y.size());
      for (size_t i = 0; i < n; ++i) {
        if (const int c = Compare(x[i], y[i]); c != 0) return c;
      }
      return Cmp(x.size(), y.size());
    }
    case TypeClass::kObject: {
      const auto& x = a.object();
      const auto& y = b.object();
      const size_t n = std::min(x.size(), y.size());
      for (size_t i = 0; i < n; ++i) {
        if (const int c = x[i].first.compare(y[i].first); c != 0) return c < 0 ? -1 : 1;
        if (const int c = Compare(x[i].second, y[i].second); c != 0) return c;
      }
      return Cmp(x.size(), y.size());
    }
  }
  return 0;
}

size_t Utf8SequenceLength(std::string_view s) {
  if (s.empty()) return 0;
  const auto b0 = static_cast<unsigned char>(s[0]);
  size_t n = 0;
  uint32_t cp = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
    cp = b0 & 0x1Fu;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    cp = b0 & 0x0Fu;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    cp = b0 & 0x07u;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  return n;
}

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    const char ch = s[i];
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(s.substr(i));
      if (n == 0) {
        out->append("\\ufffd");  // not UTF-8 (a document id may be any bytes)
      } else {
        out->append(s.substr(i, n));
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

void AppendJsonDouble(double d, std::string* out) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), d);
  const std::string_view text(buf, static_cast<size_t>(r.ptr - buf));
  out->append(text);
  // Keep it a double when read back ("1" would come back as an integer).
  if (text.find_first_of(".eEn") == std::string_view::npos) out->append(".0");
}

void Value::AppendJson(std::string* out) const {
  switch (type_) {
    case TypeClass::kNull:
      out->append("null");
      return;
    case TypeClass::kBool:
      out->append(b_ ? "true" : "false");
      return;
    case TypeClass::kNumber:
      switch (n_.kind) {
        case Number::Kind::kInt:
          out->append(std::to_string(n_.i));
          return;
        case Number::Kind::kUint:
          out->append(std::to_string(n_.u));
          return;
        case Number::Kind::kDouble:
          AppendJsonDouble(n_.d, out);
          return;
      }
      return;
    case TypeClass::kString:
      AppendJsonString(s_, out);
      return;
    case TypeClass::kArray: {
      out->push_back('[');
      for (size_t i = 0; i < a_.size(); ++i) {
        if (i > 0) out->push_back(',');
        a_[i].AppendJson(out);
      }
      out->push_back(']');
      return;
    }
    case TypeClass::kObject: {
      out->push_back('{');
      for (size_t i = 0; i < o_.size(); ++i) {
        if (i > 0) out->push_back(',');
        AppendJsonString(o_[i].first, out);
        out->push_back(':');
        o_[i].second.AppendJson(out);
      }
      out->push_back('}');
      return;
    }
  }
}

std::string Value::ToJson() const {
  std::string out;
  AppendJson(&out);
  return out;
}

}  // namespace cairn::query
