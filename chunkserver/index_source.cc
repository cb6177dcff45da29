#include "chunkserver/index_source.h"

namespace cairn::chunkserver {

Result<IndexWalkPage> IndexSource::Walk(PartitionId /*p*/, std::string_view /*collection*/,
                                        const IndexWalkRequest& req) const {
  return Status::FailedPrecondition("this index source has no ordered walk (" +
                                    req.path.ToString() + ")");
}

}  // namespace cairn::chunkserver
