// Strong types for identities (STYLE.md rule 7): a NodeId cannot be passed
// where a PartitionId is expected, and neither mixes with a bare integer.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>

namespace cairn {

template <typename Tag, typename Rep = uint64_t>
class StrongId {
 public:
  using rep_type = Rep;
  constexpr StrongId() = default;
  constexpr explicit StrongId(Rep v) : v_(v) {}
  constexpr Rep value() const { return v_; }
  constexpr auto operator<=>(const StrongId&) const = default;
  constexpr StrongId Next() const { return StrongId(v_ + 1); }

 private:
  Rep v_{};
};

template <typename Tag, typename Rep>
std::ostream& operator<<(std::ostream& os, StrongId<Tag, Rep> id) {
  return os << +id.value();
}

using NodeId = StrongId<struct NodeIdTag, uint32_t>;
using PartitionId = StrongId<struct PartitionIdTag, uint32_t>;
using Epoch = StrongId<struct EpochTag, uint64_t>;
using Lsn = StrongId<struct LsnTag, uint64_t>;
using DiskIndex = StrongId<struct DiskIndexTag, uint32_t>;
using StripeSeq = StrongId<struct StripeSeqTag, uint64_t>;
using SegmentId = StrongId<struct SegmentIdTag, uint32_t>;
using InodeId = StrongId<struct InodeIdTag, uint64_t>;

}  // namespace cairn

template <typename Tag, typename Rep>
struct std::hash<cairn::StrongId<Tag, Rep>> {
  size_t operator()(cairn::StrongId<Tag, Rep> id) const noexcept {
    return std::hash<Rep>()(id.value());
  }
};
