// Random documents and queries for the query property tests (shared by
// tests/query/property_test.cc and the chunk server's executor test):
// nested objects and arrays, mixed types, missing fields, big integers,
// bodies that are not JSON objects, documents with their own "_id", and
// queries over every operator, nesting and option. Deterministic per seed
// under every compiler.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/random.h"
#include "tests/query/oracle.h"

namespace cairn::query::testgen {

using oracle::Json;

class Gen {
 public:
  explicit Gen(uint64_t seed) : rnd_(seed) {}

  uint64_t U(uint64_t n) { return rnd_.Uniform(n); }
  bool OneIn(uint64_t n) { return rnd_.OneIn(n); }

  Json Scalar() {
    switch (U(12)) {
      case 0:
        return nullptr;
      case 1:
        return OneIn(2);
      case 2:
      case 3:
        return static_cast<int64_t>(U(7)) - 3;
      case 4:
        return (static_cast<double>(U(13)) - 6.0) / 2.0;  // halves, some integral
      case 5: {
        static const int64_t kBig[] = {INT64_MIN, INT64_MAX, INT64_MAX - 1, 9007199254740993,
                                       -9007199254740993};
        return kBig[U(5)];
      }
      case 6: {
        static const uint64_t kHuge[] = {UINT64_MAX, 9223372036854775808ull};
        return kHuge[U(2)];
      }
      case 7: {
        static const double kD[] = {9223372036854775808.0, 9007199254740992.0, 1e300, -0.0, 0.1,
                                    18446744073709551616.0};
        return kD[U(6)];
      }
      default:
        return Str();
    }
  }
  std::string Str() {
    static const char* kStr[] = {"",   "a",  "ab",       "abc",       "b",    "ba", "paid",
                                 "FR", "DE", "\xc3\xa9", "a\xc3\xa9", "\x7f", "A"};
    return kStr[U(13)];
  }
  Json Any(int depth) {
    if (depth <= 0 || U(4) != 0) return Scalar();
    if (OneIn(2)) {
      Json a = Json::array();
      const uint64_t n = U(4);
      for (uint64_t i = 0; i < n; ++i) a.push_back(Any(depth - 1));
      return a;
    }
    return Object(depth - 1);
  }
  Json Object(int depth) {
    static const char* kKeys[] = {"x", "y", "z"};
    Json o = Json::object();
    for (const char* k : kKeys) {
      if (!OneIn(3)) o[k] = Any(depth);
    }
    return o;
  }

  std::string DocText(int i) {
    switch (U(25)) {
      case 0:
        return "not json";
      case 1:
        return "[1,2]";
      case 2:
        return "{\"a\":";
      case 3:
        return "{\"a\":\"\xff\"}";
      case 4:
        return "";
      default:
        break;
    }
    static const char* kTop[] = {"a", "b", "s", "n", "tags", "first name", "_id"};
    Json d = Json::object();
    for (const char* k : kTop) {
      if (OneIn(4)) continue;
      const std::string key = k;
      if (key == "n") {
        d[key] = OneIn(5) ? Any(1) : Object(2);
      } else if (key == "tags") {
        Json a = Json::array();
        const uint64_t n = U(4);
        for (uint64_t j = 0; j < n; ++j) a.push_back(OneIn(3) ? Scalar() : Json(Str()));
        d[key] = OneIn(6) ? Scalar() : a;
      } else if (key == "s") {
        d[key] = OneIn(5) ? Scalar() : Json(Str());
      } else if (key == "_id") {
        if (OneIn(3)) d[key] = "own-" + std::to_string(i);  // shadowed by the store's id
      } else {
        d[key] = Any(2);
      }
    }
    return d.dump();
  }

  std::string PathText() {
    static const char* kPaths[] = {
        "a",      "b",   "s",    "n",   "n.x", "n.y.z",        "tags",  "tags.0",
        "tags.1", "_id", "none", "a.x", "n.0", "`first name`", "n.x.x", "b.1.y"};
    return kPaths[U(16)];
  }
  std::string Literal() {
    std::string out;
    oracle::Json j = OneIn(6) ? Any(2) : Scalar();
    if (OneIn(8)) j = "id-" + std::to_string(U(40));
    return j.dump();
  }

  std::string Filter(int depth) {
    if (depth > 0 && OneIn(3)) {
      switch (U(3)) {
        case 0:
          return "!(" + Filter(depth - 1) + ")";
        default: {
          // Operands of + are unsequenced: draw in a fixed order so that a
          // seed means the same queries under every compiler.
          const char* op = OneIn(2) ? " && " : " || ";
          const std::string left = Filter(depth - 1);
          const std::string right = Filter(depth - 1);
          return "(" + left + op + right + ")";
        }
      }
    }
    static const char* kOps[] = {"==", "!=", "<", "<=", ">", ">="};
    const std::string path = PathText();
    switch (U(10)) {
      case 0:
        return path + " exists";
      case 1: {
        std::string s = path + " in [";
        const uint64_t n = U(4);
        for (uint64_t i = 0; i < n; ++i) s += (i ? "," : "") + Literal();
        return s + "]";
      }
      case 2: {
        static const char* kPrefixes[] = {"", "a", "ab", "b", "\xc3\xa9", "p", "\x7f"};
        return path + " ^= " + Json(kPrefixes[U(7)]).dump();
      }
      case 3:
        return path + " contains " + Literal();
      default: {
        const char* op = kOps[U(6)];
        return path + " " + op + " " + Literal();
      }
    }
  }

  std::string QueryText() {
    std::string q = OneIn(10) ? "" : Filter(3);
    std::vector<std::string> opts;
    if (OneIn(2)) opts.push_back("limit=" + std::to_string(1 + U(12)));
    if (OneIn(2)) {
      std::string s = "sort=";
      const uint64_t n = 1 + U(3);
      for (uint64_t i = 0; i < n; ++i) {
        const char* dir = OneIn(2) ? "-" : "";
        s += (i ? "," : "") + std::string(dir) + PathText();
      }
      opts.push_back(s);
    }
    if (OneIn(3)) {
      std::string s = "fields=";
      const uint64_t n = 1 + U(3);
      for (uint64_t i = 0; i < n; ++i) s += (i ? "," : "") + PathText();
      opts.push_back(s);
    }
    for (size_t i = 0; i < opts.size(); ++i) q += (i ? "&" : "?") + opts[i];
    return q;
  }

 private:
  Random rnd_;
};

}  // namespace cairn::query::testgen
