#include "arrow_zerobus/errors.h"

#include <gtest/gtest.h>

namespace arrow_zerobus {
namespace {

TEST(Errors, KindNamesAndPrefixesRoundTrip) {
  for (int i = 0; i <= static_cast<int>(ErrorKind::kTokenRefresh); ++i) {
    auto kind = static_cast<ErrorKind>(i);
    EXPECT_EQ(ErrorKindFromName(ErrorKindName(kind)), kind);
  }
  EXPECT_EQ(ErrorKindPrefix(ErrorKind::kConversion), "Conversion error: ");
  EXPECT_EQ(ErrorKindPrefix(ErrorKind::kRetryExhausted), "Retry exhausted: ");
  EXPECT_EQ(ErrorKindFromName("NoSuchError"), std::nullopt);
}

TEST(Errors, StatusCarriesDetail) {
  arrow::Status st = ConversionError("column 'a' (int8): boom");
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.IsInvalid());
  const auto* detail = GetZerobusDetail(st);
  ASSERT_NE(detail, nullptr);
  EXPECT_EQ(detail->kind(), ErrorKind::kConversion);
  EXPECT_FALSE(detail->retryable());
  EXPECT_EQ(RenderError(st), "Conversion error: column 'a' (int8): boom");
  EXPECT_EQ(GetZerobusDetail(arrow::Status::OK()), nullptr);
  EXPECT_EQ(GetZerobusDetail(arrow::Status::IOError("x")), nullptr);
  EXPECT_EQ(GetErrorKind(arrow::Status::IOError("x")), ErrorKind::kTransmission);
  EXPECT_FALSE(IsRetryable(arrow::Status::IOError("x")));
}

TEST(Errors, GrpcStatusTable) {
  // Not retryable.
  for (int code : {3 /*INVALID_ARGUMENT*/, 5 /*NOT_FOUND*/, 12 /*UNIMPLEMENTED*/, 11 /*OUT_OF_RANGE*/}) {
    auto cls = ClassifyGrpcStatus(code, "");
    EXPECT_FALSE(cls.retryable) << code;
    EXPECT_EQ(cls.kind, ErrorKind::kTransmission) << code;
  }
  auto denied = ClassifyGrpcStatus(7, "4024 missing grant");
  EXPECT_FALSE(denied.retryable);
  EXPECT_EQ(denied.kind, ErrorKind::kAuthentication);
  auto unauth = ClassifyGrpcStatus(16, "token expired");
  EXPECT_FALSE(unauth.retryable);
  EXPECT_TRUE(unauth.refresh_token);
  // Transient.
  for (int code : {0, 1, 2, 4, 8, 13, 14}) {
    EXPECT_TRUE(ClassifyGrpcStatus(code, "").retryable) << code;
  }
  EXPECT_TRUE(ClassifyGrpcStatus(14, "6002 Stream timeout reached").retryable);
}

TEST(Errors, FromGrpcStatusKeepsCodeAndMessage) {
  auto st = FromGrpcStatus(14, "6006 Pipeline creation is temporarily blocked", "create_stream");
  const auto* detail = GetZerobusDetail(st);
  ASSERT_NE(detail, nullptr);
  EXPECT_EQ(detail->grpc_code(), 14);
  EXPECT_TRUE(detail->retryable());
  EXPECT_EQ(st.message(),
            "create_stream: UNAVAILABLE: 6006 Pipeline creation is temporarily blocked");
  EXPECT_NE(st.ToString().find("TransmissionError (retryable), gRPC UNAVAILABLE"),
            std::string::npos);
}

}  // namespace
}  // namespace arrow_zerobus
