// How emulator failures map to gRPC status codes. Storage and decoding return arrow::Status;
// the server turns each failed Status into a gRPC status with ToStatusCode() and sends the
// message as is (messages name the table, column path, record index and what is wrong).
#pragma once

#include <string>

#include <arrow/status.h>

namespace arrow_zerobus::emulator {

// The gRPC code a failure is reported with. Values equal grpc::StatusCode, so
// static_cast<grpc::StatusCode>(code) is valid.
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 3,  // bad descriptor, schema mismatch, record that does not decode
  kNotFound = 5,         // table does not exist (strict mode)
  kAlreadyExists = 6,    // declaring a table again with another schema
  kUnimplemented = 12,   // table feature/type not supported
  kInternal = 13,        // I/O failure, store closed, bugs
};

// Mapping by arrow::StatusCode, which is how this library marks failures:
//   Invalid / TypeError / IndexError / CapacityError -> kInvalidArgument
//   KeyError -> kNotFound, AlreadyExists -> kAlreadyExists, NotImplemented -> kUnimplemented,
//   everything else (IOError, ...) -> kInternal. OK -> kOk.
StatusCode ToStatusCode(const arrow::Status& status);

// Constructors that pick the matching arrow::StatusCode.
inline arrow::Status InvalidArgument(std::string message) {
  return arrow::Status::Invalid(std::move(message));
}
inline arrow::Status NotFound(std::string message) {
  return arrow::Status::KeyError(std::move(message));
}
inline arrow::Status Unimplemented(std::string message) {
  return arrow::Status::NotImplemented(std::move(message));
}

}  // namespace arrow_zerobus::emulator
