// The libfuse low-level callbacks of cairn-fsd: each one unpacks its
// arguments, calls one Fs method and sends exactly one reply. The session's
// userdata is the Fs (borrowed; it outlives the session loop).
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

namespace cairn::fsd {

const fuse_lowlevel_ops& CairnFuseOps();

}  // namespace cairn::fsd
