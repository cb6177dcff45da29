// Typed daemon configuration (STYLE.md rule 12): one options struct per
// daemon; each option is registered once with its description, default and
// bounds, read from a `key = value` file, validated at start and logged once.
//
// File syntax: one `key = value` per line; `#` starts a comment line; blank
// lines are ignored; surrounding spaces are trimmed; a value may be empty.
// A key given twice, an unknown key or a value that does not parse is an
// InvalidArgument naming the file, line and key. Command-line overrides
// (`--set key=value`) are applied after the file.
//
//   struct ChunkServerOptions { std::string name; int64_t port = 7100; ... };
//   OptionSet set("cairn-chunkserver");
//   set.String("name", &o.name, "node name; must match the certificate", Required());
//   set.Int("port", &o.port, "TCP port", 1, 65535);
//   RETURN_IF_ERROR(set.LoadFile(path));
//   RETURN_IF_ERROR(set.Override("port=7101"));
//   RETURN_IF_ERROR(set.Finish());          // required options present
//   LOG_INFO << set.Dump();
//
// Not thread-safe; use from the daemon's main thread at start.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cairn {

class OptionSet {
 public:
  explicit OptionSet(std::string program) : program_(std::move(program)) {}
  OptionSet(const OptionSet&) = delete;
  OptionSet& operator=(const OptionSet&) = delete;

  // Registers an option. `out` is borrowed and keeps its current value as the
  // default. `required` options must be set by the file or an override.
  void String(std::string name, std::string* out, std::string description, bool required = false);
  void Int(std::string name, int64_t* out, std::string description, int64_t min, int64_t max);
  void Bool(std::string name, bool* out, std::string description);  // true/false/yes/no/1/0
  void Double(std::string name, double* out, std::string description, double min, double max);
  // Comma-separated list; empty items are dropped; spaces trimmed.
  void List(std::string name, std::vector<std::string>* out, std::string description,
            bool required = false);
  // Byte sizes: a number with an optional K, M, G or T suffix (powers of 1024).
  void Bytes(std::string name, uint64_t* out, std::string description, uint64_t min, uint64_t max);

  // Parses and applies a file (NotFound if missing).
  Status LoadFile(const std::string& path);
  // Parses and applies text; `source` names it in errors.
  Status LoadText(std::string_view text, const std::string& source);
  // One `key=value` override.
  Status Override(std::string_view assignment);
  // InvalidArgument if a required option was never set.
  Status Finish() const;

  // "key = value" for every option, one a line (for the start-up log).
  std::string Dump() const;
  // Every option with its default and description (for --help and docs).
  std::string Describe() const;

 private:
  struct Option {
    std::string name;
    std::string description;
    std::string default_text;
    bool required = false;
    bool set = false;
    std::function<Status(std::string_view)> parse;
    std::function<std::string()> show;
  };
  Status Apply(std::string_view key, std::string_view value, const std::string& where,
               bool from_file);
  Option* Find(std::string_view name);

  std::string program_;
  std::vector<Option> options_;
  std::vector<std::string> seen_in_file_;
};

// Parses "host:port" (IPv4 literal or name; port 1..65535).
struct HostPort {
  std::string host;
  int port = 0;
  std::string ToString() const { return host + ":" + std::to_string(port); }
  bool operator==(const HostPort&) const = default;
};
Result<HostPort> ParseHostPort(std::string_view text);

}  // namespace cairn
