// The writer model of the crash and replication tests: writers put (and
// now and then delete) documents of their own while chunk servers are killed,
// and remember for each document the last acknowledged body and the bodies of
// failed puts after it (applied or not, nobody knows). VerifyAll then checks
// that every document holds its acknowledged body or one of those, and that
// nothing acknowledged is missing.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "client/cairn.h"
#include "tests/integration/integration_util.h"

namespace cairn::test {

struct DocHistory {
  std::optional<std::string> acked;    // last acknowledged body
  std::vector<std::string> uncertain;  // failed puts after it
  bool deleted_acked = false;          // last acknowledged op was a delete
  int64_t acked_version = 0;
};

struct WriterState {
  std::map<std::string, DocHistory> docs;
  int acked = 0;
  int failed = 0;
};

// Writes documents w<w>-<k> of `collection` (k < docs_per_writer) until `stop`.
// Every `streamed_every`-th put is a streamed one of 2 or 3 blocks (1 MiB
// each, the last one partial); the others are small.
inline constexpr int kStreamedPutEvery = 97;  // the crash and kill tests' mix
inline void RunWriter(client::Client& c, const std::string& collection, int w, int docs_per_writer,
                      uint64_t seed, const std::atomic<bool>& stop, WriterState* state,
                      int streamed_every) {
  uint64_t rng = seed * 31 + static_cast<uint64_t>(w);
  uint64_t n = 0;
  while (!stop.load()) {
    const uint64_t r = SplitMix64(rng);
    const std::string id =
        "w" + std::to_string(w) + "-" + std::to_string(r % static_cast<uint64_t>(docs_per_writer));
    DocHistory& h = state->docs[id];
    ++n;
    if (r % 23 == 0 && h.acked.has_value()) {
      // A delete now and then.
      Status s = c.Delete(collection, id);
      if (s.ok() || s.code() == StatusCode::kNotFound) {
        h.acked.reset();
        h.uncertain.clear();
        h.deleted_acked = true;
        ++state->acked;
      } else {
        // Either applied or not: absent or the previous body.
        h.uncertain.push_back(*h.acked);
        h.deleted_acked = false;
        h.acked.reset();
        ++state->failed;
      }
      continue;
    }
    size_t size = static_cast<size_t>(SplitMix64(rng) % 6000);
    if (n % static_cast<uint64_t>(streamed_every) == 0) {
      size = (1u << 20) * (1 + (n / static_cast<uint64_t>(streamed_every)) % 2) + 4321;
    }
    std::string body = MakeBody(seed, (static_cast<uint64_t>(w) << 32) | n, size);
    auto put = c.Put(collection, id, body);
    if (put.ok()) {
      h.acked = std::move(body);
      h.acked_version = put->version;
      h.uncertain.clear();
      h.deleted_acked = false;
      ++state->acked;
    } else {
      h.uncertain.push_back(std::move(body));
      ++state->failed;
    }
  }
}

// Checks every document of every writer against its history.
inline void VerifyAll(client::Client& c, const std::string& collection,
                      const std::vector<WriterState>& states, const char* when) {
  int checked = 0;
  for (const WriterState& s : states) {
    for (const auto& [id, h] : s.docs) {
      std::string got;
      auto r = c.Get(collection, id, client::StringWriter(&got));
      ++checked;
      if (r.status().code() == StatusCode::kNotFound) {
        // Absent is right when no put was acknowledged since the last
        // acknowledged (or possibly applied) delete.
        EXPECT_FALSE(h.acked.has_value())
            << when << ": " << id << " acknowledged (" << (h.acked ? h.acked->size() : 0)
            << " bytes, version " << h.acked_version << ") but NotFound";
        continue;
      }
      if (!r.ok()) {
        ADD_FAILURE() << when << ": get " << id << ": " << r.status().ToString();
        continue;
      }
      const bool is_acked = h.acked.has_value() && got == *h.acked;
      const bool is_uncertain =
          std::find(h.uncertain.begin(), h.uncertain.end(), got) != h.uncertain.end();
      EXPECT_TRUE(is_acked || is_uncertain)
          << when << ": " << id << " has " << got.size() << " bytes (version " << r->version
          << ") matching neither the acknowledged body ("
          << (h.acked ? std::to_string(h.acked->size()) + " bytes, version " +
                            std::to_string(h.acked_version)
                      : std::string("none"))
          << ") nor any of " << h.uncertain.size() << " unacknowledged puts";
    }
  }
  EXPECT_GT(checked, 0);
}

}  // namespace cairn::test
