#include "tools/sample_data/sample_data.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace cairn::sample {
namespace {

using json = nlohmann::ordered_json;

// SplitMix64 stream for one document.
class Rng {
 public:
  Rng(uint64_t seed, uint64_t kind, uint64_t index)
      : state_(seed * 0x9E3779B97F4A7C15ull ^ (kind << 56) ^ index) {
    Next();
  }
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t Below(uint64_t n) { return Next() % n; }
  template <size_t N>
  const char* Pick(const std::array<const char*, N>& a) {
    return a[Below(N)];
  }

 private:
  uint64_t state_;
};

constexpr std::array<const char*, 24> kFirst = {
    "Alice", "Bruno", "Chloe", "David", "Emma", "Farid", "Giulia", "Hugo",
    "Ines",  "Jonas", "Keiko", "Lucas", "Maya", "Noah",  "Olga",   "Pablo",
    "Quinn", "Rosa",  "Sven",  "Tariq", "Ulla", "Vera",  "Wei",    "Zoe"};
constexpr std::array<const char*, 20> kLast = {
    "Martin", "Rossi", "Muller", "Garcia",  "Smith", "Nowak", "Dubois", "Silva", "Jansen", "Berg",
    "Tanaka", "Kowal", "Moreau", "Fischer", "Costa", "Novak", "Larsen", "Weber", "Lopez",  "Young"};
struct Place {
  const char* country;
  const char* city;
  const char* currency;
};
constexpr std::array<Place, 12> kPlaces = {{{"FR", "Lyon", "EUR"},
                                            {"FR", "Paris", "EUR"},
                                            {"DE", "Berlin", "EUR"},
                                            {"DE", "Hamburg", "EUR"},
                                            {"IT", "Milano", "EUR"},
                                            {"ES", "Sevilla", "EUR"},
                                            {"NL", "Utrecht", "EUR"},
                                            {"GB", "Leeds", "GBP"},
                                            {"US", "Boston", "USD"},
                                            {"US", "Denver", "USD"},
                                            {"JP", "Osaka", "JPY"},
                                            {"CA",
                                             "Montr\xC3\xA9"
                                             "al",
                                             "CAD"}}};
constexpr std::array<const char*, 8> kCategories = {"books",  "garden", "kitchen", "toys",
                                                    "sports", "audio",  "office",  "outdoor"};
constexpr std::array<const char*, 12> kAdjectives = {
    "Blue", "Compact", "Deluxe", "Eco",   "Folding",   "Heavy-duty",
    "Mini", "Quiet",   "Retro",  "Smart", "Solid oak", "Travel"};
constexpr std::array<const char*, 12> kNouns = {"Lamp",   "Kettle", "Backpack", "Speaker",
                                                "Chair",  "Puzzle", "Notebook", "Tent",
                                                "Racket", "Teapot", "Planter",  "Headphones"};
constexpr std::array<const char*, 5> kTiers = {"standard", "standard", "standard", "silver",
                                               "gold"};
constexpr std::array<const char*, 7> kStatuses = {"pending", "paid",      "paid",     "shipped",
                                                  "shipped", "delivered", "cancelled"};

// 2023-01-01T00:00:00Z plus up to ~2 years, as ISO 8601.
std::string Timestamp(Rng& r) {
  const int64_t t = 1672531200 + static_cast<int64_t>(r.Below(2u * 365 * 86400));
  const time_t tt = static_cast<time_t>(t);
  struct tm tm_utc {};
  gmtime_r(&tt, &tm_utc);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm_utc);
  return buf;
}

double Money(uint64_t cents) { return static_cast<double>(cents) / 100.0; }

std::string Padded(char prefix, uint64_t i, int width) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%c%0*llu", prefix, width, static_cast<unsigned long long>(i));
  return buf;
}

uint64_t ProductPriceCents(uint64_t seed, uint64_t i) {
  Rng r(seed, 2, i);
  r.Next();  // the name's words come first in ProductJson
  r.Next();
  return 199 + r.Below(30000);
}

}  // namespace

std::string CustomerId(uint64_t i) { return Padded('c', i, 6); }
std::string ProductId(uint64_t i) { return Padded('p', i, 5); }
std::string OrderId(uint64_t i) { return Padded('o', i, 7); }

std::string CustomerJson(uint64_t seed, uint64_t i) {
  Rng r(seed, 1, i);
  const std::string first = r.Pick(kFirst);
  const std::string last = r.Pick(kLast);
  const Place& place = kPlaces[r.Below(kPlaces.size())];
  std::string email = first + "." + last + std::to_string(i) + "@example.com";
  for (char& ch : email) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  json j;
  j["id"] = CustomerId(i);
  j["name"] = first + " " + last;
  j["email"] = email;
  j["country"] = place.country;
  j["city"] = place.city;
  j["tier"] = r.Pick(kTiers);
  j["created"] = Timestamp(r);
  j["marketing_opt_in"] = r.Below(3) == 0;
  return j.dump();
}

std::string ProductJson(uint64_t seed, uint64_t i) {
  Rng r(seed, 2, i);
  const std::string adjective = kAdjectives[r.Below(kAdjectives.size())];
  const std::string noun = kNouns[r.Below(kNouns.size())];
  const uint64_t price = 199 + r.Below(30000);
  json j;
  j["id"] = ProductId(i);
  j["name"] = adjective + " " + noun;
  j["category"] = r.Pick(kCategories);
  j["price"] = Money(price);
  j["currency"] = "EUR";
  j["stock"] = r.Below(500);
  j["rating"] = static_cast<double>(10 + r.Below(41)) / 10.0;
  j["created"] = Timestamp(r);
  return j.dump();
}

std::string OrderJson(uint64_t seed, uint64_t i, const DataSetSize& size) {
  Rng r(seed, 3, i);
  const uint64_t customer = size.customers > 0 ? r.Below(size.customers) : 0;
  // The customer's country, recomputed from the customer's own stream.
  Rng cr(seed, 1, customer);
  cr.Next();
  cr.Next();
  const Place& place = kPlaces[cr.Below(kPlaces.size())];
  json j;
  j["id"] = OrderId(i);
  j["customer"] = CustomerId(customer);
  j["country"] = place.country;
  j["status"] = r.Pick(kStatuses);
  j["created"] = Timestamp(r);
  json items = json::array();
  uint64_t total_cents = 0;
  const uint64_t lines = size.products > 0 ? 1 + r.Below(5) : 0;
  for (uint64_t l = 0; l < lines; ++l) {
    const uint64_t product = r.Below(size.products);
    const uint64_t quantity = 1 + r.Below(4);
    const uint64_t unit = ProductPriceCents(seed, product);
    total_cents += unit * quantity;
    items.push_back(
        {{"product", ProductId(product)}, {"quantity", quantity}, {"unit_price", Money(unit)}});
  }
  const uint64_t shipping = total_cents >= 5000 ? 0 : 490;
  total_cents += shipping;
  j["items"] = std::move(items);
  j["shipping"] = Money(shipping);
  j["total"] = Money(total_cents);
  j["currency"] = "EUR";
  j["payment"] = r.Below(4) == 0 ? "paypal" : "card";
  return j.dump();
}

}  // namespace cairn::sample
