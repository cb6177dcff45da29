// Corruption tests of raidlib::Volume: damage the stored units behind its back
// (bit flips in headers and payloads, zeroed ranges, truncated units, through
// the MemDisk test helpers) or make one disk misbehave (FaultDisk: flipped
// bits on read, lost writes, read errors), at most one unit per stripe, and
// check that
//  - every Read still returns exactly the bytes appended;
//  - the damage is counted (stats().corruptions_detected, reconstructed_reads,
//    disks()[d].checksum_errors) on the right disk only;
//  - after WaitForBackgroundWork() the bad copy holds its original bytes again,
//    and a Scrub() afterwards is clean;
//  - Scrub() finds and repairs damage no read has seen, durably;
// and, beyond the redundancy: two bad units in one stripe (or one on a
// one-disk volume) give DataLoss, never wrong bytes, and Scrub reports the
// stripe as unrecoverable.
// Seeds: CAIRN_SEED=<n> replays one, CAIRN_LONG=1 runs many more.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/fault_disk.h"
#include "common/mem_disk.h"
#include "common/random.h"
#include "raidlib/volume.h"
#include "tests/common/crash_point_disk.h"
#include "tests/raidlib/volume_fault_util.h"

namespace cairn::raidlib {
namespace {

using testutil::CrashPointDisk;
using vtest::DiskDirs;
using vtest::ExpectRangeReadsBack;
using vtest::ExpectUnitsMatchSnapshot;
using vtest::FileRange;
using vtest::FillData;
using vtest::ReadAndCompare;
using vtest::Seeds;
using vtest::SeedTrace;
using vtest::StripeLoc;
using vtest::UnitLoc;

enum class Damage { kPayloadBit, kHeaderBit, kZeroRange, kTruncate };

const char* DamageName(Damage d) {
  switch (d) {
    case Damage::kPayloadBit:
      return "payload bit flip";
    case Damage::kHeaderBit:
      return "header bit flip";
    case Damage::kZeroRange:
      return "zeroed range";
    case Damage::kTruncate:
      return "truncated unit";
  }
  return "?";
}

// What a test did to one unit.
struct Damaged {
  uint32_t stripe_index;  // into Rig::stripes()
  DiskIndex disk;
  Damage kind;
  bool read_visible;  // a Read of the stripe's data must notice it
};

// A volume over MemDisk <- CrashPointDisk <- FaultDisk, with its model and a
// map of its units.
class Rig {
 public:
  Rig(uint32_t n, uint64_t seed) : n_(n), seed_(seed), rng_(seed) {
    opts_.disk_dirs = DiskDirs(n);
    opts_.max_unit_bytes = rng_.OneIn(2) ? 16384 : 65536;
    opts_.segment_bytes = rng_.OneIn(2) ? (256 << 10) : (1 << 20);
    opts_.max_pending_bytes = 1 << 20;
  }
  ~Rig() {
    if (cdisk_) cdisk_->CutPower(MemDisk::CrashMode::kDropUnsynced, 0);
    vol_.reset();
  }

  std::string Describe() const {
    return "N=" + std::to_string(n_) + " max_unit_bytes=" + std::to_string(opts_.max_unit_bytes) +
           " segment_bytes=" + std::to_string(opts_.segment_bytes);
  }

  // Creates, opens and fills the volume with about `total` bytes in three
  // synced parts, then maps its stripes and snapshots its segment files.
  void Build(uint64_t total) {
    {
      VolumeOptions o = opts_;
      o.disk = &mem_;
      Status s = Volume::Create(o);
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    ASSERT_NO_FATAL_FAILURE(Open());
    for (int part = 1; part <= 3; ++part) {
      while (model_.size() < total * static_cast<uint64_t>(part) / 3) {
        uint64_t len = std::min<uint64_t>(vtest::RandomAppendSize(&rng_), 700 << 10);
        ASSERT_NO_FATAL_FAILURE(Append(len));
      }
      Status s = vol_->Sync();
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    ASSERT_NO_FATAL_FAILURE(MapAndSnapshot());
  }

  void Append(uint64_t len) {
    std::vector<std::byte> data(len);
    FillData(seed_ * 31 + model_.size(), model_.size(), data);
    auto off = vol_->Append(data);
    ASSERT_TRUE(off.ok()) << off.status().ToString();
    ASSERT_EQ(*off, model_.size());
    model_.insert(model_.end(), data.begin(), data.end());
  }

  void MapAndSnapshot() {
    auto m = vtest::MapStripes(mem_, opts_.disk_dirs);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    stripes_ = std::move(*m);
    // The map must explain the whole log, or the test cannot aim.
    uint64_t pos = 0;
    for (const StripeLoc& s : stripes_) {
      ASSERT_EQ(s.g.logical_start, pos) << "test setup: stripe map has a gap or overlap";
      ASSERT_EQ(s.units.size(), s.g.members()) << "test setup: a unit was not found";
      pos = s.g.logical_end();
    }
    ASSERT_EQ(pos, model_.size()) << "test setup: stripe map does not cover the log";
    snap_ = vtest::SnapshotSegments(mem_, opts_.disk_dirs);
  }

  void Open() {
    cdisk_ = std::make_unique<CrashPointDisk>(&mem_);
    fault_ = std::make_unique<FaultDisk>(cdisk_.get(), seed_ ^ 0xFA17);
    opts_.disk = fault_.get();
    auto r = Volume::Open(opts_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    vol_ = std::move(r).value();
  }

  void Close() {
    vol_.reset();
    fault_.reset();
    cdisk_.reset();
  }

  // A power cut (only what was synced survives), then a reopen.
  void CrashAndReopen() {
    cdisk_->CutPower(MemDisk::CrashMode::kDropUnsynced, rng_.Next());
    Close();
    ASSERT_NO_FATAL_FAILURE(Open());
  }

  // WaitForBackgroundWork(), bounded: a repair or rebuild that never ends is
  // a failure, not a hung test. On timeout the volume is closed (which stops
  // its background threads) and false is returned.
  bool Wait(const char* what, int seconds = 20) {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Volume* v = vol_.get();
    std::thread waiter([&] {
      v->WaitForBackgroundWork();
      std::lock_guard<std::mutex> lock(mu);
      done = true;
      cv.notify_all();
    });
    bool ok;
    {
      std::unique_lock<std::mutex> lock(mu);
      ok = cv.wait_for(lock, std::chrono::seconds(seconds), [&] { return done; });
    }
    if (!ok) {
      VolumeStats st = vol_->stats();
      ADD_FAILURE() << what << ": WaitForBackgroundWork() did not return within " << seconds
                    << " s (" << st.corruptions_detected << " corruptions detected, "
                    << st.repairs_done << " repairs done so far): background work never finishes";
      vol_.reset();  // stops the background threads, which releases the waiter
    }
    waiter.join();
    return ok;
  }

  void ExpectAllReadsBack(const char* what) {
    ExpectRangeReadsBack(*vol_, model_, 0, model_.size(), &rng_, what);
  }

  // Damages the unit of stripe `si` on disk `d` in the way `kind` says.
  // Returns whether a Read of the stripe's data will meet the damage.
  bool DamageUnit(uint32_t si, DiskIndex d, Damage kind) {
    const StripeLoc& s = stripes_[si];
    const UnitLoc& u = s.units.at(d.value());
    const auto range = s.DataRange(d);
    const uint64_t data_bytes = range.second - range.first;  // 0: parity or an empty data unit
    // The payload's meaningful bytes: a data unit's data (what a read sees),
    // or for parity the part over data (beyond it parity is all zeros). A
    // data unit past the end of a short stripe has none: all padding.
    const uint64_t meaningful =
        s.IsParity(d) ? std::min<uint64_t>(s.g.unit_len, s.g.data_len) : data_bytes;
    const bool visible = data_bytes > 0;
    switch (kind) {
      case Damage::kPayloadBit: {
        uint64_t byte =
            u.payload_offset() + rng_.Uniform(meaningful > 0 ? meaningful : s.g.unit_len);
        EXPECT_TRUE(mem_.FlipBit(u.path, byte * 8 + rng_.Uniform(8)).ok());
        return visible;
      }
      case Damage::kHeaderBit: {
        uint64_t byte = u.file_offset + rng_.Uniform(u.header_meaningful());
        EXPECT_TRUE(mem_.FlipBit(u.path, byte * 8 + rng_.Uniform(8)).ok());
        return visible;
      }
      case Damage::kZeroRange: {
        uint64_t off, len;
        if (meaningful == 0 || rng_.OneIn(2)) {  // over the start of the header (magic and more)
          off = u.file_offset;
          len = 16 + rng_.Uniform(u.header_meaningful() - 16);
        } else {  // inside the payload's meaningful part
          len = std::min<uint64_t>(meaningful, 16 + rng_.Uniform(3 * kChunkSize));
          off = u.payload_offset() + rng_.Uniform(meaningful - len + 1);
        }
        std::vector<std::byte> before = FileRange(mem_, u.path, off, len);
        EXPECT_TRUE(mem_.Corrupt(u.path, off, std::vector<std::byte>(len)).ok());
        EXPECT_NE(before, std::vector<std::byte>(len)) << "test setup: zeroed zeros";
        return visible;
      }
      case Damage::kTruncate: {
        // Only for the last unit of its file (see LastInFile): cut somewhere
        // inside the header or the meaningful payload.
        uint64_t cut = meaningful == 0 || rng_.OneIn(3)
                           ? u.file_offset + rng_.Uniform(u.header_meaningful())
                           : u.payload_offset() + rng_.Uniform(meaningful);
        EXPECT_TRUE(mem_.TruncateFile(u.path, cut).ok());
        return visible;
      }
    }
    return false;
  }

  // Whether the unit of stripe `si` on `d` is the last one in its file.
  bool LastInFile(uint32_t si, DiskIndex d) const {
    const UnitLoc& u = stripes_[si].units.at(d.value());
    for (const StripeLoc& s : stripes_) {
      auto it = s.units.find(d.value());
      if (it != s.units.end() && it->second.path == u.path &&
          it->second.file_offset > u.file_offset) {
        return false;
      }
    }
    return true;
  }

  // Damages one unit in each of `count` distinct random stripes (among those
  // with at least two members), with random kinds from `kinds`.
  std::vector<Damaged> DamageStripes(uint32_t count, const std::vector<Damage>& kinds) {
    std::vector<uint32_t> candidates;
    for (uint32_t i = 0; i < stripes_.size(); ++i) {
      if (stripes_[i].g.members() >= 2) candidates.push_back(i);
    }
    std::vector<Damaged> out;
    std::set<uint32_t> used;
    for (uint32_t k = 0; k < count && used.size() < candidates.size(); ++k) {
      uint32_t si;
      do {
        si = candidates[rng_.Uniform(candidates.size())];
      } while (used.count(si));
      used.insert(si);
      const StripeLoc& s = stripes_[si];
      auto it = s.units.begin();
      std::advance(it, static_cast<long>(rng_.Uniform(s.units.size())));
      DiskIndex d(it->first);
      Damage kind = kinds[rng_.Uniform(kinds.size())];
      if (kind == Damage::kTruncate && !LastInFile(si, d)) kind = Damage::kPayloadBit;
      bool visible = DamageUnit(si, d, kind);
      out.push_back({si, d, kind, visible});
    }
    return out;
  }

  std::string DescribeDamage(const std::vector<Damaged>& ds) const {
    std::string out;
    for (const Damaged& x : ds) {
      const StripeLoc& s = stripes_[x.stripe_index];
      out += "\n  stripe seq " + std::to_string(s.g.seq.value()) + " [" +
             std::to_string(s.g.logical_start) + ", " + std::to_string(s.g.logical_end()) +
             ") disk " + std::to_string(x.disk.value()) + (s.IsParity(x.disk) ? " (parity)" : "") +
             ": " + DamageName(x.kind) + (x.read_visible ? "" : " (not visible to reads)");
    }
    return out;
  }

  CrashPointDisk& cdisk() { return *cdisk_; }
  uint32_t n() const { return n_; }
  Random& rng() { return rng_; }
  MemDisk& mem() { return mem_; }
  FaultDisk& fault() { return *fault_; }
  Volume& vol() { return *vol_; }
  VolumeOptions& opts() { return opts_; }
  std::vector<std::byte>& model() { return model_; }
  const std::vector<StripeLoc>& stripes() const { return stripes_; }
  const std::map<std::string, std::vector<std::byte>>& snap() const { return snap_; }

 private:
  const uint32_t n_;
  const uint64_t seed_;
  Random rng_;
  MemDisk mem_;
  std::unique_ptr<CrashPointDisk> cdisk_;
  std::unique_ptr<FaultDisk> fault_;
  VolumeOptions opts_;
  std::unique_ptr<Volume> vol_;
  std::vector<std::byte> model_;
  std::vector<StripeLoc> stripes_;
  std::map<std::string, std::vector<std::byte>> snap_;
};

std::string ScrubText(const ScrubReport& r) {
  std::string s = "stripes " + std::to_string(r.stripes_checked) + ", bad units " +
                  std::to_string(r.bad_units) + ", repaired " + std::to_string(r.repaired_units) +
                  ", degraded " + std::to_string(r.degraded_stripes) + ", unrecoverable " +
                  std::to_string(r.unrecoverable_stripes);
  for (size_t i = 0; i < r.problems.size() && i < 5; ++i) s += "\n  " + r.problems[i];
  return s;
}

// Scrubs, expecting success; returns the report.
ScrubReport MustScrub(Volume& v) {
  auto r = v.Scrub();
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : ScrubReport{};
}

class VolumeCorruptionTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  uint32_t N() const { return GetParam(); }
  vtest::QuietLogs quiet_;
};

const std::vector<Damage> kAllDamage = {Damage::kPayloadBit, Damage::kHeaderBit, Damage::kZeroRange,
                                        Damage::kTruncate};

// Damage one unit in several stripes while the volume is open; reads must
// reconstruct, count and repair it; a scrub then finds only what reads could
// not see, repairs it, and the next scrub is clean. All units end up exactly
// as first written, and the repairs survive a power cut.
TEST_P(VolumeCorruptionTest, DamagedUnitsAreReconstructedCountedAndRepaired) {
  for (uint64_t seed : Seeds(4, 100 + N())) {
    SCOPED_TRACE(SeedTrace(seed));
    Rig rig(N(), seed);
    SCOPED_TRACE(rig.Describe());
    ASSERT_NO_FATAL_FAILURE(rig.Build(3 << 20));
    auto damage = rig.DamageStripes(2 + static_cast<uint32_t>(rig.rng().Uniform(6)), kAllDamage);
    SCOPED_TRACE("damage:" + rig.DescribeDamage(damage));
    uint64_t visible = 0, invisible = 0;
    std::vector<uint64_t> visible_on(N(), 0), any_on(N(), 0);
    for (const Damaged& d : damage) {
      (d.read_visible ? visible : invisible)++;
      if (d.read_visible) visible_on[d.disk.value()]++;
      any_on[d.disk.value()]++;
    }

    rig.ExpectAllReadsBack("with damaged units");
    VolumeStats st = rig.vol().stats();
    EXPECT_GE(st.corruptions_detected, visible);
    if (visible > 0) {
      EXPECT_GE(st.reconstructed_reads, 1u);
    }
    auto disks = rig.vol().disks();
    for (uint32_t d = 0; d < N(); ++d) {
      EXPECT_GE(disks[d].checksum_errors, visible_on[d]) << "disk " << d;
      if (any_on[d] == 0) {
        EXPECT_EQ(disks[d].checksum_errors, 0u) << "disk " << d;
      }
      EXPECT_EQ(disks[d].state, DiskState::kHealthy) << "disk " << d;
    }

    ASSERT_TRUE(rig.Wait("after reads"));
    st = rig.vol().stats();
    EXPECT_GE(st.repairs_done, visible);
    disks = rig.vol().disks();
    for (uint32_t d = 0; d < N(); ++d) {
      EXPECT_GE(disks[d].repaired_units, visible_on[d]) << "disk " << d;
    }

    ScrubReport first = MustScrub(rig.vol());
    SCOPED_TRACE("first scrub: " + ScrubText(first));
    EXPECT_EQ(first.unrecoverable_stripes, 0u);
    if (N() >= 3) {
      // Reads touch parity only to reconstruct; what they could not see is
      // exactly what the scrub must find.
      EXPECT_EQ(first.bad_units, invisible);
    } else {
      EXPECT_LE(first.bad_units, invisible);  // a mirror may read either copy
    }
    EXPECT_EQ(first.repaired_units, first.bad_units);
    ASSERT_TRUE(rig.Wait("after first scrub"));
    ExpectUnitsMatchSnapshot(rig.mem(), rig.stripes(), rig.snap(), "after read repair and scrub");

    ScrubReport second = MustScrub(rig.vol());
    EXPECT_TRUE(second.clean()) << "second scrub: " << ScrubText(second);
    EXPECT_EQ(second.bad_units, 0u);
    const uint64_t detected = rig.vol().stats().corruptions_detected;
    rig.ExpectAllReadsBack("after repair");
    EXPECT_EQ(rig.vol().stats().corruptions_detected, detected) << "repaired units still bad";

    // The repairs are durable.
    ASSERT_NO_FATAL_FAILURE(rig.CrashAndReopen());
    ExpectUnitsMatchSnapshot(rig.mem(), rig.stripes(), rig.snap(), "after a power cut");
    ScrubReport third = MustScrub(rig.vol());
    EXPECT_TRUE(third.clean()) << "scrub after power cut: " << ScrubText(third);
    rig.ExpectAllReadsBack("after power cut");
    if (HasFailure()) return;
  }
}

// The read path's unit-header cache (VolumeOptions::header_cache_bytes):
// after one pass of reads, reads take every header from memory. Damage to a
// cached header is then not seen by reads (they check chunks against the
// checksums read first, which are the ones written) but is found by Scrub,
// which reads headers on disk; damage to a payload is seen by reads as
// before. Every read returns the bytes appended throughout.
TEST_P(VolumeCorruptionTest, CachedHeadersStillCatchBadChunksAndScrubReadsHeadersOnDisk) {
  for (uint64_t seed : Seeds(3, 130 + N())) {
    SCOPED_TRACE(SeedTrace(seed));
    Rig rig(N(), seed);
    rig.opts().header_cache_from = 0;  // every read may use the cache
    SCOPED_TRACE(rig.Describe());
    ASSERT_NO_FATAL_FAILURE(rig.Build(3 << 20));
    rig.ExpectAllReadsBack("first pass");
    const VolumeStats first = rig.vol().stats();
    EXPECT_GT(first.header_cache_misses, 0u);
    EXPECT_GT(first.header_cache_bytes, 0u);
    rig.ExpectAllReadsBack("second pass");
    const VolumeStats second = rig.vol().stats();
    EXPECT_EQ(second.header_cache_misses, first.header_cache_misses) << "a header was read again";
    EXPECT_GT(second.header_cache_hits, first.header_cache_hits);
    EXPECT_EQ(second.corruptions_detected, 0u);

    auto damage = rig.DamageStripes(8, {Damage::kHeaderBit, Damage::kPayloadBit});
    SCOPED_TRACE("damage:" + rig.DescribeDamage(damage));
    uint64_t headers = 0, payloads_seen = 0, payloads_unseen = 0;
    for (const Damaged& d : damage) {
      if (d.kind == Damage::kHeaderBit) {
        ++headers;
      } else {
        (d.read_visible ? payloads_seen : payloads_unseen)++;
      }
    }
    rig.ExpectAllReadsBack("with damage");
    EXPECT_GE(rig.vol().stats().corruptions_detected, payloads_seen);
    if (payloads_seen == 0) {
      EXPECT_EQ(rig.vol().stats().corruptions_detected, 0u) << "a read re-read a cached header";
    }
    ASSERT_TRUE(rig.Wait("after reads"));
    ScrubReport r = MustScrub(rig.vol());
    SCOPED_TRACE("scrub: " + ScrubText(r));
    EXPECT_EQ(r.unrecoverable_stripes, 0u);
    if (N() >= 3) {
      // Reads repaired the payloads they met; the scrub finds the rest, and
      // every damaged header.
      EXPECT_EQ(r.bad_units, headers + payloads_unseen);
    } else {
      EXPECT_GE(r.bad_units, headers);  // a mirror may read either copy
    }
    ASSERT_TRUE(rig.Wait("after scrub"));
    ExpectUnitsMatchSnapshot(rig.mem(), rig.stripes(), rig.snap(), "after read repair and scrub");
    rig.ExpectAllReadsBack("after repair");
    if (HasFailure()) return;
  }
}

// Damage nobody has read: Scrub must find every damaged unit, repair it
// exactly and durably, and count it.
TEST_P(VolumeCorruptionTest, ScrubFindsAndRepairsUnreportedDamage) {
  for (uint64_t seed : Seeds(4, 110 + N())) {
    SCOPED_TRACE(SeedTrace(seed));
    Rig rig(N(), seed);
    SCOPED_TRACE(rig.Describe());
    ASSERT_NO_FATAL_FAILURE(rig.Build(3 << 20));
    auto damage = rig.DamageStripes(4 + static_cast<uint32_t>(rig.rng().Uniform(10)), kAllDamage);
    SCOPED_TRACE("damage:" + rig.DescribeDamage(damage));
    std::vector<uint64_t> on(N(), 0);
    for (const Damaged& d : damage) on[d.disk.value()]++;

    ScrubReport r = MustScrub(rig.vol());
    SCOPED_TRACE("scrub: " + ScrubText(r));
    EXPECT_EQ(r.bad_units, damage.size());
    EXPECT_EQ(r.repaired_units, damage.size());
    EXPECT_EQ(r.unrecoverable_stripes, 0u);
    EXPECT_GE(r.problems.size(), damage.size());
    EXPECT_FALSE(r.clean());
    EXPECT_GE(r.stripes_checked, rig.stripes().size());
    EXPECT_GE(rig.vol().stats().corruptions_detected, damage.size());
    auto disks = rig.vol().disks();
    for (uint32_t d = 0; d < N(); ++d) {
      EXPECT_GE(disks[d].checksum_errors, on[d]) << "disk " << d;
      EXPECT_GE(disks[d].repaired_units, on[d]) << "disk " << d;
      if (on[d] == 0) {
        EXPECT_EQ(disks[d].checksum_errors, 0u) << "disk " << d;
      }
    }
    ASSERT_TRUE(rig.Wait("after scrub"));
    ExpectUnitsMatchSnapshot(rig.mem(), rig.stripes(), rig.snap(), "after scrub");
    ScrubReport again = MustScrub(rig.vol());
    EXPECT_TRUE(again.clean()) << "second scrub: " << ScrubText(again);
    rig.ExpectAllReadsBack("after scrub");
    EXPECT_EQ(rig.vol().stats().reconstructed_reads, 0u) << "reads met damage the scrub left";

    ASSERT_NO_FATAL_FAILURE(rig.CrashAndReopen());
    ExpectUnitsMatchSnapshot(rig.mem(), rig.stripes(), rig.snap(), "scrub repairs after power cut");
    ScrubReport after = MustScrub(rig.vol());
    EXPECT_TRUE(after.clean()) << "scrub after power cut: " << ScrubText(after);
    if (HasFailure()) return;
  }
}

// Damage made while the volume is closed, including to the newest stripe
// (the log's tail): the open must keep every synced byte (a damaged synced
// tail is repairable, not a torn write to cut off), reads reconstruct, and
// read + scrub leave every unit as first written.
TEST_P(VolumeCorruptionTest, DamageWhileClosedIncludingTheTail) {
  for (uint64_t seed : Seeds(4, 120 + N())) {
    SCOPED_TRACE(SeedTrace(seed));
    Rig rig(N(), seed);
    SCOPED_TRACE(rig.Describe());
    ASSERT_NO_FATAL_FAILURE(rig.Build(2 << 20));
    rig.Close();
    auto damage = rig.DamageStripes(1 + static_cast<uint32_t>(rig.rng().Uniform(5)), kAllDamage);
    // The tail stripe, on a random member, unless already damaged.
    const uint32_t last = static_cast<uint32_t>(rig.stripes().size() - 1);
    bool tail_done = false;
    for (const Damaged& d : damage) tail_done |= d.stripe_index == last;
    if (!tail_done && rig.stripes()[last].g.members() >= 2) {
      const StripeLoc& s = rig.stripes()[last];
      auto it = s.units.begin();
      std::advance(it, static_cast<long>(rig.rng().Uniform(s.units.size())));
      Damage kind = kAllDamage[rig.rng().Uniform(kAllDamage.size())];
      bool vis = rig.DamageUnit(last, DiskIndex(it->first), kind);
      damage.push_back({last, DiskIndex(it->first), kind, vis});
    }
    SCOPED_TRACE("damage:" + rig.DescribeDamage(damage));
    ASSERT_NO_FATAL_FAILURE(rig.Open());
    ASSERT_EQ(rig.vol().end_offset(), rig.model().size()) << "open cut synced data";
    rig.ExpectAllReadsBack("after reopen with damage");
    ASSERT_TRUE(rig.Wait("after reads"));
    ScrubReport r = MustScrub(rig.vol());
    EXPECT_EQ(r.unrecoverable_stripes, 0u) << ScrubText(r);
    ASSERT_TRUE(rig.Wait("after scrub"));
    ExpectUnitsMatchSnapshot(rig.mem(), rig.stripes(), rig.snap(), "after reopen, read, scrub");
    ScrubReport again = MustScrub(rig.vol());
    EXPECT_TRUE(again.clean()) << "second scrub: " << ScrubText(again);
    // And the volume goes on: append, sync, power cut, all there.
    ASSERT_NO_FATAL_FAILURE(rig.Append(300000));
    ASSERT_TRUE(rig.vol().Sync().ok());
    ASSERT_NO_FATAL_FAILURE(rig.CrashAndReopen());
    ASSERT_EQ(rig.vol().end_offset(), rig.model().size());
    rig.ExpectAllReadsBack("after more appends and a power cut");
    if (HasFailure()) return;
  }
}

// The power goes out at a random write while repairs run (a scrub's, and
// the background repairs of reads). A torn repair is still one bad unit per
// stripe: after reopen everything reads back, and read + scrub make it whole.
TEST_P(VolumeCorruptionTest, PowerCutDuringRepair) {
  for (uint64_t seed : Seeds(4, 125 + N())) {
    SCOPED_TRACE(SeedTrace(seed));
    Rig rig(N(), seed);
    SCOPED_TRACE(rig.Describe());
    ASSERT_NO_FATAL_FAILURE(rig.Build(2 << 20));
    auto damage = rig.DamageStripes(3 + static_cast<uint32_t>(rig.rng().Uniform(8)), kAllDamage);
    SCOPED_TRACE("damage:" + rig.DescribeDamage(damage));
    const uint64_t at = rig.cdisk().mutating_ops() + rig.rng().Uniform(2 * damage.size() + 2);
    rig.cdisk().ArmCrash(
        at, rig.rng().OneIn(2),
        rig.rng().OneIn(2) ? MemDisk::CrashMode::kDropUnsynced : MemDisk::CrashMode::kRandomPartial,
        rig.rng().Next());
    if (rig.rng().OneIn(2)) {
      auto r = rig.vol().Scrub();  // may fail once the power is out
      (void)r;
    } else {
      for (uint64_t off = 0; off < rig.model().size(); off += 100000) {
        std::vector<std::byte> buf(std::min<uint64_t>(100000, rig.model().size() - off));
        Status st = rig.vol().Read(off, buf);  // may fail once the power is out
        (void)st;
      }
    }
    ASSERT_TRUE(rig.Wait("repairs at the power cut"));
    ASSERT_NO_FATAL_FAILURE(rig.CrashAndReopen());
    ASSERT_EQ(rig.vol().end_offset(), rig.model().size());
    rig.ExpectAllReadsBack("after a power cut during repair");
    ASSERT_TRUE(rig.Wait("after reads"));
    ScrubReport r = MustScrub(rig.vol());
    EXPECT_EQ(r.unrecoverable_stripes, 0u) << ScrubText(r);
    ASSERT_TRUE(rig.Wait("after scrub"));
    ExpectUnitsMatchSnapshot(rig.mem(), rig.stripes(), rig.snap(), "after repair");
    ScrubReport again = MustScrub(rig.vol());
    EXPECT_TRUE(again.clean()) << ScrubText(again);
    if (HasFailure()) return;
  }
}

// One disk silently loses writes (all of them, or one in three) while data
// is appended and synced. Every synced byte reads back, also after a power
// cut; the scrub repairs the holes and then is clean.
TEST_P(VolumeCorruptionTest, LostWritesOnOneDisk) {
  for (uint64_t seed : Seeds(4, 130 + N())) {
    SCOPED_TRACE(SeedTrace(seed));
    Rig rig(N(), seed);
    SCOPED_TRACE(rig.Describe());
    ASSERT_NO_FATAL_FAILURE(rig.Build(256 << 10));
    const uint32_t bad = static_cast<uint32_t>(rig.rng().Uniform(N()));
    const uint64_t one_in = rig.rng().OneIn(2) ? 1 : 3;
    SCOPED_TRACE("disk " + std::to_string(bad) + " loses 1 write in " + std::to_string(one_in));
    rig.fault().Inject("/d" + std::to_string(bad) + "/", FaultKind::kLostWrite, one_in);
    for (int part = 0; part < 3; ++part) {
      for (int i = 0; i < 6; ++i) {
        ASSERT_NO_FATAL_FAILURE(rig.Append(1 + rig.rng().Uniform(300 << 10)));
      }
      ASSERT_TRUE(rig.vol().Sync().ok());
    }
    for (int i = 0; i < 50 && rig.fault().injected() == 0; ++i) {
      ASSERT_NO_FATAL_FAILURE(rig.Append(1 + rig.rng().Uniform(300 << 10)));
      ASSERT_TRUE(rig.vol().Sync().ok());
    }
    ASSERT_GT(rig.fault().injected(), 0u) << "test setup: no write was lost";
    rig.fault().ClearFaults();
    if (rig.rng().OneIn(2)) {
      ASSERT_NO_FATAL_FAILURE(rig.CrashAndReopen());
      ASSERT_EQ(rig.vol().end_offset(), rig.model().size()) << "synced data cut at reopen";
    }
    rig.ExpectAllReadsBack("with lost writes");
    ASSERT_TRUE(rig.Wait("after reads"));
    ScrubReport r = MustScrub(rig.vol());
    EXPECT_EQ(r.unrecoverable_stripes, 0u) << ScrubText(r);
    auto disks = rig.vol().disks();
    for (uint32_t d = 0; d < N(); ++d) {
      if (d != bad) {
        EXPECT_EQ(disks[d].checksum_errors, 0u) << "disk " << d;
      }
    }
    ASSERT_TRUE(rig.Wait("after scrub"));
    ScrubReport again = MustScrub(rig.vol());
    EXPECT_TRUE(again.clean()) << "second scrub: " << ScrubText(again);
    ASSERT_NO_FATAL_FAILURE(rig.CrashAndReopen());
    ASSERT_EQ(rig.vol().end_offset(), rig.model().size());
    rig.ExpectAllReadsBack("after repair and a power cut");
    ScrubReport last = MustScrub(rig.vol());
    EXPECT_TRUE(last.clean()) << "scrub after power cut: " << ScrubText(last);
    if (HasFailure()) return;
  }
}

// All writes to one disk are lost: the scrub must find exactly one bad unit
// per stripe that has a unit there.
TEST_P(VolumeCorruptionTest, ScrubCountsEveryUnitOfADiskThatLostAllWrites) {
  for (uint64_t seed : Seeds(2, 140 + N())) {
    SCOPED_TRACE(SeedTrace(seed));
    Rig rig(N(), seed);
    SCOPED_TRACE(rig.Describe());
    ASSERT_NO_FATAL_FAILURE(rig.Build(64 << 10));
    const uint32_t bad = static_cast<uint32_t>(rig.rng().Uniform(N()));
    rig.fault().Inject("/d" + std::to_string(bad) + "/", FaultKind::kLostWrite);
    for (int i = 0; i < 12; ++i)
      ASSERT_NO_FATAL_FAILURE(rig.Append(1 + rig.rng().Uniform(200 << 10)));
    ASSERT_TRUE(rig.vol().Sync().ok());
    rig.fault().ClearFaults();
    // Stripes written since the build with a unit on `bad`: seen from the others.
    auto m = vtest::MapStripes(rig.mem(), rig.opts().disk_dirs);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    uint64_t expect_bad = 0;
    for (const StripeLoc& s : *m) {
      if (s.g.logical_start >= rig.stripes().back().g.logical_end() &&
          s.g.IsMember(DiskIndex(bad))) {
        ++expect_bad;
        EXPECT_EQ(s.units.count(bad), 0u) << "a lost write left a unit";
      }
    }
    ScrubReport r = MustScrub(rig.vol());
    EXPECT_EQ(r.bad_units, expect_bad) << ScrubText(r);
    EXPECT_EQ(r.repaired_units, expect_bad) << ScrubText(r);
    EXPECT_EQ(r.unrecoverable_stripes, 0u) << ScrubText(r);
    ASSERT_TRUE(rig.Wait("after scrub"));
    ScrubReport again = MustScrub(rig.vol());
    EXPECT_TRUE(again.clean()) << ScrubText(again);
    rig.ExpectAllReadsBack("after scrub");
    if (HasFailure()) return;
  }
}

// One disk flips bits in what it returns. Reads are always right, the errors
// are charged to that disk only, repairs triggered by the flips write correct
// bytes, and once the disk behaves the volume is clean.
TEST_P(VolumeCorruptionTest, ReadBitFlipsOnOneDisk) {
  for (uint64_t seed : Seeds(3, 150 + N())) {
    SCOPED_TRACE(SeedTrace(seed));
    Rig rig(N(), seed);
    SCOPED_TRACE(rig.Describe());
    ASSERT_NO_FATAL_FAILURE(rig.Build(2 << 20));
    const uint32_t bad = static_cast<uint32_t>(rig.rng().Uniform(N()));
    const uint64_t one_in = 1 + rig.rng().Uniform(3);
    SCOPED_TRACE("disk " + std::to_string(bad) + " flips a bit in 1 read in " +
                 std::to_string(one_in));
    rig.fault().Inject("/d" + std::to_string(bad) + "/", FaultKind::kReadBitFlip, one_in);
    for (int pass = 0; pass < 3; ++pass) rig.ExpectAllReadsBack("with flipping reads");
    ASSERT_GT(rig.fault().injected(), 0u) << "test setup: no read was flipped";
    auto disks = rig.vol().disks();
    EXPECT_GT(disks[bad].checksum_errors, 0u);
    EXPECT_GT(rig.vol().stats().corruptions_detected, 0u);
    for (uint32_t d = 0; d < N(); ++d) {
      if (d != bad) {
        EXPECT_EQ(disks[d].checksum_errors, 0u) << "disk " << d;
      }
    }
    // A scrub while the disk still lies must not declare anything lost.
    ScrubReport during = MustScrub(rig.vol());
    EXPECT_EQ(during.unrecoverable_stripes, 0u) << ScrubText(during);
    rig.ExpectAllReadsBack("after scrubbing a lying disk");
    ASSERT_TRUE(rig.Wait("after reads and scrub"));
    rig.fault().ClearFaults();
    ExpectUnitsMatchSnapshot(rig.mem(), rig.stripes(), rig.snap(), "after flip-driven repairs");
    ScrubReport r = MustScrub(rig.vol());
    EXPECT_TRUE(r.clean()) << ScrubText(r);
    if (HasFailure()) return;
  }
}

// One disk fails some reads with I/O errors: reads stay right, the disk is
// marked failed, new data goes on degraded, and once replaced (the same
// directory back) and rebuilt the volume is clean.
TEST_P(VolumeCorruptionTest, ReadErrorsOnOneDiskThenReplace) {
  for (uint64_t seed : Seeds(3, 160 + N())) {
    SCOPED_TRACE(SeedTrace(seed));
    Rig rig(N(), seed);
    SCOPED_TRACE(rig.Describe());
    ASSERT_NO_FATAL_FAILURE(rig.Build(2 << 20));
    const uint32_t bad = static_cast<uint32_t>(rig.rng().Uniform(N()));
    SCOPED_TRACE("read errors on disk " + std::to_string(bad));
    rig.fault().Inject("/d" + std::to_string(bad) + "/", FaultKind::kReadError, 3);
    rig.ExpectAllReadsBack("with read errors");
    ASSERT_GT(rig.fault().injected(), 0u);
    auto disks = rig.vol().disks();
    EXPECT_EQ(disks[bad].state, DiskState::kFailed);
    EXPECT_GE(disks[bad].io_errors, 1u);
    for (int i = 0; i < 4; ++i)
      ASSERT_NO_FATAL_FAILURE(rig.Append(1 + rig.rng().Uniform(200 << 10)));
    ASSERT_TRUE(rig.vol().Sync().ok());
    rig.ExpectAllReadsBack("degraded");
    rig.fault().ClearFaults();
    Status s = rig.vol().ReplaceDisk(DiskIndex(bad), "");
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_TRUE(rig.Wait("rebuild"));
    EXPECT_EQ(rig.vol().disks()[bad].state, DiskState::kHealthy)
        << "rebuild error: " << rig.vol().rebuild_progress().error;
    ScrubReport r = MustScrub(rig.vol());
    EXPECT_TRUE(r.clean()) << ScrubText(r);
    rig.ExpectAllReadsBack("after rebuild");
    ASSERT_NO_FATAL_FAILURE(rig.CrashAndReopen());
    rig.ExpectAllReadsBack("after rebuild and a power cut");
    if (HasFailure()) return;
  }
}

// Two damaged units in one stripe (same chunk, or a header and a chunk, or
// two headers): reads that need them fail with DataLoss, never wrong bytes;
// the rest of the volume reads back; Scrub reports exactly that stripe as
// unrecoverable and leaves every other unit intact; so does a reopen.
TEST_P(VolumeCorruptionTest, TwoBadUnitsInOneStripeIsDataLossNeverWrongData) {
  for (uint64_t seed : Seeds(4, 170 + N())) {
    SCOPED_TRACE(SeedTrace(seed));
    Rig rig(N(), seed);
    SCOPED_TRACE(rig.Describe());
    ASSERT_NO_FATAL_FAILURE(rig.Build(3 << 20));
    // A stripe in the first third whose data units all hold data.
    std::vector<uint32_t> candidates;
    for (uint32_t i = 0; i < rig.stripes().size(); ++i) {
      const StripeLoc& s = rig.stripes()[i];
      if (s.g.logical_end() > rig.model().size() / 3 || s.g.members() < 2) continue;
      bool all_data = true;
      for (const auto& [d, u] : s.units) {
        if (!s.IsParity(DiskIndex(d)) && s.DataRange(DiskIndex(d)).second == 0) all_data = false;
      }
      if (all_data) candidates.push_back(i);
    }
    ASSERT_FALSE(candidates.empty()) << "test setup: no suitable stripe";
    const uint32_t si = candidates[rig.rng().Uniform(candidates.size())];
    const StripeLoc& s = rig.stripes()[si];
    std::vector<uint32_t> members;
    for (const auto& [d, u] : s.units) members.push_back(d);
    const uint32_t a = members[rig.rng().Uniform(members.size())];
    uint32_t b;
    do {
      b = members[rig.rng().Uniform(members.size())];
    } while (b == a);
    const uint64_t combo = rig.rng().Uniform(3);  // 0: same chunk, 1: header + chunk, 2: headers
    for (uint32_t d : {a, b}) {
      const UnitLoc& u = s.units.at(d);
      const bool header = combo == 2 || (combo == 1 && d == a);
      if (header) {
        uint64_t byte = u.file_offset + rig.rng().Uniform(u.header_meaningful());
        ASSERT_TRUE(rig.mem().FlipBit(u.path, byte * 8 + rig.rng().Uniform(8)).ok());
      } else {
        // Chunk 0, inside the data (every data unit holds some).
        auto range = s.DataRange(DiskIndex(d));
        uint64_t span = range.second > range.first ? range.second - range.first : s.g.unit_len;
        span = std::min<uint64_t>(span, kChunkSize);
        uint64_t byte = u.payload_offset() + rig.rng().Uniform(span);
        ASSERT_TRUE(rig.mem().FlipBit(u.path, byte * 8 + rig.rng().Uniform(8)).ok());
      }
    }
    const uint64_t lo = s.g.logical_start, hi = s.g.logical_end();
    SCOPED_TRACE("stripe seq " + std::to_string(s.g.seq.value()) + " [" + std::to_string(lo) +
                 ", " + std::to_string(hi) + "), " + std::to_string(s.g.members()) +
                 " members, damaged disks " + std::to_string(a) + " and " + std::to_string(b) +
                 ", combo " + std::to_string(combo));

    auto check_reads = [&](const char* what) {
      SCOPED_TRACE(what);
      std::vector<std::byte> buf(hi - lo);
      Status whole = rig.vol().Read(lo, buf);
      EXPECT_EQ(whole.code(), StatusCode::kDataLoss) << whole.ToString();
      if (lo > 0) {
        Status prefix = ReadAndCompare(rig.vol(), rig.model(), 0, lo);
        EXPECT_TRUE(prefix.ok()) << prefix.ToString();
      }
      Status suffix = ReadAndCompare(rig.vol(), rig.model(), hi, rig.model().size() - hi);
      EXPECT_TRUE(suffix.ok()) << suffix.ToString();
      // Pieces anywhere: right bytes, or DataLoss inside the stripe only.
      for (int i = 0; i < 200; ++i) {
        uint64_t off = rig.rng().OneIn(2) ? lo + rig.rng().Uniform(hi - lo)
                                          : rig.rng().Uniform(rig.model().size());
        uint64_t len = 1 + rig.rng().Uniform(std::min<uint64_t>(rig.model().size() - off, 40000));
        Status p = ReadAndCompare(rig.vol(), rig.model(), off, len);
        if (!p.ok()) {
          EXPECT_EQ(p.code(), StatusCode::kDataLoss) << p.ToString();
          EXPECT_TRUE(off < hi && off + len > lo)
              << "read [" << off << ", " << off + len << ") outside the stripe failed";
        }
      }
    };
    check_reads("before scrub");
    EXPECT_GE(rig.vol().stats().unrecoverable, 1u);
    // (No WaitForBackgroundWork() here: BackgroundWorkEndsAfterAnUnrecoverableStripe.)
    ScrubReport r = MustScrub(rig.vol());
    EXPECT_EQ(r.unrecoverable_stripes, 1u) << ScrubText(r);
    EXPECT_FALSE(r.clean());
    EXPECT_FALSE(r.problems.empty());
    check_reads("after scrub");
    // Every other stripe's units are untouched.
    std::vector<StripeLoc> others;
    for (uint32_t i = 0; i < rig.stripes().size(); ++i) {
      if (i != si) others.push_back(rig.stripes()[i]);
    }
    ExpectUnitsMatchSnapshot(rig.mem(), others, rig.snap(), "other stripes after scrub");
    ASSERT_NO_FATAL_FAILURE(rig.CrashAndReopen());
    EXPECT_EQ(rig.vol().end_offset(), rig.model().size());
    check_reads("after reopen");
    ScrubReport again = MustScrub(rig.vol());
    EXPECT_EQ(again.unrecoverable_stripes, 1u) << ScrubText(again);
    if (HasFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(VolumeCorruption, VolumeCorruptionTest, ::testing::Values(2u, 3u, 4u, 5u),
                         [](const ::testing::TestParamInfo<uint32_t>& param_info) {
                           return "N" + std::to_string(param_info.param);
                         });

// After a read or a scrub meets a stripe with two bad units, the background
// work must come to an end (repair cannot help; it must not retry forever),
// and the error counters must stop growing.
TEST(VolumeCorruptionBackgroundTest, BackgroundWorkEndsAfterAnUnrecoverableStripe) {
  vtest::QuietLogs quiet;
  for (uint64_t seed : Seeds(2, 190)) {
    SCOPED_TRACE(SeedTrace(seed));
    for (bool via_scrub : {false, true}) {
      SCOPED_TRACE(via_scrub ? "found by scrub" : "found by a read");
      Rig rig(3, seed);
      ASSERT_NO_FATAL_FAILURE(rig.Build(1 << 20));
      // Chunk 0 of both data units of the first full-width stripe.
      const StripeLoc* target = nullptr;
      for (const StripeLoc& s : rig.stripes()) {
        if (s.g.members() == 3 && s.DataRange(s.g.DataDisk(1)).second > 0) {
          target = &s;
          break;
        }
      }
      ASSERT_NE(target, nullptr) << "test setup: no full-width stripe";
      for (uint32_t j = 0; j < 2; ++j) {
        const UnitLoc& u = target->units.at(target->g.DataDisk(j).value());
        ASSERT_TRUE(rig.mem().FlipBit(u.path, u.payload_offset() * 8 + 5).ok());
      }
      if (via_scrub) {
        ScrubReport r = MustScrub(rig.vol());
        EXPECT_EQ(r.unrecoverable_stripes, 1u) << ScrubText(r);
      } else {
        std::vector<std::byte> buf(target->g.data_len);
        EXPECT_EQ(rig.vol().Read(target->g.logical_start, buf).code(), StatusCode::kDataLoss);
      }
      ASSERT_TRUE(rig.Wait("after meeting an unrecoverable stripe", 5));
      const uint64_t detected = rig.vol().stats().corruptions_detected;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      EXPECT_EQ(rig.vol().stats().corruptions_detected, detected)
          << "the volume keeps finding corruption with nobody reading";
    }
    if (HasFailure()) return;
  }
}

// Every member's header of one stripe is unreadable (one header on a one-disk
// volume, two on a mirror): that stripe is lost, but only that stripe. The
// stripes after it in the same segment, synced and intact, must survive a
// reopen: not be declared lost, and not be cut off as a torn tail when the
// segment is the last one.
TEST(VolumeCorruptionLostStripeTest, UnreadableHeadersLoseOnlyThatStripe) {
  vtest::QuietLogs quiet;
  for (uint64_t seed : Seeds(2, 200)) {
    for (uint32_t n : {1u, 2u}) {
      for (bool in_last_segment : {false, true}) {
        SCOPED_TRACE(SeedTrace(seed) + " N=" + std::to_string(n) +
                     (in_last_segment ? " in the last segment" : " in the first segment"));
        Rig rig(n, seed);
        rig.opts().max_unit_bytes = 16384;
        rig.opts().segment_bytes = 1 << 20;
        ASSERT_NO_FATAL_FAILURE(rig.Build(3 << 20));
        const auto& stripes = rig.stripes();
        SegmentId seg;
        // A stripe of that segment with at least two more after it in it. A
        // last segment just begun (3 stripes for seed 200039) gets more
        // small synced appends first.
        std::vector<uint32_t> in_seg;
        for (int more = 0;; ++more) {
          seg = in_last_segment ? stripes.back().g.segment : stripes[0].g.segment;
          in_seg.clear();
          for (uint32_t i = 0; i < stripes.size(); ++i) {
            if (stripes[i].g.segment == seg) in_seg.push_back(i);
          }
          if (in_seg.size() >= 4 || more == 8) break;
          ASSERT_NO_FATAL_FAILURE(rig.Append(4096));
          ASSERT_TRUE(rig.vol().Sync().ok());
          ASSERT_NO_FATAL_FAILURE(rig.MapAndSnapshot());
        }
        ASSERT_GE(in_seg.size(), 4u) << "test setup: segment too small";
        const uint32_t si = in_seg[1 + rig.rng().Uniform(in_seg.size() - 3)];
        const StripeLoc& s = stripes[si];
        rig.Close();
        for (const auto& [d, u] : s.units) {
          uint64_t byte = u.file_offset + rig.rng().Uniform(u.header_meaningful());
          ASSERT_TRUE(rig.mem().FlipBit(u.path, byte * 8 + rig.rng().Uniform(8)).ok());
        }
        SCOPED_TRACE("stripe seq " + std::to_string(s.g.seq.value()) + " [" +
                     std::to_string(s.g.logical_start) + ", " + std::to_string(s.g.logical_end()) +
                     ") of segment " + std::to_string(seg.value()));
        ASSERT_NO_FATAL_FAILURE(rig.Open());
        EXPECT_EQ(rig.vol().end_offset(), rig.model().size()) << "synced stripes were cut off";
        std::vector<std::byte> buf(s.g.data_len);
        Status st = rig.vol().Read(s.g.logical_start, buf);
        EXPECT_EQ(st.code(), StatusCode::kDataLoss) << st.ToString();
        Random rr(seed);
        if (s.g.logical_start > 0) {
          ExpectRangeReadsBack(rig.vol(), rig.model(), 0, s.g.logical_start, &rr, "before it");
        }
        const uint64_t end = std::min<uint64_t>(rig.vol().end_offset(), rig.model().size());
        ExpectRangeReadsBack(rig.vol(), rig.model(), s.g.logical_end(), end, &rr, "after it");
        ScrubReport r = MustScrub(rig.vol());
        EXPECT_EQ(r.unrecoverable_stripes, 1u) << ScrubText(r);
      }
    }
    if (HasFailure()) return;
  }
}

// A one-disk volume has no redundancy: any damage to data is DataLoss, never
// wrong bytes, and Scrub calls it unrecoverable.
TEST(VolumeCorruptionSingleDiskTest, AnyDamageIsDataLossNeverWrongData) {
  vtest::QuietLogs quiet;
  for (uint64_t seed : Seeds(4, 180)) {
    SCOPED_TRACE(SeedTrace(seed));
    Rig rig(1, seed);
    ASSERT_NO_FATAL_FAILURE(rig.Build(1 << 20));
    const uint32_t si = static_cast<uint32_t>(rig.rng().Uniform(rig.stripes().size() - 1));
    const StripeLoc& s = rig.stripes()[si];
    Damage kind = rig.rng().OneIn(2) ? Damage::kPayloadBit : Damage::kHeaderBit;
    ASSERT_TRUE(rig.DamageUnit(si, DiskIndex(0), kind));
    SCOPED_TRACE(std::string(DamageName(kind)) + " in stripe seq " +
                 std::to_string(s.g.seq.value()));
    std::vector<std::byte> buf(s.g.data_len);
    Status st = rig.vol().Read(s.g.logical_start, buf);
    EXPECT_EQ(st.code(), StatusCode::kDataLoss) << st.ToString();
    if (s.g.logical_start > 0) {
      EXPECT_TRUE(ReadAndCompare(rig.vol(), rig.model(), 0, s.g.logical_start).ok());
    }
    EXPECT_TRUE(ReadAndCompare(rig.vol(), rig.model(), s.g.logical_end(),
                               rig.model().size() - s.g.logical_end())
                    .ok());
    for (int i = 0; i < 100; ++i) {
      uint64_t off = s.g.logical_start + rig.rng().Uniform(s.g.data_len);
      uint64_t len = 1 + rig.rng().Uniform(std::min<uint64_t>(rig.model().size() - off, 20000));
      Status p = ReadAndCompare(rig.vol(), rig.model(), off, len);
      if (!p.ok()) {
        EXPECT_EQ(p.code(), StatusCode::kDataLoss) << p.ToString();
      }
    }
    ScrubReport r = MustScrub(rig.vol());
    EXPECT_EQ(r.unrecoverable_stripes, 1u) << ScrubText(r);
    EXPECT_FALSE(r.clean());
    st = rig.vol().Read(s.g.logical_start, buf);
    EXPECT_EQ(st.code(), StatusCode::kDataLoss) << st.ToString();
    if (HasFailure()) return;
  }
}

}  // namespace
}  // namespace cairn::raidlib
