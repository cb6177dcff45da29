// Index keys: an order-preserving, prefix-free byte encoding of query::Value,
// and the grammar check for the field paths an index may be defined on.
//
// For any two values a and b:
//   Compare(a, b) < 0  <=>  EncodeIndexKey(a) < EncodeIndexKey(b)  (bytewise)
//   Compare(a, b) == 0 <=>  EncodeIndexKey(a) == EncodeIndexKey(b)
// so 1, 1.0 and -0.0 vs 0 encode alike, and no encoding is a proper prefix of
// another. A secondary index can therefore store "key bytes + document id" in
// one ordered set: the entries of one key are contiguous and ordered by id,
// and a range of values is a range of bytes.
//
// Layout (docs/indexes.md, "Key encoding"): one class byte in the order of
// docs/query-language.md ("Order of values"), then
//   null     0x10
//   boolean  0x20, then 0x00 (false) or 0x01 (true)
//   number   0x30, then 0x01 negative | 0x02 zero | 0x03 positive; a nonzero
//            number is m * 2^e with 1 <= m < 2, written as e + 2048 (2 bytes,
//            big-endian) and the 63 bits of m after the leading 1 (8 bytes,
//            big-endian, left-aligned); negatives have those 10 bytes
//            inverted. Exact for int64, uint64 and every finite double.
//   string   0x40, the bytes with 0x00 written as 0x00 0xFF, then 0x00 0x01
//   array    0x50, each element's key, then 0x00
//   object   0x60, per member (sorted by key) 0x02 + the key as a string's
//            bytes above (escaped, terminated) + the value's key, then 0x00
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "query/ast.h"
#include "query/value.h"

namespace cairn::query {

std::string EncodeIndexKey(const Value& v);
void AppendIndexKey(const Value& v, std::string* out);

// The class byte that starts every key of class `c`.
char IndexKeyClassByte(TypeClass c);

// Parses the text of an indexed field path with the query grammar's `path`
// rule (docs/query-language.md, "Field paths"): dotted keys, backtick quotes.
// Surrounding whitespace is allowed. InvalidArgument (or TooLarge past the
// path limits) with the query parser's message otherwise, e.g. for "", "a..b",
// "a b" or "a == 1". The canonical spelling of the result is Path::ToString().
Result<Path> ParseIndexPath(std::string_view text);

}  // namespace cairn::query
