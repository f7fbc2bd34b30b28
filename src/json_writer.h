// JSON emission without a document tree. Export manifests carry every per-channel scale of every
// layer (hundreds of thousands of numbers on big models) and JSON exports carry every value, so
// building an nlohmann tree first cost more than writing the arrays themselves. JsonWriter appends
// text to a string as it goes; JsonTreeBuilder offers the same calls and builds an nlohmann tree
// for the callers that want one (the CLI, the diff report). The emit() templates below define,
// once, how library values look in JSON for both.
#pragma once

#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "litelens/model.h"
#include "litelens/value.h"

namespace litelens::detail {

class JsonWriter {
 public:
  /// `pretty`: each key of an object starts a new, indented line; arrays stay on one line, so a
  /// million values do not become a million lines.
  explicit JsonWriter(std::string& out, bool pretty = false) : out_(out), pretty_(pretty) {}

  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array() { open('['); }
  void end_array() { close(']'); }

  void key(std::string_view k) {
    separate();
    if (pretty_) newline(open_.size());
    quoted(k);
    out_ += pretty_ ? ": " : ":";
    after_key_ = true;
  }

  void null() {
    separate();
    out_ += "null";
  }
  void value(std::nullptr_t) { null(); }
  void value(bool v) {
    separate();
    out_ += v ? "true" : "false";
  }
  template <std::integral T>
    requires(!std::same_as<T, bool> && !std::same_as<T, char>)
  void value(T v) {
    separate();
    char text[24];
    out_.append(text, static_cast<std::size_t>(std::to_chars(text, text + sizeof text, v).ptr - text));
  }
  template <std::floating_point T>
  void value(T v) {
    separate();
    number(static_cast<double>(v));
  }
  void value(std::string_view v) {
    separate();
    quoted(v);
  }
  void value(const char* v) { value(std::string_view(v)); }
  void value(const std::string& v) { value(std::string_view(v)); }

  template <class T>
  void value(const std::vector<T>& values) {
    begin_array();
    for (const auto& v : values) value(v);
    end_array();
  }

 private:
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (open_.empty()) return;
    if (!open_.back().first) out_ += ',';
    open_.back().first = false;
  }
  void open(char c) {
    separate();
    out_ += c;
    open_.push_back({c, true});
  }
  void close(char c) {
    const bool empty = open_.back().first;
    open_.pop_back();
    if (pretty_ && c == '}' && !empty) newline(open_.size());
    out_ += c;
  }
  void newline(std::size_t depth) {
    out_ += '\n';
    out_.append(depth, ' ');
  }

  // The shortest text that reads back as the same double (a float32 scale widened to double is
  // exact, so every reader gets the stored value), with a fraction or exponent so that readers
  // keep it a float. JSON has no NaN or infinity: null. std::to_chars rather than {fmt}: a
  // manifest holds tens of thousands of scales, and it is about twice as fast per number.
  void number(double v) {
    if (!std::isfinite(v)) {
      out_ += "null";
      return;
    }
    char text[40];  // the shortest round-trip form of a double is at most 24 characters
    char* end = std::to_chars(text, text + sizeof text, v).ptr;
    out_.append(text, static_cast<std::size_t>(end - text));
    if (std::string_view(text, static_cast<std::size_t>(end - text)).find_first_of(".eE") == std::string_view::npos)
      out_ += ".0";
  }

  // Escapes quotes, backslashes and control characters; bytes that are not UTF-8 become U+FFFD,
  // so a tensor name with stray bytes still yields valid JSON.
  void quoted(std::string_view s);

  struct Level {
    char bracket;
    bool first;
  };
  std::string& out_;
  bool pretty_;
  bool after_key_ = false;
  std::vector<Level> open_;
};

/// The same calls as JsonWriter, building an nlohmann::ordered_json instead of text.
class JsonTreeBuilder {
 public:
  void begin_object() { open(nlohmann::ordered_json::object()); }
  void end_object() { stack_.pop_back(); }
  void begin_array() { open(nlohmann::ordered_json::array()); }
  void end_array() { stack_.pop_back(); }
  void key(std::string_view k) { key_.assign(k); }
  void null() { put(nullptr); }
  template <class T>
  void value(const T& v) {
    put(nlohmann::ordered_json(v));
  }
  nlohmann::ordered_json take() { return std::move(root_); }

 private:
  nlohmann::ordered_json* put(nlohmann::ordered_json v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    auto& top = *stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(v));
      return &top.back();
    }
    auto& slot = top[key_];
    slot = std::move(v);
    return &slot;
  }
  void open(nlohmann::ordered_json v) { stack_.push_back(put(std::move(v))); }

  nlohmann::ordered_json root_;
  std::vector<nlohmann::ordered_json*> stack_;
  std::string key_;
};

template <class W>
void emit(W& w, const Value& value) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          w.null();
        } else if constexpr (std::is_same_v<T, Value::List>) {
          w.begin_array();
          for (const auto& item : v) emit(w, item);
          w.end_array();
        } else if constexpr (std::is_same_v<T, Value::Map>) {
          w.begin_object();
          for (const auto& [k, item] : v) {
            w.key(k);
            emit(w, item);
          }
          w.end_object();
        } else {
          w.value(v);
        }
      },
      value.storage());
}

/// Where a quantization's axis lands after a layout conversion; without it, the file's axis.
struct QuantizationAxes {
  int quantized_dimension = 0;
  bool split = false;  // the channel axis was reshaped into (axis, axis + 1)
};

template <class W>
void emit(W& w, const std::optional<Quantization>& q, const std::optional<QuantizationAxes>& axes = std::nullopt) {
  if (!q) {
    w.null();
    return;
  }
  w.begin_object();
  w.key("scale");
  w.value(q->scale);
  w.key("zero_point");
  w.value(q->zero_point);
  w.key("quantized_dimension");
  w.value(axes ? axes->quantized_dimension : q->quantized_dimension);
  w.key("scheme");
  w.value(scheme_name(q->scheme));
  if (!q->min.empty()) {
    w.key("min");
    w.value(q->min);
  }
  if (!q->max.empty()) {
    w.key("max");
    w.value(q->max);
  }
  if (q->scheme == Quantization::Scheme::blockwise || q->scheme == Quantization::Scheme::multi_axis) {
    w.key("scales_tensor");
    w.value(q->scales_tensor);
    w.key("zero_points_tensor");
    w.value(q->zero_points_tensor);
    w.key("block_size");
    w.value(q->block_size);
  }
  if (q->scheme == Quantization::Scheme::multi_axis) {
    w.key("quantized_dimensions");
    w.value(q->quantized_dimensions);
  } else if (axes && axes->split) {
    w.key("quantized_dimensions");
    w.value(std::vector<int>{axes->quantized_dimension, axes->quantized_dimension + 1});
  }
  if (q->scheme == Quantization::Scheme::custom) {
    w.key("custom");
    w.value(q->custom);
  }
  w.end_object();
}

}  // namespace litelens::detail
