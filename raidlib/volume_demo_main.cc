// cairn-volume-demo: shows a raidlib volume surviving a lost disk and a
// corrupted block. Used by scripts/demo.sh until the cluster demo exists.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "common/random.h"
#include "raidlib/volume.h"

using cairn::raidlib::Volume;
using cairn::raidlib::VolumeOptions;

namespace {

int Fail(const std::string& what, const cairn::Status& s) {
  std::cerr << "demo: " << what << ": " << s.ToString() << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string base = argc > 1 ? argv[1] : "/tmp/cairn-demo";
  namespace fs = std::filesystem;
  fs::remove_all(base);
  fs::create_directories(base);
  VolumeOptions o;
  for (int i = 0; i < 4; ++i) o.disk_dirs.push_back(base + "/disk" + std::to_string(i));
  o.segment_bytes = 8 << 20;
  if (auto s = Volume::Create(o); !s.ok()) return Fail("create", s);
  std::cout << "1. created a 4-disk volume under " << base << "\n";

  std::vector<std::byte> data(24 << 20);
  cairn::Random rng(7);
  for (auto& b : data) b = static_cast<std::byte>(rng.Next() & 0x3F);
  {
    auto v = Volume::Open(o);
    if (!v.ok()) return Fail("open", v.status());
    for (size_t off = 0; off < data.size(); off += 1 << 20) {
      auto r = (*v)->Append(std::span(data.data() + off, 1 << 20));
      if (!r.ok()) return Fail("append", r.status());
    }
    if (auto s = (*v)->Sync(); !s.ok()) return Fail("sync", s);
    std::cout << "2. appended and synced " << (data.size() >> 20) << " MiB\n";
  }
  // Fault 1: a silent corruption. Overwrite a byte in a segment file of disk 0.
  for (const auto& e : fs::directory_iterator(o.disk_dirs[0])) {
    if (e.path().filename().string().rfind("seg-", 0) != 0) continue;
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8192 + 100);
    f.put('X');
    std::cout << "3. overwrote a byte of " << e.path().string() << " (silent corruption)\n";
    break;
  }
  std::vector<std::byte> back(data.size());
  {
    auto v = Volume::Open(o);
    if (!v.ok()) return Fail("reopen", v.status());
    if (auto s = (*v)->Read(0, back); !s.ok()) return Fail("read", s);
    (*v)->WaitForBackgroundWork();
    std::cout << "4. read all " << (data.size() >> 20)
              << " MiB back: " << (back == data ? "identical" : "DIFFERENT")
              << "; corruptions detected: " << (*v)->stats().corruptions_detected
              << ", repaired: " << (*v)->stats().repairs_done << "\n";
  }
  // Fault 2: a whole disk gone.
  fs::remove_all(o.disk_dirs[2]);
  std::cout << "5. removed disk 2 entirely (rm -rf " << o.disk_dirs[2] << ")\n";
  auto v = Volume::Open(o);
  if (!v.ok()) return Fail("reopen", v.status());
  std::fill(back.begin(), back.end(), std::byte{0});
  if (auto s = (*v)->Read(0, back); !s.ok()) return Fail("read", s);
  std::cout << "6. read all " << (data.size() >> 20)
            << " MiB back degraded: " << (back == data ? "identical" : "DIFFERENT") << "\n";
  if (auto s = (*v)->ReplaceDisk(cairn::DiskIndex(2)); !s.ok()) return Fail("replace", s);
  (*v)->WaitForBackgroundWork();
  auto p = (*v)->rebuild_progress();
  std::cout << "7. replaced disk 2 and rebuilt " << p.units_rewritten << " units ("
            << (p.bytes_written >> 20) << " MiB)\n";
  auto scrub = (*v)->Scrub();
  if (!scrub.ok()) return Fail("scrub", scrub.status());
  std::cout << "8. scrub: " << scrub->stripes_checked << " stripes checked, " << scrub->bad_units
            << " bad units, " << (scrub->clean() ? "clean" : "NOT clean") << "\n";
  std::cout << "\nTry: build/raidlib/cairn-volume inspect " << base << "/disk{0,1,2,3}\n"
            << "Stop: nothing runs in the background; remove " << base << " when done.\n";
  return back == data && scrub->clean() ? 0 : 1;
}
