// query_cluster_bench: queries against a local Cairn cluster (the real
// daemons, started on loopback by tests/integration's harness, with secondary
// indexes) and, in the same run, against PostgreSQL holding the same orders
// as jsonb with expression indexes. See bench/README.md.
//
// Data: N generated e-commerce orders (deterministic, seeded), ~450-650 bytes
// of JSON each, customer.id drawn from 10,000 customers.
// Queries, same semantics on both systems:
//   Q1 customer.id == "<random customer>"                 (index, ~N/10,000 rows)
//   Q2 total >= A && total < B ?sort=-total&limit=20      (index, range ~3%)
//   Q3 status == "refunded" && customer.country == "FR"   (no index: full scan)
// Reported: p50/p99 latency (Q1, Q2), MB/s of documents scanned per core
// (Q3), and ratios; row counts and Q2's ids are checked equal.
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "client/cairn.h"
#include "common/logging.h"
#include "tests/integration/cluster_harness.h"

namespace cairn::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Config {
  uint64_t docs = 1000000;
  int runs = 300;
  int scan_runs = 5;
  int loaders = 32;
  uint32_t partitions = 16;
  bool pg = true;
  std::vector<std::string> chunkserver_set;  // --set key=value
  uint64_t seed = 42;
  int cluster_cores = 2;
  // Q1 and Q2 also one call per partition (QueryOptions::batch_by_node =
  // false), in the same runs: what QueryPartitions saves.
  bool compare_batch = true;
};

// ---------------------------------------------------------------- data

constexpr uint64_t kCustomers = 10000;
const char* const kCountries[] = {"FR", "DE", "US", "GB", "IT", "ES",
                                  "NL", "SE", "PL", "JP", "BR", "CA"};
const char* const kStatuses[] = {"pending",   "paid",     "shipped",
                                 "delivered", "refunded", "cancelled"};
const char* const kFirst[] = {"Alice", "Bruno", "Chloe", "David", "Emma",  "Felix",
                              "Grace", "Hugo",  "Ines",  "Jonas", "Karin", "Louis",
                              "Maria", "Nils",  "Olga",  "Paul"};
const char* const kLast[] = {"Martin", "Schmidt", "Smith", "Rossi", "Garcia", "Dupont",  "Jansen",
                             "Nowak",  "Tanaka",  "Silva", "Brown", "Muller", "Lefevre", "Berg"};
const char* const kProducts[] = {"USB-C cable 2m",   "Wireless mouse", "Mechanical keyboard",
                                 "27in monitor",     "Laptop stand",   "Noise-cancelling headset",
                                 "Webcam 1080p",     "Desk lamp",      "Ergonomic chair",
                                 "External SSD 1TB", "Phone charger",  "HDMI adapter"};

uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

template <size_t N>
const char* Pick(const char* const (&a)[N], uint64_t r) {
  return a[r % N];
}

std::string OrderId(uint64_t i) {
  char b[32];
  std::snprintf(b, sizeof b, "o%08llu", static_cast<unsigned long long>(i));
  return b;
}

std::string CustomerId(uint64_t c) {
  char b[32];
  std::snprintf(b, sizeof b, "cu%05llu", static_cast<unsigned long long>(c));
  return b;
}

// One order: a pure function of (seed, i). Totals are whole cents printed
// with two decimals, so a double (Cairn) and a numeric (PostgreSQL) agree.
std::string OrderJson(uint64_t seed, uint64_t i, uint64_t* total_cents_out = nullptr) {
  uint64_t r = Mix(seed ^ Mix(i));
  auto next = [&r]() { return r = Mix(r); };
  const uint64_t cust = next() % kCustomers;
  const uint64_t cr = Mix(seed + cust);  // a customer's name and country are fixed
  std::string s;
  s.reserve(700);
  s += "{\"id\":\"" + OrderId(i) + "\",\"customer\":{\"id\":\"" + CustomerId(cust) +
       "\",\"name\":\"" + Pick(kFirst, cr) + " " + Pick(kLast, cr >> 8) + "\",\"country\":\"" +
       Pick(kCountries, cr >> 16) + "\",\"email\":\"" + CustomerId(cust) + "@example.com\"}";
  s += ",\"status\":\"";
  s += Pick(kStatuses, next());
  s += "\"";
  char buf[160];
  const uint64_t t = next();
  std::snprintf(buf, sizeof buf, ",\"created\":\"2025-%02llu-%02lluT%02llu:%02llu:%02lluZ\"",
                static_cast<unsigned long long>(1 + t % 12),
                static_cast<unsigned long long>(1 + (t >> 8) % 28),
                static_cast<unsigned long long>((t >> 16) % 24),
                static_cast<unsigned long long>((t >> 24) % 60),
                static_cast<unsigned long long>((t >> 32) % 60));
  s += buf;
  const uint64_t nitems = 1 + next() % 4;
  uint64_t total = 0;
  s += ",\"items\":[";
  for (uint64_t k = 0; k < nitems; ++k) {
    const uint64_t p = next();
    const uint64_t qty = 1 + p % 3;
    const uint64_t price = 199 + (p >> 8) % 30000;  // cents
    total += qty * price;
    std::snprintf(buf, sizeof buf,
                  "%s{\"sku\":\"SKU-%05llu\",\"name\":\"%s\",\"qty\":%llu,\"price\":%llu.%02llu}",
                  k == 0 ? "" : ",", static_cast<unsigned long long>((p >> 24) % 100000),
                  Pick(kProducts, p >> 40), static_cast<unsigned long long>(qty),
                  static_cast<unsigned long long>(price / 100),
                  static_cast<unsigned long long>(price % 100));
    s += buf;
  }
  const uint64_t shipping = 499;
  total += shipping;
  std::snprintf(buf, sizeof buf,
                "],\"shipping\":{\"method\":\"%s\",\"cost\":4.99},\"total\":%llu.%02llu,"
                "\"currency\":\"EUR\"}",
                (next() & 1) != 0 ? "standard" : "express",
                static_cast<unsigned long long>(total / 100),
                static_cast<unsigned long long>(total % 100));
  s += buf;
  if (total_cents_out != nullptr) *total_cents_out = total;
  return s;
}

// ---------------------------------------------------------------- stats

struct Lat {
  double p50 = 0, p99 = 0, ops = 0;
};

Lat Summarize(std::vector<double> ms) {
  Lat l;
  if (ms.empty()) return l;
  double sum = 0;
  for (double m : ms) sum += m;
  std::sort(ms.begin(), ms.end());
  l.p50 = ms[ms.size() / 2];
  l.p99 = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
  l.ops = sum > 0 ? static_cast<double>(ms.size()) * 1000.0 / sum : 0;
  return l;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ---------------------------------------------------------------- PostgreSQL

// initdb + postgres as an unprivileged user when run as root, in a temp
// directory, on 127.0.0.1 with a free port and its own socket directory.
// Stopped by PID (SIGINT: fast shutdown) in the destructor.
class PgServer {
 public:
  ~PgServer() { Stop(); }

  static constexpr const char* kBin = "/usr/lib/postgresql/15/bin";

  bool Start(std::string* err) {
    dir_ = "/var/tmp/cairn-qbench-pg-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/sock");
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      if (pw == nullptr) pw = ::getpwnam("nobody");
      if (pw == nullptr) {
        *err = "no unprivileged user (postgres, nobody)";
        return false;
      }
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
      for (const auto& p : {dir_, dir_ + "/sock"}) {
        if (::chown(p.c_str(), uid_, gid_) != 0) {
          *err = "chown " + p;
          return false;
        }
      }
    }
    auto port = test::PickFreePortOn("127.0.0.1");
    port_ = port.ok() ? *port : 55432;
    const std::string initdb = std::string(kBin) + "/initdb";
    pid_t p = Spawn(
        {initdb, "-D", dir_ + "/data", "--no-locale", "-E", "UTF8", "-A", "trust", "-U", "bench"},
        dir_ + "/initdb.log");
    int st = 0;
    if (p < 0 || ::waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      *err = "initdb failed (see " + dir_ + "/initdb.log)";
      return false;
    }
    pid_ = Spawn({std::string(kBin) + "/postgres", "-D", dir_ + "/data", "-h", "127.0.0.1", "-p",
                  std::to_string(port_), "-k", dir_ + "/sock", "-c", "fsync=on"},
                 dir_ + "/postgres.log");
    for (int i = 0; i < 300; ++i) {
      PGconn* c = PQconnectdb(ConnInfo().c_str());
      const bool ok = PQstatus(c) == CONNECTION_OK;
      PQfinish(c);
      if (ok) return true;
      int wst = 0;
      if (::waitpid(pid_, &wst, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    *err = "postgres did not start (see " + dir_ + "/postgres.log)";
    return false;
  }

  std::string ConnInfo() const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=postgres user=bench";
  }

  void Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGINT);
      int st = 0;
      for (int i = 0; i < 200 && ::waitpid(pid_, &st, WNOHANG) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (::waitpid(pid_, &st, WNOHANG) == 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &st, 0);
      }
      pid_ = -1;
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }

 private:
  pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) const {
    pid_t p = ::fork();
    if (p != 0) return p;
    std::FILE* f = std::fopen(log.c_str(), "w");
    if (f != nullptr) {
      ::dup2(::fileno(f), 1);
      ::dup2(::fileno(f), 2);
    }
    if (::geteuid() == 0) {
      if (f != nullptr && ::fchown(::fileno(f), uid_, gid_) != 0) ::_exit(126);
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid_) != 0 || ::setuid(uid_) != 0) ::_exit(126);
    }
    // A killed bench takes its postgres with it (after the credential change,
    // which clears the setting).
    ::prctl(PR_SET_PDEATHSIG, SIGINT);
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    ::execv(a[0], a.data());
    ::_exit(127);
  }

  std::string dir_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  int port_ = 0;
  pid_t pid_ = -1;
};

bool PgOk(PGconn* c, const char* sql) {
  PGresult* r = PQexec(c, sql);
  const auto st = PQresultStatus(r);
  const bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
  if (!ok) std::fprintf(stderr, "postgres: %s: %s\n", sql, PQerrorMessage(c));
  PQclear(r);
  return ok;
}

// ---------------------------------------------------------------- main

int Fail(const std::string& what) {
  std::fprintf(stderr, "query_cluster_bench: %s\n", what.c_str());
  return 1;
}

int Main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : "0"; };
    if (a == "--docs") {
      cfg.docs = std::max<uint64_t>(1000, std::stoull(next()));
    } else if (a == "--runs") {
      cfg.runs = std::max(10, std::stoi(next()));
    } else if (a == "--scan-runs") {
      cfg.scan_runs = std::max(1, std::stoi(next()));
    } else if (a == "--loaders") {
      cfg.loaders = std::max(1, std::stoi(next()));
    } else if (a == "--quick") {
      cfg.docs = 20000;
      cfg.runs = 50;
      cfg.scan_runs = 3;
    } else if (a == "--no-pg") {
      cfg.pg = false;
    } else if (a == "--no-compare-batch") {
      cfg.compare_batch = false;
    } else if (a == "--set") {
      cfg.chunkserver_set.push_back(next());
    } else {
      std::fprintf(stderr,
                   "usage: query_cluster_bench [--docs N] [--runs R] [--scan-runs S] "
                   "[--loaders L] [--quick] [--no-pg] [--no-compare-batch] [--set key=value]\n");
      return 64;
    }
  }
  SetLogLevel(LogLevel::kWarn);
  ::signal(SIGPIPE, SIG_IGN);
  const unsigned hw = std::thread::hardware_concurrency();
  cfg.cluster_cores = hw == 0 ? 2 : static_cast<int>(hw);

  // The data's shape: sizes and the totals (to pick Q2's ranges).
  std::vector<uint64_t> totals(cfg.docs);
  uint64_t data_bytes = 0;
  for (uint64_t i = 0; i < cfg.docs; ++i) data_bytes += OrderJson(cfg.seed, i, &totals[i]).size();
  std::vector<uint64_t> sorted_totals = totals;
  std::sort(sorted_totals.begin(), sorted_totals.end());
  std::printf("# %llu orders, %.1f MB of JSON (%.0f bytes/order), %llu customers\n",
              static_cast<unsigned long long>(cfg.docs), static_cast<double>(data_bytes) / 1e6,
              static_cast<double>(data_bytes) / static_cast<double>(cfg.docs),
              static_cast<unsigned long long>(kCustomers));
  std::fflush(stdout);

  // ---- Cairn
  test::ClusterOptions co;
  co.chunk_servers = 3;
  co.partitions = cfg.partitions;
  co.chunkserver_set = {"log_level=warn"};
  for (const auto& kv : cfg.chunkserver_set) co.chunkserver_set.push_back(kv);
  auto started = test::Cluster::Start(co);
  if (!started.ok()) return Fail("cannot start the cluster: " + started.status().ToString());
  std::unique_ptr<test::Cluster> cluster = std::move(*started);
  auto admin_or = cluster->NewClient();
  if (!admin_or.ok()) return Fail(admin_or.status().ToString());
  std::unique_ptr<client::Client> cairn = std::move(*admin_or);
  if (Status s = cairn->CreateCollection("orders"); !s.ok()) return Fail(s.ToString());

  {
    std::atomic<uint64_t> next_doc{0}, done{0}, errors{0};
    std::atomic<bool> finished{false};
    const auto t0 = Clock::now();
    std::vector<std::thread> th;
    for (int w = 0; w < cfg.loaders; ++w) {
      th.emplace_back([&] {
        auto c = cluster->NewClient();
        if (!c.ok()) {
          errors += 1;
          return;
        }
        for (uint64_t i; (i = next_doc.fetch_add(1)) < cfg.docs;) {
          const std::string body = OrderJson(cfg.seed, i);
          bool ok = false;
          for (int attempt = 0; attempt < 3 && !ok; ++attempt) {
            ok = (*c)->Put("orders", OrderId(i), body).ok();
          }
          if (!ok) errors += 1;
          done += 1;
        }
      });
    }
    std::thread progress([&] {
      auto last = Clock::now();
      uint64_t last_done = 0;
      while (!finished.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        if (Clock::now() - last < std::chrono::seconds(5)) continue;
        const uint64_t d = done.load();
        std::printf("# cairn load: %llu / %llu docs, %.0f docs/s\n",
                    static_cast<unsigned long long>(d), static_cast<unsigned long long>(cfg.docs),
                    static_cast<double>(d - last_done) * 1000.0 / Ms(Clock::now() - last));
        std::fflush(stdout);
        last = Clock::now();
        last_done = d;
      }
    });
    for (auto& t : th) t.join();
    finished = true;
    progress.join();
    const double s = Ms(Clock::now() - t0) / 1000;
    std::printf("# cairn load: %llu docs in %.1f s (%.0f docs/s, %d client threads), %llu errors\n",
                static_cast<unsigned long long>(cfg.docs), s, static_cast<double>(cfg.docs) / s,
                cfg.loaders, static_cast<unsigned long long>(errors.load()));
    std::fflush(stdout);
    if (errors.load() != 0) return Fail("puts failed");
  }
  {
    const auto t0 = Clock::now();
    for (const char* path : {"customer.id", "total"}) {
      if (Status s = cairn->CreateIndex("orders", path); !s.ok()) return Fail(s.ToString());
    }
    auto last = Clock::now();
    while (true) {
      auto l = cairn->ListIndexes("orders");
      if (!l.ok()) return Fail(l.status().ToString());
      bool all = l->size() == 2;
      std::string line;
      for (const auto& ix : *l) {
        if (!ix.error.empty()) return Fail("index " + ix.path + ": " + ix.error);
        all = all && ix.ready;
        line += " " + ix.path + " " + std::to_string(ix.docs_indexed) + "/" +
                std::to_string(ix.docs_total) + " nodes " + std::to_string(ix.nodes_ready) + "/" +
                std::to_string(ix.nodes_total) + ";";
      }
      if (all) break;
      if (Clock::now() - last >= std::chrono::seconds(5)) {
        std::printf("# cairn indexes building:%s\n", line.c_str());
        std::fflush(stdout);
        last = Clock::now();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    std::printf("# cairn indexes customer.id, total ready in %.1f s\n",
                Ms(Clock::now() - t0) / 1000);
    std::fflush(stdout);
  }

  // ---- PostgreSQL
  PgServer pg;
  PGconn* pc = nullptr;
  std::unique_ptr<PGconn, void (*)(PGconn*)> pc_owner(nullptr, PQfinish);
  int64_t pg_rel_bytes = 0;
  if (!cfg.chunkserver_set.empty()) {
    std::printf("# chunk servers:");
    for (const auto& kv : cfg.chunkserver_set) std::printf(" --set %s", kv.c_str());
    std::printf("\n");
  }
  if (cfg.pg) {
    std::string err;
    if (!pg.Start(&err)) return Fail(err);
    pc = PQconnectdb(pg.ConnInfo().c_str());
    pc_owner.reset(pc);
    if (PQstatus(pc) != CONNECTION_OK) return Fail(PQerrorMessage(pc));
    if (!PgOk(pc, "CREATE TABLE orders (id text PRIMARY KEY, doc jsonb NOT NULL)")) return 1;
    const auto t0 = Clock::now();
    PGresult* r = PQexec(pc, "COPY orders (id, doc) FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN) return Fail(PQerrorMessage(pc));
    PQclear(r);
    std::string buf;
    for (uint64_t i = 0; i < cfg.docs; ++i) {
      buf += OrderId(i);
      buf += '\t';
      for (char ch : OrderJson(cfg.seed, i)) {
        if (ch == '\\') buf += '\\';
        buf += ch;
      }
      buf += '\n';
      if (buf.size() > (1 << 20) || i + 1 == cfg.docs) {
        if (PQputCopyData(pc, buf.data(), static_cast<int>(buf.size())) != 1) {
          return Fail(PQerrorMessage(pc));
        }
        buf.clear();
      }
    }
    if (PQputCopyEnd(pc, nullptr) != 1) return Fail(PQerrorMessage(pc));
    r = PQgetResult(pc);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) return Fail(PQerrorMessage(pc));
    PQclear(r);
    while ((r = PQgetResult(pc)) != nullptr) PQclear(r);
    const double copy_s = Ms(Clock::now() - t0) / 1000;
    const auto t1 = Clock::now();
    if (!PgOk(pc, "CREATE INDEX orders_customer ON orders ((doc->'customer'->>'id'))") ||
        !PgOk(pc, "CREATE INDEX orders_total ON orders (((doc->>'total')::numeric))") ||
        !PgOk(pc, "VACUUM ANALYZE orders")) {
      return 1;
    }
    const double index_s = Ms(Clock::now() - t1) / 1000;
    r = PQexec(pc,
               "SELECT pg_relation_size('orders') + "
               "coalesce(pg_relation_size((SELECT reltoastrelid FROM pg_class WHERE relname = "
               "'orders')), 0)");
    if (PQresultStatus(r) == PGRES_TUPLES_OK) pg_rel_bytes = std::stoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    std::printf(
        "# postgres: COPY %.1f s (%.0f docs/s), expression indexes + VACUUM ANALYZE %.1f s, "
        "table+toast %.1f MB\n",
        copy_s, static_cast<double>(cfg.docs) / copy_s, index_s,
        static_cast<double>(pg_rel_bytes) / 1e6);
    std::fflush(stdout);
    if (!PgOk(pc, "SET max_parallel_workers_per_gather = 0") || !PgOk(pc, "SET jit = off")) {
      return 1;
    }
    const char* q1 = "SELECT id, doc FROM orders WHERE doc->'customer'->>'id' = $1";
    const char* q2 =
        "SELECT id, doc FROM orders WHERE (doc->>'total')::numeric >= $1 AND "
        "(doc->>'total')::numeric < $2 ORDER BY (doc->>'total')::numeric DESC, id LIMIT 20";
    const char* q3 =
        "SELECT count(*) FROM orders WHERE doc->>'status' = 'refunded' AND "
        "doc->'customer'->>'country' = 'FR'";
    for (auto [name, sql, n] : {std::tuple{"q1", q1, 1}, {"q2", q2, 2}, {"q3", q3, 0}}) {
      r = PQprepare(pc, name, sql, n, nullptr);
      if (PQresultStatus(r) != PGRES_COMMAND_OK) return Fail(PQerrorMessage(pc));
      PQclear(r);
    }
  }

  auto pg_exec = [&](const char* stmt, std::vector<std::string> params) -> PGresult* {
    std::vector<const char*> v;
    for (const auto& p : params) v.push_back(p.c_str());
    PGresult* r =
        PQexecPrepared(pc, stmt, static_cast<int>(v.size()), v.data(), nullptr, nullptr, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      std::fprintf(stderr, "postgres %s: %s\n", stmt, PQerrorMessage(pc));
      PQclear(r);
      return nullptr;
    }
    return r;
  };

  std::mt19937_64 rng(cfg.seed);
  uint64_t mismatches = 0;

  // ---- Q1: indexed equality, ~100 rows
  std::printf("# Q1: indexed equality\n");
  std::fflush(stdout);
  std::vector<double> c1, p1, c1_alone, c2_alone;
  client::QueryOptions alone;
  alone.batch_by_node = false;
  uint64_t q1_rows = 0;
  std::string q1_index;
  for (int run = -10; run < cfg.runs; ++run) {  // 10 warm-up runs
    const std::string cust = CustomerId(rng() % kCustomers);
    const bool cairn_first = (run & 1) == 0;
    size_t crow = 0, prow = 0;
    for (int step = 0; step < 2; ++step) {
      if ((step == 0) == cairn_first) {
        const auto t0 = Clock::now();
        auto r = cairn->Query("orders", "customer.id == \"" + cust + "\"");
        const double ms = Ms(Clock::now() - t0);
        if (!r.ok()) return Fail("Q1: " + r.status().ToString());
        crow = r->rows.size();
        q1_index = r->stats.index_used;
        if (run >= 0) c1.push_back(ms);
      } else if (pc != nullptr) {
        const auto t0 = Clock::now();
        PGresult* r = pg_exec("q1", {cust});
        const double ms = Ms(Clock::now() - t0);
        if (r == nullptr) return 1;
        prow = static_cast<size_t>(PQntuples(r));
        PQclear(r);
        if (run >= 0) p1.push_back(ms);
      }
    }
    if (cfg.compare_batch) {
      // Another customer: the one above is in the caches now.
      const std::string other = CustomerId(rng() % kCustomers);
      const auto t0 = Clock::now();
      auto r = cairn->Query("orders", "customer.id == \"" + other + "\"", alone);
      const double ms = Ms(Clock::now() - t0);
      if (!r.ok()) return Fail("Q1 one by one: " + r.status().ToString());
      if (run >= 0) c1_alone.push_back(ms);
    }
    if (run >= 0) q1_rows += crow;
    if (pc != nullptr && crow != prow) {
      ++mismatches;
      std::fprintf(stderr, "Q1 %s: cairn %zu rows, postgres %zu\n", cust.c_str(), crow, prow);
    }
  }

  // ---- Q2: range + sort + limit 20 over ~3% of the orders
  std::printf("# Q2: range, sort, limit 20\n");
  std::fflush(stdout);
  std::vector<double> c2, p2;
  std::string q2_index;
  uint64_t q2_read = 0;  // documents the chunk servers read (the range holds ~3% of N)
  for (int run = -10; run < cfg.runs; ++run) {
    const size_t n = sorted_totals.size();
    const size_t lo = static_cast<size_t>(
        static_cast<double>(n) * (0.05 + 0.85 * static_cast<double>(rng() % 1000) / 1000.0));
    const size_t hi = std::min(n - 1, lo + n * 3 / 100);
    const uint64_t a = sorted_totals[lo] / 100, b = (sorted_totals[hi] + 99) / 100;  // whole euros
    const std::string as = std::to_string(a), bs = std::to_string(b);
    const bool cairn_first = (run & 1) == 0;
    std::vector<std::string> cids, pids;
    for (int step = 0; step < 2; ++step) {
      if ((step == 0) == cairn_first) {
        const auto t0 = Clock::now();
        auto r = cairn->Query("orders",
                              "total >= " + as + " && total < " + bs + " ?sort=-total&limit=20");
        const double ms = Ms(Clock::now() - t0);
        if (!r.ok()) return Fail("Q2: " + r.status().ToString());
        for (const auto& row : r->rows) cids.push_back(row.id);
        q2_index = r->stats.index_used;
        if (run >= 0) {
          c2.push_back(ms);
          q2_read += r->stats.docs_scanned;
        }
      } else if (pc != nullptr) {
        const auto t0 = Clock::now();
        PGresult* r = pg_exec("q2", {as, bs});
        const double ms = Ms(Clock::now() - t0);
        if (r == nullptr) return 1;
        for (int k = 0; k < PQntuples(r); ++k) pids.emplace_back(PQgetvalue(r, k, 0));
        PQclear(r);
        if (run >= 0) p2.push_back(ms);
      }
    }
    if (cfg.compare_batch) {
      // Another range of the same width: the one above is in the caches now.
      const size_t lo2 = static_cast<size_t>(
          static_cast<double>(n) * (0.05 + 0.85 * static_cast<double>(rng() % 1000) / 1000.0));
      const size_t hi2 = std::min(n - 1, lo2 + n * 3 / 100);
      const std::string as2 = std::to_string(sorted_totals[lo2] / 100);
      const std::string bs2 = std::to_string((sorted_totals[hi2] + 99) / 100);
      const auto t0 = Clock::now();
      auto r = cairn->Query(
          "orders", "total >= " + as2 + " && total < " + bs2 + " ?sort=-total&limit=20", alone);
      const double ms = Ms(Clock::now() - t0);
      if (!r.ok()) return Fail("Q2 one by one: " + r.status().ToString());
      if (run >= 0) c2_alone.push_back(ms);
    }
    if (pc != nullptr && cids != pids) {
      ++mismatches;
      std::fprintf(stderr, "Q2 [%s, %s): ids differ (cairn %zu rows, postgres %zu)\n", as.c_str(),
                   bs.c_str(), cids.size(), pids.size());
    }
  }

  // ---- Q3: full scan with a filter on un-indexed fields
  std::printf("# Q3: full scan\n");
  std::fflush(stdout);
  std::vector<double> c3_ms, c3_mbs, p3_ms, p3_mbs;
  uint64_t c3_bytes = 0, c3_docs = 0;
  size_t q3_count = 0;
  for (int run = -1; run < cfg.scan_runs; ++run) {  // one warm-up run
    const bool cairn_first = (run & 1) == 0;
    size_t ccount = 0, pcount = 0;
    for (int step = 0; step < 2; ++step) {
      if ((step == 0) == cairn_first) {
        const auto t0 = Clock::now();
        auto r = cairn->Query(
            "orders", "status == \"refunded\" && customer.country == \"FR\" ?fields=status");
        const double ms = Ms(Clock::now() - t0);
        if (!r.ok()) return Fail("Q3: " + r.status().ToString());
        if (!r->stats.index_used.empty()) return Fail("Q3 used an index: " + r->stats.index_used);
        ccount = r->rows.size();
        c3_bytes = r->stats.bytes_scanned;
        c3_docs = r->stats.docs_scanned;
        if (run >= 0) {
          c3_ms.push_back(ms);
          c3_mbs.push_back(static_cast<double>(c3_bytes) / 1e6 / (ms / 1000));
        }
      } else if (pc != nullptr) {
        const auto t0 = Clock::now();
        PGresult* r = pg_exec("q3", {});
        const double ms = Ms(Clock::now() - t0);
        if (r == nullptr) return 1;
        pcount = std::stoul(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (run >= 0) {
          p3_ms.push_back(ms);
          p3_mbs.push_back(static_cast<double>(pg_rel_bytes) / 1e6 / (ms / 1000));
        }
      }
    }
    q3_count = ccount;
    if (pc != nullptr && ccount != pcount) {
      ++mismatches;
      std::fprintf(stderr, "Q3: cairn %zu rows, postgres %zu\n", ccount, pcount);
    }
  }

  if (Status s = cluster->CheckAllRunning(); !s.ok()) return Fail(s.ToString());

  // ---- report
  const Lat cl1 = Summarize(c1), pl1 = Summarize(p1), cl2 = Summarize(c2), pl2 = Summarize(p2);
  const double cms3 = Median(c3_ms), cmb3 = Median(c3_mbs), pms3 = Median(p3_ms),
               pmb3 = Median(p3_mbs);
  const double ccore3 = cmb3 / cfg.cluster_cores;
  auto ratio = [](double num, double den) -> std::string {
    if (num <= 0 || den <= 0) return "-";
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", num / den);
    return b;
  };
  auto f = [](double v, const char* fmt) {
    char b[64];
    std::snprintf(b, sizeof b, fmt, v);
    return std::string(b);
  };
  const bool have_pg = pc != nullptr;
  std::printf(
      "\n%llu orders (%.0f bytes each on average), %d runs per indexed query, %d scan runs; "
      "Cairn: 3 chunk servers, %u partitions, %d cores on the machine; PostgreSQL 15 with "
      "one core per query (max_parallel_workers_per_gather = 0)\n",
      static_cast<unsigned long long>(cfg.docs),
      static_cast<double>(data_bytes) / static_cast<double>(cfg.docs), cfg.runs, cfg.scan_runs,
      cfg.partitions, cfg.cluster_cores);
  std::printf("Ratios: latency PG/Cairn, throughput Cairn/PG: > 1 means Cairn wins.\n\n");
  std::printf("| query | figure | Cairn | PostgreSQL | ratio |\n|---|---|---|---|---|\n");
  auto row = [&](const char* q, const char* fig, double c, double p, bool lat, const char* fmt) {
    std::printf("| %s | %s | %s | %s | %s |\n", q, fig, f(c, fmt).c_str(),
                have_pg ? f(p, fmt).c_str() : "-",
                have_pg ? (lat ? ratio(p, c) : ratio(c, p)).c_str() : "-");
  };
  char q1name[96], q2name[96];
  std::snprintf(q1name, sizeof q1name, "Q1 customer.id == (%.0f rows avg)",
                c1.empty() ? 0.0 : static_cast<double>(q1_rows) / static_cast<double>(c1.size()));
  std::snprintf(q2name, sizeof q2name, "Q2 total range (~3%%), sort, limit 20 (%.0f docs read avg)",
                c2.empty() ? 0.0 : static_cast<double>(q2_read) / static_cast<double>(c2.size()));
  row(q1name, "p50 ms", cl1.p50, pl1.p50, true, "%.2f");
  row(q1name, "p99 ms", cl1.p99, pl1.p99, true, "%.2f");
  row(q1name, "ops/s (1 client)", cl1.ops, pl1.ops, false, "%.0f");
  row(q2name, "p50 ms", cl2.p50, pl2.p50, true, "%.2f");
  row(q2name, "p99 ms", cl2.p99, pl2.p99, true, "%.2f");
  row(q2name, "ops/s (1 client)", cl2.ops, pl2.ops, false, "%.0f");
  if (cfg.compare_batch) {
    const Lat a1 = Summarize(c1_alone), a2 = Summarize(c2_alone);
    std::printf("| Q1, one call per partition | p50 / p99 ms | %s / %s | | |\n",
                f(a1.p50, "%.2f").c_str(), f(a1.p99, "%.2f").c_str());
    std::printf("| Q2, one call per partition | p50 / p99 ms | %s / %s | | |\n",
                f(a2.p50, "%.2f").c_str(), f(a2.p99, "%.2f").c_str());
  }
  char q3name[96];
  std::snprintf(q3name, sizeof q3name, "Q3 scan, status && country (%zu rows)", q3_count);
  row(q3name, "time ms (median)", cms3, pms3, true, "%.0f");
  row(q3name, "MB/s scanned", cmb3, pmb3, false, "%.0f");
  std::printf("| %s | MB/s per core | %s (/%d cores) | %s (1 core) | %s |\n", q3name,
              f(ccore3, "%.0f").c_str(), cfg.cluster_cores, have_pg ? f(pmb3, "%.0f").c_str() : "-",
              have_pg ? ratio(ccore3, pmb3).c_str() : "-");
  std::printf(
      "\nCairn Q3 scanned %llu docs, %.1f MB (QueryStats.bytes_scanned; the JSON bodies); "
      "PostgreSQL's size is pg_relation_size(table + toast) = %.1f MB. Indexes used: Q1 '%s', "
      "Q2 '%s'. Mismatches between the systems: %llu.\n",
      static_cast<unsigned long long>(c3_docs), static_cast<double>(c3_bytes) / 1e6,
      static_cast<double>(pg_rel_bytes) / 1e6, q1_index.c_str(), q2_index.c_str(),
      static_cast<unsigned long long>(mismatches));
  if (have_pg) {
    std::printf("Targets: Q1 p50 %s, Q2 p50 %s (PG/Cairn >= 1); Q3 per core %s (Cairn/PG >= 0.5)\n",
                pl1.p50 >= cl1.p50 ? "met" : "NOT met", pl2.p50 >= cl2.p50 ? "met" : "NOT met",
                ccore3 * 2 >= pmb3 ? "met" : "NOT met");
  }
  std::fflush(stdout);
  pc_owner.reset();
  pg.Stop();
  return mismatches == 0 ? 0 : 2;
}

}  // namespace
}  // namespace cairn::bench

int main(int argc, char** argv) { return cairn::bench::Main(argc, argv); }
