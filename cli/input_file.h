// Reads Arrow data from a file: Parquet, Arrow IPC file (.arrow/.feather) or stream (.arrows).
#pragma once

#include <memory>
#include <string>

#include <arrow/record_batch.h>
#include <arrow/result.h>

namespace arrow_zerobus::cli {

// A reader over the file's record batches; the format is chosen by the file's magic bytes.
arrow::Result<std::shared_ptr<arrow::RecordBatchReader>> OpenInputFile(const std::string& path);

}  // namespace arrow_zerobus::cli
