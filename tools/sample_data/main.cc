// cairn-sample-data: creates the collections customers, products and orders
// and loads the demo's e-commerce data set (sample_data.h) through libcairn.
#include <getopt.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "client/cairn.h"
#include "common/config.h"
#include "common/logging.h"
#include "tools/sample_data/sample_data.h"

namespace {

constexpr int kExitUsage = 64;

const char kUsage[] =
    "usage: cairn-sample-data --metaservers HOST:PORT[,HOST:PORT...] --ca FILE --cert FILE\n"
    "                         --key FILE [--customers N] [--products N] [--orders N]\n"
    "                         [--seed S] [--workers N] [--quiet]\n"
    "\n"
    "Creates the collections customers, products and orders (kept if they exist) and\n"
    "puts a deterministic e-commerce data set into them as JSON documents: orders\n"
    "reference customers and products. Defaults: 2000 customers, 500 products,\n"
    "8000 orders (10,500 documents), seed 1, 4 workers. Re-running overwrites the\n"
    "same documents with the same bytes.\n"
    "Exit codes: 0 loaded, 1 a document or collection failed, 64 usage error.\n";

bool ParseCount(const char* text, uint64_t max, uint64_t* out) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0' || v > max) return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cairn;
  std::string metaservers;
  TlsOptions tls;
  sample::DataSetSize size;
  uint64_t seed = 1;
  uint64_t workers = 4;
  bool quiet = false;
  static const option kLong[] = {{"metaservers", required_argument, nullptr, 'm'},
                                 {"ca", required_argument, nullptr, 'a'},
                                 {"cert", required_argument, nullptr, 'c'},
                                 {"key", required_argument, nullptr, 'k'},
                                 {"customers", required_argument, nullptr, 'C'},
                                 {"products", required_argument, nullptr, 'P'},
                                 {"orders", required_argument, nullptr, 'O'},
                                 {"seed", required_argument, nullptr, 's'},
                                 {"workers", required_argument, nullptr, 'w'},
                                 {"quiet", no_argument, nullptr, 'q'},
                                 {"help", no_argument, nullptr, 'h'},
                                 {nullptr, 0, nullptr, 0}};
  for (;;) {
    const int opt = getopt_long(argc, argv, "h", kLong, nullptr);
    if (opt == -1) break;
    bool ok = true;
    switch (opt) {
      case 'm':
        metaservers = optarg;
        break;
      case 'a':
        tls.ca_file = optarg;
        break;
      case 'c':
        tls.cert_file = optarg;
        break;
      case 'k':
        tls.key_file = optarg;
        break;
      case 'C':
        ok = ParseCount(optarg, 100000000, &size.customers);
        break;
      case 'P':
        ok = ParseCount(optarg, 100000000, &size.products);
        break;
      case 'O':
        ok = ParseCount(optarg, 100000000, &size.orders);
        break;
      case 's':
        ok = ParseCount(optarg, UINT64_MAX, &seed);
        break;
      case 'w':
        ok = ParseCount(optarg, 64, &workers) && workers > 0;
        break;
      case 'q':
        quiet = true;
        break;
      case 'h':
        std::fputs(kUsage, stdout);
        return 0;
      default:
        std::fputs(kUsage, stderr);
        return kExitUsage;
    }
    if (!ok) {
      std::fprintf(stderr, "cairn-sample-data: bad value '%s'\n%s", optarg, kUsage);
      return kExitUsage;
    }
  }
  if (optind != argc || metaservers.empty() || tls.ca_file.empty() || tls.cert_file.empty() ||
      tls.key_file.empty()) {
    std::fprintf(stderr,
                 "cairn-sample-data: --metaservers, --ca, --cert and --key are required\n%s",
                 kUsage);
    return kExitUsage;
  }
  if (size.customers == 0 && size.orders > 0) {
    std::fprintf(stderr, "cairn-sample-data: orders need at least one customer\n");
    return kExitUsage;
  }
  if (size.products == 0 && size.orders > 0) {
    std::fprintf(stderr, "cairn-sample-data: orders need at least one product\n");
    return kExitUsage;
  }

  client::Options options;
  size_t start = 0;
  while (start <= metaservers.size()) {
    size_t comma = metaservers.find(',', start);
    if (comma == std::string::npos) comma = metaservers.size();
    auto hp = ParseHostPort(metaservers.substr(start, comma - start));
    if (!hp.ok()) {
      std::fprintf(stderr, "cairn-sample-data: --metaservers: %s\n",
                   hp.status().ToString().c_str());
      return kExitUsage;
    }
    options.metaservers.push_back(*hp);
    start = comma + 1;
  }
  options.tls = tls;
  auto client_or = client::Client::Create(options);
  if (!client_or.ok()) {
    std::fprintf(stderr, "cairn-sample-data: %s\n", client_or.status().ToString().c_str());
    return 1;
  }
  client::Client& c = **client_or;

  for (const char* name : {"customers", "products", "orders"}) {
    Status s = c.CreateCollection(name);
    if (!s.ok() && s.code() != StatusCode::kAlreadyExists) {
      std::fprintf(stderr, "cairn-sample-data: create collection %s: %s\n", name,
                   s.ToString().c_str());
      return 1;
    }
  }

  const uint64_t total = size.total();
  std::atomic<uint64_t> next{0};
  std::atomic<uint64_t> done{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> failed{0};
  auto work = [&] {
    for (uint64_t k = next.fetch_add(1); k < total; k = next.fetch_add(1)) {
      std::string collection;
      std::string id;
      std::string body;
      if (k < size.customers) {
        collection = "customers";
        id = sample::CustomerId(k);
        body = sample::CustomerJson(seed, k);
      } else if (k < size.customers + size.products) {
        const uint64_t i = k - size.customers;
        collection = "products";
        id = sample::ProductId(i);
        body = sample::ProductJson(seed, i);
      } else {
        const uint64_t i = k - size.customers - size.products;
        collection = "orders";
        id = sample::OrderId(i);
        body = sample::OrderJson(seed, i, size);
      }
      auto r = c.Put(collection, id, body);
      if (!r.ok()) {
        if (failed.fetch_add(1) < 10) {
          std::fprintf(stderr, "cairn-sample-data: put %s/%s: %s\n", collection.c_str(), id.c_str(),
                       r.status().ToString().c_str());
        }
        continue;
      }
      bytes.fetch_add(body.size());
      done.fetch_add(1);
    }
  };
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (uint64_t w = 0; w < workers; ++w) pool.emplace_back(work);
  std::atomic<bool> finished{false};
  std::thread progress([&] {
    while (!finished.load()) {
      for (int i = 0; i < 10 && !finished.load(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (quiet || finished.load()) continue;
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("  loaded %llu / %llu documents (%.0f/s)\n",
                  static_cast<unsigned long long>(done.load()),
                  static_cast<unsigned long long>(total),
                  secs > 0 ? static_cast<double>(done.load()) / secs : 0.0);
      std::fflush(stdout);
    }
  });
  for (std::thread& t : pool) t.join();
  finished = true;
  progress.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "loaded %llu documents (%llu customers, %llu products, %llu orders; %.1f MB) in "
      "%.1f s; %llu failed\n",
      static_cast<unsigned long long>(done.load()), static_cast<unsigned long long>(size.customers),
      static_cast<unsigned long long>(size.products), static_cast<unsigned long long>(size.orders),
      static_cast<double>(bytes.load()) / 1e6, secs,
      static_cast<unsigned long long>(failed.load()));
  return failed.load() == 0 ? 0 : 1;
}
