#include "fsd/options.h"

#include <cstdlib>

namespace cairn::fsd {

namespace {

Result<double> Seconds(const std::string& key, const std::string& v) {
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (v.empty() || end == nullptr || *end != '\0' || d < 0 || d > 86400) {
    return Status::InvalidArgument("-o " + key + "=" + v + ": seconds expected (0..86400)");
  }
  return d;
}

Result<uint64_t> Count(const std::string& key, const std::string& v, uint64_t max) {
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || end == nullptr || *end != '\0' || n > max) {
    return Status::InvalidArgument("-o " + key + "=" + v + ": integer 0.." + std::to_string(max) +
                                   " expected");
  }
  return static_cast<uint64_t>(n);
}

}  // namespace

Status ParseMountOptions(const std::string& text, MountOptions* out) {
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    const std::string item = text.substr(pos, comma - pos);
    pos = comma + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    const std::string key = item.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (key == "entry_timeout") {
      ASSIGN_OR_RETURN(out->fs.entry_timeout_s, Seconds(key, value));
    } else if (key == "attr_timeout") {
      ASSIGN_OR_RETURN(out->fs.attr_timeout_s, Seconds(key, value));
    } else if (key == "timeout") {
      ASSIGN_OR_RETURN(uint64_t t, Count(key, value, 3600));
      if (t == 0) return Status::InvalidArgument("-o timeout must be at least 1 second");
      out->timeout_s = static_cast<int>(t);
    } else if (key == "cache_mib") {
      ASSIGN_OR_RETURN(uint64_t n, Count(key, value, 1u << 20));
      out->fs.cache_bytes = n << 20;
    } else if (key == "spill_mib") {
      ASSIGN_OR_RETURN(uint64_t n, Count(key, value, 1u << 20));
      out->fs.spill_bytes = n << 20;
    } else if (key == "spill_dir") {
      if (value.empty() || value[0] != '/') {
        return Status::InvalidArgument("-o spill_dir needs an absolute path");
      }
      out->fs.spill_dir = value;
    } else if (key == "prefetch") {
      ASSIGN_OR_RETURN(uint64_t n, Count(key, value, 64));
      out->fs.prefetch_blocks = static_cast<uint32_t>(n);
    } else if (key == "log_level") {
      if (value != "debug" && value != "info" && value != "warn" && value != "error") {
        return Status::InvalidArgument("-o log_level=" + value + ": debug|info|warn|error");
      }
      out->log_level = value;
    } else {
      out->fuse.push_back(item);
    }
  }
  return Status::Ok();
}

}  // namespace cairn::fsd
