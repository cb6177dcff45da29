// The document-log format (doc_log_format.h): round trips, and that damage
// or a record read at the wrong offset is Corruption, never a wrong value.
#include <gtest/gtest.h>

#include <cstring>

#include "chunkserver/block_cache.h"
#include "chunkserver/block_codec.h"
#include "chunkserver/doc_record.h"
#include "common/random.h"

namespace cairn::chunkserver {
namespace {

MutationRecord SamplePut() {
  MutationRecord m;
  m.type = RecordType::kPut;
  m.partition = PartitionId(7);
  m.lsn = Lsn(42);
  m.epoch = Epoch(3);
  m.request_id = RequestId{1, 2, 3};
  m.version = 42;
  m.collection = "orders";
  m.id = std::string("weird id \x01\xff", 12);
  m.meta.size = 5000;
  m.meta.mtime_ns = -5;
  m.meta.ctime_ns = 1700000000000000000;
  m.meta.mode = 0100644;
  m.meta.uid = 1000;
  m.meta.gid = 1001;
  m.meta.xattrs["user.a"] = "";
  m.meta.xattrs["user.b"] = std::string(300, '\0');
  m.body_hash = 0xDEADBEEF;
  m.blocks.push_back({4096, 100, 4000, 77, BlockCodec::kZstd});
  m.blocks.push_back({9000, 1000, 1000, 78, BlockCodec::kRaw});
  return m;
}

void ExpectSame(const MutationRecord& a, const MutationRecord& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.partition, b.partition);
  EXPECT_EQ(a.lsn, b.lsn);
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.request_id, b.request_id);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.collection, b.collection);
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.to_id, b.to_id);
  EXPECT_EQ(a.meta, b.meta);
  EXPECT_EQ(a.body_hash, b.body_hash);
  EXPECT_EQ(a.blocks, b.blocks);
}

TEST(DocRecordTest, MutationRoundTrips) {
  MutationRecord put = SamplePut();
  auto back = DecodeMutation(RecordType::kPut, EncodeMutation(put), 0);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSame(put, *back);

  MutationRecord ren = put;
  ren.type = RecordType::kRename;
  ren.to_id = "new name";
  ren.meta = {};
  ren.blocks.clear();
  ren.body_hash = 0;
  back = DecodeMutation(RecordType::kRename, EncodeMutation(ren), 0);
  ASSERT_TRUE(back.ok());
  ExpectSame(ren, *back);

  MutationRecord del = ren;
  del.type = RecordType::kDelete;
  del.to_id.clear();
  back = DecodeMutation(RecordType::kDelete, EncodeMutation(del), 0);
  ASSERT_TRUE(back.ok());
  ExpectSame(del, *back);
}

TEST(DocRecordTest, TruncatedOrExtendedMutationIsCorruption) {
  std::vector<std::byte> enc = EncodeMutation(SamplePut());
  for (size_t cut = 0; cut < enc.size(); cut += 7) {
    auto r = DecodeMutation(RecordType::kPut, std::span(enc).first(cut), 0);
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << cut;
  }
  enc.push_back(std::byte{0});
  EXPECT_EQ(DecodeMutation(RecordType::kPut, enc, 0).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeMutation(RecordType::kBlock, enc, 0).status().code(), StatusCode::kCorruption);
}

TEST(DocRecordTest, HeaderIsBoundToItsOffset) {
  std::vector<std::byte> payload = EncodeMutation(SamplePut());
  std::vector<std::byte> rec = FrameRecord(RecordType::kPut, payload);
  SealRecord(rec, 123456);
  auto h = DecodeRecordHeader(rec, 123456);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->type, RecordType::kPut);
  EXPECT_EQ(h->record_len(), rec.size());
  EXPECT_TRUE(VerifyPayload(*h, std::span(rec).subspan(kRecordHeaderBytes), 123456).ok());
  // The same bytes read at another offset are not a record.
  EXPECT_EQ(DecodeRecordHeader(rec, 123457).status().code(), StatusCode::kCorruption);
  // Every single-bit flip of the header is caught; payload flips too.
  for (size_t bit = 0; bit < rec.size() * 8; bit += (bit < 256 ? 1 : 97)) {
    std::vector<std::byte> bad = rec;
    bad[bit / 8] ^= std::byte{static_cast<unsigned char>(1u << (bit % 8))};
    auto bh = DecodeRecordHeader(bad, 123456);
    if (!bh.ok()) continue;
    EXPECT_GE(bit, kRecordHeaderBytes * 8u);
    EXPECT_FALSE(VerifyPayload(*bh, std::span(bad).subspan(kRecordHeaderBytes), 123456).ok())
        << "bit " << bit;
  }
}

TEST(DocRecordTest, BlocksCompressOrStayRaw) {
  std::vector<std::byte> text(100000);
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<std::byte>("abcabcabd"[i % 9]);
  std::vector<std::byte> noise(100000);
  Random rng(1);
  for (auto& b : noise) b = static_cast<std::byte>(rng.Next() & 0xFF);
  for (const auto* raw : {&text, &noise}) {
    BlockRef ref;
    std::vector<std::byte> rec = EncodeBlockRecord(*raw, 3, &ref);
    ref.offset = 8192;
    SealRecord(rec, ref.offset);
    EXPECT_EQ(ref.codec, raw == &text ? BlockCodec::kZstd : BlockCodec::kRaw);
    EXPECT_EQ(rec.size(), ref.record_len());
    EXPECT_EQ(ref.raw_len, raw->size());
    auto back = DecodeBlockRecord(rec, ref);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_TRUE(*back == *raw);
    // A damaged stored byte, or a reference with the wrong hash: Corruption.
    std::vector<std::byte> bad = rec;
    bad[rec.size() - 1] ^= std::byte{1};
    EXPECT_EQ(DecodeBlockRecord(bad, ref).status().code(), StatusCode::kCorruption);
    BlockRef wrong = ref;
    wrong.hash ^= 1;
    EXPECT_EQ(DecodeBlockRecord(rec, wrong).status().code(), StatusCode::kCorruption);
  }
}

// A block that compresses by less than an eighth is stored raw (small reads
// of it then skip the whole-block decompression); one that saves more is
// compressed.
TEST(DocRecordTest, BarelyCompressibleBlocksStayRaw) {
  Random rng(2);
  for (const size_t zeros : {size_t{4000}, size_t{40000}}) {
    std::vector<std::byte> raw(100000);
    for (auto& b : raw) b = static_cast<std::byte>(rng.Next() & 0xFF);
    std::fill(raw.begin(), raw.begin() + static_cast<ptrdiff_t>(zeros), std::byte{0});
    BlockRef ref;
    std::vector<std::byte> rec = EncodeBlockRecord(raw, 3, &ref);
    EXPECT_EQ(ref.codec, zeros == 4000 ? BlockCodec::kRaw : BlockCodec::kZstd) << zeros;
    if (ref.codec == BlockCodec::kZstd) {
      EXPECT_LE(ref.stored_len, raw.size() - raw.size() / 8);
    }
    ref.offset = 8192;
    SealRecord(rec, ref.offset);
    auto back = DecodeBlockRecord(rec, ref);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_TRUE(*back == raw);
  }
}

// Large blocks are probed with a sample first: noise is stored raw, a block
// half of which compresses well is compressed, and both read back exactly.
TEST(DocRecordTest, LargeBlocksAreProbedBeforeCompressing) {
  Random rng(3);
  for (const size_t zeros : {size_t{0}, size_t{512} << 10, size_t{1} << 20}) {
    std::vector<std::byte> raw(1 << 20);
    for (auto& b : raw) b = static_cast<std::byte>(rng.Next() & 0xFF);
    std::fill(raw.begin(), raw.begin() + static_cast<ptrdiff_t>(zeros), std::byte{0});
    BlockRef ref;
    std::vector<std::byte> rec = EncodeBlockRecord(raw, 3, &ref);
    EXPECT_EQ(ref.codec, zeros == 0 ? BlockCodec::kRaw : BlockCodec::kZstd) << zeros;
    ref.offset = 4096;
    SealRecord(rec, ref.offset);
    auto back = DecodeBlockRecord(rec, ref);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_TRUE(*back == raw);
  }
}

TEST(DocRecordTest, RootRoundTripsAndRejectsDamage) {
  DocRoot r;
  r.has_checkpoint = true;
  r.checkpoint_seq = 9;
  r.end_offset = 1 << 30;
  r.end_len = 777;
  r.replay_from = 12345;
  r.skips = {{20000, 20100}, {30000, 31000}};
  std::vector<std::byte> enc = EncodeRoot(r);
  auto back = DecodeRoot(enc);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, r);
  for (size_t i = 0; i < enc.size(); ++i) {
    std::vector<std::byte> bad = enc;
    bad[i] ^= std::byte{0x10};
    EXPECT_EQ(DecodeRoot(bad).status().code(), StatusCode::kCorruption) << i;
  }
  r.skips.assign(kMaxRootSkips, {1, 2});
  EXPECT_LE(EncodeRoot(r).size(), 4096u);
}

TEST(DocRecordTest, CheckpointRecordsRoundTrip) {
  std::vector<std::byte> data(1000, std::byte{3});
  CheckpointPartHeader h{5, PartitionId(2), 3, true};
  std::vector<std::byte> enc = EncodeCheckpointPart(h, data);
  std::span<const std::byte> got;
  auto back = DecodeCheckpointPart(enc, 0, &got);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->seq, 5u);
  EXPECT_EQ(back->partition, PartitionId(2));
  EXPECT_EQ(back->index, 3u);
  EXPECT_TRUE(back->last);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), data.begin(), data.end()));

  CheckpointEnd e{5, 999, {{1, 2}, {3, 4}}};
  auto eb = DecodeCheckpointEnd(EncodeCheckpointEnd(e), 0);
  ASSERT_TRUE(eb.ok());
  EXPECT_EQ(eb->seq, 5u);
  EXPECT_EQ(eb->replay_from, 999u);
  EXPECT_EQ(eb->parts, e.parts);
}

TEST(BlockCacheTest, EvictsLeastRecentlyUsed) {
  BlockCache cache(300);
  auto block = [](size_t n) { return std::make_shared<const std::vector<std::byte>>(n); };
  cache.Put(1, block(100));
  cache.Put(2, block(100));
  cache.Put(3, block(100));
  EXPECT_NE(cache.Get(1), nullptr);  // 1 is now the most recent
  cache.Put(4, block(100));          // evicts 2
  EXPECT_EQ(cache.Get(2), nullptr);
  EXPECT_NE(cache.Get(1), nullptr);
  EXPECT_NE(cache.Get(3), nullptr);
  EXPECT_NE(cache.Get(4), nullptr);
  EXPECT_LE(cache.bytes(), 300u);
  cache.Put(5, block(301));  // larger than the cache: not kept
  EXPECT_EQ(cache.Get(5), nullptr);
  EXPECT_EQ(cache.hits(), 4u);
  EXPECT_EQ(cache.misses(), 2u);
  BlockCache off(0);
  off.Put(1, block(1));
  EXPECT_EQ(off.Get(1), nullptr);
}

}  // namespace
}  // namespace cairn::chunkserver
