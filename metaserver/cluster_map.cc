#include "metaserver/cluster_map.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "common/partitioning.h"

namespace cairn::metaserver {
namespace {

using nlohmann::json;

template <typename Id>
json IdList(const std::vector<Id>& ids) {
  json a = json::array();
  for (Id id : ids) a.push_back(id.value());
  return a;
}

template <typename Id>
std::vector<Id> IdsFrom(const json& a) {
  std::vector<Id> out;
  for (const json& v : a) out.emplace_back(v.get<typename Id::rep_type>());
  return out;
}

}  // namespace

ClusterMap ClusterMap::New(uint32_t partition_count) {
  ClusterMap m;
  m.version = 1;
  m.partition_count = partition_count;
  m.partitions.resize(partition_count);
  for (uint32_t i = 0; i < partition_count; ++i) m.partitions[i].id = PartitionId(i);
  return m;
}

const NodeEntry* ClusterMap::FindNode(NodeId id) const {
  auto it = std::lower_bound(nodes.begin(), nodes.end(), id,
                             [](const NodeEntry& n, NodeId v) { return n.id < v; });
  return it != nodes.end() && it->id == id ? &*it : nullptr;
}

const NodeEntry* ClusterMap::FindNodeByName(std::string_view name) const {
  for (const NodeEntry& n : nodes) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

bool ClusterMap::Placed() const {
  return std::all_of(partitions.begin(), partitions.end(),
                     [](const PartitionEntry& p) { return !p.replicas.empty(); });
}

Status ValidateCollectionName(std::string_view name) {
  if (name.empty() || name.size() > kMaxCollectionNameBytes) {
    return Status::InvalidArgument("collection name must be 1-" +
                                   std::to_string(kMaxCollectionNameBytes) + " bytes, got " +
                                   std::to_string(name.size()));
  }
  if (name[0] == '.') {
    return Status::InvalidArgument("collection name '" + std::string(name) +
                                   "' must not start with '.'");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) {
      return Status::InvalidArgument("collection name may hold only [A-Za-z0-9_.-], got '" +
                                     std::string(name) + "'");
    }
  }
  return Status::Ok();
}

Status ClusterMap::Validate() const {
  auto bad = [](const std::string& what) { return Status::Corruption("cluster map: " + what); };
  if (version == 0) return bad("version 0");
  if (!ValidPartitionCount(partition_count)) {
    return bad("partition_count " + std::to_string(partition_count) + " is not a power of two");
  }
  if (partitions.size() != partition_count) {
    return bad(std::to_string(partitions.size()) + " partitions, partition_count " +
               std::to_string(partition_count));
  }
  if (nodes.size() > kMaxNodes) return bad("too many nodes");
  std::set<std::string> names;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const NodeEntry& n = nodes[i];
    if (n.id.value() == 0 || n.id >= next_node_id) {
      return bad("node id " + std::to_string(n.id.value()) + " out of range");
    }
    if (i > 0 && !(nodes[i - 1].id < n.id)) return bad("node ids not sorted or repeated");
    if (n.name.empty() || !names.insert(n.name).second) {
      return bad("node name '" + n.name + "' empty or repeated");
    }
    if (n.port < 0 || n.port > 65535) return bad("node " + n.name + " port out of range");
  }
  for (uint32_t i = 0; i < partition_count; ++i) {
    const PartitionEntry& p = partitions[i];
    const std::string where = "partition " + std::to_string(i);
    if (p.id != PartitionId(i)) return bad(where + " has id " + std::to_string(p.id.value()));
    std::set<NodeId> seen;
    for (NodeId r : p.replicas) {
      if (FindNode(r) == nullptr)
        return bad(where + " names unknown node " + std::to_string(r.value()));
      if (!seen.insert(r).second)
        return bad(where + " has node " + std::to_string(r.value()) + " twice");
    }
    std::set<NodeId> in_sync_seen;
    for (NodeId r : p.in_sync) {
      if (seen.count(r) == 0 || !in_sync_seen.insert(r).second) {
        return bad(where + " in_sync is not a subset of its replicas");
      }
    }
    if (p.replicas.empty() != (p.epoch.value() == 0)) {
      return bad(where + " epoch " + std::to_string(p.epoch.value()) + " does not fit its " +
                 std::to_string(p.replicas.size()) + " replicas");
    }
  }
  if (collections.size() > kMaxCollections) return bad("too many collections");
  for (const auto& [key, c] : collections) {
    if (key != c.name) return bad("collection key '" + key + "' names '" + c.name + "'");
    Status s = ValidateCollectionName(c.name);
    if (!s.ok()) return bad(s.message());
  }
  return Status::Ok();
}

std::string EncodeClusterMap(const ClusterMap& map) {
  json j;
  j["format"] = kClusterMapFormat;
  j["version"] = map.version;
  j["partition_count"] = map.partition_count;
  j["next_node_id"] = map.next_node_id.value();
  json nodes = json::array();
  for (const NodeEntry& n : map.nodes) {
    nodes.push_back({{"id", n.id.value()},
                     {"name", n.name},
                     {"host", n.host},
                     {"port", n.port},
                     {"registered_ms", n.registered_ms}});
  }
  j["nodes"] = std::move(nodes);
  json parts = json::array();
  for (const PartitionEntry& p : map.partitions) {
    parts.push_back({{"id", p.id.value()},
                     {"epoch", p.epoch.value()},
                     {"replicas", IdList(p.replicas)},
                     {"in_sync", IdList(p.in_sync)}});
  }
  j["partitions"] = std::move(parts);
  json cols = json::array();
  for (const auto& [name, c] : map.collections) {
    cols.push_back({{"name", c.name}, {"created_ms", c.created_ms}, {"indexes", c.indexes}});
  }
  j["collections"] = std::move(cols);
  return j.dump();
}

Result<ClusterMap> DecodeClusterMap(std::string_view text) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Corruption("cluster map: not a JSON object");
  }
  ClusterMap m;
  // nlohmann's typed accessors throw on a missing field or a wrong type; this
  // is the only place they are called, so the exceptions stop here.
  try {
    const int format = j.at("format").get<int>();
    if (format != kClusterMapFormat) {
      return Status::Corruption("cluster map: format " + std::to_string(format) +
                                ", this build reads " + std::to_string(kClusterMapFormat));
    }
    m.version = j.at("version").get<uint64_t>();
    m.partition_count = j.at("partition_count").get<uint32_t>();
    m.next_node_id = NodeId(j.at("next_node_id").get<uint32_t>());
    for (const json& n : j.at("nodes")) {
      m.nodes.push_back(NodeEntry{NodeId(n.at("id").get<uint32_t>()),
                                  n.at("name").get<std::string>(), n.at("host").get<std::string>(),
                                  n.at("port").get<int>(), n.value("registered_ms", int64_t{0})});
    }
    for (const json& p : j.at("partitions")) {
      m.partitions.push_back(PartitionEntry{
          PartitionId(p.at("id").get<uint32_t>()), Epoch(p.at("epoch").get<uint64_t>()),
          IdsFrom<NodeId>(p.at("replicas")), IdsFrom<NodeId>(p.at("in_sync"))});
    }
    for (const json& c : j.at("collections")) {
      CollectionEntry e{c.at("name").get<std::string>(), c.value("created_ms", int64_t{0}),
                        c.value("indexes", std::vector<std::string>{})};
      const std::string name = e.name;
      if (!m.collections.emplace(name, std::move(e)).second) {
        return Status::Corruption("cluster map: collection '" + name + "' twice");
      }
    }
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("cluster map: ") + e.what());
  }
  RETURN_IF_ERROR(m.Validate());
  return m;
}

}  // namespace cairn::metaserver
