#include "thrift/rpc_server.h"

#include <future>
#include <optional>

#include <thrift/TProcessor.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/server/TThreadedServer.h>
#include <thrift/transport/TSSLServerSocket.h>
#include <thrift/transport/TSSLSocket.h>

#include "common/logging.h"
#include "thrift/message_transport.h"

namespace cairn::net {
namespace {

using apache::thrift::protocol::TBinaryProtocolFactory;
using apache::thrift::protocol::TProtocol;
using apache::thrift::server::TServerEventHandler;
using apache::thrift::server::TThreadedServer;
using apache::thrift::transport::TSocket;
using apache::thrift::transport::TSSLServerSocket;
using apache::thrift::transport::TTransport;
using apache::thrift::transport::TTransportException;
using apache::thrift::transport::TTransportFactory;

thread_local const Identity* t_caller = nullptr;

class MessageTransportFactory : public TTransportFactory {
 public:
  std::shared_ptr<TTransport> getTransport(std::shared_ptr<TTransport> trans) override {
    return std::make_shared<MessageTransport>(std::move(trans));
  }
};

struct ConnectionContext {
  std::shared_ptr<MessageTransport> transport;
  std::optional<Identity> caller;
};

class AuthEventHandler : public TServerEventHandler {
 public:
  AuthEventHandler(std::string name, const ServerOptions& options, std::promise<Status>* listening)
      : log_("rpc", name),
        idle_timeout_ms_(options.idle_timeout_ms),
        io_timeout_ms_(options.io_timeout_ms),
        listening_(listening) {}

  void preServe() override {
    if (listening_ != nullptr) {
      listening_->set_value(Status::Ok());
      listening_ = nullptr;
    }
  }

  // Runs in the connection's thread: the handshake and the identity check
  // happen here, bounded by io_timeout_ms.
  void* createContext(std::shared_ptr<TProtocol> input, std::shared_ptr<TProtocol>) override {
    auto* ctx = new ConnectionContext;
    ctx->transport = std::dynamic_pointer_cast<MessageTransport>(input->getTransport());
    std::shared_ptr<TSocket> socket;
    if (ctx->transport != nullptr) {
      socket = std::dynamic_pointer_cast<TSocket>(ctx->transport->getUnderlyingTransport());
    }
    if (socket == nullptr) {
      LOG_ERROR(log_) << "connection without a TLS socket; closing it";
      input->getTransport()->close();
      return ctx;
    }
    const std::string peer = socket->getPeerAddress() + ":" + std::to_string(socket->getPeerPort());
    socket->setRecvTimeout(io_timeout_ms_);
    Result<std::string> id = PeerIdentity(ctx->transport.get());
    Result<Identity> parsed = id.ok() ? ParseIdentity(*id) : Result<Identity>(id.status());
    if (!parsed.ok()) {
      LOG_EVERY_N_SEC(log_, kWarn, 5)
          << "refused connection from " << peer << ": " << parsed.status().ToString();
      try {
        ctx->transport->close();
      } catch (const TTransportException&) {
      }
      return ctx;
    }
    ctx->caller = *parsed;
    socket->setRecvTimeout(idle_timeout_ms_);
    LOG_DEBUG(log_) << "connection from " << peer << " as " << ctx->caller->ToString();
    return ctx;
  }

  void deleteContext(void* context, std::shared_ptr<TProtocol>,
                     std::shared_ptr<TProtocol>) override {
    t_caller = nullptr;
    delete static_cast<ConnectionContext*>(context);
  }

  void processContext(void* context, std::shared_ptr<TTransport>) override {
    auto* ctx = static_cast<ConnectionContext*>(context);
    t_caller = ctx->caller ? &*ctx->caller : nullptr;
    if (ctx->transport != nullptr) ctx->transport->ResetMessageBudget();
  }

 private:
  const Logger log_;
  const int idle_timeout_ms_;
  const int io_timeout_ms_;
  std::promise<Status>* listening_;  // until preServe; owned by Start()
};

}  // namespace

const Identity* CurrentCaller() { return t_caller; }

Result<std::unique_ptr<RpcServer>> RpcServer::Start(
    const ServerOptions& options, std::shared_ptr<apache::thrift::TProcessor> processor,
    std::string name) {
  ASSIGN_OR_RETURN(auto factory, MakeTlsFactory(options.tls, TlsRole::kServer));
  std::unique_ptr<RpcServer> server(new RpcServer);
  server->name_ = name;
  auto socket = std::make_shared<TSSLServerSocket>(options.host, options.port, factory);
  socket->setSendTimeout(options.io_timeout_ms);
  socket->setRecvTimeout(options.io_timeout_ms);
  // Strict reads refuse frames without a version header at once; the limits
  // bound what one garbage length field can make us allocate.
  auto protocol = std::make_shared<TBinaryProtocolFactory>(kMaxStringBytes, kMaxContainerItems,
                                                           /*strict_read=*/true,
                                                           /*strict_write=*/true);
  server->server_ = std::make_shared<TThreadedServer>(
      std::move(processor), socket, std::make_shared<MessageTransportFactory>(), protocol);
  std::promise<Status> listening;
  std::future<Status> ready = listening.get_future();
  auto handler = std::make_shared<AuthEventHandler>(name, options, &listening);
  server->server_->setServerEventHandler(handler);
  server->thread_ = std::thread([s = server->server_, &listening, handler, name] {
    try {
      s->serve();
    } catch (const TTransportException& e) {
      // Before preServe (listen failed) the promise is still ours to set.
      try {
        listening.set_value(Status::Unavailable(name + ": cannot listen: " + e.what()));
      } catch (const std::future_error&) {
        LOG_ERROR(Logger("rpc", name)) << "server stopped: " << e.what();
      }
    }
  });
  Status s = ready.get();
  if (!s.ok()) {
    server->thread_.join();
    server->stopped_ = true;
    return s;
  }
  server->port_ = socket->getPort();
  LOG_INFO(Logger("rpc", name)) << "serving on " << options.host << ":" << server->port_;
  return server;
}

void RpcServer::Stop() {
  if (stopped_.exchange(true)) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  LOG_INFO(Logger("rpc", name_)) << "stopped";
}

RpcServer::~RpcServer() { Stop(); }

}  // namespace cairn::net
