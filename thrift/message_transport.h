// The buffered transport every Cairn connection uses, with a message budget
// that is reset before each call. Thrift 0.17 counts bytes read through the
// borrow/consume path against TConfiguration's max message size and never
// resets the count on a plain buffered transport, so a long-lived connection
// would be dropped after ~100 MiB of small fields (DESIGN.md, Thrift facts).
// Internal to thrift/rpc_*.cc.
#pragma once

#include <memory>

#include <thrift/transport/TBufferTransports.h>

namespace cairn::net {

inline constexpr uint32_t kTransportBufferBytes = 64 * 1024;

class MessageTransport : public apache::thrift::transport::TBufferedTransport {
 public:
  explicit MessageTransport(std::shared_ptr<apache::thrift::transport::TTransport> t)
      : TBufferedTransport(std::move(t), kTransportBufferBytes, kTransportBufferBytes) {}
  // Call before each request (server) or each call (client).
  void ResetMessageBudget() { resetConsumedMessageSize(); }
};

}  // namespace cairn::net
