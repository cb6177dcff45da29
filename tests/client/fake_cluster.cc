#include "tests/client/fake_cluster.h"

#include <xxhash.h>

#include <chrono>
#include <thread>
#include <tuple>

#include "common/partitioning.h"
#include "thrift/rpc_errors.h"

namespace cairn::test {

namespace {

rpc::CairnError Error(rpc::ErrorCode::type code, std::string message) {
  rpc::CairnError e;
  e.code = code;
  e.message = std::move(message);
  return e;
}

using DedupKey = std::tuple<int64_t, int64_t, int64_t>;
DedupKey Key(const rpc::RequestId& r) { return {r.client_hi, r.client_lo, r.seq}; }

uint64_t SyntheticHash(uint64_t size) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  std::string buf;
  for (uint64_t pos = 0; pos < size;) {
    const uint64_t n = std::min<uint64_t>(size - pos, 1 << 20);
    buf.resize(n);
    for (uint64_t k = 0; k < n; ++k) buf[k] = SyntheticByte(pos + k);
    XXH3_64bits_update(st, buf.data(), n);
    pos += n;
  }
  const uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

}  // namespace

struct FakeCluster::State {
  struct Doc {
    rpc::DocMeta meta;
    std::vector<std::string> blocks;  // empty for synthetic documents
    bool synthetic = false;
  };
  struct Upload {
    int32_t partition = 0;
    std::string collection, id;
    bool synthetic = false;
    std::map<int32_t, std::string> blocks;  // synthetic: empty strings of the right size
    std::map<int32_t, int64_t> sizes;
  };

  mutable Mutex mu;
  uint32_t block_bytes = 0;
  int leader = 0;
  rpc::ClusterMap map GUARDED_BY(mu);
  std::vector<int> primary GUARDED_BY(mu);
  std::vector<HostPort> meta_addrs GUARDED_BY(mu);
  std::map<std::pair<std::string, std::string>, Doc> docs GUARDED_BY(mu);
  std::map<DedupKey, rpc::DocMeta> dedup GUARDED_BY(mu);
  std::map<int64_t, Upload> uploads GUARDED_BY(mu);
  int64_t next_upload GUARDED_BY(mu) = 1;
  int64_t next_version GUARDED_BY(mu) = 1;
  std::map<std::string, int> calls GUARDED_BY(mu);
  std::map<std::string, int> applied GUARDED_BY(mu);
  std::map<std::string, std::pair<rpc::ErrorCode::type, int>> fail GUARDED_BY(mu);
  std::map<std::string, std::pair<int, int>> delay GUARDED_BY(mu);
  bool corrupt GUARDED_BY(mu) = false;
  int64_t uploaded GUARDED_BY(mu) = 0;
  std::vector<int32_t> last_kept GUARDED_BY(mu);
  std::vector<int32_t> last_inline GUARDED_BY(mu);

  // Counts the call, throws an injected failure, returns an injected delay.
  int Enter(const std::string& method) REQUIRES(mu) {
    ++calls[method];
    auto f = fail.find(method);
    if (f != fail.end() && f->second.second > 0) {
      --f->second.second;
      throw Error(f->second.first, "injected failure of " + method);
    }
    auto d = delay.find(method);
    if (d != delay.end() && d->second.second > 0) {
      --d->second.second;
      return d->second.first;
    }
    return 0;
  }

  // Routing checks of a partitioned call on node `node`.
  void Route(int node, int32_t partition, int64_t epoch) REQUIRES(mu) {
    if (partition < 0 || static_cast<size_t>(partition) >= primary.size()) {
      throw Error(rpc::ErrorCode::INVALID_ARGUMENT, "no partition " + std::to_string(partition));
    }
    if (primary[static_cast<size_t>(partition)] != node) {
      rpc::CairnError e = Error(rpc::ErrorCode::NOT_PRIMARY,
                                "node " + std::to_string(node + 1) + " is not the primary of " +
                                    "partition " + std::to_string(partition));
      e.__set_map_version(map.version);
      throw e;
    }
    if (epoch < map.partitions[static_cast<size_t>(partition)].epoch) {
      rpc::CairnError e = Error(rpc::ErrorCode::STALE_EPOCH, "stale epoch");
      e.__set_map_version(map.version);
      throw e;
    }
  }

  void CheckDoc(int32_t partition, const std::string& collection, const std::string& id)
      REQUIRES(mu) {
    bool known = false;
    for (const rpc::CollectionInfo& c : map.collections) known = known || c.name == collection;
    if (!known) throw Error(rpc::ErrorCode::NOT_FOUND, "no collection '" + collection + "'");
    const auto p = PartitionOf(collection, id, static_cast<uint32_t>(map.partition_count));
    if (static_cast<int32_t>(p.value()) != partition) {
      throw Error(rpc::ErrorCode::INVALID_ARGUMENT,
                  collection + "/" + id + " is not in partition " + std::to_string(partition));
    }
  }

  Doc& Find(const std::string& collection, const std::string& id) REQUIRES(mu) {
    auto it = docs.find({collection, id});
    if (it == docs.end()) throw Error(rpc::ErrorCode::NOT_FOUND, "no such document");
    return it->second;
  }
};

namespace {

void Sleep(int ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

class FakeChunk : public rpc::ChunkServiceNull {
 public:
  FakeChunk(std::shared_ptr<FakeCluster::State> s, int node) : s_(std::move(s)), node_(node) {}

  void Put(rpc::DocMeta& out, const rpc::PutRequest& req) override {
    int delay = 0;
    {
      MutexLock l(&s_->mu);
      delay = s_->Enter("Put");
      s_->Route(node_, req.partition, req.epoch);
      s_->CheckDoc(req.partition, req.collection, req.id);
      auto dup = s_->dedup.find(Key(req.request_id));
      if (dup != s_->dedup.end()) {
        out = dup->second;
      } else {
        out = Apply(req);
        s_->dedup[Key(req.request_id)] = out;
        ++s_->applied["Put"];
      }
    }
    Sleep(delay);
  }

  int64_t UploadBegin(const int32_t partition, const int64_t epoch, const std::string& collection,
                      const std::string& id) override {
    int delay = 0;
    int64_t up = 0;
    {
      MutexLock l(&s_->mu);
      delay = s_->Enter("UploadBegin");
      s_->Route(node_, partition, epoch);
      s_->CheckDoc(partition, collection, id);
      up = s_->next_upload++;
      FakeCluster::State::Upload& u = s_->uploads[up];
      u.partition = partition;
      u.collection = collection;
      u.id = id;
      u.synthetic = id.starts_with("synthetic-");
    }
    Sleep(delay);
    return up;
  }

  void UploadBlock(const int64_t upload_id, const int32_t index, const std::string& data,
                   const int64_t data_hash) override {
    int delay = 0;
    {
      MutexLock l(&s_->mu);
      delay = s_->Enter("UploadBlock");
      auto it = s_->uploads.find(upload_id);
      if (it == s_->uploads.end()) {
        throw Error(rpc::ErrorCode::NOT_FOUND, "no upload " + std::to_string(upload_id));
      }
      if (static_cast<int64_t>(XXH3_64bits(data.data(), data.size())) != data_hash) {
        throw Error(rpc::ErrorCode::DATA_LOSS, "block hash mismatch");
      }
      if (data.size() > s_->block_bytes || index < 0) {
        throw Error(rpc::ErrorCode::INVALID_ARGUMENT, "bad block");
      }
      FakeCluster::State::Upload& u = it->second;
      if (u.synthetic) {
        const uint64_t base = uint64_t{static_cast<uint32_t>(index)} * s_->block_bytes;
        for (size_t k = 0; k < data.size(); ++k) {
          if (data[k] != SyntheticByte(base + k)) {
            throw Error(rpc::ErrorCode::DATA_LOSS, "synthetic block " + std::to_string(index) +
                                                       " differs at byte " + std::to_string(k));
          }
        }
      } else {
        u.blocks[index] = data;
      }
      u.sizes[index] = static_cast<int64_t>(data.size());
      s_->uploaded += static_cast<int64_t>(data.size());
    }
    Sleep(delay);
  }

  void UploadAbort(const int64_t upload_id) override {
    MutexLock l(&s_->mu);
    s_->Enter("UploadAbort");
    s_->uploads.erase(upload_id);
  }

  void Get(rpc::GetResult& out, const rpc::GetRequest& req) override {
    int delay = 0;
    {
      MutexLock l(&s_->mu);
      delay = s_->Enter("Get");
      s_->Route(node_, req.partition, req.epoch);
      s_->CheckDoc(req.partition, req.collection, req.id);
      FakeCluster::State::Doc& d = s_->Find(req.collection, req.id);
      if (req.__isset.if_version && req.if_version != d.meta.version) {
        throw Error(rpc::ErrorCode::VERSION_MISMATCH,
                    "version is " + std::to_string(d.meta.version));
      }
      if (req.length < 0 || req.offset < 0) throw Error(rpc::ErrorCode::INVALID_ARGUMENT, "range");
      out.meta = d.meta;
      const int64_t size = d.meta.size;
      const int64_t from = std::min(req.offset, size);
      const int64_t to = std::min(size, from + std::min<int64_t>(req.length, s_->block_bytes));
      out.data.resize(static_cast<size_t>(to - from));
      for (int64_t k = from; k < to; ++k) {
        out.data[static_cast<size_t>(k - from)] =
            d.synthetic ? SyntheticByte(static_cast<uint64_t>(k))
                        : d.blocks[static_cast<size_t>(k / s_->block_bytes)]
                                  [static_cast<size_t>(k % s_->block_bytes)];
      }
      if (s_->corrupt && !out.data.empty()) out.data[0] = static_cast<char>(out.data[0] ^ 1);
    }
    Sleep(delay);
  }

  void Stat(rpc::DocMeta& out, const int32_t partition, const int64_t epoch,
            const std::string& collection, const std::string& id, bool /*allow_backup*/) override {
    MutexLock l(&s_->mu);
    s_->Enter("Stat");
    s_->Route(node_, partition, epoch);
    s_->CheckDoc(partition, collection, id);
    out = s_->Find(collection, id).meta;
  }

  void Delete(const rpc::DeleteRequest& req) override {
    int delay = 0;
    {
      MutexLock l(&s_->mu);
      delay = s_->Enter("Delete");
      s_->Route(node_, req.partition, req.epoch);
      s_->CheckDoc(req.partition, req.collection, req.id);
      if (s_->dedup.count(Key(req.request_id)) == 0) {
        FakeCluster::State::Doc& d = s_->Find(req.collection, req.id);
        if (req.expected_version > 0 && d.meta.version != req.expected_version) {
          throw Error(rpc::ErrorCode::VERSION_MISMATCH,
                      "version is " + std::to_string(d.meta.version));
        }
        s_->docs.erase({req.collection, req.id});
        s_->dedup[Key(req.request_id)] = rpc::DocMeta();
        ++s_->applied["Delete"];
      }
    }
    Sleep(delay);
  }

  void Rename(rpc::DocMeta& out, const rpc::RenameRequest& req) override {
    MutexLock l(&s_->mu);
    s_->Enter("Rename");
    s_->Route(node_, req.partition, req.epoch);
    s_->CheckDoc(req.partition, req.collection, req.from_id);
    s_->CheckDoc(req.partition, req.collection, req.to_id);
    auto dup = s_->dedup.find(Key(req.request_id));
    if (dup != s_->dedup.end()) {
      out = dup->second;
      return;
    }
    FakeCluster::State::Doc d = s_->Find(req.collection, req.from_id);
    if (!req.replace && s_->docs.count({req.collection, req.to_id}) != 0) {
      throw Error(rpc::ErrorCode::ALREADY_EXISTS, "target exists");
    }
    s_->docs.erase({req.collection, req.from_id});
    d.meta.id = req.to_id;
    d.meta.version = s_->next_version++;
    s_->docs[{req.collection, req.to_id}] = d;
    out = d.meta;
    s_->dedup[Key(req.request_id)] = out;
    ++s_->applied["Rename"];
  }

  void GetStatus(rpc::NodeStatus& out) override {
    MutexLock l(&s_->mu);
    s_->Enter("GetStatus");
    out.name = "chunk" + std::to_string(node_ + 1);
    out.node_id = node_ + 1;
    out.block_bytes = static_cast<int32_t>(s_->block_bytes);
  }

  void List(rpc::ListPage& out, const rpc::ListRequest& req) override {
    MutexLock l(&s_->mu);
    s_->Enter("List");
    s_->Route(node_, req.partition, req.epoch);
    const auto parts = static_cast<uint32_t>(s_->map.partition_count);
    for (auto it = s_->docs.upper_bound({req.collection, req.after_id});
         it != s_->docs.end() && it->first.first == req.collection; ++it) {
      if (static_cast<int32_t>(PartitionOf(req.collection, it->first.second, parts).value()) !=
          req.partition) {
        continue;
      }
      if (static_cast<int32_t>(out.items.size()) == req.limit) {
        out.more = true;
        break;
      }
      out.items.push_back(it->second.meta);
    }
  }

 private:
  rpc::DocMeta Apply(const rpc::PutRequest& req) REQUIRES(s_->mu) {
    auto cur = s_->docs.find({req.collection, req.id});
    const bool exists = cur != s_->docs.end();
    if (req.expected_version == -1 && exists) {
      throw Error(rpc::ErrorCode::ALREADY_EXISTS, "document exists");
    }
    if (req.expected_version > 0 && (!exists || cur->second.meta.version != req.expected_version)) {
      throw Error(rpc::ErrorCode::VERSION_MISMATCH, "version differs");
    }
    FakeCluster::State::Doc d;
    const uint32_t bb = s_->block_bytes;
    if (req.__isset.body) {
      for (size_t off = 0; off < req.body.size(); off += bb)
        d.blocks.push_back(req.body.substr(off, bb));
      if (static_cast<int64_t>(req.body.size()) != req.size) {
        throw Error(rpc::ErrorCode::INVALID_ARGUMENT, "size differs");
      }
      if (static_cast<int64_t>(XXH3_64bits(req.body.data(), req.body.size())) != req.body_hash) {
        throw Error(rpc::ErrorCode::DATA_LOSS, "body hash mismatch");
      }
    } else if (req.__isset.upload_id || req.__isset.kept_blocks) {
      FakeCluster::State::Upload u;
      if (req.__isset.upload_id) {
        auto up = s_->uploads.find(req.upload_id);
        if (up == s_->uploads.end()) {
          throw Error(rpc::ErrorCode::NOT_FOUND, "no upload " + std::to_string(req.upload_id));
        }
        u = std::move(up->second);
        s_->uploads.erase(up);
      }
      d.synthetic = u.synthetic;
      std::map<int32_t, std::string> blocks = std::move(u.blocks);
      s_->last_kept.clear();
      s_->last_inline.clear();
      if (req.__isset.kept_blocks) {
        for (const rpc::BlockSpec& b : req.kept_blocks) {
          if (b.__isset.data) {
            if (!b.__isset.data_hash ||
                static_cast<int64_t>(XXH3_64bits(b.data.data(), b.data.size())) != b.data_hash) {
              throw Error(rpc::ErrorCode::INVALID_ARGUMENT, "inline block hash mismatch");
            }
            blocks[b.index] = b.data;
            u.sizes[b.index] = static_cast<int64_t>(b.data.size());
            s_->last_inline.push_back(b.index);
            continue;
          }
          if (!exists || !b.__isset.keep_from_version ||
              b.keep_from_version != cur->second.meta.version ||
              static_cast<size_t>(b.index) >= cur->second.blocks.size()) {
            throw Error(rpc::ErrorCode::VERSION_MISMATCH, "kept block from another version");
          }
          blocks[b.index] = cur->second.blocks[static_cast<size_t>(b.index)];
          u.sizes[b.index] = static_cast<int64_t>(blocks[b.index].size());
          s_->last_kept.push_back(b.index);
        }
      }
      int64_t size = 0;
      int32_t expect = 0;
      for (const auto& [index, n] : u.sizes) {
        if (index != expect++) throw Error(rpc::ErrorCode::INVALID_ARGUMENT, "block gap");
        size += n;
      }
      if (size != req.size) throw Error(rpc::ErrorCode::INVALID_ARGUMENT, "size differs");
      uint64_t hash = 0;
      if (d.synthetic) {
        hash = SyntheticHash(static_cast<uint64_t>(size));
      } else {
        XXH3_state_t* st = XXH3_createState();
        XXH3_64bits_reset(st);
        for (auto& [index, data] : blocks) {
          XXH3_64bits_update(st, data.data(), data.size());
          d.blocks.push_back(std::move(data));
        }
        hash = XXH3_64bits_digest(st);
        XXH3_freeState(st);
      }
      if (static_cast<int64_t>(hash) != req.body_hash) {
        throw Error(rpc::ErrorCode::DATA_LOSS, "body hash mismatch");
      }
    } else {
      throw Error(rpc::ErrorCode::INVALID_ARGUMENT, "no body");
    }
    rpc::DocMeta& m = d.meta;
    m.collection = req.collection;
    m.id = req.id;
    m.version = s_->next_version++;
    m.size = req.size;
    m.mtime_ns = req.__isset.mtime_ns ? req.mtime_ns : 1;
    m.ctime_ns = 1;
    m.mode = req.__isset.mode ? req.mode : 0644;
    m.uid = req.__isset.uid ? req.uid : 0;
    m.gid = req.__isset.gid ? req.gid : 0;
    if (req.__isset.xattrs) m.xattrs = req.xattrs;
    m.body_hash = req.body_hash;
    m.partition = req.partition;
    m.block_bytes = static_cast<int32_t>(bb);
    s_->docs[{req.collection, req.id}] = d;
    return m;
  }

  std::shared_ptr<FakeCluster::State> s_;
  int node_;
};

class FakeMeta : public rpc::MetaServiceNull {
 public:
  FakeMeta(std::shared_ptr<FakeCluster::State> s, int index) : s_(std::move(s)), index_(index) {}

  void GetMap(rpc::ClusterMap& out, const int64_t) override {
    MutexLock l(&s_->mu);
    s_->Enter("GetMap");
    Leader();
    out = s_->map;
  }
  int32_t RegisterNode(const rpc::NodeRegistration&) override {
    throw Error(rpc::ErrorCode::PERMISSION_DENIED, "not in the fake");
  }
  void Heartbeat(rpc::HeartbeatReply&, const rpc::HeartbeatRequest&) override {
    throw Error(rpc::ErrorCode::PERMISSION_DENIED, "not in the fake");
  }
  void CreateCollection(rpc::CollectionInfo& out, const std::string& name) override {
    int delay = 0;
    {
      MutexLock l(&s_->mu);
      delay = s_->Enter("CreateCollection");
      Leader();
      for (const rpc::CollectionInfo& c : s_->map.collections) {
        if (c.name == name) throw Error(rpc::ErrorCode::ALREADY_EXISTS, "collection exists");
      }
      out.name = name;
      out.created_ms = 1000;
      s_->map.collections.push_back(out);
      ++s_->map.version;
    }
    Sleep(delay);
  }
  void DropCollection(const std::string& name) override {
    MutexLock l(&s_->mu);
    s_->Enter("DropCollection");
    Leader();
    auto& cs = s_->map.collections;
    auto it = std::find_if(cs.begin(), cs.end(),
                           [&](const rpc::CollectionInfo& c) { return c.name == name; });
    if (it == cs.end()) throw Error(rpc::ErrorCode::NOT_FOUND, "no collection '" + name + "'");
    for (const auto& [key, doc] : s_->docs) {
      if (key.first == name) throw Error(rpc::ErrorCode::NOT_EMPTY, "collection is not empty");
    }
    cs.erase(it);
    ++s_->map.version;
  }

 private:
  void Leader() REQUIRES(s_->mu) {
    if (index_ != s_->leader) {
      throw Error(rpc::ErrorCode::UNAVAILABLE,
                  "not the leader; the leader is " +
                      s_->meta_addrs[static_cast<size_t>(s_->leader)].ToString());
    }
  }
  std::shared_ptr<FakeCluster::State> s_;
  int index_;
};

}  // namespace

FakeCluster::FakeCluster(const FakeClusterOptions& options) : state_(std::make_shared<State>()) {
  if (!pki_.error().empty()) {
    error_ = pki_.error();
    return;
  }
  for (const auto& [name, role] : std::vector<std::pair<std::string, Role>>{
           {"meta", Role::kNode}, {"chunk", Role::kNode}, {"tester", Role::kUser}}) {
    Status s = pki_.Issue(name, role);
    if (!s.ok()) {
      error_ = s.ToString();
      return;
    }
  }
  state_->block_bytes = options.block_bytes;
  state_->leader = options.leader;
  auto start = [&](std::shared_ptr<apache::thrift::TProcessor> proc, const std::string& cert,
                   const std::string& name) -> std::unique_ptr<net::RpcServer> {
    net::ServerOptions so;
    so.tls = pki_.Options(cert);
    so.io_timeout_ms = 5000;
    Result<std::unique_ptr<net::RpcServer>> r = net::RpcServer::Start(so, std::move(proc), name);
    if (!r.ok()) {
      error_ = r.status().ToString();
      return nullptr;
    }
    return std::move(r).value();
  };
  std::vector<HostPort> meta_addrs;
  for (int i = 0; i < options.metaservers; ++i) {
    auto srv =
        start(std::make_shared<rpc::MetaServiceProcessor>(std::make_shared<FakeMeta>(state_, i)),
              "meta", "fake-meta");
    if (srv == nullptr) return;
    meta_addrs.push_back({"127.0.0.1", srv->port()});
    metas_.push_back(std::move(srv));
  }
  rpc::ClusterMap map;
  map.version = 1;
  map.partition_count = options.partitions;
  for (int i = 0; i < options.chunkservers; ++i) {
    auto srv =
        start(std::make_shared<rpc::ChunkServiceProcessor>(std::make_shared<FakeChunk>(state_, i)),
              "chunk", "fake-chunk");
    if (srv == nullptr) return;
    rpc::NodeInfo n;
    n.id = i + 1;
    n.name = "chunk" + std::to_string(i + 1);
    n.host = "127.0.0.1";
    n.port = srv->port();
    n.state = rpc::NodeState::UP;
    n.capacity_bytes = 1ll << 40;
    n.used_bytes = 1ll << 30;
    for (int k = 0; k < 3; ++k) {
      rpc::DiskInfo d;
      d.index = k;
      d.dir = "/data/d" + std::to_string(k);
      d.state = "healthy";
      n.disks.push_back(d);
    }
    map.nodes.push_back(n);
    chunks_.push_back(std::move(srv));
  }
  std::vector<int> primary;
  for (int p = 0; p < options.partitions; ++p) {
    rpc::PartitionInfo pi;
    pi.id = p;
    pi.epoch = 1;
    pi.replicas = {p % options.chunkservers + 1};
    pi.in_sync = pi.replicas;
    map.partitions.push_back(pi);
    primary.push_back(p % options.chunkservers);
  }
  for (const std::string& c : options.collections) {
    rpc::CollectionInfo ci;
    ci.name = c;
    ci.created_ms = 1000;
    map.collections.push_back(ci);
  }
  MutexLock l(&state_->mu);
  state_->map = std::move(map);
  state_->primary = std::move(primary);
  state_->meta_addrs = std::move(meta_addrs);
}

FakeCluster::~FakeCluster() {
  for (auto& s : chunks_) s->Stop();
  for (auto& s : metas_) s->Stop();
}

std::vector<HostPort> FakeCluster::Metaservers() const {
  MutexLock l(&state_->mu);
  return state_->meta_addrs;
}

std::string FakeCluster::MetaserverList() const {
  std::string out;
  for (const HostPort& hp : Metaservers()) out += (out.empty() ? "" : ",") + hp.ToString();
  return out;
}

client::Options FakeCluster::ClientOptions() const {
  client::Options o;
  o.metaservers = Metaservers();
  o.tls = UserTls();
  o.deadline_ms = 10000;
  o.seed = 1;
  return o;
}

void FakeCluster::MovePartition(uint32_t p, int node) {
  MutexLock l(&state_->mu);
  state_->primary[p] = node;
  rpc::PartitionInfo& pi = state_->map.partitions[p];
  pi.replicas = {node + 1};
  pi.in_sync = pi.replicas;
  ++pi.epoch;
  ++state_->map.version;
}

int FakeCluster::PrimaryOf(uint32_t p) const {
  MutexLock l(&state_->mu);
  return state_->primary[p];
}

int64_t FakeCluster::map_version() const {
  MutexLock l(&state_->mu);
  return state_->map.version;
}

void FakeCluster::FailNext(const std::string& method, rpc::ErrorCode::type code, int count) {
  MutexLock l(&state_->mu);
  state_->fail[method] = {code, count};
}

void FakeCluster::DelayNext(const std::string& method, int delay_ms, int count) {
  MutexLock l(&state_->mu);
  state_->delay[method] = {delay_ms, count};
}

void FakeCluster::CorruptGets(bool on) {
  MutexLock l(&state_->mu);
  state_->corrupt = on;
}

int FakeCluster::Calls(const std::string& method) const {
  MutexLock l(&state_->mu);
  auto it = state_->calls.find(method);
  return it == state_->calls.end() ? 0 : it->second;
}

int FakeCluster::Applied(const std::string& method) const {
  MutexLock l(&state_->mu);
  auto it = state_->applied.find(method);
  return it == state_->applied.end() ? 0 : it->second;
}

int64_t FakeCluster::UploadedBytes() const {
  MutexLock l(&state_->mu);
  return state_->uploaded;
}

std::vector<int32_t> FakeCluster::LastKeptBlocks() const {
  MutexLock l(&state_->mu);
  return state_->last_kept;
}

std::vector<int32_t> FakeCluster::LastInlineBlocks() const {
  MutexLock l(&state_->mu);
  return state_->last_inline;
}

std::string FakeCluster::Body(const std::string& collection, const std::string& id) const {
  MutexLock l(&state_->mu);
  auto it = state_->docs.find({collection, id});
  if (it == state_->docs.end()) return "";
  std::string out;
  for (const std::string& b : it->second.blocks) out += b;
  return out;
}

}  // namespace cairn::test
