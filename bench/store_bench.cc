// store_bench: put and get throughput and latency of a local Cairn cluster
// (the real daemons, started on loopback by tests/integration's harness)
// and, in the same run, of Redis with `appendfsync always` (the reference for
// a durable single-node store) doing SET and GET of the same sizes with the
// same numbers of concurrent clients. See bench/README.md.
//
// Each cell: `clients` threads, each with its own connection (a libcairn
// Client / a Redis TCP connection), run for --seconds doing puts of distinct
// keys, then as long doing gets of the keys written. Both systems run side
// by side for the whole benchmark and each cell is measured on one, then on
// the other (alternating which goes first), --runs times. Reported: the
// medians of ops/s, MB/s, p50 and p99 latency, and Cairn/Redis ratios.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
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

struct Config {
  std::vector<size_t> sizes = {1024, 64 * 1024, 4 * 1024 * 1024};
  std::vector<int> clients = {1, 8, 64};
  double seconds = 3;
  int runs = 3;
  int chunk_servers = 3;
  bool redis = true;
  bool cairn = true;
};

struct Cell {
  double ops_per_s = 0;
  double mb_per_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  uint64_t errors = 0;
};

// One worker's operation: returns false on error. `i` counts the worker's
// operations; `worker` names it.
using Op = std::function<bool(int worker, uint64_t i)>;

Cell Run(int workers, double seconds, size_t bytes, const Op& op,
         const std::function<uint64_t(int)>& limit = nullptr) {
  std::vector<std::vector<double>> lat(static_cast<size_t>(workers));
  std::atomic<uint64_t> errors{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      auto& mine = lat[static_cast<size_t>(w)];
      const uint64_t max_ops = limit ? limit(w) : UINT64_MAX;
      for (uint64_t i = 0; !stop.load(std::memory_order_relaxed) && i < max_ops; ++i) {
        const auto t0 = Clock::now();
        if (!op(w, i)) ++errors;
        mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  Cell c;
  c.errors = errors.load();
  if (all.empty()) return c;
  c.ops_per_s = static_cast<double>(all.size()) / elapsed;
  c.mb_per_s = c.ops_per_s * static_cast<double>(bytes) / 1e6;
  c.p50_ms = all[all.size() / 2];
  c.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return c;
}

std::string Body(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    // Half-compressible, like JSON: letters from a small alphabet.
    s[i] = static_cast<char>('a' + (x % 16));
  }
  return s;
}

// ---------------------------------------------------------------- Redis

// A minimal RESP client: SET and GET over one TCP connection.
class RedisConn {
 public:
  explicit RedisConn(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
    int one = 1;
    if (fd_ >= 0) ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~RedisConn() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }

  bool Set(const std::string& key, const std::string& value) {
    std::string cmd = "*3\r\n$3\r\nSET\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n$" +
                      std::to_string(value.size()) + "\r\n";
    if (!WriteAll(cmd) || !WriteAll(value) || !WriteAll("\r\n")) return false;
    std::string line;
    return ReadLine(&line) && line == "+OK";
  }
  bool Get(const std::string& key, std::string* value) {
    std::string cmd = "*2\r\n$3\r\nGET\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n";
    if (!WriteAll(cmd)) return false;
    std::string line;
    if (!ReadLine(&line) || line.empty() || line[0] != '$') return false;
    long n = std::strtol(line.c_str() + 1, nullptr, 10);
    if (n < 0) return false;
    value->resize(static_cast<size_t>(n) + 2);
    return ReadExact(value->data(), value->size()) && (value->resize(static_cast<size_t>(n)), true);
  }

 private:
  bool WriteAll(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::write(fd_, s.data() + off, s.size() - off);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  bool Fill() {
    if (rpos_ == buf_.size()) {
      buf_.clear();
      rpos_ = 0;
    }
    char tmp[65536];
    ssize_t n = ::read(fd_, tmp, sizeof tmp);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  bool ReadLine(std::string* line) {
    while (true) {
      size_t nl = buf_.find("\r\n", rpos_);
      if (nl != std::string::npos) {
        line->assign(buf_, rpos_, nl - rpos_);
        rpos_ = nl + 2;
        return true;
      }
      if (!Fill()) return false;
    }
  }
  bool ReadExact(char* out, size_t n) {
    while (buf_.size() - rpos_ < n) {
      if (!Fill()) return false;
    }
    std::memcpy(out, buf_.data() + rpos_, n);
    rpos_ += n;
    return true;
  }

  int fd_ = -1;
  std::string buf_;
  size_t rpos_ = 0;
};

// redis-server as a child process, stopped by PID.
class RedisServer {
 public:
  static std::unique_ptr<RedisServer> Start(const std::string& dir, int port) {
    auto r = std::unique_ptr<RedisServer>(new RedisServer);
    std::filesystem::create_directories(dir);
    r->pid_ = ::fork();
    if (r->pid_ == 0) {
      const std::string p = std::to_string(port);
      ::execlp("redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--dir",
               dir.c_str(), "--appendonly", "yes", "--appendfsync", "always", "--save", "",
               "--daemonize", "no", "--logfile", (dir + "/redis.log").c_str(),
               static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      RedisConn c(port);
      if (c.ok()) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return nullptr;
  }
  ~RedisServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
  }

 private:
  pid_t pid_ = -1;
};

int FreePort() {
  auto p = test::PickFreePortOn("127.0.0.1");
  return p.ok() ? *p : 6390;
}

void Print(const char* system, const char* op, size_t bytes, int clients, const Cell& c) {
  std::printf("%-6s %-4s %8zu %4d %10.0f %9.1f %9.3f %9.3f %6llu\n", system, op, bytes, clients,
              c.ops_per_s, c.mb_per_s, c.p50_ms, c.p99_ms,
              static_cast<unsigned long long>(c.errors));
  std::fflush(stdout);
}

// The median of each figure over runs (ops/s, MB/s, p50, p99 separately).
Cell Median(std::vector<Cell> runs) {
  auto med = [&](auto field) {
    std::vector<double> v;
    for (const Cell& c : runs) v.push_back(c.*field);
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  Cell m;
  m.ops_per_s = med(&Cell::ops_per_s);
  m.mb_per_s = med(&Cell::mb_per_s);
  m.p50_ms = med(&Cell::p50_ms);
  m.p99_ms = med(&Cell::p99_ms);
  for (const Cell& c : runs) m.errors += c.errors;
  return m;
}

std::string Key(size_t bytes, int clients, int run, int w, uint64_t i) {
  return "k" + std::to_string(bytes) + "-" + std::to_string(clients) + "-" + std::to_string(run) +
         "-" + std::to_string(w) + "-" + std::to_string(i);
}

int Main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--seconds") {
      cfg.seconds = std::stod(next());
    } else if (a == "--runs") {
      cfg.runs = std::max(1, std::stoi(next()));
    } else if (a == "--quick") {
      cfg.seconds = 1;
      cfg.runs = 1;
      cfg.sizes = {1024, 64 * 1024};
      cfg.clients = {1, 8};
    } else if (a == "--no-redis") {
      cfg.redis = false;
    } else if (a == "--no-cairn") {
      cfg.cairn = false;
    } else if (a == "--clients") {
      cfg.clients.clear();
      std::string s = next();
      for (size_t p = 0; p < s.size();) {
        size_t c = s.find(',', p);
        cfg.clients.push_back(std::stoi(s.substr(p, c - p)));
        p = c == std::string::npos ? s.size() : c + 1;
      }
    } else {
      std::fprintf(stderr,
                   "usage: store_bench [--seconds S] [--runs R] [--quick] [--clients 1,8,64] "
                   "[--no-redis] [--no-cairn]\n");
      return 64;
    }
  }
  SetLogLevel(LogLevel::kWarn);

  // Both systems run for the whole benchmark; each cell is measured on one
  // and then on the other, alternating which goes first, so that a busy
  // machine weighs on both alike. Each figure is the median over --runs.
  std::unique_ptr<test::Cluster> cluster;
  if (cfg.cairn) {
    test::ClusterOptions co;
    co.chunk_servers = cfg.chunk_servers;
    co.partitions = 64;
    co.chunkserver_set = {"log_level=warn"};
    auto started = test::Cluster::Start(co);
    if (!started.ok()) {
      std::fprintf(stderr, "store_bench: cannot start the cluster: %s\n",
                   started.status().ToString().c_str());
      return 1;
    }
    cluster = std::move(*started);
    auto admin = cluster->NewClient();
    if (!admin.ok() || !(*admin)->CreateCollection("bench").ok()) {
      std::fprintf(stderr, "store_bench: cannot create the collection\n");
      return 1;
    }
  }
  const std::string redis_dir = "/var/tmp/cairn-store-bench-redis-" + std::to_string(::getpid());
  std::unique_ptr<RedisServer> redis;
  int redis_port = 0;
  if (cfg.redis) {
    if (std::system("command -v redis-server >/dev/null 2>&1") != 0) {
      std::printf("# redis-server is not installed (apt-get install redis-server): no reference\n");
    } else {
      redis_port = FreePort();
      redis = RedisServer::Start(redis_dir, redis_port);
      if (redis == nullptr) {
        std::fprintf(stderr, "store_bench: redis-server did not start (see %s)\n",
                     redis_dir.c_str());
        return 1;
      }
    }
  }

  std::printf("# %d run(s) of %.1f s per cell; figures are medians over runs\n", cfg.runs,
              cfg.seconds);
  std::printf("# system op bytes clients ops/s MB/s p50_ms p99_ms errors\n");
  std::map<std::tuple<std::string, size_t, int>, Cell> cairn_cells, redis_cells;
  for (size_t bytes : cfg.sizes) {
    const std::string body = Body(bytes, bytes);
    for (int n : cfg.clients) {
      std::vector<std::unique_ptr<client::Client>> clients;
      for (int w = 0; cluster != nullptr && w < n; ++w) {
        auto c = cluster->NewClient();
        if (!c.ok()) {
          std::fprintf(stderr, "store_bench: %s\n", c.status().ToString().c_str());
          return 1;
        }
        clients.push_back(std::move(*c));
      }
      std::vector<std::unique_ptr<RedisConn>> conns;
      for (int w = 0; redis != nullptr && w < n; ++w) {
        conns.push_back(std::make_unique<RedisConn>(redis_port));
      }
      std::vector<Cell> cput, cget, rput, rget;
      for (int run = 0; run < cfg.runs; ++run) {
        std::vector<std::atomic<uint64_t>> cw(static_cast<size_t>(n)), rw(static_cast<size_t>(n));
        auto cairn_put = [&] {
          cput.push_back(Run(n, cfg.seconds, bytes, [&](int w, uint64_t i) {
            bool ok =
                clients[static_cast<size_t>(w)]->Put("bench", Key(bytes, n, run, w, i), body).ok();
            if (ok) cw[static_cast<size_t>(w)] = i + 1;
            return ok;
          }));
        };
        auto cairn_get = [&] {
          cget.push_back(Run(n, cfg.seconds, bytes, [&](int w, uint64_t i) {
            const uint64_t have = cw[static_cast<size_t>(w)].load();
            if (have == 0) return false;
            std::string out;
            out.reserve(bytes);
            auto r = clients[static_cast<size_t>(w)]->Get("bench", Key(bytes, n, run, w, i % have),
                                                          client::StringWriter(&out));
            return r.ok() && out.size() == bytes;
          }));
        };
        auto redis_put = [&] {
          rput.push_back(Run(n, cfg.seconds, bytes, [&](int w, uint64_t i) {
            bool ok = conns[static_cast<size_t>(w)]->Set(Key(bytes, n, run, w, i), body);
            if (ok) rw[static_cast<size_t>(w)] = i + 1;
            return ok;
          }));
        };
        auto redis_get = [&] {
          rget.push_back(Run(n, cfg.seconds, bytes, [&](int w, uint64_t i) {
            const uint64_t have = rw[static_cast<size_t>(w)].load();
            if (have == 0) return false;
            std::string out;
            return conns[static_cast<size_t>(w)]->Get(Key(bytes, n, run, w, i % have), &out) &&
                   out.size() == bytes;
          }));
        };
        const bool cairn_first = run % 2 == 0;
        for (int step = 0; step < 2; ++step) {
          const bool cairn_now = (step == 0) == cairn_first;
          if (cairn_now && cluster != nullptr) cairn_put();
          if (!cairn_now && redis != nullptr) redis_put();
        }
        for (int step = 0; step < 2; ++step) {
          const bool cairn_now = (step == 0) == cairn_first;
          if (cairn_now && cluster != nullptr) cairn_get();
          if (!cairn_now && redis != nullptr) redis_get();
        }
      }
      if (cluster != nullptr) {
        cairn_cells[{"put", bytes, n}] = Median(cput);
        cairn_cells[{"get", bytes, n}] = Median(cget);
        Print("cairn", "put", bytes, n, cairn_cells[{"put", bytes, n}]);
        Print("cairn", "get", bytes, n, cairn_cells[{"get", bytes, n}]);
      }
      if (redis != nullptr) {
        redis_cells[{"put", bytes, n}] = Median(rput);
        redis_cells[{"get", bytes, n}] = Median(rget);
        Print("redis", "set", bytes, n, redis_cells[{"put", bytes, n}]);
        Print("redis", "get", bytes, n, redis_cells[{"get", bytes, n}]);
      }
    }
  }
  redis.reset();
  if (cfg.redis) {
    std::error_code ec;
    std::filesystem::remove_all(redis_dir, ec);
  }

  if (!cairn_cells.empty() && !redis_cells.empty()) {
    std::printf(
        "\n# ratio cairn/redis: op bytes clients ops p99(redis/cairn: >1 = cairn faster)\n");
    for (const auto& [k, c] : cairn_cells) {
      auto it = redis_cells.find(k);
      if (it == redis_cells.end() || it->second.ops_per_s == 0 || c.p99_ms == 0) continue;
      std::printf("ratio  %-4s %8zu %4d %6.2f %6.2f\n", std::get<0>(k).c_str(), std::get<1>(k),
                  std::get<2>(k), c.ops_per_s / it->second.ops_per_s, it->second.p99_ms / c.p99_ms);
    }
  }
  return 0;
}

}  // namespace
}  // namespace cairn::bench

int main(int argc, char** argv) { return cairn::bench::Main(argc, argv); }
