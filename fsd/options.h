// cairn-fsd's command line and mount options (fsd/README.md has the
// reference). I/O-free apart from nothing: parsing only.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "fsd/fs.h"

namespace cairn::fsd {

struct MountOptions {
  FsOptions fs;
  // libcairn: one operation with its retries (seconds); the errno after it
  // is ETIMEDOUT or EHOSTUNREACH.
  int timeout_s = 30;
  std::string log_level;  // debug | info | warn | error ("" = warn)
  // Options handed to libfuse as -o (allow_other, default_permissions, ro,
  // fsname=...): everything not ours.
  std::vector<std::string> fuse;
};

// Parses one -o argument ("a=1,b,c=x") into `out`. InvalidArgument for a
// bad value of one of ours.
Status ParseMountOptions(const std::string& text, MountOptions* out);

}  // namespace cairn::fsd
