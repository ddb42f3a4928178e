// ZerobusWrapper without a server: every configuration error through Make, the writer-disabled
// mode (debug files only, no network, no credentials), Unity Catalog type texts, and the retry
// and cool-down policies.
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include <arrow/api.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>

#include "arrow_zerobus/arrow_zerobus.h"
#include "wrapper/json_rows_internal.h"
#include "common/retry_policy.h"
#include <nlohmann/json.hpp>
#include "wrapper_test_util.h"

namespace arrow_zerobus::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

WrapperConfiguration ValidConfig() {
  auto c = WrapperConfiguration::Make("https://1234567890.zerobus.us-west-2.cloud.databricks.com",
                                      "main.default.events");
  c.client_id = "principal";
  c.client_secret = SecretString("very-secret-value-42");
  c.unity_catalog_url = "https://workspace.cloud.databricks.com";
  return c;
}

TEST(WrapperMakeTest, ValidConfigurationMakesAWrapperWithoutNetwork) {
  auto w = ZerobusWrapper::Make(ValidConfig());
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_FALSE(w->is_shutdown());
  EXPECT_FALSE(w->cooldown().has_value());
  EXPECT_EQ(w->stats().streams_opened, 0);
  EXPECT_FALSE(w->telemetry().has_value());
  EXPECT_TRUE(w->Shutdown().ok());
}

struct ConfigCase {
  std::string name;
  std::function<void(WrapperConfiguration&)> mutate;
  std::string expected;  // the option the message must name
};

class WrapperConfigErrorTest : public ::testing::TestWithParam<ConfigCase> {};

TEST_P(WrapperConfigErrorTest, MakeRefusesWithAConfigurationErrorNamingTheOption) {
  TempDir dir;
  auto c = ValidConfig();
  GetParam().mutate(c);
  auto w = ZerobusWrapper::Make(c);
  ASSERT_FALSE(w.ok()) << GetParam().name;
  EXPECT_EQ(GetErrorKind(w.status()), ErrorKind::kConfiguration) << w.status().ToString();
  EXPECT_THAT(w.status().message(), HasSubstr(GetParam().expected));
  EXPECT_THAT(w.status().message(), ::testing::Not(HasSubstr("very-secret-value-42")));
}

const std::string kMissingFile = "/nonexistent/az-wrapper-test/ca.pem";

INSTANTIATE_TEST_SUITE_P(
    AllOptions, WrapperConfigErrorTest,
    ::testing::Values(
        ConfigCase{"debug_dir", [](auto& c) { c.debug_enabled = true; }, "debug_output_dir"},
        ConfigCase{"debug_arrow_dir", [](auto& c) { c.debug_arrow_enabled = true; },
                   "debug_output_dir"},
        ConfigCase{"endpoint_scheme", [](auto& c) { c.endpoint = "ftp://host:1"; }, "endpoint"},
        ConfigCase{"endpoint_empty", [](auto& c) { c.endpoint = ""; }, "endpoint"},
        ConfigCase{"table_two_parts", [](auto& c) { c.table_name = "default.events"; },
                   "table_name"},
        ConfigCase{"table_bad_chars", [](auto& c) { c.table_name = "main.default.ev-ents"; },
                   "table_name"},
        ConfigCase{"id_without_secret", [](auto& c) { c.client_secret.reset(); },
                   "client_secret"},
        ConfigCase{"secret_without_id", [](auto& c) { c.client_id.reset(); }, "client_id"},
        ConfigCase{"no_credentials",
                   [](auto& c) {
                     c.client_id.reset();
                     c.client_secret.reset();
                   },
                   "client_id"},
        ConfigCase{"no_uc_url", [](auto& c) { c.unity_catalog_url.reset(); },
                   "unity_catalog_url"},
        ConfigCase{"uc_url_scheme", [](auto& c) { c.unity_catalog_url = "workspace.com"; },
                   "unity_catalog_url"},
        ConfigCase{"retry_attempts", [](auto& c) { c.retry_max_attempts = 0; },
                   "retry_max_attempts"},
        ConfigCase{"retry_base", [](auto& c) { c.retry_base_delay_ms = 0; },
                   "retry_base_delay_ms"},
        ConfigCase{"retry_max_below_base", [](auto& c) { c.retry_max_delay_ms = 50; },
                   "retry_max_delay_ms"},
        ConfigCase{"flush_interval",
                   [](auto& c) { c.debug_flush_interval_secs = 0; }, "debug_flush_interval_secs"},
        ConfigCase{"max_file_size", [](auto& c) { c.debug_max_file_size = 0; },
                   "debug_max_file_size"},
        ConfigCase{"files_retained", [](auto& c) { c.debug_max_files_retained = -1; },
                   "debug_max_files_retained"},
        ConfigCase{"writer_disabled_without_debug",
                   [](auto& c) { c.zerobus_writer_disabled = true; }, "zerobus_writer_disabled"},
        ConfigCase{"otlp_interval",
                   [](auto& c) {
                     ObservabilityConfig o;
                     o.write_interval_secs = 0;
                     c.observability_config = o;
                   },
                   "write_interval_secs"},
        ConfigCase{"otlp_endpoint",
                   [](auto& c) {
                     ObservabilityConfig o;
                     o.endpoint = "collector:4318";
                     c.observability_config = o;
                   },
                   "endpoint"},
        ConfigCase{"streams_zero", [](auto& c) { c.streams_per_table = 0; }, "streams_per_table"},
        ConfigCase{"streams_many", [](auto& c) { c.streams_per_table = 1000; },
                   "streams_per_table"},
        ConfigCase{"inflight_requests", [](auto& c) { c.max_inflight_requests = 0; },
                   "max_inflight_requests"},
        ConfigCase{"inflight_bytes", [](auto& c) { c.max_inflight_bytes = 0; },
                   "max_inflight_bytes"},
        ConfigCase{"open_timeout", [](auto& c) { c.stream_open_timeout_ms = 0; },
                   "stream_open_timeout_ms"},
        ConfigCase{"flush_timeout", [](auto& c) { c.flush_timeout_ms = -1; }, "flush_timeout_ms"},
        ConfigCase{"ack_timeout", [](auto& c) { c.ack_timeout_ms = 0; }, "ack_timeout_ms"},
        ConfigCase{"recovery_backoff", [](auto& c) { c.recovery_backoff_ms = -1; },
                   "recovery_backoff_ms"},
        ConfigCase{"recovery_retries", [](auto& c) { c.recovery_retries = -1; },
                   "recovery_retries"},
        ConfigCase{"application_name", [](auto& c) { c.application_name = "bad\nname"; },
                   "application_name"},
        ConfigCase{"ca_file", [](auto& c) { c.ca_file = kMissingFile; }, "ca_file"},
        ConfigCase{"given_without_descriptor",
                   [](auto& c) { c.descriptor_source = DescriptorSource::kGiven; }, "descriptor"},
        ConfigCase{"descriptor_without_given",
                   [](auto& c) { c.descriptor = DescriptorFromArrowSchema(*RowSchema()).ValueOrDie(); },
                   "descriptor"},
        ConfigCase{"failure_rate_zero", [](auto& c) { c.failure_rate_threshold = 0; },
                   "failure_rate_threshold"},
        ConfigCase{"failure_rate_above_one", [](auto& c) { c.failure_rate_threshold = 1.5; },
                   "failure_rate_threshold"},
        ConfigCase{"failure_rate_min_rows", [](auto& c) { c.failure_rate_min_rows = 0; },
                   "failure_rate_min_rows"},
        ConfigCase{"failure_cooldown", [](auto& c) { c.failure_cooldown_ms = -1; },
                   "failure_cooldown_ms"},
        ConfigCase{"jitter", [](auto& c) { c.cooldown_jitter_ms = -1; }, "cooldown_jitter_ms"},
        ConfigCase{"pipeline_cooldown", [](auto& c) { c.pipeline_blocked_cooldown_ms = -5; },
                   "pipeline_blocked_cooldown_ms"},
        ConfigCase{"records_per_file", [](auto& c) { c.debug_max_records_per_file = 0; },
                   "debug_max_records_per_file"},
        ConfigCase{"otlp_output_dir",
                   [](auto& c) {
                     ObservabilityConfig o;
                     o.output_dir = "";
                     c.observability_config = o;
                   },
                   "output_dir"},
        ConfigCase{"descriptor_without_name",
                   [](auto& c) {
                     c.descriptor_source = DescriptorSource::kGiven;
                     c.descriptor = DescriptorFromArrowSchema(*RowSchema()).ValueOrDie();
                     c.descriptor->clear_name();
                   },
                   "descriptor"},
        ConfigCase{"unity_catalog_without_credentials",
                   [](auto& c) {
                     c.zerobus_writer_disabled = true;
                     c.debug_enabled = true;
                     c.debug_output_dir = "/tmp";
                     c.client_id.reset();
                     c.client_secret.reset();
                     c.descriptor_source = DescriptorSource::kUnityCatalog;
                   },
                   "unity_catalog"}),
    [](const ::testing::TestParamInfo<ConfigCase>& info) { return info.param.name; });

TEST(WrapperMakeTest, HeadersProviderReplacesCredentials) {
  auto provider = MakeStaticHeadersProvider({{"x-proxy-auth", "token"}});
  auto without = ValidConfig();
  without.client_id.reset();
  without.client_secret.reset();
  without.unity_catalog_url.reset();
  EXPECT_TRUE(ZerobusWrapper::Make(without, provider).ok());

  auto both = ZerobusWrapper::Make(ValidConfig(), provider);
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(GetErrorKind(both.status()), ErrorKind::kConfiguration);
  EXPECT_THAT(both.status().message(), HasSubstr("client_id"));
  EXPECT_THAT(both.status().message(), ::testing::Not(HasSubstr("very-secret-value-42")));

  auto none = ZerobusWrapper::Make(without, nullptr);
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().message(), HasSubstr("headers_provider"));

  // The other rules still hold.
  auto bad = without;
  bad.retry_max_attempts = 0;
  auto refused = ZerobusWrapper::Make(bad, provider);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("retry_max_attempts"));
  // The Unity Catalog source still needs its URL.
  auto uc = without;
  uc.descriptor_source = DescriptorSource::kUnityCatalog;
  auto no_url = ZerobusWrapper::Make(uc, provider);
  ASSERT_FALSE(no_url.ok());
  EXPECT_THAT(no_url.status().message(), HasSubstr("unity_catalog_url"));
}

TEST(WrapperMakeTest, UnwritableDebugDirectoryIsAnError) {
  TempDir dir;
  const std::string file = dir.path() + "/not-a-dir";
  { std::ofstream(file) << "x"; }
  auto c = ValidConfig();
  c.debug_enabled = true;
  c.debug_output_dir = file + "/sub";
  auto w = ZerobusWrapper::Make(c);
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(w.status().message(), HasSubstr("not-a-dir"));
}

// ---- writer-disabled ------------------------------------------------------------------------------

std::vector<int64_t> IdsOf(const ProtobufDebugFile& file) {
  google::protobuf::FileDescriptorProto fdp;
  fdp.set_name("debug.proto");
  fdp.set_syntax("proto2");
  *fdp.add_message_type() = file.descriptor;
  google::protobuf::DescriptorPool pool;
  const auto* fd = pool.BuildFile(fdp);
  EXPECT_NE(fd, nullptr);
  if (fd == nullptr) return {};
  google::protobuf::DynamicMessageFactory factory(&pool);
  const auto* message = fd->message_type(0);
  std::vector<int64_t> ids;
  for (const auto& record : file.records) {
    std::unique_ptr<google::protobuf::Message> m(factory.GetPrototype(message)->New());
    EXPECT_TRUE(m->ParseFromString(record));
    ids.push_back(m->GetReflection()->GetInt64(*m, message->FindFieldByName("id")));
  }
  return ids;
}

TEST(WrapperWriterDisabledTest, ConvertsAndWritesDebugFilesWithoutNetworkOrCredentials) {
  TempDir dir;
  WrapperConfiguration c;
  c.table_name = "events";  // a short name is fine without Zerobus
  c.zerobus_writer_disabled = true;
  c.debug_arrow_enabled = true;
  c.debug_protobuf_enabled = true;
  c.debug_output_dir = dir.path();
  auto made = ZerobusWrapper::Make(c);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  ZerobusWrapper w = *made;

  auto first = w.SendBatch(*MakeRows(0, 25));
  ASSERT_TRUE(first.ok());
  ExpectAccounted(*first, 25);
  EXPECT_TRUE(first->success);
  EXPECT_EQ(first->successful_count, 25);
  EXPECT_GT(first->batch_size_bytes, 0);
  auto second = w.SendBatch(*MakeRowsWithNullIds(25, 25, {4}));
  ASSERT_TRUE(second.ok());
  ExpectAccounted(*second, 25);
  EXPECT_EQ(second->FailedRowIndices(), std::vector<int64_t>{4});
  EXPECT_THAT(second->failed_rows[0].message, StartsWith("Conversion error: "));
  EXPECT_EQ(w.stats().streams_opened, 0);
  ASSERT_TRUE(w.Shutdown().ok());

  auto arrow_files = ListDebugFiles(dir.path(), "events", DebugFormat::kArrow);
  ASSERT_TRUE(arrow_files.ok());
  ASSERT_FALSE(arrow_files->empty());
  int64_t rows = 0;
  for (const auto& f : *arrow_files) {
    auto t = ReadArrowDebugFile(f);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_TRUE((*t)->schema()->Equals(*RowSchema()));
    rows += (*t)->num_rows();
  }
  EXPECT_EQ(rows, 50);

  auto pb_files = ListDebugFiles(dir.path(), "events", DebugFormat::kProtobuf);
  ASSERT_TRUE(pb_files.ok());
  std::vector<int64_t> ids;
  for (const auto& f : *pb_files) {
    auto file = ReadProtobufDebugFile(f);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    auto part = IdsOf(*file);
    ids.insert(ids.end(), part.begin(), part.end());
  }
  std::vector<int64_t> expected;
  for (int64_t i = 0; i < 50; ++i) {
    if (i != 29) expected.push_back(i);
  }
  EXPECT_EQ(ids, expected);
}

TEST(WrapperWriterDisabledTest, OnlyTheChosenFormatIsWritten) {
  TempDir dir;
  WrapperConfiguration c;
  c.table_name = "main.default.events";
  c.zerobus_writer_disabled = true;
  c.debug_protobuf_enabled = true;
  c.debug_output_dir = dir.path();
  auto w = ZerobusWrapper::Make(c).ValueOrDie();
  ASSERT_TRUE(w.SendBatch(*MakeRows(0, 10)).ok());
  ASSERT_TRUE(w.Shutdown().ok());
  EXPECT_TRUE(ListDebugFiles(dir.path(), c.table_name, DebugFormat::kArrow)->empty());
  EXPECT_EQ(ListDebugFiles(dir.path(), c.table_name, DebugFormat::kProtobuf)->size(), 1u);
}

TEST(WrapperWriterDisabledTest, AFailingDebugWriteFailsTheBatch) {
  TempDir dir;
  const std::string out = dir.path() + "/out";
  WrapperConfiguration c;
  c.table_name = "events";
  c.zerobus_writer_disabled = true;
  c.debug_arrow_enabled = true;
  c.debug_output_dir = out;
  c.debug_max_records_per_file = 10;  // every batch of 25 rows needs new files
  auto w = ZerobusWrapper::Make(c).ValueOrDie();
  ASSERT_EQ(w.SendBatch(*MakeRows(0, 25))->successful_count, 25);
  fs::remove_all(out);  // new files cannot be created any more
  auto r = w.SendBatch(*MakeRows(25, 25));
  ASSERT_TRUE(r.ok());
  ExpectAccounted(*r, 25);
  EXPECT_EQ(r->failed_count, 25);
  ASSERT_TRUE(r->error.has_value());
  EXPECT_THAT(*r->error, StartsWith("Transmission error: writing the Arrow debug file failed"));
  const WrapperStats s = w.stats();
  EXPECT_EQ(s.debug_write_failures, 1);
  ASSERT_TRUE(s.last_debug_error.has_value());
  (void)w.Shutdown();
}

TEST(WrapperWriterDisabledTest, UnsupportedColumnFailsTheWholeBatch) {
  TempDir dir;
  WrapperConfiguration c;
  c.table_name = "events";
  c.zerobus_writer_disabled = true;
  c.debug_enabled = true;
  c.debug_output_dir = dir.path();
  auto w = ZerobusWrapper::Make(c).ValueOrDie();
  auto schema = arrow::schema({arrow::field("d", arrow::duration(arrow::TimeUnit::SECOND))});
  arrow::DurationBuilder b(arrow::duration(arrow::TimeUnit::SECOND), arrow::default_memory_pool());
  ASSERT_TRUE(b.Append(5).ok());
  ASSERT_TRUE(b.Append(6).ok());
  auto batch = arrow::RecordBatch::Make(schema, 2, {b.Finish().ValueOrDie()});
  auto r = w.SendBatch(*batch);
  ASSERT_TRUE(r.ok());
  ExpectAccounted(*r, 2);
  EXPECT_EQ(r->failed_count, 2);
  ASSERT_TRUE(r->error.has_value());
  EXPECT_THAT(*r->error, StartsWith("Conversion error: "));
  EXPECT_THAT(*r->error, HasSubstr("'d'"));
}

// ---- Unity Catalog type texts ------------------------------------------------------------------

TEST(TypeTextTest, PrimitiveTypes) {
  const std::vector<std::pair<std::string, std::shared_ptr<arrow::DataType>>> cases = {
      {"boolean", arrow::boolean()},
      {"TINYINT", arrow::int8()},
      {"smallint", arrow::int16()},
      {"int", arrow::int32()},
      {"bigint", arrow::int64()},
      {"long", arrow::int64()},
      {"float", arrow::float32()},
      {"double", arrow::float64()},
      {"string", arrow::utf8()},
      {"varchar(20)", arrow::utf8()},
      {"binary", arrow::binary()},
      {"date", arrow::date32()},
      {"timestamp", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")},
      {"timestamp_ntz", arrow::timestamp(arrow::TimeUnit::MICRO)},
      {"decimal(12, 3)", arrow::decimal128(12, 3)},
      {"decimal", arrow::decimal128(10, 0)},
      {"variant", arrow::utf8()},
  };
  for (const auto& [text, type] : cases) {
    auto parsed = ArrowTypeFromTypeText(text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status().ToString();
    EXPECT_TRUE((*parsed)->Equals(*type)) << text << " -> " << (*parsed)->ToString();
  }
}

TEST(TypeTextTest, NestedTypes) {
  auto parsed = ArrowTypeFromTypeText(
      "struct<a:bigint NOT NULL,`b c`:array<string> COMMENT 'x, y',m:map<string,decimal(5,2)>>");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const auto& s = static_cast<const arrow::StructType&>(**parsed);
  ASSERT_EQ(s.num_fields(), 3);
  EXPECT_EQ(s.field(0)->name(), "a");
  EXPECT_FALSE(s.field(0)->nullable());
  EXPECT_TRUE(s.field(0)->type()->Equals(arrow::int64()));
  EXPECT_EQ(s.field(1)->name(), "b c");
  EXPECT_TRUE(s.field(1)->nullable());
  EXPECT_TRUE(s.field(1)->type()->Equals(arrow::list(arrow::field("element", arrow::utf8()))));
  EXPECT_EQ(s.field(2)->type()->id(), arrow::Type::MAP);
  const auto& m = static_cast<const arrow::MapType&>(*s.field(2)->type());
  EXPECT_TRUE(m.item_type()->Equals(arrow::decimal128(5, 2)));
}

TEST(TypeTextTest, BadTextsNameTheProblem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"interval day", "unsupported type 'interval'"},
      {"array<int", "expected '>'"},
      {"map<string>", "expected ','"},
      {"decimal(40,2)", "precision"},
      {"struct<>", "at least one field"},
      {"bigint extra", "unexpected"},
      {"", "expected a type"},
      {"struct<a:int NOT>", "NOT NULL"},
  };
  for (const auto& [text, expected] : cases) {
    auto parsed = ArrowTypeFromTypeText(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(GetErrorKind(parsed.status()), ErrorKind::kConversion);
    EXPECT_THAT(parsed.status().message(), HasSubstr(expected)) << text;
    EXPECT_THAT(parsed.status().message(), HasSubstr("'" + text + "'"));
  }
}

TEST(TypeTextTest, TableColumnsAreOrderedByPosition) {
  const std::string json = R"({"name": "t", "columns": [
      {"name": "b", "type_text": "string", "nullable": true, "position": 1},
      {"name": "a", "type_text": "bigint", "nullable": false, "position": 0},
      {"name": "c", "type_name": "DOUBLE", "position": 2}]})";
  auto schema = ArrowSchemaFromUnityCatalogTable(json);
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  ASSERT_EQ((*schema)->num_fields(), 3);
  EXPECT_EQ((*schema)->field(0)->name(), "a");
  EXPECT_FALSE((*schema)->field(0)->nullable());
  EXPECT_EQ((*schema)->field(1)->name(), "b");
  EXPECT_TRUE((*schema)->field(2)->type()->Equals(arrow::float64()));

  auto bad = ArrowSchemaFromUnityCatalogTable(
      R"({"columns": [{"name": "x", "type_text": "interval"}]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("column 'x'"));
  EXPECT_FALSE(ArrowSchemaFromUnityCatalogTable("not json").ok());
  EXPECT_FALSE(ArrowSchemaFromUnityCatalogTable(R"({"columns": []})").ok());
}

// The wrapper's Unity Catalog mapping feeding the Flight target (here: tests/flight/ links the
// flight module alone, without the wrapper).
TEST(FlightSchema, FromAUnityCatalogTableInPositionOrder) {
  auto table = ArrowSchemaFromUnityCatalogTable(R"json({"columns": [
      {"name": "amount", "type_text": "decimal(5,2)", "nullable": true, "position": 1},
      {"name": "id", "type_text": "bigint", "nullable": false, "position": 0}]})json");
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  auto target = FlightTargetForTableSchema(*table);
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  EXPECT_TRUE(target->flight_schema->Equals(*arrow::schema(
      {arrow::field("id", arrow::int64(), false), arrow::field("amount", arrow::large_utf8())})))
      << target->flight_schema->ToString();
}

// ---- JSON rows ---------------------------------------------------------------------------------

// Every type the encoder writes, nulls included, as JSON rows parsed back.
TEST(JsonRowsTest, EveryTypeBecomesTheJsonZerobusReads) {
  auto point = arrow::struct_({arrow::field("x", arrow::int32()), arrow::field("y", arrow::int32())});
  auto schema = arrow::schema({
      arrow::field("id", arrow::int64(), false),
      arrow::field("name", arrow::utf8()),
      arrow::field("score", arrow::float64()),
      arrow::field("ratio", arrow::float32()),
      arrow::field("flag", arrow::boolean()),
      arrow::field("data", arrow::binary()),
      arrow::field("day", arrow::date32()),
      arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MILLI, "UTC")),
      arrow::field("amount", arrow::decimal128(10, 2)),
      arrow::field("tags", arrow::list(arrow::utf8())),
      arrow::field("nums", arrow::list(arrow::int32())),
      arrow::field("point", point),
      arrow::field("attrs", arrow::map(arrow::utf8(), arrow::int64())),
      arrow::field("codes", arrow::map(arrow::int32(), arrow::utf8())),
  });
  arrow::Int64Builder id;
  ASSERT_TRUE(id.AppendValues({1, -9007199254740993LL}).ok());
  arrow::StringBuilder name;
  ASSERT_TRUE(name.Append(std::string("a \"q\"\n\x01\xC3\xA9")).ok());
  ASSERT_TRUE(name.AppendNull().ok());
  arrow::DoubleBuilder score;
  ASSERT_TRUE(score.Append(1.5).ok());
  ASSERT_TRUE(score.AppendNull().ok());
  arrow::FloatBuilder ratio;
  ASSERT_TRUE(ratio.Append(0.1f).ok());
  ASSERT_TRUE(ratio.AppendNull().ok());
  arrow::BooleanBuilder flag;
  ASSERT_TRUE(flag.Append(true).ok());
  ASSERT_TRUE(flag.Append(false).ok());
  arrow::BinaryBuilder data;
  ASSERT_TRUE(data.Append(std::string("\x00\x01\x02\xff", 4)).ok());
  ASSERT_TRUE(data.AppendNull().ok());
  arrow::Date32Builder day;
  ASSERT_TRUE(day.Append(19000).ok());
  ASSERT_TRUE(day.AppendNull().ok());
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MILLI, "UTC"),
                             arrow::default_memory_pool());
  ASSERT_TRUE(ts.Append(1700000000123).ok());
  ASSERT_TRUE(ts.AppendNull().ok());
  arrow::Decimal128Builder amount(arrow::decimal128(10, 2));
  ASSERT_TRUE(amount.Append(arrow::Decimal128(-1230)).ok());
  ASSERT_TRUE(amount.AppendNull().ok());
  auto tags_values = std::make_shared<arrow::StringBuilder>();
  arrow::ListBuilder tags(arrow::default_memory_pool(), tags_values);
  ASSERT_TRUE(tags.Append().ok());
  ASSERT_TRUE(tags_values->AppendValues({"x", "y"}).ok());
  ASSERT_TRUE(tags.Append().ok());  // empty list
  auto nums_values = std::make_shared<arrow::Int32Builder>();
  arrow::ListBuilder nums(arrow::default_memory_pool(), nums_values);
  ASSERT_TRUE(nums.Append().ok());
  ASSERT_TRUE(nums_values->AppendValues({1, -2, 3}).ok());
  ASSERT_TRUE(nums.AppendNull().ok());
  auto x = std::make_shared<arrow::Int32Builder>();
  auto y = std::make_shared<arrow::Int32Builder>();
  arrow::StructBuilder pt(point, arrow::default_memory_pool(), {x, y});
  ASSERT_TRUE(pt.Append().ok());
  ASSERT_TRUE(x->Append(1).ok());
  ASSERT_TRUE(y->AppendNull().ok());
  ASSERT_TRUE(pt.AppendNull().ok());
  auto ak = std::make_shared<arrow::StringBuilder>();
  auto av = std::make_shared<arrow::Int64Builder>();
  arrow::MapBuilder attrs(arrow::default_memory_pool(), ak, av);
  ASSERT_TRUE(attrs.Append().ok());
  ASSERT_TRUE(ak->AppendValues({"k1", "k\"2"}).ok());
  ASSERT_TRUE(av->AppendValues({7, -1}).ok());
  ASSERT_TRUE(attrs.AppendNull().ok());
  auto ck = std::make_shared<arrow::Int32Builder>();
  auto cv = std::make_shared<arrow::StringBuilder>();
  arrow::MapBuilder codes(arrow::default_memory_pool(), ck, cv);
  ASSERT_TRUE(codes.Append().ok());
  ASSERT_TRUE(ck->Append(404).ok());
  ASSERT_TRUE(cv->Append("nf").ok());
  ASSERT_TRUE(codes.AppendNull().ok());
  std::vector<std::shared_ptr<arrow::Array>> columns;
  for (arrow::ArrayBuilder* b : std::initializer_list<arrow::ArrayBuilder*>{
           &id, &name, &score, &ratio, &flag, &data, &day, &ts, &amount, &tags, &nums, &pt,
           &attrs, &codes}) {
    columns.push_back(b->Finish().ValueOrDie());
  }
  auto batch = arrow::RecordBatch::Make(schema, 2, columns);
  ASSERT_TRUE(batch->ValidateFull().ok());

  auto encoder = RecordBatchEncoder::Make(schema).ValueOrDie();
  auto encoded = encoder->Encode(*batch).ValueOrDie();
  ASSERT_TRUE(encoded.failed_rows.empty()) << encoded.failed_rows[0].message;
  auto converter = internal::JsonRowsConverter::Make(encoder->descriptor()).ValueOrDie();
  auto rows = converter->Convert(encoded);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->num_records(), 2);
  ASSERT_EQ(rows->chunks.size(), 1u);
  EXPECT_TRUE(rows->failed_rows.empty());

  const auto r0 = nlohmann::json::parse(rows->record(0));
  EXPECT_EQ(r0["id"], 1);
  EXPECT_EQ(r0["name"], "a \"q\"\n\x01\xC3\xA9");
  EXPECT_EQ(r0["score"], 1.5);
  EXPECT_FLOAT_EQ(r0["ratio"].get<float>(), 0.1f);
  EXPECT_EQ(r0["flag"], true);
  EXPECT_EQ(r0["data"], "AAEC/w==");
  EXPECT_EQ(r0["day"], 19000);
  EXPECT_EQ(r0["ts"], 1700000000123000LL);  // microseconds
  EXPECT_EQ(r0["amount"], "-12.30");
  EXPECT_EQ(r0["tags"], nlohmann::json::array({"x", "y"}));
  EXPECT_EQ(r0["nums"], nlohmann::json::array({1, -2, 3}));
  EXPECT_EQ(r0["point"], nlohmann::json::object({{"x", 1}}));
  EXPECT_EQ(r0["attrs"], nlohmann::json::object({{"k1", 7}, {"k\"2", -1}}));
  EXPECT_EQ(r0["codes"], nlohmann::json::object({{"404", "nf"}}));

  // Absent fields are left out, except repeated ones (protobuf cannot tell an empty list from a
  // null one; the protobuf row lands as empty lists): exact text for the row with nulls.
  EXPECT_EQ(std::string(rows->record(1)),
            R"({"id":-9007199254740993,"flag":false,"tags":[],"nums":[],"attrs":{},"codes":{}})");

  // NaN and infinities are strings.
  arrow::DoubleBuilder special;
  ASSERT_TRUE(special.AppendValues({std::nan(""), HUGE_VAL, -HUGE_VAL}).ok());
  auto s2 = arrow::schema({arrow::field("v", arrow::float64())});
  auto b2 = arrow::RecordBatch::Make(s2, 3, {special.Finish().ValueOrDie()});
  auto e2 = RecordBatchEncoder::Make(s2).ValueOrDie();
  auto c2 = internal::JsonRowsConverter::Make(e2->descriptor()).ValueOrDie();
  auto r2 = c2->Convert(e2->Encode(*b2).ValueOrDie()).ValueOrDie();
  EXPECT_EQ(std::string(r2.record(0)), R"({"v":"NaN"})");
  EXPECT_EQ(std::string(r2.record(1)), R"({"v":"Infinity"})");
  EXPECT_EQ(std::string(r2.record(2)), R"({"v":"-Infinity"})");
}

TEST(JsonRowsTest, RowsOverTheLimitFailAloneAndChunksStayUnderIt) {
  auto batch = MakeRows(0, 40, 300);
  auto encoder = RecordBatchEncoder::Make(batch->schema()).ValueOrDie();
  auto encoded = encoder->Encode(*MakeRowsWithNullIds(0, 40, {5})).ValueOrDie();
  ASSERT_EQ(encoded.failed_rows.size(), 1u);
  auto converter = internal::JsonRowsConverter::Make(encoder->descriptor()).ValueOrDie();
  // Small requests: several rows per chunk, every chunk under the limit.
  auto rows = converter->Convert(encoder->Encode(*batch).ValueOrDie(), 2000);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->num_records(), 40);
  EXPECT_GT(rows->chunks.size(), 4u);
  for (const auto& c : rows->chunks) {
    EXPECT_LE(rows->record_offsets[c.end] - rows->record_offsets[c.begin], 2000 - 64);
  }
  // Room for 12 framed bytes per request: only {"id":N} rows (null names, every fifth row) fit;
  // the others fail alone with the reason, and the encoder's failure (row 5) stays.
  auto tight = converter->Convert(encoded, 64 + 12);
  ASSERT_TRUE(tight.ok());
  ASSERT_FALSE(tight->failed_rows.empty());
  EXPECT_EQ(tight->failed_rows.front().row, 0);
  bool has_encoder_failure = false;
  for (size_t i = 0; i < tight->failed_rows.size(); ++i) {
    if (i > 0) {
      EXPECT_LT(tight->failed_rows[i - 1].row, tight->failed_rows[i].row);
    }
    if (tight->failed_rows[i].row == 5) has_encoder_failure = true;
  }
  EXPECT_TRUE(has_encoder_failure);
  EXPECT_THAT(tight->failed_rows.front().message, HasSubstr("bytes of JSON, over the request limit"));
  EXPECT_EQ(tight->source_rows, (std::vector<int64_t>{4, 9, 14, 19, 24, 29, 34, 39}));
  EXPECT_EQ(tight->chunks.size(), 8u);
  EXPECT_EQ(tight->num_records() + static_cast<int64_t>(tight->failed_rows.size()), 40);
  EXPECT_FALSE(converter->ToJson("\x08").ok());  // truncated varint
}

// ---- policies ------------------------------------------------------------------------------------

TEST(RetryPolicyTest, FullJitterBackoffStaysUnderTheExponentialCap) {
  // The wrapper's backoff: retry_base_delay_ms * 2^(n-1), capped at retry_max_delay_ms, drawn
  // from [0, cap] (full jitter).
  auto delays = [](std::vector<double> units) {
    internal::ExponentialBackoffPolicy b(std::chrono::milliseconds(100),
                                         std::chrono::milliseconds(30000), 2.0, 0.0);
    std::vector<int64_t> out;
    for (double u : units) out.push_back(b.OnCompletion(u).count());
    return out;
  };
  EXPECT_EQ(delays({0.0}), (std::vector<int64_t>{0}));
  EXPECT_EQ(delays({0.5}), (std::vector<int64_t>{50}));
  EXPECT_EQ(delays({0.5, 0.5, 0.5}), (std::vector<int64_t>{50, 100, 200}));  // cap 400
  std::vector<double> many(20, 0.5);
  EXPECT_EQ(delays(many).back(), 15000);  // capped by max
  std::vector<double> lots(1000, 0.999);
  EXPECT_EQ(delays(lots).back(), 29970);
  EXPECT_LE(delays({1.0, 1.0}).back(), 200);
}

// 6006 is read from the server's own status message when it arrives, never from text this
// library composed: table names, endpoints and counts that contain "6006" start no cool-down.
TEST(RetryPolicyTest, PipelineBlockedComesFromTheServersCodeOnly) {
  EXPECT_TRUE(IsPipelineBlocked(FromGrpcStatus(
      14, "6006 Pipeline creation is temporarily blocked for table 'a.b.c'", "stream to a.b.c")));
  EXPECT_TRUE(IsPipelineBlocked(
      FromGrpcStatus(8, "PIPELINE CREATION IS TEMPORARILY BLOCKED for now", "stream to a.b.c")));
  EXPECT_TRUE(IsPipelineBlocked(FromGrpcStatus(14, "failed (error code 6006)", "open")));
  // The table, the endpoint or a count holds 6006: not the service's code.
  EXPECT_FALSE(IsPipelineBlocked(FromGrpcStatus(
      14, "connection reset", "stream to main.iot.sensor_6006 at https://h:6006")));
  EXPECT_FALSE(IsPipelineBlocked(FromGrpcStatus(14, "table main.iot.sensor_6006 is busy", "")));
  EXPECT_FALSE(IsPipelineBlocked(FromGrpcStatus(14, "60061 requests in flight", "")));
  EXPECT_FALSE(IsPipelineBlocked(MakeError(ErrorKind::kTransmission, true,
                                           "6006 requests in flight for main.iot.sensor_6006")));
  EXPECT_FALSE(IsPipelineBlocked(arrow::Status::IOError("6006 Pipeline creation is temporarily blocked")));
  EXPECT_FALSE(IsPipelineBlocked(FromGrpcStatus(14, "6002 Stream timeout reached", "")));
  // A non-retryable status is never a pause signal.
  EXPECT_FALSE(IsPipelineBlocked(FromGrpcStatus(3, "6006 Pipeline creation blocked", "")));
  EXPECT_FALSE(IsPipelineBlocked(arrow::Status::OK()));
}

TEST(RetryPolicyTest, ServerErrorCodesAreParsedFromTheServersText) {
  EXPECT_EQ(ParseServerErrorCode("6006 Pipeline creation is temporarily blocked"), 6006);
  EXPECT_EQ(ParseServerErrorCode("[4024] missing grant"), 4024);
  EXPECT_EQ(ParseServerErrorCode("Stream timeout reached"), 6002);
  EXPECT_EQ(ParseServerErrorCode("ErrorCode: 8001 schema"), 8001);
  EXPECT_EQ(ParseServerErrorCode("table main.a.t_6006 refused"), std::nullopt);
  EXPECT_EQ(ParseServerErrorCode("60061 rows"), std::nullopt);
  EXPECT_EQ(ParseServerErrorCode(""), std::nullopt);
  auto st = FromGrpcStatus(14, "6002 Stream timeout reached", "stream");
  ASSERT_NE(GetZerobusDetail(st), nullptr);
  EXPECT_EQ(GetZerobusDetail(st)->server_code(), 6002);
}

}  // namespace
}  // namespace arrow_zerobus::testing
