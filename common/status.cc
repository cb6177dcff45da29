#include "common/status.h"

#include <cerrno>
#include <cstring>

namespace cairn {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kNotFound:
      return "NotFound";
    case StatusCode::kCorruption:
      return "Corruption";
    case StatusCode::kDataLoss:
      return "DataLoss";
    case StatusCode::kIOError:
      return "IOError";
    case StatusCode::kInvalidArgument:
      return "InvalidArgument";
    case StatusCode::kUnavailable:
      return "Unavailable";
    case StatusCode::kNotPrimary:
      return "NotPrimary";
    case StatusCode::kStaleEpoch:
      return "StaleEpoch";
    case StatusCode::kTimeout:
      return "Timeout";
    case StatusCode::kPermissionDenied:
      return "PermissionDenied";
    case StatusCode::kAlreadyExists:
      return "AlreadyExists";
    case StatusCode::kNoSpace:
      return "NoSpace";
    case StatusCode::kFailedPrecondition:
      return "FailedPrecondition";
    case StatusCode::kVersionMismatch:
      return "VersionMismatch";
    case StatusCode::kTooLarge:
      return "TooLarge";
    case StatusCode::kNotEmpty:
      return "NotEmpty";
    case StatusCode::kLimitExceeded:
      return "LimitExceeded";
    case StatusCode::kInternal:
      return "Internal";
  }
  return "Unknown";
}

Status::Status(StatusCode code, std::string message) {
  CAIRN_CHECK(code != StatusCode::kOk) << "use Status() for OK";
  rep_ = std::make_unique<Rep>(Rep{code, std::move(message)});
}

Status Status::FromErrno(int err, std::string_view context) {
  std::string msg(context);
  msg += ": ";
  msg += std::strerror(err);  // NOLINT(concurrency-mt-unsafe): glibc's is thread-safe
  StatusCode code = StatusCode::kIOError;
  switch (err) {
    case ENOENT:
      code = StatusCode::kNotFound;
      break;
    case EEXIST:
      code = StatusCode::kAlreadyExists;
      break;
    case EACCES:
    case EPERM:
      code = StatusCode::kPermissionDenied;
      break;
    case ENOSPC:
    case EDQUOT:
      code = StatusCode::kNoSpace;
      break;
    case EINVAL:
    case ENAMETOOLONG:
    case ENOTDIR:
      code = StatusCode::kInvalidArgument;
      break;
    default:
      break;
  }
  return Status(code, std::move(msg));
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->message : kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s(StatusCodeName(rep_->code));
  s += ": ";
  s += rep_->message;
  return s;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return Status();
  std::string msg(context);
  msg += ": ";
  msg += rep_->message;
  return Status(rep_->code, std::move(msg));
}

}  // namespace cairn
