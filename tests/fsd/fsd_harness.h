// A real cairn-fsd mount for tests: the daemon started as a child process
// (-f, --ready-file) on a fresh temporary mount point against a Cluster from
// tests/integration/cluster_harness.h.
//
// Cleanup, also when a test fails: the destructor sends SIGTERM to the
// daemon BY PID (SIGKILL after a grace period), then `fusermount3 -u` and,
// if the mount is still there, `fusermount3 -uz`; only then is the empty
// mount point removed (rmdir, never a recursive removal: a recursive
// removal through a live mount would delete documents).
//
// Thread-safety: none; drive it from the test's main thread.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster_harness.h"

namespace cairn::test {

inline bool IsMounted(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, dev, root, mp;
    ls >> id >> parent >> dev >> root >> mp;
    if (mp == path) return true;
  }
  return false;
}

class FsdMount {
 public:
  // Starts cairn-fsd on a new mount point with `-o` options `opts`.
  static Result<std::unique_ptr<FsdMount>> Start(Cluster& cluster,
                                                 const std::vector<std::string>& opts = {}) {
    std::unique_ptr<FsdMount> m(new FsdMount());
    char tmpl[] = "/tmp/cairn-fsd-mnt-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return Status::IOError("mkdtemp");
    m->path_ = tmpl;
    m->state_ = m->path_ + ".state";
    ::mkdir(m->state_.c_str(), 0700);
    ASSIGN_OR_RETURN(m->config_, cluster.WriteClientConfig("fsd", cluster.UserTls()));
    m->opts_ = opts;
    RETURN_IF_ERROR(m->Launch());
    return m;
  }

  ~FsdMount() {
    Stop();
    ::rmdir(path_.c_str());
    std::remove((state_ + "/ready").c_str());
    std::remove((state_ + "/fsd.log").c_str());
    ::rmdir(state_.c_str());
  }
  FsdMount(const FsdMount&) = delete;
  FsdMount& operator=(const FsdMount&) = delete;

  const std::string& path() const { return path_; }
  pid_t pid() const { return pid_; }
  std::string Log() const { return Cluster::LogTail(state_ + "/fsd.log", 6000); }

  // SIGKILL (the mount is left dead: ENOTCONN).
  void Kill9() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
      pid_ = -1;
    }
  }
  // Starts the daemon again on the same mount point (it clears a stale mount).
  Status Restart() {
    if (pid_ > 0) return Status::FailedPrecondition("fsd still running");
    return Launch();
  }
  // The daemon was reaped by the caller: no longer ours to stop.
  void Forget() { pid_ = -1; }
  // SIGTERM and wait (10 s at most); returns the wait status, -1 if it had
  // to be killed. Does not unmount: the daemon must have done it.
  int Terminate() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int st = 0;
    for (int i = 0; i < 200; ++i) {
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return st;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    Kill9();
    return -1;
  }
  // SIGTERM, then SIGKILL after 10 s; unmounts whatever is left.
  void Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st = 0;
      bool gone = false;
      for (int i = 0; i < 200 && !gone; ++i) {
        gone = ::waitpid(pid_, &st, WNOHANG) == pid_;
        if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (!gone) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &st, 0);
      }
      pid_ = -1;
    }
    if (IsMounted(path_)) (void)RunCommand({"/usr/bin/fusermount3", "-u", path_});
    if (IsMounted(path_)) (void)RunCommand({"/usr/bin/fusermount3", "-uz", path_});
  }

 private:
  FsdMount() = default;

  Status Launch() {
    const char* env_bin = std::getenv("CAIRN_FSD_BIN");  // NOLINT(concurrency-mt-unsafe)
    const std::string bin = env_bin != nullptr ? env_bin : CAIRN_FSD_BIN;
    std::vector<std::string> argv = {bin,  "--config",     config_,
                                     "-f", "--ready-file", state_ + "/ready"};
    for (const std::string& o : opts_) {
      argv.push_back("-o");
      argv.push_back(o);
    }
    argv.push_back(path_);
    std::remove((state_ + "/ready").c_str());
    const std::string log = state_ + "/fsd.log";
    const pid_t pid = ::fork();
    if (pid < 0) return Status::IOError("fork");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      const int null = ::open("/dev/null", O_RDONLY);
      if (null >= 0) ::dup2(null, 0);
      std::vector<char*> args;
      for (std::string& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    pid_ = pid;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      struct stat st;
      if (::stat((state_ + "/ready").c_str(), &st) == 0 && IsMounted(path_)) return Status::Ok();
      int ws = 0;
      if (::waitpid(pid_, &ws, WNOHANG) == pid_) {
        pid_ = -1;
        return Status::Internal("cairn-fsd exited at start: " + Log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return Status::Timeout("cairn-fsd not mounted after 30 s: " + Log());
  }

  std::string path_, state_, config_;
  std::vector<std::string> opts_;
  pid_t pid_ = -1;
};

}  // namespace cairn::test
