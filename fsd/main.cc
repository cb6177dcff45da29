// cairn-fsd [--config FILE] [--meta H:P,...] [--ca F --cert F --key F]
//           [-o opt[,opt]...] [-f] [--ready-file PATH] [--help] MOUNTPOINT
//
// Thin: resolves the client configuration like the `cairn` CLI, mounts the
// cluster with the libfuse low-level API (fuse_ops.h around fs.h), tells
// systemd READY=1 once mounted (and writes MOUNTPOINT to --ready-file), runs
// the multithreaded session loop until SIGTERM/SIGINT/SIGHUP or an unmount,
// then commits open writers and unmounts. A stale mount left by a killed
// fsd (ENOTCONN) is lazily unmounted first (fusermount3 -uz).
// Exit codes: 0 after a clean unmount, 1 when mounting failed, 64 usage.
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "client/cli/args.h"
#include "common/logging.h"
#include "fsd/fs.h"
#include "fsd/fuse_ops.h"
#include "fsd/options.h"

extern char** environ;

namespace {

constexpr int kExitUsage = 64;

constexpr char kUsage[] =
    "usage: cairn-fsd [--config FILE] [--meta H:P,...] [--ca F --cert F --key F]\n"
    "                 [-o opt[,opt]...] [-f] [--ready-file PATH] MOUNTPOINT\n"
    "\n"
    "cairn options (-o): entry_timeout=S (1), attr_timeout=S (1), timeout=S (30),\n"
    "  cache_mib=N (64), spill_mib=N (64), spill_dir=DIR (/var/tmp), prefetch=N (4),\n"
    "  log_level=debug|info|warn|error (warn). Others go to libfuse\n"
    "  (allow_other, default_permissions, ro, fsname=NAME, ...). See fsd/README.md.\n";

bool WriteReadyFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text << "\n";
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

// A mount point whose daemon died answers ENOTCONN: unmount it lazily.
void ClearStaleMount(const std::string& mountpoint, cairn::Logger& log) {
  struct stat st;
  if (::stat(mountpoint.c_str(), &st) == 0 || errno != ENOTCONN) return;
  LOG_WARN(log) << mountpoint << ": stale mount (a previous cairn-fsd died): fusermount3 -uz";
  const char* argv[] = {"fusermount3", "-uz", mountpoint.c_str(), nullptr};
  pid_t pid = 0;
  if (posix_spawnp(&pid, "fusermount3", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
    LOG_ERROR(log) << "cannot run fusermount3";
    return;
  }
  int status = 0;
  waitpid(pid, &status, 0);
}

}  // namespace

int main(int argc, char** argv) {
  cairn::Logger log("fsd");
  cairn::SetLogLevel(cairn::LogLevel::kWarn);
  if (const char* lv = std::getenv("CAIRN_LOG_LEVEL")) {  // NOLINT(concurrency-mt-unsafe)
    cairn::LogLevel level;
    if (cairn::ParseLogLevel(lv, &level)) cairn::SetLogLevel(level);
  }
  std::vector<std::string> words(argv + 1, argv + argc);
  cairn::Result<cairn::cli::Globals> g = cairn::cli::TakeGlobals(&words);
  if (!g.ok()) {
    std::cerr << "cairn-fsd: " << g.status().message() << "\n" << kUsage;
    return kExitUsage;
  }
  if (g->help) {
    std::cout << kUsage;
    return 0;
  }
  cairn::fsd::MountOptions mo;
  bool foreground = false;
  std::string ready_file, mountpoint;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w == "-f") {
      foreground = true;
    } else if (w == "-o" && i + 1 < words.size()) {
      cairn::Status s = cairn::fsd::ParseMountOptions(words[++i], &mo);
      if (!s.ok()) {
        std::cerr << "cairn-fsd: " << s.message() << "\n";
        return kExitUsage;
      }
    } else if (w.rfind("-o", 0) == 0 && w.size() > 2) {
      cairn::Status s = cairn::fsd::ParseMountOptions(w.substr(2), &mo);
      if (!s.ok()) {
        std::cerr << "cairn-fsd: " << s.message() << "\n";
        return kExitUsage;
      }
    } else if (w == "--ready-file" && i + 1 < words.size()) {
      ready_file = words[++i];
    } else if (!w.empty() && w[0] != '-' && mountpoint.empty()) {
      mountpoint = w;
    } else {
      std::cerr << "cairn-fsd: unexpected argument '" << w << "'\n" << kUsage;
      return kExitUsage;
    }
  }
  if (mountpoint.empty()) {
    std::cerr << "cairn-fsd: the mount point is missing\n" << kUsage;
    return kExitUsage;
  }
  if (!mo.log_level.empty()) {
    cairn::LogLevel level;
    if (cairn::ParseLogLevel(mo.log_level, &level)) cairn::SetLogLevel(level);
  }
  cairn::Result<cairn::client::Options> co = cairn::cli::ResolveOptions(*g);
  if (!co.ok()) {
    std::cerr << "cairn-fsd: " << co.status().message() << "\n";
    return kExitUsage;
  }
  co->deadline_ms = mo.timeout_s * 1000;
  co->call_timeout_ms = std::min(co->call_timeout_ms, co->deadline_ms);
  co->connect_timeout_ms = std::min(co->connect_timeout_ms, co->deadline_ms);
  signal(SIGPIPE, SIG_IGN);
  cairn::Result<std::unique_ptr<cairn::client::Client>> client = cairn::client::Client::Create(*co);
  if (!client.ok()) {
    std::cerr << "cairn-fsd: " << client.status().ToString() << "\n";
    return 1;
  }
  mo.fs.owner_uid = static_cast<uint32_t>(getuid());
  mo.fs.owner_gid = static_cast<uint32_t>(getgid());
  cairn::fsd::Fs fs(client->get(), mo.fs);

  ClearStaleMount(mountpoint, log);
  std::vector<std::string> fargs = {"cairn-fsd", "-o", "fsname=cairn,subtype=cairn"};
  for (const std::string& o : mo.fuse) {
    fargs.push_back("-o");
    fargs.push_back(o);
  }
  std::vector<char*> fargv;
  for (std::string& a : fargs) fargv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(fargv.size()), fargv.data());
  fuse_session* se =
      fuse_session_new(&args, &cairn::fsd::CairnFuseOps(), sizeof(fuse_lowlevel_ops), &fs);
  fuse_opt_free_args(&args);  // libfuse may have copied them (it did with -o)
  if (se == nullptr) {
    std::cerr << "cairn-fsd: bad fuse options\n";
    return kExitUsage;
  }
  if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, mountpoint.c_str()) != 0) {
    std::cerr << "cairn-fsd: cannot mount on " << mountpoint << "\n";
    fuse_session_destroy(se);
    return 1;
  }
  if (!foreground && fuse_daemonize(0) != 0) {
    fuse_session_unmount(se);
    fuse_session_destroy(se);
    return 1;
  }
  if (!ready_file.empty() && !WriteReadyFile(ready_file, mountpoint)) {
    LOG_ERROR(log) << "cannot write the ready file " << ready_file;
  }
  sd_notify(0, "READY=1");
  LOG_INFO(log) << "mounted on " << mountpoint;

  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, 16);
  fuse_loop_cfg_set_idle_threads(cfg, 4);
  const int rc = fuse_session_loop_mt(se, cfg);
  fuse_loop_cfg_destroy(cfg);
  sd_notify(0, "STOPPING=1");
  LOG_INFO(log) << "unmounting " << mountpoint;
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  const int failed = fs.CommitAll();
  if (failed > 0) LOG_ERROR(log) << failed << " open file(s) could not be uploaded at unmount";
  return rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
}
