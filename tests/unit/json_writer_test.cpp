// The streaming JSON writer behind export manifests and JSON exports: valid JSON for any input
// (stray bytes, control characters, NaN), numbers that read back exactly, and the same document
// as the nlohmann tree built from the same calls.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "json_writer.h"

namespace {

using litelens::Quantization;
using litelens::Value;
using litelens::detail::JsonTreeBuilder;
using litelens::detail::JsonWriter;

std::string escaped(std::string_view s) {
  std::string out;
  JsonWriter w(out);
  w.value(s);
  return out;
}

TEST(json_writer_test, strings_are_escaped_and_always_valid_utf8) {
  EXPECT_EQ(escaped("plain/name;with:colons"), "\"plain/name;with:colons\"");
  EXPECT_EQ(escaped("q\"b\\s\n\t\r\b\f"), R"("q\"b\\s\n\t\r\b\f")");
  EXPECT_EQ(escaped(std::string("\x01\x1f", 2)), R"("\u0001\u001f")");
  EXPECT_EQ(escaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  // Stray continuation byte, truncated sequence, overlong form, surrogate, past U+10FFFF.
  for (const std::string bad : {"\x80", "\xc3", "\xe2\x82", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff"}) {
    const std::string text = escaped("a" + bad + "b");
    EXPECT_TRUE(nlohmann::json::accept(text)) << text;
    EXPECT_NE(text.find("\xef\xbf\xbd"), std::string::npos) << text;
  }
}

TEST(json_writer_test, numbers_read_back_exactly_and_stay_floats) {
  std::string out;
  JsonWriter w(out);
  const std::vector<float> floats = {1.0f, 0.1f, 1e-30f, 3.4028235e38f, -0.0f, 0.00099898048f};
  // 1e5 and 1e22 come out in exponent form ("1e+05"), which is shorter there: still floats.
  const std::vector<double> doubles = {1.0, 0.1, 5e-324, 1.7976931348623157e308, 123456789.0, 1e5, 1e22, -2.5e-7};
  w.begin_array();
  w.value(floats);
  w.value(doubles);
  w.value(std::numeric_limits<double>::quiet_NaN());
  w.value(-std::numeric_limits<float>::infinity());
  w.value(std::numeric_limits<std::int64_t>::min());
  w.value(std::numeric_limits<std::uint64_t>::max());
  w.value(std::int8_t{-5});
  w.value(true);
  w.null();
  w.end_array();
  const auto doc = nlohmann::json::parse(out);
  for (std::size_t i = 0; i < floats.size(); ++i) {
    ASSERT_TRUE(doc[0][i].is_number_float()) << out;
    EXPECT_EQ(static_cast<double>(floats[i]), doc[0][i].get<double>());
  }
  for (std::size_t i = 0; i < doubles.size(); ++i) {
    ASSERT_TRUE(doc[1][i].is_number_float()) << out;
    EXPECT_EQ(doubles[i], doc[1][i].get<double>());
  }
  EXPECT_TRUE(doc[2].is_null());
  EXPECT_TRUE(doc[3].is_null());
  EXPECT_EQ(doc[4].get<std::int64_t>(), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(doc[5].get<std::uint64_t>(), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(doc[6], -5);
  EXPECT_EQ(doc[7], true);
  EXPECT_TRUE(doc[8].is_null());
}

TEST(json_writer_test, text_and_tree_agree) {
  Value::Map options{{"padding", Value(std::string("SAME"))},
                     {"stride", Value(std::int64_t{2})},
                     {"ratio", Value(0.25)},
                     {"flags", Value(Value::List{Value(true), Value()})},
                     {"nested", Value(Value::Map{{"u", Value(std::uint64_t{7})}})}};
  Quantization q;
  q.scale = {0.5f, 0.25f};
  q.zero_point = {0, 3};
  q.quantized_dimension = 1;
  for (const bool pretty : {false, true}) {
    std::string text;
    JsonWriter w(text, pretty);
    JsonTreeBuilder tree;
    const auto both = [&](auto&& call) {
      call(w);
      call(tree);
    };
    both([](auto& x) { x.begin_object(); });
    both([](auto& x) { x.key("options"); });
    both([&](auto& x) { litelens::detail::emit(x, Value(options)); });
    both([](auto& x) { x.key("quantization"); });
    both([&](auto& x) { litelens::detail::emit(x, std::optional<Quantization>(q)); });
    both([](auto& x) { x.key("none"); });
    both([&](auto& x) { litelens::detail::emit(x, std::optional<Quantization>()); });
    both([](auto& x) { x.key("empty"); });
    both([](auto& x) { x.begin_object(); });
    both([](auto& x) { x.end_object(); });
    both([](auto& x) { x.end_object(); });
    EXPECT_EQ(nlohmann::ordered_json::parse(text), tree.take()) << text;
  }
}

TEST(json_writer_test, quantization_axes_after_a_layout_change) {
  Quantization q;
  q.scale = {1, 2, 3, 4};
  q.zero_point = {0, 0, 0, 0};
  q.quantized_dimension = 3;
  std::string text;
  JsonWriter w(text);
  litelens::detail::emit(w, std::optional<Quantization>(q), litelens::detail::QuantizationAxes{2, true});
  const auto doc = nlohmann::json::parse(text);
  EXPECT_EQ(doc["quantized_dimension"], 2);
  EXPECT_EQ(doc["quantized_dimensions"], nlohmann::json({2, 3}));
}

}  // namespace
