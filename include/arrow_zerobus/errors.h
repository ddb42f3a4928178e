// Error model: every failure is an arrow::Status carrying a ZerobusStatusDetail that says which
// kind of failure it is, whether retrying can help, and (for transmission) the gRPC status code.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <arrow/status.h>

namespace arrow_zerobus {

enum class ErrorKind : int8_t {
  kConfiguration,
  kAuthentication,
  kConnection,
  kConversion,
  kTransmission,
  kRetryExhausted,
  kTokenRefresh,
};

// "ConversionError", ...: the Python exception class names, also used to group row errors.
std::string_view ErrorKindName(ErrorKind kind);
// "Conversion error: ", ...: the prefix every rendered error message starts with.
std::string_view ErrorKindPrefix(ErrorKind kind);
// Parses a class name ("ConversionError") back to its kind.
std::optional<ErrorKind> ErrorKindFromName(std::string_view name);

class ZerobusStatusDetail : public arrow::StatusDetail {
 public:
  static constexpr const char* kTypeId = "arrow_zerobus::ZerobusStatusDetail";

  ZerobusStatusDetail(ErrorKind kind, bool retryable, std::optional<int> grpc_code = std::nullopt,
                      std::optional<int> server_code = std::nullopt)
      : kind_(kind), retryable_(retryable), grpc_code_(grpc_code), server_code_(server_code) {}

  const char* type_id() const override { return kTypeId; }
  std::string ToString() const override;

  ErrorKind kind() const { return kind_; }
  bool retryable() const { return retryable_; }
  // The gRPC status code (grpc::StatusCode as int) for errors that came from the wire.
  std::optional<int> grpc_code() const { return grpc_code_; }
  // The Zerobus service's own error code (6006 pipeline blocked, 6002 stream timeout, 4024
  // missing grant, ...), read from the server's status message when it arrived: decisions use
  // this, never a search through the rendered text (which also holds table names and URLs).
  std::optional<int> server_code() const { return server_code_; }

 private:
  ErrorKind kind_;
  bool retryable_;
  std::optional<int> grpc_code_;
  std::optional<int> server_code_;
};

// Builds a failed Status of the given kind. The arrow::StatusCode is chosen from the kind
// (Invalid for configuration/conversion, IOError for the rest).
arrow::Status MakeError(ErrorKind kind, bool retryable, std::string message,
                        std::optional<int> grpc_code = std::nullopt,
                        std::optional<int> server_code = std::nullopt);

inline arrow::Status ConfigurationError(std::string message) {
  return MakeError(ErrorKind::kConfiguration, false, std::move(message));
}
inline arrow::Status ConversionError(std::string message) {
  return MakeError(ErrorKind::kConversion, false, std::move(message));
}
inline arrow::Status AuthenticationError(std::string message) {
  return MakeError(ErrorKind::kAuthentication, false, std::move(message));
}

// The detail of a status made by this library, or nullptr (OK or a foreign status).
const ZerobusStatusDetail* GetZerobusDetail(const arrow::Status& status);
// The kind of a failed status; a foreign (non-Zerobus) failure counts as a Transmission error.
ErrorKind GetErrorKind(const arrow::Status& status);
bool IsRetryable(const arrow::Status& status);
// "Conversion error: <message>": the form users see in results and exceptions.
std::string RenderError(const arrow::Status& status);

// The Zerobus error code in a status message exactly as the server sent it: a code that starts
// the message ("6006 Pipeline creation ..."), one introduced as "error code N" / "error_code=N" /
// "ErrorCode: N", or one of the service's known phrases. Only ever applied to the server's own
// text, never to a message this library composed.
std::optional<int> ParseServerErrorCode(std::string_view server_message);

// Zerobus error codes the client acts on.
inline constexpr int kPipelineBlockedCode = 6006;  // stream creation temporarily refused
inline constexpr int kStreamTimeoutCode = 6002;    // the service ended a long-lived stream

// How the client must treat a gRPC status from the Zerobus service (protocol doc, status table).
struct GrpcStatusClass {
  ErrorKind kind;
  bool retryable;
  // UNAUTHENTICATED: drop the cached token, fetch a new one and reopen once.
  bool refresh_token;
  std::optional<int> server_code;
  // 6006: retryable, but the caller should pause (cool-down) rather than retry at once.
  bool pipeline_blocked = false;
};
// `code` is a grpc::StatusCode value; `message` is the server's text.
GrpcStatusClass ClassifyGrpcStatus(int code, std::string_view message);
// The status is the service's 6006 "pipeline creation is temporarily blocked" refusal.
bool IsPipelineBlocked(const arrow::Status& status);
// A Status for a gRPC failure, classified as above; `context` says what was being done.
arrow::Status FromGrpcStatus(int code, std::string_view message, std::string_view context);
// "UNAVAILABLE", ... for a grpc::StatusCode value.
std::string_view GrpcCodeName(int code);

}  // namespace arrow_zerobus
