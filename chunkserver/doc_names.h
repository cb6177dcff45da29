// The rules for collection names, document ids and user attributes
// (docs/design-store.md "Names and limits"). InvalidArgument names the rule.
#pragma once

#include <string_view>

#include "chunkserver/doc_types.h"
#include "common/status.h"

namespace cairn::chunkserver {

inline constexpr size_t kMaxCollectionBytes = 128;
inline constexpr size_t kMaxDocIdBytes = 255;
inline constexpr size_t kMaxXattrNameBytes = 255;
// All attribute names and values of one document together.
inline constexpr size_t kMaxXattrTotalBytes = 64 * 1024;

// 1-128 bytes of [A-Za-z0-9_.-], not starting with '.'.
Status ValidateCollection(std::string_view name);
// 1-255 bytes, any byte but '/' and NUL, not "." or "..".
Status ValidateDocId(std::string_view id);
// Names 1-255 bytes without NUL; names and values together at most 64 KiB.
Status ValidateXattrs(const DocMetadata& meta);

}  // namespace cairn::chunkserver
