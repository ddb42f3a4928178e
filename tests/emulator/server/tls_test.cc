// TLS on both sides, with a self-signed certificate made here with the openssl CLI.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "server_test_util.h"

namespace arrow_zerobus::emulator::testing {
namespace {

constexpr const char* kTable = "main.default.rows";

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_ = dir_.path() + "/cert.pem";
    key_ = dir_.path() + "/key.pem";
    std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
        "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
        key_ + " -out " + cert_ + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl CLI failed";
    auto o = TestOptions(dir_.path() + "/data");
    o.tls_cert_file = cert_;
    o.tls_key_file = key_;
    emulator_ = std::make_unique<Emulator>(o);
    auto st = emulator_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  TempDir dir_;
  std::string cert_, key_;
  std::unique_ptr<Emulator> emulator_;
};

TEST_F(TlsTest, GrpcAndHttpsWithSelfSignedCertificate) {
  EXPECT_EQ(emulator_->grpc_endpoint().rfind("https://", 0), 0u);
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = Slurp(cert_);
  Client client("127.0.0.1:" + std::to_string(emulator_->grpc_port()),
                grpc::SslCredentials(ssl));
  auto desc = RowDescriptor();
  RowEncoder enc;
  auto call = OpenCreated(client, BearerFor(*emulator_, kTable), kTable, &desc);
  ASSERT_TRUE(call.Write(ProtoRecord(0, enc.Encode(1, "tls", 1))));
  EXPECT_EQ(call.ReadAcksUntil(0).back(), 0);
  EXPECT_TRUE(call.Close().ok());

  // HTTPS token endpoint, verified against the same certificate.
  httplib::SSLClient https("127.0.0.1", emulator_->http_port());
  https.set_ca_cert_path(cert_.c_str());
  https.enable_server_certificate_verification(true);
  httplib::Headers h = {{"Authorization", "Basic " + Base64(
                                                         "test-client:test-secret")}};
  auto r = https.Post("/oidc/v1/token", h, "grant_type=client_credentials&scope=all-apis",
                      "application/x-www-form-urlencoded");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(nlohmann::json::parse(r->body).contains("access_token"));
}

TEST_F(TlsTest, PlaintextClientCannotTalkToTlsServer) {
  Client client("127.0.0.1:" + std::to_string(emulator_->grpc_port()));
  auto desc = RowDescriptor();
  grpc::Status st = CreateStatus(client, BearerFor(*emulator_, kTable), kTable,
                                 CreateRequest(kTable, &desc));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
}

TEST(TlsOptions, CertificateWithoutKeyIsRefused) {
  TempDir dir;
  auto o = TestOptions(dir.path());
  o.tls_cert_file = dir.path() + "/cert.pem";
  Emulator e(o);
  auto st = e.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), ::testing::HasSubstr("both a certificate and a key"));
}

}  // namespace
}  // namespace arrow_zerobus::emulator::testing
