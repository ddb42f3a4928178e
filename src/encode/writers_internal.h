// The encoder's plan and per-batch column writers.
//
// Layout. A plan (FieldPlan tree) is built once per schema from the MessageBinding. For every
// batch, each plan node is bound to its ArrayData, giving a ColumnWriter. Writers work a column
// at a time over a *Level*: a block of slots (rows of the batch, or elements of lists, or the
// non-null structs of a struct column) that all hold one message's fields. The size pass adds
// every field's encoded size to a per-slot accumulator; the write pass writes each field at a
// per-slot cursor and advances it. Because a message writes its fields in field-number order,
// one column after the other, every slot ends up with its fields in order, while each inner loop
// runs over one Arrow buffer with one (templated) code path: no virtual call per cell.
//
// Nested messages need their length before their bytes: struct writers keep each nested
// message's size from the size pass (one vector per batch) and read it back, in the same order,
// in the write pass. Both passes visit the slots of every writer in the same order, so a
// running counter is all the bookkeeping needed.
//
// Thread-safety: plans are immutable and shared; writers and contexts belong to one Encode call.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/array/data.h>
#include <arrow/result.h>

#include "arrow_zerobus/encode.h"
#include "arrow_zerobus/schema.h"
#include "encode/wire_internal.h"

namespace arrow_zerobus::encode_internal {

// A block of slots. Slot k reads its values at Arrow position pos(k) (a logical index into the
// arrays of the message's fields; the writer adds its own array offset) and accumulates into
// index acc(k) of `size` (size pass) or `cur` (write pass).
struct Level {
  int64_t n = 0;
  // Per-slot positions, plus pos_add; a negative entry means null (a null dictionary index).
  // nullptr: pos(k) = pos_add + k.
  const int64_t* pos = nullptr;
  int64_t pos_add = 0;
  bool null_pos = false;  // pos may hold null entries
  // Per-slot accumulator index: several slots (elements of one list) can share one.
  // nullptr: acc(k) = k.
  const int64_t* acc = nullptr;
  int64_t* size = nullptr;  // size pass
  uint8_t** cur = nullptr;  // write pass
  // For error reports: the enclosing level and this slot's slot there (nullptr: the same k).
  const Level* parent = nullptr;
  const int64_t* up = nullptr;
  int64_t row_base = 0;  // top level: slot k is row row_base + k

  bool simple() const { return pos == nullptr && acc == nullptr; }
  int64_t Pos(int64_t k) const {
    if (pos == nullptr) return pos_add + k;
    const int64_t p = pos[k];
    return p < 0 ? p : p + pos_add;
  }
  int64_t Acc(int64_t k) const { return acc ? acc[k] : k; }
  // The batch row slot k belongs to (only called on the error path).
  int64_t Row(int64_t k) const {
    const Level* level = this;
    while (level->parent != nullptr) {
      if (level->up != nullptr) k = level->up[k];
      level = level->parent;
    }
    return level->row_base + k;
  }
};

// Grow-only scratch memory for per-block arrays: no zeroing, no shrinking, reused block after
// block so the steady state allocates nothing.
template <typename T>
class Scratch {
 public:
  // At least n elements; the first `keep` elements survive a regrowth.
  T* Get(int64_t n, int64_t keep = 0) {
    if (n > capacity_) {
      const int64_t capacity = std::max<int64_t>(n, capacity_ * 2);
      std::unique_ptr<T[]> grown(new T[static_cast<size_t>(capacity)]);
      if (keep > 0) std::copy(data_.get(), data_.get() + keep, grown.get());
      data_ = std::move(grown);
      capacity_ = capacity;
    }
    return data_.get();
  }
  T* data() { return data_.get(); }

 private:
  std::unique_ptr<T[]> data_;
  int64_t capacity_ = 0;
};

// Row failures found by the size pass. One per Encode call.
class EncodeContext {
 public:
  void Fail(int64_t row, const std::string& column_path, std::string_view reason);
  std::vector<RowError>& errors() { return errors_; }

 private:
  std::vector<RowError> errors_;
};

// What a null at a slot means for the field.
enum class NullPolicy : uint8_t {
  kAbsent,    // optional field: write nothing
  kRequired,  // proto2 required: the row fails
  kElement,   // element of a repeated field: the row fails
};

// What every writer knows about its field.
struct FieldInfo {
  std::string path;  // column path for messages
  Tag tag;
  NullPolicy nulls = NullPolicy::kAbsent;
  std::string target;  // proto type name for messages, e.g. "int32"

  // Reports a null where nulls are not allowed (no-op for kAbsent).
  void NullAt(const Level& level, int64_t k, EncodeContext* ctx) const;
};

class ColumnWriter {
 public:
  virtual ~ColumnWriter() = default;
  // Adds the encoded size of this field for every slot of `level` to level.size[acc(k)].
  virtual void Size(const Level& level, EncodeContext* ctx) = 0;
  // Writes this field for every slot at level.cur[acc(k)] and advances the cursor.
  virtual void Write(const Level& level) = 0;
  // Resets the running counters before the write pass.
  virtual void Rewind() {}
};

class FieldPlan {
 public:
  virtual ~FieldPlan() = default;
  // `data` has the type the plan was made for (the batch schema was checked).
  virtual std::unique_ptr<ColumnWriter> Bind(const arrow::ArrayData& data) const = 0;
};

// The writers of a message's fields in field-number order, with the index of each field's
// Arrow child (batch column, struct child, or 0/1 for a map entry's key/value).
struct MessagePlan {
  std::vector<std::unique_ptr<FieldPlan>> fields;
  std::vector<int> arrow_index;
};
arrow::Result<MessagePlan> PlanMessage(const MessageBinding& message);

// Scalar leaves (scalar_writers.cc). `type` is the storage type (no dictionary / run-end /
// extension wrapper), never list-like, struct or map.
arrow::Result<std::unique_ptr<FieldPlan>> PlanScalar(const FieldBinding& binding,
                                                     const std::shared_ptr<arrow::DataType>& type,
                                                     FieldInfo info);
// Integer-like leaves (scalar_int.cc).
arrow::Result<std::unique_ptr<FieldPlan>> PlanInteger(const FieldBinding& binding,
                                                      const std::shared_ptr<arrow::DataType>& type,
                                                      FieldInfo info);

// The type of `data` without extension wrappers (an extension array holds its storage layout).
const arrow::DataType& StorageType(const arrow::ArrayData& data);

// Validity bitmap of `data`, or nullptr when it has no nulls.
const uint8_t* ValidityOrNull(const arrow::ArrayData& data);

const char* ProtoTypeName(FieldDescriptorProto::Type type);

}  // namespace arrow_zerobus::encode_internal
