#include "input_file.h"

#include <arrow/io/file.h>
#include <arrow/ipc/reader.h>
#include <parquet/arrow/reader.h>
#include <parquet/file_reader.h>

namespace arrow_zerobus::cli {

namespace {

// Yields the batches of an IPC file in order.
class IpcFileBatchReader : public arrow::RecordBatchReader {
 public:
  explicit IpcFileBatchReader(std::shared_ptr<arrow::ipc::RecordBatchFileReader> file)
      : file_(std::move(file)) {}
  std::shared_ptr<arrow::Schema> schema() const override { return file_->schema(); }
  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override {
    if (next_ >= file_->num_record_batches()) {
      batch->reset();
      return arrow::Status::OK();
    }
    return file_->ReadRecordBatch(next_++).Value(batch);
  }

 private:
  std::shared_ptr<arrow::ipc::RecordBatchFileReader> file_;
  int next_ = 0;
};

// Parquet's batch reader borrows its FileReader; this one owns both.
class ParquetBatchReader : public arrow::RecordBatchReader {
 public:
  ParquetBatchReader(std::unique_ptr<parquet::arrow::FileReader> file,
                     std::shared_ptr<arrow::RecordBatchReader> batches)
      : file_(std::move(file)), batches_(std::move(batches)) {}
  std::shared_ptr<arrow::Schema> schema() const override { return batches_->schema(); }
  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override {
    return batches_->ReadNext(batch);
  }

 private:
  std::unique_ptr<parquet::arrow::FileReader> file_;
  std::shared_ptr<arrow::RecordBatchReader> batches_;
};

}  // namespace

arrow::Result<std::shared_ptr<arrow::RecordBatchReader>> OpenInputFile(const std::string& path) {
  auto opened = arrow::io::ReadableFile::Open(path);
  if (!opened.ok()) {
    return arrow::Status::IOError("cannot open input file '", path, "': ",
                                  opened.status().message());
  }
  std::shared_ptr<arrow::io::ReadableFile> file = *opened;
  ARROW_ASSIGN_OR_RAISE(int64_t size, file->GetSize());
  ARROW_ASSIGN_OR_RAISE(auto head, file->ReadAt(0, std::min<int64_t>(size, 6)));
  const std::string magic = head->ToString();
  if (magic.rfind("PAR1", 0) == 0) {
    ARROW_ASSIGN_OR_RAISE(auto reader, parquet::arrow::OpenFile(file, arrow::default_memory_pool()));
    ARROW_ASSIGN_OR_RAISE(auto batches, reader->GetRecordBatchReader());
    return std::make_shared<ParquetBatchReader>(std::move(reader), std::move(batches));
  }
  if (magic == "ARROW1") {
    ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchFileReader::Open(file));
    return std::make_shared<IpcFileBatchReader>(std::move(reader));
  }
  auto stream = arrow::ipc::RecordBatchStreamReader::Open(file);
  if (!stream.ok()) {
    return arrow::Status::Invalid("'", path,
                                  "' is neither a Parquet file nor an Arrow IPC file or stream");
  }
  return std::shared_ptr<arrow::RecordBatchReader>(*stream);
}

}  // namespace arrow_zerobus::cli
