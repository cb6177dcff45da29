// The demo's data set generator (tools/sample_data): deterministic from the
// seed, valid JSON, orders that reference existing customers and products
// and whose total adds up.
#include "tools/sample_data/sample_data.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

namespace cairn::sample {
namespace {

TEST(SampleData, DeterministicFromTheSeed) {
  const DataSetSize size;
  EXPECT_EQ(size.total(), 10500u);
  for (uint64_t i : {0u, 1u, 777u}) {
    EXPECT_EQ(CustomerJson(1, i), CustomerJson(1, i));
    EXPECT_EQ(ProductJson(1, i), ProductJson(1, i));
    EXPECT_EQ(OrderJson(1, i, size), OrderJson(1, i, size));
  }
  EXPECT_NE(OrderJson(1, 5, size), OrderJson(2, 5, size));
  EXPECT_NE(CustomerJson(1, 5), CustomerJson(1, 6));
  EXPECT_EQ(CustomerId(42), "c000042");
  EXPECT_EQ(ProductId(42), "p00042");
  EXPECT_EQ(OrderId(42), "o0000042");
}

TEST(SampleData, OrdersReferenceCustomersAndProductsAndAddUp) {
  DataSetSize size;
  size.customers = 50;
  size.products = 20;
  size.orders = 500;
  std::set<std::string> statuses;
  for (uint64_t i = 0; i < size.orders; ++i) {
    const auto o = nlohmann::json::parse(OrderJson(9, i, size));
    EXPECT_EQ(o["id"], OrderId(i));
    const std::string customer = o["customer"];
    ASSERT_EQ(customer.size(), 7u);
    EXPECT_LT(std::stoull(customer.substr(1)), size.customers);
    const auto c = nlohmann::json::parse(CustomerJson(9, std::stoull(customer.substr(1))));
    EXPECT_EQ(o["country"], c["country"]) << "order " << i;
    double sum = o["shipping"].get<double>();
    ASSERT_FALSE(o["items"].empty());
    for (const auto& item : o["items"]) {
      const std::string product = item["product"];
      const uint64_t p = std::stoull(product.substr(1));
      ASSERT_LT(p, size.products);
      const auto pj = nlohmann::json::parse(ProductJson(9, p));
      EXPECT_DOUBLE_EQ(item["unit_price"].get<double>(), pj["price"].get<double>());
      sum += item["unit_price"].get<double>() * item["quantity"].get<double>();
    }
    EXPECT_NEAR(o["total"].get<double>(), sum, 0.005) << "order " << i;
    statuses.insert(o["status"].get<std::string>());
  }
  EXPECT_GE(statuses.size(), 4u);
}

}  // namespace
}  // namespace cairn::sample
