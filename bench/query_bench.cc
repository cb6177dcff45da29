// query_bench: how fast one core runs the query evaluator next to the data.
//
// Generates e-commerce orders (deterministic, ~0.5-1 KiB of JSON each) in
// memory, then for each query measures a single-threaded scan the way a chunk
// server runs a partition: Document::Load (simdjson DOM parse), Matches, and
// for matches the sort key, TopK::Admits, the projection and TopK::Offer.
// Reports MB/s of JSON scanned and documents/s, median over runs. The first
// line ("parse only") is the floor every query pays.
//
//   query_bench [--docs N] [--runs R] [--seed S] [--json]
//
// Skeleton for issue 5 phase 2: no index, no I/O, no decompression, no
// threads; those land with the chunk server's query path.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/random.h"
#include "query/evaluator.h"
#include "query/parser.h"
#include "query/topk.h"
#include "query/value.h"

namespace {

using cairn::Random;
namespace q = cairn::query;

struct Doc {
  std::string id;
  std::string json;
};

std::string Quote(const std::string& s) {
  std::string out;
  q::AppendJsonString(s, &out);
  return out;
}

std::vector<Doc> MakeOrders(size_t n, uint64_t seed) {
  static const char* kStatus[] = {"paid", "pending", "shipped", "cancelled", "refunded"};
  static const char* kCountry[] = {"FR", "DE", "IT", "ES", "NL", "BE", "PL", "SE", "US", "JP"};
  static const char* kNames[] = {"Ana",    "Bruno", "Chloe", "Dmitri", "Eva",   "Farid",
                                 "Gisele", "Hugo",  "Ines",  "Jonas",  "Karin", "Luca"};
  static const char* kTags[] = {"gift", "express", "fragile", "b2b", "promo", "vip"};
  Random rnd(seed);
  std::vector<Doc> docs;
  docs.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string j = "{\"status\":" + Quote(kStatus[rnd.Uniform(5)]);
    const uint64_t cents = rnd.Uniform(50000);
    j += ",\"total\":" + std::to_string(cents / 100) + "." + std::to_string(cents % 100 / 10) +
         std::to_string(cents % 10);
    j += ",\"currency\":\"EUR\",\"created\":" + std::to_string(1700000000 + rnd.Uniform(3u << 24));
    j += ",\"customer\":{\"name\":" + Quote(kNames[rnd.Uniform(12)]) +
         ",\"id\":" + std::to_string(rnd.Uniform(100000)) + ",\"email\":\"user" +
         std::to_string(rnd.Uniform(100000)) + "@example.com\"" +
         ",\"country\":" + Quote(kCountry[rnd.Uniform(10)]) + "}";
    j += ",\"items\":[";
    const uint64_t items = 1 + rnd.Uniform(5);
    for (uint64_t k = 0; k < items; ++k) {
      if (k > 0) j += ",";
      j += "{\"sku\":\"SKU-" + std::to_string(rnd.Uniform(5000)) +
           "\",\"qty\":" + std::to_string(1 + rnd.Uniform(4)) +
           ",\"price\":" + std::to_string(static_cast<double>(rnd.Uniform(20000)) / 100.0) + "}";
    }
    j += "],\"tags\":[";
    const uint64_t tags = rnd.Uniform(3);
    for (uint64_t k = 0; k < tags; ++k) j += (k ? "," : "") + Quote(kTags[rnd.Uniform(6)]);
    j += "]";
    if (rnd.OneIn(4)) j += ",\"coupon\":\"C" + std::to_string(rnd.Uniform(1000)) + "\"";
    j += ",\"note\":\"" + std::string(rnd.Uniform(200), 'x') + "\"}";
    char id[32];
    std::snprintf(id, sizeof(id), "order-%08zu", i);
    docs.push_back({id, std::move(j)});
  }
  return docs;
}

struct Outcome {
  double seconds = 0;
  size_t matches = 0;
  size_t rows = 0;
};

Outcome Scan(const std::vector<Doc>& docs, const q::Query* query) {
  q::Document doc;
  q::TopK top(q::RowOrder(query ? query->sort : std::vector<q::SortKey>{}),
              query ? query->limit : std::nullopt);
  Outcome out;
  const auto start = std::chrono::steady_clock::now();
  for (const Doc& d : docs) {
    if (!doc.Load(d.id, d.json)) continue;
    if (query == nullptr || !q::Matches(query->filter, doc)) continue;
    ++out.matches;
    q::Row row{d.id, q::SortKeyOf(query->sort, doc), ""};
    if (!top.Admits(row)) continue;
    row.json = q::Project(query->fields, doc);
    top.Offer(std::move(row));
  }
  out.rows = top.Take().size();
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = 200000;
  int runs = 3;
  uint64_t seed = 1;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--docs" && i + 1 < argc) {
      n = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--json") {
      json = true;
    } else {
      std::fprintf(stderr, "usage: query_bench [--docs N] [--runs R] [--seed S] [--json]\n");
      return a == "--help" ? 0 : 64;
    }
  }
  const std::vector<Doc> docs = MakeOrders(n, seed);
  size_t bytes = 0;
  for (const Doc& d : docs) bytes += d.json.size();

  const char* kQueries[] = {
      "",  // parse only (no evaluation at all)
      "status == \"paid\" && total >= 100",
      ("customer.country in [\"FR\",\"DE\"] ?limit=20&sort=-total,customer.name"
       "&fields=total,customer.name"),
      "!(coupon exists) && tags contains \"vip\"",
      "customer.email ^= \"user1\" || items.0.qty >= 4 ?sort=created&limit=100",
      "total > 499 ?fields=_id",
  };
  if (!json) {
    std::printf("query_bench: %zu orders, %.1f MB of JSON, %d runs, 1 thread\n", n,
                static_cast<double>(bytes) / 1e6, runs);
    std::printf("%-10s %-10s %-8s %s\n", "MB/s", "docs/s", "matches", "query");
  } else {
    std::printf("[\n");
  }
  bool first = true;
  for (const char* text : kQueries) {
    auto parsed = q::Parse(text);
    if (!parsed.ok()) {
      std::fprintf(stderr, "%s: %s\n", text, parsed.status().ToString().c_str());
      return 70;
    }
    const bool parse_only = text[0] == '\0';
    std::vector<double> secs;
    Outcome o;
    for (int r = 0; r < runs; ++r) {
      o = Scan(docs, parse_only ? nullptr : &parsed.value());
      secs.push_back(o.seconds);
    }
    std::sort(secs.begin(), secs.end());
    const double median = secs[secs.size() / 2];
    const double mbs = static_cast<double>(bytes) / 1e6 / median;
    const double dps = static_cast<double>(n) / median;
    const std::string label = parse_only ? "(parse only)" : text;
    if (json) {
      std::string qj;
      q::AppendJsonString(label, &qj);
      std::printf("%s  {\"query\": %s, \"mb_per_s\": %.1f, \"docs_per_s\": %.0f, \"matches\": %zu}",
                  first ? "" : ",\n", qj.c_str(), mbs, dps, o.matches);
    } else {
      std::printf("%-10.1f %-10.0f %-8zu %s\n", mbs, dps, o.matches, label.c_str());
    }
    first = false;
  }
  if (json) std::printf("\n]\n");
  return 0;
}
