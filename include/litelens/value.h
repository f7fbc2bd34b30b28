// litelens/value.h: a small self-describing value, used for decoded operator options
// (builtin option tables and FlexBuffers custom options).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace litelens {

/// null, bool, signed or unsigned integer, double, string, list, or an ordered map.
/// Enum fields of option tables are strings holding the enum's name ("SAME", "RELU6").
class Value {
 public:
  using List = std::vector<Value>;
  using Map = std::vector<std::pair<std::string, Value>>;  // keeps declaration order
  using Storage =
      std::variant<std::monostate, bool, std::int64_t, std::uint64_t, double, std::string, List, Map>;

  Value() = default;
  Value(bool v) : v_(v) {}
  Value(std::int64_t v) : v_(v) {}
  Value(std::uint64_t v) : v_(v) {}
  Value(double v) : v_(v) {}
  Value(std::string v) : v_(std::move(v)) {}
  Value(List v) : v_(std::move(v)) {}
  Value(Map v) : v_(std::move(v)) {}

  bool is_null() const noexcept { return std::holds_alternative<std::monostate>(v_); }
  bool is_bool() const noexcept { return std::holds_alternative<bool>(v_); }
  bool is_int() const noexcept { return std::holds_alternative<std::int64_t>(v_); }
  bool is_uint() const noexcept { return std::holds_alternative<std::uint64_t>(v_); }
  bool is_double() const noexcept { return std::holds_alternative<double>(v_); }
  bool is_string() const noexcept { return std::holds_alternative<std::string>(v_); }
  bool is_list() const noexcept { return std::holds_alternative<List>(v_); }
  bool is_map() const noexcept { return std::holds_alternative<Map>(v_); }

  /// Typed access; throws std::bad_variant_access on a kind mismatch.
  bool as_bool() const { return std::get<bool>(v_); }
  std::int64_t as_int() const { return std::get<std::int64_t>(v_); }
  std::uint64_t as_uint() const { return std::get<std::uint64_t>(v_); }
  double as_double() const { return std::get<double>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const List& as_list() const { return std::get<List>(v_); }
  const Map& as_map() const { return std::get<Map>(v_); }
  List& as_list() { return std::get<List>(v_); }
  Map& as_map() { return std::get<Map>(v_); }

  /// Map lookup; nullptr when this is not a map or the key is absent.
  const Value* find(std::string_view key) const noexcept;

  const Storage& storage() const noexcept { return v_; }

  friend bool operator==(const Value&, const Value&) = default;

 private:
  Storage v_;
};

}  // namespace litelens
