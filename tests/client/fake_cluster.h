// In-test fake Cairn services for libcairn, the CLI and the Python example:
// metaservers (MetaServiceIf) and chunk servers (ChunkServiceIf) served by
// net::RpcServer over real mutual TLS on loopback, with certificates from a
// throw-away cluster CA.
//
// The fakes keep documents in memory and follow the IDL's contracts where
// the client depends on them: routing (a chunk server serves only the
// partitions whose primary it is in the shared map, NOT_PRIMARY naming the
// map version otherwise; an older epoch is STALE_EPOCH), request-id
// deduplication, uploads with per-block and whole-body XXH3 checks,
// copy-on-write kept blocks, if_version, paging. Documents whose id starts
// with "synthetic-" are not stored: their bytes are a function of the
// offset (SyntheticByte), checked on upload and generated on read, so a
// 64 MiB body costs the test process no memory.
//
// Faults: the next N calls of a method can fail with a code, be answered
// only after a delay (a lost reply once the client's call timeout is
// shorter), or Get can flip a byte. Counters say what the client sent.
//
// Thread-safety: every method is thread-safe.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ChunkService.h"
#include "MetaService.h"
#include "client/cairn.h"
#include "common/mutex.h"
#include "tests/common/test_pki.h"
#include "thrift/rpc_server.h"

namespace cairn::test {

// The byte at `offset` of every synthetic document.
inline char SyntheticByte(uint64_t offset) {
  uint64_t z = (offset / 8) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 31)) * 0xBF58476D1CE4E5B9ull;
  return static_cast<char>(z >> (8 * (offset % 8)));
}

struct FakeClusterOptions {
  int metaservers = 1;
  int leader = 0;  // index of the metaserver that answers; the others redirect
  int chunkservers = 2;
  int partitions = 8;
  uint32_t block_bytes = 64 * 1024;
  std::vector<std::string> collections = {"docs"};
};

class FakeCluster {
 public:
  explicit FakeCluster(const FakeClusterOptions& options);
  ~FakeCluster();
  FakeCluster(const FakeCluster&) = delete;
  FakeCluster& operator=(const FakeCluster&) = delete;

  // Empty when every server started.
  const std::string& error() const { return error_; }

  // Client options for user "tester" (certificates in the temp dir); the
  // block size is left at its default: the client learns the fakes' one.
  client::Options ClientOptions() const;
  TlsOptions UserTls() const { return pki_.Options("tester"); }
  std::string CaDir() const { return pki_.ca_dir(); }
  std::vector<HostPort> Metaservers() const;
  // "host:port,host:port"
  std::string MetaserverList() const;

  // Makes node `node` (0-based) the primary of partition `p`, moving the
  // partition's documents to it; bumps the map version and the epoch.
  void MovePartition(uint32_t p, int node);
  int PrimaryOf(uint32_t p) const;
  int64_t map_version() const;

  // Faults. `method` is the RPC name ("Put", "UploadBlock", "Get"...).
  void FailNext(const std::string& method, rpc::ErrorCode::type code, int count);
  void DelayNext(const std::string& method, int delay_ms, int count);
  void CorruptGets(bool on);

  // Counters since the start.
  int Calls(const std::string& method) const;    // every chunk and meta call
  int Applied(const std::string& method) const;  // mutations applied (not deduplicated)
  int64_t UploadedBytes() const;
  std::vector<int32_t> LastKeptBlocks() const;    // indexes of the last put's kept blocks
  std::vector<int32_t> LastInlineBlocks() const;  // ...and of its inline BlockSpec data

  // Direct access to a stored (non-synthetic) body; "" if absent.
  std::string Body(const std::string& collection, const std::string& id) const;

  struct State;

 private:
  TestPki pki_;
  std::string error_;
  std::shared_ptr<State> state_;
  std::vector<std::unique_ptr<net::RpcServer>> metas_;
  std::vector<std::unique_ptr<net::RpcServer>> chunks_;
};

}  // namespace cairn::test
