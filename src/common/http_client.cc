#include "common/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include <arrow/util/base64.h>
#include <curl/curl.h>
#include <openssl/crypto.h>

#include "arrow_zerobus/errors.h"
#include "common/secure_wipe_internal.h"

namespace arrow_zerobus::internal {

namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t Collect(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
// One header line may be the Authorization header: every line is wiped before it is freed.
struct WipingSlistDeleter {
  void operator()(curl_slist* list) const {
    for (curl_slist* l = list; l != nullptr; l = l->next) {
      OPENSSL_cleanse(l->data, std::strlen(l->data));
    }
    curl_slist_free_all(list);
  }
};

const char* Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

// CURLOPT_NOPROXY replaces the no_proxy variable, so the variable's hosts are kept. "*" (no proxy
// at all) only works on its own in curl, not as an item of a list.
std::string NoProxyList() {
  std::string list = "localhost,127.0.0.1,127.0.0.0/8,::1";
  for (const char* name : {"no_proxy", "NO_PROXY"}) {
    const char* v = Env(name);
    if (v == nullptr) continue;
    if (std::strcmp(v, "*") == 0) return "*";
    list += ',';
    list += v;
  }
  return list;
}

// Failures that come back on every try (a certificate that does not verify, a server that does
// not speak HTTP/1.1 or TLS): what is wrong, for the message; empty for failures that may heal
// (refused, reset, timeouts, DNS).
std::string_view NeverHeals(CURLcode rc, const std::string& message) {
  switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
      return "TLS verification failed: check ca_file and the server's certificate";
    case CURLE_SSL_CACERT_BADFILE:
      return "the CA file cannot be used: check ca_file";
    case CURLE_SSL_CONNECT_ERROR:
      if (message.find("wrong version number") != std::string::npos ||
          message.find("packet length too long") != std::string::npos) {
        return "the server does not speak TLS: check the URL's scheme and port";
      }
      return "";
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_WEIRD_SERVER_REPLY:
      // A gRPC (HTTP/2-only) port answers the request with frames curl reads as HTTP/0.9.
      return "the server is not an HTTP/1.1 server: is the URL pointing at a gRPC port?";
    default:
      return "";
  }
}

}  // namespace

std::string FormEncode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size() * 3);
  for (unsigned char c : value) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

SecretString BasicAuthorization(std::string_view user, const SecretString& password) {
  const std::string& secret = password.Reveal();
  std::string plain;  // "user:password"
  plain.reserve(user.size() + 1 + secret.size());
  plain.append(user).append(1, ':').append(secret);
  std::string encoded = arrow::util::base64_encode(plain);
  SecureWipe(&plain);
  std::string value;
  value.reserve(6 + encoded.size());
  value.append("Basic ").append(encoded);
  SecureWipe(&encoded);
  SecretString out(std::move(value));
  SecureWipe(&value);  // a short value is copied, not moved, out of the string's own buffer
  return out;
}

bool IsLoopbackHost(std::string_view host) {
  const std::string h(host);
  if (strcasecmp(h.c_str(), "localhost") == 0) return true;
  in_addr v4{};
  // inet_pton takes only the dotted quad ("127.1" and "0x7f.0.0.1" are refused).
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

arrow::Result<HttpResponse> HttpCall(const HttpRequest& request) {
  GlobalInit();
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return MakeError(ErrorKind::kConnection, true, "cannot initialise libcurl");
  CURL* c = curl.get();
  HttpResponse response;
  char errbuf[CURL_ERROR_SIZE] = {0};
  std::unique_ptr<curl_slist, WipingSlistDeleter> headers;
  auto append_header = [&headers](const std::string& line) {
    curl_slist* list = curl_slist_append(headers.get(), line.c_str());
    if (list == nullptr) return false;  // the old list is untouched and still owned
    headers.release();
    headers.reset(list);
    return true;
  };
  for (const auto& [k, v] : request.headers) {
    if (!append_header(k + ": " + v)) return arrow::Status::OutOfMemory("HTTP header list");
  }
  if (!request.authorization.empty()) {
    std::string line;
    line.reserve(15 + request.authorization.Reveal().size());
    line.append("Authorization: ").append(request.authorization.Reveal());
    const bool appended = append_header(line);
    SecureWipe(&line);
    if (!appended) return arrow::Status::OutOfMemory("HTTP header list");
  }
  const std::string no_proxy = NoProxyList();
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);  // credentials never follow a redirect
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOPROXY, no_proxy.c_str());
  if (!request.user_agent.empty()) curl_easy_setopt(c, CURLOPT_USERAGENT, request.user_agent.c_str());
  if (!request.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, request.ca_file.c_str());
  if (request.post) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }
  if (headers) curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    std::string msg = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
    const std::string_view cause = NeverHeals(rc, msg);
    if (!cause.empty()) {
      return MakeError(ErrorKind::kConnection, false,
                       "HTTP request failed: " + msg + " (" + std::string(cause) + ")");
    }
    return MakeError(ErrorKind::kConnection, true, "HTTP request failed: " + msg);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

bool SpeaksTls(const std::string& authority, std::chrono::milliseconds timeout) {
  GlobalInit();
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return false;
  CURL* c = curl.get();
  const std::string url = "https://" + authority + "/";
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);  // the handshake, no request
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
  return curl_easy_perform(c) == CURLE_OK;
}

}  // namespace arrow_zerobus::internal
