// Seeded mutation fuzzing of the decoders in every build (the libFuzzer target covers the same
// entry point with coverage guidance when clang is available): valid seeds for every mode,
// mutated by bit flips, byte edits, truncation and splicing, fixed seed, a few thousand inputs.
#include <random>
#include <string>
#include <vector>

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include "emulator/store/store_test_util.h"
#include "decoder_fuzz_target.h"

namespace arrow_zerobus::emulator {
namespace {

using testing::Wire;

std::string Frame(uint8_t mode, const std::vector<std::string>& records) {
  std::string out(1, static_cast<char>(mode));
  for (const auto& r : records) {
    out.push_back(static_cast<char>(r.size() & 0xff));
    out.push_back(static_cast<char>((r.size() >> 8) & 0xff));
    out += r;
  }
  return out;
}

std::vector<std::string> Seeds() {
  Wire inner;
  inner.Tag(1, 2).Varint(2).Varint(testing::ZigZag(-1)).Varint(testing::ZigZag(7));
  Wire sub;
  sub.DoubleField(1, 1.5).BytesField(2, inner);
  Wire entry;
  entry.BytesField(1, "k").BytesField(2, sub);
  Wire nums;
  nums.Varint(1).Varint(300);
  std::string full = Wire()
                         .VarintField(1, 42)
                         .BytesField(2, "name")
                         .DoubleField(3, 2.5)
                         .FloatField(4, 1.25f)
                         .VarintField(5, 1)
                         .VarintField(6, testing::ZigZag(-9))
                         .Fixed64Field(7, 77)
                         .VarintField(8, 5)
                         .BytesField(9, "-12.5")
                         .BytesField(10, nums)
                         .BytesField(11, "t1")
                         .BytesField(11, "t2")
                         .BytesField(12, sub)
                         .BytesField(13, entry)
                         .BytesField(14, sub)
                         .BytesField(15, std::string("\0\1", 2))
                         .VarintField(16, 1700000000000000)
                         .VarintField(17, 19000)
                         .VarintField(18, 3);
  std::string minimal = Wire().VarintField(1, 1);
  std::string json =
      R"({"id": 1, "name": "x", "nums": [1, 2], "sub": {"x": 1.5, "inner": {"v": [1]}},
          "attrs": {"k": {"x": 2}}, "price": "1.25", "ts": "2024-01-01T00:00:00Z", "day": "2024-02-29",
          "raw": "AAE=", "extra": [{"key": 1, "value": "one"}], "tiny": -3, "kind": "B"})";
  google::protobuf::DescriptorProto d;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(R"pb(name: "R"
      field { name: "a" number: 1 label: LABEL_REQUIRED type: TYPE_INT64 }
      field { name: "m" number: 2 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: "MEntry" }
      field { name: "s" number: 3 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".x.R.S" }
      nested_type { name: "MEntry" options { map_entry: true }
        field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
        field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING } }
      nested_type { name: "S" field { name: "e" number: 1 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: "E" }
        enum_type { name: "E" value { name: "Z" number: 0 } } })pb", &d));
  std::string descriptor = d.SerializeAsString();
  return {Frame(0, {full, minimal, full}), Frame(0, {minimal}), Frame(1, {json, R"({"id": 2})"}),
          Frame(2, {descriptor, Wire().VarintField(1, 5).BytesField(2, Wire().VarintField(1, 3).BytesField(2, "v")),
                    Wire().VarintField(1, 6).BytesField(3, Wire().VarintField(1, 0))})};
}

std::string Mutate(const std::string& input, const std::vector<std::string>& seeds, std::mt19937_64& rng) {
  std::string s = input;
  int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    if (s.size() < 2) s += static_cast<char>(rng());
    size_t pos = 1 + rng() % (s.size() - 1);  // keep the mode byte mostly intact
    switch (rng() % 7) {
      case 0: s[pos] = static_cast<char>(s[pos] ^ (1u << (rng() % 8))); break;
      case 1: s[pos] = static_cast<char>(rng()); break;
      case 2: s.insert(pos, 1, static_cast<char>(rng())); break;
      case 3: s.erase(pos, 1 + rng() % 4); break;
      case 4: s.resize(pos); break;
      case 5: {
        const std::string& other = seeds[rng() % seeds.size()];
        size_t from = rng() % other.size();
        s.insert(pos, other.substr(from, rng() % 32));
        break;
      }
      case 6: s[pos] = static_cast<char>(std::array<uint8_t, 6>{0x00, 0x7f, 0x80, 0xff, 0x0a, 0x12}[rng() % 6]); break;
    }
  }
  return s;
}

TEST(DecoderFuzz, SeedsDecode) {
  // The seeds themselves are valid inputs: they exercise the success paths.
  for (const auto& seed : Seeds()) {
    EXPECT_EQ(fuzz::FuzzOne(reinterpret_cast<const uint8_t*>(seed.data()), seed.size()), 0);
  }
}

TEST(DecoderFuzz, MutatedInputsNeverCrashOrBreakInvariants) {
  const auto seeds = Seeds();
  std::mt19937_64 rng(0xC0FFEE);
  std::vector<std::string> pool = seeds;
  for (int i = 0; i < 100000; ++i) {
    std::string input = Mutate(pool[rng() % pool.size()], seeds, rng);
    fuzz::FuzzOne(reinterpret_cast<const uint8_t*>(input.data()), input.size());
    if (i % 97 == 0 && pool.size() < 256) pool.push_back(input);  // mutate mutants too
  }
  SUCCEED();  // FuzzOne aborts the process on a broken invariant; ASan/UBSan builds catch more
}

}  // namespace
}  // namespace arrow_zerobus::emulator
