#include "decode/emulator_status.h"

namespace arrow_zerobus::emulator {

StatusCode ToStatusCode(const arrow::Status& status) {
  switch (status.code()) {
    case arrow::StatusCode::OK:
      return StatusCode::kOk;
    case arrow::StatusCode::Invalid:
    case arrow::StatusCode::TypeError:
    case arrow::StatusCode::IndexError:
    case arrow::StatusCode::CapacityError:
      return StatusCode::kInvalidArgument;
    case arrow::StatusCode::KeyError:
      return StatusCode::kNotFound;
    case arrow::StatusCode::AlreadyExists:
      return StatusCode::kAlreadyExists;
    case arrow::StatusCode::NotImplemented:
      return StatusCode::kUnimplemented;
    default:
      return StatusCode::kInternal;
  }
}

}  // namespace arrow_zerobus::emulator
