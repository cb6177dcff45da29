#include "chunkserver/chunk_service.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <atomic>
#include <set>

#include "chunkserver/replica_wire.h"
#include "query/parser.h"
#include "thrift/rpc_client.h"
#include "thrift/rpc_errors.h"
#include "thrift/rpc_server.h"

namespace cairn::chunkserver {

namespace {

// QueryPartitions: parts per call (a node holds at most the cluster's
// partitions, which are at most 4096), and the rows one reply carries
// beyond its first part.
constexpr size_t kMaxQueryParts = 4096;
constexpr uint64_t kMaxQueryPartsReplyBytes = 32ull << 20;
constexpr size_t kQueryPartsThreads = 32;

[[noreturn]] void Throw(const Status& s) { throw net::ToCairnError(s); }

template <class T>
T ValueOrThrow(Result<T> r) {
  if (!r.ok()) Throw(r.status());
  return std::move(r).value();
}

// Thrift carries unsigned quantities in signed fields: refuse negatives.
uint64_t NonNegative(int64_t v, const char* what) {
  if (v < 0) Throw(Status::InvalidArgument(std::string(what) + " must be >= 0"));
  return static_cast<uint64_t>(v);
}

// A part's answer: rows (with their encoded sort keys) and stats.
void FillQueryResult(rpc::QueryResult& out, QueryOutput r, const query::Query& q);

PartitionId Partition(int32_t p) {
  if (p < 0) Throw(Status::InvalidArgument("partition must be >= 0"));
  return PartitionId(static_cast<uint32_t>(p));
}

Epoch EpochOf(int64_t e) { return Epoch(NonNegative(e, "epoch")); }

RequestId ToRequestId(const rpc::RequestId& r) {
  return {static_cast<uint64_t>(r.client_hi), static_cast<uint64_t>(r.client_lo),
          static_cast<uint64_t>(r.seq)};
}

PutInput ToPutInput(const rpc::PutRequest& r) {
  PutInput in;
  in.partition = Partition(r.partition);
  in.epoch = EpochOf(r.epoch);
  in.request_id = ToRequestId(r.request_id);
  in.collection = r.collection;
  in.id = r.id;
  in.expected_version = r.expected_version;
  in.size = NonNegative(r.size, "size");
  in.body_hash = static_cast<uint64_t>(r.body_hash);
  if (r.__isset.mode) in.mode = static_cast<uint32_t>(r.mode);
  if (r.__isset.uid) in.uid = static_cast<uint32_t>(r.uid);
  if (r.__isset.gid) in.gid = static_cast<uint32_t>(r.gid);
  if (r.__isset.mtime_ns) in.mtime_ns = r.mtime_ns;
  if (r.__isset.xattrs) {
    in.xattrs.emplace(r.xattrs.begin(), r.xattrs.end());
  }
  if (r.__isset.body) in.body = r.body;
  if (r.__isset.upload_id) in.upload_id = static_cast<uint64_t>(r.upload_id);
  if (r.__isset.kept_blocks) {
    for (const rpc::BlockSpec& b : r.kept_blocks) {
      BlockInput bi;
      if (b.index < 0) Throw(Status::InvalidArgument("block index must be >= 0"));
      bi.index = static_cast<uint32_t>(b.index);
      if (b.__isset.data) bi.data = b.data;
      if (b.__isset.data_hash) bi.data_hash = static_cast<uint64_t>(b.data_hash);
      if (b.__isset.keep_from_version) {
        bi.keep_from_version = NonNegative(b.keep_from_version, "keep_from_version");
      }
      in.kept_blocks.push_back(std::move(bi));
    }
  }
  return in;
}

int64_t I64(uint64_t v) { return static_cast<int64_t>(v); }

}  // namespace

ChunkServiceHandler::ChunkServiceHandler(ChunkServiceDeps deps)
    : deps_(std::move(deps)), log_("chunkserver", deps_.node_name) {}

void ChunkServiceHandler::Authorize(Access access, const char* call) const {
  const Identity* caller = net::CurrentCaller();
  if (caller == nullptr)
    Throw(Status::PermissionDenied(std::string(call) + ": no caller identity"));
  if (access == Access::kClient) return;  // every role
  if (access == Access::kNode) {
    if (caller->role == Role::kNode) return;
    LOG_WARN(log_) << "refused " << call << " to " << caller->ToString();
    Throw(Status::PermissionDenied(std::string(call) + " is for chunk servers only, not " +
                                   caller->ToString()));
  }
  if (caller->role == Role::kNode || caller->role == Role::kAdmin) return;
  LOG_WARN(log_) << "refused " << call << " to " << caller->ToString();
  Throw(Status::PermissionDenied(std::string(call) + " is for nodes and admins, not " +
                                 caller->ToString()));
}

template <class Fn>
bool ChunkServiceHandler::MaybeForward(int32_t partition, Fn&& fn, bool allow_backup) {
  if (partition < 0 || deps_.pool == nullptr) return false;
  const Identity* caller = net::CurrentCaller();
  if (caller == nullptr || caller->role == Role::kNode) return false;  // never twice
  const PartitionId p(static_cast<uint32_t>(partition));
  PartitionLogic* logic = deps_.service->logic();
  if (logic->IsPrimary(p)) return false;
  if (allow_backup && logic->HoldsReplica(p)) return false;  // a backup read, served here
  std::optional<NodeAddress> owner = logic->PrimaryOf(p);
  if (!owner || owner->id == logic->self()) return false;  // answered here (Unavailable...)
  const HostPort to =
      deps_.peer_address ? deps_.peer_address(*owner) : HostPort{owner->host, owner->port};
  Status s = deps_.pool->Call<rpc::ChunkServiceClient>(to, fn);
  if (!s.ok()) {
    LOG_DEBUG(log_) << "forward to " << owner->name << " (" << to.ToString()
                    << ") failed: " << s.ToString();
    Throw(s);
  }
  return true;
}

rpc::DocMeta ChunkServiceHandler::ToThrift(const DocEntry& e) const {
  rpc::DocMeta m;
  m.collection = e.collection;
  m.id = e.id;
  m.version = I64(e.version);
  m.size = I64(e.meta.size);
  m.mtime_ns = e.meta.mtime_ns;
  m.ctime_ns = e.meta.ctime_ns;
  m.mode = static_cast<int32_t>(e.meta.mode);
  m.uid = static_cast<int32_t>(e.meta.uid);
  m.gid = static_cast<int32_t>(e.meta.gid);
  m.xattrs.insert(e.meta.xattrs.begin(), e.meta.xattrs.end());
  m.body_hash = I64(e.body_hash);
  m.partition = static_cast<int32_t>(e.partition.value());
  m.block_bytes = static_cast<int32_t>(deps_.service->logic()->limits().block_bytes);
  return m;
}

void ChunkServiceHandler::Put(rpc::DocMeta& out, const rpc::PutRequest& req) {
  Authorize(Access::kClient, "Put");
  if (MaybeForward(req.partition, [&](rpc::ChunkServiceClient& c) { c.Put(out, req); })) return;
  out = ToThrift(ValueOrThrow(deps_.service->Put(ToPutInput(req))));
}

int64_t ChunkServiceHandler::UploadBegin(int32_t partition, int64_t epoch,
                                         const std::string& collection, const std::string& id) {
  Authorize(Access::kClient, "UploadBegin");
  int64_t r = 0;
  if (MaybeForward(partition, [&](rpc::ChunkServiceClient& c) {
        r = c.UploadBegin(partition, epoch, collection, id);
      })) {
    return r;
  }
  return static_cast<int64_t>(ValueOrThrow(
      deps_.service->UploadBegin(Partition(partition), EpochOf(epoch), collection, id)));
}

void ChunkServiceHandler::UploadBlock(int64_t upload_id, int32_t index, const std::string& data,
                                      int64_t data_hash) {
  Authorize(Access::kClient, "UploadBlock");
  const auto p = static_cast<int32_t>(
      PartitionLogic::UploadPartition(static_cast<uint64_t>(upload_id)).value());
  if (MaybeForward(p, [&](rpc::ChunkServiceClient& c) {
        c.UploadBlock(upload_id, index, data, data_hash);
      })) {
    return;
  }
  if (index < 0) Throw(Status::InvalidArgument("block index must be >= 0"));
  net::ThrowIfError(deps_.service->UploadBlock(static_cast<uint64_t>(upload_id),
                                               static_cast<uint32_t>(index), data,
                                               static_cast<uint64_t>(data_hash)));
}

void ChunkServiceHandler::UploadAbort(int64_t upload_id) {
  Authorize(Access::kClient, "UploadAbort");
  const auto p = static_cast<int32_t>(
      PartitionLogic::UploadPartition(static_cast<uint64_t>(upload_id)).value());
  if (MaybeForward(p, [&](rpc::ChunkServiceClient& c) { c.UploadAbort(upload_id); })) return;
  net::ThrowIfError(deps_.service->UploadAbort(static_cast<uint64_t>(upload_id)));
}

void ChunkServiceHandler::Get(rpc::GetResult& out, const rpc::GetRequest& req) {
  Authorize(Access::kClient, "Get");
  const bool backup = req.__isset.allow_backup && req.allow_backup;
  if (MaybeForward(
          req.partition, [&](rpc::ChunkServiceClient& c) { c.Get(out, req); }, backup)) {
    return;
  }
  if (req.length < 0) Throw(Status::InvalidArgument("length must be >= 0"));
  std::optional<uint64_t> if_version;
  if (req.__isset.if_version) if_version = NonNegative(req.if_version, "if_version");
  GetOutput g = ValueOrThrow(deps_.service->Get(
      Partition(req.partition), EpochOf(req.epoch), req.collection, req.id,
      NonNegative(req.offset, "offset"), static_cast<uint64_t>(req.length), if_version, backup));
  out.meta = ToThrift(g.doc);
  out.data = std::move(g.data);
}

void ChunkServiceHandler::Stat(rpc::DocMeta& out, int32_t partition, int64_t epoch,
                               const std::string& collection, const std::string& id,
                               bool allow_backup) {
  Authorize(Access::kClient, "Stat");
  if (MaybeForward(
          partition,
          [&](rpc::ChunkServiceClient& c) {
            c.Stat(out, partition, epoch, collection, id, allow_backup);
          },
          allow_backup)) {
    return;
  }
  out = ToThrift(ValueOrThrow(
      deps_.service->Stat(Partition(partition), EpochOf(epoch), collection, id, allow_backup)));
}

void ChunkServiceHandler::Delete(const rpc::DeleteRequest& req) {
  Authorize(Access::kClient, "Delete");
  if (MaybeForward(req.partition, [&](rpc::ChunkServiceClient& c) { c.Delete(req); })) return;
  net::ThrowIfError(deps_.service->Delete({Partition(req.partition), EpochOf(req.epoch),
                                           ToRequestId(req.request_id), req.collection, req.id,
                                           req.expected_version}));
}

void ChunkServiceHandler::Rename(rpc::DocMeta& out, const rpc::RenameRequest& req) {
  Authorize(Access::kClient, "Rename");
  if (MaybeForward(req.partition, [&](rpc::ChunkServiceClient& c) { c.Rename(out, req); })) {
    return;
  }
  out = ToThrift(ValueOrThrow(deps_.service->Rename({Partition(req.partition), EpochOf(req.epoch),
                                                     ToRequestId(req.request_id), req.collection,
                                                     req.from_id, req.to_id, req.replace})));
}

void ChunkServiceHandler::List(rpc::ListPage& out, const rpc::ListRequest& req) {
  Authorize(Access::kClient, "List");
  const bool backup = req.__isset.allow_backup && req.allow_backup;
  if (MaybeForward(
          req.partition, [&](rpc::ChunkServiceClient& c) { c.List(out, req); }, backup)) {
    return;
  }
  if (req.limit < 0) Throw(Status::InvalidArgument("limit must be >= 0"));
  ListPage page =
      ValueOrThrow(deps_.service->List(Partition(req.partition), EpochOf(req.epoch), req.collection,
                                       req.after_id, static_cast<uint32_t>(req.limit), backup));
  out.items.clear();
  for (ListItem& it : page.items) {
    DocEntry e;
    e.partition = Partition(req.partition);
    e.collection = req.collection;
    e.id = std::move(it.id);
    e.version = it.version;
    e.meta = std::move(it.meta);
    e.body_hash = it.body_hash;
    out.items.push_back(ToThrift(e));
  }
  out.more = page.more;
}

void ChunkServiceHandler::Query(rpc::QueryResult& out, const rpc::QueryRequest& req) {
  Authorize(Access::kClient, "Query");
  const auto start = std::chrono::steady_clock::now();
  const bool backup = req.__isset.allow_backup && req.allow_backup;
  if (MaybeForward(
          req.partition, [&](rpc::ChunkServiceClient& c) { c.Query(out, req); }, backup)) {
    return;
  }
  // The parser's message names the column of the mistake.
  const query::Query q = ValueOrThrow(query::Parse(req.query));
  RunQuery(out, req, q, start);
}

void ChunkServiceHandler::QueryPartitions(std::vector<rpc::QueryPartAnswer>& out,
                                          const std::vector<rpc::QueryRequest>& parts) {
  Authorize(Access::kClient, "QueryPartitions");
  const auto start = std::chrono::steady_clock::now();
  out.clear();
  if (parts.empty()) return;
  if (parts.size() > kMaxQueryParts) {
    Throw(Status::InvalidArgument("QueryPartitions: at most " + std::to_string(kMaxQueryParts) +
                                  " parts per call, not " + std::to_string(parts.size())));
  }
  for (const rpc::QueryRequest& r : parts) {
    if (r.query != parts[0].query || r.collection != parts[0].collection) {
      Throw(Status::InvalidArgument(
          "QueryPartitions: every part must carry the same collection and query"));
    }
  }
  const query::Query q = ValueOrThrow(query::Parse(parts[0].query));
  out.resize(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) out[i].partition = parts[i].partition;
  // A sorted query with a limit may walk the parts' indexes as one.
  std::vector<char> answered(parts.size(), 0);
  RunMergedParts(out, parts, q, start, &answered);
  std::vector<size_t> left;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!answered[i]) left.push_back(i);
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t k = next.fetch_add(1); k < left.size(); k = next.fetch_add(1)) {
      const size_t i = left[k];
      rpc::QueryPartAnswer& a = out[i];
      try {
        rpc::QueryResult r;
        RunQuery(r, parts[i], q, start);
        a.__set_result(std::move(r));
      } catch (const rpc::CairnError& e) {
        a.__set_error(e);
      } catch (const std::exception& e) {
        a.__set_error(net::ToCairnError(Status::Internal(std::string("query: ") + e.what())));
      }
    }
  };
  // In parallel, as separate Query calls would run (one server thread
  // each): a part waits on document reads as much as it computes, so a
  // thread per part, up to a bound, not one per core (on 2 cores, 2 threads
  // made an indexed query 20-40% slower than 16 separate calls).
  if (!left.empty()) query_pool_.RunOnThreads(std::min(left.size(), kQueryPartsThreads), work);
  // One reply holds what one Query reply may (a part's own limit) and, past
  // that, only what keeps it small; the rest the client asks again alone.
  uint64_t bytes = 0;
  for (rpc::QueryPartAnswer& a : out) {
    if (!a.__isset.result) continue;
    uint64_t b = 0;
    for (const rpc::QueryRow& r : a.result.rows) b += r.id.size() + r.json.size() + 16;
    if (bytes > 0 && bytes + b > kMaxQueryPartsReplyBytes) {
      a.result = rpc::QueryResult();
      a.__isset.result = false;
      a.__set_skipped(true);
      continue;
    }
    bytes += b;
  }
}

void ChunkServiceHandler::RunMergedParts(std::vector<rpc::QueryPartAnswer>& out,
                                         const std::vector<rpc::QueryRequest>& parts,
                                         const query::Query& q,
                                         std::chrono::steady_clock::time_point start,
                                         std::vector<char>* answered) {
  if (parts.size() < 2 || !q.limit.has_value() || q.sort.empty() || deps_.executor == nullptr) {
    return;
  }
  std::vector<size_t> idx;
  std::vector<PartitionId> ps;
  QueryLimits limits;
  for (size_t i = 0; i < parts.size(); ++i) {
    try {
      const QueryLimits l = PartLimits(parts[i], start);
      if (idx.empty()) {
        limits = l;
      } else {
        limits.time_limit = std::min(limits.time_limit, l.time_limit);
        limits.max_result_bytes = std::min(limits.max_result_bytes, l.max_result_bytes);
      }
      idx.push_back(i);
      ps.push_back(Partition(parts[i].partition));
    } catch (const rpc::CairnError& e) {
      out[i].__set_error(e);
      (*answered)[i] = 1;
    }
  }
  std::vector<PartitionId> sorted = ps;
  std::sort(sorted.begin(), sorted.end());
  if (idx.size() < 2 || std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) return;
  Result<std::optional<std::vector<QueryOutput>>> r =
      deps_.executor->RunMerged(ps, parts[0].collection, q, limits);
  if (r.ok() && !r->has_value()) return;  // not for a merged walk: part by part
  if (!r.ok() && r.status().code() == StatusCode::kLimitExceeded) {
    LOG_INFO(log_) << "query on " << parts[0].collection << " refused: " << r.status().message();
  }
  for (size_t k = 0; k < idx.size(); ++k) {
    rpc::QueryPartAnswer& a = out[idx[k]];
    if (!r.ok()) {
      a.__set_error(net::ToCairnError(r.status()));
    } else {
      rpc::QueryResult res;
      FillQueryResult(res, std::move((**r)[k]), q);
      a.__set_result(std::move(res));
    }
    (*answered)[idx[k]] = 1;
  }
}

QueryLimits ChunkServiceHandler::PartLimits(const rpc::QueryRequest& req,
                                            std::chrono::steady_clock::time_point start) const {
  const bool backup = req.__isset.allow_backup && req.allow_backup;
  net::ThrowIfError(deps_.service->CheckCollectionRequest(
      Partition(req.partition), EpochOf(req.epoch), req.collection, backup));
  if (deps_.executor == nullptr) Throw(Status::Unavailable("this node does not run queries"));
  QueryLimits limits = deps_.query_limits;
  if (req.__isset.time_limit_ms && req.time_limit_ms > 0) {
    limits.time_limit = std::min(limits.time_limit, std::chrono::milliseconds(req.time_limit_ms));
  }
  // What is left of it (a part of QueryPartitions may start late).
  const auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  if (spent >= limits.time_limit) {
    Throw(Status::LimitExceeded("query on " + req.collection + ": the time limit of " +
                                std::to_string(limits.time_limit.count()) +
                                " ms was reached before partition " +
                                std::to_string(req.partition) +
                                " started: narrow the query or index its fields, or raise the "
                                "limit (cairn query --time-limit MS, up to the chunk servers' "
                                "query_time_limit_ms)"));
  }
  limits.time_limit -= spent;
  if (req.__isset.max_result_bytes && req.max_result_bytes > 0) {
    limits.max_result_bytes =
        std::min(limits.max_result_bytes, static_cast<uint64_t>(req.max_result_bytes));
  }
  return limits;
}

void ChunkServiceHandler::RunQuery(rpc::QueryResult& out, const rpc::QueryRequest& req,
                                   const query::Query& q,
                                   std::chrono::steady_clock::time_point start) {
  const QueryLimits limits = PartLimits(req, start);
  Result<QueryOutput> r = deps_.executor->Run(Partition(req.partition), req.collection, q, limits);
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kLimitExceeded) {
      LOG_INFO(log_) << "query on " << req.collection << " refused: " << r.status().message();
    }
    Throw(r.status());
  }
  FillQueryResult(out, std::move(*r), q);
}

namespace {

void FillQueryResult(rpc::QueryResult& out, QueryOutput r, const query::Query& q) {
  out.rows.clear();
  out.rows.reserve(r.rows.size());
  for (query::Row& row : r.rows) {
    rpc::QueryRow qr;
    qr.id = std::move(row.id);
    qr.json = std::move(row.json);
    if (!q.sort.empty()) {
      qr.__set_sort_keys(query::EncodeSortKeys(row.keys));
    }
    out.rows.push_back(std::move(qr));
  }
  const QueryStats& st = r.stats;
  out.stats.docs_scanned = I64(st.docs_scanned);
  out.stats.bytes_scanned = I64(st.bytes_scanned);
  out.stats.docs_matched = I64(st.docs_matched);
  out.stats.docs_skipped_large = I64(st.docs_skipped_large);
  out.stats.index_used = st.index_used;
  out.stats.elapsed_ms = st.elapsed.count();
}

}  // namespace

int64_t ChunkServiceHandler::CountDocuments(const std::string& collection) {
  Authorize(Access::kNodeOrAdmin, "CountDocuments");
  return I64(ValueOrThrow(deps_.service->CountDocuments(collection)));
}

void ChunkServiceHandler::GetStatus(rpc::NodeStatus& out) {
  Authorize(Access::kClient, "GetStatus");
  PartitionLogic* logic = deps_.service->logic();
  out.name = deps_.node_name;
  out.node_id = static_cast<int32_t>(logic->self().value());
  out.map_version = I64(logic->map_version());
  out.capacity_bytes = 0;
  out.used_bytes = 0;
  out.disks.clear();
  if (deps_.volume != nullptr) {
    for (const raidlib::DiskStatus& d : deps_.volume->disks()) {
      rpc::NodeDisk nd;
      nd.index = static_cast<int32_t>(d.index.value());
      nd.dir = d.dir;
      nd.state = raidlib::DiskStateName(d.state);
      nd.io_errors = I64(d.io_errors);
      nd.checksum_errors = I64(d.checksum_errors);
      nd.repaired_units = I64(d.repaired_units);
      struct statvfs fs {};
      if (::statvfs(d.dir.c_str(), &fs) == 0) {
        nd.capacity_bytes = I64(uint64_t{fs.f_blocks} * fs.f_frsize);
        nd.used_bytes = I64(uint64_t{fs.f_blocks - fs.f_bavail} * fs.f_frsize);
      }
      out.capacity_bytes += nd.capacity_bytes;
      out.used_bytes += nd.used_bytes;
      out.disks.push_back(std::move(nd));
    }
    const raidlib::RebuildProgress rb = deps_.volume->rebuild_progress();
    out.rebuild = rb.active ? "disk " + std::to_string(rb.disk.value()) + ": " +
                                  std::to_string(rb.stripes_done) + "/" +
                                  std::to_string(rb.stripes_total) + " stripes"
                            : "";
  }
  out.partitions.clear();
  ReplicaHost* host = deps_.replication ? deps_.replication() : nullptr;
  std::vector<PartitionSummary> summaries = deps_.service->Partitions();
  if (host != nullptr) {
    // A replica the store holds nothing of yet (a new one receiving its
    // first snapshot) is listed too: that is where rebuild progress shows.
    std::set<PartitionId> listed;
    for (const PartitionSummary& s : summaries) listed.insert(s.partition);
    for (const ReplicaReport& r : host->Reports()) {
      if (listed.insert(r.partition).second) {
        PartitionSummary s;
        s.partition = r.partition;
        summaries.push_back(s);
      }
    }
    std::sort(summaries.begin(), summaries.end(),
              [](const PartitionSummary& a, const PartitionSummary& b) {
                return a.partition < b.partition;
              });
  }
  for (const PartitionSummary& s : summaries) {
    rpc::PartitionStatus ps;
    ps.partition = static_cast<int32_t>(s.partition.value());
    ps.epoch = I64(s.epoch.value());
    ps.role = s.primary ? "primary" : "none";
    // Replicated: the replica's own view (primary, backup, learner...).
    if (std::optional<ReplicaReport> r = host ? host->Report(s.partition) : std::nullopt) {
      ps.epoch = I64(r->epoch.value());
      ps.role = ReplicaRoleName(r->role);
    }
    if (std::optional<ReplicaHost::SnapshotProgress> sp =
            host ? host->ReceivingSnapshot(s.partition) : std::nullopt) {
      ps.snapshot_bytes_done = I64(sp->bytes_done);
      ps.snapshot_bytes_total = I64(sp->bytes_total);
    }
    ps.last_lsn = I64(s.last_lsn.value());
    ps.documents = I64(s.documents);
    out.partitions.push_back(std::move(ps));
  }
  const DocStoreStats st = deps_.service->store()->stats();
  out.store.documents = I64(st.documents);
  out.store.live_bytes = I64(st.live_bytes);
  out.store.dead_bytes = I64(st.dead_bytes);
  out.store.cache_hits = I64(st.cache_hits);
  out.store.cache_misses = I64(st.cache_misses);
  out.store.cache_bytes = I64(st.cache_bytes);
  out.store.mutations_applied = I64(st.mutations_applied);
  out.store.mutations_deduplicated = I64(st.mutations_deduplicated);
  out.store.blocks_written = I64(st.blocks_written);
  out.store.checkpoints = I64(st.checkpoints);
  out.store.compactions = I64(st.compactions);
  out.store.segments_released = I64(st.segments_released);
  out.store.volume_end_offset = deps_.volume ? I64(deps_.volume->end_offset()) : 0;
  out.open_uploads = static_cast<int32_t>(logic->open_uploads());
  out.metaserver_reachable = deps_.metaserver_reachable && deps_.metaserver_reachable();
  out.block_bytes = static_cast<int32_t>(logic->limits().block_bytes);
  out.backup_reads = host ? I64(host->backup_reads()) : 0;
  out.__set_streamed_blocks_sent(host ? I64(host->ahead_sent()) : 0);
  out.__set_streamed_blocks_claimed(host ? I64(host->ahead_claimed()) : 0);
}

void ChunkServiceHandler::Replicate(const rpc::ReplicateRequest& req) {
  Authorize(Access::kNode, "Replicate");
  ReplicaHost* host = deps_.replication ? deps_.replication() : nullptr;
  if (host == nullptr) Throw(Status::Unavailable("replication is not running on this node"));
  Result<ReplicateMsg> m = FromWire(req);
  if (!m.ok()) Throw(m.status());
  net::ThrowIfError(host->OnMessage(PeerMessage(std::move(*m))));
}

void ChunkServiceHandler::ReplicateAcknowledge(const rpc::ReplicateAck& ack) {
  Authorize(Access::kNode, "ReplicateAcknowledge");
  ReplicaHost* host = deps_.replication ? deps_.replication() : nullptr;
  if (host == nullptr) Throw(Status::Unavailable("replication is not running on this node"));
  Result<ReplicateAck> m = FromWire(ack);
  if (!m.ok()) Throw(m.status());
  net::ThrowIfError(host->OnMessage(PeerMessage(*m)));
}

void ChunkServiceHandler::InstallSnapshot(rpc::SnapshotChunkAck& out,
                                          const rpc::SnapshotChunk& chunk) {
  Authorize(Access::kNode, "InstallSnapshot");
  ReplicaHost* host = deps_.replication ? deps_.replication() : nullptr;
  if (host == nullptr) Throw(Status::Unavailable("replication is not running on this node"));
  Result<SnapshotChunkMsg> m = FromWire(chunk);
  if (!m.ok()) Throw(m.status());
  Result<SnapshotChunkAnswer> answer = host->OnSnapshotChunk(*m);
  if (!answer.ok()) Throw(answer.status());
  out = ToWire(*answer);
}

void ChunkServiceHandler::StageBlock(const rpc::StageBlockRequest& req) {
  Authorize(Access::kNode, "StageBlock");
  ReplicaHost* host = deps_.replication ? deps_.replication() : nullptr;
  if (host == nullptr) Throw(Status::Unavailable("replication is not running on this node"));
  const bool ahead = req.__isset.ahead && req.ahead;
  if (req.partition < 0 || req.epoch < 0 || (ahead ? req.lsn < 0 : req.lsn <= 0) || req.index < 0 ||
      (ahead && (!req.__isset.source_offset || req.source_offset < 0 || !req.__isset.from_node ||
                 req.from_node <= 0))) {
    Throw(Status::InvalidArgument(
        "StageBlock: negative partition, epoch, LSN, index, source offset or node (or none)"));
  }
  StagedBlock b;
  b.partition = PartitionId(static_cast<uint32_t>(req.partition));
  b.epoch = Epoch(static_cast<uint64_t>(req.epoch));
  b.lsn = Lsn(static_cast<uint64_t>(req.lsn));
  b.index = static_cast<uint32_t>(req.index);
  b.hash = static_cast<uint64_t>(req.hash);
  b.data = req.data;
  b.ahead = ahead;
  if (ahead) {
    b.source = NodeId(static_cast<uint32_t>(req.from_node));
    b.source_offset = static_cast<uint64_t>(req.source_offset);
  }
  net::ThrowIfError(host->StageBlock(b));
}

}  // namespace cairn::chunkserver
