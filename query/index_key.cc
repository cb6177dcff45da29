#include "query/index_key.h"

#include <bit>
#include <cstdint>
#include <cstring>

#include "query/parser.h"

namespace cairn::query {
namespace {

constexpr char kNull = 0x10;
constexpr char kBool = 0x20;
constexpr char kNumber = 0x30;
constexpr char kString = 0x40;
constexpr char kArray = 0x50;
constexpr char kObject = 0x60;
constexpr char kEnd = 0x00;
constexpr char kMember = 0x02;

constexpr int kExponentBias = 2048;

void AppendEscaped(std::string_view s, std::string* out) {
  for (char c : s) {
    out->push_back(c);
    if (c == '\0') out->push_back(static_cast<char>(0xFF));
  }
  out->push_back('\0');
  out->push_back('\x01');
}

// A positive magnitude as (exponent of its leading bit, the bits after it
// left-aligned in 64 bits).
struct Normalized {
  int exponent = 0;
  uint64_t fraction = 0;
};

Normalized FromUint(uint64_t u) {  // u > 0
  const int lead = 63 - std::countl_zero(u);
  return {lead, lead == 0 ? 0 : u << (64 - lead)};
}

Normalized FromDouble(double d) {  // d > 0, finite
  const auto bits = std::bit_cast<uint64_t>(d);
  const int biased = static_cast<int>((bits >> 52) & 0x7FF);
  const uint64_t mantissa = bits & ((uint64_t{1} << 52) - 1);
  if (biased != 0) return {biased - 1023, mantissa << 12};
  // Subnormal: mantissa * 2^-1074.
  Normalized n = FromUint(mantissa);
  n.exponent -= 1074;
  return n;
}

void AppendNumber(const Number& n, std::string* out) {
  out->push_back(kNumber);
  bool negative = false;
  Normalized m;
  switch (n.kind) {
    case Number::Kind::kInt:
      if (n.i == 0) {
        out->push_back('\x02');
        return;
      }
      negative = n.i < 0;
      // |INT64_MIN| fits a uint64.
      m = FromUint(negative ? uint64_t{0} - static_cast<uint64_t>(n.i)
                            : static_cast<uint64_t>(n.i));
      break;
    case Number::Kind::kUint:
      m = FromUint(n.u);  // > INT64_MAX, so nonzero
      break;
    case Number::Kind::kDouble:
      if (n.d == 0) {  // -0.0 too
        out->push_back('\x02');
        return;
      }
      negative = n.d < 0;
      m = FromDouble(negative ? -n.d : n.d);
      break;
  }
  out->push_back(negative ? '\x01' : '\x03');
  auto e = static_cast<uint16_t>(m.exponent + kExponentBias);
  uint64_t f = m.fraction;
  if (negative) {
    e = static_cast<uint16_t>(~e);
    f = ~f;
  }
  out->push_back(static_cast<char>(e >> 8));
  out->push_back(static_cast<char>(e & 0xFF));
  for (int shift = 56; shift >= 0; shift -= 8)
    out->push_back(static_cast<char>((f >> shift) & 0xFF));
}

}  // namespace

char IndexKeyClassByte(TypeClass c) {
  switch (c) {
    case TypeClass::kNull:
      return kNull;
    case TypeClass::kBool:
      return kBool;
    case TypeClass::kNumber:
      return kNumber;
    case TypeClass::kString:
      return kString;
    case TypeClass::kArray:
      return kArray;
    case TypeClass::kObject:
      return kObject;
  }
  return kNull;
}

void AppendIndexKey(const Value& v, std::string* out) {
  switch (v.type()) {
    case TypeClass::kNull:
      out->push_back(kNull);
      return;
    case TypeClass::kBool:
      out->push_back(kBool);
      out->push_back(v.boolean() ? '\x01' : '\x00');
      return;
    case TypeClass::kNumber:
      AppendNumber(v.number(), out);
      return;
    case TypeClass::kString:
      out->push_back(kString);
      AppendEscaped(v.str(), out);
      return;
    case TypeClass::kArray:
      out->push_back(kArray);
      for (const Value& e : v.array()) AppendIndexKey(e, out);
      out->push_back(kEnd);
      return;
    case TypeClass::kObject:
      out->push_back(kObject);
      for (const auto& [key, value] : v.object()) {
        out->push_back(kMember);
        AppendEscaped(key, out);
        AppendIndexKey(value, out);
      }
      out->push_back(kEnd);
      return;
  }
}

std::string EncodeIndexKey(const Value& v) {
  std::string out;
  AppendIndexKey(v, &out);
  return out;
}

Result<Path> ParseIndexPath(std::string_view text) {
  // The query parser owns the path grammar: "<text> exists" parses to one
  // exists-predicate exactly when <text> is one path (anything else, an
  // operator, a second predicate, options, leaves another tree or an error).
  if (text.find('?') != std::string_view::npos && text.find('`') == std::string_view::npos) {
    return Status::InvalidArgument("an index path is a field path, without query options: '" +
                                   std::string(text) + "'");
  }
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) {
    return Status::InvalidArgument("an index path must not be empty");
  }
  Result<Query> q = Parse(std::string(text) + " exists");
  if (!q.ok()) {
    return Status(q.status().code(),
                  "bad index path '" + std::string(text) + "': " + q.status().message());
  }
  if (q->filter.kind != NodeKind::kExists || q->limit || !q->sort.empty() || !q->fields.empty()) {
    return Status::InvalidArgument("bad index path '" + std::string(text) +
                                   "': expected one field path (like a.b or `a b`.c)");
  }
  return std::move(q->filter.path);
}

}  // namespace cairn::query
