// A TCP proxy on loopback for network-partition tests: listens on
// 127.0.0.1:<port>, forwards every connection to a target, and can be cut
// and healed. Two kinds of cut:
//  - kClose: every open connection is closed and new ones are closed at once
//    (the peer sees a reset or end of file: fails fast);
//  - kSilent: nothing is forwarded any more, but connections stay open and
//    new ones are accepted and held (as if packets were dropped: calls hang
//    until their own timeouts). Heal forwards again what was held, late.
// The bytes are passed through untouched (TLS runs end to end).
//
// Thread-safe. Stop() (or the destructor) closes everything and joins.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/config.h"

namespace cairn::test {

class TcpProxy {
 public:
  enum class CutMode : uint8_t { kClose, kSilent };

  TcpProxy() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ::listen(listen_fd_, 64);
    socklen_t len = sizeof(a);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~TcpProxy() { Stop(); }
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Starts forwarding to `target` (127.0.0.x:port).
  void Start(const HostPort& target) {
    target_ = target;
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  // A partition (see CutMode).
  void Cut(CutMode mode = CutMode::kClose) {
    if (mode == CutMode::kSilent) {
      silent_ = true;
      return;
    }
    cut_ = true;
    std::lock_guard<std::mutex> l(mu_);
    for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
  }
  void Heal() {
    cut_ = false;
    silent_ = false;
  }

  void Stop() {
    if (stopped_.exchange(true)) return;
    ::shutdown(listen_fd_, SHUT_RDWR);
    if (accept_thread_.joinable()) accept_thread_.join();
    ::close(listen_fd_);
    {
      std::lock_guard<std::mutex> l(mu_);
      for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    }
    std::vector<std::thread> pumps;
    {
      std::lock_guard<std::mutex> l(mu_);
      pumps.swap(pumps_);
    }
    for (std::thread& t : pumps) t.join();
  }

 private:
  int Connect() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(target_.port));
    ::inet_pton(AF_INET, target_.host.c_str(), &a.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  void AcceptLoop() {
    for (;;) {
      const int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) return;  // shut down
      if (cut_) {
        ::close(client);
        continue;
      }
      std::lock_guard<std::mutex> l(mu_);
      open_.insert(client);
      pumps_.emplace_back([this, client] { Forward(client); });
    }
  }

  // One accepted connection: held while the cut is silent, then connected to
  // the target and pumped.
  void Forward(int client) {
    while (silent_ && !cut_ && !stopped_)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const int server = cut_ || stopped_ ? -1 : Connect();
    if (server < 0) {
      std::lock_guard<std::mutex> l(mu_);
      open_.erase(client);
      ::close(client);
      return;
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      open_.insert(server);
    }
    Pump(client, server);
  }

  // Copies both ways until either side closes, then closes both.
  void Pump(int a, int b) {
    char buf[64 << 10];
    pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    for (;;) {
      if (silent_ && !cut_ && !stopped_) {  // hold everything, unread
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      if (::poll(fds, 2, 200) < 0) break;
      if (cut_ || stopped_) break;
      bool done = false;
      for (int i = 0; i < 2 && !done; ++i) {
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        const ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
        if (n <= 0) {
          done = true;
          break;
        }
        ssize_t off = 0;
        while (off < n) {
          const ssize_t w = ::write(fds[1 - i].fd, buf + off, static_cast<size_t>(n - off));
          if (w <= 0) {
            done = true;
            break;
          }
          off += w;
        }
      }
      if (done) break;
    }
    std::lock_guard<std::mutex> l(mu_);
    open_.erase(a);
    open_.erase(b);
    ::close(a);
    ::close(b);
  }

  int listen_fd_ = -1;
  int port_ = 0;
  HostPort target_;
  std::atomic<bool> cut_{false};
  std::atomic<bool> silent_{false};
  std::atomic<bool> stopped_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::set<int> open_;
  std::vector<std::thread> pumps_;
};

}  // namespace cairn::test
