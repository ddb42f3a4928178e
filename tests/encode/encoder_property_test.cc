// Property tests: random batches over every supported type (nulls at every level, slices at
// every level, dictionaries, run-end encoding), encoded and parsed back with libprotobuf's
// DynamicMessage, every value compared with the Arrow source by an independent reference.
#include <arrow/api.h>
#include <arrow/extension/json.h>
#include <arrow/extension/fixed_shape_tensor.h>
#include <arrow/extension/uuid.h>
#include <arrow/json/from_string.h>
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include "arrow_zerobus/encode.h"
#include "encode/encode_test_util.h"
#include "encode/random_arrays.h"

namespace arrow_zerobus {
namespace {

using testing::EncodeAndVerify;
using testing::RandomArrays;

std::shared_ptr<arrow::RecordBatch> RandomBatch(const std::shared_ptr<arrow::Schema>& schema,
                                                int64_t rows, RandomArrays* gen) {
  std::vector<std::shared_ptr<arrow::Array>> columns;
  for (const auto& f : schema->fields()) columns.push_back(gen->Make(f->type(), rows, f->nullable()));
  auto batch = arrow::RecordBatch::Make(schema, rows, columns);
  // Structural checks only: full validation refuses date64 values that are not whole days,
  // which the encoder must still floor correctly.
  EXPECT_TRUE(batch->Validate().ok()) << batch->Validate().ToString();
  return batch;
}

// Runs `rounds` random batches (and a slice of each) through the encoder and the reference.
void CheckRandom(const RecordBatchEncoder& encoder, uint64_t seed, int rounds, int64_t rows,
                 int64_t* failed_total = nullptr, int64_t* records_total = nullptr) {
  RandomArrays gen(seed);
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " round " + std::to_string(round));
    auto batch = RandomBatch(encoder.schema(), rows, &gen);
    auto out = EncodeAndVerify(encoder, *batch);
    if (failed_total) *failed_total += static_cast<int64_t>(out.failed_rows.size());
    if (records_total) *records_total += out.num_records();
    const int64_t offset = gen.Uniform(1, rows / 3);
    EncodeAndVerify(encoder, *batch->Slice(offset, gen.Uniform(0, rows - offset)));
  }
}

std::shared_ptr<arrow::Schema> EveryTypeSchema() {
  using arrow::field;
  auto point = arrow::struct_({field("x", arrow::float64()), field("y", arrow::int32(), false),
                               field("label", arrow::utf8())});
  auto reading = arrow::struct_({field("value", arrow::int64()), field("unit", arrow::utf8_view()),
                                 field("ok", arrow::boolean())});
  auto deep = arrow::struct_(
      {field("inner", arrow::struct_({field("v", arrow::int64(), false),
                                      field("tags", arrow::list(arrow::utf8()))})),
       field("when", arrow::timestamp(arrow::TimeUnit::MILLI, "UTC"))});
  return arrow::schema({
      field("b", arrow::boolean()),
      field("i8", arrow::int8()),
      field("i16", arrow::int16(), false),
      field("i32", arrow::int32()),
      field("i64", arrow::int64()),
      field("u8", arrow::uint8()),
      field("u16", arrow::uint16()),
      field("u32", arrow::uint32()),
      field("u64", arrow::uint64()),
      field("f16", arrow::float16()),
      field("f32", arrow::float32()),
      field("f64", arrow::float64()),
      field("s", arrow::utf8()),
      field("ls", arrow::large_utf8()),
      field("sv", arrow::utf8_view()),
      field("bin", arrow::binary()),
      field("lbin", arrow::large_binary()),
      field("bv", arrow::binary_view()),
      field("fsb", arrow::fixed_size_binary(5)),
      field("d32", arrow::date32()),
      field("d64", arrow::date64()),
      field("ts_s", arrow::timestamp(arrow::TimeUnit::SECOND, "UTC")),
      field("ts_ms", arrow::timestamp(arrow::TimeUnit::MILLI)),
      field("ts_us", arrow::timestamp(arrow::TimeUnit::MICRO, "Europe/Paris")),
      field("ts_ns", arrow::timestamp(arrow::TimeUnit::NANO)),
      field("dec32", arrow::decimal32(9, 2)),
      field("dec64", arrow::decimal64(18, 0)),
      field("dec128", arrow::decimal128(38, 10)),
      field("dec256", arrow::decimal256(76, 40)),
      field("dec_neg", arrow::decimal128(10, -3)),
      field("l_i32", arrow::list(arrow::int32())),
      field("ll_s", arrow::large_list(arrow::utf8())),
      field("lv_f64", arrow::list_view(arrow::float64())),
      field("llv_i64", arrow::large_list_view(arrow::int64())),
      field("fsl_i16", arrow::fixed_size_list(arrow::int16(), 3)),
      field("l_bool", arrow::list(arrow::boolean())),
      field("l_u64", arrow::list(arrow::uint64())),
      field("l_dict", arrow::list(arrow::dictionary(arrow::int8(), arrow::utf8()))),
      field("points", arrow::list(point)),
      field("m_s_i64", arrow::map(arrow::utf8(), arrow::int64())),
      field("m_i32_struct", arrow::map(arrow::int32(), reading)),
      field("deep", deep),
      field("req_struct", point, false),
      field("dict_s", arrow::dictionary(arrow::int8(), arrow::utf8())),
      field("dict_i64", arrow::dictionary(arrow::uint16(), arrow::int64())),
      field("dict_struct", arrow::dictionary(arrow::int32(), reading)),
      field("ree_s", arrow::run_end_encoded(arrow::int32(), arrow::utf8())),
      field("ree_f64", arrow::run_end_encoded(arrow::int16(), arrow::float64())),
      field("ree_list", arrow::run_end_encoded(arrow::int64(), arrow::list(arrow::int32()))),
      field("json", arrow::extension::json(arrow::utf8())),
      field("json_large", arrow::extension::json(arrow::large_utf8())),
      field("json_view", arrow::extension::json(arrow::utf8_view())),
      field("uuid", arrow::extension::uuid()),
      field("tensor", arrow::extension::fixed_shape_tensor(arrow::float32(), {2, 2})),
  });
}

TEST(EncoderProperty, EveryTypeGeneratedDescriptor) {
  auto encoder = RecordBatchEncoder::Make(EveryTypeSchema());
  ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
  int64_t failed = 0, records = 0;
  // 700 rows cross the encoder's 512-row block boundary.
  CheckRandom(**encoder, 1, 3, 700, &failed, &records);
  CheckRandom(**encoder, 2, 3, 37);
  // The generator must exercise both outcomes.
  EXPECT_GT(failed, 0);
  EXPECT_GT(records, failed);
}

TEST(EncoderProperty, FlatScalarsAcrossBlocks) {
  // Only scalar columns: the encoder's large-block path (512 rows), crossed several times.
  arrow::FieldVector fields;
  const auto every = EveryTypeSchema();
  for (const auto& f : every->fields()) {
    const auto id = f->type()->id();
    if (id != arrow::Type::LIST && id != arrow::Type::LARGE_LIST && id != arrow::Type::LIST_VIEW &&
        id != arrow::Type::LARGE_LIST_VIEW && id != arrow::Type::FIXED_SIZE_LIST &&
        id != arrow::Type::MAP && id != arrow::Type::STRUCT && id != arrow::Type::DICTIONARY &&
        id != arrow::Type::RUN_END_ENCODED && f->name() != "tensor") {
      fields.push_back(f);
    }
  }
  fields.push_back(arrow::field("dict_s", arrow::dictionary(arrow::int8(), arrow::utf8())));
  fields.push_back(arrow::field("ree_i", arrow::run_end_encoded(arrow::int32(), arrow::int64())));
  auto encoder = RecordBatchEncoder::Make(arrow::schema(fields));
  ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
  CheckRandom(**encoder, 21, 2, 1300);
}

TEST(EncoderProperty, NoNullsAndAllNulls) {
  auto schema = EveryTypeSchema();
  auto encoder = RecordBatchEncoder::Make(schema);
  ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
  {
    RandomArrays gen(7);
    gen.null_probability = 0;
    gen.failing_null_probability = 0;
    gen.extreme_probability = 0;
    auto batch = RandomBatch(schema, 600, &gen);
    auto out = EncodeAndVerify(**encoder, *batch);
    EXPECT_EQ(out.num_records(), 600);
  }
  {
    RandomArrays gen(8);
    gen.null_probability = 1;
    gen.failing_null_probability = 0;
    auto batch = RandomBatch(schema, 100, &gen);
    EncodeAndVerify(**encoder, *batch);
  }
}

TEST(EncoderProperty, DeepNestingOfStructsAndLists) {
  using arrow::field;
  std::shared_ptr<arrow::DataType> t = arrow::int32();
  for (int depth = 0; depth < 12; ++depth) {
    if (depth % 3 == 2) {
      t = arrow::list(arrow::struct_({field("v", t), field("n", arrow::int8())}));
      t = arrow::struct_({field("items", t)});
    } else {
      t = arrow::struct_({field("child", t), field("tag", arrow::utf8())});
    }
  }
  auto schema = arrow::schema({field("root", t), field("id", arrow::int64())});
  auto encoder = RecordBatchEncoder::Make(schema);
  ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
  CheckRandom(**encoder, 11, 3, 300);
}

// Every proto scalar type as the target of a bound descriptor, singular, packed and unpacked.
TEST(EncoderProperty, BoundDescriptorEveryScalarTarget) {
  using arrow::field;
  const char* kTypes[] = {"INT32", "INT64", "UINT32", "UINT64", "SINT32", "SINT64",
                          "FIXED32", "FIXED64", "SFIXED32", "SFIXED64"};
  const std::vector<std::shared_ptr<arrow::DataType>> kIntegers = {
      arrow::int8(), arrow::int16(), arrow::int32(), arrow::int64(),
      arrow::uint8(), arrow::uint16(), arrow::uint32(), arrow::uint64()};
  // Dates and timestamps (both signs, wide values) only into signed 64-bit targets.
  const std::vector<std::shared_ptr<arrow::DataType>> kTemporal = {
      arrow::date32(), arrow::date64(), arrow::timestamp(arrow::TimeUnit::SECOND),
      arrow::timestamp(arrow::TimeUnit::MILLI, "UTC"), arrow::timestamp(arrow::TimeUnit::NANO)};
  arrow::FieldVector fields;
  std::string proto = "name: \"Target\"\n";
  int number = 1;
  auto add = [&](const std::string& name, std::shared_ptr<arrow::DataType> type,
                 const std::string& label, const std::string& ptype, const std::string& extra) {
    fields.push_back(field(name, std::move(type), label != "LABEL_REQUIRED"));
    proto += "field { name: \"" + name + "\" number: " + std::to_string(number++) + " label: " +
             label + " type: TYPE_" + ptype + extra + " }\n";
  };
  int s = 0;
  for (const char* t : kTypes) {
    const std::string target = t;
    auto sources = kIntegers;
    if (target == "INT64" || target == "SINT64" || target == "SFIXED64") {
      sources.insert(sources.end(), kTemporal.begin(), kTemporal.end());
    }
    for (const auto& source : sources) {
      add("v_" + target + "_" + std::to_string(s++), source, "LABEL_OPTIONAL", t, "");
    }
    add(std::string("rep_") + t, arrow::list(arrow::int64()), "LABEL_REPEATED", t, "");
    add(std::string("packed_") + t, arrow::large_list(arrow::int32()), "LABEL_REPEATED", t,
        " options { packed: true }");
  }
  add("enum_num", arrow::int16(), "LABEL_OPTIONAL", "ENUM", " type_name: \".Target.Kind\"");
  add("enum_name", arrow::dictionary(arrow::int8(), arrow::utf8()), "LABEL_OPTIONAL", "ENUM",
      " type_name: \".Target.Kind\"");
  add("enum_rep", arrow::list(arrow::int8()), "LABEL_REPEATED", "ENUM",
      " type_name: \".Target.Kind\" options { packed: true }");
  add("f_from_double", arrow::float64(), "LABEL_OPTIONAL", "FLOAT", "");
  add("d_from_half", arrow::float16(), "LABEL_OPTIONAL", "DOUBLE", "");
  add("d_from_float", arrow::float32(), "LABEL_REQUIRED", "DOUBLE", "");
  add("bytes_from_string", arrow::large_utf8(), "LABEL_OPTIONAL", "BYTES", "");
  add("str_from_dec", arrow::decimal128(20, 4), "LABEL_OPTIONAL", "STRING", "");
  add("rep_double", arrow::fixed_size_list(arrow::float32(), 2), "LABEL_REPEATED", "DOUBLE", "");
  add("rep_bool", arrow::list(arrow::boolean()), "LABEL_REPEATED", "BOOL",
      " options { packed: true }");
  add("rep_str", arrow::list_view(arrow::utf8_view()), "LABEL_REPEATED", "STRING", "");
  proto += "enum_type { name: \"Kind\" value { name: \"a\" number: 0 } value { name: \"b\" number: 1 }"
           " value { name: \"c\" number: -2 } value { name: \"d\" number: 100 } }\n";
  DescriptorProto descriptor;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(proto, &descriptor)) << proto;
  auto schema = arrow::schema(fields);
  auto encoder = RecordBatchEncoder::Make(schema, descriptor);
  ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
  int64_t failed = 0, records = 0;
  RandomArrays gen(3);
  // Many narrow and unsigned targets in one row: keep most rows encodable.
  gen.extreme_probability = 0.0005;
  gen.negative_probability = 0.001;
  gen.max_bits = 12;
  gen.failing_null_probability = 0.0005;
  for (int round = 0; round < 4; ++round) {
    auto batch = RandomBatch(schema, 600, &gen);
    // Enum columns draw from the defined values plus an undefined one now and then.
    const int8_t kNumbers[] = {0, 1, -2, 100};
    arrow::Int16Builder nums;
    arrow::Int8Builder name_indices;  // into ["a", "b", "c", "d", "zz"]
    arrow::ListBuilder reps(arrow::default_memory_pool(), std::make_shared<arrow::Int8Builder>());
    auto& rep_values = static_cast<arrow::Int8Builder&>(*reps.value_builder());
    for (int64_t r = 0; r < batch->num_rows(); ++r) {
      ASSERT_TRUE(nums.Append(gen.Chance(0.02) ? 7 : kNumbers[gen.Uniform(0, 3)]).ok());
      ASSERT_TRUE((gen.Chance(0.1) ? name_indices.AppendNull()
                                   : name_indices.Append(gen.Chance(0.02) ? 4 : static_cast<int8_t>(gen.Uniform(0, 3))))
                      .ok());
      ASSERT_TRUE(reps.Append().ok());
      for (int64_t j = gen.Uniform(0, 3); j > 0; --j) {
        ASSERT_TRUE(rep_values.Append(gen.Chance(0.01) ? 5 : kNumbers[gen.Uniform(0, 3)]).ok());
      }
    }
    auto dictionary = arrow::json::ArrayFromJSONString(arrow::utf8(), R"(["a", "b", "c", "d", "zz"])").ValueOrDie();
    auto enum_name = arrow::DictionaryArray::FromArrays(schema->GetFieldByName("enum_name")->type(),
                                                        name_indices.Finish().ValueOrDie(), dictionary)
                         .ValueOrDie();
    for (auto [name, column] : std::vector<std::pair<std::string, std::shared_ptr<arrow::Array>>>{
             {"enum_num", nums.Finish().ValueOrDie()},
             {"enum_name", enum_name},
             {"enum_rep", reps.Finish().ValueOrDie()}}) {
      const int i = schema->GetFieldIndex(name);
      batch = batch->SetColumn(i, schema->field(i), column).ValueOrDie();
    }
    auto out = EncodeAndVerify(**encoder, *batch);
    failed += static_cast<int64_t>(out.failed_rows.size());
    records += out.num_records();
  }
  EXPECT_GT(failed, 0);
  EXPECT_GT(records, failed);
}

}  // namespace
}  // namespace arrow_zerobus
