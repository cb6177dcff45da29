// Command-line parsing for `cairn`: global options (anywhere on the line),
// per-command flags, the client configuration file, and how a Status becomes
// a message and an exit code.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "client/cairn.h"
#include "common/status.h"

namespace cairn::cli {

// What a command accepts: flags with a value and flags without, by name
// ("--range", "-o"). Repeated value flags keep every value.
struct FlagSpec {
  std::vector<std::string> with_value;
  std::vector<std::string> without_value;
};

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> values;
  std::map<std::string, bool> switches;

  bool Has(const std::string& flag) const {
    return switches.count(flag) != 0 || values.count(flag) != 0;
  }
  // The last value of `flag`, if given.
  std::optional<std::string> Value(const std::string& flag) const;
};

// Splits `words` by `spec`. InvalidArgument for an unknown flag or a
// missing value. "--" ends the flags; "-" alone is a positional.
Result<Args> ParseArgs(const std::vector<std::string>& words, const FlagSpec& spec);

// The global options, taken out of argv wherever they appear.
struct Globals {
  std::optional<std::string> meta;  // --meta host:port,...
  std::optional<std::string> ca, cert, key;
  std::optional<std::string> config;     // --config FILE
  std::optional<int> timeout_s;          // --timeout SECONDS
  std::optional<std::string> read_from;  // --read-from primary|any
  bool help = false;
};
Result<Globals> TakeGlobals(std::vector<std::string>* words);

// Client options from (lowest first) the configuration file and the global
// options. The file: --config, else $CAIRN_CONFIG (both must exist), else
// ~/.config/cairn/client.conf if it exists. Keys (common/config.h syntax):
// metaservers, tls_ca, tls_cert, tls_key.
Result<client::Options> ResolveOptions(const Globals& g);

// Parses an unsigned decimal integer; InvalidArgument naming `what`.
Result<uint64_t> ParseUint(const std::string& text, const std::string& what);

// Prints "cairn: <what><separator><message>" and returns the exit code for
// `s`: kExitUnreachable for Unavailable and Timeout, else kExitFailed.
int Fail(const std::string& what, const Status& s, const char* separator = ": ");
// Prints "cairn: <message>" and a hint to use --help; returns kExitUsage.
int Usage(const std::string& message, const std::string& command = "");

}  // namespace cairn::cli
