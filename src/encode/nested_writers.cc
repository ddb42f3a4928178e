// Nested columns (structs, lists, maps), dictionary and run-end encoded columns, and the
// planner that picks a writer for every (Arrow type, proto field) pair of a binding.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <arrow/extension_type.h>
#include <arrow/type.h>
#include <arrow/util/bit_util.h>

#include "arrow_zerobus/errors.h"
#include "encode/writers_internal.h"

namespace arrow_zerobus::encode_internal {

void EncodeContext::Fail(int64_t row, const std::string& column_path, std::string_view reason) {
  std::string message = "column '" + column_path + "' row " + std::to_string(row) + ": ";
  message.append(reason);
  errors_.push_back(RowError{row, std::move(message)});
}

void FieldInfo::NullAt(const Level& level, int64_t k, EncodeContext* ctx) const {
  switch (nulls) {
    case NullPolicy::kAbsent:
      return;
    case NullPolicy::kRequired:
      ctx->Fail(level.Row(k), path, "null in required field (" + target + ")");
      return;
    case NullPolicy::kElement:
      ctx->Fail(level.Row(k), path, "null list element (repeated " + target +
                                        " fields cannot hold nulls)");
      return;
  }
}

const arrow::DataType& StorageType(const arrow::ArrayData& data) {
  const arrow::DataType* type = data.type.get();
  while (type->id() == arrow::Type::EXTENSION) {
    type = static_cast<const arrow::ExtensionType&>(*type).storage_type().get();
  }
  return *type;
}

const uint8_t* ValidityOrNull(const arrow::ArrayData& data) {
  if (data.buffers.empty() || data.buffers[0] == nullptr) return nullptr;
  if (data.GetNullCount() == 0) return nullptr;
  return data.buffers[0]->data();
}

const char* ProtoTypeName(FieldDescriptorProto::Type type) {
  // The public table's names are literals, so data() is NUL-terminated.
  return ::arrow_zerobus::ProtoTypeName(type).data();
}

namespace {

WireType WireTypeOf(FieldDescriptorProto::Type type) {
  using T = FieldDescriptorProto;
  switch (type) {
    case T::TYPE_DOUBLE:
    case T::TYPE_FIXED64:
    case T::TYPE_SFIXED64:
      return kFixed64;
    case T::TYPE_FLOAT:
    case T::TYPE_FIXED32:
    case T::TYPE_SFIXED32:
      return kFixed32;
    case T::TYPE_STRING:
    case T::TYPE_BYTES:
    case T::TYPE_MESSAGE:
    case T::TYPE_GROUP:
      return kLengthDelimited;
    default:
      return kVarint;
  }
}

// ---------------------------------------------------------------------------------------------
// Struct -> nested message. The message's size per present slot is kept (sizes_) from the size
// pass for the write pass, which needs it before the message's bytes.

class StructWriter final : public ColumnWriter {
 public:
  StructWriter(const FieldInfo* info, const arrow::ArrayData& data,
               std::vector<std::unique_ptr<ColumnWriter>> children)
      : info_(info),
        validity_(ValidityOrNull(data)),
        offset_(data.offset),
        children_(std::move(children)) {
    // Usually each struct is visited once; dictionaries and list views may need more.
    sizes_.Get(data.length);
  }

  void Size(const Level& level, EncodeContext* ctx) override {
    Level child = Select(level, ctx);
    int64_t* s = sizes_.Get(next_ + child.n, next_) + next_;
    std::fill(s, s + child.n, 0);
    child.size = s;
    for (auto& c : children_) c->Size(child, ctx);
    const int64_t tag_len = info_->tag.len;
    for (int64_t j = 0; j < child.n; ++j) {
      const int64_t a = level.Acc(child.up == nullptr ? j : child.up[j]);
      level.size[a] += tag_len + VarintSize(static_cast<uint64_t>(s[j])) + s[j];
    }
    next_ += child.n;
  }

  void Write(const Level& level) override {
    Level child = Select(level, nullptr);
    uint8_t** cur = cur_.Get(child.n);
    const int64_t* s = sizes_.data() + next_;
    const Tag tag = info_->tag;
    for (int64_t j = 0; j < child.n; ++j) {
      const int64_t a = level.Acc(child.up == nullptr ? j : child.up[j]);
      uint8_t* out = WriteVarint(tag.Write(level.cur[a]), static_cast<uint64_t>(s[j]));
      cur[j] = out;
      level.cur[a] = out + s[j];
    }
    child.cur = cur;
    for (auto& c : children_) c->Write(child);
    next_ += child.n;
  }

  void Rewind() override {
    next_ = 0;
    for (auto& c : children_) c->Rewind();
  }

 private:
  // The level of this message's fields: one slot per present (non-null) struct. Children are
  // indexed like the struct, shifted by its offset.
  Level Select(const Level& level, EncodeContext* ctx) {
    Level child;
    child.parent = &level;
    if (validity_ == nullptr && !level.null_pos) {  // every slot present: share the positions
      child.n = level.n;
      child.pos = level.pos;
      child.pos_add = level.pos_add + offset_;
      return child;
    }
    int64_t* pos = pos_.Get(level.n);
    int64_t* up = up_.Get(level.n);
    int64_t m = 0;
    for (int64_t k = 0; k < level.n; ++k) {
      const int64_t p = level.Pos(k);
      const int64_t i = p + offset_;
      if (p < 0 || (validity_ != nullptr && !arrow::bit_util::GetBit(validity_, i))) {
        if (ctx != nullptr) info_->NullAt(level, k, ctx);
        continue;
      }
      pos[m] = i;
      up[m] = k;
      ++m;
    }
    child.n = m;
    child.pos = pos;
    child.up = up;
    return child;
  }

  const FieldInfo* info_;
  const uint8_t* validity_;
  int64_t offset_;
  std::vector<std::unique_ptr<ColumnWriter>> children_;
  Scratch<int64_t> sizes_;  // per present struct, whole batch
  int64_t next_ = 0;        // running index into sizes_
  Scratch<int64_t> pos_, up_;
  Scratch<uint8_t*> cur_;
};

class StructPlan final : public FieldPlan {
 public:
  StructPlan(FieldInfo info, std::vector<std::unique_ptr<FieldPlan>> children,
             std::vector<int> child_index)
      : info_(std::move(info)), children_(std::move(children)), child_index_(std::move(child_index)) {}

  std::unique_ptr<ColumnWriter> Bind(const arrow::ArrayData& data) const override {
    std::vector<std::unique_ptr<ColumnWriter>> children;
    children.reserve(children_.size());
    for (size_t c = 0; c < children_.size(); ++c) {
      children.push_back(children_[c]->Bind(*data.child_data[child_index_[c]]));
    }
    return std::make_unique<StructWriter>(&info_, data, std::move(children));
  }

 private:
  FieldInfo info_;
  std::vector<std::unique_ptr<FieldPlan>> children_;
  std::vector<int> child_index_;
};

// ---------------------------------------------------------------------------------------------
// Lists and maps -> repeated fields. Each block of list slots becomes a level of element slots
// that accumulate into their list's slot; packed fields first sum the elements' payload.

template <typename O>
struct ListLayout {
  explicit ListLayout(const arrow::ArrayData& data) : offsets(data.GetValues<O>(1, 0)) {}
  int64_t Begin(int64_t i) const { return offsets[i]; }
  int64_t End(int64_t i) const { return offsets[i + 1]; }
  const O* offsets;
};

template <typename O>
struct ListViewLayout {
  explicit ListViewLayout(const arrow::ArrayData& data)
      : offsets(data.GetValues<O>(1, 0)), sizes(data.GetValues<O>(2, 0)) {}
  int64_t Begin(int64_t i) const { return offsets[i]; }
  int64_t End(int64_t i) const { return static_cast<int64_t>(offsets[i]) + sizes[i]; }
  const O* offsets;
  const O* sizes;
};

struct FixedListLayout {
  explicit FixedListLayout(const arrow::ArrayData& data)
      : width(static_cast<const arrow::FixedSizeListType&>(StorageType(data)).list_size()) {}
  int64_t Begin(int64_t i) const { return i * width; }
  int64_t End(int64_t i) const { return (i + 1) * width; }
  int64_t width;
};

struct ListInfo {
  FieldInfo field;  // tag of the repeated field (wire type 2 when packed)
  bool packed = false;
};

template <class Layout>
class ListWriter final : public ColumnWriter {
 public:
  ListWriter(const ListInfo* info, const arrow::ArrayData& data,
             std::unique_ptr<ColumnWriter> element)
      : info_(info),
        layout_(data),
        validity_(ValidityOrNull(data)),
        offset_(data.offset),
        element_(std::move(element)) {
    if (info_->packed) payload_.Get(data.length);
  }

  void Size(const Level& level, EncodeContext* ctx) override {
    Level el = Elements(level);
    if (!info_->packed) {
      el.size = level.size;
      element_->Size(el, ctx);
      return;
    }
    int64_t* payload = payload_.Get(next_ + level.n, next_) + next_;
    std::fill(payload, payload + level.n, 0);
    el.acc = el.up;  // payload per list slot
    el.size = payload;
    element_->Size(el, ctx);
    const int64_t tag_len = info_->field.tag.len;
    for (int64_t k = 0; k < level.n; ++k) {
      const int64_t pl = payload[k];
      if (pl > 0) level.size[level.Acc(k)] += tag_len + VarintSize(static_cast<uint64_t>(pl)) + pl;
    }
    next_ += level.n;
  }

  void Write(const Level& level) override {
    Level el = Elements(level);
    el.cur = level.cur;
    if (info_->packed) {
      const int64_t* payload = payload_.data() + next_;
      const Tag tag = info_->field.tag;
      for (int64_t k = 0; k < level.n; ++k) {
        const int64_t pl = payload[k];
        if (pl == 0) continue;
        const int64_t a = level.Acc(k);
        level.cur[a] = WriteVarint(tag.Write(level.cur[a]), static_cast<uint64_t>(pl));
      }
      next_ += level.n;
    }
    element_->Write(el);
  }

  void Rewind() override {
    next_ = 0;
    element_->Rewind();
  }

 private:
  // One slot per element of the non-null lists of `level`, accumulating into the list's slot.
  // When the lists' elements are back to back (the usual layout), positions stay implicit
  // (first + j), which lets the element's own fields run their dense loops.
  Level Elements(const Level& level) {
    int64_t capacity = std::max<int64_t>(level.n * 4, 64);
    int64_t* up = up_.Get(capacity);
    int64_t* pos = nullptr;  // materialised only once the elements stop being contiguous
    int64_t first = -1;
    int64_t m = 0;
    for (int64_t k = 0; k < level.n; ++k) {
      const int64_t i = ListIndex(level, k);
      if (i < 0) continue;
      const int64_t begin = layout_.Begin(i);
      const int64_t end = layout_.End(i);
      if (begin == end) continue;
      if (m + (end - begin) > capacity) {
        capacity = std::max(capacity * 2, m + (end - begin));
        up = up_.Get(capacity, m);
        if (pos != nullptr) pos = pos_.Get(capacity, m);
      }
      if (first < 0) first = begin;
      if (pos == nullptr && begin != first + m) {
        pos = pos_.Get(capacity);
        for (int64_t j = 0; j < m; ++j) pos[j] = first + j;
      }
      for (int64_t e = begin; e < end; ++e, ++m) {
        if (pos != nullptr) pos[m] = e;
        up[m] = k;
      }
    }
    Level el;
    el.n = m;
    el.pos = pos;
    el.pos_add = pos == nullptr ? std::max<int64_t>(first, 0) : 0;
    el.parent = &level;
    el.up = up;
    if (level.acc == nullptr) {
      el.acc = up;
    } else {
      int64_t* acc = acc_.Get(m);
      for (int64_t j = 0; j < m; ++j) acc[j] = level.acc[up[j]];
      el.acc = acc;
    }
    return el;
  }

  // Physical index of the list at slot k, or -1 when the list is null (the field is absent).
  int64_t ListIndex(const Level& level, int64_t k) const {
    const int64_t p = level.Pos(k);
    if (p < 0) return -1;
    const int64_t i = p + offset_;
    if (validity_ != nullptr && !arrow::bit_util::GetBit(validity_, i)) return -1;
    return i;
  }

  const ListInfo* info_;
  Layout layout_;
  const uint8_t* validity_;
  int64_t offset_;
  std::unique_ptr<ColumnWriter> element_;
  Scratch<int64_t> payload_;  // packed: payload bytes per list slot, whole batch
  int64_t next_ = 0;
  Scratch<int64_t> pos_, up_, acc_;
};

template <class Layout>
class ListPlan final : public FieldPlan {
 public:
  ListPlan(ListInfo info, std::unique_ptr<FieldPlan> element)
      : info_(std::move(info)), element_(std::move(element)) {}
  std::unique_ptr<ColumnWriter> Bind(const arrow::ArrayData& data) const override {
    return std::make_unique<ListWriter<Layout>>(&info_, data, element_->Bind(*data.child_data[0]));
  }

 private:
  ListInfo info_;
  std::unique_ptr<FieldPlan> element_;
};

// ---------------------------------------------------------------------------------------------
// Dictionary and run-end encoded columns: the slots' positions are remapped to positions in the
// dictionary / values array, and the value writer runs on those. Nothing is materialised.

template <typename IndexT>
class DictionaryWriter final : public ColumnWriter {
 public:
  DictionaryWriter(const std::string* path, const arrow::ArrayData& data,
                   std::unique_ptr<ColumnWriter> values)
      : path_(path),
        indices_(data.GetValues<IndexT>(1, 0)),
        validity_(ValidityOrNull(data)),
        offset_(data.offset),
        dictionary_length_(data.dictionary->length),
        values_(std::move(values)) {}

  void Size(const Level& level, EncodeContext* ctx) override {
    values_->Size(Remap(level, ctx), ctx);
  }
  void Write(const Level& level) override { values_->Write(Remap(level, nullptr)); }
  void Rewind() override { values_->Rewind(); }

 private:
  Level Remap(const Level& level, EncodeContext* ctx) {
    int64_t* pos = pos_.Get(level.n);
    bool bad_index = false;
    for (int64_t k = 0; k < level.n; ++k) {
      const int64_t p = level.Pos(k);
      const int64_t i = p + offset_;
      const bool null = p < 0 || (validity_ != nullptr && !arrow::bit_util::GetBit(validity_, i));
      const int64_t index = null ? -1 : static_cast<int64_t>(indices_[i]);
      // An index outside the dictionary (invalid Arrow data) fails its row instead of reading
      // out of bounds.
      if (!null && static_cast<uint64_t>(index) >= static_cast<uint64_t>(dictionary_length_))
          [[unlikely]] {
        bad_index = true;
        pos[k] = -1;
        if (ctx != nullptr) {
          ctx->Fail(level.Row(k), *path_,
                    "dictionary index " + std::to_string(static_cast<uint64_t>(indices_[i])) +
                        " out of range for a dictionary of " +
                        std::to_string(dictionary_length_) + " values");
        }
        continue;
      }
      pos[k] = index;
    }
    Level out = level;
    out.pos = pos;
    out.pos_add = 0;
    out.null_pos = level.null_pos || validity_ != nullptr || bad_index;
    return out;
  }

  const std::string* path_;
  const IndexT* indices_;
  const uint8_t* validity_;
  int64_t offset_;
  int64_t dictionary_length_;
  std::unique_ptr<ColumnWriter> values_;
  Scratch<int64_t> pos_;
};

template <typename IndexT>
class DictionaryPlan final : public FieldPlan {
 public:
  DictionaryPlan(std::string path, std::unique_ptr<FieldPlan> values)
      : path_(std::move(path)), values_(std::move(values)) {}
  std::unique_ptr<ColumnWriter> Bind(const arrow::ArrayData& data) const override {
    return std::make_unique<DictionaryWriter<IndexT>>(&path_, data,
                                                      values_->Bind(*data.dictionary));
  }

 private:
  std::string path_;
  std::unique_ptr<FieldPlan> values_;
};

template <typename RunEndT>
class RunEndWriter final : public ColumnWriter {
 public:
  RunEndWriter(const std::string* path, const arrow::ArrayData& data,
               std::unique_ptr<ColumnWriter> values)
      : path_(path),
        run_ends_(data.child_data[0]->GetValues<RunEndT>(1)),
        num_runs_(data.child_data[0]->length),
        offset_(data.offset),
        values_(std::move(values)) {}

  void Size(const Level& level, EncodeContext* ctx) override {
    values_->Size(Remap(level, ctx), ctx);
  }
  void Write(const Level& level) override { values_->Write(Remap(level, nullptr)); }
  void Rewind() override {
    run_ = 0;
    values_->Rewind();
  }

 private:
  // Slots mostly come in increasing position order: walk the runs forward from the last one
  // found, and binary-search only when a position goes backwards.
  Level Remap(const Level& level, EncodeContext* ctx) {
    int64_t* pos = pos_.Get(level.n);
    bool past_end = false;
    for (int64_t k = 0; k < level.n; ++k) {
      const int64_t p = level.Pos(k);
      if (p < 0) {
        pos[k] = -1;
        continue;
      }
      const int64_t x = p + offset_;
      if (run_ > 0 && static_cast<int64_t>(run_ends_[run_ - 1]) > x) {
        run_ = std::upper_bound(run_ends_, run_ends_ + num_runs_, x,
                                [](int64_t v, RunEndT end) { return v < static_cast<int64_t>(end); }) -
               run_ends_;
      }
      while (run_ < num_runs_ && static_cast<int64_t>(run_ends_[run_]) <= x) ++run_;
      if (run_ == num_runs_) [[unlikely]] {  // invalid Arrow data: no run covers x
        past_end = true;
        pos[k] = -1;
        if (ctx != nullptr) {
          ctx->Fail(level.Row(k), *path_,
                    "run-end encoded position " + std::to_string(x) + " is past the last run");
        }
        continue;
      }
      pos[k] = run_;
    }
    Level out = level;
    out.pos = pos;
    out.pos_add = 0;
    out.null_pos = level.null_pos || past_end;
    return out;
  }

  const std::string* path_;
  const RunEndT* run_ends_;
  int64_t num_runs_;
  int64_t offset_;
  std::unique_ptr<ColumnWriter> values_;
  int64_t run_ = 0;
  Scratch<int64_t> pos_;
};

template <typename RunEndT>
class RunEndPlan final : public FieldPlan {
 public:
  RunEndPlan(std::string path, std::unique_ptr<FieldPlan> values)
      : path_(std::move(path)), values_(std::move(values)) {}
  std::unique_ptr<ColumnWriter> Bind(const arrow::ArrayData& data) const override {
    return std::make_unique<RunEndWriter<RunEndT>>(&path_, data,
                                                   values_->Bind(*data.child_data[1]));
  }

 private:
  std::string path_;
  std::unique_ptr<FieldPlan> values_;
};

// ---------------------------------------------------------------------------------------------
// Planning.

arrow::Status Mismatch(const FieldBinding& fb, const arrow::DataType& type, const char* why) {
  return ConversionError("column '" + fb.column_path + "' (" + type.ToString() +
                         ") cannot be written to field '" + fb.field_name + "' (" +
                         ProtoTypeName(fb.type) + "): " + why);
}

template <template <typename> class PlanT>
arrow::Result<std::unique_ptr<FieldPlan>> WrapByIndexType(arrow::Type::type id, std::string path,
                                                          std::unique_ptr<FieldPlan> inner) {
  switch (id) {
    case arrow::Type::INT8: return std::make_unique<PlanT<int8_t>>(std::move(path), std::move(inner));
    case arrow::Type::INT16: return std::make_unique<PlanT<int16_t>>(std::move(path), std::move(inner));
    case arrow::Type::INT32: return std::make_unique<PlanT<int32_t>>(std::move(path), std::move(inner));
    case arrow::Type::INT64: return std::make_unique<PlanT<int64_t>>(std::move(path), std::move(inner));
    case arrow::Type::UINT8: return std::make_unique<PlanT<uint8_t>>(std::move(path), std::move(inner));
    case arrow::Type::UINT16: return std::make_unique<PlanT<uint16_t>>(std::move(path), std::move(inner));
    case arrow::Type::UINT32: return std::make_unique<PlanT<uint32_t>>(std::move(path), std::move(inner));
    case arrow::Type::UINT64: return std::make_unique<PlanT<uint64_t>>(std::move(path), std::move(inner));
    default: return ConversionError("dictionary index type " + std::to_string(id) + " is not an integer");
  }
}

using PlanFn = arrow::Result<std::unique_ptr<FieldPlan>> (*)(
    const FieldBinding&, const std::shared_ptr<arrow::DataType>&, FieldInfo);

// Peels extension, dictionary and run-end wrappers off `type`, planning `inner` for what is left.
arrow::Result<std::unique_ptr<FieldPlan>> Unwrap(const FieldBinding& fb,
                                                 const std::shared_ptr<arrow::DataType>& type,
                                                 FieldInfo info, PlanFn inner) {
  switch (type->id()) {
    case arrow::Type::EXTENSION:
      // arrow.json and every other extension are written as their storage.
      return Unwrap(fb, static_cast<const arrow::ExtensionType&>(*type).storage_type(),
                    std::move(info), inner);
    case arrow::Type::DICTIONARY: {
      const auto& dict = static_cast<const arrow::DictionaryType&>(*type);
      std::string path = info.path;
      ARROW_ASSIGN_OR_RAISE(auto values, Unwrap(fb, dict.value_type(), std::move(info), inner));
      return WrapByIndexType<DictionaryPlan>(dict.index_type()->id(), std::move(path),
                                             std::move(values));
    }
    case arrow::Type::RUN_END_ENCODED: {
      const auto& ree = static_cast<const arrow::RunEndEncodedType&>(*type);
      std::string path = info.path;
      ARROW_ASSIGN_OR_RAISE(auto values, Unwrap(fb, ree.value_type(), std::move(info), inner));
      switch (ree.run_end_type()->id()) {
        case arrow::Type::INT16:
          return std::make_unique<RunEndPlan<int16_t>>(std::move(path), std::move(values));
        case arrow::Type::INT32:
          return std::make_unique<RunEndPlan<int32_t>>(std::move(path), std::move(values));
        default:
          return std::make_unique<RunEndPlan<int64_t>>(std::move(path), std::move(values));
      }
    }
    default:
      return inner(fb, type, std::move(info));
  }
}

arrow::Result<std::unique_ptr<FieldPlan>> PlanStruct(const MessageBinding& message,
                                                     const arrow::DataType& type, FieldInfo info) {
  ARROW_ASSIGN_OR_RAISE(MessagePlan plan, PlanMessage(message));
  for (size_t c = 0; c < plan.arrow_index.size(); ++c) {
    if (plan.arrow_index[c] < 0 || plan.arrow_index[c] >= type.num_fields()) {
      return ConversionError("message '" + message.full_name + "': binding refers to child " +
                             std::to_string(plan.arrow_index[c]) + " of " + type.ToString());
    }
  }
  return std::make_unique<StructPlan>(std::move(info), std::move(plan.fields),
                                      std::move(plan.arrow_index));
}

// A single (non-repeated) value of field `fb` stored as `type` (wrappers already peeled).
arrow::Result<std::unique_ptr<FieldPlan>> PlanPlainValue(
    const FieldBinding& fb, const std::shared_ptr<arrow::DataType>& type, FieldInfo info) {
  const auto id = type->id();
  if (id == arrow::Type::STRUCT) {
    if (fb.type != FieldDescriptorProto::TYPE_MESSAGE || fb.message == nullptr) {
      return Mismatch(fb, *type, "a struct needs a message field");
    }
    return PlanStruct(*fb.message, *type, std::move(info));
  }
  if (id == arrow::Type::LIST || id == arrow::Type::LARGE_LIST || id == arrow::Type::LIST_VIEW ||
      id == arrow::Type::LARGE_LIST_VIEW || id == arrow::Type::FIXED_SIZE_LIST ||
      id == arrow::Type::MAP) {
    return Mismatch(fb, *type, "a list or map needs a repeated field (and lists of lists or "
                               "maps are not supported)");
  }
  if (fb.type == FieldDescriptorProto::TYPE_MESSAGE) {
    return Mismatch(fb, *type, "a message field needs a struct column");
  }
  return PlanScalar(fb, type, std::move(info));
}

arrow::Result<std::unique_ptr<FieldPlan>> PlanValue(const FieldBinding& fb,
                                                    const std::shared_ptr<arrow::DataType>& type,
                                                    FieldInfo info) {
  return Unwrap(fb, type, std::move(info), &PlanPlainValue);
}

bool PackableType(FieldDescriptorProto::Type type) {
  return type != FieldDescriptorProto::TYPE_STRING && type != FieldDescriptorProto::TYPE_BYTES &&
         type != FieldDescriptorProto::TYPE_MESSAGE && type != FieldDescriptorProto::TYPE_GROUP;
}

// A repeated field stored as the list-like (or map) `type`.
arrow::Result<std::unique_ptr<FieldPlan>> PlanPlainList(
    const FieldBinding& fb, const std::shared_ptr<arrow::DataType>& type, FieldInfo info) {
  const auto id = type->id();
  ListInfo list;
  list.field = info;
  list.packed = fb.packed && PackableType(fb.type);
  list.field.tag = Tag::Make(fb.number, list.packed ? kLengthDelimited : WireTypeOf(fb.type));
  FieldInfo element = info;
  element.nulls = NullPolicy::kElement;
  element.tag = list.packed ? Tag::None() : list.field.tag;

  std::unique_ptr<FieldPlan> element_plan;
  if (id == arrow::Type::MAP) {
    if (!fb.is_map || fb.message == nullptr) {
      return Mismatch(fb, *type, "a map column needs a map field");
    }
    const auto& entries = static_cast<const arrow::MapType&>(*type).value_type();
    ARROW_ASSIGN_OR_RAISE(element_plan, PlanStruct(*fb.message, *entries, std::move(element)));
    return std::make_unique<ListPlan<ListLayout<int32_t>>>(std::move(list), std::move(element_plan));
  }
  if (fb.is_map) return Mismatch(fb, *type, "a map field needs a map column");
  if (id != arrow::Type::LIST && id != arrow::Type::LARGE_LIST && id != arrow::Type::LIST_VIEW &&
      id != arrow::Type::LARGE_LIST_VIEW && id != arrow::Type::FIXED_SIZE_LIST) {
    return Mismatch(fb, *type, "a repeated field needs a list column");
  }
  const auto& value_type = type->field(0)->type();
  ARROW_ASSIGN_OR_RAISE(element_plan, PlanValue(fb, value_type, std::move(element)));
  switch (id) {
    case arrow::Type::LIST:
      return std::make_unique<ListPlan<ListLayout<int32_t>>>(std::move(list), std::move(element_plan));
    case arrow::Type::LARGE_LIST:
      return std::make_unique<ListPlan<ListLayout<int64_t>>>(std::move(list), std::move(element_plan));
    case arrow::Type::LIST_VIEW:
      return std::make_unique<ListPlan<ListViewLayout<int32_t>>>(std::move(list),
                                                                 std::move(element_plan));
    case arrow::Type::LARGE_LIST_VIEW:
      return std::make_unique<ListPlan<ListViewLayout<int64_t>>>(std::move(list),
                                                                 std::move(element_plan));
    default:
      return std::make_unique<ListPlan<FixedListLayout>>(std::move(list), std::move(element_plan));
  }
}

arrow::Result<std::unique_ptr<FieldPlan>> PlanField(const FieldBinding& fb) {
  if (fb.arrow_field == nullptr) {
    return ConversionError("column '" + fb.column_path + "': binding has no Arrow field");
  }
  FieldInfo info;
  info.path = fb.column_path;
  info.target = ProtoTypeName(fb.type);
  if (fb.repeated || fb.is_map) {
    info.nulls = NullPolicy::kAbsent;  // a null list is an empty repeated field
    return Unwrap(fb, fb.arrow_field->type(), std::move(info), &PlanPlainList);
  }
  info.nulls = fb.required ? NullPolicy::kRequired : NullPolicy::kAbsent;
  info.tag = Tag::Make(fb.number, WireTypeOf(fb.type));
  return PlanValue(fb, fb.arrow_field->type(), std::move(info));
}

}  // namespace

arrow::Result<MessagePlan> PlanMessage(const MessageBinding& message) {
  MessagePlan plan;
  // Field-number order makes canonical bytes; the binding is sorted already, but a hand-made
  // binding may not be.
  std::vector<const FieldBinding*> order;
  for (const auto& f : message.fields) order.push_back(&f);
  std::stable_sort(order.begin(), order.end(),
                   [](const FieldBinding* a, const FieldBinding* b) { return a->number < b->number; });
  for (const FieldBinding* f : order) {
    if (f->number < 1 || f->number > 536870911) {
      return ConversionError("column '" + f->column_path + "': invalid field number " +
                             std::to_string(f->number));
    }
    ARROW_ASSIGN_OR_RAISE(auto field, PlanField(*f));
    plan.fields.push_back(std::move(field));
    plan.arrow_index.push_back(f->arrow_index);
  }
  return plan;
}

}  // namespace arrow_zerobus::encode_internal
