#include "quarantine.h"

#include <filesystem>

#include <arrow/builder.h>
#include <arrow/io/file.h>
#include <arrow/ipc/writer.h>
#include <parquet/arrow/writer.h>

#include "inputs.h"

namespace arrow_zerobus::cli {

namespace fs = std::filesystem;

namespace {
enum Format { kParquet = 0, kIpcFile = 1, kIpcStream = 2 };
}

struct Quarantine::Writer {
  std::shared_ptr<arrow::io::FileOutputStream> out;
  std::unique_ptr<parquet::arrow::FileWriter> parquet;
  std::shared_ptr<arrow::ipc::RecordBatchWriter> ipc;
};

Quarantine::Quarantine(std::string path, int format) : path_(std::move(path)), format_(format) {}

Quarantine::~Quarantine() { (void)Close(); }

arrow::Result<std::unique_ptr<Quarantine>> Quarantine::Open(const std::string& path,
                                                            bool overwrite) {
  std::string ext = fs::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  int format;
  if (ext == ".parquet" || ext == ".pq") {
    format = kParquet;
  } else if (ext == ".arrow" || ext == ".feather") {
    format = kIpcFile;
  } else if (ext == ".arrows") {
    format = kIpcStream;
  } else {
    return arrow::Status::Invalid("--failed-rows: '", path,
                                  "' must end in .parquet, .arrow/.feather or .arrows");
  }
  std::error_code ec;
  if (!overwrite && fs::exists(path, ec)) {
    return arrow::Status::Invalid("--failed-rows: '", path,
                                  "' exists (it may hold rows of an earlier run): choose another "
                                  "file or add --overwrite-failed-rows");
  }
  return std::unique_ptr<Quarantine>(new Quarantine(path, format));
}

bool Quarantine::durable_on_write() const { return format_ == kIpcStream; }

arrow::Status Quarantine::Write(const arrow::RecordBatch& batch, const TransmissionResult& result,
                                const std::string& source_file, int64_t first_row) {
  if (result.failed_rows.empty()) return arrow::Status::OK();
  ARROW_ASSIGN_OR_RAISE(auto failed, result.ExtractFailedBatch(batch));
  const std::vector<int64_t>& doubt = result.in_doubt_rows;
  arrow::StringBuilder file_b, error_b;
  arrow::Int64Builder row_b;
  arrow::BooleanBuilder doubt_b;
  size_t d = 0;
  for (const auto& f : result.failed_rows) {
    ARROW_RETURN_NOT_OK(file_b.Append(source_file));
    ARROW_RETURN_NOT_OK(row_b.Append(first_row + f.row_index));
    ARROW_RETURN_NOT_OK(error_b.Append(f.message));
    while (d < doubt.size() && doubt[d] < f.row_index) ++d;
    ARROW_RETURN_NOT_OK(doubt_b.Append(d < doubt.size() && doubt[d] == f.row_index));
  }
  std::shared_ptr<arrow::Array> file_a, row_a, error_a, doubt_a;
  ARROW_RETURN_NOT_OK(file_b.Finish(&file_a));
  ARROW_RETURN_NOT_OK(row_b.Finish(&row_a));
  ARROW_RETURN_NOT_OK(error_b.Finish(&error_a));
  ARROW_RETURN_NOT_OK(doubt_b.Finish(&doubt_a));
  auto columns = failed->columns();
  auto fields = failed->schema()->fields();
  const std::shared_ptr<arrow::DataType> types[] = {arrow::utf8(), arrow::int64(), arrow::utf8(),
                                                    arrow::boolean()};
  const std::shared_ptr<arrow::Array> arrays[] = {file_a, row_a, error_a, doubt_a};
  for (int i = 0; i < 4; ++i) {
    if (failed->schema()->GetFieldIndex(kQuarantineColumns[i]) >= 0) {
      return arrow::Status::Invalid("--failed-rows: the input already has a column named '",
                                    kQuarantineColumns[i],
                                    "' (send a quarantine file with --drop-quarantine-columns)");
    }
    fields.push_back(arrow::field(kQuarantineColumns[i], types[i], /*nullable=*/false));
    columns.push_back(arrays[i]);
  }
  auto out = arrow::RecordBatch::Make(arrow::schema(fields), failed->num_rows(), columns);
  if (!writer_) {
    schema_ = out->schema();
    writer_ = std::make_unique<Writer>();
    ARROW_ASSIGN_OR_RAISE(writer_->out, arrow::io::FileOutputStream::Open(path_));
    if (format_ == kParquet) {
      ARROW_ASSIGN_OR_RAISE(writer_->parquet,
                            parquet::arrow::FileWriter::Open(*schema_, arrow::default_memory_pool(),
                                                             writer_->out));
    } else if (format_ == kIpcFile) {
      ARROW_ASSIGN_OR_RAISE(writer_->ipc, arrow::ipc::MakeFileWriter(writer_->out, schema_));
    } else {
      ARROW_ASSIGN_OR_RAISE(writer_->ipc, arrow::ipc::MakeStreamWriter(writer_->out, schema_));
    }
  } else if (!out->schema()->Equals(*schema_, false)) {
    return arrow::Status::Invalid("--failed-rows: failed rows of '", source_file,
                                  "' have other columns than earlier ones");
  }
  if (writer_->parquet) {
    ARROW_RETURN_NOT_OK(writer_->parquet->WriteRecordBatch(*out));
  } else {
    ARROW_RETURN_NOT_OK(writer_->ipc->WriteRecordBatch(*out));
    if (format_ == kIpcStream) ARROW_RETURN_NOT_OK(writer_->out->Flush());
  }
  rows_ += out->num_rows();
  return arrow::Status::OK();
}

arrow::Status Quarantine::Close() {
  if (!writer_) return arrow::Status::OK();
  arrow::Status st;
  if (writer_->parquet) st = writer_->parquet->Close();
  if (writer_->ipc) st = writer_->ipc->Close();
  arrow::Status closed = writer_->out->Close();
  writer_.reset();
  return st.ok() ? closed : st;
}

}  // namespace arrow_zerobus::cli
