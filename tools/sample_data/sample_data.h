// The sample e-commerce data set of the demo: customers, products and orders
// as JSON documents. Pure functions of (seed, index): the same seed gives the
// same bytes whatever the number of workers or the order of generation.
//
// Orders reference existing customers ("customer": "c000042") and products
// (line items with "product", "quantity", "unit_price"); an order's "total"
// is the sum of its line items plus shipping, its "country" the customer's.
#pragma once

#include <cstdint>
#include <string>

namespace cairn::sample {

struct DataSetSize {
  uint64_t customers = 2000;
  uint64_t products = 500;
  uint64_t orders = 8000;
  uint64_t total() const { return customers + products + orders; }
};

// Document ids: "c000042", "p00042", "o0000042" (zero-padded, so that the
// bytewise order of a listing is the numeric order).
std::string CustomerId(uint64_t i);
std::string ProductId(uint64_t i);
std::string OrderId(uint64_t i);

// One JSON object per document (UTF-8, no trailing newline).
std::string CustomerJson(uint64_t seed, uint64_t i);
std::string ProductJson(uint64_t seed, uint64_t i);
// Needs the data set's sizes to pick references that exist.
std::string OrderJson(uint64_t seed, uint64_t i, const DataSetSize& size);

}  // namespace cairn::sample
