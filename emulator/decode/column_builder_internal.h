// Private: the growable column buffers the decoders append into. One Column per Arrow array of
// the table schema (children for list/map/struct), finished into ArrayData per batch. Kept
// hand-rolled (not arrow::ArrayBuilder) so appends are inline and non-virtual.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include <arrow/array/data.h>
#include <arrow/buffer.h>
#include <arrow/memory_pool.h>
#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/type.h>
#include <arrow/util/macros.h>

namespace arrow_zerobus::emulator::internal {

// A byte buffer that grows by doubling; Finish() hands the bytes over and starts afresh.
class GrowBuffer {
 public:
  explicit GrowBuffer(arrow::MemoryPool* pool) : pool_(pool) {}

  int64_t size() const { return size_; }
  uint8_t* data() { return data_; }

  arrow::Status Reserve(int64_t extra) {
    if (ARROW_PREDICT_FALSE(size_ + extra > capacity_)) return Grow(size_ + extra);
    return arrow::Status::OK();
  }
  template <typename T>
  arrow::Status Append(T value) {
    ARROW_RETURN_NOT_OK(Reserve(sizeof(T)));
    std::memcpy(data_ + size_, &value, sizeof(T));
    size_ += sizeof(T);
    return arrow::Status::OK();
  }
  arrow::Status Append(const void* bytes, int64_t n) {
    ARROW_RETURN_NOT_OK(Reserve(n));
    if (n > 0) std::memcpy(data_ + size_, bytes, static_cast<size_t>(n));
    size_ += n;
    return arrow::Status::OK();
  }
  arrow::Status AppendZeros(int64_t n) {
    ARROW_RETURN_NOT_OK(Reserve(n));
    std::memset(data_ + size_, 0, static_cast<size_t>(n));
    size_ += n;
    return arrow::Status::OK();
  }
  arrow::Result<std::shared_ptr<arrow::Buffer>> Finish() {
    if (!buffer_) ARROW_RETURN_NOT_OK(Grow(8));
    ARROW_RETURN_NOT_OK(buffer_->Resize(size_, /*shrink_to_fit=*/false));
    std::shared_ptr<arrow::Buffer> out = std::move(buffer_);
    buffer_.reset();
    data_ = nullptr;
    size_ = capacity_ = 0;
    return out;
  }
  void Clear() { size_ = 0; }

 private:
  arrow::Status Grow(int64_t min_capacity) {
    int64_t capacity = std::max<int64_t>(min_capacity, std::max<int64_t>(64, capacity_ * 2));
    if (!buffer_) {
      ARROW_ASSIGN_OR_RAISE(auto buffer, arrow::AllocateResizableBuffer(capacity, pool_));
      buffer_ = std::move(buffer);
    } else {
      ARROW_RETURN_NOT_OK(buffer_->Resize(capacity, /*shrink_to_fit=*/false));
    }
    data_ = buffer_->mutable_data();
    capacity_ = capacity;
    return arrow::Status::OK();
  }

  arrow::MemoryPool* pool_;
  std::shared_ptr<arrow::ResizableBuffer> buffer_;
  uint8_t* data_ = nullptr;
  int64_t size_ = 0;
  int64_t capacity_ = 0;
};

// A growable bitmap.
class BitBuffer {
 public:
  explicit BitBuffer(arrow::MemoryPool* pool) : bytes_(pool) {}
  int64_t length() const { return bits_; }
  arrow::Status Append(bool bit) {
    if ((bits_ & 7) == 0) ARROW_RETURN_NOT_OK(bytes_.Append<uint8_t>(0));
    if (bit) bytes_.data()[bits_ >> 3] |= static_cast<uint8_t>(1u << (bits_ & 7));
    ++bits_;
    return arrow::Status::OK();
  }
  arrow::Status AppendSet(int64_t n) {
    for (int64_t i = 0; i < n; ++i) ARROW_RETURN_NOT_OK(Append(true));
    return arrow::Status::OK();
  }
  arrow::Result<std::shared_ptr<arrow::Buffer>> Finish() {
    bits_ = 0;
    return bytes_.Finish();
  }
  void Clear() {
    bytes_.Clear();
    bits_ = 0;
  }

 private:
  GrowBuffer bytes_;
  int64_t bits_ = 0;
};

enum class ColumnKind : uint8_t {
  kBool,
  kFixed,   // int8/16/32/64, float, double, date32, timestamp, decimal128 (by width)
  kBinary,  // utf8 or binary
  kList,
  kMap,
  kStruct,
};

struct Column {
  Column(std::shared_ptr<arrow::Field> field, arrow::MemoryPool* pool)
      : field(std::move(field)), validity(pool), values(pool), bits(pool), offsets(pool) {}

  std::shared_ptr<arrow::Field> field;
  arrow::Type::type type_id = arrow::Type::NA;
  ColumnKind kind = ColumnKind::kFixed;
  int width = 0;  // kFixed: bytes per value
  int precision = 0, scale = 0;  // decimal
  bool nullable = true;

  int64_t length = 0;
  int64_t null_count = 0;
  bool has_validity = false;  // materialized at the first null
  BitBuffer validity;
  GrowBuffer values;   // fixed-width values or binary data
  BitBuffer bits;      // bool values
  GrowBuffer offsets;  // int32 offsets: binary, list, map
  std::vector<std::unique_ptr<Column>> children;  // list: element; map: key, value; struct

  arrow::Status AppendValid() {
    if (ARROW_PREDICT_FALSE(has_validity)) ARROW_RETURN_NOT_OK(validity.Append(true));
    ++length;
    return arrow::Status::OK();
  }
  arrow::Status AppendNullBit() {
    if (!has_validity) {
      ARROW_RETURN_NOT_OK(validity.AppendSet(length));
      has_validity = true;
    }
    ARROW_RETURN_NOT_OK(validity.Append(false));
    ++length;
    ++null_count;
    return arrow::Status::OK();
  }
  template <typename T>
  arrow::Status AppendFixed(T value) {
    ARROW_RETURN_NOT_OK(values.Append<T>(value));
    return AppendValid();
  }
  arrow::Status AppendBool(bool value) {
    ARROW_RETURN_NOT_OK(bits.Append(value));
    return AppendValid();
  }
  arrow::Status AppendBytes(const uint8_t* data, int64_t n) {
    ARROW_RETURN_NOT_OK(values.Append(data, n));
    if (ARROW_PREDICT_FALSE(values.size() > INT32_MAX)) {
      return arrow::Status::CapacityError("column '", field->name(),
                                          "': more than 2 GiB of data in one batch");
    }
    ARROW_RETURN_NOT_OK(offsets.Append<int32_t>(static_cast<int32_t>(values.size())));
    return AppendValid();
  }
  // Closes the current list/map row at the child's current length.
  arrow::Status CloseList() {
    int64_t n = children[0]->length;
    if (ARROW_PREDICT_FALSE(n > INT32_MAX)) {
      return arrow::Status::CapacityError("column '", field->name(), "': too many elements");
    }
    ARROW_RETURN_NOT_OK(offsets.Append<int32_t>(static_cast<int32_t>(n)));
    return AppendValid();
  }
  int64_t ChildLength() const { return children[0]->length; }
};

// Builds the column tree for a table field.
std::unique_ptr<Column> MakeColumn(const std::shared_ptr<arrow::Field>& field,
                                   arrow::MemoryPool* pool);
// Starts (or restarts, discarding data) a batch: offsets get their leading 0.
arrow::Status ResetColumn(Column* column);
// A NULL (nullable columns) or a type default (zero, empty, struct of defaults/NULLs).
arrow::Status AppendNull(Column* column);
arrow::Status AppendDefault(Column* column);
inline arrow::Status AppendNullOrDefault(Column* column) {
  return column->nullable ? AppendNull(column) : AppendDefault(column);
}
// Hands the buffers over as ArrayData and resets the column.
arrow::Result<std::shared_ptr<arrow::ArrayData>> FinishColumn(Column* column);

// Appends decimal text ("-123.45", "+7", ".5") as the column's decimal128(p, s). Extra fraction
// digits are accepted only when they are zeros. Invalid (without a column path) if not valid.
arrow::Status AppendDecimalText(Column* column, std::string_view text);

// Howard Hinnant's days-from-civil algorithm (proleptic Gregorian).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d);

}  // namespace arrow_zerobus::emulator::internal
