// cairn-volume: the offline tool over raidlib::Volume (volume_tool.h).
//
// Shape: a small argument parser (flags declared per subcommand, "--flag
// value" or "--flag=value", "--" ends the flags, everything else is a disk
// directory in slot order), then one function per subcommand. Library errors
// are printed as "cairn-volume: <what>: <Status::ToString()>"; command-line
// errors as one line plus a hint, with exit code kExitUsage.
//
// Not for concurrent use with a running chunk server on the same directories:
// the tool opens the volume itself.
#include "raidlib/volume_tool.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iomanip>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "common/logging.h"
#include "common/status.h"
#include "raidlib/volume.h"
#include "raidlib/volume_format.h"

namespace cairn::raidlib {
namespace {

constexpr std::string_view kProg = "cairn-volume";
// How often long operations print a progress line.
constexpr auto kProgressInterval = std::chrono::seconds(1);
// --rate is in MB/s, decimal megabytes (as disk vendors and dd count).
constexpr double kBytesPerMB = 1e6;

struct Io {
  std::ostream& out;
  std::ostream& err;
};

// ---------------------------------------------------------------------------
// Usage text

constexpr std::string_view kExitCodesHelp =
    "Exit codes:\n"
    "  0   success (scrub: the volume is clean)\n"
    "  1   scrub found problems and repaired them all (--dry-run: problems found)\n"
    "  2   unrecoverable data found (stripes with two or more bad units)\n"
    "  64  bad command line\n"
    "  66  no volume in the given directories\n"
    "  70  any other failure (I/O error, invalid volume, rebuild stopped)\n";

constexpr std::string_view kMainHelp =
    "Usage: cairn-volume <command> [options] DIR...\n"
    "\n"
    "Offline maintenance of a raidlib volume. DIR... are the volume's disk\n"
    "directories in slot order (the order given to `create`).\n"
    "\n"
    "Commands:\n"
    "  create    format a new volume\n"
    "  inspect   show the volume's disks, segments and rebuild state (read-only)\n"
    "  scrub     verify every stripe and repair what can be repaired\n"
    "  replace   put a new directory (or the same one back) in a failed disk's\n"
    "            slot and rebuild it\n"
    "  rebuild   finish an interrupted rebuild\n"
    "  help      show this text, or `help <command>` for a command's options\n"
    "\n";

struct FlagSpec {
  std::string_view name;  // with the leading "--"
  bool takes_value;
};

struct ParsedArgs;
using CommandFn = int (*)(const ParsedArgs&, Io&);

struct Command {
  std::string_view name;
  std::string_view usage;  // the whole `<command> --help` text, exit codes excluded
  std::span<const FlagSpec> flags;
  CommandFn run;
};

// ---------------------------------------------------------------------------
// Argument parsing

struct ParsedArgs {
  std::map<std::string, std::string, std::less<>> values;  // flag -> value ("" if none)
  std::vector<std::string> dirs;
  bool help = false;

  bool Has(std::string_view flag) const { return values.find(flag) != values.end(); }
  const std::string* Get(std::string_view flag) const {
    auto it = values.find(flag);
    return it == values.end() ? nullptr : &it->second;
  }
};

int UsageError(Io& io, std::string_view command, const std::string& what) {
  io.err << kProg << ": " << what << "\n";
  if (command.empty()) {
    io.err << "Try '" << kProg << " --help'.\n";
  } else {
    io.err << "Try '" << kProg << " " << command << " --help'.\n";
  }
  return kExitUsage;
}

// Parses args[1..] for `cmd`. Returns an error message, or nullopt on success.
std::optional<std::string> ParseArgs(const Command& cmd, const std::vector<std::string>& args,
                                     ParsedArgs* out) {
  bool flags_done = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      if (arg.empty()) return std::string("empty directory argument");
      out->dirs.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      out->help = true;
      continue;
    }
    std::string name = arg;
    std::optional<std::string> inline_value;
    if (size_t eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& f : cmd.flags) {
      if (f.name == name) spec = &f;
    }
    if (spec == nullptr) {
      return "unknown option '" + name + "' for '" + std::string(cmd.name) + "'";
    }
    if (out->Has(name)) return "option " + name + " given twice";
    if (!spec->takes_value) {
      if (inline_value) return "option " + name + " takes no value";
      out->values[name] = "";
      continue;
    }
    if (inline_value) {
      out->values[name] = *inline_value;
    } else if (i + 1 < args.size()) {
      out->values[name] = args[++i];
    } else {
      return "option " + name + " needs a value";
    }
  }
  return std::nullopt;
}

// A byte count: digits with an optional K, M or G suffix (powers of 1024).
std::optional<uint64_t> ParseSize(std::string_view s) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr == s.data()) return std::nullopt;
  std::string_view suffix(ptr, static_cast<size_t>(s.data() + s.size() - ptr));
  unsigned shift = 0;
  if (suffix == "K" || suffix == "k") {
    shift = 10;
  } else if (suffix == "M" || suffix == "m") {
    shift = 20;
  } else if (suffix == "G" || suffix == "g") {
    shift = 30;
  } else if (!suffix.empty()) {
    return std::nullopt;
  }
  if (shift != 0 && v > (UINT64_MAX >> shift)) return std::nullopt;
  return v << shift;
}

// Reads a size flag into *out (left unchanged if the flag is absent). Returns
// an error message for a malformed value.
std::optional<std::string> SizeFlag(const ParsedArgs& a, std::string_view flag, uint64_t* out) {
  const std::string* text = a.Get(flag);
  if (text == nullptr) return std::nullopt;
  std::optional<uint64_t> v = ParseSize(*text);
  if (!v) {
    return std::string(flag) + " needs a byte count (digits, optionally K, M or G), not '" + *text +
           "'";
  }
  *out = *v;
  return std::nullopt;
}

// --rate MB/s -> bytes per second; 0 means unthrottled.
std::optional<std::string> RateFlag(const ParsedArgs& a, uint64_t* bytes_per_sec) {
  const std::string* text = a.Get("--rate");
  if (text == nullptr) return std::nullopt;
  double mb = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), mb);
  if (ec != std::errc() || ptr != text->data() + text->size() || !std::isfinite(mb) || mb < 0 ||
      mb * kBytesPerMB > 1e18) {
    return "--rate needs a non-negative number of MB/s, not '" + *text + "'";
  }
  *bytes_per_sec = static_cast<uint64_t>(std::llround(mb * kBytesPerMB));
  if (mb > 0 && *bytes_per_sec == 0) *bytes_per_sec = 1;
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Shared helpers

void PrintLibraryError(Io& io, std::string_view what, const Status& s) {
  io.err << kProg << ": " << what << ": " << s.ToString() << "\n";
}

// Opens the volume in `dirs`; on failure prints why and sets *exit_code.
std::unique_ptr<Volume> OpenOrReport(VolumeOptions options, Io& io, int* exit_code) {
  auto vol = Volume::Open(options);
  if (vol.ok()) return std::move(vol).value();
  PrintLibraryError(io, "open volume", vol.status());
  *exit_code = vol.status().code() == StatusCode::kNotFound ? kExitNoVolume : kExitFailure;
  return nullptr;
}

std::string Percent(uint64_t done, uint64_t total) {
  if (total == 0) return "100%";
  return std::to_string(done >= total ? 100 : done * 100 / total) + "%";
}

// Waits for the volume's rebuild and queued repairs, printing
// "<label>: done/total stripes (p%)" on stderr about once a second.
void WaitWithProgress(Volume& vol, std::string_view label, Io& io) {
  std::future<void> done = std::async(std::launch::async, [&vol] { vol.WaitForBackgroundWork(); });
  while (done.wait_for(kProgressInterval) != std::future_status::ready) {
    RebuildProgress p = vol.rebuild_progress();
    if (!p.active) continue;
    io.err << label << ": disk " << p.disk << ": " << p.stripes_done << "/" << p.stripes_total
           << " stripes (" << Percent(p.stripes_done, p.stripes_total) << ")" << std::endl;
  }
  done.get();
}

// Prints what the last rebuild did and returns the exit code it deserves.
int ReportRebuild(Volume& vol, DiskIndex disk, std::string_view label, Io& io) {
  RebuildProgress p = vol.rebuild_progress();
  DiskState state = DiskState::kFailed;
  for (const DiskStatus& d : vol.disks()) {
    if (d.index == disk) state = d.state;
  }
  io.out << label << ": disk " << disk << " is " << DiskStateName(state) << ": " << p.stripes_done
         << "/" << p.stripes_total << " stripes, " << p.units_rewritten << " units rewritten, "
         << p.bytes_written << " bytes written, " << p.unrecoverable << " unrecoverable\n";
  if (p.unrecoverable > 0) {
    io.err << kProg << ": " << label << ": " << p.unrecoverable
           << " stripes could not be rebuilt: their data is lost\n";
    return kExitDataLoss;
  }
  if (!p.error.empty()) {
    io.err << kProg << ": " << label << ": rebuild stopped early: " << p.error << "\n";
    return kExitFailure;
  }
  if (state != DiskState::kHealthy) {
    io.err << kProg << ": " << label << ": disk " << disk << " is still " << DiskStateName(state)
           << " after the rebuild\n";
    return kExitFailure;
  }
  return kExitOk;
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// ---------------------------------------------------------------------------
// create

constexpr FlagSpec kCreateFlags[] = {{"--max-unit-bytes", true}, {"--segment-bytes", true}};
constexpr std::string_view kCreateUsage =
    "Usage: cairn-volume create [--max-unit-bytes N] [--segment-bytes N] DIR...\n"
    "\n"
    "Formats a new volume over DIR... (1 to 16 directories, in slot order). Each\n"
    "directory must be missing (its parent must exist) or empty. 3 or more disks\n"
    "give RAID-5 style parity, 2 a mirror, 1 no redundancy at all.\n"
    "\n"
    "Options:\n"
    "  --max-unit-bytes N  largest unit per disk per stripe; a multiple of 4096,\n"
    "                      at most 16M (default 1M)\n"
    "  --segment-bytes N   size at which a segment file is closed (default 256M)\n"
    "  N accepts a K, M or G suffix (powers of 1024).\n"
    "\n"
    "Invalid options and directories that are not empty exit with 64.\n";

int CmdCreate(const ParsedArgs& a, Io& io) {
  VolumeOptions options;
  options.disk_dirs = a.dirs;
  uint64_t max_unit = options.max_unit_bytes;
  if (auto e = SizeFlag(a, "--max-unit-bytes", &max_unit)) return UsageError(io, "create", *e);
  if (auto e = SizeFlag(a, "--segment-bytes", &options.segment_bytes)) {
    return UsageError(io, "create", *e);
  }
  if (max_unit > UINT32_MAX) {
    return UsageError(io, "create",
                      "--max-unit-bytes " + std::to_string(max_unit) + " is too large (at most " +
                          std::to_string(kMaxUnitBytes) + ")");
  }
  options.max_unit_bytes = static_cast<uint32_t>(max_unit);
  if (a.dirs.empty()) return UsageError(io, "create", "no disk directories given");
  if (a.dirs.size() == 1) {
    io.err << kProg << ": WARNING: a volume on ONE disk has NO REDUNDANCY: any damage to "
           << a.dirs[0] << " loses data. Use 3 or more disks (2 for a mirror).\n";
  }
  Status s = Volume::Create(options);
  if (!s.ok()) {
    PrintLibraryError(io, "create", s);
    // Create's only inputs are the command line: bad options or directories
    // that are not empty are usage errors.
    const bool usage =
        s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kAlreadyExists;
    return usage ? kExitUsage : kExitFailure;
  }
  VolumeOptions check;
  check.disk_dirs = a.dirs;
  check.read_only = true;
  int code = kExitOk;
  std::unique_ptr<Volume> vol = OpenOrReport(check, io, &code);
  if (!vol) return code == kExitNoVolume ? kExitFailure : code;
  io.out << "created volume " << vol->uuid() << " on " << vol->num_disks() << " disk"
         << (vol->num_disks() == 1 ? "" : "s") << "\n";
  for (const DiskStatus& d : vol->disks()) io.out << "  disk " << d.index << ": " << d.dir << "\n";
  return kExitOk;
}

// ---------------------------------------------------------------------------
// inspect

constexpr FlagSpec kInspectFlags[] = {{"--json", false}};
constexpr std::string_view kInspectUsage =
    "Usage: cairn-volume inspect [--json] DIR...\n"
    "\n"
    "Opens the volume read-only (nothing is written, nothing repaired) and prints\n"
    "its uuid, epoch, each disk (slot, directory, state, error counters), each\n"
    "segment (id, logical range, stripes, bytes per disk, sealed), totals, and\n"
    "the rebuild state. A disk that cannot be read shows as failed.\n"
    "\n"
    "Options:\n"
    "  --json  print the same as one JSON object\n";

struct Totals {
  uint64_t segments = 0;
  uint64_t sealed_segments = 0;
  uint64_t stripes = 0;
  uint64_t bytes_per_disk = 0;  // sum of segments' bytes_on_disk
  uint64_t failed_disks = 0;
  uint64_t rebuilding_disks = 0;
};

Totals ComputeTotals(const std::vector<DiskStatus>& disks, const std::vector<SegmentInfo>& segs) {
  Totals t;
  for (const SegmentInfo& s : segs) {
    ++t.segments;
    if (s.sealed) ++t.sealed_segments;
    t.stripes += s.stripes;
    t.bytes_per_disk += s.bytes_on_disk;
  }
  for (const DiskStatus& d : disks) {
    if (d.state == DiskState::kFailed) ++t.failed_disks;
    if (d.state == DiskState::kRebuilding) ++t.rebuilding_disks;
  }
  return t;
}

void PrintInspectText(Volume& vol, Io& io) {
  const std::vector<DiskStatus> disks = vol.disks();
  const std::vector<SegmentInfo> segs = vol.Segments();
  const Totals t = ComputeTotals(disks, segs);
  std::ostream& o = io.out;
  o << "volume   " << vol.uuid() << "\n";
  o << "epoch    " << vol.epoch() << "\n";
  o << "disks    " << disks.size() << " (" << t.failed_disks << " failed, " << t.rebuilding_disks
    << " rebuilding)\n";
  o << "  " << std::left << std::setw(6) << "slot" << std::setw(12) << "state" << std::setw(11)
    << "io_errors" << std::setw(17) << "checksum_errors" << std::setw(10) << "repaired"
    << "dir\n";
  for (const DiskStatus& d : disks) {
    o << "  " << std::setw(6) << d.index.value() << std::setw(12) << DiskStateName(d.state)
      << std::setw(11) << d.io_errors << std::setw(17) << d.checksum_errors << std::setw(10)
      << d.repaired_units << d.dir << "\n";
  }
  o << "segments " << segs.size() << "\n";
  if (!segs.empty()) {
    o << "  " << std::setw(10) << "id" << std::setw(32) << "logical range" << std::setw(10)
      << "stripes" << std::setw(16) << "bytes_per_disk"
      << "sealed\n";
    for (const SegmentInfo& s : segs) {
      std::string range =
          "[" + std::to_string(s.logical_start) + ", " + std::to_string(s.logical_end) + ")";
      o << "  " << std::setw(10) << s.id.value() << std::setw(32) << range << std::setw(10)
        << s.stripes << std::setw(16) << s.bytes_on_disk << (s.sealed ? "yes" : "no") << "\n";
    }
  }
  o << std::right;
  o << "totals   " << t.segments << " segments (" << t.sealed_segments << " sealed), " << t.stripes
    << " stripes, " << vol.end_offset() << " logical bytes (" << vol.durable_offset()
    << " durable), " << t.bytes_per_disk << " bytes per disk\n";
  RebuildProgress p = vol.rebuild_progress();
  if (p.active) {
    o << "rebuild  disk " << p.disk << ": " << p.stripes_done << "/" << p.stripes_total
      << " stripes (" << Percent(p.stripes_done, p.stripes_total) << ")\n";
  }
  for (const DiskStatus& d : disks) {
    if (d.state == DiskState::kRebuilding && !(p.active && p.disk == d.index)) {
      o << "rebuild  disk " << d.index << ": interrupted; run '" << kProg
        << " rebuild DIR...' to finish it\n";
    }
  }
  for (const DiskStatus& d : disks) {
    if (d.state == DiskState::kFailed) {
      o << "warning  disk " << d.index << " is failed: the volume is degraded; run '" << kProg
        << " replace --disk " << d.index << " DIR...'\n";
    }
  }
}

void PrintInspectJson(Volume& vol, Io& io) {
  const std::vector<DiskStatus> disks = vol.disks();
  const std::vector<SegmentInfo> segs = vol.Segments();
  const Totals t = ComputeTotals(disks, segs);
  std::ostream& o = io.out;
  o << "{\"uuid\":" << JsonString(vol.uuid()) << ",\"epoch\":" << vol.epoch()
    << ",\"num_disks\":" << vol.num_disks() << ",\"disks\":[";
  for (size_t i = 0; i < disks.size(); ++i) {
    const DiskStatus& d = disks[i];
    o << (i ? "," : "") << "{\"slot\":" << d.index.value() << ",\"dir\":" << JsonString(d.dir)
      << ",\"state\":" << JsonString(DiskStateName(d.state)) << ",\"io_errors\":" << d.io_errors
      << ",\"checksum_errors\":" << d.checksum_errors << ",\"repaired_units\":" << d.repaired_units
      << "}";
  }
  o << "],\"segments\":[";
  for (size_t i = 0; i < segs.size(); ++i) {
    const SegmentInfo& s = segs[i];
    o << (i ? "," : "") << "{\"id\":" << s.id.value() << ",\"logical_start\":" << s.logical_start
      << ",\"logical_end\":" << s.logical_end << ",\"stripes\":" << s.stripes
      << ",\"bytes_on_disk\":" << s.bytes_on_disk << ",\"sealed\":" << (s.sealed ? "true" : "false")
      << "}";
  }
  o << "],\"totals\":{\"segments\":" << t.segments << ",\"sealed_segments\":" << t.sealed_segments
    << ",\"stripes\":" << t.stripes << ",\"end_offset\":" << vol.end_offset()
    << ",\"durable_offset\":" << vol.durable_offset() << ",\"bytes_per_disk\":" << t.bytes_per_disk
    << ",\"failed_disks\":" << t.failed_disks << ",\"rebuilding_disks\":" << t.rebuilding_disks
    << "}";
  RebuildProgress p = vol.rebuild_progress();
  o << ",\"rebuild\":{\"active\":" << (p.active ? "true" : "false");
  if (p.active) {
    o << ",\"disk\":" << p.disk.value() << ",\"stripes_total\":" << p.stripes_total
      << ",\"stripes_done\":" << p.stripes_done << ",\"units_rewritten\":" << p.units_rewritten
      << ",\"bytes_written\":" << p.bytes_written << ",\"unrecoverable\":" << p.unrecoverable;
  }
  o << ",\"error\":" << JsonString(p.error) << "}}\n";
}

int CmdInspect(const ParsedArgs& a, Io& io) {
  if (a.dirs.empty()) return UsageError(io, "inspect", "no disk directories given");
  VolumeOptions options;
  options.disk_dirs = a.dirs;
  options.read_only = true;
  int code = kExitOk;
  std::unique_ptr<Volume> vol = OpenOrReport(options, io, &code);
  if (!vol) return code;
  if (a.Has("--json")) {
    PrintInspectJson(*vol, io);
  } else {
    PrintInspectText(*vol, io);
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------
// scrub

constexpr FlagSpec kScrubFlags[] = {{"--rate", true}, {"--dry-run", false}};
constexpr std::string_view kScrubUsage =
    "Usage: cairn-volume scrub [--rate MB/s] [--dry-run] DIR...\n"
    "\n"
    "Reads every unit of every stripe, verifies checksums and parity, and repairs\n"
    "what one bad unit per stripe explains. Progress goes to stderr about once a\n"
    "second; the report and one line per problem go to stdout.\n"
    "\n"
    "Options:\n"
    "  --rate MB/s  read at most this many MB (10^6 bytes) per second; 0 = no limit\n"
    "  --dry-run    open read-only and repair nothing (exit 1 if problems are found)\n";

int CmdScrub(const ParsedArgs& a, Io& io) {
  VolumeOptions options;
  if (auto e = RateFlag(a, &options.rebuild_bytes_per_sec)) return UsageError(io, "scrub", *e);
  if (a.dirs.empty()) return UsageError(io, "scrub", "no disk directories given");
  const bool dry_run = a.Has("--dry-run");
  options.disk_dirs = a.dirs;
  options.read_only = dry_run;
  int code = kExitOk;
  std::unique_ptr<Volume> vol = OpenOrReport(options, io, &code);
  if (!vol) return code;

  auto last = std::chrono::steady_clock::now();
  auto progress = [&](uint64_t done, uint64_t total) {
    auto now = std::chrono::steady_clock::now();
    if (now - last < kProgressInterval) return;
    last = now;
    io.err << "scrub: " << done << "/" << total << " stripes (" << Percent(done, total) << ")"
           << std::endl;
  };
  Result<ScrubReport> report = vol->Scrub(progress);
  if (!report.ok()) {
    PrintLibraryError(io, "scrub", report.status());
    return kExitFailure;
  }
  // Repairs the scrub queued must reach the disks before the volume closes.
  if (!dry_run) vol->WaitForBackgroundWork();
  const ScrubReport& r = *report;
  io.err << "scrub: " << r.stripes_checked << "/" << r.stripes_checked << " stripes (100%)"
         << std::endl;
  for (const std::string& p : r.problems) io.out << "problem: " << p << "\n";
  io.out << "scrub" << (dry_run ? " (dry run)" : "") << ": " << r.stripes_checked
         << " stripes checked, " << r.bytes_read << " bytes read, " << r.bad_units << " bad units, "
         << r.repaired_units << " repaired, " << r.degraded_stripes << " degraded stripes, "
         << r.unrecoverable_stripes << " unrecoverable\n";
  for (const DiskStatus& d : vol->disks()) {
    if (d.state != DiskState::kHealthy) {
      io.out << "scrub: disk " << d.index << " (" << d.dir << ") is " << DiskStateName(d.state)
             << "\n";
    }
  }
  if (r.unrecoverable_stripes > 0) {
    io.err << kProg << ": scrub: " << r.unrecoverable_stripes
           << " stripes are unrecoverable: their data is lost\n";
    return kExitDataLoss;
  }
  if (r.clean()) return kExitOk;
  if (dry_run) return kExitRepaired;
  if (r.repaired_units < r.bad_units) {
    io.err << kProg << ": scrub: " << (r.bad_units - r.repaired_units)
           << " bad units could not be repaired (their data is still readable through "
              "parity); see the problems above\n";
    return kExitFailure;
  }
  return kExitRepaired;
}

// ---------------------------------------------------------------------------
// replace

constexpr FlagSpec kReplaceFlags[] = {{"--disk", true}, {"--new-dir", true}, {"--rate", true}};
constexpr std::string_view kReplaceUsage =
    "Usage: cairn-volume replace --disk K [--new-dir PATH] [--rate MB/s] DIR...\n"
    "\n"
    "Puts a replacement in the slot of failed disk K and rebuilds its units from\n"
    "the other disks, in the foreground, with progress on stderr. The replacement\n"
    "is --new-dir (missing or empty), or else the slot's own directory: missing\n"
    "(it is created), empty, or the same disk back with its old contents.\n"
    "DIR... are the directories as the volume knows them now. Disk K must be\n"
    "failed (a missing or unreadable directory is, once the volume is opened).\n"
    "After --new-dir, name the new directory in slot K from then on.\n"
    "\n"
    "Options:\n"
    "  --disk K        slot of the disk to replace (0-based)\n"
    "  --new-dir PATH  the replacement directory (default: the slot's own DIR)\n"
    "  --rate MB/s     rebuild at most this many MB (10^6 bytes) per second;\n"
    "                  0 = no limit\n";

int CmdReplace(const ParsedArgs& a, Io& io) {
  VolumeOptions options;
  if (auto e = RateFlag(a, &options.rebuild_bytes_per_sec)) return UsageError(io, "replace", *e);
  const std::string* disk_text = a.Get("--disk");
  if (disk_text == nullptr) return UsageError(io, "replace", "--disk K is required");
  uint32_t disk = 0;
  auto [ptr, ec] = std::from_chars(disk_text->data(), disk_text->data() + disk_text->size(), disk);
  if (ec != std::errc() || ptr != disk_text->data() + disk_text->size() || disk_text->empty()) {
    return UsageError(io, "replace", "--disk needs a slot number, not '" + *disk_text + "'");
  }
  if (a.dirs.empty()) return UsageError(io, "replace", "no disk directories given");
  if (disk >= a.dirs.size()) {
    return UsageError(io, "replace",
                      "--disk " + std::to_string(disk) + " is out of range: " +
                          std::to_string(a.dirs.size()) + " directories given");
  }
  const std::string* new_dir = a.Get("--new-dir");
  if (new_dir != nullptr && new_dir->empty()) {
    return UsageError(io, "replace", "--new-dir needs a path");
  }
  options.disk_dirs = a.dirs;
  int code = kExitOk;
  std::unique_ptr<Volume> vol = OpenOrReport(options, io, &code);
  if (!vol) return code;
  const DiskIndex index(disk);
  Status s = vol->ReplaceDisk(index, new_dir == nullptr ? std::string() : *new_dir);
  if (!s.ok()) {
    PrintLibraryError(io, "replace disk " + std::to_string(disk), s);
    return kExitFailure;
  }
  io.err << "replace: rebuilding disk " << disk << " ("
         << (new_dir == nullptr ? a.dirs[disk] : *new_dir) << ")" << std::endl;
  WaitWithProgress(*vol, "replace", io);
  return ReportRebuild(*vol, index, "replace", io);
}

// ---------------------------------------------------------------------------
// rebuild

constexpr FlagSpec kRebuildFlags[] = {{"--rate", true}};
constexpr std::string_view kRebuildUsage =
    "Usage: cairn-volume rebuild [--rate MB/s] DIR...\n"
    "\n"
    "Opens the volume, which resumes a rebuild that was interrupted (by a crash\n"
    "or by stopping the tool), and waits for it in the foreground with progress.\n"
    "To replace a failed disk use 'replace'.\n"
    "\n"
    "Options:\n"
    "  --rate MB/s  rebuild at most this many MB (10^6 bytes) per second; 0 = no limit\n";

int CmdRebuild(const ParsedArgs& a, Io& io) {
  VolumeOptions options;
  if (auto e = RateFlag(a, &options.rebuild_bytes_per_sec)) return UsageError(io, "rebuild", *e);
  if (a.dirs.empty()) return UsageError(io, "rebuild", "no disk directories given");
  options.disk_dirs = a.dirs;
  int code = kExitOk;
  std::unique_ptr<Volume> vol = OpenOrReport(options, io, &code);
  if (!vol) return code;
  std::optional<DiskIndex> rebuilding;
  RebuildProgress p = vol->rebuild_progress();
  if (p.active) rebuilding = p.disk;
  for (const DiskStatus& d : vol->disks()) {
    if (!rebuilding && d.state == DiskState::kRebuilding) rebuilding = d.index;
  }
  WaitWithProgress(*vol, "rebuild", io);
  int result = kExitOk;
  if (rebuilding) {
    result = ReportRebuild(*vol, *rebuilding, "rebuild", io);
  } else {
    io.out << "rebuild: no disk is rebuilding; nothing to do\n";
  }
  for (const DiskStatus& d : vol->disks()) {
    if (d.state == DiskState::kFailed) {
      io.out << "rebuild: disk " << d.index << " is failed; replace it with '" << kProg
             << " replace --disk " << d.index << " DIR...'\n";
    }
  }
  return result;
}

// ---------------------------------------------------------------------------
// dispatch

constexpr Command kCommands[] = {
    {"create", kCreateUsage, kCreateFlags, CmdCreate},
    {"inspect", kInspectUsage, kInspectFlags, CmdInspect},
    {"scrub", kScrubUsage, kScrubFlags, CmdScrub},
    {"replace", kReplaceUsage, kReplaceFlags, CmdReplace},
    {"rebuild", kRebuildUsage, kRebuildFlags, CmdRebuild},
};

const Command* FindCommand(std::string_view name) {
  for (const Command& c : kCommands) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

void PrintMainHelp(std::ostream& o) { o << kMainHelp << kExitCodesHelp; }
void PrintCommandHelp(const Command& c, std::ostream& o) { o << c.usage << "\n" << kExitCodesHelp; }

}  // namespace

int RunVolumeTool(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Io io{out, err};
  // The library logs at info by default; the tool's own output says what
  // matters. CAIRN_LOG_LEVEL still wins when set.
  if (std::getenv("CAIRN_LOG_LEVEL") == nullptr) {  // NOLINT(concurrency-mt-unsafe)
    SetLogLevel(LogLevel::kWarn);
  }
  if (args.empty()) {
    PrintMainHelp(err);
    return kExitUsage;
  }
  const std::string& name = args[0];
  if (name == "--help" || name == "-h" || name == "help") {
    if (args.size() >= 2) {
      const Command* c = FindCommand(args[1]);
      if (c == nullptr) return UsageError(io, "", "unknown command '" + args[1] + "'");
      PrintCommandHelp(*c, out);
    } else {
      PrintMainHelp(out);
    }
    return kExitOk;
  }
  const Command* cmd = FindCommand(name);
  if (cmd == nullptr) {
    if (!name.empty() && name[0] == '-') {
      return UsageError(io, "", "unknown option '" + name + "' (the command comes first)");
    }
    return UsageError(io, "", "unknown command '" + name + "'");
  }
  ParsedArgs parsed;
  if (auto e = ParseArgs(*cmd, args, &parsed)) return UsageError(io, cmd->name, *e);
  if (parsed.help) {
    PrintCommandHelp(*cmd, out);
    return kExitOk;
  }
  return cmd->run(parsed, io);
}

}  // namespace cairn::raidlib
