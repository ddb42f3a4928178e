#include "arrow_zerobus/debug.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <arrow/api.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "arrow_zerobus/config.h"
#include "arrow_zerobus/encode.h"
#include "debug/python_runner.h"

namespace arrow_zerobus {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::RunPython;

constexpr const char* kTable = "main.default.events";

class DebugWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (fs::temp_directory_path() /
            ("az_debug_" + std::to_string(::getpid()) + "_" + info->name()))
               .string();
    fs::remove_all(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  DebugWriterOptions Options() const {
    DebugWriterOptions o = DebugWriterOptions::Defaults();
    o.output_dir = dir_;
    o.table_name = kTable;
    o.max_files_retained.reset();
    return o;
  }

  std::vector<std::string> Files(DebugFormat format, const std::string& table = kTable) const {
    auto r = ListDebugFiles(dir_, table, format);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<std::string>{};
  }

  std::string dir_;
};

// Rows with id = first_id, first_id + 1, ...
std::shared_ptr<arrow::RecordBatch> MakeBatch(int64_t first_id, int64_t n) {
  arrow::Int64Builder ids;
  arrow::StringBuilder names;
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_TRUE(ids.Append(first_id + i).ok());
    EXPECT_TRUE(names.Append("name-" + std::to_string(first_id + i)).ok());
  }
  auto schema = arrow::schema(
      {arrow::field("id", arrow::int64(), false), arrow::field("name", arrow::utf8())});
  return arrow::RecordBatch::Make(schema, n,
                                  {ids.Finish().ValueOrDie(), names.Finish().ValueOrDie()});
}

std::vector<int64_t> TableIds(const arrow::Table& t) {
  std::vector<int64_t> out;
  for (const auto& chunk : t.GetColumnByName("id")->chunks()) {
    auto a = std::static_pointer_cast<arrow::Int64Array>(chunk);
    for (int64_t i = 0; i < a->length(); ++i) out.push_back(a->Value(i));
  }
  return out;
}

std::vector<int64_t> Range(int64_t begin, int64_t end) {
  std::vector<int64_t> v;
  for (int64_t i = begin; i < end; ++i) v.push_back(i);
  return v;
}

nlohmann::json ReadWithPython(const std::string& kind, const std::vector<std::string>& files) {
  std::vector<std::string> args = {kind};
  args.insert(args.end(), files.begin(), files.end());
  const auto r = RunPython(AZ_DEBUG_READER_SCRIPT, args);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const size_t start = r.output.rfind("\n{\"files\"");
  const std::string json = r.output.substr(start == std::string::npos ? 0 : start + 1);
  return nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
}

TEST_F(DebugWriterTest, ArrowFilesReadByPyarrowAndDuckDB) {
  auto writer = DebugWriter::Open(Options());
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  ASSERT_TRUE((*writer)->WriteArrow(*MakeBatch(0, 5)).ok());
  ASSERT_TRUE((*writer)->WriteArrow(*MakeBatch(5, 7)).ok());
  ASSERT_TRUE((*writer)->Close().ok());
  const auto files = Files(DebugFormat::kArrow);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_TRUE(fs::path(files[0]).filename().string().starts_with(std::string(kTable) + "--"));
  EXPECT_EQ(fs::path(files[0]).extension(), ".arrows");

  auto table = ReadArrowDebugFile(files[0]);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ(TableIds(**table), Range(0, 12));

  const auto json = ReadWithPython("arrow", files);
  ASSERT_FALSE(json.is_discarded());
  const auto& f = json["files"][0];
  EXPECT_EQ(f["rows"], 12);
  EXPECT_EQ(f["ids"].get<std::vector<int64_t>>(), Range(0, 12));
  EXPECT_EQ(f["columns"].get<std::vector<std::string>>(), (std::vector<std::string>{"id", "name"}));
  EXPECT_EQ(f["duckdb_rows"], 12);
  EXPECT_EQ(f["duckdb_id_sum"], 66);
}

TEST_F(DebugWriterTest, FlushedOpenFileIsReadable) {
  auto writer = DebugWriter::Open(Options());
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteArrow(*MakeBatch(0, 3)).ok());
  ASSERT_TRUE((*writer)->WriteArrow(*MakeBatch(3, 4)).ok());
  ASSERT_TRUE((*writer)->Flush().ok());
  const auto files = Files(DebugFormat::kArrow);
  ASSERT_EQ(files.size(), 1u);
  // Still open (no end-of-stream marker yet): every flushed batch is readable.
  auto table = ReadArrowDebugFile(files[0]);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ(TableIds(**table), Range(0, 7));
  const auto json = ReadWithPython("arrow", files);
  EXPECT_EQ(json["files"][0]["rows"], 7);
  EXPECT_EQ(json["files"][0]["duckdb_rows"], 7);
  // More rows after the flush, then close: the same file holds all of them.
  ASSERT_TRUE((*writer)->WriteArrow(*MakeBatch(7, 2)).ok());
  ASSERT_TRUE((*writer)->Close().ok());
  table = ReadArrowDebugFile(files[0]);
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(TableIds(**table), Range(0, 9));
  EXPECT_GE((*writer)->stats().flushes, 1);
}

TEST_F(DebugWriterTest, FlushIntervalHonouredWithoutCalls) {
  auto o = Options();
  o.flush_interval = std::chrono::milliseconds(50);
  auto writer = DebugWriter::Open(o);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteArrow(*MakeBatch(0, 10)).ok());
  const auto files = Files(DebugFormat::kArrow);
  ASSERT_EQ(files.size(), 1u);
  // The batch is far below the 1 MiB buffer: only the background flusher can push it out.
  int64_t rows = 0;
  for (int i = 0; i < 100 && rows != 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto table = ReadArrowDebugFile(files[0]);
    rows = table.ok() ? (*table)->num_rows() : 0;
  }
  EXPECT_EQ(rows, 10);
  EXPECT_GE((*writer)->stats().flushes, 1);
}

TEST_F(DebugWriterTest, LongFlushIntervalKeepsDataBuffered) {
  // The counterpart of the test above: with a long interval and no Flush(), nothing is on disk
  // yet, which shows that the flusher (and not the OS) made the difference there.
  auto o = Options();
  o.flush_interval = std::chrono::hours(1);
  auto writer = DebugWriter::Open(o);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteArrow(*MakeBatch(0, 10)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto files = Files(DebugFormat::kArrow);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(fs::file_size(files[0]), 0u);
  ASSERT_TRUE((*writer)->Flush().ok());
  EXPECT_GT(fs::file_size(files[0]), 0u);
}

TEST_F(DebugWriterTest, RotationByRecordCountSplitsBatches) {
  auto o = Options();
  o.max_records_per_file = 10;
  auto writer = DebugWriter::Open(o);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteArrow(*MakeBatch(0, 25)).ok());
  // Two full files are closed already; they read as finished streams while the writer is open.
  auto files = Files(DebugFormat::kArrow);
  ASSERT_EQ(files.size(), 3u);
  auto first = ReadArrowDebugFile(files[0]);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(TableIds(**first), Range(0, 10));
  ASSERT_TRUE((*writer)->Close().ok());
  const auto json = ReadWithPython("arrow", files);
  ASSERT_EQ(json["files"].size(), 3u);
  EXPECT_EQ(json["files"][0]["ids"].get<std::vector<int64_t>>(), Range(0, 10));
  EXPECT_EQ(json["files"][1]["ids"].get<std::vector<int64_t>>(), Range(10, 20));
  EXPECT_EQ(json["files"][2]["ids"].get<std::vector<int64_t>>(), Range(20, 25));
  EXPECT_EQ((*writer)->stats().arrow_files, 3);
  EXPECT_EQ((*writer)->stats().arrow_rows, 25);
}

TEST_F(DebugWriterTest, RotationBySize) {
  auto o = Options();
  o.max_file_size = 1500;
  auto writer = DebugWriter::Open(o);
  ASSERT_TRUE(writer.ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE((*writer)->WriteArrow(*MakeBatch(i * 20, 20)).ok());
  ASSERT_TRUE((*writer)->Close().ok());
  const auto files = Files(DebugFormat::kArrow);
  ASSERT_GE(files.size(), 3u);
  std::vector<int64_t> all;
  for (size_t i = 0; i < files.size(); ++i) {
    // Every file but the last reached the limit; none is far beyond it (less than one batch).
    if (i + 1 < files.size()) EXPECT_GE(fs::file_size(files[i]), 1500u) << files[i];
    EXPECT_LT(fs::file_size(files[i]), 1500u + 1000u) << files[i];
    auto t = ReadArrowDebugFile(files[i]);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    const auto ids = TableIds(**t);
    all.insert(all.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(all, Range(0, 200));
}

TEST_F(DebugWriterTest, RotationsWithinOneSecondNeverCollide) {
  auto o = Options();
  o.max_records_per_file = 1;
  auto writer = DebugWriter::Open(o);
  ASSERT_TRUE(writer.ok());
  for (int i = 0; i < 6; ++i) ASSERT_TRUE((*writer)->WriteArrow(*MakeBatch(i, 1)).ok());
  ASSERT_TRUE((*writer)->Close().ok());
  const auto files = Files(DebugFormat::kArrow);
  ASSERT_EQ(files.size(), 6u);
  std::set<int64_t> sequences;
  for (size_t i = 0; i < files.size(); ++i) {
    const auto name = ParseDebugFileName(fs::path(files[i]).filename().string());
    ASSERT_TRUE(name.has_value());
    sequences.insert(name->sequence);
    auto t = ReadArrowDebugFile(files[i]);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(TableIds(**t), (std::vector<int64_t>{static_cast<int64_t>(i)}));
  }
  EXPECT_EQ(sequences.size(), 6u);
}

TEST_F(DebugWriterTest, RestartedWriterDoesNotOverwrite) {
  for (int round = 0; round < 3; ++round) {
    auto writer = DebugWriter::Open(Options());
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->WriteArrow(*MakeBatch(round * 10, 10)).ok());
    ASSERT_TRUE((*writer)->Close().ok());
  }
  const auto files = Files(DebugFormat::kArrow);
  ASSERT_EQ(files.size(), 3u);
  std::vector<int64_t> all;
  for (const auto& f : files) {
    auto t = ReadArrowDebugFile(f);
    ASSERT_TRUE(t.ok());
    const auto ids = TableIds(**t);
    all.insert(all.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(all, Range(0, 30));
}

TEST_F(DebugWriterTest, RetentionCountsOnlyThisTablesFiles) {
  // Another table's files and unrelated files in the same directory.
  for (const char* other : {"main.default.other", "main.default.events_v2", "default.events"}) {
    auto o = Options();
    o.table_name = other;
    o.max_records_per_file = 1;
    auto w = DebugWriter::Open(o);
    ASSERT_TRUE(w.ok());
    for (int i = 0; i < 4; ++i) ASSERT_TRUE((*w)->WriteArrow(*MakeBatch(i, 1)).ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  { std::ofstream(fs::path(dir_) / "notes.txt") << "keep me"; }
  auto o = Options();
  o.max_records_per_file = 1;
  o.max_files_retained = 3;
  auto writer = DebugWriter::Open(o);
  ASSERT_TRUE(writer.ok());
  for (int i = 0; i < 8; ++i) ASSERT_TRUE((*writer)->WriteArrow(*MakeBatch(i, 1)).ok());
  ASSERT_TRUE((*writer)->Close().ok());
  const auto files = Files(DebugFormat::kArrow);
  ASSERT_EQ(files.size(), 3u);
  // The newest three remain.
  std::vector<int64_t> kept;
  for (const auto& f : files) {
    auto t = ReadArrowDebugFile(f);
    ASSERT_TRUE(t.ok());
    kept.push_back(TableIds(**t)[0]);
  }
  EXPECT_EQ(kept, Range(5, 8));
  EXPECT_EQ((*writer)->stats().files_deleted, 5);
  EXPECT_EQ(Files(DebugFormat::kArrow, "main.default.other").size(), 4u);
  EXPECT_EQ(Files(DebugFormat::kArrow, "main.default.events_v2").size(), 4u);
  EXPECT_EQ(Files(DebugFormat::kArrow, "default.events").size(), 4u);
  EXPECT_TRUE(fs::exists(fs::path(dir_) / "notes.txt"));
}

TEST_F(DebugWriterTest, RotateClosesCurrentFiles) {
  auto writer = DebugWriter::Open(Options());
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteArrow(*MakeBatch(0, 4)).ok());
  ASSERT_TRUE((*writer)->Rotate().ok());
  auto files = Files(DebugFormat::kArrow);
  ASSERT_EQ(files.size(), 1u);
  const auto closed_size = fs::file_size(files[0]);
  auto first = ReadArrowDebugFile(files[0]);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(TableIds(**first), Range(0, 4));
  ASSERT_TRUE((*writer)->Rotate().ok());  // nothing open: no empty file appears
  EXPECT_EQ(Files(DebugFormat::kArrow).size(), 1u);
  ASSERT_TRUE((*writer)->WriteArrow(*MakeBatch(4, 2)).ok());
  ASSERT_TRUE((*writer)->Close().ok());
  files = Files(DebugFormat::kArrow);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(fs::file_size(files[0]), closed_size);  // the rotated file is never written again
  const auto stats = (*writer)->stats();
  EXPECT_EQ(stats.arrow_files, 2);
  EXPECT_EQ(stats.arrow_rows, 6);
  EXPECT_EQ(stats.bytes_written,
            static_cast<int64_t>(fs::file_size(files[0]) + fs::file_size(files[1])));
}

TEST_F(DebugWriterTest, SchemaChangeStartsNewFile) {
  auto writer = DebugWriter::Open(Options());
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteArrow(*MakeBatch(0, 2)).ok());
  auto other_schema = arrow::schema({arrow::field("id", arrow::int64(), false)});
  arrow::Int64Builder b;
  ASSERT_TRUE(b.AppendValues({100, 101}).ok());
  auto other = arrow::RecordBatch::Make(other_schema, 2, {b.Finish().ValueOrDie()});
  ASSERT_TRUE((*writer)->WriteArrow(*other).ok());
  ASSERT_TRUE((*writer)->Close().ok());
  const auto files = Files(DebugFormat::kArrow);
  ASSERT_EQ(files.size(), 2u);
  auto second = ReadArrowDebugFile(files[1]);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*second)->num_columns(), 1);
  EXPECT_EQ(TableIds(**second), (std::vector<int64_t>{100, 101}));
}

// ---------------------------------------------------------------------------------------------
// Protobuf

google::protobuf::DescriptorProto RowDescriptor(const std::string& name = "Row") {
  google::protobuf::DescriptorProto d;
  d.set_name(name);
  auto* id = d.add_field();
  id->set_name("id");
  id->set_number(1);
  id->set_label(google::protobuf::FieldDescriptorProto::LABEL_REQUIRED);
  id->set_type(google::protobuf::FieldDescriptorProto::TYPE_INT64);
  auto* text = d.add_field();
  text->set_name("text");
  text->set_number(2);
  text->set_label(google::protobuf::FieldDescriptorProto::LABEL_OPTIONAL);
  text->set_type(google::protobuf::FieldDescriptorProto::TYPE_STRING);
  return d;
}

// Serialized messages made with protobuf's own reflection, independent of our encoder.
class RowMaker {
 public:
  explicit RowMaker(const google::protobuf::DescriptorProto& d) {
    google::protobuf::FileDescriptorProto file;
    file.set_name("row.proto");
    file.set_syntax("proto2");
    *file.add_message_type() = d;
    file_ = pool_.BuildFile(file);
    desc_ = pool_.FindMessageTypeByName(d.name());
  }
  std::string Make(int64_t id, const std::string& text) {
    std::unique_ptr<google::protobuf::Message> m(factory_.GetPrototype(desc_)->New());
    m->GetReflection()->SetInt64(m.get(), desc_->FindFieldByName("id"), id);
    m->GetReflection()->SetString(m.get(), desc_->FindFieldByName("text"), text);
    return m->SerializeAsString();
  }
  std::unique_ptr<google::protobuf::Message> Parse(const std::string& bytes) {
    std::unique_ptr<google::protobuf::Message> m(factory_.GetPrototype(desc_)->New());
    EXPECT_TRUE(m->ParseFromString(bytes));
    return m;
  }
  int64_t Id(const google::protobuf::Message& m) {
    return m.GetReflection()->GetInt64(m, desc_->FindFieldByName("id"));
  }

 private:
  google::protobuf::DescriptorPool pool_;
  google::protobuf::DynamicMessageFactory factory_;
  const google::protobuf::FileDescriptor* file_ = nullptr;
  const google::protobuf::Descriptor* desc_ = nullptr;
};

TEST_F(DebugWriterTest, ProtobufRecordsReadBackInCppAndPython) {
  const auto descriptor = RowDescriptor();
  RowMaker maker(descriptor);
  std::vector<std::string> rows;
  // Sizes around the one-byte varint limit (127/128) and an empty string.
  for (int i = 0; i < 6; ++i) rows.push_back(maker.Make(i, std::string(i * 40, 'x')));
  rows.push_back(maker.Make(6, ""));
  std::vector<std::string_view> views(rows.begin(), rows.end());
  auto o = Options();
  o.arrow_enabled = false;
  auto writer = DebugWriter::Open(o);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteProtobuf(descriptor, views).ok());
  ASSERT_TRUE((*writer)->Close().ok());
  EXPECT_TRUE(Files(DebugFormat::kArrow).empty());
  const auto files = Files(DebugFormat::kProtobuf);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_TRUE(fs::exists(files[0].substr(0, files[0].size() - 3) + ".desc"));

  auto back = ReadProtobufDebugFile(files[0]);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->descriptor.SerializeAsString(), descriptor.SerializeAsString());
  EXPECT_EQ(back->records, rows);

  const auto json = ReadWithPython("protobuf", files);
  ASSERT_FALSE(json.is_discarded());
  const auto& f = json["files"][0];
  EXPECT_EQ(f["message"], "Row");
  ASSERT_EQ(f["records"].size(), 7u);
  EXPECT_EQ(f["records"][3]["id"], "3");  // int64 in proto JSON is a string
  EXPECT_EQ(f["records"][3]["text"], std::string(120, 'x'));
  EXPECT_EQ(f["records"][6]["id"], "6");
}

TEST_F(DebugWriterTest, ProtobufFromEncoderAndRotationByCount) {
  auto batch = MakeBatch(0, 7);
  auto encoder = RecordBatchEncoder::Make(batch->schema());
  ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
  auto encoded = (*encoder)->Encode(*batch);
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  auto o = Options();
  o.max_records_per_file = 3;
  auto writer = DebugWriter::Open(o);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteProtobuf((*encoder)->descriptor(), *encoded).ok());
  ASSERT_TRUE((*writer)->WriteArrow(*batch).ok());
  ASSERT_TRUE((*writer)->Close().ok());
  const auto files = Files(DebugFormat::kProtobuf);
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(Files(DebugFormat::kArrow).size(), 3u);
  const auto json = ReadWithPython("protobuf", files);
  std::vector<std::string> ids;
  for (const auto& file : json["files"]) {
    for (const auto& rec : file["records"]) ids.push_back(rec["id"].get<std::string>());
  }
  EXPECT_THAT(ids, ElementsAre("0", "1", "2", "3", "4", "5", "6"));
  EXPECT_EQ(json["files"][2]["records"][0]["name"], "name-6");
}

TEST_F(DebugWriterTest, DescriptorChangeStartsNewProtobufFile) {
  const auto d1 = RowDescriptor("RowA");
  const auto d2 = RowDescriptor("RowB");
  RowMaker m1(d1), m2(d2);
  const std::string a = m1.Make(1, "a"), b = m2.Make(2, "b");
  auto writer = DebugWriter::Open(Options());
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteProtobuf(d1, {a}).ok());
  ASSERT_TRUE((*writer)->WriteProtobuf(d2, {b}).ok());
  ASSERT_TRUE((*writer)->Close().ok());
  const auto files = Files(DebugFormat::kProtobuf);
  ASSERT_EQ(files.size(), 2u);
  auto first = ReadProtobufDebugFile(files[0]);
  auto second = ReadProtobufDebugFile(files[1]);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->descriptor.name(), "RowA");
  EXPECT_EQ(second->descriptor.name(), "RowB");
  EXPECT_EQ(m2.Id(*m2.Parse(second->records.at(0))), 2);
}

TEST_F(DebugWriterTest, ProtobufRetentionRemovesDescriptorsToo) {
  const auto d = RowDescriptor();
  RowMaker maker(d);
  auto o = Options();
  o.max_records_per_file = 1;
  o.max_files_retained = 2;
  auto writer = DebugWriter::Open(o);
  ASSERT_TRUE(writer.ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE((*writer)->WriteProtobuf(d, {maker.Make(i, "t")}).ok());
  ASSERT_TRUE((*writer)->Close().ok());
  ASSERT_EQ(Files(DebugFormat::kProtobuf).size(), 2u);
  int desc_files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) desc_files += e.path().extension() == ".desc";
  EXPECT_EQ(desc_files, 2);
}

TEST_F(DebugWriterTest, ReadProtobufDebugFileErrors) {
  const auto d = RowDescriptor();
  RowMaker maker(d);
  auto writer = DebugWriter::Open(Options());
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteProtobuf(d, {maker.Make(1, "hello"), maker.Make(2, "world")}).ok());
  ASSERT_TRUE((*writer)->Close().ok());
  const auto file = Files(DebugFormat::kProtobuf).at(0);
  const auto full = fs::file_size(file);
  fs::resize_file(file, full - 2);
  auto st = ReadProtobufDebugFile(file).status();
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("record 1 at byte"));
  EXPECT_THAT(st.message(), HasSubstr("truncated file"));
  // A length whose continuation bit leads nowhere.
  { std::ofstream(file, std::ios::binary | std::ios::trunc) << '\x85'; }
  st = ReadProtobufDebugFile(file).status();
  EXPECT_THAT(st.message(), HasSubstr("record 0 at byte 0: truncated or malformed length"));
  st = ReadProtobufDebugFile(dir_ + "/x.arrows").status();
  EXPECT_THAT(st.message(), HasSubstr("is not a protobuf debug file"));
  fs::remove(file.substr(0, file.size() - 3) + ".desc");
  st = ReadProtobufDebugFile(file).status();
  EXPECT_THAT(st.message(), HasSubstr("cannot open"));
  EXPECT_THAT(st.message(), HasSubstr(".desc"));
  st = ReadArrowDebugFile(file).status();
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("is not an Arrow IPC stream"));
}

// ---------------------------------------------------------------------------------------------
// Options, lifecycle, threads, secrets

TEST_F(DebugWriterTest, OpenRejectsBadOptions) {
  auto o = Options();
  o.output_dir = "";
  EXPECT_THAT(DebugWriter::Open(o).status().message(), HasSubstr("debug_output_dir is required"));
  o = Options();
  o.table_name = "main/../../etc";
  EXPECT_THAT(DebugWriter::Open(o).status().message(),
              HasSubstr("may hold only letters, digits, '_' and '.'"));
  o.table_name = "..hidden";
  EXPECT_THAT(DebugWriter::Open(o).status().message(), HasSubstr("must not start with '.'"));
  o.table_name = "";
  EXPECT_THAT(DebugWriter::Open(o).status().message(), HasSubstr("table_name is empty"));
  o = Options();
  o.max_records_per_file = 0;
  EXPECT_THAT(DebugWriter::Open(o).status().message(),
              HasSubstr("debug_max_records_per_file must be positive"));
  o = Options();
  o.max_file_size = -1;
  EXPECT_THAT(DebugWriter::Open(o).status().message(),
              HasSubstr("debug_max_file_size must be positive"));
  o = Options();
  o.max_files_retained = 0;
  EXPECT_THAT(DebugWriter::Open(o).status().message(),
              HasSubstr("debug_max_files_retained must be positive"));
  o = Options();
  o.flush_interval = std::chrono::milliseconds(0);
  EXPECT_THAT(DebugWriter::Open(o).status().message(),
              HasSubstr("debug_flush_interval_secs must be positive"));
  fs::create_directories(dir_);
  { std::ofstream(fs::path(dir_) / "a_file") << "x"; }
  o = Options();
  o.output_dir = (fs::path(dir_) / "a_file").string();
  EXPECT_THAT(DebugWriter::Open(o).status().message(), HasSubstr("cannot be created"));
}

TEST_F(DebugWriterTest, WritesAfterCloseFail) {
  auto writer = DebugWriter::Open(Options());
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Close().ok());
  ASSERT_TRUE((*writer)->Close().ok());  // idempotent
  auto st = (*writer)->WriteArrow(*MakeBatch(0, 1));
  EXPECT_THAT(st.message(), HasSubstr("is closed"));
  EXPECT_FALSE((*writer)->Flush().ok());
}

TEST_F(DebugWriterTest, ConcurrentWritersFromManyThreads) {
  auto o = Options();
  o.max_records_per_file = 64;
  o.flush_interval = std::chrono::milliseconds(5);
  auto writer = DebugWriter::Open(o);
  ASSERT_TRUE(writer.ok());
  constexpr int kThreads = 4, kBatches = 25, kRows = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        const int64_t first = (t * kBatches + b) * kRows;
        if (!(*writer)->WriteArrow(*MakeBatch(first, kRows)).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE((*writer)->Close().ok());
  std::set<int64_t> ids;
  for (const auto& f : Files(DebugFormat::kArrow)) {
    auto t = ReadArrowDebugFile(f);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_LE((*t)->num_rows(), 64);
    for (int64_t id : TableIds(**t)) ids.insert(id);
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kThreads * kBatches * kRows));
}

TEST_F(DebugWriterTest, FromConfigTakesNoSecrets) {
  const std::string secret = "dbg-s3cr3t-must-not-leak";
  auto c = WrapperConfiguration::Make("https://h.example.com", kTable);
  c.client_id = "id";
  c.client_secret = SecretString(secret);
  c.debug_enabled = true;
  c.debug_output_dir = dir_;
  c.debug_max_files_retained = 4;
  c.debug_flush_interval_secs = 2;
  const auto o = DebugWriterOptions::FromConfig(c);
  EXPECT_TRUE(o.arrow_enabled && o.protobuf_enabled);
  EXPECT_EQ(o.max_files_retained, std::optional<int64_t>(4));
  EXPECT_EQ(o.flush_interval, std::chrono::seconds(2));
  EXPECT_EQ(o.table_name, kTable);
  auto writer = DebugWriter::Open(o);
  ASSERT_TRUE(writer.ok());
  const auto d = RowDescriptor();
  RowMaker maker(d);
  ASSERT_TRUE((*writer)->WriteArrow(*MakeBatch(0, 3)).ok());
  ASSERT_TRUE((*writer)->WriteProtobuf(d, {maker.Make(1, "x")}).ok());
  ASSERT_TRUE((*writer)->Close().ok());
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    ++files;
    std::ifstream in(e.path(), std::ios::binary);
    const std::string content((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(content.find(secret), std::string::npos) << e.path();
  }
  EXPECT_EQ(files, 3);  // .arrows, .pb, .desc
}

TEST(DebugFileName, ParsesOnlyDebugFiles) {
  auto n = ParseDebugFileName("main.default.events--20250101T120000Z--000042.arrows");
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->table, "main.default.events");
  EXPECT_EQ(n->timestamp, "20250101T120000Z");
  EXPECT_EQ(n->sequence, 42);
  EXPECT_EQ(n->extension, "arrows");
  EXPECT_TRUE(ParseDebugFileName("t--20250101T120000Z--1.pb").has_value());
  EXPECT_FALSE(ParseDebugFileName("t--20250101T120000Z--1.parquet").has_value());
  EXPECT_FALSE(ParseDebugFileName("t--2025-01-01--1.pb").has_value());
  EXPECT_FALSE(ParseDebugFileName("t--20250101T120000Z--x1.pb").has_value());
  EXPECT_FALSE(ParseDebugFileName("--20250101T120000Z--1.pb").has_value());
  EXPECT_FALSE(ParseDebugFileName("notes.txt").has_value());
  EXPECT_FALSE(ParseDebugFileName("a--b--20250101T120000Z--1.pb").has_value());
}

}  // namespace
}  // namespace arrow_zerobus
