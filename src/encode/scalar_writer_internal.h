// The one templated loop pair (size, write) shared by every scalar column. A Cell reads one
// Arrow value at a physical index and knows its encoded form:
//   static constexpr bool kCanFail;        // may the value fail its row?
//   static constexpr int64_t kFixedSize;   // (optional) every value's size, 0 if it varies
//   bool Ok(int64_t i) const;              // (kCanFail only) does the value fit the target?
//   std::string Reason(int64_t i) const;   // (kCanFail only) "value 300 out of range for int32"
//   int64_t Size(int64_t i) const;         // encoded bytes, without the field key
//   uint8_t* Write(int64_t i, uint8_t* out) const;
// Size() and Write() must agree even for values that fail: rows that failed are still written
// (into scratch space) so the loops never branch on row state.
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include <arrow/util/bit_util.h>

#include "encode/writers_internal.h"

namespace arrow_zerobus::encode_internal {

template <class Cell, class = void>
struct FixedSizeOf {
  static constexpr int64_t value = 0;
};
template <class Cell>
struct FixedSizeOf<Cell, std::void_t<decltype(Cell::kFixedSize)>> {
  static constexpr int64_t value = Cell::kFixedSize;
};

template <class Cell>
class ScalarWriter final : public ColumnWriter {
 public:
  ScalarWriter(const FieldInfo* info, Cell cell, const uint8_t* validity, int64_t offset)
      : info_(info), cell_(std::move(cell)), validity_(validity), offset_(offset) {}

  void Size(const Level& level, EncodeContext* ctx) override {
    if (!level.simple()) {
      SizeLoop<kGeneral>(level, ctx);
    } else if (validity_ == nullptr) {
      SizeLoop<kDense>(level, ctx);
    } else if constexpr (kFixedSize > 0 && !Cell::kCanFail) {
      if (info_->nulls == NullPolicy::kAbsent) {
        FixedNullableSize(level);
      } else {
        SizeLoop<kNullable>(level, ctx);
      }
    } else {
      SizeLoop<kNullable>(level, ctx);
    }
  }

  void Write(const Level& level) override {
    if (!level.simple()) {
      WriteLoop<kGeneral>(level);
    } else if (validity_ == nullptr) {
      WriteLoop<kDense>(level);
    } else {
      WriteLoop<kNullable>(level);
    }
  }

 private:
  // kDense: consecutive positions, no nulls. kNullable: consecutive positions with a validity
  // bitmap. kGeneral: positions and accumulators from arrays (nested levels, dictionaries).
  enum Mode { kDense, kNullable, kGeneral };

  static constexpr int64_t kFixedSize = FixedSizeOf<Cell>::value;

  // Optional fixed-size values: a branch-free add per slot (nulls are unpredictable branches).
  void FixedNullableSize(const Level& level) {
    const int64_t per_value = info_->tag.len + kFixedSize;
    const int64_t base = level.pos_add + offset_;
    int64_t* size = level.size;
    for (int64_t k = 0; k < level.n; ++k) {
      size[k] += per_value * static_cast<int64_t>(arrow::bit_util::GetBit(validity_, base + k));
    }
  }

  template <Mode kMode>
  void SizeLoop(const Level& level, EncodeContext* ctx) {
    const int64_t n = level.n;
    const int64_t tag_len = info_->tag.len;
    const int64_t base = level.pos_add + offset_;
    int64_t* size = level.size;
    for (int64_t k = 0; k < n; ++k) {
      int64_t i;
      if constexpr (kMode == kGeneral) {
        const int64_t p = level.Pos(k);
        if (p < 0) {
          Null(level, k, ctx);
          continue;
        }
        i = p + offset_;
        if (validity_ != nullptr && !arrow::bit_util::GetBit(validity_, i)) {
          Null(level, k, ctx);
          continue;
        }
      } else {
        i = base + k;
        if constexpr (kMode == kNullable) {
          if (!arrow::bit_util::GetBit(validity_, i)) {
            Null(level, k, ctx);
            continue;
          }
        }
      }
      if constexpr (Cell::kCanFail) {
        if (!cell_.Ok(i)) [[unlikely]] {
          ctx->Fail(level.Row(k), info_->path, cell_.Reason(i));
        }
      }
      if constexpr (kMode == kGeneral) {
        size[level.Acc(k)] += tag_len + cell_.Size(i);
      } else {
        size[k] += tag_len + cell_.Size(i);
      }
    }
  }

  template <Mode kMode>
  void WriteLoop(const Level& level) {
    const int64_t n = level.n;
    const Tag tag = info_->tag;
    const int64_t base = level.pos_add + offset_;
    uint8_t** cur = level.cur;
    for (int64_t k = 0; k < n; ++k) {
      int64_t i;
      int64_t a = k;
      if constexpr (kMode == kGeneral) {
        const int64_t p = level.Pos(k);
        if (p < 0) continue;
        i = p + offset_;
        if (validity_ != nullptr && !arrow::bit_util::GetBit(validity_, i)) continue;
        a = level.Acc(k);
      } else {
        i = base + k;
        if constexpr (kMode == kNullable) {
          if (!arrow::bit_util::GetBit(validity_, i)) continue;
        }
      }
      cur[a] = cell_.Write(i, tag.Write(cur[a]));
    }
  }

  void Null(const Level& level, int64_t k, EncodeContext* ctx) const {
    if (info_->nulls != NullPolicy::kAbsent) [[unlikely]] info_->NullAt(level, k, ctx);
  }

  const FieldInfo* info_;
  Cell cell_;
  const uint8_t* validity_;
  int64_t offset_;
};

// Plan of a scalar column: the field info plus the Cell's plan-time parameters.
template <class Cell>
class ScalarPlan final : public FieldPlan {
 public:
  using Params = typename Cell::Params;
  ScalarPlan(FieldInfo info, Params params) : info_(std::move(info)), params_(std::move(params)) {}

  std::unique_ptr<ColumnWriter> Bind(const arrow::ArrayData& data) const override {
    return std::make_unique<ScalarWriter<Cell>>(&info_, Cell(data, params_), ValidityOrNull(data),
                                                data.offset);
  }

 private:
  FieldInfo info_;
  Params params_;
};

template <class Cell>
std::unique_ptr<FieldPlan> MakeScalarPlan(FieldInfo info, typename Cell::Params params = {}) {
  return std::make_unique<ScalarPlan<Cell>>(std::move(info), std::move(params));
}

}  // namespace arrow_zerobus::encode_internal
