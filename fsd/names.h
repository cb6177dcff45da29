// The mount's name space (fsd/README.md "Layout"): which names exist at each
// level, which are reserved, and how a Status becomes an errno (the one
// place where errno values are chosen). I/O-free.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cairn::fsd {

// What an inode is.
enum class NodeKind : uint8_t {
  kRoot,        // the mount point
  kStatus,      // /.status (read-only JSON)
  kCollection,  // /<collection>/
  kIndexes,     // /<collection>/.indexes (indexed paths, one a line; writable)
  kQueryDir,    // /<collection>/.query/ (lists nothing)
  kQueryFile,   // /<collection>/.query/<query> (read-only; NodeKey::id holds the query text)
  kDocument,    // /<collection>/<id>
};

inline constexpr std::string_view kStatusName = ".status";
inline constexpr std::string_view kIndexesName = ".indexes";
inline constexpr std::string_view kQueryName = ".query";
// Documents unlinked while open are renamed to a hidden id with this prefix
// until the last handle closes (fs.h "Unlinked open files"); never listed.
inline constexpr std::string_view kUnlinkedPrefix = ".cairn-unlinked-";

// The file-name limit the mount reports (statfs f_namelen) and enforces.
inline constexpr size_t kNameMax = 255;
// Collection names are 1..128 bytes of [A-Za-z0-9_.-], not starting with '.'.
inline constexpr size_t kCollectionNameMax = 128;

// A name in the root that may become a collection: TooLarge (ENAMETOOLONG)
// over 128 bytes, InvalidArgument (EINVAL) for other bad names.
Status CheckCollectionName(std::string_view name);
// A name in a collection that may be a document: 1..255 bytes, no '/' or
// NUL, not "." or "..", not reserved (.indexes, .query, the unlinked prefix:
// PermissionDenied, EPERM).
Status CheckDocumentName(std::string_view name);

// The errno for a failed operation (positive). NotFound ENOENT,
// AlreadyExists EEXIST, NotEmpty ENOTEMPTY, InvalidArgument EINVAL,
// TooLarge and LimitExceeded EFBIG, PermissionDenied EPERM, NoSpace ENOSPC, Timeout
// ETIMEDOUT, Unavailable/NotPrimary/StaleEpoch EHOSTUNREACH (the cluster
// could not be reached within the deadline), VersionMismatch ESTALE,
// everything else (Corruption, DataLoss, IOError, Internal...) EIO.
int ErrnoOf(const Status& s);
// ErrnoOf for a name check: TooLarge is ENAMETOOLONG there.
int NameErrno(const Status& s);

}  // namespace cairn::fsd
