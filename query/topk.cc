#include "query/topk.h"

#include <algorithm>

#include <limits>

#include "common/assert.h"
#include "query/parser.h"

namespace cairn::query {

RowOrder::RowOrder(const std::vector<SortKey>& sort) {
  for (const SortKey& k : sort) descending_.push_back(k.descending);
}

int RowOrder::Compare(const Row& a, const Row& b) const {
  CAIRN_DCHECK(a.keys.size() == descending_.size() && b.keys.size() == descending_.size());
  for (size_t i = 0; i < descending_.size(); ++i) {
    const auto& x = a.keys[i];
    const auto& y = b.keys[i];
    int c = 0;
    if (!x.has_value() || !y.has_value()) {
      c = static_cast<int>(x.has_value()) - static_cast<int>(y.has_value());
    } else {
      c = query::Compare(*x, *y);
    }
    if (c != 0) return descending_[i] ? -c : c;
  }
  const int c = a.id.compare(b.id);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

TopK::TopK(RowOrder order, std::optional<uint64_t> limit)
    : order_(std::move(order)), limit_(limit) {}

bool TopK::Admits(const Row& candidate) const {
  if (!limit_.has_value()) return true;
  if (*limit_ == 0) return false;
  if (rows_.size() < *limit_) return true;
  return order_.Compare(candidate, rows_.front()) < 0;  // better than the worst kept
}

void TopK::Offer(Row row) {
  if (!limit_.has_value()) {
    json_bytes_ += row.json.size();
    rows_.push_back(std::move(row));
    return;
  }
  if (!Admits(row)) return;
  if (rows_.size() == *limit_) {
    std::pop_heap(rows_.begin(), rows_.end(), order_);
    json_bytes_ -= rows_.back().json.size();
    rows_.pop_back();
  }
  json_bytes_ += row.json.size();
  rows_.push_back(std::move(row));
  std::push_heap(rows_.begin(), rows_.end(), order_);
}

std::vector<Row> TopK::Take() {
  std::vector<Row> out = std::move(rows_);
  rows_.clear();
  json_bytes_ = 0;
  std::sort(out.begin(), out.end(), order_);
  return out;
}

std::vector<Row> MergeSorted(std::vector<std::vector<Row>> runs, const RowOrder& order,
                             std::optional<uint64_t> limit) {
  // A min-heap of (run, position) by the rows they point at.
  struct Cursor {
    size_t run;
    size_t pos;
  };
  const auto worse = [&](const Cursor& a, const Cursor& b) {
    return order.Compare(runs[a.run][a.pos], runs[b.run][b.pos]) > 0;
  };
  std::vector<Cursor> heap;
  size_t total = 0;
  for (size_t r = 0; r < runs.size(); ++r) {
    CAIRN_DCHECK(std::is_sorted(runs[r].begin(), runs[r].end(), order));
    total += runs[r].size();
    if (!runs[r].empty()) heap.push_back({r, 0});
  }
  std::make_heap(heap.begin(), heap.end(), worse);
  const uint64_t want = limit.has_value() ? std::min<uint64_t>(*limit, total) : total;
  std::vector<Row> out;
  out.reserve(want);
  while (!heap.empty() && out.size() < want) {
    std::pop_heap(heap.begin(), heap.end(), worse);
    Cursor c = heap.back();
    heap.pop_back();
    out.push_back(std::move(runs[c.run][c.pos]));
    if (++c.pos < runs[c.run].size()) {
      heap.push_back(c);
      std::push_heap(heap.begin(), heap.end(), worse);
    }
  }
  return out;
}

std::string EncodeSortKeys(const std::vector<std::optional<Value>>& keys) {
  std::string out = "[";
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('[');
    if (keys[i].has_value()) keys[i]->AppendJson(&out);
    out.push_back(']');
  }
  out.push_back(']');
  return out;
}

Result<std::vector<std::optional<Value>>> DecodeSortKeys(std::string_view text) {
  // Keys come from documents, which may nest deeper than a query may.
  ParseLimits roomy;
  roomy.max_query_bytes = std::numeric_limits<size_t>::max();
  roomy.max_depth = 4096;
  auto v = ParseValue(text, roomy);
  if (!v.ok()) return v.status().WithContext("sort keys");
  if (v->type() != TypeClass::kArray) return Status::InvalidArgument("sort keys: not an array");
  std::vector<std::optional<Value>> out;
  for (const Value& k : v->array()) {
    if (k.type() != TypeClass::kArray || k.array().size() > 1) {
      return Status::InvalidArgument("sort keys: an entry is not [] or [value]");
    }
    if (k.array().empty()) {
      out.emplace_back(std::nullopt);
    } else {
      out.emplace_back(k.array()[0]);
    }
  }
  return out;
}

}  // namespace cairn::query
