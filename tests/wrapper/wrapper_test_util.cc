#include "wrapper_test_util.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include <arrow/io/file.h>
#include <nlohmann/json.hpp>
#include <parquet/arrow/reader.h>

namespace arrow_zerobus::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::random_device rd;
  path_ = (fs::temp_directory_path() /
           ("az_wrapper_" + std::to_string(rd()) + "_" + std::to_string(rd())))
              .string();
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::unique_ptr<emulator::Emulator> StartEmulator(const std::string& dir,
                                                  std::vector<emulator::TableDeclaration> tables,
                                                  bool strict) {
  auto o = emulator::EmulatorOptions::Defaults();
  o.data_dir = dir;
  o.commit_interval_ms = 2;
  o.fsync = false;
  o.principals = {{kClientId, kClientSecret}};
  o.tables = std::move(tables);
  o.strict = strict;
  auto emu = std::make_unique<emulator::Emulator>(std::move(o));
  auto st = emu->Start();
  if (!st.ok()) {
    ADD_FAILURE() << "emulator did not start: " << st.ToString();
    return nullptr;
  }
  return emu;
}

void UseFastTimings(WrapperConfiguration* config) {
  WrapperConfiguration& c = *config;
  c.retry_max_attempts = 3;
  c.retry_base_delay_ms = 5;
  c.retry_max_delay_ms = 20;
  c.stream_open_timeout_ms = 3000;
  c.recovery_backoff_ms = 10;
  c.recovery_retries = 1;
  c.ack_timeout_ms = 3000;
  c.flush_timeout_ms = 15000;
  c.cooldown_jitter_ms = 0;
  c.failure_rate_threshold = 1.0;
}

WrapperConfiguration FastConfig(const emulator::Emulator& emu, const std::string& table) {
  auto c = WrapperConfiguration::Make(emu.grpc_endpoint(), table);
  c.client_id = kClientId;
  c.client_secret = SecretString(kClientSecret);
  c.unity_catalog_url = emu.http_endpoint();
  UseFastTimings(&c);
  c.failure_cooldown_ms = 200;
  c.pipeline_blocked_cooldown_ms = 200;
  return c;
}

std::shared_ptr<arrow::Schema> RowSchema() {
  return arrow::schema({arrow::field("id", arrow::int64(), /*nullable=*/false),
                        arrow::field("name", arrow::utf8())});
}

namespace {

std::shared_ptr<arrow::RecordBatch> Build(int64_t first_id, int64_t n, int64_t name_bytes,
                                          const std::vector<int64_t>& null_rows) {
  arrow::Int64Builder ids;
  arrow::StringBuilder names;
  std::string pad(static_cast<size_t>(std::max<int64_t>(0, name_bytes - 8)), 'x');
  for (int64_t i = 0; i < n; ++i) {
    const int64_t id = first_id + i;
    if (std::find(null_rows.begin(), null_rows.end(), i) != null_rows.end()) {
      EXPECT_TRUE(ids.AppendNull().ok());
    } else {
      EXPECT_TRUE(ids.Append(id).ok());
    }
    if (id % 5 == 4) {
      EXPECT_TRUE(names.AppendNull().ok());
    } else {
      EXPECT_TRUE(names.Append("n" + std::to_string(id) + pad).ok());
    }
  }
  return arrow::RecordBatch::Make(RowSchema(), n,
                                  {ids.Finish().ValueOrDie(), names.Finish().ValueOrDie()});
}

}  // namespace

std::shared_ptr<arrow::RecordBatch> MakeRows(int64_t first_id, int64_t n, int64_t name_bytes) {
  return Build(first_id, n, name_bytes, {});
}

std::shared_ptr<arrow::RecordBatch> MakeRowsWithNullIds(int64_t first_id, int64_t n,
                                                        const std::vector<int64_t>& null_rows) {
  return Build(first_id, n, 8, null_rows);
}

arrow::Result<std::shared_ptr<arrow::Table>> ReadDeltaTable(emulator::Emulator& emu,
                                                            const std::string& table) {
  ARROW_RETURN_NOT_OK(emu.store().Flush());
  ARROW_ASSIGN_OR_RAISE(std::string dir, emu.store().TablePath(table));
  // The live files: every "add" of the log not later removed.
  std::vector<fs::path> commits;
  for (const auto& e : fs::directory_iterator(fs::path(dir) / "_delta_log")) {
    if (e.path().extension() == ".json") commits.push_back(e.path());
  }
  std::sort(commits.begin(), commits.end());
  std::vector<std::string> files;
  for (const auto& commit : commits) {
    std::ifstream in(commit);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const auto action = nlohmann::json::parse(line);
      if (action.contains("add")) files.push_back(action["add"]["path"].get<std::string>());
      if (action.contains("remove")) {
        const auto gone = action["remove"]["path"].get<std::string>();
        files.erase(std::remove(files.begin(), files.end(), gone), files.end());
      }
    }
  }
  std::vector<std::shared_ptr<arrow::Table>> parts;
  for (const auto& f : files) {
    ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::ReadableFile::Open((fs::path(dir) / f).string()));
    ARROW_ASSIGN_OR_RAISE(auto reader, parquet::arrow::OpenFile(file, arrow::default_memory_pool()));
    ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Table> t, reader->ReadTable());
    parts.push_back(std::move(t));
  }
  if (parts.empty()) return arrow::Status::Invalid("table ", table, " has no data files");
  return arrow::ConcatenateTables(parts);
}

arrow::Result<std::vector<int64_t>> ReadDeltaIds(emulator::Emulator& emu, const std::string& table) {
  ARROW_ASSIGN_OR_RAISE(auto t, ReadDeltaTable(emu, table));
  auto column = t->GetColumnByName("id");
  if (!column) return arrow::Status::Invalid("no id column in ", table);
  std::vector<int64_t> ids;
  for (const auto& chunk : column->chunks()) {
    const auto& values = static_cast<const arrow::Int64Array&>(*chunk);
    for (int64_t i = 0; i < values.length(); ++i) ids.push_back(values.Value(i));
  }
  return ids;
}

int64_t TableRows(emulator::Emulator& emu, const std::string& table) {
  EXPECT_TRUE(emu.store().Flush().ok());
  auto stats = emu.store().Stats(table);
  if (!stats.ok()) return -1;
  return stats->rows;
}

std::vector<EmulatorStream> EmulatorStreams(emulator::Emulator& emu, const std::string& table) {
  std::vector<EmulatorStream> out;
  const auto j = emu.Stats();
  for (const auto& s : j["streams"]) {
    if (s["table"].get<std::string>() != table) continue;
    out.push_back({s["stream_id"].get<std::string>(), s["requests"].get<int64_t>(),
                   s["rows"].get<int64_t>(), s["open"].get<bool>()});
  }
  return out;
}

void ExpectAccounted(const TransmissionResult& r, int64_t total_rows) {
  EXPECT_TRUE(r.CheckInvariants().ok()) << r.CheckInvariants().ToString();
  EXPECT_EQ(r.total_rows, total_rows);
  EXPECT_EQ(r.successful_count + r.failed_count, total_rows);
  EXPECT_EQ(static_cast<int64_t>(r.successful_rows.size() + r.failed_rows.size()), total_rows);
}

}  // namespace arrow_zerobus::testing
