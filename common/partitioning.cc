#include "common/partitioning.h"

#include <string>

#include <xxhash.h>

#include "common/assert.h"

namespace cairn {

uint64_t DocumentHash(std::string_view collection, std::string_view id) {
  // Names are short (at most a few hundred bytes): one buffer, one hash.
  std::string key;
  key.reserve(collection.size() + 1 + id.size());
  key.append(collection);
  key.push_back('\0');
  key.append(id);
  return XXH3_64bits(key.data(), key.size());
}

PartitionId PartitionOf(std::string_view collection, std::string_view id,
                        uint32_t partition_count) {
  CAIRN_CHECK(ValidPartitionCount(partition_count));
  if (partition_count == 1) return PartitionId(0);
  const int bits = std::countr_zero(partition_count);
  return PartitionId(static_cast<uint32_t>(DocumentHash(collection, id) >> (64 - bits)));
}

}  // namespace cairn
