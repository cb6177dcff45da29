#include "common/config.h"

#include <charconv>
#include <cmath>
#include <sstream>

#include "common/disk.h"

namespace cairn {
namespace {

constexpr uint64_t kMaxConfigBytes = 1 << 20;

// 'text' (built by appending: GCC 12 at -O3 warns falsely about
// "literal" + std::string).
std::string Quoted(std::string_view text) {
  std::string q;
  q.reserve(text.size() + 2);
  q += '\'';
  q.append(text);
  q += '\'';
  return q;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

Result<int64_t> ParseInt(std::string_view v) {
  int64_t out = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || ptr != v.data() + v.size() || v.empty()) {
    return Status::InvalidArgument(Quoted(v) + " is not an integer");
  }
  return out;
}

std::vector<std::string> SplitList(std::string_view v) {
  std::vector<std::string> out;
  while (true) {
    size_t comma = v.find(',');
    std::string_view item = Trim(v.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  return out;
}

std::string JoinList(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& i : items) {
    if (!out.empty()) out += ",";
    out += i;
  }
  return out;
}

}  // namespace

void OptionSet::String(std::string name, std::string* out, std::string description, bool required) {
  Option o;
  o.name = std::move(name);
  o.description = std::move(description);
  o.default_text = *out;
  o.required = required;
  o.parse = [out](std::string_view v) {
    *out = std::string(v);
    return Status::Ok();
  };
  o.show = [out] { return *out; };
  options_.push_back(std::move(o));
}

void OptionSet::Int(std::string name, int64_t* out, std::string description, int64_t min,
                    int64_t max) {
  Option o;
  o.name = std::move(name);
  o.description =
      std::move(description) + " (" + std::to_string(min) + ".." + std::to_string(max) + ")";
  o.default_text = std::to_string(*out);
  o.parse = [out, min, max](std::string_view v) -> Status {
    ASSIGN_OR_RETURN(int64_t x, ParseInt(v));
    if (x < min || x > max) {
      return Status::InvalidArgument(std::to_string(x) + " is outside " + std::to_string(min) +
                                     ".." + std::to_string(max));
    }
    *out = x;
    return Status::Ok();
  };
  o.show = [out] { return std::to_string(*out); };
  options_.push_back(std::move(o));
}

void OptionSet::Bool(std::string name, bool* out, std::string description) {
  Option o;
  o.name = std::move(name);
  o.description = std::move(description) + " (true/false)";
  o.default_text = *out ? "true" : "false";
  o.parse = [out](std::string_view v) -> Status {
    if (v == "true" || v == "yes" || v == "1" || v == "on") {
      *out = true;
    } else if (v == "false" || v == "no" || v == "0" || v == "off") {
      *out = false;
    } else {
      return Status::InvalidArgument(Quoted(v) + " is not true or false");
    }
    return Status::Ok();
  };
  o.show = [out] { return std::string(*out ? "true" : "false"); };
  options_.push_back(std::move(o));
}

void OptionSet::Double(std::string name, double* out, std::string description, double min,
                       double max) {
  Option o;
  o.name = std::move(name);
  std::ostringstream range;
  range << " (" << min << ".." << max << ")";
  o.description = std::move(description) + range.str();
  std::ostringstream def;
  def << *out;
  o.default_text = def.str();
  o.parse = [out, min, max](std::string_view v) -> Status {
    std::string s(v);
    char* end = nullptr;
    double x = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(x)) {
      return Status::InvalidArgument(Quoted(s) + " is not a number");
    }
    if (x < min || x > max) return Status::InvalidArgument(Quoted(s) + " is out of range");
    *out = x;
    return Status::Ok();
  };
  o.show = [out] {
    std::ostringstream os;
    os << *out;
    return os.str();
  };
  options_.push_back(std::move(o));
}

void OptionSet::List(std::string name, std::vector<std::string>* out, std::string description,
                     bool required) {
  Option o;
  o.name = std::move(name);
  o.description = std::move(description) + " (comma-separated)";
  o.default_text = JoinList(*out);
  o.required = required;
  o.parse = [out](std::string_view v) {
    *out = SplitList(v);
    return Status::Ok();
  };
  o.show = [out] { return JoinList(*out); };
  options_.push_back(std::move(o));
}

void OptionSet::Bytes(std::string name, uint64_t* out, std::string description, uint64_t min,
                      uint64_t max) {
  Option o;
  o.name = std::move(name);
  o.description = std::move(description) + " (bytes; K, M, G, T suffixes)";
  o.default_text = std::to_string(*out);
  o.parse = [out, min, max](std::string_view v) -> Status {
    uint64_t mult = 1;
    std::string_view digits = v;
    if (!digits.empty()) {
      switch (digits.back()) {
        case 'K':
        case 'k':
          mult = 1ull << 10;
          break;
        case 'M':
        case 'm':
          mult = 1ull << 20;
          break;
        case 'G':
        case 'g':
          mult = 1ull << 30;
          break;
        case 'T':
        case 't':
          mult = 1ull << 40;
          break;
        default:
          break;
      }
      if (mult != 1) digits.remove_suffix(1);
    }
    uint64_t x = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), x);
    if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size()) {
      return Status::InvalidArgument(Quoted(v) + " is not a size");
    }
    if (x > max / mult || x * mult < min || x * mult > max) {
      return Status::InvalidArgument(Quoted(v) + " is outside " + std::to_string(min) + ".." +
                                     std::to_string(max) + " bytes");
    }
    *out = x * mult;
    return Status::Ok();
  };
  o.show = [out] { return std::to_string(*out); };
  options_.push_back(std::move(o));
}

OptionSet::Option* OptionSet::Find(std::string_view name) {
  for (Option& o : options_) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

Status OptionSet::Apply(std::string_view key, std::string_view value, const std::string& where,
                        bool from_file) {
  Option* o = Find(key);
  if (o == nullptr) {
    return Status::InvalidArgument(where + ": unknown option '" + std::string(key) + "' for " +
                                   program_ + " (see --help)");
  }
  if (from_file) {
    for (const std::string& seen : seen_in_file_) {
      if (seen == key) {
        return Status::InvalidArgument(where + ": option '" + std::string(key) +
                                       "' is given twice");
      }
    }
    seen_in_file_.emplace_back(key);
  }
  Status s = o->parse(value);
  if (!s.ok()) {
    return Status::InvalidArgument(where + ": " + std::string(key) + ": " + s.message());
  }
  o->set = true;
  return Status::Ok();
}

Status OptionSet::LoadFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::vector<std::byte> bytes,
                   ReadWholeFile(PosixDiskInstance(), path, kMaxConfigBytes));
  return LoadText(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                  path);
}

Status OptionSet::LoadText(std::string_view text, const std::string& source) {
  int line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    line = Trim(line);
    if (line.empty() || line.front() == '#') continue;
    const std::string where = source + ":" + std::to_string(line_no);
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      return Status::InvalidArgument(where + ": expected 'key = value', got '" + std::string(line) +
                                     "'");
    }
    std::string_view key = Trim(line.substr(0, eq));
    if (key.empty()) return Status::InvalidArgument(where + ": missing option name before '='");
    RETURN_IF_ERROR(Apply(key, Trim(line.substr(eq + 1)), where, /*from_file=*/true));
  }
  return Status::Ok();
}

Status OptionSet::Override(std::string_view assignment) {
  size_t eq = assignment.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return Status::InvalidArgument("--set expects key=value, got '" + std::string(assignment) +
                                   "'");
  }
  return Apply(Trim(assignment.substr(0, eq)), Trim(assignment.substr(eq + 1)), "--set",
               /*from_file=*/false);
}

Status OptionSet::Finish() const {
  for (const Option& o : options_) {
    if (o.required && !o.set) {
      return Status::InvalidArgument(program_ + ": option '" + o.name +
                                     "' is required: " + o.description);
    }
  }
  return Status::Ok();
}

std::string OptionSet::Dump() const {
  std::string out;
  for (const Option& o : options_) out += o.name + " = " + o.show() + "\n";
  return out;
}

std::string OptionSet::Describe() const {
  std::string out;
  for (const Option& o : options_) {
    out += "  " + o.name + (o.required ? " (required)" : " = " + o.default_text) + "\n      " +
           o.description + "\n";
  }
  return out;
}

Result<HostPort> ParseHostPort(std::string_view text) {
  text = Trim(text);
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::InvalidArgument(Quoted(text) + " is not host:port");
  }
  std::string_view host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  Result<int64_t> port = ParseInt(text.substr(colon + 1));
  if (!port.ok() || *port < 1 || *port > 65535) {
    return Status::InvalidArgument(Quoted(text) + ": port must be 1..65535");
  }
  return HostPort{std::string(host), static_cast<int>(*port)};
}

}  // namespace cairn
