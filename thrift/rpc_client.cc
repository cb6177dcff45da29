#include "thrift/rpc_client.h"

#include <thrift/TApplicationException.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TProtocolException.h>
#include <thrift/transport/TSSLSocket.h>

#include "cairn_types.h"
#include "thrift/message_transport.h"
#include "thrift/rpc_errors.h"
#include "thrift/rpc_server.h"

namespace cairn::net {

using apache::thrift::TApplicationException;
using apache::thrift::TException;
using apache::thrift::protocol::TBinaryProtocol;
using apache::thrift::protocol::TProtocol;
using apache::thrift::protocol::TProtocolException;
using apache::thrift::transport::TTransportException;

struct ConnectionPool::Connection {
  std::shared_ptr<apache::thrift::transport::TSSLSocket> socket;
  std::shared_ptr<MessageTransport> transport;
  std::shared_ptr<TProtocol> protocol;

  ~Connection() {
    try {
      if (transport != nullptr) transport->close();
    } catch (const TException&) {
      // Closing a broken connection: nothing left to report.
    }
  }
};

ConnectionPool::ConnectionPool(const ClientOptions& options) : options_(options) {}

ConnectionPool::~ConnectionPool() = default;

Result<std::unique_ptr<ConnectionPool>> ConnectionPool::Create(const ClientOptions& options) {
  std::unique_ptr<ConnectionPool> pool(new ConnectionPool(options));
  ASSIGN_OR_RETURN(pool->factory_, MakeTlsFactory(options.tls, TlsRole::kClient));
  return pool;
}

Result<std::unique_ptr<ConnectionPool::Connection>> ConnectionPool::Take(const HostPort& endpoint,
                                                                         bool* reused) {
  *reused = false;
  {
    MutexLock lock(&mu_);
    auto it = idle_.find(endpoint.ToString());
    if (it != idle_.end() && !it->second.empty()) {
      std::unique_ptr<Connection> c = std::move(it->second.back());
      it->second.pop_back();
      *reused = true;
      return c;
    }
  }
  auto c = std::make_unique<Connection>();
  try {
    c->socket = factory_->createSocket(endpoint.host, endpoint.port);
    c->socket->setConnTimeout(options_.connect_timeout_ms);
    c->socket->setRecvTimeout(options_.call_timeout_ms);
    c->socket->setSendTimeout(options_.call_timeout_ms);
    c->transport = std::make_shared<MessageTransport>(c->socket);
    auto protocol = std::make_shared<TBinaryProtocol>(c->transport);
    protocol->setStringSizeLimit(kMaxStringBytes);
    protocol->setContainerSizeLimit(kMaxContainerItems);
    protocol->setStrict(true, true);
    c->protocol = protocol;
    c->transport->open();
  } catch (const TTransportException& e) {
    return StatusFromTransportException(e, "connect to " + endpoint.ToString());
  }
  return c;
}

void ConnectionPool::Give(const HostPort& endpoint, std::unique_ptr<Connection> c) {
  MutexLock lock(&mu_);
  auto& list = idle_[endpoint.ToString()];
  if (list.size() < static_cast<size_t>(options_.max_idle_per_endpoint)) {
    list.push_back(std::move(c));
  }
}

void ConnectionPool::Forget(const HostPort& endpoint) {
  std::vector<std::unique_ptr<Connection>> dropped;
  MutexLock lock(&mu_);
  auto it = idle_.find(endpoint.ToString());
  if (it != idle_.end()) {
    dropped = std::move(it->second);
    idle_.erase(it);
  }
}

Status ConnectionPool::CallRaw(const HostPort& endpoint,
                               const std::function<void(std::shared_ptr<TProtocol>)>& fn) {
  const std::string where = "call to " + endpoint.ToString();
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    ASSIGN_OR_RETURN(std::unique_ptr<Connection> c, Take(endpoint, &reused));
    try {
      c->transport->ResetMessageBudget();
      fn(c->protocol);
    } catch (const rpc::CairnError& e) {
      // A well-formed error reply: the connection is in step.
      Give(endpoint, std::move(c));
      return FromCairnError(e);
    } catch (const TTransportException& e) {
      Forget(endpoint);  // the peer may have restarted: its other connections are dead too
      // An idle pooled connection that the peer closed (it restarted, or its
      // idle timeout ran out) fails at once with end-of-file or a reset: the
      // request reached no live server. Try once more on a new connection.
      // Never after a timeout: that request may still be running.
      if (reused && attempt == 0 && e.getType() != TTransportException::TIMED_OUT) continue;
      return StatusFromTransportException(e, where);
    } catch (const TProtocolException& e) {
      return Status::Internal(where + ": protocol error: " + e.what());
    } catch (const TApplicationException& e) {
      return Status::Internal(where + ": " + e.what());
    } catch (const TException& e) {
      return Status::Unavailable(where + ": " + e.what());
    }
    Give(endpoint, std::move(c));
    return Status::Ok();
  }
}

}  // namespace cairn::net
