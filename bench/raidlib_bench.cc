// raidlib_bench: throughput of raidlib::Volume against the plain file system,
// measured side by side in one run on the same directories (bench/README.md).
//
// Each run (--runs, default 3) does, on a fresh volume of --disks directories
// under --dir:
//   1. parity: raidlib::XorInto of (N-1) 1 MiB data units into a parity unit;
//   2. sequential append of --bytes in 1 MiB Append()s and one Sync(), then
//      the same on-disk bytes (segment file sizes: data, parity, headers)
//      written as N plain files with pwrite and one fdatasync each;
//   3. a timed cold reopen (informational), then a healthy read of the whole
//      log in 1 MiB Read()s; then random 4 KiB Read()s (20,000, page cache
//      warm) on a reopen with the unit-header cache and on one without;
//   4. degraded read: one disk directory removed, volume reopened, read all;
//   5. rebuild: ReplaceDisk() of that disk and WaitForBackgroundWork();
//   6. small appends (128 B) with a Sync() after every batch of 1, 16, 256.
// Diagnostics per phase: CPU time, device bytes, other processes' CPU time.
// Before every large phase the page cache is dropped (sync; echo 3 >
// /proc/sys/vm/drop_caches, root only) and then warmed (PhasePrep). The volume
// and the plain writes go first in alternate runs. Figures are the median
// over the runs; ratios are computed per run and then the median taken.
//
// Everything it creates lives in --dir, which must be missing or empty; it is
// removed at exit, on error, and on SIGINT/SIGTERM/SIGHUP/abort.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/strong_id.h"
#include "raidlib/parity.h"
#include "raidlib/volume.h"

namespace cairn::raidlib::bench {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kIoSize = kMiB;          // append, read and plain-write granularity
constexpr size_t kNumPatterns = 4;        // distinct 1 MiB payloads, reused
constexpr uint32_t kRandomReads = 20000;  // per pass of the random 4 KiB read phase
constexpr std::array<uint32_t, 3> kBatchSizes = {1, 16, 256};
constexpr uint64_t kMaxSmallAppendsPerBatchSize = 200'000;  // per run
constexpr double kParitySeconds = 0.4;                      // per run

struct Options {
  std::string dir = "/var/tmp/cairn-bench";
  uint32_t disks = 4;
  uint64_t bytes = uint64_t{1} << 30;
  uint32_t runs = 3;
  bool json = false;
  double small_seconds = 1.0;  // per batch size per run
  uint32_t small_bytes = 128;
  bool warm = true;
};

void PrintUsage(FILE* out) {
  std::fprintf(out,
               "usage: raidlib_bench [flags]\n"
               "  --dir PATH        base directory, must be missing or empty; created and\n"
               "                    removed by the program (default /var/tmp/cairn-bench)\n"
               "  --disks N         disk directories in the volume, 2..16 (default 4)\n"
               "  --bytes SIZE      bytes appended per run, K/M/G suffixes, multiple of 1M\n"
               "                    (default 1G)\n"
               "  --runs R          runs of every phase; the median is reported (default 3)\n"
               "  --small-seconds S seconds per batch size per run of the small-append\n"
               "                    phase (default 1)\n"
               "  --small-bytes B   size of one small append (default 128)\n"
               "  --no-warm         skip the page-cache warm-up before each large phase\n"
               "  --json            also print one JSON summary line at the end\n"
               "  --help            this text\n"
               "Drops the page cache before every large phase when run as root.\n");
}

std::optional<uint64_t> ParseSize(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t mult = 1;
  char last = s.back();
  if (last == 'k' || last == 'K') mult = uint64_t{1} << 10;
  if (last == 'm' || last == 'M') mult = uint64_t{1} << 20;
  if (last == 'g' || last == 'G') mult = uint64_t{1} << 30;
  if (mult != 1) s.remove_suffix(1);
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v * mult;
}

// Returns false (after printing why) on bad flags; *help set for --help.
bool ParseFlags(int argc, char** argv, Options* o, bool* help) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto need_value = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "%s needs a value\n", name.c_str());
        return false;
      }
      value = args[++i];
      return true;
    };
    auto bad = [&]() {
      std::fprintf(stderr, "bad value for %s: '%s'\n", name.c_str(), value.c_str());
      return false;
    };
    if (name == "--help" || name == "-h") {
      *help = true;
      return true;
    } else if (name == "--json") {
      o->json = true;
    } else if (name == "--no-warm") {
      o->warm = false;
    } else if (name == "--dir") {
      if (!need_value()) return false;
      if (value.empty()) return bad();
      o->dir = value;
    } else if (name == "--disks") {
      if (!need_value()) return false;
      auto v = ParseSize(value);
      if (!v || *v < 2 || *v > 16) return bad();
      o->disks = static_cast<uint32_t>(*v);
    } else if (name == "--bytes") {
      if (!need_value()) return false;
      auto v = ParseSize(value);
      if (!v || *v < kIoSize || *v % kIoSize != 0) return bad();
      o->bytes = *v;
    } else if (name == "--runs") {
      if (!need_value()) return false;
      auto v = ParseSize(value);
      if (!v || *v < 1 || *v > 100) return bad();
      o->runs = static_cast<uint32_t>(*v);
    } else if (name == "--small-seconds") {
      if (!need_value()) return false;
      char* end = nullptr;
      double d = std::strtod(value.c_str(), &end);
      if (end == value.c_str() || *end != '\0' || !(d > 0) || d > 60) return bad();
      o->small_seconds = d;
    } else if (name == "--small-bytes") {
      if (!need_value()) return false;
      auto v = ParseSize(value);
      if (!v || *v < 1 || *v > kIoSize) return bad();
      o->small_bytes = static_cast<uint32_t>(*v);
    } else {
      std::fprintf(stderr, "unknown flag %s (try --help)\n", name.c_str());
      return false;
    }
  }
  return true;
}

double Seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }
double MBps(uint64_t bytes, double secs) {
  return secs > 0 ? static_cast<double>(bytes) / secs / 1e6 : 0;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// ---- workspace: the only paths the program creates or removes ----

// Precomputed for the signal handler, which may only make async-signal-safe
// calls: it runs "/bin/rm -rf -- <disk dirs> <plain dir>" and rmdir(base).
std::vector<std::string> g_cleanup_strings;
std::vector<char*> g_cleanup_argv;
const char* g_base_cstr = nullptr;
volatile sig_atomic_t g_created_base = 0;
volatile sig_atomic_t g_cleanup_armed = 0;

extern "C" void OnFatalSignal(int sig) {
  if (g_cleanup_armed != 0) {
    g_cleanup_armed = 0;
    pid_t pid = ::vfork();
    if (pid == 0) {
      ::execv("/bin/rm", g_cleanup_argv.data());
      ::_exit(127);
    }
    if (pid > 0) {
      int st = 0;
      while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
    }
    if (g_created_base != 0) ::rmdir(g_base_cstr);
  }
  // SA_RESETHAND restored the default action: die of the same signal.
  ::raise(sig);
}

class Workspace {
 public:
  Workspace(std::string base, uint32_t disks) : base_(std::move(base)) {
    for (uint32_t d = 0; d < disks; ++d) disk_dirs_.push_back(base_ + "/disk" + std::to_string(d));
    plain_dir_ = base_ + "/plain";
    scratch_path_ = base_ + "/warm-scratch";
  }
  ~Workspace() { Cleanup(); }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  // Creates the base directory (it must be missing or empty) and arms the
  // signal-time cleanup.
  Status Prepare() {
    std::error_code ec;
    if (fs::exists(base_, ec)) {
      if (!fs::is_directory(base_, ec))
        return Status::InvalidArgument(base_ + " is not a directory");
      if (!fs::is_empty(base_, ec)) {
        return Status::AlreadyExists(base_ +
                                     " is not empty; remove it or choose another --dir "
                                     "(the benchmark never deletes what it did not create)");
      }
    } else {
      if (!fs::create_directory(base_, ec) || ec) {
        return Status::IOError("cannot create " + base_ + ": " + ec.message());
      }
      created_base_ = true;
    }
    g_cleanup_strings = {"/bin/rm", "-rf", "--"};
    for (const auto& d : disk_dirs_) g_cleanup_strings.push_back(d);
    g_cleanup_strings.push_back(plain_dir_);
    g_cleanup_strings.push_back(scratch_path_);
    g_cleanup_argv.clear();
    for (auto& s : g_cleanup_strings) g_cleanup_argv.push_back(s.data());
    g_cleanup_argv.push_back(nullptr);
    g_base_cstr = base_.c_str();
    g_created_base = created_base_ ? 1 : 0;
    struct sigaction sa {};
    sa.sa_handler = OnFatalSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = static_cast<int>(SA_RESETHAND | SA_NODEFER);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGABRT, SIGSEGV, SIGBUS})
      sigaction(sig, &sa, nullptr);
    g_cleanup_armed = 1;
    return Status::Ok();
  }

  // Removes the disk directories and the plain-file directory.
  void RemoveRunFiles() {
    std::error_code ec;
    for (const auto& d : disk_dirs_) fs::remove_all(d, ec);
    fs::remove_all(plain_dir_, ec);
    fs::remove(scratch_path_, ec);
  }

  void Cleanup() {
    if (g_cleanup_armed == 0 && !created_base_) return;
    g_cleanup_armed = 0;
    RemoveRunFiles();
    if (created_base_) {
      std::error_code ec;
      fs::remove(base_, ec);  // only if empty: never more than we created
      created_base_ = false;
    }
  }

  const std::string& base() const { return base_; }
  const std::vector<std::string>& disk_dirs() const { return disk_dirs_; }
  const std::string& plain_dir() const { return plain_dir_; }
  const std::string& scratch_path() const { return scratch_path_; }

 private:
  std::string base_;
  std::vector<std::string> disk_dirs_;
  std::string plain_dir_;
  std::string scratch_path_;
  bool created_base_ = false;
};

// ---- helpers ----

// Puts the machine into the same state before every large timed phase:
//  - sync(2), then drop the page cache, dentries and inodes (root only), so
//    reads come from the device;
//  - then, unless --no-warm, write an unsynced scratch file about the size of
//    the phase's page-cache footprint and delete it. On this VM (Firecracker,
//    free page reporting) memory that stayed free for a while has gone back to
//    the host, and touching it again costs host faults: buffering 180 MB took
//    0.04 s or 0.8 s depending on how long ago memory was freed. Freshly freed
//    page-cache pages are cheap to reuse, so every phase starts with the same
//    supply of them instead of whatever the previous phase left.
class PhasePrep {
 public:
  PhasePrep(std::string scratch_path, bool warm, uint64_t warm_bytes)
      : scratch_path_(std::move(scratch_path)),
        warm_(warm),
        warm_bytes_(warm_bytes),
        chunk_(kIoSize, std::byte{0x33}) {}

  Status ColdStart() {
    ++drops_;
    ::sync();
    int fd = ::open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
    bool ok = fd >= 0 && ::write(fd, "3", 1) == 1;
    if (fd >= 0) ::close(fd);
    if (!ok) ++drop_failures_;
    if (!warm_) return Status::Ok();
    auto t0 = SteadyClock::now();
    fd = ::open(scratch_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Status::FromErrno(errno, "open " + scratch_path_);
    Status st;
    for (uint64_t off = 0; off < warm_bytes_; off += kIoSize) {
      if (::pwrite(fd, chunk_.data(), chunk_.size(), static_cast<off_t>(off)) < 0) {
        st = Status::FromErrno(errno, "write " + scratch_path_);
        break;
      }
    }
    // Unlinked and closed unsynced: its dirty pages are dropped, never written.
    ::unlink(scratch_path_.c_str());
    ::close(fd);
    warm_seconds_ += Seconds(SteadyClock::now() - t0);
    return st;
  }

  const char* DropSummary() const {
    if (drops_ == 0) return "not attempted";
    if (drop_failures_ == 0) return "yes (every phase)";
    if (drop_failures_ == drops_) return "NO (not root?) - reads may come from the page cache";
    return "PARTIAL - some drops failed";
  }
  bool all_dropped() const { return drops_ > 0 && drop_failures_ == 0; }
  bool warm() const { return warm_; }
  uint64_t warm_bytes() const { return warm_bytes_; }
  double warm_seconds() const { return warm_seconds_; }

 private:
  const std::string scratch_path_;
  const bool warm_;
  const uint64_t warm_bytes_;
  const std::vector<std::byte> chunk_;
  int drops_ = 0;
  int drop_failures_ = 0;
  double warm_seconds_ = 0;
};

// 1 MiB payload buffers with incompressible content. Append i uses pattern
// i % kNumPatterns with its first 8 bytes replaced by i, so a read can tell
// which append it got.
class Payloads {
 public:
  Payloads() {
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (auto& p : patterns_) {
      p.resize(kIoSize);
      for (size_t i = 0; i < kIoSize; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::memcpy(p.data() + i, &x, 8);
      }
    }
  }
  std::span<const std::byte> ForAppend(uint64_t i) {
    auto& p = patterns_[i % kNumPatterns];
    std::memcpy(p.data(), &i, 8);
    return p;
  }
  // Cheap check of what Read() returned for append i: the index and two
  // 4 KiB slices (the first and one that moves with i).
  bool Matches(uint64_t i, std::span<const std::byte> got) const {
    const auto& p = patterns_[i % kNumPatterns];
    uint64_t idx = 0;
    std::memcpy(&idx, got.data(), 8);
    if (idx != i) return false;
    if (std::memcmp(got.data() + 8, p.data() + 8, 4096 - 8) != 0) return false;
    size_t off = ((i * 7919) % (kIoSize / 4096 - 1) + 1) * 4096;
    return std::memcmp(got.data() + off, p.data() + off, 4096) == 0;
  }
  // Whether `got` is what the log holds at byte `at` (within one append).
  bool MatchesAt(uint64_t at, std::span<const std::byte> got) const {
    const uint64_t i = at / kIoSize;
    const size_t in = static_cast<size_t>(at % kIoSize);
    if (in + got.size() > kIoSize) return false;
    const auto& p = patterns_[i % kNumPatterns];
    size_t from = 0;
    if (in < 8) {
      std::byte idx[8];
      std::memcpy(idx, &i, 8);
      from = std::min(got.size(), 8 - in);
      if (std::memcmp(got.data(), idx + in, from) != 0) return false;
    }
    return std::memcmp(got.data() + from, p.data() + in + from, got.size() - from) == 0;
  }

 private:
  std::array<std::vector<std::byte>, kNumPatterns> patterns_;
};

// Sum of the sizes of the segment files in `dir` (what the volume wrote for
// the log: data or parity units with their headers; not the superblock).
uint64_t SegmentBytesIn(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec) && e.path().filename().string().rfind("seg-", 0) == 0) {
      total += e.file_size(ec);
    }
  }
  return total;
}

uint64_t FileCountIn(const std::string& dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) n += e.is_regular_file(ec) ? 1u : 0u;
  return n;
}

// fdatasync every regular file in `dir`, then the directory.
Status FlushDir(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file(ec)) continue;
    int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno(errno, "open " + e.path().string());
    int rc = ::fdatasync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return Status::FromErrno(err, "fdatasync " + e.path().string());
  }
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  return Status::Ok();
}

VolumeOptions MakeVolumeOptions(const Workspace& ws) {
  VolumeOptions vo;
  vo.disk_dirs = ws.disk_dirs();
  return vo;  // every other option at its default (volume.h)
}

// ---- per-phase resource use (diagnostics) ----

// What the whole process (all threads) used: CPU time from getrusage, and the
// bytes it made the block layer read or dirtied for writing (/proc/self/io;
// readahead included).
struct Usage {
  SteadyClock::time_point t;
  double cpu_s = 0;
  double machine_busy_s = 0;  // all CPUs, all processes (/proc/stat)
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
};

Usage SampleUsage() {
  Usage u;
  struct rusage ru {};
  if (::getrusage(RUSAGE_SELF, &ru) == 0) {
    u.cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
              static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  {
    // "cpu  user nice system idle iowait irq softirq steal ..." in USER_HZ.
    std::ifstream st("/proc/stat");
    std::string cpu;
    uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    if (st >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) {
      u.machine_busy_s = static_cast<double>(user + nice + system + irq + softirq + steal) /
                         static_cast<double>(::sysconf(_SC_CLK_TCK));
    }
  }
  std::ifstream io("/proc/self/io");
  std::string key;
  uint64_t v = 0;
  while (io >> key >> v) {
    if (key == "read_bytes:") u.read_bytes = v;
    if (key == "write_bytes:") u.write_bytes = v;
  }
  u.t = SteadyClock::now();
  return u;
}

struct PhaseUse {
  double wall_s = 0;
  double cpu_s = 0;
  double other_cpu_s = 0;  // CPU time other processes used meanwhile
  uint64_t dev_read = 0;
  uint64_t dev_write = 0;
};

PhaseUse Between(const Usage& a, const Usage& b) {
  double self = b.cpu_s - a.cpu_s;
  double other = std::max(0.0, (b.machine_busy_s - a.machine_busy_s) - self);
  return {Seconds(b.t - a.t), self, other, b.read_bytes - a.read_bytes,
          b.write_bytes - a.write_bytes};
}

enum Phase : size_t {
  kAppendPhase,
  kPlainPhase,
  kOpenPhase,
  kReadPhase,
  kDegradedPhase,
  kRebuildPhase,
  kNumPhases
};
constexpr std::array<const char*, kNumPhases> kPhaseNames = {
    "append+Sync",  "plain pwrite+fdatasync", "reopen (Volume::Open)",
    "healthy read", "degraded read",          "rebuild"};

// ---- phases ----

struct RunResult {
  double parity_gbps = 0;
  uint64_t user_bytes = 0;
  uint64_t disk_bytes = 0;  // segment file bytes over all disks
  uint64_t stripes = 0;
  double append_s = 0;
  double append_sync_s = 0;  // the final Sync() alone
  double plain_s = 0;
  double plain_sync_s = 0;  // the fdatasyncs alone
  double read_s = 0;
  double random_cached_rate = 0;    // 4 KiB reads per second, header cache on
  double random_uncached_rate = 0;  // the same with header_cache_bytes = 0
  double degraded_s = 0;
  uint64_t reconstructed_reads = 0;
  double rebuild_s = 0;
  uint64_t rebuild_bytes = 0;
  double rebuild_flush_s = 0;
  std::array<double, kBatchSizes.size()> small_rate{};       // appends per second
  std::array<double, kBatchSizes.size()> small_commit_ms{};  // mean ms per Sync
  double plain_small_sync_ms = 0;  // one small pwrite + fdatasync, one file
  std::array<PhaseUse, kNumPhases> use{};
  bool plain_first = false;

  double append_mbps() const { return MBps(user_bytes, append_s); }
  double plain_user_mbps() const { return MBps(user_bytes, plain_s); }
  double plain_raw_mbps() const { return MBps(disk_bytes, plain_s); }
  double read_mbps() const { return MBps(user_bytes, read_s); }
  double degraded_mbps() const { return MBps(user_bytes, degraded_s); }
  double rebuild_mbps() const { return MBps(rebuild_bytes, rebuild_s); }
  double append_ratio() const { return plain_s > 0 ? plain_s / append_s : 0; }
  double degraded_ratio() const { return degraded_s > 0 ? read_s / degraded_s : 0; }
  double rebuild_ratio() const {
    return plain_raw_mbps() > 0 ? rebuild_mbps() / plain_raw_mbps() : 0;
  }
};

// Bytes of data units XORed per second on one core (GB/s, 1e9).
double BenchParity(uint32_t data_units) {
  std::vector<std::vector<std::byte>> units(data_units, std::vector<std::byte>(kIoSize));
  for (uint32_t j = 0; j < data_units; ++j) {
    for (size_t i = 0; i < kIoSize; ++i) units[j][i] = static_cast<std::byte>((i * 31 + j) & 0xFF);
  }
  std::vector<std::byte> parity(kIoSize);
  auto one = [&]() {
    std::memset(parity.data(), 0, parity.size());
    for (const auto& u : units) XorInto(parity, u);
    asm volatile("" : : "r"(parity.data()) : "memory");
  };
  one();  // warm up
  uint64_t iters = 0;
  auto t0 = SteadyClock::now();
  double secs = 0;
  do {
    for (int k = 0; k < 8; ++k) one();
    iters += 8;
    secs = Seconds(SteadyClock::now() - t0);
  } while (secs < kParitySeconds);
  return static_cast<double>(iters * data_units * kIoSize) / secs / 1e9;
}

Result<std::unique_ptr<Volume>> OpenVolume(const Workspace& ws, bool header_cache = true) {
  VolumeOptions vo = MakeVolumeOptions(ws);
  if (!header_cache) vo.header_cache_bytes = 0;
  auto v = Volume::Open(vo);
  if (!v.ok()) return v.status().WithContext("Volume::Open");
  return v;
}

// Appends `bytes` in 1 MiB Append()s and syncs once; returns seconds.
Result<double> TimedAppend(Volume& vol, Payloads& payloads, uint64_t bytes, double* sync_s) {
  uint64_t n = bytes / kIoSize;
  auto t0 = SteadyClock::now();
  for (uint64_t i = 0; i < n; ++i) {
    auto off = vol.Append(payloads.ForAppend(i));
    if (!off.ok()) return off.status().WithContext("Append " + std::to_string(i));
    if (*off != i * kIoSize) {
      return Status::Corruption("Append " + std::to_string(i) + " returned offset " +
                                std::to_string(*off));
    }
  }
  auto ts = SteadyClock::now();
  RETURN_IF_ERROR(vol.Sync().WithContext("Sync"));
  auto te = SteadyClock::now();
  *sync_s = Seconds(te - ts);
  return Seconds(te - t0);
}

// Writes per_file[d] bytes to plain file d, 1 MiB at a time round-robin over
// the files, then fdatasyncs each; returns seconds.
Result<double> TimedPlainWrite(const std::string& dir, const std::vector<uint64_t>& per_file,
                               Payloads& payloads, double* sync_s) {
  std::error_code ec;
  fs::create_directory(dir, ec);
  if (ec) return Status::IOError("mkdir " + dir + ": " + ec.message());
  auto t0 = SteadyClock::now();
  std::vector<int> fds;
  Status st;
  for (size_t d = 0; d < per_file.size(); ++d) {
    std::string path = dir + "/file" + std::to_string(d);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      st = Status::FromErrno(errno, "open " + path);
      break;
    }
    fds.push_back(fd);
  }
  std::vector<uint64_t> done(fds.size(), 0);
  uint64_t chunk = 0;
  for (bool more = st.ok(); more && st.ok();) {
    more = false;
    for (size_t d = 0; d < fds.size() && st.ok(); ++d) {
      if (done[d] >= per_file[d]) continue;
      size_t len = static_cast<size_t>(std::min<uint64_t>(kIoSize, per_file[d] - done[d]));
      auto buf = payloads.ForAppend(chunk++);
      ssize_t w = ::pwrite(fds[d], buf.data(), len, static_cast<off_t>(done[d]));
      if (w < 0) {
        st = Status::FromErrno(errno, "pwrite");
        break;
      }
      done[d] += static_cast<uint64_t>(w);
      more = true;
    }
  }
  auto ts = SteadyClock::now();
  for (int fd : fds) {
    if (st.ok() && ::fdatasync(fd) != 0) st = Status::FromErrno(errno, "fdatasync");
  }
  for (int fd : fds) ::close(fd);
  auto te = SteadyClock::now();
  *sync_s = Seconds(te - ts);
  double secs = Seconds(te - t0);
  RETURN_IF_ERROR(st);
  return secs;
}

// Reads [0, bytes) in 1 MiB Read()s, checking each; returns seconds.
Result<double> TimedRead(Volume& vol, const Payloads& payloads, uint64_t bytes) {
  std::vector<std::byte> buf(kIoSize);
  uint64_t n = bytes / kIoSize;
  auto t0 = SteadyClock::now();
  for (uint64_t i = 0; i < n; ++i) {
    RETURN_IF_ERROR(
        vol.Read(i * kIoSize, buf).WithContext("Read at " + std::to_string(i * kIoSize)));
    if (!payloads.Matches(i, buf)) {
      return Status::Corruption("Read at " + std::to_string(i * kIoSize) +
                                " returned bytes that were not appended there");
    }
  }
  return Seconds(SteadyClock::now() - t0);
}

// Random 4 KiB reads at 4 KiB-aligned offsets of [0, bytes), each checked:
// one untimed pass (warms the page cache and the unit-header cache), then
// the same reads timed; returns reads per second.
Result<double> TimedRandomReads(Volume& vol, const Payloads& payloads, uint64_t bytes) {
  std::vector<uint64_t> at(kRandomReads);
  uint64_t x = 0x2545F4914F6CDD1Dull;
  for (uint64_t& a : at) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    a = (x % (bytes / 4096)) * 4096;
  }
  std::vector<std::byte> buf(4096);
  double secs = 0;
  for (int pass = 0; pass < 2; ++pass) {
    auto t0 = SteadyClock::now();
    for (uint64_t a : at) {
      RETURN_IF_ERROR(vol.Read(a, buf).WithContext("Read at " + std::to_string(a)));
      if (!payloads.MatchesAt(a, buf)) {
        return Status::Corruption("Read at " + std::to_string(a) +
                                  " returned bytes that were not appended there");
      }
    }
    secs = Seconds(SteadyClock::now() - t0);
  }
  return static_cast<double>(at.size()) / secs;
}

// Baseline for the small appends: `record_bytes` pwrites appended to one plain
// file, fdatasync after each; returns the mean seconds per fdatasync.
Result<double> TimedPlainSmallSyncs(const std::string& dir, uint32_t record_bytes, double seconds) {
  std::error_code ec;
  fs::create_directory(dir, ec);
  std::string path = dir + "/small";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  std::vector<std::byte> rec(record_bytes, std::byte{0x5A});
  uint64_t n = 0;
  Status st;
  auto t0 = SteadyClock::now();
  double elapsed = 0;
  while (elapsed < seconds && n < kMaxSmallAppendsPerBatchSize) {
    if (::pwrite(fd, rec.data(), rec.size(), static_cast<off_t>(n * record_bytes)) < 0 ||
        ::fdatasync(fd) != 0) {
      st = Status::FromErrno(errno, "small write " + path);
      break;
    }
    ++n;
    elapsed = Seconds(SteadyClock::now() - t0);
  }
  ::close(fd);
  ::unlink(path.c_str());
  RETURN_IF_ERROR(st);
  return elapsed / static_cast<double>(n);
}

// Small appends with a Sync() after every `batch`; returns appends per second
// and the mean seconds per Sync().
Status TimedSmallAppends(Volume& vol, uint32_t batch, uint32_t record_bytes, double seconds,
                         double* rate, double* mean_commit_s) {
  std::vector<std::byte> rec(record_bytes, std::byte{0x5A});
  uint64_t appends = 0;
  uint64_t commits = 0;
  SteadyClock::duration in_sync{};
  auto t0 = SteadyClock::now();
  double elapsed = 0;
  while (elapsed < seconds && appends < kMaxSmallAppendsPerBatchSize) {
    for (uint32_t k = 0; k < batch; ++k) {
      std::memcpy(rec.data(), &appends, std::min<size_t>(8, rec.size()));
      auto off = vol.Append(rec);
      if (!off.ok()) return off.status().WithContext("small Append");
      ++appends;
    }
    auto s0 = SteadyClock::now();
    RETURN_IF_ERROR(vol.Sync().WithContext("small Sync"));
    auto s1 = SteadyClock::now();
    in_sync += s1 - s0;
    ++commits;
    elapsed = Seconds(s1 - t0);
  }
  *rate = static_cast<double>(appends) / elapsed;
  *mean_commit_s = Seconds(in_sync) / static_cast<double>(commits);
  return Status::Ok();
}

// Per-disk segment-file bytes of the volume that --bytes produce with the
// default options; the layout is deterministic, so run 1 measures it and the
// later runs that write the plain files first reuse it.
using Layout = std::vector<uint64_t>;

Status DoRun(const Options& o, Workspace& ws, Payloads& payloads, PhasePrep& prep, uint32_t run,
             Layout* layout, RunResult* r) {
  const uint32_t fail_disk = 1;  // parity rotates, so every slot is alike
  auto progress = [&](const char* what) {
    std::fprintf(stderr, "[run %u/%u] %s\n", run + 1, o.runs, what);
  };
  ws.RemoveRunFiles();
  r->user_bytes = o.bytes;

  // 1. Parity.
  progress("parity");
  r->parity_gbps = BenchParity(o.disks - 1);

  // 2. Sequential append and plain writes of the same on-disk bytes. The order
  // alternates between runs so that neither side always inherits the other's
  // device write-back.
  auto plain = [&]() -> Status {
    RETURN_IF_ERROR(prep.ColdStart());
    progress("plain pwrite");
    Usage u0 = SampleUsage();
    ASSIGN_OR_RETURN(r->plain_s,
                     TimedPlainWrite(ws.plain_dir(), *layout, payloads, &r->plain_sync_s));
    r->use[kPlainPhase] = Between(u0, SampleUsage());
    r->disk_bytes = 0;
    for (uint64_t b : *layout) r->disk_bytes += b;
    return Status::Ok();
  };
  r->plain_first = !layout->empty() && run % 2 == 1;
  if (r->plain_first) RETURN_IF_ERROR(plain());
  RETURN_IF_ERROR(Volume::Create(MakeVolumeOptions(ws)).WithContext("Volume::Create"));
  {
    ASSIGN_OR_RETURN(auto vol, OpenVolume(ws));
    RETURN_IF_ERROR(prep.ColdStart());
    progress("sequential append");
    Usage u0 = SampleUsage();
    ASSIGN_OR_RETURN(r->append_s, TimedAppend(*vol, payloads, o.bytes, &r->append_sync_s));
    r->use[kAppendPhase] = Between(u0, SampleUsage());
    r->stripes = vol->stats().stripes_written;
  }
  Layout measured;
  for (const auto& d : ws.disk_dirs()) measured.push_back(SegmentBytesIn(d));
  if (layout->empty()) *layout = measured;
  if (measured != *layout) {
    return Status::FailedPrecondition(
        "the volume's on-disk layout differs between runs; the "
        "plain-write comparison would be unfair");
  }
  if (!r->plain_first) RETURN_IF_ERROR(plain());

  // 3. Healthy read, after a timed cold reopen (informational: recovery
  // verifies every stripe that no later stripe vouches for).
  {
    RETURN_IF_ERROR(prep.ColdStart());
    progress("reopen");
    Usage open0 = SampleUsage();
    ASSIGN_OR_RETURN(auto vol, OpenVolume(ws));
    r->use[kOpenPhase] = Between(open0, SampleUsage());
    if (vol->end_offset() != o.bytes) {
      return Status::Corruption("reopened volume ends at " + std::to_string(vol->end_offset()) +
                                ", expected " + std::to_string(o.bytes));
    }
    RETURN_IF_ERROR(prep.ColdStart());
    progress("healthy read");
    Usage u0 = SampleUsage();
    ASSIGN_OR_RETURN(r->read_s, TimedRead(*vol, payloads, o.bytes));
    r->use[kReadPhase] = Between(u0, SampleUsage());

    // 3b. Random 4 KiB reads with the unit-header cache (the default) and
    // without (header_cache_bytes = 0), each on its own open of the volume,
    // in an order that alternates between runs.
    progress("random 4 KiB reads");
    for (int k = 0; k < 2; ++k) {
      const bool cached = (k == 0) == (run % 2 == 0);
      vol.reset();
      ASSIGN_OR_RETURN(vol, OpenVolume(ws, cached));
      ASSIGN_OR_RETURN(double rate, TimedRandomReads(*vol, payloads, o.bytes));
      (cached ? r->random_cached_rate : r->random_uncached_rate) = rate;
    }
  }

  // 4. Degraded read: one disk directory gone.
  {
    std::error_code ec;
    fs::remove_all(ws.disk_dirs()[fail_disk], ec);
    if (ec) return Status::IOError("rm -rf " + ws.disk_dirs()[fail_disk] + ": " + ec.message());
  }
  ASSIGN_OR_RETURN(auto vol, OpenVolume(ws));
  if (vol->disks()[fail_disk].state != DiskState::kFailed) {
    return Status::FailedPrecondition("disk " + std::to_string(fail_disk) +
                                      " not marked failed after its directory was removed");
  }
  uint64_t recon0 = vol->stats().reconstructed_reads;
  RETURN_IF_ERROR(prep.ColdStart());
  progress("degraded read");
  {
    Usage u0 = SampleUsage();
    ASSIGN_OR_RETURN(r->degraded_s, TimedRead(*vol, payloads, o.bytes));
    r->use[kDegradedPhase] = Between(u0, SampleUsage());
  }
  r->reconstructed_reads = vol->stats().reconstructed_reads - recon0;

  // 5. Rebuild into an empty directory at the same path.
  {
    std::error_code ec;
    fs::create_directory(ws.disk_dirs()[fail_disk], ec);
    if (ec) return Status::IOError("mkdir " + ws.disk_dirs()[fail_disk] + ": " + ec.message());
  }
  RETURN_IF_ERROR(prep.ColdStart());
  progress("rebuild");
  {
    Usage u0 = SampleUsage();
    RETURN_IF_ERROR(vol->ReplaceDisk(DiskIndex(fail_disk), ws.disk_dirs()[fail_disk])
                        .WithContext("ReplaceDisk"));
    vol->WaitForBackgroundWork();
    Usage u1 = SampleUsage();
    // Whatever the rebuild left unsynced (not part of the figure; reported).
    RETURN_IF_ERROR(FlushDir(ws.disk_dirs()[fail_disk]));
    r->rebuild_flush_s = Seconds(SteadyClock::now() - u1.t);
    r->use[kRebuildPhase] = Between(u0, u1);
    r->rebuild_s = r->use[kRebuildPhase].wall_s;
  }
  RebuildProgress rp = vol->rebuild_progress();
  if (!rp.error.empty() || rp.unrecoverable != 0) {
    return Status::DataLoss("rebuild stopped: '" + rp.error + "', unrecoverable " +
                            std::to_string(rp.unrecoverable));
  }
  if (vol->disks()[fail_disk].state != DiskState::kHealthy) {
    return Status::FailedPrecondition(std::string("disk state after rebuild: ") +
                                      DiskStateName(vol->disks()[fail_disk].state));
  }
  r->rebuild_bytes = rp.bytes_written;
  if (FileCountIn(ws.disk_dirs()[fail_disk]) == 0) {
    return Status::FailedPrecondition("rebuild wrote no files");
  }

  // 6. Small appends with a Sync() per batch, and the plain baseline.
  ::sync();
  {
    ASSIGN_OR_RETURN(double per_sync,
                     TimedPlainSmallSyncs(ws.plain_dir(), o.small_bytes, o.small_seconds));
    r->plain_small_sync_ms = per_sync * 1e3;
  }
  for (size_t b = 0; b < kBatchSizes.size(); ++b) {
    std::string what = "small appends, batch " + std::to_string(kBatchSizes[b]);
    progress(what.c_str());
    double commit_s = 0;
    RETURN_IF_ERROR(TimedSmallAppends(*vol, kBatchSizes[b], o.small_bytes, o.small_seconds,
                                      &r->small_rate[b], &commit_s));
    r->small_commit_ms[b] = commit_s * 1e3;
  }
  vol.reset();
  ws.RemoveRunFiles();
  ::sync();
  return Status::Ok();
}

// ---- report ----

template <typename F>
std::vector<double> Collect(const std::vector<RunResult>& rs, F f) {
  std::vector<double> v;
  for (const auto& r : rs) v.push_back(f(r));
  return v;
}

std::string RunsText(const std::vector<double>& v, const char* fmt) {
  std::string s;
  char buf[64];
  for (size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof buf, fmt, v[i]);
    if (i > 0) s += ' ';
    s += buf;
  }
  return s;
}

void Row(const char* name, const std::vector<double>& v, const char* unit, const char* fmt,
         const char* target = "", std::optional<bool> pass = std::nullopt) {
  char med[32];
  std::snprintf(med, sizeof med, fmt, Median(v));
  std::string verdict = target;
  if (pass.has_value()) verdict += *pass ? "  ok" : "  MISS";
  std::printf("%-38s %10s %-9s %-12s [%s]\n", name, med, unit, verdict.c_str(),
              RunsText(v, fmt).c_str());
}

// `other_load`: the share of the machine's CPU time that other processes
// used while the benchmark ran.
void Report(const Options& o, const std::vector<RunResult>& rs, const PhasePrep& prep,
            double other_load) {
  const auto& r0 = rs.front();
  auto med = [&](auto f) { return Median(Collect(rs, f)); };
  double overhead = static_cast<double>(r0.disk_bytes) / static_cast<double>(r0.user_bytes);

  std::printf("\nraidlib_bench: %u disks under %s, %" PRIu64
              " MiB appended per run, %u run(s), "
              "median [per-run values]\n",
              o.disks, o.dir.c_str(), o.bytes >> 20, o.runs);
  std::printf("other processes used %.0f%% of the machine's CPU time during the run%s\n",
              other_load * 100,
              other_load > 0.1 ? " - BUSY MACHINE, figures are unreliable" : " (quiet)");
  std::printf("page cache dropped before every large phase: %s\n", prep.DropSummary());
  if (prep.warm()) {
    std::printf("page-cache warm-up before every large phase: %" PRIu64
                " MiB scratch file written "
                "and deleted (%.1f s in all; --no-warm disables)\n",
                prep.warm_bytes() >> 20, prep.warm_seconds());
  } else {
    std::printf("page-cache warm-up: off (--no-warm)\n");
  }
  std::printf("on-disk bytes per user byte: %.4f (%" PRIu64 " segment-file bytes, %" PRIu64
              " stripes, %.2f MiB user data per stripe)\n",
              overhead, r0.disk_bytes, r0.stripes,
              r0.stripes ? static_cast<double>(r0.user_bytes) / static_cast<double>(r0.stripes) /
                               static_cast<double>(kMiB)
                         : 0.0);
  std::printf("MB = 1e6 bytes, GB = 1e9 bytes\n\n");
  std::printf("%-38s %10s %-9s %-12s %s\n", "figure", "median", "unit", "target", "runs");
  std::printf("%s\n", std::string(96, '-').c_str());

  char name[64];
  std::snprintf(name, sizeof name, "1 parity XorInto, %u x 1 MiB, 1 core", o.disks - 1);
  Row(name, Collect(rs, [](const RunResult& r) { return r.parity_gbps; }), "GB/s", "%.2f");
  Row("2 append+Sync (user data)", Collect(rs, [](const RunResult& r) { return r.append_mbps(); }),
      "MB/s", "%.1f");
  Row("  plain pwrite+fdatasync (user data)",
      Collect(rs, [](const RunResult& r) { return r.plain_user_mbps(); }), "MB/s", "%.1f");
  Row("  plain pwrite+fdatasync (disk bytes)",
      Collect(rs, [](const RunResult& r) { return r.plain_raw_mbps(); }), "MB/s", "%.1f");
  double ar = med([](const RunResult& r) { return r.append_ratio(); });
  Row("  append / plain", Collect(rs, [](const RunResult& r) { return r.append_ratio(); }), "x",
      "%.3f", ">= 0.85", ar >= 0.85);
  Row("  (reopen after the append, cold)",
      Collect(rs, [](const RunResult& r) { return r.use[kOpenPhase].wall_s; }), "s", "%.3f");
  Row("3 healthy read", Collect(rs, [](const RunResult& r) { return r.read_mbps(); }), "MB/s",
      "%.1f");
  std::snprintf(name, sizeof name, "3b random 4 KiB reads x %u", kRandomReads);
  Row(name, Collect(rs, [](const RunResult& r) { return r.random_cached_rate; }), "reads/s",
      "%.0f");
  Row("  the same, header_cache_bytes = 0",
      Collect(rs, [](const RunResult& r) { return r.random_uncached_rate; }), "reads/s", "%.0f");
  Row("  header cache on / off",
      Collect(rs,
              [](const RunResult& r) {
                return r.random_uncached_rate > 0 ? r.random_cached_rate / r.random_uncached_rate
                                                  : 0;
              }),
      "x", "%.3f");
  Row("4 degraded read (1 disk missing)",
      Collect(rs, [](const RunResult& r) { return r.degraded_mbps(); }), "MB/s", "%.1f");
  double dr = med([](const RunResult& r) { return r.degraded_ratio(); });
  Row("  degraded / healthy", Collect(rs, [](const RunResult& r) { return r.degraded_ratio(); }),
      "x", "%.3f", ">= 0.60", dr >= 0.6);
  Row("5 rebuild (unit bytes written)",
      Collect(rs, [](const RunResult& r) { return r.rebuild_mbps(); }), "MB/s", "%.1f");
  double rr = med([](const RunResult& r) { return r.rebuild_ratio(); });
  Row("  rebuild / plain write (disk bytes)",
      Collect(rs, [](const RunResult& r) { return r.rebuild_ratio(); }), "x", "%.3f", ">= 0.70",
      rr >= 0.7);
  for (size_t b = 0; b < kBatchSizes.size(); ++b) {
    std::snprintf(name, sizeof name, "6 %u B appends, Sync every %u", o.small_bytes,
                  kBatchSizes[b]);
    Row(name, Collect(rs, [b](const RunResult& r) { return r.small_rate[b]; }), "appends/s",
        "%.0f");
    std::snprintf(name, sizeof name, "  mean Sync latency, batch %u", kBatchSizes[b]);
    Row(name, Collect(rs, [b](const RunResult& r) { return r.small_commit_ms[b]; }), "ms", "%.2f");
  }
  Row("  plain baseline: pwrite+fdatasync, 1 file",
      Collect(rs, [](const RunResult& r) { return r.plain_small_sync_ms; }), "ms", "%.2f");
  std::printf("%s\n", std::string(96, '-').c_str());
  std::printf("rebuild: %" PRIu64
              " unit bytes written, %.3f s median; fdatasync of the rebuilt "
              "files afterwards took %.3f s median (not in the figure)\n",
              r0.rebuild_bytes, med([](const RunResult& r) { return r.rebuild_s; }),
              med([](const RunResult& r) { return r.rebuild_flush_s; }));
  std::printf("degraded read: %" PRIu64 " reads served by reconstruction (run 1)\n",
              r0.reconstructed_reads);
  std::string order;
  for (const auto& r : rs) order += r.plain_first ? "P" : "V";
  std::printf("write order per run (V = volume first, P = plain first): %s\n", order.c_str());

  // Where the time goes: whole-process CPU (all threads) against wall time,
  // and what the block layer read or saw dirtied (/proc/self/io).
  std::printf(
      "\nphase diagnostics (medians)      wall s    cpu s  cpu/wall  dev read MB  dev write MB  "
      "other procs cpu s\n");
  for (size_t p = 0; p < kNumPhases; ++p) {
    auto get = [&](auto f) {
      std::vector<double> v;
      for (const auto& r : rs) v.push_back(f(r.use[p]));
      return Median(v);
    };
    double wall = get([](const PhaseUse& u) { return u.wall_s; });
    double cpu = get([](const PhaseUse& u) { return u.cpu_s; });
    std::printf("%-30s %8.3f %8.3f %8.2f %12.1f %13.1f  %17.3f\n", kPhaseNames[p], wall, cpu,
                wall > 0 ? cpu / wall : 0.0,
                get([](const PhaseUse& u) { return static_cast<double>(u.dev_read) / 1e6; }),
                get([](const PhaseUse& u) { return static_cast<double>(u.dev_write) / 1e6; }),
                get([](const PhaseUse& u) { return u.other_cpu_s; }));
  }
  std::printf(
      "append+Sync: %.3f s in Append() calls, %.3f s in the final Sync(); plain: %.3f s in "
      "pwrite, %.3f s in fdatasync (medians)\n",
      med([](const RunResult& r) { return r.append_s - r.append_sync_s; }),
      med([](const RunResult& r) { return r.append_sync_s; }),
      med([](const RunResult& r) { return r.plain_s - r.plain_sync_s; }),
      med([](const RunResult& r) { return r.plain_sync_s; }));
  // On this kind of VM all disk directories share one device, so a rebuild
  // can go no faster than reading the survivors and writing the new unit
  // bytes one after the other at the rates the other phases achieved.
  std::printf(
      "rebuild against a shared-device bound (read at the degraded-read device rate, write "
      "at the plain-write rate): %.2f (1.0 = as fast as one shared device allows)\n",
      med([](const RunResult& r) {
        const PhaseUse& rb = r.use[kRebuildPhase];
        const PhaseUse& dg = r.use[kDegradedPhase];
        if (dg.wall_s <= 0 || r.plain_s <= 0 || rb.wall_s <= 0) return 0.0;
        double read_rate = static_cast<double>(dg.dev_read) / dg.wall_s;
        double write_rate = static_cast<double>(r.disk_bytes) / r.plain_s;
        double bound = static_cast<double>(rb.dev_read) / read_rate +
                       static_cast<double>(r.rebuild_bytes) / write_rate;
        return bound / rb.wall_s;
      }));

  if (o.json) {
    auto arr = [&](auto f) {
      std::string s = "[";
      auto v = Collect(rs, f);
      char buf[48];
      for (size_t i = 0; i < v.size(); ++i) {
        std::snprintf(buf, sizeof buf, "%s%.6g", i ? "," : "", v[i]);
        s += buf;
      }
      return s + "]";
    };
    auto field = [&](const char* key, auto f, bool last = false) {
      std::printf("\"%s\":{\"median\":%.6g,\"runs\":%s}%s", key, med(f), arr(f).c_str(),
                  last ? "" : ",");
    };
    std::printf(
        "{\"bench\":\"raidlib\",\"disks\":%u,\"bytes\":%" PRIu64
        ",\"runs\":%u,\"cache_dropped\":%s,\"warm\":%s,\"other_load\":%.3f,\"disk_bytes\":%" PRIu64
        ",",
        o.disks, o.bytes, o.runs, prep.all_dropped() ? "true" : "false",
        prep.warm() ? "true" : "false", other_load, r0.disk_bytes);
    field("parity_gbps", [](const RunResult& r) { return r.parity_gbps; });
    field("append_mbps", [](const RunResult& r) { return r.append_mbps(); });
    field("plain_write_user_mbps", [](const RunResult& r) { return r.plain_user_mbps(); });
    field("plain_write_disk_mbps", [](const RunResult& r) { return r.plain_raw_mbps(); });
    field("append_ratio", [](const RunResult& r) { return r.append_ratio(); });
    field("read_mbps", [](const RunResult& r) { return r.read_mbps(); });
    field("degraded_read_mbps", [](const RunResult& r) { return r.degraded_mbps(); });
    field("degraded_ratio", [](const RunResult& r) { return r.degraded_ratio(); });
    field("rebuild_mbps", [](const RunResult& r) { return r.rebuild_mbps(); });
    field("rebuild_ratio", [](const RunResult& r) { return r.rebuild_ratio(); });
    field("rebuild_flush_s", [](const RunResult& r) { return r.rebuild_flush_s; });
    field("append_calls_s", [](const RunResult& r) { return r.append_s - r.append_sync_s; });
    field("append_sync_s", [](const RunResult& r) { return r.append_sync_s; });
    field("plain_pwrite_s", [](const RunResult& r) { return r.plain_s - r.plain_sync_s; });
    field("plain_fdatasync_s", [](const RunResult& r) { return r.plain_sync_s; });
    field("reopen_s", [](const RunResult& r) { return r.use[kOpenPhase].wall_s; });
    field("reopen_dev_read_mb",
          [](const RunResult& r) { return static_cast<double>(r.use[kOpenPhase].dev_read) / 1e6; });
    field("plain_small_sync_ms", [](const RunResult& r) { return r.plain_small_sync_ms; });
    for (size_t b = 0; b < kBatchSizes.size(); ++b) {
      std::string key = "small_appends_per_s_batch" + std::to_string(kBatchSizes[b]);
      field(key.c_str(), [b](const RunResult& r) { return r.small_rate[b]; });
    }
    std::printf(
        "\"targets_met\":{\"append_ratio\":%s,\"degraded_ratio\":%s,\"rebuild_ratio\":%s}}\n",
        ar >= 0.85 ? "true" : "false", dr >= 0.6 ? "true" : "false", rr >= 0.7 ? "true" : "false");
  }
  std::fflush(stdout);
}

int Main(int argc, char** argv) {
  Options o;
  bool help = false;
  if (!ParseFlags(argc, argv, &o, &help)) {
    PrintUsage(stderr);
    return 2;
  }
  if (help) {
    PrintUsage(stdout);
    return 0;
  }
  {
    // Room for the volume plus the plain copy of it at once, with margin.
    struct statvfs sv {};
    std::string probe = fs::path(o.dir).parent_path().string();
    if (probe.empty()) probe = ".";
    if (::statvfs(probe.c_str(), &sv) == 0) {
      uint64_t avail = static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
      uint64_t need = o.bytes / (o.disks - 1) * o.disks * 3;
      if (avail < need) {
        std::fprintf(stderr,
                     "not enough space under %s: %" PRIu64 " MiB free, need ~%" PRIu64 " MiB\n",
                     probe.c_str(), avail >> 20, need >> 20);
        return 1;
      }
    }
  }
  Workspace ws(o.dir, o.disks);
  if (Status st = ws.Prepare(); !st.ok()) {
    std::fprintf(stderr, "raidlib_bench: %s\n", st.ToString().c_str());
    return 1;
  }
  Payloads payloads;
  // Warm-up size: the volume's page-cache footprint (data, parity, headers)
  // plus slack, at most a third of the available memory.
  uint64_t warm_bytes = o.bytes / (o.disks - 1) * o.disks + o.bytes / 64 + (uint64_t{64} << 20);
  {
    std::ifstream mi("/proc/meminfo");
    std::string key;
    uint64_t kb = 0;
    std::string unit;
    while (mi >> key >> kb >> unit) {
      if (key == "MemAvailable:") warm_bytes = std::min(warm_bytes, kb * 1024 / 3);
    }
  }
  warm_bytes = warm_bytes / kIoSize * kIoSize;
  PhasePrep prep(ws.scratch_path(), o.warm, warm_bytes);
  std::vector<RunResult> results;
  Layout layout;
  auto t0 = SteadyClock::now();
  Usage u_start = SampleUsage();
  for (uint32_t run = 0; run < o.runs; ++run) {
    RunResult r;
    Status st = DoRun(o, ws, payloads, prep, run, &layout, &r);
    if (!st.ok()) {
      std::fprintf(stderr, "raidlib_bench: run %u failed: %s\n", run + 1, st.ToString().c_str());
      ws.Cleanup();
      return 1;
    }
    results.push_back(r);
    std::fprintf(stderr,
                 "[run %u/%u] append %.1f MB/s, plain %.1f MB/s (ratio %.3f), read %.1f MB/s, "
                 "degraded %.1f MB/s (ratio %.3f), rebuild %.1f MB/s (ratio %.3f)\n",
                 run + 1, o.runs, r.append_mbps(), r.plain_user_mbps(), r.append_ratio(),
                 r.read_mbps(), r.degraded_mbps(), r.degraded_ratio(), r.rebuild_mbps(),
                 r.rebuild_ratio());
    std::fprintf(stderr,
                 "[run %u/%u] append: %.3f s Append() + %.3f s Sync(); plain: %.3f s pwrite + "
                 "%.3f s fdatasync (%s first)\n",
                 run + 1, o.runs, r.append_s - r.append_sync_s, r.append_sync_s,
                 r.plain_s - r.plain_sync_s, r.plain_sync_s, r.plain_first ? "plain" : "volume");
  }
  ws.Cleanup();
  Usage u_end = SampleUsage();
  PhaseUse whole = Between(u_start, u_end);
  long ncpu = ::sysconf(_SC_NPROCESSORS_ONLN);
  double other_load =
      whole.wall_s > 0
          ? whole.other_cpu_s / (whole.wall_s * static_cast<double>(std::max(1L, ncpu)))
          : 0.0;
  Report(o, results, prep, other_load);
  std::fprintf(stderr, "total time %.1f s\n", Seconds(SteadyClock::now() - t0));
  return 0;
}

}  // namespace
}  // namespace cairn::raidlib::bench

int main(int argc, char** argv) { return cairn::raidlib::bench::Main(argc, argv); }
