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
  if (server_code_) out += ", Zerobus code " + std::to_string(*server_code_);
  return out;
}

arrow::Status MakeError(ErrorKind kind, bool retryable, std::string message,
                        std::optional<int> grpc_code, std::optional<int> server_code) {
  const arrow::StatusCode code =
      (kind == ErrorKind::kConfiguration || kind == ErrorKind::kConversion)
          ? arrow::StatusCode::Invalid
          : arrow::StatusCode::IOError;
  return arrow::Status(
      code, std::move(message),
      std::make_shared<ZerobusStatusDetail>(kind, retryable, grpc_code, server_code));
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

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

char LowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Position of `needle` in `hay`, ignoring ASCII case; npos when absent.
size_t FindNoCase(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return std::string_view::npos;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    size_t k = 0;
    while (k < needle.size() && LowerAscii(hay[i + k]) == needle[k]) ++k;
    if (k == needle.size()) return i;
  }
  return std::string_view::npos;
}

// A 4-digit code at `pos` that is not part of a longer number.
std::optional<int> CodeAt(std::string_view s, size_t pos) {
  if (pos + 4 > s.size()) return std::nullopt;
  for (size_t i = 0; i < 4; ++i) {
    if (!IsDigit(s[pos + i])) return std::nullopt;
  }
  if (pos + 4 < s.size() && IsDigit(s[pos + 4])) return std::nullopt;
  return (s[pos] - '0') * 1000 + (s[pos + 1] - '0') * 100 + (s[pos + 2] - '0') * 10 +
         (s[pos + 3] - '0');
}

}  // namespace

std::optional<int> ParseServerErrorCode(std::string_view m) {
  size_t start = 0;
  while (start < m.size() && (m[start] == ' ' || m[start] == '[' || m[start] == '(')) ++start;
  if (auto code = CodeAt(m, start)) return code;
  for (std::string_view intro : {"error code ", "error_code=", "error_code: ", "errorcode: ",
                                 "error code: ", "code "}) {
    const size_t at = FindNoCase(m, intro);
    if (at != std::string_view::npos) {
      if (auto code = CodeAt(m, at + intro.size())) return code;
    }
  }
  if (FindNoCase(m, "pipeline creation is temporarily blocked") != std::string_view::npos) {
    return kPipelineBlockedCode;
  }
  if (FindNoCase(m, "stream timeout reached") != std::string_view::npos) return kStreamTimeoutCode;
  return std::nullopt;
}

GrpcStatusClass ClassifyGrpcStatus(int code, std::string_view message) {
  GrpcStatusClass cls{ErrorKind::kTransmission, true, false, ParseServerErrorCode(message)};
  switch (code) {
    case kInvalidArgument:
    case kNotFound:
    case kUnimplemented:
    case kOutOfRange:
      cls.retryable = false;
      break;
    case kPermissionDenied:
      cls.kind = ErrorKind::kAuthentication;
      cls.retryable = false;
      break;
    case kUnauthenticated:
      cls.kind = ErrorKind::kAuthentication;
      cls.retryable = false;
      cls.refresh_token = true;
      break;
    default:
      // UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, RESOURCE_EXHAUSTED, an OK end before close and
      // the rest are transient (including 6002 stream timeout and 6006 pipeline blocked).
      cls.pipeline_blocked = cls.server_code == kPipelineBlockedCode;
      break;
  }
  return cls;
}

bool IsPipelineBlocked(const arrow::Status& status) {
  const auto* detail = GetZerobusDetail(status);
  return detail != nullptr && detail->retryable() &&
         detail->server_code() == kPipelineBlockedCode;
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
  return MakeError(cls.kind, cls.retryable, std::move(text), code, cls.server_code);
}

}  // namespace arrow_zerobus
