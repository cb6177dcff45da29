// Cairn's RPC interface, shared part: errors and request ids. The services
// are in chunk.thrift (documents) and meta.thrift (cluster map). These are the
// public client API and the calls between processes. Every connection is Thrift binary protocol over a buffered
// transport over mutual TLS 1.3 (docs/design-store.md). Fields are never
// renumbered or reused; new fields are optional.

namespace cpp cairn.rpc
namespace py cairn_rpc.base

// ---------------------------------------------------------------- errors

enum ErrorCode {
  NOT_FOUND = 1,
  ALREADY_EXISTS = 2,
  INVALID_ARGUMENT = 3,
  VERSION_MISMATCH = 4,   // expected_version did not match
  NOT_PRIMARY = 5,        // refresh the map and retry with the same request id
  STALE_EPOCH = 6,        // refresh the map and retry with the same request id
  UNAVAILABLE = 7,        // retry later (node starting, partition moving)
  TIMEOUT = 8,
  PERMISSION_DENIED = 9,
  TOO_LARGE = 10,         // a size limit; the message names it
  DATA_LOSS = 11,         // stored data could not be recovered
  NOT_EMPTY = 12,         // e.g. dropping a collection that has documents
  INTERNAL = 13,
  FAILED_PRECONDITION = 14, // the operation does not fit the current state
  IO_ERROR = 15,
  NO_SPACE = 16,
  // An execution limit of a query (time, result size) was reached; the
  // message names the limit, its value and how to raise it. Not retried.
  LIMIT_EXCEEDED = 17,
}

exception CairnError {
  1: ErrorCode code,
  2: string message,
  // The sender's map version, when the error is about routing.
  3: optional i64 map_version,
}

// Identifies a mutation across retries: (client, sequence). A retried
// mutation with the same id is applied once and answered with the first
// result.
struct RequestId {
  1: i64 client_hi,
  2: i64 client_lo,
  3: i64 seq,
}

