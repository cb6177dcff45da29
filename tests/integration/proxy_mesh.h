// ProxyMesh: network partitions between the processes of a test cluster
// (tests/integration/cluster_harness.h) without root or namespaces. Chunk
// server i reaches the metaserver only through a proxy of its own, and each
// peer j only through a proxy for the directed pair (i, j) (the chunk
// server's `peer_addresses` option); clients and the test still reach every
// node directly. Cutting node i from the metaserver cuts its metaserver
// proxy; cutting it from its peers cuts the proxies (i, j) and (j, i) for
// every j, so neither side can open or keep a connection to the other.
//
//   ProxyMesh mesh(3);
//   ClusterOptions o = ...;
//   mesh.Wire(&o);             // before Cluster::Start
//   mesh.CutFromMetaserver(1);
//   mesh.CutFromPeers(1, TcpProxy::CutMode::kSilent);
//   mesh.HealAll();
//
// A cut closes the connections (kClose: fails fast) or holds them, forwarding
// nothing until the heal (kSilent: calls hang until their timeouts); see
// TcpProxy.
//
// Thread-safety: Wire, then Cut/Heal from the test's thread. The mesh must
// outlive the cluster's use of the proxies (declare it before the cluster).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/integration/cluster_harness.h"
#include "tests/integration/tcp_proxy.h"

namespace cairn::test {

class ProxyMesh {
 public:
  explicit ProxyMesh(int chunk_servers) : n_(chunk_servers) {
    for (int i = 0; i < n_; ++i) {
      meta_.push_back(std::make_unique<TcpProxy>());
      for (int j = 0; j < n_; ++j) {
        if (i != j) peer_[{i, j}] = std::make_unique<TcpProxy>();
      }
    }
  }
  ProxyMesh(const ProxyMesh&) = delete;
  ProxyMesh& operator=(const ProxyMesh&) = delete;

  // Routes chunk server i's connections to the metaserver and to its peers
  // through the mesh (sets o->chunkserver_set_for; o->chunk_servers must be
  // the count given to the constructor).
  void Wire(ClusterOptions* o) {
    o->chunkserver_set_for = [this](int i, const HostPort& ms, const std::vector<HostPort>& cs) {
      meta_[static_cast<size_t>(i)]->Start(ms);
      std::string peers;
      for (int j = 0; j < n_; ++j) {
        if (j == i) continue;
        TcpProxy& p = *peer_.at({i, j});
        p.Start(cs[static_cast<size_t>(j)]);
        peers += (peers.empty() ? "" : ",") + ("cs" + std::to_string(j)) + "=" + p.address();
      }
      return std::vector<std::string>{"metaservers=" + meta_[static_cast<size_t>(i)]->address(),
                                      "peer_addresses=" + peers};
    };
  }

  void CutFromMetaserver(int i, TcpProxy::CutMode mode = TcpProxy::CutMode::kClose) {
    meta_[static_cast<size_t>(i)]->Cut(mode);
  }
  // Both directions between i and every other chunk server.
  void CutFromPeers(int i, TcpProxy::CutMode mode = TcpProxy::CutMode::kClose) {
    for (auto& [pair, p] : peer_) {
      if (pair.first == i || pair.second == i) p->Cut(mode);
    }
  }
  void HealAll() {
    for (auto& p : meta_) p->Heal();
    for (auto& [pair, p] : peer_) p->Heal();
  }

 private:
  const int n_;
  std::vector<std::unique_ptr<TcpProxy>> meta_;                    // by chunk server
  std::map<std::pair<int, int>, std::unique_ptr<TcpProxy>> peer_;  // (from, to)
};

}  // namespace cairn::test
