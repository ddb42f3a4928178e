#include "arrow_zerobus/errors.h"

#include <array>

namespace arrow_zerobus {

namespace {

struct KindInfo {
  std::string_view name;
  std::string_view prefix;
};

constexpr std::array<KindInfo, 7> kKinds = {{
    {"ConfigurationError", "Configuration error: "},
    {"AuthenticationError", "Authentication error: "},
    {"ConnectionError", "Connection error: "},
    {"ConversionError", "Conversion error: "},
    {"TransmissionError", "Transmission error: "},
    {"RetryExhausted", "Retry exhausted: "},
    {"TokenRefreshError", "Token refresh error: "},
}};

// grpc::StatusCode values, spelled out so this module does not depend on gRPC headers.
enum GrpcCode : int {
  kOk = 0, kCancelled = 1, kUnknown = 2, kInvalidArgument = 3, kDeadlineExceeded = 4,
  kNotFound = 5, kAlreadyExists = 6, kPermissionDenied = 7, kResourceExhausted = 8,
  kFailedPrecondition = 9, kAborted = 10, kOutOfRange = 11, kUnimplemented = 12,
  kInternal = 13, kUnavailable = 14, kDataLoss = 15, kUnauthenticated = 16,
};

constexpr std::array<std::string_view, 17> kGrpcCodeNames = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED"};

}  // namespace

std::string_view ErrorKindName(ErrorKind kind) { return kKinds[static_cast<size_t>(kind)].name; }

std::string_view ErrorKindPrefix(ErrorKind kind) {
  return kKinds[static_cast<size_t>(kind)].prefix;
}

std::optional<ErrorKind> ErrorKindFromName(std::string_view name) {
  for (size_t i = 0; i < kKinds.size(); ++i) {
    if (kKinds[i].name == name) return static_cast<ErrorKind>(i);
  }
  return std::nullopt;
}

std::string ZerobusStatusDetail::ToString() const {
  std::string out(ErrorKindName(kind_));
  out += retryable_ ? " (retryable)" : " (not retryable)";
  if (grpc_code_) {
    out += ", gRPC ";
    out += GrpcCodeName(*grpc_code_);
  }
  return out;
}

arrow::Status MakeError(ErrorKind kind, bool retryable, std::string message,
                        std::optional<int> grpc_code) {
  const arrow::StatusCode code =
      (kind == ErrorKind::kConfiguration || kind == ErrorKind::kConversion)
          ? arrow::StatusCode::Invalid
          : arrow::StatusCode::IOError;
  return arrow::Status(code, std::move(message),
                       std::make_shared<ZerobusStatusDetail>(kind, retryable, grpc_code));
}

const ZerobusStatusDetail* GetZerobusDetail(const arrow::Status& status) {
  const auto& detail = status.detail();
  if (!detail || std::string_view(detail->type_id()) != ZerobusStatusDetail::kTypeId) {
    return nullptr;
  }
  return static_cast<const ZerobusStatusDetail*>(detail.get());
}

ErrorKind GetErrorKind(const arrow::Status& status) {
  const auto* detail = GetZerobusDetail(status);
  return detail ? detail->kind() : ErrorKind::kTransmission;
}

bool IsRetryable(const arrow::Status& status) {
  const auto* detail = GetZerobusDetail(status);
  return detail != nullptr && detail->retryable();
}

std::string RenderError(const arrow::Status& status) {
  if (status.ok()) return "";
  std::string out(ErrorKindPrefix(GetErrorKind(status)));
  out += status.message();
  return out;
}

std::string_view GrpcCodeName(int code) {
  if (code < 0 || code >= static_cast<int>(kGrpcCodeNames.size())) return "UNKNOWN";
  return kGrpcCodeNames[code];
}

GrpcStatusClass ClassifyGrpcStatus(int code, std::string_view message) {
  switch (code) {
    case kInvalidArgument:
    case kNotFound:
    case kUnimplemented:
    case kOutOfRange:
      return {ErrorKind::kTransmission, false, false};
    case kPermissionDenied:
      return {ErrorKind::kAuthentication, false, false};
    case kUnauthenticated:
      return {ErrorKind::kAuthentication, false, true};
    default:
      // UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, RESOURCE_EXHAUSTED, an OK end before close and
      // the rest are transient (including 6002 stream timeout and 6006 pipeline blocked).
      return {ErrorKind::kTransmission, true, false};
  }
}

arrow::Status FromGrpcStatus(int code, std::string_view message, std::string_view context) {
  const GrpcStatusClass cls = ClassifyGrpcStatus(code, message);
  std::string text(context);
  if (!text.empty()) text += ": ";
  text += GrpcCodeName(code);
  if (!message.empty()) {
    text += ": ";
    text += message;
  }
  return MakeError(cls.kind, cls.retryable, std::move(text), code);
}

}  // namespace arrow_zerobus
