#include "fsd/names.h"

#include <cerrno>

namespace cairn::fsd {

Status CheckCollectionName(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("empty collection name");
  if (name.size() > kCollectionNameMax) {
    return Status::TooLarge("collection name of " + std::to_string(name.size()) +
                            " bytes (at most " + std::to_string(kCollectionNameMax) + ")");
  }
  if (name[0] == '.') {
    return Status::InvalidArgument("collection name '" + std::string(name) + "' starts with '.'");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) {
      return Status::InvalidArgument("collection name '" + std::string(name) +
                                     "': only [A-Za-z0-9_.-]");
    }
  }
  return Status::Ok();
}

Status CheckDocumentName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") {
    return Status::InvalidArgument("bad document name '" + std::string(name) + "'");
  }
  if (name.size() > kNameMax) {
    return Status::TooLarge("document name of " + std::to_string(name.size()) + " bytes (at most " +
                            std::to_string(kNameMax) + ")");
  }
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("document name with '/' or NUL");
  }
  if (name == kIndexesName || name == kQueryName || name.starts_with(kUnlinkedPrefix)) {
    return Status::PermissionDenied("'" + std::string(name) + "' is reserved");
  }
  return Status::Ok();
}

int ErrnoOf(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return 0;
    case StatusCode::kNotFound:
      return ENOENT;
    case StatusCode::kAlreadyExists:
      return EEXIST;
    case StatusCode::kNotEmpty:
      return ENOTEMPTY;
    case StatusCode::kInvalidArgument:
      return EINVAL;
    case StatusCode::kTooLarge:
    case StatusCode::kLimitExceeded:  // a query's result size or time
      return EFBIG;
    case StatusCode::kPermissionDenied:
      return EPERM;
    case StatusCode::kNoSpace:
      return ENOSPC;
    case StatusCode::kTimeout:
      return ETIMEDOUT;
    case StatusCode::kUnavailable:
    case StatusCode::kNotPrimary:
    case StatusCode::kStaleEpoch:
      return EHOSTUNREACH;
    case StatusCode::kVersionMismatch:
      return ESTALE;
    default:
      return EIO;
  }
}

int NameErrno(const Status& s) {
  return s.code() == StatusCode::kTooLarge ? ENAMETOOLONG : ErrnoOf(s);
}

}  // namespace cairn::fsd
