#include "inputs.h"

#include <glob.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>

#include <arrow/csv/api.h>
#include <arrow/io/file.h>
#include <arrow/io/stdio.h>
#include <arrow/ipc/reader.h>
#include <arrow/json/api.h>
#include <arrow/type.h>
#include <parquet/arrow/reader.h>
#include <parquet/file_reader.h>
#include <parquet/metadata.h>

namespace arrow_zerobus::cli {

namespace fs = std::filesystem;

namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::optional<InputFormat> FormatFromExtension(const std::string& path) {
  const std::string ext = Lower(fs::path(path).extension().string());
  if (ext == ".parquet" || ext == ".pq" || ext == ".parq") return InputFormat::kParquet;
  if (ext == ".arrows") return InputFormat::kIpcStream;
  if (ext == ".csv") return InputFormat::kCsv;
  if (ext == ".jsonl" || ext == ".ndjson" || ext == ".json") return InputFormat::kJsonLines;
  return std::nullopt;  // .arrow / .feather / .ipc and others: decided by the magic bytes
}

bool KnownExtension(const std::string& path) {
  const std::string ext = Lower(fs::path(path).extension().string());
  return FormatFromExtension(path).has_value() || ext == ".arrow" || ext == ".feather" ||
         ext == ".ipc";
}

// Parquet and Arrow IPC files say what they are in their first bytes.
arrow::Result<InputFormat> SniffFormat(const std::string& path) {
  auto opened = arrow::io::ReadableFile::Open(path);
  if (!opened.ok()) return InputError(path, "cannot open: " + opened.status().message());
  auto head = (*opened)->Read(6);
  if (!head.ok()) return InputError(path, "cannot read: " + head.status().message());
  const std::string magic = (*head)->ToString();
  if (magic.rfind("PAR1", 0) == 0) return InputFormat::kParquet;
  if (magic == "ARROW1") return InputFormat::kIpcFile;
  // An IPC stream starts with a continuation marker (0xFFFFFFFF) or, in old files, a length.
  if (magic.size() >= 4 && static_cast<unsigned char>(magic[0]) == 0xFF &&
      static_cast<unsigned char>(magic[1]) == 0xFF) {
    return InputFormat::kIpcStream;
  }
  return InputError(path,
                    "unknown format: give a .parquet, .arrow/.feather (IPC file), .arrows (IPC "
                    "stream), .csv or .jsonl file");
}

arrow::Result<InputFile> Describe(const std::string& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) return InputError(path, "no such file");
  if (!fs::is_regular_file(status)) return InputError(path, "not a regular file");
  InputFile f;
  f.path = path;
  f.size_bytes = static_cast<int64_t>(fs::file_size(path, ec));
  if (auto fmt = FormatFromExtension(path)) {
    f.format = *fmt;
  } else {
    ARROW_ASSIGN_OR_RAISE(f.format, SniffFormat(path));
  }
  return f;
}

bool Hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && (name[0] == '.' || name[0] == '_');
}

// A reader over raw batches from `next`: slices them to batch_rows, skips leading rows,
// validates untrusted formats, drops quarantine columns, and names the file in every error.
class BatchInput : public InputReader {
 public:
  using NextFn = std::function<arrow::Result<std::shared_ptr<arrow::RecordBatch>>()>;

  BatchInput(InputFile file, std::shared_ptr<arrow::Schema> schema, std::optional<int64_t> rows,
             NextFn next, const InputOptions& options, int64_t skip_rows, bool validate,
             std::function<std::string(int64_t)> where)
      : file_(std::move(file)),
        raw_schema_(std::move(schema)),
        rows_(rows),
        next_(std::move(next)),
        batch_rows_(std::max<int64_t>(1, options.batch_rows)),
        skip_(skip_rows),
        validate_(validate),
        where_(std::move(where)) {
    schema_ = raw_schema_;
    if (options.drop_quarantine_columns) {
      for (const char* name : kQuarantineColumns) {
        const int i = schema_->GetFieldIndex(name);
        if (i >= 0) {
          schema_ = *schema_->RemoveField(i);
          dropped_.push_back(name);
        }
      }
    }
  }

  const InputFile& file() const override { return file_; }
  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }
  std::optional<int64_t> known_rows() const override { return rows_; }

  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Next() override {
    while (true) {
      if (!current_ || offset_ >= current_->num_rows()) {
        auto raw = next_();
        if (!raw.ok()) return InputError(file_.path, where_(rows_read_) + raw.status().message());
        current_ = *raw;
        offset_ = 0;
        if (!current_) return nullptr;
        if (validate_) {
          // IPC bytes are untrusted: bad offsets would be read out of bounds by the encoder.
          arrow::Status st = current_->ValidateFull();
          if (!st.ok()) {
            return InputError(file_.path, where_(rows_read_) + "invalid Arrow data: " + st.message());
          }
        }
        if (!current_->schema()->Equals(*raw_schema_, /*check_metadata=*/false)) {
          return InputError(file_.path, where_(rows_read_) +
                                            "a batch's schema differs from the file's: " +
                                            current_->schema()->ToString());
        }
        for (const auto& name : dropped_) {
          const int i = current_->schema()->GetFieldIndex(name);
          ARROW_ASSIGN_OR_RAISE(current_, current_->RemoveColumn(i));
        }
      }
      const int64_t available = current_->num_rows() - offset_;
      if (skip_ > 0) {
        const int64_t skipped = std::min(skip_, available);
        skip_ -= skipped;
        offset_ += skipped;
        rows_read_ += skipped;
        continue;
      }
      const int64_t take = std::min(batch_rows_, available);
      auto out = offset_ == 0 && take == current_->num_rows() ? current_
                                                              : current_->Slice(offset_, take);
      offset_ += take;
      rows_read_ += take;
      return out;
    }
  }

  // Rows already skipped before this reader existed (whole Parquet row groups).
  void set_rows_read(int64_t rows) { rows_read_ = rows; }

 private:
  InputFile file_;
  std::shared_ptr<arrow::Schema> raw_schema_, schema_;
  std::optional<int64_t> rows_;
  NextFn next_;
  int64_t batch_rows_;
  int64_t skip_;
  bool validate_;
  std::function<std::string(int64_t)> where_;
  std::vector<std::string> dropped_;
  std::shared_ptr<arrow::RecordBatch> current_;
  int64_t offset_ = 0;
  int64_t rows_read_ = 0;
};

std::string AtRow(int64_t row) { return "at row " + std::to_string(row) + ": "; }

arrow::Result<std::unique_ptr<InputReader>> OpenParquet(const InputFile& f, const InputOptions& o,
                                                        int64_t skip_rows) {
  auto opened = arrow::io::ReadableFile::Open(f.path);
  if (!opened.ok()) return InputError(f.path, "cannot open: " + opened.status().message());
  // Bounded memory: no pre-buffering (it would cache the column chunks of every row group
  // selected, i.e. the whole file), and each column chunk is read through a 1 MiB buffer
  // instead of whole (row groups can be hundreds of MB).
  parquet::ReaderProperties read_properties = parquet::default_reader_properties();
  read_properties.enable_buffered_stream();
  read_properties.set_buffer_size(1 << 20);
  parquet::ArrowReaderProperties arrow_properties;
  arrow_properties.set_pre_buffer(false);
  arrow_properties.set_batch_size(o.batch_rows);
  parquet::arrow::FileReaderBuilder builder;
  arrow::Status footer = builder.Open(*opened, read_properties);
  if (!footer.ok()) return InputError(f.path, "not a readable Parquet file: " + footer.message());
  auto made =
      builder.memory_pool(arrow::default_memory_pool())->properties(arrow_properties)->Build();
  if (!made.ok()) return InputError(f.path, "not a readable Parquet file: " + made.status().message());
  std::shared_ptr<parquet::arrow::FileReader> reader(std::move(*made));
  auto metadata = reader->parquet_reader()->metadata();
  // Row groups wholly before skip_rows are not read at all.
  std::vector<int> groups;
  std::vector<int64_t> group_first_row;
  int64_t first = 0, skipped = 0;
  for (int g = 0; g < metadata->num_row_groups(); ++g) {
    const int64_t n = metadata->RowGroup(g)->num_rows();
    if (first + n <= skip_rows) {
      skipped += n;
    } else {
      groups.push_back(g);
      group_first_row.push_back(first);
    }
    first += n;
  }
  std::shared_ptr<arrow::Schema> schema;
  auto st = reader->GetSchema(&schema);
  if (!st.ok()) return InputError(f.path, "unreadable schema: " + st.message());
  auto batches = reader->GetRecordBatchReader(groups);
  if (!batches.ok()) return InputError(f.path, batches.status().message());
  std::shared_ptr<arrow::RecordBatchReader> stream(std::move(*batches));
  auto next = [reader, stream]() -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
    std::shared_ptr<arrow::RecordBatch> b;
    ARROW_RETURN_NOT_OK(stream->ReadNext(&b));
    return b;
  };
  auto where = [groups, group_first_row](int64_t row) {
    for (size_t i = groups.size(); i-- > 0;) {
      if (row >= group_first_row[i]) {
        return "row group " + std::to_string(groups[i]) + ", " + AtRow(row);
      }
    }
    return AtRow(row);
  };
  auto input = std::make_unique<BatchInput>(f, schema, metadata->num_rows(), next, o,
                                            skip_rows - skipped, false, where);
  input->set_rows_read(skipped);
  return input;
}

arrow::Result<std::unique_ptr<InputReader>> OpenIpcFile(const InputFile& f, const InputOptions& o,
                                                        int64_t skip_rows) {
  auto opened = arrow::io::ReadableFile::Open(f.path);
  if (!opened.ok()) return InputError(f.path, "cannot open: " + opened.status().message());
  auto made = arrow::ipc::RecordBatchFileReader::Open(*opened);
  if (!made.ok()) return InputError(f.path, "not a readable Arrow IPC file: " + made.status().message());
  std::shared_ptr<arrow::ipc::RecordBatchFileReader> reader = *made;
  std::optional<int64_t> rows;
  if (auto counted = reader->CountRows(); counted.ok()) rows = *counted;
  auto index = std::make_shared<int>(0);
  auto next = [reader, index]() -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
    if (*index >= reader->num_record_batches()) return nullptr;
    return reader->ReadRecordBatch((*index)++);
  };
  auto where = [index](int64_t row) {
    return "batch " + std::to_string(std::max(0, *index - 1)) + ", " + AtRow(row);
  };
  return std::make_unique<BatchInput>(f, reader->schema(), rows, next, o, skip_rows, true, where);
}

arrow::Result<std::unique_ptr<InputReader>> OpenIpcStream(const InputFile& f,
                                                          const InputOptions& o,
                                                          int64_t skip_rows) {
  std::shared_ptr<arrow::io::InputStream> in;
  if (f.path == "-") {
    in = std::make_shared<arrow::io::StdinStream>();
  } else {
    auto opened = arrow::io::ReadableFile::Open(f.path);
    if (!opened.ok()) return InputError(f.path, "cannot open: " + opened.status().message());
    in = *opened;
  }
  auto made = arrow::ipc::RecordBatchStreamReader::Open(in);
  if (!made.ok()) {
    return InputError(f.path, "not a readable Arrow IPC stream: " + made.status().message());
  }
  std::shared_ptr<arrow::RecordBatchReader> reader = *made;
  auto count = std::make_shared<int>(0);
  auto next = [reader, in, count]() -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
    std::shared_ptr<arrow::RecordBatch> b;
    ARROW_RETURN_NOT_OK(reader->ReadNext(&b));
    if (b) ++*count;
    return b;
  };
  auto where = [count](int64_t row) {
    return "batch " + std::to_string(*count) + ", " + AtRow(row);
  };
  return std::make_unique<BatchInput>(f, reader->schema(), std::nullopt, next, o, skip_rows, true,
                                      where);
}

arrow::Result<std::unique_ptr<InputReader>> OpenCsv(const InputFile& f, const InputOptions& o,
                                                    int64_t skip_rows) {
  auto opened = arrow::io::ReadableFile::Open(f.path);
  if (!opened.ok()) return InputError(f.path, "cannot open: " + opened.status().message());
  auto read = arrow::csv::ReadOptions::Defaults();
  read.use_threads = false;  // rows in file order, one core left to the encoder
  auto parse = arrow::csv::ParseOptions::Defaults();
  auto convert = arrow::csv::ConvertOptions::Defaults();
  if (o.schema) {
    for (const auto& field : o.schema->fields()) convert.column_types[field->name()] = field->type();
  }
  auto made = arrow::csv::StreamingReader::Make(arrow::io::default_io_context(), *opened, read,
                                                parse, convert);
  if (!made.ok()) return InputError(f.path, "not a readable CSV file: " + made.status().message());
  std::shared_ptr<arrow::csv::StreamingReader> reader = *made;
  auto next = [reader]() -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
    std::shared_ptr<arrow::RecordBatch> b;
    ARROW_RETURN_NOT_OK(reader->ReadNext(&b));
    return b;
  };
  // Row numbers of the data (the header line is not a row).
  return std::make_unique<BatchInput>(f, reader->schema(), std::nullopt, next, o, skip_rows,
                                      false, AtRow);
}

arrow::Result<std::unique_ptr<InputReader>> OpenJsonLines(const InputFile& f,
                                                          const InputOptions& o,
                                                          int64_t skip_rows) {
  auto opened = arrow::io::ReadableFile::Open(f.path);
  if (!opened.ok()) return InputError(f.path, "cannot open: " + opened.status().message());
  auto read = arrow::json::ReadOptions::Defaults();
  read.use_threads = false;
  auto parse = arrow::json::ParseOptions::Defaults();
  if (o.schema) {
    parse.explicit_schema = o.schema;
    // A field the schema does not have is an error, not silently dropped.
    parse.unexpected_field_behavior = arrow::json::UnexpectedFieldBehavior::Error;
  }
  auto made = arrow::json::StreamingReader::Make(*opened, read, parse);
  if (!made.ok()) {
    return InputError(f.path, "not a readable JSON Lines file: " + made.status().message());
  }
  std::shared_ptr<arrow::json::StreamingReader> reader = *made;
  auto next = [reader]() -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
    std::shared_ptr<arrow::RecordBatch> b;
    ARROW_RETURN_NOT_OK(reader->ReadNext(&b));
    return b;
  };
  return std::make_unique<BatchInput>(f, reader->schema(), std::nullopt, next, o, skip_rows,
                                      false, AtRow);
}

}  // namespace

const char* InputFormatName(InputFormat f) {
  switch (f) {
    case InputFormat::kParquet: return "parquet";
    case InputFormat::kIpcFile: return "arrow-ipc-file";
    case InputFormat::kIpcStream: return "arrow-ipc-stream";
    case InputFormat::kCsv: return "csv";
    case InputFormat::kJsonLines: return "jsonl";
  }
  return "?";
}

arrow::Status InputError(const std::string& path, const std::string& what) {
  return arrow::Status::IOError("Input error: ", path == "-" ? "<stdin>" : path, ": ", what);
}

arrow::Result<std::vector<InputFile>> ResolveInputs(const std::vector<std::string>& args) {
  std::vector<InputFile> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& path) -> arrow::Status {
    if (!seen.insert(path).second) return arrow::Status::OK();  // named twice: sent once
    ARROW_ASSIGN_OR_RAISE(auto f, Describe(path));
    out.push_back(std::move(f));
    return arrow::Status::OK();
  };
  if (args.empty()) return arrow::Status::Invalid("Input error: no input given");
  for (const auto& arg : args) {
    if (arg == "-") {
      if (args.size() != 1) return InputError("-", "stdin cannot be mixed with other inputs");
      out.push_back({"-", InputFormat::kIpcStream, -1});
      continue;
    }
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      std::vector<std::string> files;
      for (auto it = fs::recursive_directory_iterator(arg, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (Hidden(it->path())) {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        if (it->is_regular_file() && KnownExtension(it->path().string())) {
          files.push_back(it->path().string());
        }
      }
      if (ec) return InputError(arg, "cannot list the directory: " + ec.message());
      if (files.empty()) return InputError(arg, "the directory holds no input file");
      std::sort(files.begin(), files.end());
      for (const auto& f : files) ARROW_RETURN_NOT_OK(add(f));
      continue;
    }
    if (arg.find_first_of("*?[") != std::string::npos && !fs::exists(arg, ec)) {
      glob_t g{};
      const int rc = glob(arg.c_str(), 0, nullptr, &g);
      std::vector<std::string> files;
      if (rc == 0) {
        for (size_t i = 0; i < g.gl_pathc; ++i) files.push_back(g.gl_pathv[i]);
      }
      globfree(&g);
      if (files.empty()) return InputError(arg, "no file matches the pattern");
      for (const auto& f : files) ARROW_RETURN_NOT_OK(add(f));
      continue;
    }
    ARROW_RETURN_NOT_OK(add(arg));
  }
  return out;
}

arrow::Result<std::unique_ptr<InputReader>> OpenInput(const InputFile& file,
                                                      const InputOptions& options,
                                                      int64_t skip_rows) {
  switch (file.format) {
    case InputFormat::kParquet: return OpenParquet(file, options, skip_rows);
    case InputFormat::kIpcFile: return OpenIpcFile(file, options, skip_rows);
    case InputFormat::kIpcStream: return OpenIpcStream(file, options, skip_rows);
    case InputFormat::kCsv: return OpenCsv(file, options, skip_rows);
    case InputFormat::kJsonLines: return OpenJsonLines(file, options, skip_rows);
  }
  return InputError(file.path, "unknown format");
}

arrow::Status CheckSameSchema(const arrow::Schema& expected, const std::string& expected_path,
                              const arrow::Schema& actual, const std::string& actual_path) {
  if (actual.Equals(expected, /*check_metadata=*/false)) return arrow::Status::OK();
  for (const auto& field : expected.fields()) {
    auto other = actual.GetFieldByName(field->name());
    if (!other) {
      return InputError(actual_path, "column '" + field->name() + "' of " + expected_path +
                                         " is missing (every input must have the same columns)");
    }
    if (!other->type()->Equals(*field->type())) {
      return InputError(actual_path, "column '" + field->name() + "' is " +
                                         other->type()->ToString() + ", but " +
                                         field->type()->ToString() + " in " + expected_path);
    }
  }
  for (const auto& field : actual.fields()) {
    if (!expected.GetFieldByName(field->name())) {
      return InputError(actual_path, "column '" + field->name() + "' is not in " + expected_path +
                                         " (every input must have the same columns)");
    }
  }
  return InputError(actual_path, "the columns are in another order or nullability than in " +
                                     expected_path + ": " + actual.ToString());
}

arrow::Result<std::shared_ptr<arrow::Schema>> ReadSchemaOf(const std::string& path) {
  ARROW_ASSIGN_OR_RAISE(auto file, Describe(path));
  if (file.format != InputFormat::kParquet && file.format != InputFormat::kIpcFile &&
      file.format != InputFormat::kIpcStream) {
    return InputError(path, "--schema-from needs a Parquet or Arrow IPC file");
  }
  ARROW_ASSIGN_OR_RAISE(auto reader, OpenInput(file, InputOptions{}));
  return reader->schema();
}

}  // namespace arrow_zerobus::cli
