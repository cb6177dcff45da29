// Result rows, their order, a bounded per-partition top-k, and the merge of
// per-partition sorted runs. A chunk server keeps one TopK per partition
// scan and returns its rows sorted; libcairn merges the partitions' runs with
// MergeSorted and the same order and limit. Because every row's order ends
// with its _id (unique), the order is total and the result is the same
// however the documents are spread over partitions.
//
// Thread-compatible: one TopK per scanning thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "query/ast.h"
#include "query/value.h"

namespace cairn::query {

struct Row {
  std::string id;
  std::vector<std::optional<Value>> keys;  // one per sort key; nullopt: missing
  std::string json;                        // the projected document (query/evaluator.h)
};

// Sort keys in order, each ascending or descending; missing sorts before
// every value (so last in a descending key); ties go by _id ascending.
class RowOrder {
 public:
  RowOrder() = default;
  explicit RowOrder(const std::vector<SortKey>& sort);

  // <0, 0, >0.
  int Compare(const Row& a, const Row& b) const;
  bool operator()(const Row& a, const Row& b) const { return Compare(a, b) < 0; }

 private:
  std::vector<bool> descending_;
};

// The first `limit` rows in the order (all rows when there is no limit),
// holding at most `limit` rows at any time.
class TopK {
 public:
  TopK(RowOrder order, std::optional<uint64_t> limit);

  // Whether a row with this id and these keys would be kept now: lets a scan
  // skip building the projection of a row that cannot make the cut.
  bool Admits(const Row& candidate) const;
  void Offer(Row row);
  size_t size() const { return rows_.size(); }
  // Bytes of projected JSON held now: what the scan checks against its
  // result-size limit.
  size_t json_bytes() const { return json_bytes_; }

  // The kept rows, sorted by the order. Leaves the TopK empty.
  std::vector<Row> Take();

 private:
  RowOrder order_;
  std::optional<uint64_t> limit_;
  std::vector<Row> rows_;  // a max-heap by order_ while limited, else unsorted
  size_t json_bytes_ = 0;
};

// A row's sort keys as text, for the wire between a chunk server and
// libcairn: a JSON array with one entry per key, `[v]` for a value and `[]`
// for a missing one. Numbers keep their representation (int, uint, double),
// so DecodeSortKeys(EncodeSortKeys(k)) orders exactly like k.
std::string EncodeSortKeys(const std::vector<std::optional<Value>>& keys);
// InvalidArgument when `text` is not such an array.
Result<std::vector<std::optional<Value>>> DecodeSortKeys(std::string_view text);

// Merges runs each sorted by `order` into one sorted run of at most `limit`
// rows.
std::vector<Row> MergeSorted(std::vector<std::vector<Row>> runs, const RowOrder& order,
                             std::optional<uint64_t> limit);

}  // namespace cairn::query
