// Losing a whole disk while the volume runs, and getting redundancy back.
//
// A disk is lost mid-run in four ways: its directory removed (real disk), its
// directory replaced by a regular file (real disk), every call failing
// (FaultDisk kDead) with a new directory as the replacement, and kDead then
// the same disk coming back with its old contents. In every case reads stay
// exact, appends and syncs go on, disks() reports the failure, and after
// ReplaceDisk + WaitForBackgroundWork a DIFFERENT disk can be lost with every
// byte still read back exactly: that is what "full redundancy" means.
//
// Also: rebuild progress moves, the rebuild is throttled by the configured
// rate (observed on a clock the test controls), and a crash in the middle of a
// rebuild is followed by a reopen that resumes and completes it.
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/clock.h"
#include "common/fault_disk.h"
#include "common/mem_disk.h"
#include "common/random.h"
#include "raidlib/volume.h"

namespace cairn::raidlib {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kUnit = 4096;
constexpr uint64_t kSegment = 64 << 10;

// The log as the test appended it.
struct Model {
  std::vector<std::byte> bytes;
};

// Appends `count` random records (1..max_len bytes), syncing every
// `sync_every`; every call must succeed and return the expected offset.
void AppendRecords(Volume& vol, Random& rng, int count, int sync_every, Model* model,
                   uint64_t max_len = 12000) {
  for (int i = 0; i < count; ++i) {
    std::vector<std::byte> rec(1 + rng.Uniform(max_len));
    for (auto& b : rec) b = static_cast<std::byte>(rng.Next());
    auto off = vol.Append(rec);
    ASSERT_TRUE(off.ok()) << "append " << i << ": " << off.status().ToString();
    ASSERT_EQ(*off, model->bytes.size());
    model->bytes.insert(model->bytes.end(), rec.begin(), rec.end());
    if ((i + 1) % sync_every == 0) {
      Status s = vol.Sync();
      ASSERT_TRUE(s.ok()) << "sync after append " << i << ": " << s.ToString();
      ASSERT_EQ(vol.durable_offset(), model->bytes.size());
    }
  }
  Status s = vol.Sync();
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(vol.durable_offset(), model->bytes.size());
}

// Reads the whole log back, at once and in odd-sized pieces.
void ExpectLogMatches(Volume& vol, const Model& model) {
  ASSERT_EQ(vol.end_offset(), model.bytes.size());
  std::vector<std::byte> all(model.bytes.size());
  Status s = vol.Read(0, all);
  ASSERT_TRUE(s.ok()) << "read of the whole log: " << s.ToString();
  ASSERT_TRUE(all == model.bytes) << "whole-log read returned wrong bytes";
  constexpr size_t kPiece = 10007;
  for (size_t off = 0; off < model.bytes.size(); off += kPiece) {
    const size_t n = std::min(kPiece, model.bytes.size() - off);
    std::vector<std::byte> got(n);
    Status rs = vol.Read(off, got);
    ASSERT_TRUE(rs.ok()) << "read [" << off << ", " << off + n << "): " << rs.ToString();
    ASSERT_TRUE(std::equal(got.begin(), got.end(), model.bytes.begin() + static_cast<long>(off)))
        << "read [" << off << ", " << off + n << ") returned wrong bytes";
  }
}

DiskState StateOf(const Volume& vol, uint32_t d) { return vol.disks().at(d).state; }

void ExpectAllHealthy(const Volume& vol) {
  for (const DiskStatus& d : vol.disks()) {
    EXPECT_EQ(d.state, DiskState::kHealthy) << "disk " << d.index << " (" << d.dir << ")";
  }
}

// A clock that advances only by sleeps, and can hold every sleeper until the
// test lets it go: the test sees the rebuild stopped at a known point.
class GatedClock : public Clock {
 public:
  Nanos Now() override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  int64_t WallNanos() override { return 1'700'000'000'000'000'000 + Now().count(); }
  void SleepFor(Nanos d) override {
    std::unique_lock<std::mutex> lock(mu_);
    now_ += d;
    if (!gated_) return;
    ++blocked_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return permits_ > 0 || !gated_; });
    if (permits_ > 0) --permits_;
  }

  void Gate() {
    std::lock_guard<std::mutex> lock(mu_);
    gated_ = true;
  }
  void Ungate() {
    std::lock_guard<std::mutex> lock(mu_);
    gated_ = false;
    cv_.notify_all();
  }
  // Waits until the count of sleepers that blocked exceeds `seen`; false on
  // timeout.
  bool WaitBlocked(uint64_t seen, std::chrono::seconds timeout = std::chrono::seconds(20)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return blocked_ > seen; });
  }
  uint64_t blocked() {
    std::lock_guard<std::mutex> lock(mu_);
    return blocked_;
  }
  // Lets one blocked sleeper continue.
  void Step() {
    std::lock_guard<std::mutex> lock(mu_);
    ++permits_;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  Nanos now_{Nanos(1'000'000'000)};  // guarded by mu_
  bool gated_ = false;               // guarded by mu_
  uint64_t blocked_ = 0;             // guarded by mu_
  uint64_t permits_ = 0;             // guarded by mu_
};

// ---------------------------------------------------------------------------
// Losing a disk mid-run, replacing it, losing another.

enum class LossMode {
  kPosixRemoveDir,       // rm -rf the directory; the same path re-created as replacement
  kPosixDirBecomesFile,  // the directory replaced by a regular file; a new path as replacement
  kDeadNewDir,           // FaultDisk kDead; a new directory as replacement
  kDeadSameDiskBack,     // FaultDisk kDead; the same disk, old contents and all, comes back
};

const char* LossModeName(LossMode m) {
  switch (m) {
    case LossMode::kPosixRemoveDir:
      return "PosixRemoveDir";
    case LossMode::kPosixDirBecomesFile:
      return "PosixDirBecomesFile";
    case LossMode::kDeadNewDir:
      return "DeadNewDir";
    case LossMode::kDeadSameDiskBack:
      return "DeadSameDiskBack";
  }
  return "?";
}

class VolumeDiskLossTest : public ::testing::TestWithParam<std::tuple<LossMode, uint32_t>> {
 protected:
  void SetUp() override {
    mode_ = std::get<0>(GetParam());
    n_ = std::get<1>(GetParam());
    if (posix()) {
      std::string tmpl = "/tmp/cairn-disk-loss-XXXXXX";
      ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
      root_ = tmpl;
      disk_ = &PosixDiskInstance();
    } else {
      root_ = "/vol";
      ASSERT_TRUE(mem_.CreateDir(root_).ok());
      disk_ = &faults_;
    }
    for (uint32_t i = 0; i < n_; ++i) dirs_.push_back(root_ + "/d" + std::to_string(i));
  }
  void TearDown() override {
    if (posix()) {
      std::error_code ec;
      fs::remove_all(root_, ec);
    }
  }

  bool posix() const {
    return mode_ == LossMode::kPosixRemoveDir || mode_ == LossMode::kPosixDirBecomesFile;
  }
  VolumeOptions Options() const {
    VolumeOptions o;
    o.disk_dirs = dirs_;
    o.max_unit_bytes = kUnit;
    o.segment_bytes = kSegment;
    o.disk = disk_;
    return o;
  }

  // Takes disk `d` away under the running volume.
  void LoseDisk(uint32_t d) {
    switch (mode_) {
      case LossMode::kPosixRemoveDir:
      case LossMode::kPosixDirBecomesFile:
        fs::remove_all(dirs_[d]);
        if (mode_ == LossMode::kPosixDirBecomesFile) std::ofstream(dirs_[d]) << "not a disk\n";
        break;
      case LossMode::kDeadNewDir:
      case LossMode::kDeadSameDiskBack:
        faults_.Inject(dirs_[d], FaultKind::kDead);
        break;
    }
  }

  // Gets the slot of lost disk `d` ready for ReplaceDisk; returns new_dir.
  std::string PrepareReplacement(uint32_t d) {
    switch (mode_) {
      case LossMode::kPosixRemoveDir:
        fs::create_directory(dirs_[d]);
        return "";
      case LossMode::kPosixDirBecomesFile:
        dirs_[d] = root_ + "/spare" + std::to_string(d);
        return dirs_[d];
      case LossMode::kDeadNewDir:
        faults_.ClearFaults(dirs_[d]);
        dirs_[d] = root_ + "/spare" + std::to_string(d);
        return dirs_[d];
      case LossMode::kDeadSameDiskBack:
        faults_.ClearFaults(dirs_[d]);
        return "";
    }
    return "";
  }

  LossMode mode_{};
  uint32_t n_ = 0;
  std::string root_;
  std::vector<std::string> dirs_;
  MemDisk mem_;
  FaultDisk faults_{&mem_, /*seed=*/42};
  Disk* disk_ = nullptr;
};

TEST_P(VolumeDiskLossTest, LoseDiskMidRunReplaceThenLoseAnother) {
  const uint32_t victim = 1 % n_;
  const uint32_t other = (victim + 1) % n_;
  ASSERT_NE(victim, other);
  Random rng(1000 + n_ * 10 + static_cast<uint32_t>(mode_));
  Model model;
  ASSERT_TRUE(Volume::Create(Options()).ok());
  {
    auto opened = Volume::Open(Options());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    Volume& vol = **opened;
    ASSERT_NO_FATAL_FAILURE(AppendRecords(vol, rng, 40, 4, &model));

    LoseDisk(victim);
    // Appends and syncs go on; the loss is noticed (at the latest when a new
    // segment file is made on it) and the disk is marked failed.
    ASSERT_NO_FATAL_FAILURE(AppendRecords(vol, rng, 60, 4, &model));
    EXPECT_EQ(StateOf(vol, victim), DiskState::kFailed);
    EXPECT_GT(vol.disks()[victim].io_errors, 0u);
    for (uint32_t d = 0; d < n_; ++d) {
      if (d != victim) {
        EXPECT_EQ(StateOf(vol, d), DiskState::kHealthy) << "disk " << d;
      }
    }
    ASSERT_NO_FATAL_FAILURE(ExpectLogMatches(vol, model));

    const std::string new_dir = PrepareReplacement(victim);
    Status s = vol.ReplaceDisk(DiskIndex(victim), new_dir);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_NE(StateOf(vol, victim), DiskState::kFailed);
    // Appends during the rebuild go to the new disk too.
    ASSERT_NO_FATAL_FAILURE(AppendRecords(vol, rng, 10, 2, &model));
    vol.WaitForBackgroundWork();
    RebuildProgress p = vol.rebuild_progress();
    EXPECT_FALSE(p.active);
    EXPECT_EQ(p.disk, DiskIndex(victim));
    EXPECT_EQ(p.error, "");
    EXPECT_EQ(p.unrecoverable, 0u);
    EXPECT_GT(p.stripes_total, 0u);
    EXPECT_EQ(p.stripes_done, p.stripes_total);
    ExpectAllHealthy(vol);
    EXPECT_EQ(vol.disks()[victim].dir, dirs_[victim]);
    ASSERT_NO_FATAL_FAILURE(ExpectLogMatches(vol, model));

    if (!posix()) {
      // Lose a different disk under the running volume.
      faults_.Inject(dirs_[other], FaultKind::kDead);
      SCOPED_TRACE("disk " + std::to_string(other) + " dead after the rebuild (live volume)");
      ASSERT_NO_FATAL_FAILURE(ExpectLogMatches(vol, model));
    }
  }
  // Lose a different disk, reopen from what is on the disks, read it all.
  if (posix()) fs::remove_all(dirs_[other]);
  SCOPED_TRACE("disk " + std::to_string(other) + " lost after the rebuild, volume reopened");
  auto reopened = Volume::Open(Options());
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ(StateOf(**reopened, other), DiskState::kFailed);
  EXPECT_EQ(StateOf(**reopened, victim), DiskState::kHealthy);
  ASSERT_NO_FATAL_FAILURE(ExpectLogMatches(**reopened, model));
}

INSTANTIATE_TEST_SUITE_P(
    VolumeDiskLoss, VolumeDiskLossTest,
    ::testing::Combine(::testing::Values(LossMode::kPosixRemoveDir, LossMode::kPosixDirBecomesFile,
                                         LossMode::kDeadNewDir, LossMode::kDeadSameDiskBack),
                       ::testing::Values(2u, 3u, 4u, 5u)),
    [](const ::testing::TestParamInfo<VolumeDiskLossTest::ParamType>& p) {
      return std::string(LossModeName(std::get<0>(p.param))) + "_N" +
             std::to_string(std::get<1>(p.param));
    });

// ---------------------------------------------------------------------------
// Rebuild progress, throttling, and a crash during a rebuild (MemDisk).

class VolumeDiskLossRebuildTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override {
    n_ = GetParam();
    ASSERT_TRUE(mem_.CreateDir("/vol").ok());
    for (uint32_t i = 0; i < n_; ++i) dirs_.push_back("/vol/d" + std::to_string(i));
  }
  VolumeOptions Options(Disk* disk) const {
    VolumeOptions o;
    o.disk_dirs = dirs_;
    o.max_unit_bytes = kUnit;
    o.segment_bytes = kSegment;
    o.disk = disk;
    return o;
  }
  // Creates the volume, fills it with `records` synced records, closes it and
  // removes disk `victim`'s directory.
  void FillAndLose(uint32_t victim, int records) {
    ASSERT_TRUE(Volume::Create(Options(&mem_)).ok());
    auto vol = Volume::Open(Options(&mem_));
    ASSERT_TRUE(vol.ok()) << vol.status().ToString();
    Random rng(77 + n_);
    ASSERT_NO_FATAL_FAILURE(AppendRecords(**vol, rng, records, 1, &model_, 6000));
    vol->reset();
    ASSERT_TRUE(mem_.RemoveDirRecursive(dirs_[victim]).ok());
  }

  uint32_t n_ = 0;
  std::vector<std::string> dirs_;
  MemDisk mem_;
  Model model_;
};

TEST_P(VolumeDiskLossRebuildTest, ProgressMovesWhileRebuilding) {
  const uint32_t victim = n_ - 1;
  ASSERT_NO_FATAL_FAILURE(FillAndLose(victim, 60));
  GatedClock clock;
  VolumeOptions o = Options(&mem_);
  o.clock = &clock;
  o.rebuild_bytes_per_sec = 1 << 20;
  auto opened = Volume::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Volume& vol = **opened;
  ASSERT_EQ(StateOf(vol, victim), DiskState::kFailed);
  EXPECT_FALSE(vol.rebuild_progress().active);

  clock.Gate();
  ASSERT_TRUE(vol.ReplaceDisk(DiskIndex(victim)).ok());
  EXPECT_EQ(StateOf(vol, victim), DiskState::kRebuilding);
  std::future<void> done = std::async(std::launch::async, [&] { vol.WaitForBackgroundWork(); });
  // Each throttle sleep holds the rebuild: sample the progress there.
  std::vector<RebuildProgress> samples;
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(clock.WaitBlocked(static_cast<uint64_t>(i))) << "the rebuild never slept";
    samples.push_back(vol.rebuild_progress());
    clock.Step();
  }
  clock.Ungate();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  const RebuildProgress last = vol.rebuild_progress();

  for (size_t i = 0; i < samples.size(); ++i) {
    const RebuildProgress& p = samples[i];
    EXPECT_TRUE(p.active) << "sample " << i;
    EXPECT_EQ(p.disk, DiskIndex(victim));
    EXPECT_GT(p.stripes_total, samples.size());
    EXPECT_LT(p.stripes_done, p.stripes_total) << "sample " << i;
    EXPECT_EQ(p.stripes_total, last.stripes_total);
    if (i > 0) {
      EXPECT_GT(p.stripes_done, samples[i - 1].stripes_done) << "sample " << i;
      EXPECT_GT(p.units_rewritten, samples[i - 1].units_rewritten) << "sample " << i;
      EXPECT_GT(p.bytes_written, samples[i - 1].bytes_written) << "sample " << i;
    }
  }
  EXPECT_FALSE(last.active);
  EXPECT_EQ(last.stripes_done, last.stripes_total);
  EXPECT_EQ(last.units_rewritten, last.stripes_total);  // the new disk was empty
  EXPECT_EQ(last.unrecoverable, 0u);
  EXPECT_EQ(last.error, "");
  ExpectAllHealthy(vol);
  ASSERT_NO_FATAL_FAILURE(ExpectLogMatches(vol, model_));
}

TEST_P(VolumeDiskLossRebuildTest, RebuildIsThrottledToTheConfiguredRate) {
  const uint32_t victim = 0;
  ASSERT_NO_FATAL_FAILURE(FillAndLose(victim, 40));
  constexpr uint64_t kRate = 64 << 10;  // bytes per second
  ManualClock clock;
  VolumeOptions o = Options(&mem_);
  o.clock = &clock;
  o.rebuild_bytes_per_sec = kRate;
  auto opened = Volume::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Volume& vol = **opened;
  const Nanos t0 = clock.Now();
  ASSERT_TRUE(vol.ReplaceDisk(DiskIndex(victim)).ok());
  vol.WaitForBackgroundWork();
  const Nanos slept = clock.Now() - t0;
  const RebuildProgress p = vol.rebuild_progress();
  ASSERT_EQ(p.error, "");
  ASSERT_GT(p.bytes_written, 0u);
  // Nothing but the throttle moves this clock: it slept bytes / rate in total.
  const double expected_s = static_cast<double>(p.bytes_written) / static_cast<double>(kRate);
  const double slept_s = std::chrono::duration<double>(slept).count();
  EXPECT_GT(expected_s, 0.5);  // the test rebuilds enough to mean something
  EXPECT_NEAR(slept_s, expected_s, expected_s * 0.02)
      << p.bytes_written << " bytes at " << kRate << " B/s";
  ExpectAllHealthy(vol);
  ASSERT_NO_FATAL_FAILURE(ExpectLogMatches(vol, model_));
}

TEST_P(VolumeDiskLossRebuildTest, UnthrottledRebuildNeverSleeps) {
  ASSERT_NO_FATAL_FAILURE(FillAndLose(0, 20));
  ManualClock clock;
  VolumeOptions o = Options(&mem_);
  o.clock = &clock;
  auto opened = Volume::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  const Nanos t0 = clock.Now();
  ASSERT_TRUE((*opened)->ReplaceDisk(DiskIndex(0)).ok());
  (*opened)->WaitForBackgroundWork();
  EXPECT_EQ(clock.Now(), t0);
  EXPECT_GT((*opened)->rebuild_progress().bytes_written, 0u);
}

TEST_P(VolumeDiskLossRebuildTest, CrashDuringRebuildResumesOnReopen) {
  const uint32_t victim = n_ / 2;
  const uint32_t other = (victim + 1) % n_;
  ASSERT_NO_FATAL_FAILURE(FillAndLose(victim, 60));
  // The volume runs over a FaultDisk so that at the "crash" every disk can be
  // made dead at once: the old Volume object must not write anything after the
  // power is cut (it still has threads running until it is destroyed).
  FaultDisk faults(&mem_, /*seed=*/5);
  GatedClock clock;
  uint64_t done_before_crash = 0;
  {
    VolumeOptions o = Options(&faults);
    o.clock = &clock;
    o.rebuild_bytes_per_sec = 1 << 20;
    auto opened = Volume::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    Volume& vol = **opened;
    clock.Gate();
    ASSERT_TRUE(vol.ReplaceDisk(DiskIndex(victim)).ok());
    for (uint64_t i = 0; i < 5; ++i) {
      ASSERT_TRUE(clock.WaitBlocked(i)) << "the rebuild never slept";
      if (i < 4) clock.Step();
    }
    const RebuildProgress p = vol.rebuild_progress();
    ASSERT_TRUE(p.active);
    ASSERT_LT(p.stripes_done, p.stripes_total);
    done_before_crash = p.stripes_done;
    ASSERT_EQ(StateOf(vol, victim), DiskState::kRebuilding);
    // Power cut: nothing more reaches the disks, unsynced writes are lost.
    faults.Inject("/", FaultKind::kDead);
    Random rng(9);
    mem_.Crash(MemDisk::CrashMode::kDropUnsynced, &rng);
    clock.Ungate();
  }  // the old volume stops
  EXPECT_GT(done_before_crash, 0u);
  faults.ClearFaults();

  auto reopened = Volume::Open(Options(&faults));
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  Volume& vol = **reopened;
  // The rebuild state survived the crash and the rebuild resumed at open.
  const RebuildProgress resumed = vol.rebuild_progress();
  EXPECT_TRUE(resumed.active || StateOf(vol, victim) == DiskState::kHealthy);
  EXPECT_EQ(resumed.disk, DiskIndex(victim));
  vol.WaitForBackgroundWork();
  const RebuildProgress p = vol.rebuild_progress();
  EXPECT_FALSE(p.active);
  EXPECT_EQ(p.error, "");
  EXPECT_EQ(p.unrecoverable, 0u);
  EXPECT_GT(p.stripes_total, 0u);
  EXPECT_EQ(p.stripes_done, p.stripes_total);
  ExpectAllHealthy(vol);
  ASSERT_NO_FATAL_FAILURE(ExpectLogMatches(vol, model_));

  // Full redundancy again: a different disk dies, everything still reads.
  faults.Inject(dirs_[other], FaultKind::kDead);
  SCOPED_TRACE("disk " + std::to_string(other) + " dead after the resumed rebuild");
  ASSERT_NO_FATAL_FAILURE(ExpectLogMatches(vol, model_));
}

INSTANTIATE_TEST_SUITE_P(VolumeDiskLossRebuild, VolumeDiskLossRebuildTest,
                         ::testing::Values(2u, 3u, 4u, 5u),
                         [](const ::testing::TestParamInfo<uint32_t>& p) {
                           return "N" + std::to_string(p.param);
                         });

}  // namespace
}  // namespace cairn::raidlib
