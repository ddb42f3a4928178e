#include "arrow_zerobus/result.h"

#include <arrow/api.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace arrow_zerobus {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A batch whose rows can be recognised: id = row index, name = "row<i>", a null every 3rd score.
std::shared_ptr<arrow::RecordBatch> MakeBatch(int64_t n) {
  arrow::Int64Builder ids;
  arrow::StringBuilder names;
  arrow::DoubleBuilder scores;
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_TRUE(ids.Append(i).ok());
    EXPECT_TRUE(names.Append("row" + std::to_string(i)).ok());
    EXPECT_TRUE((i % 3 == 0 ? scores.AppendNull() : scores.Append(i * 0.5)).ok());
  }
  auto schema = arrow::schema({arrow::field("id", arrow::int64()),
                               arrow::field("name", arrow::utf8()),
                               arrow::field("score", arrow::float64())});
  return arrow::RecordBatch::Make(schema, n,
                                  {ids.Finish().ValueOrDie(), names.Finish().ValueOrDie(),
                                   scores.Finish().ValueOrDie()});
}

std::vector<int64_t> Ids(const arrow::RecordBatch& b) {
  auto ids = std::static_pointer_cast<arrow::Int64Array>(b.column(0));
  return std::vector<int64_t>(ids->raw_values(), ids->raw_values() + ids->length());
}

TransmissionResult Mixed() {
  auto r = TransmissionResult::FromRowOutcomes(
      8, {7, 0, 2, 3, 5},
      {{6, "Transmission error: stream broke"},
       {1, "Conversion error: column 'x' row 1: value out of range"},
       {4, "ConversionError: legacy prefix"}});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return *r;
}

TEST(ErrorKindOfMessage, PrefixesAndFallback) {
  EXPECT_EQ(ErrorKindOfMessage("Conversion error: x"), ErrorKind::kConversion);
  EXPECT_EQ(ErrorKindOfMessage("ConnectionError: refused"), ErrorKind::kConnection);
  EXPECT_EQ(ErrorKindOfMessage("Retry exhausted: UNAVAILABLE"), ErrorKind::kRetryExhausted);
  EXPECT_EQ(ErrorKindOfMessage("TokenRefreshError: 401"), ErrorKind::kTokenRefresh);
  EXPECT_EQ(ErrorKindOfMessage("Authentication error: denied"), ErrorKind::kAuthentication);
  EXPECT_EQ(ErrorKindOfMessage("something odd"), ErrorKind::kConversion);
  EXPECT_EQ(ErrorKindOfMessage("TransmissionErrorX"), ErrorKind::kConversion);
  EXPECT_EQ(ErrorKindOfMessage(""), ErrorKind::kConversion);
}

TEST(TransmissionResult, FromRowOutcomesSortsAndCounts) {
  const auto r = Mixed();
  EXPECT_TRUE(r.success);
  EXPECT_EQ(r.total_rows, 8);
  EXPECT_EQ(r.successful_count, 5);
  EXPECT_EQ(r.failed_count, 3);
  EXPECT_THAT(r.SuccessfulRowIndices(), ElementsAre(0, 2, 3, 5, 7));
  EXPECT_THAT(r.FailedRowIndices(), ElementsAre(1, 4, 6));
  EXPECT_EQ(r.failed_rows[0].message, "Conversion error: column 'x' row 1: value out of range");
  EXPECT_TRUE(r.IsPartialSuccess());
  EXPECT_TRUE(r.HasFailedRows());
  EXPECT_TRUE(r.HasSuccessfulRows());
  EXPECT_TRUE(r.CheckInvariants().ok());
  EXPECT_THAT(r.ErrorMessages(), ElementsAre(HasSubstr("value out of range"),
                                             HasSubstr("legacy prefix"), HasSubstr("broke")));
}

TEST(TransmissionResult, FromRowOutcomesRejectsBadAccounting) {
  auto r = TransmissionResult::FromRowOutcomes(3, {0, 1}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("successful_count + failed_count = 2 != total_rows 3"));
  r = TransmissionResult::FromRowOutcomes(2, {0, 1}, {{1, "x"}});
  ASSERT_FALSE(r.ok());
  r = TransmissionResult::FromRowOutcomes(3, {0, 1}, {{1, "x"}});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("row 1 is listed as both successful and failed"));
  r = TransmissionResult::FromRowOutcomes(2, {0, 5}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("successful row 5 is outside [0, 2)"));
  r = TransmissionResult::FromRowOutcomes(2, {0, 0}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("not sorted and unique"));
}

TEST(TransmissionResult, CheckInvariantsCatchesEachRule) {
  auto r = Mixed();
  r.failed_count = 2;
  EXPECT_THAT(r.CheckInvariants().message(), HasSubstr("failed_count 2 but 3 failed rows"));
  r = Mixed();
  r.successful_count = 4;
  EXPECT_THAT(r.CheckInvariants().message(), HasSubstr("successful_count 4 but 5"));
  r = Mixed();
  r.success = false;
  EXPECT_THAT(r.CheckInvariants().message(), HasSubstr("success is false although 5 rows"));
  r = Mixed();
  std::swap(r.failed_rows[0], r.failed_rows[1]);
  EXPECT_THAT(r.CheckInvariants().message(), HasSubstr("failed rows are not sorted"));
  r = Mixed();
  r.attempts = 0;
  EXPECT_THAT(r.CheckInvariants().message(), HasSubstr("attempts must be at least 1"));
  auto w = TransmissionResult::WholeBatchFailure(2, ConversionError("x"));
  w.success = true;
  EXPECT_THAT(w.CheckInvariants().message(), HasSubstr("success is true although none of 2"));
}

TEST(TransmissionResult, WholeBatchFailureListsEveryRow) {
  const auto st = MakeError(ErrorKind::kRetryExhausted, false, "UNAVAILABLE after 5 attempts");
  const auto r = TransmissionResult::WholeBatchFailure(4, st, 5);
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.attempts, 5);
  EXPECT_EQ(r.error, std::optional<std::string>("Retry exhausted: UNAVAILABLE after 5 attempts"));
  EXPECT_THAT(r.FailedRowIndices(), ElementsAre(0, 1, 2, 3));
  EXPECT_EQ(r.failed_count, 4);
  EXPECT_EQ(r.successful_count, 0);
  EXPECT_FALSE(r.IsPartialSuccess());
  EXPECT_TRUE(r.CheckInvariants().ok());
  EXPECT_THAT(r.FailedRowIndicesByErrorType("RetryExhausted"), ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(r.FailedRowIndicesByErrorType("ConversionError"), IsEmpty());
}

TEST(TransmissionResult, GroupingAndStatistics) {
  const auto r = Mixed();
  const auto groups = r.GroupErrorsByType();
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_THAT(groups.at("ConversionError"), ElementsAre(1, 4));
  EXPECT_THAT(groups.at("TransmissionError"), ElementsAre(6));
  EXPECT_THAT(r.FailedRowIndicesByErrorType("TransmissionError"), ElementsAre(6));
  EXPECT_THAT(r.FailedRowIndicesByErrorType("NoSuchError"), IsEmpty());
  const auto s = r.Statistics();
  EXPECT_EQ(s.total_rows, 8);
  EXPECT_EQ(s.successful_count, 5);
  EXPECT_EQ(s.failed_count, 3);
  EXPECT_DOUBLE_EQ(s.success_rate, 5.0 / 8.0);
  EXPECT_DOUBLE_EQ(s.failure_rate, 3.0 / 8.0);
  EXPECT_EQ(s.error_type_counts.at("ConversionError"), 2);
  EXPECT_EQ(s.error_type_counts.at("TransmissionError"), 1);
}

TEST(TransmissionResult, EmptyBatchHasZeroRates) {
  auto r = TransmissionResult::FromRowOutcomes(0, {}, {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->success);
  const auto s = r->Statistics();
  EXPECT_EQ(s.success_rate, 0.0);
  EXPECT_EQ(s.failure_rate, 0.0);
  EXPECT_TRUE(s.error_type_counts.empty());
  EXPECT_FALSE(r->IsPartialSuccess());
  EXPECT_FALSE(r->HasFailedRows());
  EXPECT_FALSE(r->HasSuccessfulRows());
}

TEST(TransmissionResult, ExtractRowsInIndexOrder) {
  const auto batch = MakeBatch(8);
  const auto r = Mixed();
  auto failed = r.ExtractFailedBatch(*batch);
  ASSERT_TRUE(failed.ok()) << failed.status().ToString();
  ASSERT_NE(*failed, nullptr);
  ASSERT_TRUE((*failed)->ValidateFull().ok());
  EXPECT_THAT(Ids(**failed), ElementsAre(1, 4, 6));
  auto names = std::static_pointer_cast<arrow::StringArray>((*failed)->column(1));
  EXPECT_EQ(names->GetString(1), "row4");
  auto ok = r.ExtractSuccessfulBatch(*batch);
  ASSERT_TRUE(ok.ok());
  ASSERT_TRUE((*ok)->ValidateFull().ok());
  EXPECT_THAT(Ids(**ok), ElementsAre(0, 2, 3, 5, 7));
  // Null positions travel with their rows: score is null for ids 0 and 3.
  EXPECT_TRUE((*ok)->column(2)->IsNull(0));
  EXPECT_FALSE((*ok)->column(2)->IsNull(1));
  EXPECT_TRUE((*ok)->column(2)->IsNull(2));
  EXPECT_TRUE((*ok)->schema()->Equals(*batch->schema()));
}

TEST(TransmissionResult, ExtractNoneGivesNull) {
  auto all_ok = TransmissionResult::FromRowOutcomes(3, {0, 1, 2}, {});
  ASSERT_TRUE(all_ok.ok());
  const auto batch = MakeBatch(3);
  auto failed = all_ok->ExtractFailedBatch(*batch);
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(*failed, nullptr);
  auto ok = all_ok->ExtractSuccessfulBatch(*batch);
  ASSERT_TRUE(ok.ok());
  EXPECT_THAT(Ids(**ok), ElementsAre(0, 1, 2));
}

TEST(TransmissionResult, ExtractFromWrongBatchIsAnError) {
  const auto r = Mixed();
  auto st = r.ExtractFailedBatch(*MakeBatch(5)).status();
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("row index 6 is outside the batch of 5 rows"));
  st = TakeRows(*MakeBatch(5), {3, 1}).status();
  EXPECT_THAT(st.message(), HasSubstr("ascending and unique; 1 follows 3"));
}

TEST(TransmissionResult, ToStringShowsCounts) {
  const std::string s = Mixed().ToString();
  EXPECT_THAT(s, HasSubstr("success=true"));
  EXPECT_THAT(s, HasSubstr("total_rows=8"));
  EXPECT_THAT(s, HasSubstr("failed_count=3"));
}

}  // namespace
}  // namespace arrow_zerobus
