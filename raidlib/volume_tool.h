// cairn-volume: the offline tool to create, inspect, scrub and rebuild a
// volume. RunVolumeTool is the whole program; main() only forwards to it.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace cairn::raidlib {

// Exit codes (also in --help and the README).
inline constexpr int kExitOk = 0;
inline constexpr int kExitRepaired = 1;      // scrub found problems and repaired them all
inline constexpr int kExitDataLoss = 2;      // unrecoverable data found
inline constexpr int kExitUsage = 64;        // bad command line
inline constexpr int kExitNoVolume = 66;     // no volume in the given directories
inline constexpr int kExitFailure = 70;      // any other failure (I/O, invalid volume)

// `args` excludes the program name.
int RunVolumeTool(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace cairn::raidlib
