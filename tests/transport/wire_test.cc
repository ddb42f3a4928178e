// Hand-made request framing equals what the generated protobuf classes produce; framing checks;
// SHA-256. (Endpoint parsing: tests/common/endpoint_test.cc.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <grpcpp/impl/codegen/proto_utils.h>

#include "auth/sha256_internal.h"
#include "transport/wire_internal.h"
#include "zerobus.pb.h"

namespace arrow_zerobus::internal {
namespace {

namespace pb = databricks::zerobus;

std::string Flatten(grpc::ByteBuffer& bb) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(bb.Dump(&slices).ok());
  std::string out;
  for (auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

std::string Frame(const std::vector<std::string>& records) {
  std::string out;
  for (const auto& r : records) {
    out.push_back('\x0a');
    uint8_t v[10];
    int n = WriteVarint(r.size(), v);
    out.append(reinterpret_cast<char*>(v), n);
    out += r;
  }
  return out;
}

std::shared_ptr<arrow::Buffer> Own(const std::string& s) {
  return std::make_shared<arrow::Buffer>(reinterpret_cast<const uint8_t*>(s.data()),
                                         static_cast<int64_t>(s.size()));
}

struct FrameCase {
  int64_t offset;
  std::vector<std::string> records;
};

class FramingTest : public ::testing::TestWithParam<FrameCase> {};

TEST_P(FramingTest, BatchBytesEqualTheGeneratedMessage) {
  const auto& c = GetParam();
  const std::string framed = Frame(c.records);
  for (RecordType type : {RecordType::kProto, RecordType::kJson}) {
    pb::EphemeralStreamRequest expected;
    auto* b = expected.mutable_ingest_record_batch();
    b->set_offset_id(c.offset);
    for (const auto& r : c.records) {
      if (type == RecordType::kJson) {
        b->mutable_json_batch()->add_records(r);
      } else {
        b->mutable_proto_encoded_batch()->add_records(r);
      }
    }
    grpc::ByteBuffer zero = MakeIngestRequest(true, type, c.offset, Own(framed), framed, true);
    grpc::ByteBuffer gen = MakeIngestRequest(true, type, c.offset, Own(framed), framed, false);
    EXPECT_EQ(Flatten(zero), expected.SerializeAsString());
    EXPECT_EQ(Flatten(gen), expected.SerializeAsString());
    // And it parses back to the same records.
    pb::EphemeralStreamRequest parsed;
    ASSERT_TRUE(parsed.ParseFromString(Flatten(zero)));
    EXPECT_EQ(parsed.ingest_record_batch().offset_id(), c.offset);
  }
}

TEST_P(FramingTest, SingleRecordBytesEqualTheGeneratedMessage) {
  const auto& c = GetParam();
  const std::string rec = c.records.empty() ? std::string() : c.records.back();
  for (RecordType type : {RecordType::kProto, RecordType::kJson}) {
    pb::EphemeralStreamRequest expected;
    auto* r = expected.mutable_ingest_record();
    r->set_offset_id(c.offset);
    if (type == RecordType::kJson) {
      r->set_json_record(rec);
    } else {
      r->set_proto_encoded_record(rec);
    }
    grpc::ByteBuffer zero = MakeIngestRequest(false, type, c.offset, Own(rec), rec, true);
    EXPECT_EQ(Flatten(zero), expected.SerializeAsString());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Offsets, FramingTest,
    ::testing::Values(FrameCase{0, {"a"}}, FrameCase{1, {"", "xyz"}},
                      FrameCase{127, {std::string(127, 'q')}},
                      FrameCase{128, {std::string(128, 'q'), std::string(300, 'r')}},
                      FrameCase{16384, {std::string(16384, 's')}},
                      FrameCase{(1LL << 35) + 7, {std::string(70000, 't'), "u"}},
                      FrameCase{INT64_MAX, {"v", "w", "x"}}));

TEST(FramingTest, HeaderIsSmall) {
  uint8_t out[kMaxIngestHeader];
  EXPECT_EQ(MakeIngestHeader(true, RecordType::kProto, 0, 10, out), 6u);
  EXPECT_LE(MakeIngestHeader(true, RecordType::kProto, INT64_MAX, 10 * 1024 * 1024, out),
            kMaxIngestHeader);
}

TEST(FramingTest, CreateStreamRequestCarriesTableTypeAndDescriptor) {
  DescriptorProto d;
  d.set_name("Row");
  auto* f = d.add_field();
  f->set_name("id");
  f->set_number(1);
  f->set_type(FieldDescriptorProto::TYPE_INT64);
  grpc::ByteBuffer bb = MakeCreateStreamRequest("a.b.c", RecordType::kProto, &d);
  pb::EphemeralStreamRequest req;
  ASSERT_TRUE(req.ParseFromString(Flatten(bb)));
  ASSERT_TRUE(req.has_create_stream());
  EXPECT_EQ(req.create_stream().table_name(), "a.b.c");
  EXPECT_EQ(req.create_stream().record_type(), pb::PROTO);
  DescriptorProto back;
  ASSERT_TRUE(back.ParseFromString(req.create_stream().descriptor_proto()));
  EXPECT_EQ(back.name(), "Row");
  grpc::ByteBuffer json = MakeCreateStreamRequest("a.b.c", RecordType::kJson, nullptr);
  ASSERT_TRUE(req.ParseFromString(Flatten(json)));
  EXPECT_EQ(req.create_stream().record_type(), pb::JSON);
  EXPECT_FALSE(req.create_stream().has_descriptor_proto());
}

TEST(FramingTest, CountFramedRecords) {
  EXPECT_EQ(*CountFramedRecords(Frame({"a", "", std::string(200, 'x')})), 3);
  EXPECT_EQ(*CountFramedRecords(""), 0);
  // Wrong tag.
  auto bad_tag = CountFramedRecords(std::string("\x12\x01x", 3));
  ASSERT_FALSE(bad_tag.ok());
  EXPECT_THAT(bad_tag.status().message(), ::testing::HasSubstr("after record 0"));
  // Length beyond the end.
  std::string trunc = Frame({"abc", "defg"});
  trunc.pop_back();
  auto t = CountFramedRecords(trunc);
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), ::testing::HasSubstr("after record 1 (byte offset 5)"));
  // Unterminated varint.
  EXPECT_FALSE(CountFramedRecords(std::string("\x0a\x80", 2)).ok());
}

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(*Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(*Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(*Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(*Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // 55/56/64-byte edges of the padding.
  EXPECT_NE(*Sha256Hex(std::string(55, 'x')), *Sha256Hex(std::string(56, 'x')));
  EXPECT_EQ(*Sha256Hex(std::string(64, 'a')),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

}  // namespace
}  // namespace arrow_zerobus::internal
