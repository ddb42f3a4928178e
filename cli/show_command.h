// zerobus-arrow show TABLE_DIR: the schema, row count and first rows of a local Delta table
// (what the emulator writes: JSON commits, Parquet data files).
#pragma once

#include <cstdint>
#include <string>

namespace arrow_zerobus::cli {

int RunShow(const std::string& table_dir, int64_t limit);

}  // namespace arrow_zerobus::cli
