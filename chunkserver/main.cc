// cairn-chunkserver --config FILE [--set key=value]... [--ready-file PATH] [--help]
//
// Thin: parses the command line and the options (chunk_server.h), starts the
// ChunkServer, tells systemd (READY=1 / STOPPING=1) and writes the bound
// port to --ready-file, then waits for SIGTERM or SIGINT and stops cleanly.
// Exit codes: 0 after a clean stop, 1 when the start failed, 2 for bad usage.
#include <signal.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "chunkserver/chunk_server.h"
#include "common/config.h"
#include "common/logging.h"

namespace {

using cairn::chunkserver::ChunkServer;
using cairn::chunkserver::ChunkServerOptions;

constexpr char kUsage[] =
    "usage: cairn-chunkserver --config FILE [--set key=value]... [--ready-file PATH] [--help]\n";

// Writes `text` to `path` atomically (temporary file, then rename).
bool WriteReadyFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text << "\n";
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  cairn::Logger log("chunkserver");
  ChunkServerOptions options;
  cairn::OptionSet set("cairn-chunkserver");
  options.Register(&set);

  std::string config;
  std::string ready_file;
  std::vector<std::string> overrides;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage << "\noptions (config file `key = value`, or --set key=value):\n"
                << set.Describe();
      return 0;
    }
    if ((arg == "--config" || arg == "--set" || arg == "--ready-file") && i + 1 < argc) {
      const std::string value = argv[++i];
      if (arg == "--config") config = value;
      if (arg == "--set") overrides.push_back(value);
      if (arg == "--ready-file") ready_file = value;
      continue;
    }
    std::cerr << "cairn-chunkserver: unexpected argument '" << arg << "'\n" << kUsage;
    return 2;
  }
  if (config.empty()) {
    std::cerr << "cairn-chunkserver: --config is required\n" << kUsage;
    return 2;
  }
  cairn::Status s = set.LoadFile(config);
  for (const std::string& o : overrides) {
    if (s.ok()) s = set.Override(o);
  }
  if (s.ok()) s = set.Finish();
  if (s.ok()) s = options.Validate();
  if (!s.ok()) {
    std::cerr << "cairn-chunkserver: " << s.ToString() << "\n";
    return 2;
  }
  cairn::LogLevel level;
  if (cairn::ParseLogLevel(options.log_level, &level)) cairn::SetLogLevel(level);
  LOG_INFO(log) << "options:\n" << set.Dump();

  // Signals are taken by sigwait below: block them before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  cairn::Result<std::unique_ptr<ChunkServer>> server = ChunkServer::Start(options, {});
  if (!server.ok()) {
    LOG_ERROR(log) << "cannot start: " << server.status().ToString();
    std::cerr << "cairn-chunkserver: cannot start: " << server.status().ToString() << "\n";
    return 1;
  }
  if (!ready_file.empty() && !WriteReadyFile(ready_file, std::to_string((*server)->port()))) {
    LOG_ERROR(log) << "cannot write the ready file " << ready_file;
  }
  sd_notify(0, "READY=1");
  LOG_INFO(log) << "ready on port " << (*server)->port();

  int sig = 0;
  sigwait(&sigs, &sig);
  LOG_INFO(log) << "signal " << sig << ": stopping";
  sd_notify(0, "STOPPING=1");
  s = (*server)->Stop();
  server->reset();
  LOG_INFO(log) << "stopped" << (s.ok() ? "" : " (final checkpoint failed)");
  return 0;
}
