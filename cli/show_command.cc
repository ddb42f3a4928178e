#include "show_command.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <vector>

#include <arrow/io/file.h>
#include <arrow/record_batch.h>
#include <arrow/scalar.h>
#include <nlohmann/json.hpp>
#include <parquet/arrow/reader.h>
#include <parquet/file_reader.h>
#include <parquet/metadata.h>

namespace arrow_zerobus::cli {

namespace fs = std::filesystem;

namespace {

struct Snapshot {
  int64_t version = -1;
  std::vector<std::string> files;  // data files in the order they were added
};

// Replays the JSON commits: the data files added and not removed since.
arrow::Result<Snapshot> ReadSnapshot(const fs::path& dir) {
  const fs::path log = dir / "_delta_log";
  std::error_code ec;
  if (!fs::is_directory(log, ec)) {
    return arrow::Status::Invalid("'", dir.string(), "' is not a Delta table (no _delta_log)");
  }
  std::vector<std::pair<int64_t, fs::path>> commits;
  for (const auto& e : fs::directory_iterator(log, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() == 25 && name.substr(20) == ".json") {
      commits.emplace_back(std::stoll(name.substr(0, 20)), e.path());
    }
  }
  std::sort(commits.begin(), commits.end());
  if (commits.empty()) return arrow::Status::Invalid("'", dir.string(), "' has no commits");
  if (commits.front().first != 0) {
    return arrow::Status::NotImplemented(
        "'", dir.string(),
        "' starts at a checkpoint; show reads tables written by the emulator (JSON commits "
        "only): use deltalake or DuckDB for this one");
  }
  Snapshot s;
  std::vector<std::string> order;
  std::set<std::string> live;
  for (const auto& [version, path] : commits) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded()) {
        return arrow::Status::Invalid("'", path.string(), "' holds a line that is not JSON");
      }
      if (j.contains("add")) {
        const std::string p = j["add"].value("path", "");
        if (live.insert(p).second) order.push_back(p);
      } else if (j.contains("remove")) {
        live.erase(j["remove"].value("path", ""));
      }
    }
    s.version = version;
  }
  for (const auto& p : order) {
    if (live.count(p)) s.files.push_back(p);
  }
  return s;
}

std::string Cell(const std::shared_ptr<arrow::Array>& column, int64_t row) {
  auto scalar = column->GetScalar(row);
  if (!scalar.ok()) return "?";
  if (!(*scalar)->is_valid) return "null";
  return (*scalar)->ToString();
}

}  // namespace

int RunShow(const std::string& table_dir, int64_t limit) {
  auto snapshot = ReadSnapshot(table_dir);
  if (!snapshot.ok()) {
    std::cerr << "zerobus-arrow show: " << snapshot.status().message() << "\n";
    return 1;
  }
  int64_t rows = 0, shown = 0;
  std::shared_ptr<arrow::Schema> schema;
  std::ostringstream first_rows;
  for (const auto& rel : snapshot->files) {
    const std::string path = (fs::path(table_dir) / rel).string();
    auto file = arrow::io::ReadableFile::Open(path);
    std::unique_ptr<parquet::arrow::FileReader> reader;
    arrow::Status st = file.status();
    if (st.ok()) {
      auto opened = parquet::arrow::OpenFile(*file, arrow::default_memory_pool());
      st = opened.status();
      if (st.ok()) reader = std::move(*opened);
    }
    if (!st.ok()) {
      std::cerr << "zerobus-arrow show: data file '" << path << "': " << st.message() << "\n";
      return 1;
    }
    rows += reader->parquet_reader()->metadata()->num_rows();
    if (!schema) (void)reader->GetSchema(&schema);
    if (shown >= limit) continue;
    auto batches = reader->GetRecordBatchReader();
    if (!batches.ok()) continue;
    std::shared_ptr<arrow::RecordBatch> b;
    while (shown < limit && (*batches)->ReadNext(&b).ok() && b) {
      for (int64_t r = 0; r < b->num_rows() && shown < limit; ++r, ++shown) {
        first_rows << "  {";
        for (int c = 0; c < b->num_columns(); ++c) {
          first_rows << (c ? ", " : "") << b->schema()->field(c)->name() << ": "
                     << Cell(b->column(c), r);
        }
        first_rows << "}\n";
      }
    }
  }
  std::cout << "table " << table_dir << ": " << rows << " rows in " << snapshot->files.size()
            << " data files (Delta version " << snapshot->version << ")\n";
  if (schema) std::cout << "schema:\n" << schema->ToString() << "\n";
  if (shown > 0) std::cout << "first " << shown << " rows:\n" << first_rows.str();
  return 0;
}

}  // namespace arrow_zerobus::cli
