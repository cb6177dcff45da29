// cairn-metaserver --config FILE [--set key=value]... [--ready-file PATH] [--help]
//
// Parses flags and the config file, starts a MetaServer (meta_server.h),
// tells systemd READY=1 once it serves and knows the leader, writes the bound
// port to --ready-file, and on SIGTERM or SIGINT says STOPPING=1, resigns
// leadership, stops and exits 0. Exit 1 for a bad configuration or a failed
// start, 2 for bad flags.
#include <signal.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/logging.h"
#include "metaserver/meta_server.h"

namespace cairn::metaserver {
namespace {

constexpr char kUsage[] =
    "usage: cairn-metaserver --config FILE [--set key=value]... [--ready-file PATH] [--help]\n";

// Writes `text` to `path` through a temporary file and a rename, so a reader
// never sees a partial file.
Status WriteReadyFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text << "\n";
    out.close();
    if (!out) return Status::IOError("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return Status::FromErrno(errno, "rename " + tmp);
  return Status::Ok();
}

int Main(int argc, char** argv) {
  std::string config;
  std::string ready_file;
  std::vector<std::string> overrides;
  bool help = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        std::cerr << "cairn-metaserver: " << flag << " needs a value\n" << kUsage;
        return nullptr;
      }
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      help = true;
    } else if (arg == "--config") {
      const char* v = value("--config");
      if (v == nullptr) return 2;
      config = v;
    } else if (arg == "--set") {
      const char* v = value("--set");
      if (v == nullptr) return 2;
      overrides.emplace_back(v);
    } else if (arg == "--ready-file") {
      const char* v = value("--ready-file");
      if (v == nullptr) return 2;
      ready_file = v;
    } else {
      std::cerr << "cairn-metaserver: unknown argument '" << arg << "'\n" << kUsage;
      return 2;
    }
  }
  MetaServerOptions options;
  OptionSet set("cairn-metaserver");
  RegisterOptions(&set, &options);
  if (help) {
    std::cout << kUsage << "\nOptions (config file `key = value`, or --set key=value):\n"
              << set.Describe();
    return 0;
  }
  if (config.empty()) {
    std::cerr << "cairn-metaserver: --config FILE is required\n" << kUsage;
    return 2;
  }

  Status s = set.LoadFile(config);
  for (const std::string& o : overrides) {
    if (s.ok()) s = set.Override(o);
  }
  if (s.ok()) s = set.Finish();
  if (s.ok()) s = options.Validate();
  if (!s.ok()) {
    std::cerr << "cairn-metaserver: bad configuration: " << s.ToString() << "\n";
    return 1;
  }
  LogLevel level = LogLevel::kInfo;
  ParseLogLevel(options.log_level, &level);
  SetLogLevel(level);
  Logger log("metaserver", options.name);
  LOG_INFO(log) << "starting with\n" << set.Dump();

  // Every thread inherits the blocked set; only sigwait below takes them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Result<std::unique_ptr<MetaServer>> server = MetaServer::Start(options);
  if (!server.ok()) {
    LOG_ERROR(log) << "cannot start: " << server.status().ToString();
    std::cerr << "cairn-metaserver: cannot start: " << server.status().ToString() << "\n";
    return 1;
  }
  // Readiness: serving, and either leading or knowing the leader (followers
  // redirect usefully). Not fatal when the store is slow: we serve anyway.
  Status elected = (*server)->WaitForElection(std::chrono::seconds(options.election_ttl_s + 5));
  if (!elected.ok()) LOG_WARN(log) << "ready without a known leader: " << elected.ToString();
  if (!ready_file.empty()) {
    Status w = WriteReadyFile(ready_file, std::to_string((*server)->port()));
    if (!w.ok()) {
      LOG_ERROR(log) << w.ToString();
      (*server)->Stop();
      return 1;
    }
  }
  const std::string status = "STATUS=serving on " + (*server)->advertise();
  sd_notify(0, ("READY=1\n" + status).c_str());
  LOG_INFO(log) << "ready";

  int sig = 0;
  while (sigwait(&signals, &sig) != 0) {
  }
  LOG_INFO(log) << "signal " << strsignal(sig) << ": stopping";
  sd_notify(0, "STOPPING=1");
  (*server)->Stop();
  return 0;
}

}  // namespace
}  // namespace cairn::metaserver

int main(int argc, char** argv) { return cairn::metaserver::Main(argc, argv); }
