// An owned JSON value and the one total order the query language uses.
//
// Value holds query literals (the right side of a comparison, an `in` list),
// sort keys taken out of a document, and index keys (phase 2). Values of
// different types order by type class:
//   null < booleans < numbers < strings < arrays < objects
// (docs/query-language.md, "Order of values"). Inside a class: false < true;
// numbers compare by mathematical value, exactly, whether int64, uint64 or
// double (1 == 1.0, 2^63 > 9223372036854775807); strings compare bytewise
// (UTF-8 byte order is code point order); arrays lexicographically, element
// by element, a prefix first; objects as their (key, value) lists sorted by
// key, compared lexicographically.
//
// Thread-compatible: distinct objects may be used concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cairn::query {

// The type classes of the order, in order. Range comparisons (< <= > >=)
// only hold between values of one class.
enum class TypeClass : uint8_t { kNull = 0, kBool, kNumber, kString, kArray, kObject };

std::string_view TypeClassName(TypeClass c);

// A number as JSON parsers hand it over: one of three representations.
struct Number {
  enum class Kind : uint8_t { kInt, kUint, kDouble };
  Kind kind = Kind::kInt;
  int64_t i = 0;   // kInt
  uint64_t u = 0;  // kUint (only values above INT64_MAX are stored so)
  double d = 0;    // kDouble (finite)

  static Number Int(int64_t v) { return {Kind::kInt, v, 0, 0}; }
  static Number Uint(uint64_t v);  // stored as kInt when it fits
  static Number Double(double v) { return {Kind::kDouble, 0, 0, v}; }
};

// Exact comparison by mathematical value: <0, 0, >0.
int CompareNumbers(const Number& a, const Number& b);

class Value {
 public:
  using Array = std::vector<Value>;
  // Sorted by key, keys unique (the first occurrence of a duplicate wins).
  using Object = std::vector<std::pair<std::string, Value>>;

  Value() = default;  // null
  static Value Null() { return Value(); }
  static Value Bool(bool b);
  static Value Num(Number n);
  static Value Int(int64_t v) { return Num(Number::Int(v)); }
  static Value Double(double v) { return Num(Number::Double(v)); }
  static Value Str(std::string s);
  static Value Arr(Array a);
  // Sorts by key and drops later duplicates.
  static Value Obj(Object o);

  TypeClass type() const { return type_; }
  bool is_null() const { return type_ == TypeClass::kNull; }
  bool boolean() const { return b_; }
  const Number& number() const { return n_; }
  const std::string& str() const { return s_; }
  const Array& array() const { return a_; }
  const Object& object() const { return o_; }

  // Compact JSON text; numbers keep their representation (doubles printed
  // with enough digits to read back the same double).
  std::string ToJson() const;
  void AppendJson(std::string* out) const;

 private:
  TypeClass type_ = TypeClass::kNull;
  bool b_ = false;
  Number n_;
  std::string s_;
  Array a_;
  Object o_;
};

// The total order described above: <0, 0, >0.
int Compare(const Value& a, const Value& b);
inline bool operator==(const Value& a, const Value& b) { return Compare(a, b) == 0; }

// Appends `s` as a JSON string literal (quotes, escapes) to `out`. A byte
// that does not start a valid UTF-8 sequence becomes \ufffd, so the output is
// always valid JSON (document ids may be any bytes).
void AppendJsonString(std::string_view s, std::string* out);

// Length of the valid UTF-8 sequence of 2 to 4 bytes at the start of `s`, or 0
// when `s` does not start with one (overlong forms, surrogates and code points
// above U+10FFFF are invalid). ASCII bytes are not sequences: 0.
size_t Utf8SequenceLength(std::string_view s);
// Appends a finite double in the shortest form that reads back the same.
void AppendJsonDouble(double d, std::string* out);

}  // namespace cairn::query
