// The commands of `cairn` and the dispatch (cli.h). Each command is a small
// function over libcairn; certs_cmd.cc holds the ones that need no cluster.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "client/cairn.h"
#include "client/cli/args.h"
#include "client/cli/cli.h"
#include "common/logging.h"
#include "query/ast.h"
#include "query/parser.h"

namespace cairn::cli {

int CertsInit(const Args& a);   // certs_cmd.cc
int CertsIssue(const Args& a);  // certs_cmd.cc

namespace {

using client::Client;
using client::DocInfo;

struct Command {
  std::string name;
  std::string synopsis;  // after "cairn <name> "
  std::string help;
  FlagSpec flags;
  size_t min_positional = 0;
  size_t max_positional = 0;
  bool needs_cluster = true;
  int (*run)(Client* c, const Args& a) = nullptr;
  int (*run_local)(const Args& a) = nullptr;
  // Adjusts the client options before the client is made (e.g. a longer
  // call timeout for a longer query time limit). May refuse the line.
  Status (*tune)(const Args& a, client::Options* o) = nullptr;
};

std::string Doc(const std::string& c, const std::string& id) { return c + "/" + id; }

// "cairn: get orders/1234: no such document": a document that is not there
// is said the same way whatever the server wrote; other messages are
// prefixed with the document's name unless they start with it.
int FailDoc(const std::string& verb, const std::string& doc, const Status& s) {
  std::string m = s.message();
  if (s.code() == StatusCode::kNotFound && m.find("collection") == std::string::npos &&
      m.find("upload") == std::string::npos) {
    m = doc + ": no such document";
  } else if (m.rfind(doc, 0) != 0) {
    m = doc + ": " + m;
  }
  return Fail(verb, Status(s.code(), m), " ");
}

Result<int64_t> ExpectedVersion(const Args& a) {
  if (a.Has("--create") && a.Value("--expect-version")) {
    return Status::InvalidArgument("--create and --expect-version exclude each other");
  }
  if (a.Has("--create")) return client::kMustNotExist;
  if (auto v = a.Value("--expect-version")) {
    ASSIGN_OR_RETURN(uint64_t n, ParseUint(*v, "--expect-version"));
    if (n == 0) return Status::InvalidArgument("--expect-version must be > 0");
    return static_cast<int64_t>(n);
  }
  return client::kAnyVersion;
}

std::string TimeText(int64_t ns) {
  const time_t t = static_cast<time_t>(ns / 1000000000);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string ModeText(uint32_t mode) {
  std::ostringstream s;
  s << std::oct << std::setw(4) << std::setfill('0') << (mode & 07777);
  return s.str();
}

int Put(Client* c, const Args& a) {
  const std::string& coll = a.positional[0];
  const std::string& id = a.positional[1];
  const std::string src = a.positional.size() > 2 ? a.positional[2] : "-";
  client::WriteOptions wo;
  Result<int64_t> ev = ExpectedVersion(a);
  if (!ev.ok()) return Usage(ev.status().message(), "put");
  wo.expected_version = *ev;
  if (auto m = a.Value("--mode")) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(m->c_str(), &end, 8);
    if (m->empty() || *end != '\0' || v > 07777) return Usage("--mode: octal 0..7777", "put");
    wo.mode = static_cast<uint32_t>(v);
  }
  int fd = 0;
  if (src != "-") {
    fd = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Fail("put " + Doc(coll, id), Status::FromErrno(errno, src));
  }
  Result<DocInfo> r = c->PutFile(coll, id, fd, wo);
  if (fd != 0) ::close(fd);
  if (!r.ok()) return FailDoc("put", Doc(coll, id), r.status());
  std::cout << Doc(coll, id) << " version " << r->version << ", " << r->size << " bytes\n";
  return kExitOk;
}

int Get(Client* c, const Args& a) {
  const std::string& coll = a.positional[0];
  const std::string& id = a.positional[1];
  client::ReadOptions ro;
  if (auto range = a.Value("--range")) {
    const size_t colon = range->find(':');
    if (colon == std::string::npos) return Usage("--range wants OFFSET:LENGTH", "get");
    Result<uint64_t> off = ParseUint(range->substr(0, colon), "--range offset");
    Result<uint64_t> len = ParseUint(range->substr(colon + 1), "--range length");
    if (!off.ok()) return Usage(off.status().message(), "get");
    if (!len.ok()) return Usage(len.status().message(), "get");
    ro.offset = *off;
    ro.length = *len;
  }
  const std::optional<std::string> out = a.Value("-o");
  if (!out || *out == "-") {
    Result<DocInfo> r = c->Get(coll, id, client::FdWriter(1), ro);
    if (!r.ok()) return FailDoc("get", Doc(coll, id), r.status());
    return kExitOk;
  }
  // Into a temporary file renamed over the target on success: a failed or
  // corrupt read leaves no partial file behind.
  const std::string tmp = *out + ".cairn-tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Fail("get " + Doc(coll, id), Status::FromErrno(errno, tmp));
  Result<DocInfo> r = c->Get(coll, id, client::FdWriter(fd), ro);
  Status s = r.ok() ? Status::Ok() : r.status();
  if (s.ok() && ::fsync(fd) != 0) s = Status::FromErrno(errno, tmp);
  if (::close(fd) != 0 && s.ok()) s = Status::FromErrno(errno, tmp);
  if (s.ok() && ::rename(tmp.c_str(), out->c_str()) != 0) s = Status::FromErrno(errno, *out);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return FailDoc("get", Doc(coll, id), s);
  }
  return kExitOk;
}

int Rm(Client* c, const Args& a) {
  const std::string& coll = a.positional[0];
  const std::string& id = a.positional[1];
  Result<int64_t> ev = ExpectedVersion(a);
  if (!ev.ok() || *ev < 0) return Usage("rm takes --expect-version N only", "rm");
  Status s = c->Delete(coll, id, *ev);
  if (!s.ok()) return FailDoc("rm", Doc(coll, id), s);
  return kExitOk;
}

int StatCmd(Client* c, const Args& a) {
  const std::string& coll = a.positional[0];
  const std::string& id = a.positional[1];
  Result<DocInfo> r = c->Stat(coll, id);
  if (!r.ok()) return FailDoc("stat", Doc(coll, id), r.status());
  const DocInfo& d = *r;
  if (a.Has("--json")) {
    nlohmann::json j = {{"collection", d.collection},
                        {"id", d.id},
                        {"version", d.version},
                        {"size", d.size},
                        {"mtime_ns", d.mtime_ns},
                        {"ctime_ns", d.ctime_ns},
                        {"mode", d.mode},
                        {"uid", d.uid},
                        {"gid", d.gid},
                        {"partition", d.partition.value()},
                        {"block_bytes", d.block_bytes},
                        {"body_hash", d.body_hash}};
    nlohmann::json x = nlohmann::json::object();
    for (const auto& [k, v] : d.xattrs) x[k] = v;
    j["xattrs"] = x;
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  char hash[20];
  std::snprintf(hash, sizeof(hash), "%016llx", static_cast<unsigned long long>(d.body_hash));
  std::cout << "document:  " << Doc(d.collection, d.id) << "\n"
            << "version:   " << d.version << "\n"
            << "size:      " << d.size << "\n"
            << "mode:      " << ModeText(d.mode) << "\n"
            << "uid/gid:   " << d.uid << "/" << d.gid << "\n"
            << "modified:  " << TimeText(d.mtime_ns) << "\n"
            << "changed:   " << TimeText(d.ctime_ns) << "\n"
            << "partition: " << d.partition.value() << "\n"
            << "blocks:    " << d.block_bytes << " bytes each\n"
            << "xxh3:      " << hash << "\n";
  for (const auto& [k, v] : d.xattrs)
    std::cout << "xattr:     " << k << " (" << v.size() << " bytes)\n";
  return kExitOk;
}

int Mv(Client* c, const Args& a) {
  const std::string& coll = a.positional[0];
  client::RenameOptions ro;
  ro.replace = a.Has("--replace");
  Result<DocInfo> r = c->Rename(coll, a.positional[1], a.positional[2], ro);
  if (!r.ok()) return FailDoc("mv", Doc(coll, a.positional[1]), r.status());
  return kExitOk;
}

int Ls(Client* c, const Args& a) {
  const std::string& coll = a.positional[0];
  uint64_t limit = UINT64_MAX;
  if (auto l = a.Value("--limit")) {
    Result<uint64_t> n = ParseUint(*l, "--limit");
    if (!n.ok() || *n == 0) return Usage("--limit wants a positive number", "ls");
    limit = *n;
  }
  const bool long_form = a.Has("--long");
  client::ListOptions lo;
  uint64_t shown = 0;
  while (shown < limit) {
    lo.limit = static_cast<uint32_t>(std::min<uint64_t>(1000, limit - shown));
    Result<client::ListResult> r = c->List(coll, lo);
    if (!r.ok()) return Fail("ls " + coll, Status(r.status().code(), r.status().message()));
    for (const DocInfo& d : r->items) {
      if (long_form) {
        std::cout << ModeText(d.mode) << " " << std::setw(12) << d.size << " "
                  << TimeText(d.mtime_ns) << " v" << d.version << " " << d.id << "\n";
      } else {
        std::cout << d.id << "\n";
      }
      ++shown;
    }
    if (r->next_cursor.empty()) break;
    lo.cursor = r->next_cursor;
  }
  return kExitOk;
}

int CollectionCreate(Client* c, const Args& a) {
  Status s = c->CreateCollection(a.positional[0]);
  return s.ok() ? kExitOk : Fail("collection create " + a.positional[0], s);
}

int CollectionDrop(Client* c, const Args& a) {
  Status s = c->DropCollection(a.positional[0]);
  return s.ok() ? kExitOk : Fail("collection drop " + a.positional[0], s);
}

int CollectionList(Client* c, const Args&) {
  Result<std::vector<client::CollectionStatus>> r = c->ListCollections();
  if (!r.ok()) return Fail("collection list", r.status());
  for (const client::CollectionStatus& cs : *r) std::cout << cs.name << "\n";
  return kExitOk;
}

std::string IndexState(const client::IndexStatus& i) {
  if (i.ready) return "ready";
  return i.error.empty() ? "building" : "error";
}

nlohmann::json IndexJson(const client::IndexStatus& i) {
  nlohmann::json j = {{"collection", i.collection},     {"path", i.path},
                      {"state", IndexState(i)},         {"ready", i.ready},
                      {"docs_indexed", i.docs_indexed}, {"docs_total", i.docs_total},
                      {"entries", i.entries},           {"nodes_ready", i.nodes_ready},
                      {"nodes_total", i.nodes_total}};
  if (!i.error.empty()) j["error"] = i.error;
  return j;
}

// One line per index: collection, path, state, docs indexed/total, nodes.
void PrintIndexTable(const std::vector<client::IndexStatus>& list) {
  std::cout << std::left << std::setw(20) << "COLLECTION" << std::setw(28) << "PATH"
            << std::setw(10) << "STATE" << std::setw(22) << "DOCS"
            << "NODES\n";
  for (const client::IndexStatus& i : list) {
    std::ostringstream docs;
    docs << i.docs_indexed << "/" << i.docs_total;
    std::ostringstream nodes;
    nodes << i.nodes_ready << "/" << i.nodes_total << " ready";
    std::cout << std::left << std::setw(20) << i.collection << std::setw(28) << i.path
              << std::setw(10) << IndexState(i) << std::setw(22) << docs.str() << nodes.str()
              << "\n";
    if (!i.error.empty()) std::cout << "  error: " << i.error << "\n";
  }
}

int IndexCreate(Client* c, const Args& a) {
  Status s = c->CreateIndex(a.positional[0], a.positional[1]);
  return s.ok() ? kExitOk : Fail("index create " + a.positional[0] + " " + a.positional[1], s);
}

int IndexDrop(Client* c, const Args& a) {
  Status s = c->DropIndex(a.positional[0], a.positional[1]);
  return s.ok() ? kExitOk : Fail("index drop " + a.positional[0] + " " + a.positional[1], s);
}

int IndexList(Client* c, const Args& a) {
  const std::string coll = a.positional.empty() ? "" : a.positional[0];
  Result<std::vector<client::IndexStatus>> r = c->ListIndexes(coll);
  if (!r.ok()) return Fail("index list", r.status());
  if (a.Has("--json")) {
    nlohmann::json j = nlohmann::json::array();
    for (const client::IndexStatus& i : *r) j.push_back(IndexJson(i));
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  PrintIndexTable(*r);
  return kExitOk;
}

// The replication factor R of a map: the most common replica-set size among
// the placed partitions (the map does not record R; placement gives every
// partition R replicas, and a replacement holds R + 1 only until the new
// replica is in sync). 0 when nothing is placed.
size_t ReplicationOf(const client::ClusterMap& m) {
  std::map<size_t, size_t> sizes;  // replica-set size -> partitions
  for (const client::PartitionStatus& p : m.partitions) {
    if (!p.replicas.empty()) sizes[p.replicas.size()]++;
  }
  size_t r = 0;
  size_t most = 0;
  for (const auto& [size, count] : sizes) {
    if (count > most) {  // ties go to the smaller size
      r = size;
      most = count;
    }
  }
  return r;
}

nlohmann::json Ids(const std::vector<NodeId>& ids) {
  nlohmann::json out = nlohmann::json::array();
  for (NodeId id : ids) out.push_back(id.value());
  return out;
}

// A replica of an under-replicated partition that is not in sync yet, and
// how far it has come (from its node's GetStatus).
struct Catching {
  uint32_t partition = 0;
  uint32_t node = 0;
  std::string node_name;
  std::string role;  // as the node reports it; "" if it could not be asked
  int64_t last_lsn = 0;
  int64_t primary_last_lsn = 0;  // 0 if unknown
  int64_t snapshot_bytes_done = 0;
  int64_t snapshot_bytes_total = 0;
  std::string problem;  // node down, or the call's error
};

std::vector<Catching> CatchingUp(Client* c, const client::ClusterMap& m,
                                 const std::vector<uint32_t>& partitions) {
  std::map<uint32_t, Result<std::vector<client::ReplicaStatus>>> asked;
  auto ask = [&](uint32_t node) -> const Result<std::vector<client::ReplicaStatus>>& {
    auto it = asked.find(node);
    if (it == asked.end()) it = asked.emplace(node, c->NodeReplicas(NodeId(node))).first;
    return it->second;
  };
  auto find = [](const Result<std::vector<client::ReplicaStatus>>& r,
                 uint32_t p) -> const client::ReplicaStatus* {
    if (!r.ok()) return nullptr;
    for (const client::ReplicaStatus& s : *r) {
      if (s.partition.value() == p) return &s;
    }
    return nullptr;
  };
  std::vector<Catching> out;
  for (uint32_t id : partitions) {
    if (id >= m.partitions.size()) continue;
    const client::PartitionStatus& p = m.partitions[id];
    int64_t primary_lsn = 0;
    if (!p.replicas.empty()) {
      const client::NodeStatus* pn = m.FindNode(p.replicas[0]);
      if (pn != nullptr && pn->state != client::NodeState::kDown) {
        if (const client::ReplicaStatus* s = find(ask(p.replicas[0].value()), id)) {
          primary_lsn = s->last_lsn;
        }
      }
    }
    for (NodeId n : p.replicas) {
      if (std::find(p.in_sync.begin(), p.in_sync.end(), n) != p.in_sync.end()) continue;
      Catching k;
      k.partition = id;
      k.node = n.value();
      k.primary_last_lsn = primary_lsn;
      const client::NodeStatus* ns = m.FindNode(n);
      k.node_name = ns != nullptr ? ns->name : "?";
      if (ns == nullptr || ns->state == client::NodeState::kDown) {
        k.problem = "node down (its replicas are rebuilt elsewhere after replacement_timeout_ms)";
      } else if (const auto& r = ask(n.value()); !r.ok()) {
        k.problem = r.status().ToString();
      } else if (const client::ReplicaStatus* s = find(r, id)) {
        k.role = s->role;
        k.last_lsn = s->last_lsn;
        k.snapshot_bytes_done = s->snapshot_bytes_done;
        k.snapshot_bytes_total = s->snapshot_bytes_total;
      } else {
        k.problem = "the node does not hold it yet";
      }
      out.push_back(std::move(k));
    }
  }
  return out;
}

std::string CatchingLine(const Catching& k) {
  std::ostringstream o;
  o << "partition " << k.partition << " on node " << k.node << " (" << k.node_name;
  if (!k.role.empty()) o << ", " << k.role;
  o << "): ";
  if (!k.problem.empty()) {
    o << k.problem;
  } else if (k.snapshot_bytes_total > 0) {
    const double mib = 1024.0 * 1024.0;
    o << std::fixed << std::setprecision(1) << "receiving a snapshot, "
      << static_cast<double>(k.snapshot_bytes_done) / mib << " of "
      << static_cast<double>(k.snapshot_bytes_total) / mib << " MiB ("
      << 100 * k.snapshot_bytes_done / k.snapshot_bytes_total << "%)";
  } else if (k.primary_last_lsn > 0) {
    o << "catching up from the log, LSN " << k.last_lsn << " of " << k.primary_last_lsn;
  } else {
    o << "catching up, LSN " << k.last_lsn;
  }
  return o.str();
}

int StatusCmd(Client* c, const Args& a) {
  Result<client::ClusterMap> r = c->GetClusterMap();
  if (!r.ok()) return Fail("status", r.status());
  const client::ClusterMap& m = *r;
  // Index build progress comes from the metaserver's aggregation of the
  // heartbeats; a failure to get it does not hide the rest of the status.
  Result<std::vector<client::IndexStatus>> indexes = c->ListIndexes();
  std::map<uint32_t, std::vector<uint32_t>> primary_of;  // node -> partitions
  size_t unplaced = 0;
  // Placed partitions with fewer in-sync replicas than the replication factor.
  const size_t replication = ReplicationOf(m);
  std::vector<uint32_t> under_replicated;
  for (const client::PartitionStatus& p : m.partitions) {
    if (p.replicas.empty()) {
      ++unplaced;
    } else {
      primary_of[p.replicas[0].value()].push_back(p.id.value());
      if (p.in_sync.size() < replication) under_replicated.push_back(p.id.value());
    }
  }
  // Progress of the replicas being rebuilt (at most 64 partitions asked).
  const std::vector<Catching> catching = CatchingUp(
      c, m,
      std::vector<uint32_t>(under_replicated.begin(),
                            under_replicated.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(
                                                           64, under_replicated.size()))));
  if (a.Has("--json")) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const client::NodeStatus& n : m.nodes) {
      nlohmann::json disks = nlohmann::json::array();
      for (const client::DiskStatus& d : n.disks) {
        disks.push_back({{"index", d.index},
                         {"dir", d.dir},
                         {"state", d.state},
                         {"io_errors", d.io_errors},
                         {"checksum_errors", d.checksum_errors}});
      }
      nodes.push_back({{"id", n.id.value()},
                       {"name", n.name},
                       {"address", n.address.ToString()},
                       {"state", client::NodeStateName(n.state)},
                       {"capacity_bytes", n.capacity_bytes},
                       {"used_bytes", n.used_bytes},
                       {"last_heartbeat_ms", n.last_heartbeat_ms},
                       {"primary_partitions", primary_of[n.id.value()]},
                       {"disks", disks}});
    }
    nlohmann::json colls = nlohmann::json::array();
    for (const client::CollectionStatus& cs : m.collections) colls.push_back(cs.name);
    nlohmann::json parts = nlohmann::json::array();
    for (const client::PartitionStatus& p : m.partitions) {
      parts.push_back({{"id", p.id.value()},
                       {"epoch", p.epoch.value()},
                       {"replicas", Ids(p.replicas)},
                       {"in_sync", Ids(p.in_sync)}});
    }
    nlohmann::json rebuilding = nlohmann::json::array();
    for (const Catching& k : catching) {
      nlohmann::json e = {{"partition", k.partition},
                          {"node", k.node},
                          {"node_name", k.node_name},
                          {"role", k.role},
                          {"last_lsn", k.last_lsn},
                          {"primary_last_lsn", k.primary_last_lsn},
                          {"snapshot_bytes_done", k.snapshot_bytes_done},
                          {"snapshot_bytes_total", k.snapshot_bytes_total}};
      if (!k.problem.empty()) e["problem"] = k.problem;
      rebuilding.push_back(std::move(e));
    }
    nlohmann::json j = {{"map_version", m.version},
                        {"partition_count", m.partition_count},
                        {"unplaced_partitions", unplaced},
                        {"replication", replication},
                        {"under_replicated_partitions", under_replicated.size()},
                        {"rebuilding", rebuilding},
                        {"nodes", nodes},
                        {"collections", colls},
                        {"partitions", parts}};
    if (indexes.ok()) {
      nlohmann::json ix = nlohmann::json::array();
      for (const client::IndexStatus& i : *indexes) ix.push_back(IndexJson(i));
      j["indexes"] = std::move(ix);
    }
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "map version " << m.version << ": " << m.partition_count << " partitions ("
            << unplaced << " unplaced), " << m.nodes.size() << " nodes, " << m.collections.size()
            << " collections\n";
  std::cout << "under-replicated partitions (fewer than " << replication
            << " in-sync replicas): " << under_replicated.size();
  for (size_t i = 0; i < under_replicated.size() && i < 16; ++i) {
    std::cout << (i == 0 ? " (" : ", ") << under_replicated[i];
  }
  if (under_replicated.size() > 16) std::cout << ", ...";
  std::cout << (under_replicated.empty() ? "" : ")") << "\n";
  for (const Catching& k : catching) std::cout << "  " << CatchingLine(k) << "\n";
  std::cout << "\n";
  std::cout << std::left << std::setw(5) << "NODE" << std::setw(16) << "NAME" << std::setw(22)
            << "ADDRESS" << std::setw(9) << "STATE" << std::setw(12) << "PARTITIONS"
            << "DISKS\n";
  for (const client::NodeStatus& n : m.nodes) {
    size_t healthy = 0;
    for (const client::DiskStatus& d : n.disks) healthy += d.state == "healthy" ? 1u : 0u;
    std::ostringstream disks;
    disks << n.disks.size() << " (" << healthy << " healthy)";
    std::cout << std::left << std::setw(5) << n.id.value() << std::setw(16) << n.name
              << std::setw(22) << n.address.ToString() << std::setw(9)
              << client::NodeStateName(n.state) << std::setw(12) << primary_of[n.id.value()].size()
              << disks.str() << "\n";
  }
  bool header = false;
  for (const client::NodeStatus& n : m.nodes) {
    for (const client::DiskStatus& d : n.disks) {
      if (!header) {
        std::cout << "\ndisks:\n";
        header = true;
      }
      std::cout << "  " << n.name << " disk " << d.index << " " << d.dir << ": " << d.state << ", "
                << d.io_errors << " I/O errors, " << d.checksum_errors << " checksum errors\n";
    }
  }
  if (!indexes.ok()) {
    std::cout << "\nindexes: unknown (" << indexes.status().ToString() << ")\n";
  } else if (!indexes->empty()) {
    std::cout << "\nindexes:\n";
    PrintIndexTable(*indexes);
  }
  return kExitOk;
}

// ---- query

// A cell of `cairn query --format table`: the value at `path` in the row
// (strings bare, other values as compact JSON, missing ones empty), cut at
// kCellMax bytes.
constexpr size_t kCellMax = 40;

std::string Cell(const nlohmann::ordered_json& row, const std::vector<std::string>& path) {
  const nlohmann::ordered_json* v = &row;
  for (const std::string& k : path) {
    if (!v->is_object()) return "";
    auto it = v->find(k);
    if (it == v->end()) return "";
    v = &*it;
  }
  std::string s = v->is_string()
                      ? v->get<std::string>()
                      : v->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  for (char& c : s) {
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
  }
  if (s.size() > kCellMax) s = s.substr(0, kCellMax - 3) + "...";
  return s;
}

void PrintTable(const std::vector<client::QueryRow>& rows, const query::Query& q) {
  std::vector<std::string> names;               // column headers
  std::vector<std::vector<std::string>> paths;  // keys of each column
  std::vector<nlohmann::ordered_json> parsed;
  parsed.reserve(rows.size());
  for (const client::QueryRow& r : rows) {
    parsed.push_back(nlohmann::ordered_json::parse(r.json, nullptr, false));
  }
  names.push_back("_id");
  paths.push_back({"_id"});
  if (!q.fields.empty()) {
    for (const query::Path& p : q.fields) {
      if (p.segments.size() == 1 && p.segments[0] == query::kIdField) continue;
      names.push_back(p.ToString());
      paths.push_back(p.segments);
    }
  } else {
    // Top-level keys in order of first appearance.
    std::set<std::string> seen{"_id"};
    for (const nlohmann::ordered_json& j : parsed) {
      if (!j.is_object()) continue;
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (seen.insert(it.key()).second) {
          names.push_back(it.key());
          paths.push_back({it.key()});
        }
      }
    }
  }
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> width;
  for (const std::string& n : names) width.push_back(std::min(n.size(), kCellMax));
  for (const nlohmann::ordered_json& j : parsed) {
    std::vector<std::string> line;
    for (size_t c = 0; c < paths.size(); ++c) {
      line.push_back(Cell(j, paths[c]));
      width[c] = std::max(width[c], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  auto print = [&](const std::vector<std::string>& line) {
    std::string out;
    for (size_t c = 0; c < line.size(); ++c) {
      std::string v = line[c].size() > kCellMax ? line[c].substr(0, kCellMax) : line[c];
      if (c + 1 < line.size()) v.resize(width[c] + 2, ' ');
      out += v;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    std::cout << out << "\n";
  };
  std::vector<std::string> header;
  for (const std::string& n : names) {
    std::string h;
    for (char ch : n) h += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    header.push_back(h);
  }
  print(header);
  for (const auto& line : cells) print(line);
}

Status TuneQuery(const Args& a, client::Options* o) {
  if (auto t = a.Value("--time-limit")) {
    ASSIGN_OR_RETURN(uint64_t ms, ParseUint(*t, "--time-limit"));
    if (ms == 0 || ms > 24ull * 3600 * 1000) {
      return Status::InvalidArgument("--time-limit wants 1..86400000 milliseconds");
    }
    // The call must outlast the servers' answer (client_query.cc).
    const auto want = static_cast<int>(ms + 2000);
    o->call_timeout_ms = std::max(o->call_timeout_ms, want);
    o->deadline_ms = std::max(o->deadline_ms, want + 5000);
  }
  return Status::Ok();
}

int QueryCmd(Client* c, const Args& a) {
  const std::string& coll = a.positional[0];
  const std::string& text = a.positional[1];
  // Parsed here too for the table's columns; the library parses again.
  Result<query::Query> q = query::Parse(text);
  if (!q.ok()) {
    std::cerr << "cairn: query: " << q.status().message() << "\n  " << text << "\n";
    return kExitBadQuery;
  }
  client::QueryOptions qo;
  const std::string format = a.Value("--format").value_or("jsonl");
  if (format != "jsonl" && format != "table") {
    return Usage("--format wants jsonl or table", "query");
  }
  if (auto t = a.Value("--time-limit")) {
    Result<uint64_t> ms = ParseUint(*t, "--time-limit");
    if (!ms.ok() || *ms == 0) return Usage("--time-limit wants a positive number of ms", "query");
    qo.time_limit_ms = *ms;
  }
  if (auto m = a.Value("--max-result-bytes")) {
    Result<uint64_t> n = ParseUint(*m, "--max-result-bytes");
    if (!n.ok() || *n == 0) return Usage("--max-result-bytes wants a positive number", "query");
    qo.max_result_bytes = *n;
  }
  const auto start = std::chrono::steady_clock::now();
  Result<client::QueryResult> r = c->Query(coll, text, qo);
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kInvalidArgument ||
        r.status().code() == StatusCode::kTooLarge) {
      if (r.status().message().find("at column") != std::string::npos) {
        std::cerr << "cairn: query: " << r.status().message() << "\n";
        return kExitBadQuery;
      }
    }
    return Fail("", r.status());
  }
  if (format == "table") {
    PrintTable(r->rows, *q);
  } else {
    std::string out;
    for (const client::QueryRow& row : r->rows) {
      out += row.json;
      out += '\n';
      if (out.size() > (1u << 20)) {
        std::cout << out;
        out.clear();
      }
    }
    std::cout << out;
  }
  std::cout.flush();
  if (a.Has("--stats")) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    const client::QueryStats& s = r->stats;
    std::cerr << "rows " << r->rows.size() << " (" << r->json_bytes << " bytes), matched "
              << s.docs_matched << ", scanned " << s.docs_scanned << " documents ("
              << s.bytes_scanned << " bytes), skipped over the body limit " << s.docs_skipped_large
              << "\n"
              << "partitions " << s.partitions << " (" << s.partitions_indexed << " by index"
              << (s.index_used.empty() ? "" : ": " + s.index_used) << "), slowest partition "
              << s.max_partition_ms << " ms, calls " << s.node_calls << " to nodes + "
              << s.partitions_alone << " to single partitions, total " << ms << " ms\n";
  }
  return std::cout.good() ? kExitOk : kExitFailed;
}

const std::vector<Command>& Commands() {
  static const std::vector<Command> kCommands = {
      {"put",
       "<collection> <id> [file|-]",
       "Stores a document from a file or standard input (streamed, any size).\n"
       "  --create              fail if the document exists\n"
       "  --expect-version N    fail unless the document is at version N\n"
       "  --mode OCTAL          permission bits stored with the document\n",
       {{"--expect-version", "--mode"}, {"--create"}},
       2,
       3,
       true,
       Put,
       nullptr},
      {"get",
       "<collection> <id> [--range OFFSET:LENGTH] [-o FILE]",
       "Writes a document (or a byte range) to standard output or FILE. A whole\n"
       "document is checked against its hash; with -o a failed read leaves no file.\n",
       {{"--range", "-o"}, {}},
       2,
       2,
       true,
       Get,
       nullptr},
      {"rm",
       "<collection> <id> [--expect-version N]",
       "Deletes a document.\n",
       {{"--expect-version"}, {}},
       2,
       2,
       true,
       Rm,
       nullptr},
      {"stat",
       "<collection> <id> [--json]",
       "Shows a document's metadata.\n",
       {{}, {"--json"}},
       2,
       2,
       true,
       StatCmd,
       nullptr},
      {"mv",
       "<collection> <from> <to> [--replace]",
       "Renames a document. Atomic when both names are in one partition; otherwise a\n"
       "copy then a delete (a failure midway leaves the source, or both, never neither).\n"
       "  --replace             overwrite an existing target\n",
       {{}, {"--replace"}},
       3,
       3,
       true,
       Mv,
       nullptr},
      {"ls",
       "<collection> [--long] [--limit N]",
       "Lists a collection's documents in id order.\n"
       "  --long                mode, size, modification time, version, id\n"
       "  --limit N             at most N documents\n",
       {{"--limit"}, {"--long"}},
       1,
       1,
       true,
       Ls,
       nullptr},
      {"query",
       "<collection> '<query>' [--format jsonl|table] [--time-limit MS]\n"
       "            [--max-result-bytes N] [--stats]",
       "Runs a query (docs/query-language.md) over the collection's documents, e.g.\n"
       "  cairn query orders 'status == \"paid\" && total >= 100 ?sort=-total&limit=10'\n"
       "Prints JSON Lines: one object per matching document, \"_id\" first.\n"
       "  --format table        columns: the fields= paths, else the top-level keys\n"
       "  --time-limit MS       per partition (default and ceiling: the chunk servers'\n"
       "                        query_time_limit_ms, 30000 unless configured)\n"
       "  --max-result-bytes N  projected JSON of the result (default 64 MiB; each chunk\n"
       "                        server caps its part at its query_max_result_bytes)\n"
       "  --stats               documents scanned, indexes used, time (to stderr)\n"
       "Exit codes: 0 ok, 2 a malformed query (the message names the column) or the\n"
       "cluster could not be reached, 1 other failures (a limit reached...).\n",
       {{"--format", "--time-limit", "--max-result-bytes"}, {"--stats"}},
       2,
       2,
       true,
       QueryCmd,
       nullptr,
       TuneQuery},
      {"collection create",
       "<name>",
       "Creates a collection.\n",
       {},
       1,
       1,
       true,
       CollectionCreate,
       nullptr},
      {"collection drop",
       "<name>",
       "Drops an empty collection.\n",
       {},
       1,
       1,
       true,
       CollectionDrop,
       nullptr},
      {"collection list", "", "Lists the collections.\n", {}, 0, 0, true, CollectionList, nullptr},
      {"index create",
       "<collection> <path>",
       "Defines a secondary index on a field path (query syntax: a.b, `first name`).\n"
       "Chunk servers build it in the background; queries use it once it is ready.\n",
       {},
       2,
       2,
       true,
       IndexCreate,
       nullptr},
      {"index drop",
       "<collection> <path>",
       "Drops a secondary index.\n",
       {},
       2,
       2,
       true,
       IndexDrop,
       nullptr},
      {"index list",
       "[<collection>] [--json]",
       "Lists secondary indexes with their build progress (documents indexed of the\n"
       "total, nodes ready).\n",
       {{}, {"--json"}},
       0,
       1,
       true,
       IndexList,
       nullptr},
      {"status",
       "[--json]",
       "Shows the cluster: map version, nodes, partitions per node, disks, indexes.\n",
       {{}, {"--json"}},
       0,
       0,
       true,
       StatusCmd,
       nullptr},
      {"certs init",
       "--dir DIR [--cluster NAME] [--days N]",
       "Creates the cluster CA (DIR/ca.crt, DIR/ca.key). Needs no cluster.\n",
       {{"--dir", "--cluster", "--days"}, {}},
       0,
       0,
       false,
       nullptr,
       CertsInit},
      {"certs issue",
       "--dir DIR (--node|--user|--admin) NAME [--ip A]... [--dns NAME]... [--out DIR] [--days N]",
       "Issues a certificate signed by the CA in DIR: OUT/NAME.crt and OUT/NAME.key\n"
       "(OUT defaults to DIR). Nodes get 127.0.0.1 and localhost unless --ip/--dns.\n",
       {{"--dir", "--node", "--user", "--admin", "--ip", "--dns", "--out", "--days"}, {}},
       0,
       0,
       false,
       nullptr,
       CertsIssue},
  };
  return kCommands;
}

void PrintHelp() {
  std::cout << "usage: cairn [global options] <command> [arguments]\n\ncommands:\n";
  for (const Command& c : Commands()) std::cout << "  " << c.name << " " << c.synopsis << "\n";
  std::cout << "\nglobal options (anywhere on the line):\n"
               "  --meta HOST:PORT,...   metaservers\n"
               "  --ca FILE --cert FILE --key FILE   TLS files (cluster CA, certificate, key)\n"
               "  --config FILE          key = value file with metaservers, tls_ca, tls_cert,\n"
               "                         tls_key (default $CAIRN_CONFIG, then\n"
               "                         ~/.config/cairn/client.conf)\n"
               "  --timeout SECONDS      give up after this long (default 60)\n"
               "  --read-from primary|any   reads (get, stat, ls, query) from the primary\n"
               "                         (default), or from any in-sync replica (may miss\n"
               "                         writes of about the last second)\n"
               "  --help                 this text, or a command's\n"
               "\nexit codes: 0 ok, 1 the operation failed, 2 the cluster could not be\n"
               "reached (query: or the query is malformed), 64 bad command line.\n";
}

}  // namespace

int Main(int argc, char** argv) {
  // Library and Thrift chatter (reconnects, retries) is not for the user
  // unless asked for with CAIRN_LOG_LEVEL.
  if (std::getenv("CAIRN_LOG_LEVEL") == nullptr) SetLogLevel(LogLevel::kError);  // NOLINT
  std::vector<std::string> words(argv + 1, argv + argc);
  Result<Globals> g = TakeGlobals(&words);
  if (!g.ok()) return Usage(g.status().message());
  if (words.empty()) {
    if (g->help) {
      PrintHelp();
      return kExitOk;
    }
    return Usage("no command");
  }
  std::string name = words[0];
  size_t used = 1;
  if ((name == "collection" || name == "certs" || name == "index")) {
    if (words.size() < 2 || words[1].empty() || words[1][0] == '-') {
      if (g->help) {
        PrintHelp();
        return kExitOk;
      }
      return Usage(name + " needs a subcommand", "");
    }
    name += " " + words[1];
    used = 2;
  }
  const Command* cmd = nullptr;
  for (const Command& c : Commands()) {
    if (c.name == name) cmd = &c;
  }
  if (cmd == nullptr) return Usage("unknown command '" + name + "'");
  if (g->help) {
    std::cout << "usage: cairn " << cmd->name << " " << cmd->synopsis << "\n\n" << cmd->help;
    return kExitOk;
  }
  Result<Args> a = ParseArgs(
      std::vector<std::string>(words.begin() + static_cast<std::ptrdiff_t>(used), words.end()),
      cmd->flags);
  if (!a.ok()) return Usage(name + ": " + a.status().message(), name);
  if (a->positional.size() < cmd->min_positional || a->positional.size() > cmd->max_positional) {
    return Usage("usage: cairn " + cmd->name + " " + cmd->synopsis, name);
  }
  if (!cmd->needs_cluster) return cmd->run_local(*a);
  Result<client::Options> o = ResolveOptions(*g);
  if (!o.ok()) return Usage(o.status().message());
  if (cmd->tune != nullptr) {
    Status s = cmd->tune(*a, &*o);
    if (!s.ok()) return Usage(s.message(), name);
  }
  Result<std::unique_ptr<Client>> c = Client::Create(*o);
  if (!c.ok())
    return Fail("cannot connect", Status(StatusCode::kUnavailable, c.status().message()));
  return cmd->run(c->get(), *a);
}

}  // namespace cairn::cli
