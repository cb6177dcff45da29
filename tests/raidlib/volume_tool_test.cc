// End-to-end tests of the cairn-volume binary: real process, real directories
// under /tmp, exit codes and output checked. The data is appended through the
// Volume API in the test process while the tool is not running.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/random.h"
#include "raidlib/endian.h"
#include "raidlib/volume.h"
#include "raidlib/volume_format.h"
#include "raidlib/volume_tool.h"

extern char** environ;

namespace cairn::raidlib {
namespace {

namespace fs = std::filesystem;

struct ToolRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t CountOf(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

class VolumeToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = "/tmp/cairn-volume-tool-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << "mkdtemp: " << std::strerror(errno);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);  // also after a failed assertion
  }

  std::string Path(const std::string& name) const { return root_ + "/" + name; }
  std::vector<std::string> Dirs(int n, const std::string& prefix = "d") const {
    std::vector<std::string> dirs;
    for (int i = 0; i < n; ++i) dirs.push_back(Path(prefix + std::to_string(i)));
    return dirs;
  }

  // A started tool process; its output goes to files.
  struct Spawned {
    pid_t pid = -1;
    std::string out_path;
    std::string err_path;
  };

  // Starts the real binary with `args` (argv[1..]).
  Spawned Spawn(const std::vector<std::string>& args) {
    Spawned sp;
    sp.out_path = Path("stdout." + std::to_string(runs_));
    sp.err_path = Path("stderr." + std::to_string(runs_));
    ++runs_;
    std::vector<std::string> argv_s = {CAIRN_VOLUME_BIN};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, sp.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, 2, sp.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    int rc = ::posix_spawn(&sp.pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn " << argv[0] << ": " << std::strerror(rc);
      sp.pid = -1;
    }
    return sp;
  }

  // Waits for the process to end; a death by signal is a test failure unless
  // `killed` says the test sent it.
  ToolRun Wait(const Spawned& sp, bool killed = false) {
    ToolRun r;
    if (sp.pid < 0) return r;
    int status = 0;
    while (::waitpid(sp.pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) {
      r.exit_code = WEXITSTATUS(status);
    } else if (!killed) {
      ADD_FAILURE() << "cairn-volume died: status " << status;
    }
    r.out = ReadFileText(sp.out_path);
    r.err = ReadFileText(sp.err_path);
    return r;
  }

  ToolRun Run(const std::vector<std::string>& args) { return Wait(Spawn(args)); }

  static std::vector<std::string> With(std::vector<std::string> head,
                                       const std::vector<std::string>& dirs) {
    head.insert(head.end(), dirs.begin(), dirs.end());
    return head;
  }

  std::string root_;
  int runs_ = 0;
};

std::string Describe(const ToolRun& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout\n" + r.out + "--- stderr\n" + r.err;
}

std::vector<std::byte> RandomBytes(Random& rng, size_t n) {
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng.Next());
  return out;
}

// Appends `records` random records through the library, each synced (so every
// stripe but the last is vouched for by a later one and the open-time check
// leaves finding damage to scrub); returns all bytes of the log.
std::vector<std::byte> AppendData(const std::vector<std::string>& dirs, uint64_t seed,
                                  int records) {
  VolumeOptions o;
  o.disk_dirs = dirs;
  auto vol = Volume::Open(o);
  EXPECT_TRUE(vol.ok()) << vol.status().ToString();
  if (!vol.ok()) return {};
  Random rng(seed);
  std::vector<std::byte> model;
  for (int i = 0; i < records; ++i) {
    std::vector<std::byte> rec = RandomBytes(rng, 1 + rng.Uniform(20000));
    auto off = (*vol)->Append(rec);
    EXPECT_TRUE(off.ok()) << off.status().ToString();
    if (!off.ok()) return {};
    EXPECT_EQ(*off, model.size());
    model.insert(model.end(), rec.begin(), rec.end());
    Status s = (*vol)->Sync();
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return {};
  }
  return model;
}

void ExpectLogEquals(const std::vector<std::string>& dirs, const std::vector<std::byte>& model) {
  VolumeOptions o;
  o.disk_dirs = dirs;
  o.read_only = true;
  auto vol = Volume::Open(o);
  ASSERT_TRUE(vol.ok()) << vol.status().ToString();
  ASSERT_EQ((*vol)->end_offset(), model.size());
  std::vector<std::byte> got(model.size());
  Status s = (*vol)->Read(0, got);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(got == model) << "log contents differ from what was appended";
}

// The first segment file (lowest id) of `dir` that starts with a unit header;
// empty if none.
std::string FirstUnitFile(const std::string& dir) {
  std::vector<std::string> segs;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(kSegmentPrefix, 0) == 0) segs.push_back(e.path().string());
  }
  std::sort(segs.begin(), segs.end());
  for (const std::string& path : segs) {
    std::ifstream in(path, std::ios::binary);
    std::byte magic[8];
    if (in.read(reinterpret_cast<char*>(magic), sizeof(magic)) &&
        GetLE<uint64_t>(magic) == kUnitMagic) {
      return path;
    }
  }
  return "";
}

// Flips one payload byte of the unit at the start of `seg_path`. The header
// length is read from the unit header itself (unit_field::kHeaderLen).
void CorruptFirstUnitPayload(const std::string& seg_path) {
  std::fstream f(seg_path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.is_open()) << seg_path;
  std::byte header[unit_field::kHeaderLen + 4];
  f.read(reinterpret_cast<char*>(header), sizeof(header));
  ASSERT_TRUE(f.good());
  const uint32_t header_len = GetLE<uint32_t>(header + unit_field::kHeaderLen);
  ASSERT_GT(header_len, 0u);
  ASSERT_EQ(header_len % kChunkSize, 0u);
  const auto pos = static_cast<std::streamoff>(header_len + 100);
  char c = 0;
  f.seekg(pos);
  f.read(&c, 1);
  ASSERT_TRUE(f.good());
  c = static_cast<char>(c ^ 0x5A);
  f.seekp(pos);
  f.write(&c, 1);
  ASSERT_TRUE(f.good());
}

TEST_F(VolumeToolTest, CreateInspectScrubReplaceRoundTrip) {
  const std::vector<std::string> dirs = Dirs(3);

  ToolRun r = Run(With({"create", "--max-unit-bytes", "4096", "--segment-bytes", "64K"}, dirs));
  ASSERT_EQ(r.exit_code, kExitOk) << Describe(r);
  EXPECT_NE(r.out.find("created volume"), std::string::npos) << Describe(r);

  r = Run(With({"inspect"}, dirs));
  ASSERT_EQ(r.exit_code, kExitOk) << Describe(r);
  for (const std::string& d : dirs) EXPECT_NE(r.out.find(d), std::string::npos) << Describe(r);
  EXPECT_EQ(CountOf(r.out, "healthy"), 3u) << Describe(r);

  r = Run(With({"inspect", "--json"}, dirs));
  ASSERT_EQ(r.exit_code, kExitOk) << Describe(r);
  ASSERT_GE(r.out.size(), 2u);
  EXPECT_EQ(r.out.front(), '{') << Describe(r);
  EXPECT_EQ(r.out.substr(r.out.size() - 2), "}\n") << Describe(r);
  EXPECT_EQ(CountOf(r.out, "\"state\":\"healthy\""), 3u) << Describe(r);
  for (const std::string& d : dirs) {
    EXPECT_NE(r.out.find("\"dir\":\"" + d + "\""), std::string::npos) << Describe(r);
  }

  const std::vector<std::byte> model = AppendData(dirs, /*seed=*/7, /*records=*/40);
  ASSERT_FALSE(model.empty());

  r = Run(With({"inspect"}, dirs));
  ASSERT_EQ(r.exit_code, kExitOk) << Describe(r);
  EXPECT_NE(r.out.find(std::to_string(model.size()) + " logical bytes"), std::string::npos)
      << Describe(r);

  // One flipped payload byte on disk 1: scrub finds it and repairs it.
  const std::string victim_file = FirstUnitFile(dirs[1]);
  ASSERT_FALSE(victim_file.empty()) << "no unit on disk 1";
  ASSERT_NO_FATAL_FAILURE(CorruptFirstUnitPayload(victim_file));
  r = Run(With({"scrub", "--dry-run"}, dirs));
  EXPECT_EQ(r.exit_code, kExitRepaired) << Describe(r);
  EXPECT_NE(r.out.find("problem:"), std::string::npos) << Describe(r);
  r = Run(With({"scrub"}, dirs));
  EXPECT_EQ(r.exit_code, kExitRepaired) << Describe(r);
  EXPECT_NE(r.out.find("problem:"), std::string::npos) << Describe(r);
  EXPECT_NE(r.err.find("scrub: "), std::string::npos) << Describe(r);  // progress line
  r = Run(With({"scrub"}, dirs));
  EXPECT_EQ(r.exit_code, kExitOk) << Describe(r);
  EXPECT_EQ(r.out.find("problem:"), std::string::npos) << Describe(r);

  // Lose disk 2 entirely.
  fs::remove_all(dirs[2]);
  r = Run(With({"inspect"}, dirs));
  ASSERT_EQ(r.exit_code, kExitOk) << Describe(r);
  EXPECT_EQ(CountOf(r.out, "healthy"), 2u) << Describe(r);
  EXPECT_NE(r.out.find("disk 2 is failed"), std::string::npos) << Describe(r);
  r = Run(With({"inspect", "--json"}, dirs));
  ASSERT_EQ(r.exit_code, kExitOk) << Describe(r);
  EXPECT_NE(r.out.find("{\"slot\":2,\"dir\":\"" + dirs[2] + "\",\"state\":\"failed\""),
            std::string::npos)
      << Describe(r);
  ExpectLogEquals(dirs, model);  // still readable, degraded

  r = Run(With({"replace", "--disk", "2"}, dirs));
  ASSERT_EQ(r.exit_code, kExitOk) << Describe(r);
  EXPECT_NE(r.out.find("disk 2 is healthy"), std::string::npos) << Describe(r);

  r = Run(With({"scrub"}, dirs));
  EXPECT_EQ(r.exit_code, kExitOk) << Describe(r);
  r = Run(With({"inspect"}, dirs));
  ASSERT_EQ(r.exit_code, kExitOk) << Describe(r);
  EXPECT_EQ(CountOf(r.out, "healthy"), 3u) << Describe(r);

  // The rebuilt disk carries its share: lose a different one and read all.
  fs::remove_all(dirs[0]);
  ExpectLogEquals(dirs, model);
}

TEST_F(VolumeToolTest, ReplaceIntoNewDirectory) {
  const std::vector<std::string> dirs = Dirs(4);
  ToolRun r = Run(With({"create", "--max-unit-bytes", "8K", "--segment-bytes=128K"}, dirs));
  ASSERT_EQ(r.exit_code, kExitOk) << Describe(r);
  const std::vector<std::byte> model = AppendData(dirs, /*seed=*/11, /*records=*/30);
  ASSERT_FALSE(model.empty());

  fs::remove_all(dirs[1]);
  const std::string fresh = Path("spare");
  r = Run(With({"replace", "--disk", "1", "--new-dir", fresh, "--rate", "0"}, dirs));
  ASSERT_EQ(r.exit_code, kExitOk) << Describe(r);

  std::vector<std::string> now = dirs;
  now[1] = fresh;
  r = Run(With({"inspect"}, now));
  ASSERT_EQ(r.exit_code, kExitOk) << Describe(r);
  EXPECT_EQ(CountOf(r.out, "healthy"), 4u) << Describe(r);
  EXPECT_NE(r.out.find(fresh), std::string::npos) << Describe(r);

  r = Run(With({"rebuild"}, now));
  EXPECT_EQ(r.exit_code, kExitOk) << Describe(r);
  EXPECT_NE(r.out.find("nothing to do"), std::string::npos) << Describe(r);

  fs::remove_all(dirs[3]);
  ExpectLogEquals(now, model);
}

// A replace killed mid-rebuild (SIGKILL) leaves the disk "rebuilding";
// inspect says so and `rebuild` finishes the job.
TEST_F(VolumeToolTest, RebuildFinishesAReplaceThatWasKilled) {
  const std::vector<std::string> dirs = Dirs(3);
  ASSERT_EQ(
      Run(With({"create", "--max-unit-bytes", "4096", "--segment-bytes", "64K"}, dirs)).exit_code,
      kExitOk);
  const std::vector<std::byte> model = AppendData(dirs, /*seed=*/5, /*records=*/20);
  ASSERT_FALSE(model.empty());
  fs::remove_all(dirs[0]);

  // 1 kB/s: the first rebuilt unit already sleeps for seconds.
  Spawned sp = Spawn(With({"replace", "--disk", "0", "--rate", "0.001"}, dirs));
  ASSERT_GT(sp.pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  // The line is printed after ReplaceDisk() returned, i.e. after the new
  // state was made durable.
  while (ReadFileText(sp.err_path).find("replace: rebuilding disk 0") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(sp.pid, SIGKILL);
  ToolRun killed = Wait(sp, /*killed=*/true);
  ASSERT_NE(killed.err.find("replace: rebuilding disk 0"), std::string::npos) << Describe(killed);
  ASSERT_EQ(killed.exit_code, -1) << "the replace finished before it was killed\n"
                                  << Describe(killed);

  ToolRun r = Run(With({"inspect"}, dirs));
  ASSERT_EQ(r.exit_code, kExitOk) << Describe(r);
  EXPECT_NE(r.out.find("rebuilding"), std::string::npos) << Describe(r);
  EXPECT_NE(r.out.find("interrupted"), std::string::npos) << Describe(r);
  r = Run(With({"inspect", "--json"}, dirs));
  EXPECT_NE(r.out.find("\"state\":\"rebuilding\""), std::string::npos) << Describe(r);

  r = Run(With({"rebuild"}, dirs));
  ASSERT_EQ(r.exit_code, kExitOk) << Describe(r);
  EXPECT_NE(r.out.find("disk 0 is healthy"), std::string::npos) << Describe(r);
  r = Run(With({"inspect"}, dirs));
  EXPECT_EQ(CountOf(r.out, "healthy"), 3u) << Describe(r);
  r = Run(With({"scrub"}, dirs));
  EXPECT_EQ(r.exit_code, kExitOk) << Describe(r);

  fs::remove_all(dirs[2]);
  ExpectLogEquals(dirs, model);
}

TEST_F(VolumeToolTest, ReplaceOfHealthyDiskFails) {
  const std::vector<std::string> dirs = Dirs(3);
  ASSERT_EQ(Run(With({"create"}, dirs)).exit_code, kExitOk);
  ToolRun r = Run(With({"replace", "--disk", "0"}, dirs));
  EXPECT_EQ(r.exit_code, kExitFailure) << Describe(r);
  EXPECT_NE(r.err.find("cairn-volume: replace disk 0: FailedPrecondition: "), std::string::npos)
      << Describe(r);
}

TEST_F(VolumeToolTest, CreateOnOneDiskWarnsLoudly) {
  ToolRun r = Run({"create", Path("only")});
  ASSERT_EQ(r.exit_code, kExitOk) << Describe(r);
  EXPECT_NE(r.err.find("NO REDUNDANCY"), std::string::npos) << Describe(r);
  r = Run({"inspect", Path("only")});
  EXPECT_EQ(r.exit_code, kExitOk) << Describe(r);
}

TEST_F(VolumeToolTest, InspectOnEmptyDirectoriesIsNoVolume) {
  const std::vector<std::string> dirs = Dirs(3);
  for (const std::string& d : dirs) fs::create_directory(d);
  ToolRun r = Run(With({"inspect"}, dirs));
  EXPECT_EQ(r.exit_code, kExitNoVolume) << Describe(r);
  EXPECT_NE(r.err.find("cairn-volume: open volume: NotFound: "), std::string::npos) << Describe(r);
  r = Run(With({"scrub"}, dirs));
  EXPECT_EQ(r.exit_code, kExitNoVolume) << Describe(r);
  r = Run({"inspect", Path("missing0"), Path("missing1")});
  EXPECT_EQ(r.exit_code, kExitNoVolume) << Describe(r);
}

TEST_F(VolumeToolTest, CreateRefusesBadOptionsAndFullDirectories) {
  ToolRun r = Run({"create", "--max-unit-bytes", "1000", Path("a"), Path("b")});
  EXPECT_EQ(r.exit_code, kExitUsage) << Describe(r);
  EXPECT_NE(r.err.find("max_unit_bytes"), std::string::npos) << Describe(r);

  const std::vector<std::string> dirs = Dirs(2);
  ASSERT_EQ(Run(With({"create"}, dirs)).exit_code, kExitOk);
  r = Run(With({"create"}, dirs));  // already a volume there
  EXPECT_EQ(r.exit_code, kExitUsage) << Describe(r);
  EXPECT_NE(r.err.find("not empty"), std::string::npos) << Describe(r);
}

TEST_F(VolumeToolTest, UsageErrorsExit64WithOneLineAndHint) {
  const std::string d = Path("d0");
  const std::vector<std::vector<std::string>> bad = {
      {},                                        // no command
      {"frobnicate", d},                         // unknown command
      {"--bogus"},                               // option before the command
      {"inspect"},                               // no directories
      {"inspect", "--bogus", d},                 // unknown flag
      {"inspect", "--json=yes", d},              // value for a boolean flag
      {"scrub", "--rate", "fast", d},            // non-numeric
      {"scrub", "--rate", "-3", d},              // negative
      {"scrub", "--rate"},                       // missing value
      {"scrub", "--dry-run", "--dry-run", d},    // twice
      {"create", "--max-unit-bytes", "12x", d},  // bad suffix
      {"create", "--segment-bytes", "", d},      // empty number
      {"replace", d},                            // --disk missing
      {"replace", "--disk", "one", d},           // non-numeric disk
      {"replace", "--disk", "-1", d},            // negative disk
      {"replace", "--disk", "5", d, d + "x"},    // out of range
      {"replace", "--disk"},                     // missing value
      {"rebuild", "--rate", "1e999", d},         // not finite
  };
  for (const auto& args : bad) {
    std::string cmdline;
    for (const auto& a : args) cmdline += " '" + a + "'";
    ToolRun r = Run(args);
    EXPECT_EQ(r.exit_code, kExitUsage) << cmdline << "\n" << Describe(r);
    if (args.empty()) continue;  // prints the whole usage
    ASSERT_FALSE(r.err.empty()) << cmdline;
    EXPECT_EQ(r.err.rfind("cairn-volume: ", 0), 0u) << cmdline << "\n" << Describe(r);
    EXPECT_EQ(CountOf(r.err, "\n"), 2u) << cmdline << "\n" << Describe(r);  // error + hint
    EXPECT_NE(r.err.find("--help"), std::string::npos) << cmdline << "\n" << Describe(r);
    EXPECT_TRUE(r.out.empty()) << cmdline << "\n" << Describe(r);
  }
  // Nothing was created by the failed commands.
  EXPECT_FALSE(fs::exists(d));
}

TEST_F(VolumeToolTest, HelpListsCommandsAndExitCodes) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--help"}, {"help"}, {"-h"}}) {
    ToolRun r = Run(args);
    EXPECT_EQ(r.exit_code, kExitOk) << Describe(r);
    for (const char* word :
         {"create", "inspect", "scrub", "replace", "rebuild", "64", "66", "70"}) {
      EXPECT_NE(r.out.find(word), std::string::npos) << word << "\n" << Describe(r);
    }
  }
  for (const char* cmd : {"create", "inspect", "scrub", "replace", "rebuild"}) {
    ToolRun r = Run({cmd, "--help"});
    EXPECT_EQ(r.exit_code, kExitOk) << Describe(r);
    EXPECT_NE(r.out.find(std::string("Usage: cairn-volume ") + cmd), std::string::npos)
        << Describe(r);
    EXPECT_NE(r.out.find("Exit codes"), std::string::npos) << Describe(r);
    ToolRun h = Run({"help", cmd});
    EXPECT_EQ(h.exit_code, kExitOk) << Describe(h);
    EXPECT_EQ(h.out, r.out);
  }
  ToolRun r = Run({"scrub", "--help"});
  EXPECT_NE(r.out.find("--dry-run"), std::string::npos) << Describe(r);
  r = Run({"replace", "--help"});
  EXPECT_NE(r.out.find("--new-dir"), std::string::npos) << Describe(r);
}

}  // namespace
}  // namespace cairn::raidlib
