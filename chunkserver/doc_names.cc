#include "chunkserver/doc_names.h"

#include <string>

namespace cairn::chunkserver {

Status ValidateCollection(std::string_view name) {
  if (name.empty() || name.size() > kMaxCollectionBytes) {
    return Status::InvalidArgument("collection name must be 1-128 bytes, got " +
                                   std::to_string(name.size()));
  }
  if (name[0] == '.') {
    return Status::InvalidArgument("collection name '" + std::string(name) + "' starts with '.'");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) {
      return Status::InvalidArgument("collection name '" + std::string(name) +
                                     "' has a byte outside [A-Za-z0-9_.-]");
    }
  }
  return Status::Ok();
}

Status ValidateDocId(std::string_view id) {
  if (id.empty() || id.size() > kMaxDocIdBytes) {
    return Status::InvalidArgument("document id must be 1-255 bytes, got " +
                                   std::to_string(id.size()));
  }
  if (id == "." || id == "..") return Status::InvalidArgument("document id may not be . or ..");
  if (id.find('/') != std::string_view::npos || id.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("document id contains '/' or NUL");
  }
  return Status::Ok();
}

Status ValidateXattrs(const DocMetadata& meta) {
  size_t total = 0;
  for (const auto& [k, v] : meta.xattrs) {
    if (k.empty() || k.size() > kMaxXattrNameBytes || k.find('\0') != std::string::npos) {
      return Status::InvalidArgument("attribute name must be 1-255 bytes without NUL");
    }
    total += k.size() + v.size();
    if (total > kMaxXattrTotalBytes) {
      return Status::InvalidArgument("attributes exceed " + std::to_string(kMaxXattrTotalBytes) +
                                     " bytes in total");
    }
  }
  return Status::Ok();
}

}  // namespace cairn::chunkserver
