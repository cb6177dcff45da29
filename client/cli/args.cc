#include "client/cli/args.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "client/cli/cli.h"
#include "common/config.h"

namespace cairn::cli {

std::optional<std::string> Args::Value(const std::string& flag) const {
  auto it = values.find(flag);
  if (it == values.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

Result<Args> ParseArgs(const std::vector<std::string>& words, const FlagSpec& spec) {
  Args out;
  auto in = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  bool flags_done = false;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (flags_done || w == "-" || w.empty() || w[0] != '-') {
      out.positional.push_back(w);
      continue;
    }
    if (w == "--") {
      flags_done = true;
      continue;
    }
    std::string name = w, value;
    bool inline_value = false;
    if (const size_t eq = w.find('='); w.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = w.substr(0, eq);
      value = w.substr(eq + 1);
      inline_value = true;
    }
    if (in(spec.with_value, name)) {
      if (!inline_value) {
        if (i + 1 >= words.size()) return Status::InvalidArgument(name + " needs a value");
        value = words[++i];
      }
      out.values[name].push_back(value);
    } else if (in(spec.without_value, name) && !inline_value) {
      out.switches[name] = true;
    } else {
      return Status::InvalidArgument("unknown option " + name);
    }
  }
  return out;
}

Result<Globals> TakeGlobals(std::vector<std::string>* words) {
  Globals g;
  std::vector<std::string> rest;
  for (size_t i = 0; i < words->size(); ++i) {
    const std::string& w = (*words)[i];
    if (w == "--") {  // everything after belongs to the command
      rest.insert(rest.end(), words->begin() + static_cast<std::ptrdiff_t>(i), words->end());
      break;
    }
    std::string name = w, value;
    bool inline_value = false;
    if (const size_t eq = w.find('='); w.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = w.substr(0, eq);
      value = w.substr(eq + 1);
      inline_value = true;
    }
    std::optional<std::string>* slot = nullptr;
    if (name == "--meta") slot = &g.meta;
    if (name == "--ca") slot = &g.ca;
    if (name == "--cert") slot = &g.cert;
    if (name == "--key") slot = &g.key;
    if (name == "--config") slot = &g.config;
    if (name == "--read-from") slot = &g.read_from;
    if (slot != nullptr || name == "--timeout") {
      if (!inline_value) {
        if (i + 1 >= words->size()) return Status::InvalidArgument(name + " needs a value");
        value = (*words)[++i];
      }
      if (slot != nullptr) {
        *slot = value;
      } else {
        ASSIGN_OR_RETURN(uint64_t t, ParseUint(value, "--timeout"));
        if (t < 1 || t > 86400) return Status::InvalidArgument("--timeout must be 1..86400 s");
        g.timeout_s = static_cast<int>(t);
      }
      continue;
    }
    if (w == "--help" || w == "-h") {
      g.help = true;
      continue;
    }
    rest.push_back(w);
  }
  *words = std::move(rest);
  return g;
}

Result<client::Options> ResolveOptions(const Globals& g) {
  std::vector<std::string> metaservers;
  std::string ca, cert, key;
  OptionSet set("cairn");
  set.List("metaservers", &metaservers, "every metaserver, host:port,...");
  set.String("tls_ca", &ca, "the cluster CA certificate (PEM)");
  set.String("tls_cert", &cert, "this client's certificate (PEM)");
  set.String("tls_key", &key, "this client's private key (PEM)");
  std::string path;
  bool must_exist = true;
  const char* env = std::getenv("CAIRN_CONFIG");  // NOLINT(concurrency-mt-unsafe)
  if (g.config) {
    path = *g.config;
  } else if (env != nullptr && *env != '\0') {
    path = env;
  } else if (const char* home = std::getenv("HOME"); home != nullptr) {  // NOLINT
    path = std::string(home) + "/.config/cairn/client.conf";
    must_exist = false;
  }
  if (!path.empty() && (must_exist || std::filesystem::exists(path))) {
    RETURN_IF_ERROR(set.LoadFile(path));
  }
  if (g.meta) {
    metaservers.clear();
    std::string s = *g.meta;
    size_t start = 0;
    while (start <= s.size()) {
      const size_t comma = std::min(s.find(',', start), s.size());
      if (comma > start) metaservers.push_back(s.substr(start, comma - start));
      start = comma + 1;
    }
  }
  if (g.ca) ca = *g.ca;
  if (g.cert) cert = *g.cert;
  if (g.key) key = *g.key;
  client::Options o;
  for (const std::string& m : metaservers) {
    Result<HostPort> hp = ParseHostPort(m);
    if (!hp.ok()) return hp.status().WithContext("metaserver '" + m + "'");
    o.metaservers.push_back(*hp);
  }
  if (o.metaservers.empty()) {
    return Status::InvalidArgument(
        "no metaserver: give --meta host:port or a configuration file (--config, CAIRN_CONFIG, "
        "~/.config/cairn/client.conf) with metaservers = host:port,...");
  }
  if (ca.empty() || cert.empty() || key.empty()) {
    return Status::InvalidArgument(
        "TLS files missing: give --ca, --cert and --key, or tls_ca, tls_cert and tls_key in the "
        "configuration file");
  }
  o.tls = {ca, cert, key};
  if (g.timeout_s) o.deadline_ms = *g.timeout_s * 1000;
  if (g.read_from) {
    if (*g.read_from == "primary") {
      o.read_from = client::ReadFrom::kPrimary;
    } else if (*g.read_from == "any") {
      o.read_from = client::ReadFrom::kAnyReplica;
    } else {
      return Status::InvalidArgument("--read-from must be primary or any, not '" + *g.read_from +
                                     "'");
    }
  }
  return o;
}

Result<uint64_t> ParseUint(const std::string& text, const std::string& what) {
  if (text.empty() || text.size() > 19 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Status::InvalidArgument(what + ": '" + text + "' is not a number");
  }
  return std::stoull(text);
}

int Fail(const std::string& what, const Status& s, const char* separator) {
  std::cerr << "cairn: " << what << (what.empty() ? "" : separator) << s.message() << "\n";
  switch (s.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kTimeout:
      return kExitUnreachable;
    default:
      return kExitFailed;
  }
}

int Usage(const std::string& message, const std::string& command) {
  std::cerr << "cairn: " << message << "\n"
            << "Try 'cairn " << (command.empty() ? "" : command + " ") << "--help'.\n";
  return kExitUsage;
}

}  // namespace cairn::cli
