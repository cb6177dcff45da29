#include "query/parser.h"

#include <charconv>
#include <limits>
#include <string>
#include <utility>

namespace cairn::query {

namespace {

bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
}
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

class Parser {
 public:
  Parser(std::string_view text, const ParseLimits& limits) : t_(text), limits_(limits) {}

  Result<Value> ParseSingleValue() {
    SkipSpace();
    auto v = ParseLiteral();
    if (!v.ok()) return v.status();
    SkipSpace();
    if (!AtEnd()) return Expected("the end of the value");
    return v;
  }

  Result<Query> ParseQuery() {
    Query q;
    SkipSpace();
    if (!AtEnd() && Peek() != '?') {
      auto filter = ParseOr();
      if (!filter.ok()) return filter.status();
      q.filter = std::move(filter).value();
      SkipSpace();
      if (!AtEnd() && Peek() != '?') return Expected("'&&', '||', '?' or the end of the query");
    } else {
      q.filter.kind = NodeKind::kTrue;
      q.filter.column = Column();
    }
    if (!AtEnd()) {
      ++pos_;  // '?'
      RETURN_IF_ERROR(ParseOptions(&q));
    }
    return q;
  }

 private:
  // ---- helpers ----
  bool AtEnd() const { return pos_ >= t_.size(); }
  char Peek(size_t ahead = 0) const { return pos_ + ahead < t_.size() ? t_[pos_ + ahead] : '\0'; }
  uint32_t Column() const { return static_cast<uint32_t>(pos_ + 1); }
  void SkipSpace() {
    while (!AtEnd() && IsSpace(t_[pos_])) ++pos_;
  }
  bool Consume(std::string_view token) {
    if (t_.substr(pos_, token.size()) != token) return false;
    pos_ += token.size();
    return true;
  }
  // The keyword `word` not followed by a name character.
  bool ConsumeWord(std::string_view word) {
    if (t_.substr(pos_, word.size()) != word) return false;
    if (IsNameChar(Peek(word.size()))) return false;
    pos_ += word.size();
    return true;
  }

  std::string Found() const {
    if (AtEnd()) return "the end of the query";
    const char c = t_[pos_];
    if (IsNameChar(c)) {
      size_t end = pos_;
      while (end < t_.size() && IsNameChar(t_[end]) && end - pos_ < 32) ++end;
      return "'" + std::string(t_.substr(pos_, end - pos_)) + "'";
    }
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x20 && b < 0x7F) return std::string("'") + c + "'";
    static constexpr char kHex[] = "0123456789abcdef";
    return std::string("byte 0x") + kHex[b >> 4] + kHex[b & 15];
  }
  Status ErrorAt(size_t pos, std::string_view what) const {
    return Status::InvalidArgument("at column " + std::to_string(pos + 1) + ": " +
                                   std::string(what));
  }
  Status Expected(std::string_view what) const {
    return ErrorAt(pos_, "expected " + std::string(what) + ", found " + Found());
  }
  Status TooLarge(size_t pos, std::string_view what) const {
    return Status::TooLarge("at column " + std::to_string(pos + 1) + ": " + std::string(what));
  }
  Status Enter(size_t pos) {
    if (++depth_ > limits_.max_depth) {
      return TooLarge(pos, "nesting deeper than " + std::to_string(limits_.max_depth));
    }
    return Status::Ok();
  }

  // ---- the filter ----
  Result<Node> ParseOr() { return ParseChain(NodeKind::kOr, "||"); }
  Result<Node> ParseAnd() { return ParseChain(NodeKind::kAnd, "&&"); }

  // A chain of operands of the next tighter level joined by `op`, kept flat
  // (one node with n children) so that long chains cost no stack.
  Result<Node> ParseChain(NodeKind kind, std::string_view op) {
    const uint32_t column = (SkipSpace(), Column());
    std::vector<Node> children;
    while (true) {
      auto child = kind == NodeKind::kOr ? ParseAnd() : ParseUnary();
      if (!child.ok()) return child.status();
      children.push_back(std::move(child).value());
      SkipSpace();
      if (!Consume(op)) break;
      SkipSpace();
    }
    if (children.size() == 1) return std::move(children[0]);
    Node n;
    n.kind = kind;
    n.column = column;
    n.children = std::move(children);
    return n;
  }

  Result<Node> ParseUnary() {
    SkipSpace();
    const size_t start = pos_;
    if (Peek() == '!' && Peek(1) != '=') {
      ++pos_;
      RETURN_IF_ERROR(Enter(start));
      auto child = ParseUnary();
      if (!child.ok()) return child.status();
      --depth_;
      Node n;
      n.kind = NodeKind::kNot;
      n.column = static_cast<uint32_t>(start + 1);
      n.children.push_back(std::move(child).value());
      return n;
    }
    if (Peek() == '(') {
      ++pos_;
      RETURN_IF_ERROR(Enter(start));
      auto inner = ParseOr();
      if (!inner.ok()) return inner.status();
      --depth_;
      SkipSpace();
      if (!Consume(")")) return Expected("')' or an operator ('&&', '||')");
      return inner;
    }
    if (!IsNameChar(Peek()) && Peek() != '`') return Expected("a field path, '(' or '!'");
    return ParsePredicate();
  }

  Result<Node> ParsePredicate() {
    Node n;
    n.column = Column();
    auto path = ParsePath();
    if (!path.ok()) return path.status();
    n.path = std::move(path).value();
    SkipSpace();
    static constexpr std::pair<std::string_view, CompareOp> kOps[] = {
        {"==", CompareOp::kEq}, {"!=", CompareOp::kNe}, {"<=", CompareOp::kLe},
        {">=", CompareOp::kGe}, {"<", CompareOp::kLt},  {">", CompareOp::kGt},
    };
    for (const auto& [text, op] : kOps) {
      if (Consume(text)) {
        n.kind = NodeKind::kCompare;
        n.op = op;
        SkipSpace();
        auto v = ParseLiteral();
        if (!v.ok()) return v.status();
        n.value = std::move(v).value();
        return n;
      }
    }
    if (Consume("^=")) {
      n.kind = NodeKind::kPrefix;
      SkipSpace();
      if (Peek() != '"') return Expected("a string after '^='");
      auto v = ParseLiteral();
      if (!v.ok()) return v.status();
      n.value = std::move(v).value();
      return n;
    }
    if (ConsumeWord("exists")) {
      n.kind = NodeKind::kExists;
      return n;
    }
    if (ConsumeWord("contains")) {
      n.kind = NodeKind::kContains;
      SkipSpace();
      auto v = ParseLiteral();
      if (!v.ok()) return v.status();
      n.value = std::move(v).value();
      return n;
    }
    if (ConsumeWord("in")) {
      n.kind = NodeKind::kIn;
      SkipSpace();
      if (Peek() != '[') return Expected("'[' after 'in'");
      const size_t list_start = pos_;
      auto v = ParseLiteral();
      if (!v.ok()) return v.status();
      const Value& list = v.value();
      if (list.array().size() > limits_.max_in_values) {
        return TooLarge(list_start,
                        "more than " + std::to_string(limits_.max_in_values) + " values in 'in'");
      }
      n.values = list.array();
      return n;
    }
    return Expected("an operator (==, !=, <, <=, >, >=, ^=, in, exists, contains)");
  }

  // path = segment { "." segment }
  Result<Path> ParsePath() {
    Path p;
    while (true) {
      const size_t seg_start = pos_;
      if (p.segments.size() == limits_.max_path_segments) {
        return TooLarge(seg_start, "field path longer than " +
                                       std::to_string(limits_.max_path_segments) + " keys");
      }
      std::string seg;
      if (Peek() == '`') {
        ++pos_;
        while (true) {
          if (AtEnd()) return ErrorAt(seg_start, "unterminated `quoted key`");
          const char c = t_[pos_];
          if (c == '`') {
            if (Peek(1) == '`') {
              seg.push_back('`');
              pos_ += 2;
              continue;
            }
            ++pos_;
            break;
          }
          const auto b = static_cast<unsigned char>(c);
          if (b < 0x20) return ErrorAt(pos_, "control character in a quoted key");
          if (b >= 0x80) {
            const size_t n = Utf8SequenceLength(t_.substr(pos_));
            if (n == 0) return ErrorAt(pos_, "invalid UTF-8 in a quoted key");
            seg.append(t_.substr(pos_, n));
            pos_ += n;
            continue;
          }
          seg.push_back(c);
          ++pos_;
        }
      } else if (IsNameChar(Peek())) {
        const bool digits = IsDigit(Peek());
        while (!AtEnd() && (digits ? IsDigit(t_[pos_]) : IsNameChar(t_[pos_]))) {
          seg.push_back(t_[pos_++]);
        }
        if (digits && IsNameChar(Peek())) {
          return ErrorAt(seg_start,
                         "a key that starts with a digit must be all digits or quoted "
                         "with backticks");
        }
      } else {
        return Expected("a key (a name, digits or a `quoted key`)");
      }
      if (seg.size() > limits_.max_segment_bytes) {
        return TooLarge(seg_start,
                        "key longer than " + std::to_string(limits_.max_segment_bytes) + " bytes");
      }
      p.segments.push_back(std::move(seg));
      if (Peek() != '.') return p;
      ++pos_;
    }
  }

  // ---- JSON literals ----
  Result<Value> ParseLiteral() {
    const char c = Peek();
    if (c == '"') {
      auto s = ParseString();
      if (!s.ok()) return s.status();
      return Value::Str(std::move(s).value());
    }
    if (c == '-' || IsDigit(c)) return ParseNumber();
    if (ConsumeWord("null")) return Value::Null();
    if (ConsumeWord("true")) return Value::Bool(true);
    if (ConsumeWord("false")) return Value::Bool(false);
    if (c == '[' || c == '{') {
      const size_t start = pos_;
      RETURN_IF_ERROR(Enter(start));
      auto v = c == '[' ? ParseArray() : ParseObject();
      if (!v.ok()) return v.status();
      --depth_;
      return v;
    }
    return Expected("a JSON value");
  }

  Result<Value> ParseArray() {
    ++pos_;  // '['
    Value::Array items;
    SkipSpace();
    if (Consume("]")) return Value::Arr(std::move(items));
    while (true) {
      SkipSpace();
      auto v = ParseLiteral();
      if (!v.ok()) return v.status();
      items.push_back(std::move(v).value());
      SkipSpace();
      if (Consume("]")) return Value::Arr(std::move(items));
      if (!Consume(",")) return Expected("',' or ']'");
    }
  }

  Result<Value> ParseObject() {
    ++pos_;  // '{'
    Value::Object members;
    SkipSpace();
    if (Consume("}")) return Value::Obj(std::move(members));
    while (true) {
      SkipSpace();
      if (Peek() != '"') return Expected("a string key");
      auto key = ParseString();
      if (!key.ok()) return key.status();
      SkipSpace();
      if (!Consume(":")) return Expected("':'");
      SkipSpace();
      auto v = ParseLiteral();
      if (!v.ok()) return v.status();
      members.emplace_back(std::move(key).value(), std::move(v).value());
      SkipSpace();
      if (Consume("}")) return Value::Obj(std::move(members));
      if (!Consume(",")) return Expected("',' or '}'");
    }
  }

  Result<uint32_t> ParseHex4() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = Peek();
      uint32_t d = 0;
      if (c >= '0' && c <= '9') {
        d = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        d = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        d = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return Expected("a hexadecimal digit");
      }
      v = v * 16 + d;
      ++pos_;
    }
    return v;
  }

  Result<std::string> ParseString() {
    const size_t start = pos_;
    ++pos_;  // '"'
    std::string out;
    while (true) {
      if (AtEnd()) return ErrorAt(start, "unterminated string");
      const char c = t_[pos_];
      const auto b = static_cast<unsigned char>(c);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (b < 0x20) return ErrorAt(pos_, "control character in a string (escape it)");
      if (b >= 0x80) {
        const size_t n = Utf8SequenceLength(t_.substr(pos_));
        if (n == 0) return ErrorAt(pos_, "invalid UTF-8 in a string");
        out.append(t_.substr(pos_, n));
        pos_ += n;
        continue;
      }
      if (c != '\\') {
        out.push_back(c);
        ++pos_;
        continue;
      }
      const size_t esc = pos_;
      ++pos_;
      switch (Peek()) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          ++pos_;
          auto hi = ParseHex4();
          if (!hi.ok()) return hi.status();
          uint32_t cp = hi.value();
          if (cp >= 0xDC00 && cp <= 0xDFFF) return ErrorAt(esc, "lone low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (!Consume("\\u")) return ErrorAt(esc, "high surrogate without its low half");
            const size_t low_at = pos_ - 2;
            auto lo = ParseHex4();
            if (!lo.ok()) return lo.status();
            if (lo.value() < 0xDC00 || lo.value() > 0xDFFF) {
              return ErrorAt(low_at, "expected a low surrogate");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo.value() - 0xDC00);
          }
          AppendUtf8(cp, &out);
          continue;  // pos_ is past the escape already
        }
        default:
          return Expected("an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
      }
      ++pos_;
    }
  }

  // JSON numbers: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  Result<Value> ParseNumber() {
    const size_t start = pos_;
    if (Peek() == '-') ++pos_;
    if (Peek() == '0') {
      ++pos_;
      if (IsDigit(Peek())) return ErrorAt(pos_ - 1, "a number cannot start with 0");
    } else if (IsDigit(Peek())) {
      while (IsDigit(Peek())) ++pos_;
    } else {
      return Expected("a digit");
    }
    bool integer = true;
    if (Peek() == '.') {
      integer = false;
      ++pos_;
      if (!IsDigit(Peek())) return Expected("a digit after '.'");
      while (IsDigit(Peek())) ++pos_;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      integer = false;
      ++pos_;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      if (!IsDigit(Peek())) return Expected("a digit in the exponent");
      while (IsDigit(Peek())) ++pos_;
    }
    const char* first = t_.data() + start;
    const char* last = t_.data() + pos_;
    if (integer) {
      int64_t i = 0;
      if (auto r = std::from_chars(first, last, i); r.ec == std::errc() && r.ptr == last) {
        return Value::Int(i);
      }
      uint64_t u = 0;
      if (auto r = std::from_chars(first, last, u); r.ec == std::errc() && r.ptr == last) {
        return Value::Num(Number::Uint(u));
      }
      // Beyond 64 bits: a double, like JSON parsers do.
    }
    double d = 0;
    const auto r = std::from_chars(first, last, d);
    if (r.ec != std::errc() || r.ptr != last) {
      return ErrorAt(start, "number out of the range of a double");
    }
    return Value::Double(d);
  }

  // ---- options ----
  Status ParseOptions(Query* q) {
    bool seen_limit = false;
    bool seen_sort = false;
    bool seen_fields = false;
    while (true) {
      SkipSpace();
      const size_t name_at = pos_;
      bool* seen = nullptr;
      std::string_view name;
      if (ConsumeWord("limit")) {
        seen = &seen_limit;
        name = "limit";
      } else if (ConsumeWord("sort")) {
        seen = &seen_sort;
        name = "sort";
      } else if (ConsumeWord("fields")) {
        seen = &seen_fields;
        name = "fields";
      } else {
        return Expected("an option (limit, sort, fields)");
      }
      if (*seen) return ErrorAt(name_at, "option '" + std::string(name) + "' given twice");
      *seen = true;
      SkipSpace();
      if (!Consume("=")) return Expected("'=' after '" + std::string(name) + "'");
      SkipSpace();
      if (name == "limit") {
        RETURN_IF_ERROR(ParseLimit(q));
      } else if (name == "sort") {
        RETURN_IF_ERROR(ParseSort(q));
      } else {
        RETURN_IF_ERROR(ParseFields(q));
      }
      SkipSpace();
      if (AtEnd()) return Status::Ok();
      if (!Consume("&")) return Expected("'&' or the end of the query");
    }
  }

  Status ParseLimit(Query* q) {
    const size_t start = pos_;
    if (!IsDigit(Peek())) return Expected("a positive integer");
    while (IsDigit(Peek())) ++pos_;
    uint64_t v = 0;
    const auto r = std::from_chars(t_.data() + start, t_.data() + pos_, v);
    if (r.ec != std::errc() || v == 0 || v > limits_.max_limit) {
      return ErrorAt(start, "limit must be between 1 and " + std::to_string(limits_.max_limit));
    }
    q->limit = v;
    return Status::Ok();
  }

  Status ParseSort(Query* q) {
    while (true) {
      SkipSpace();
      const size_t start = pos_;
      if (q->sort.size() == limits_.max_sort_keys) {
        return TooLarge(start, "more than " + std::to_string(limits_.max_sort_keys) + " sort keys");
      }
      SortKey k;
      if (Consume("-")) {
        k.descending = true;
      } else {
        (void)Consume("+");
      }
      auto p = ParsePath();
      if (!p.ok()) return p.status();
      k.path = std::move(p).value();
      q->sort.push_back(std::move(k));
      SkipSpace();
      if (!Consume(",")) return Status::Ok();
    }
  }

  Status ParseFields(Query* q) {
    while (true) {
      SkipSpace();
      if (q->fields.size() == limits_.max_fields) {
        return TooLarge(pos_, "more than " + std::to_string(limits_.max_fields) + " fields");
      }
      auto p = ParsePath();
      if (!p.ok()) return p.status();
      q->fields.push_back(std::move(p).value());
      SkipSpace();
      if (!Consume(",")) return Status::Ok();
    }
  }

  std::string_view t_;
  const ParseLimits& limits_;
  size_t pos_ = 0;
  uint32_t depth_ = 0;
};

}  // namespace

Result<Query> Parse(std::string_view text, const ParseLimits& limits) {
  if (text.size() > limits.max_query_bytes) {
    return Status::TooLarge("at column " + std::to_string(limits.max_query_bytes + 1) +
                            ": query longer than " + std::to_string(limits.max_query_bytes) +
                            " bytes");
  }
  return Parser(text, limits).ParseQuery();
}

Result<Value> ParseValue(std::string_view text, const ParseLimits& limits) {
  if (text.size() > limits.max_query_bytes) {
    return Status::TooLarge("at column " + std::to_string(limits.max_query_bytes + 1) +
                            ": value longer than " + std::to_string(limits.max_query_bytes) +
                            " bytes");
  }
  return Parser(text, limits).ParseSingleValue();
}

}  // namespace cairn::query
