#include "thrift/rpc_errors.h"

namespace cairn::net {

rpc::ErrorCode::type ToErrorCode(StatusCode code) {
  switch (code) {
    case StatusCode::kNotFound:
      return rpc::ErrorCode::NOT_FOUND;
    case StatusCode::kAlreadyExists:
      return rpc::ErrorCode::ALREADY_EXISTS;
    case StatusCode::kInvalidArgument:
      return rpc::ErrorCode::INVALID_ARGUMENT;
    case StatusCode::kVersionMismatch:
      return rpc::ErrorCode::VERSION_MISMATCH;
    case StatusCode::kNotPrimary:
      return rpc::ErrorCode::NOT_PRIMARY;
    case StatusCode::kStaleEpoch:
      return rpc::ErrorCode::STALE_EPOCH;
    case StatusCode::kUnavailable:
      return rpc::ErrorCode::UNAVAILABLE;
    case StatusCode::kTimeout:
      return rpc::ErrorCode::TIMEOUT;
    case StatusCode::kPermissionDenied:
      return rpc::ErrorCode::PERMISSION_DENIED;
    case StatusCode::kTooLarge:
      return rpc::ErrorCode::TOO_LARGE;
    case StatusCode::kDataLoss:
    case StatusCode::kCorruption:
      return rpc::ErrorCode::DATA_LOSS;
    case StatusCode::kNotEmpty:
      return rpc::ErrorCode::NOT_EMPTY;
    case StatusCode::kFailedPrecondition:
      return rpc::ErrorCode::FAILED_PRECONDITION;
    case StatusCode::kIOError:
      return rpc::ErrorCode::IO_ERROR;
    case StatusCode::kNoSpace:
      return rpc::ErrorCode::NO_SPACE;
    case StatusCode::kLimitExceeded:
      return rpc::ErrorCode::LIMIT_EXCEEDED;
    case StatusCode::kOk:
    case StatusCode::kInternal:
      break;
  }
  return rpc::ErrorCode::INTERNAL;
}

StatusCode FromErrorCode(rpc::ErrorCode::type code) {
  switch (code) {
    case rpc::ErrorCode::NOT_FOUND:
      return StatusCode::kNotFound;
    case rpc::ErrorCode::ALREADY_EXISTS:
      return StatusCode::kAlreadyExists;
    case rpc::ErrorCode::INVALID_ARGUMENT:
      return StatusCode::kInvalidArgument;
    case rpc::ErrorCode::VERSION_MISMATCH:
      return StatusCode::kVersionMismatch;
    case rpc::ErrorCode::NOT_PRIMARY:
      return StatusCode::kNotPrimary;
    case rpc::ErrorCode::STALE_EPOCH:
      return StatusCode::kStaleEpoch;
    case rpc::ErrorCode::UNAVAILABLE:
      return StatusCode::kUnavailable;
    case rpc::ErrorCode::TIMEOUT:
      return StatusCode::kTimeout;
    case rpc::ErrorCode::PERMISSION_DENIED:
      return StatusCode::kPermissionDenied;
    case rpc::ErrorCode::TOO_LARGE:
      return StatusCode::kTooLarge;
    case rpc::ErrorCode::DATA_LOSS:
      return StatusCode::kDataLoss;
    case rpc::ErrorCode::NOT_EMPTY:
      return StatusCode::kNotEmpty;
    case rpc::ErrorCode::INTERNAL:
      return StatusCode::kInternal;
    case rpc::ErrorCode::FAILED_PRECONDITION:
      return StatusCode::kFailedPrecondition;
    case rpc::ErrorCode::IO_ERROR:
      return StatusCode::kIOError;
    case rpc::ErrorCode::NO_SPACE:
      return StatusCode::kNoSpace;
    case rpc::ErrorCode::LIMIT_EXCEEDED:
      return StatusCode::kLimitExceeded;
  }
  return StatusCode::kInternal;  // a code from a newer peer
}

rpc::CairnError ToCairnError(const Status& s) {
  rpc::CairnError e;
  e.code = ToErrorCode(s.code());
  e.message = s.message();
  return e;
}

Status FromCairnError(const rpc::CairnError& e) {
  StatusCode code = FromErrorCode(e.code);
  std::string message = e.message;
  if (message.empty()) message = "(no message)";
  return Status(code, std::move(message));
}

void ThrowIfError(const Status& s) {
  if (!s.ok()) throw ToCairnError(s);
}

}  // namespace cairn::net
