// Runs a program as a child process and captures its output (cli_test,
// python_example_test).
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/common/test_pki.h"

extern char** environ;

namespace cairn::test {

struct ProcessResult {
  int code = -1;  // exit status; -1 if it did not exit normally
  std::string out, err;
};

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs argv[0] (a path) with standard input from `stdin_file` ("" =
// /dev/null). The environment is this process's minus CAIRN_CONFIG, with
// HOME set to an empty temporary directory, plus `env`.
inline ProcessResult RunProcess(std::vector<std::string> args, const std::string& stdin_file = "",
                                const std::vector<std::string>& env = {}) {
  TempDir tmp("cairn-run");
  const std::string out = tmp.path() + "/out", err = tmp.path() + "/err";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, stdin_file.empty() ? "/dev/null" : stdin_file.c_str(),
                                   O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    if (entry.rfind("CAIRN_CONFIG=", 0) != 0 && entry.rfind("HOME=", 0) != 0) envs.push_back(entry);
  }
  envs.push_back("HOME=" + tmp.path());  // no ~/.config/cairn/client.conf
  envs.insert(envs.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (std::string& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = 0;
  ProcessResult r;
  if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data()) == 0) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  posix_spawn_file_actions_destroy(&fa);
  r.out = Slurp(out);
  r.err = Slurp(err);
  return r;
}

}  // namespace cairn::test
