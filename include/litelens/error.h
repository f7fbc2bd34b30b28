// litelens/error.h: the one error type for problems found in model files.
//
// Bad input (a broken or hostile file) is reported as litelens::Error, which carries a kind,
// the file's label (its path, or "<memory>"), a byte offset where one applies, and a short
// lowercase message. API misuse (an index out of range, a wrong dtype for data_as<T>()) throws
// std::out_of_range or std::invalid_argument instead, so callers can tell the two apart.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace litelens {

/// What is wrong with a model file. Stable names for tests and tools: see error_kind_name().
enum class ErrorKind : std::uint8_t {
  io,                  ///< the file could not be opened, read or mapped
  truncated,           ///< too short to hold a FlatBuffer header
  bad_identifier,      ///< bytes 4..7 are not "TFL3"
  bad_version,         ///< Model.version is not 3
  invalid_flatbuffer,  ///< the FlatBuffers verifier rejected the structure
  index_out_of_range,  ///< a tensor, buffer, opcode, subgraph or other index points nowhere
  buffer_out_of_file,  ///< an offset/size buffer or payload lies outside the file
  size_mismatch,       ///< a constant's byte length disagrees with its shape and dtype
  invalid_shape,       ///< a negative dimension or an element count that overflows
  invalid_quantization,///< quantization vectors that reading would go out of bounds with
  invalid_sparsity,    ///< malformed sparsity metadata
  invalid_string,      ///< a malformed STRING tensor buffer
  invalid_tensor,      ///< other contradictions in a tensor (variable with data, ...)
  invalid_metadata,    ///< a malformed metadata entry or appended archive
  output,              ///< an output file could not be written
};

/// The stable lowercase name of a kind ("size_mismatch").
std::string_view error_kind_name(ErrorKind kind) noexcept;

/// Bad input. what() reads "<label>: <message> (at byte N)".
class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string label, std::string message,
        std::optional<std::uint64_t> offset = std::nullopt);

  ErrorKind kind() const noexcept { return kind_; }
  /// The file path, or "<memory>" for a model read from bytes.
  const std::string& label() const noexcept { return label_; }
  /// The short message without label or offset.
  const std::string& message() const noexcept { return message_; }
  /// Byte offset in the file where the problem sits, when one applies.
  std::optional<std::uint64_t> offset() const noexcept { return offset_; }

 private:
  ErrorKind kind_;
  std::string label_;
  std::string message_;
  std::optional<std::uint64_t> offset_;
};

/// A problem the runtime tolerates and so do we: the model opens, and the warning says what is odd.
struct Warning {
  std::string code;     ///< short stable identifier, e.g. "nonempty_buffer0"
  std::string message;  ///< one readable line
  std::optional<std::uint64_t> offset;
  int subgraph = -1;  ///< the tensor the warning is about (subgraph, index); -1 for the model as a whole
  int tensor = -1;
};

/// The non-throwing route: either a value or the Error that would have been thrown.
template <class T>
class Result {
 public:
  Result(T value) : state_(std::move(value)) {}
  Result(Error error) : state_(std::move(error)) {}

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  /// The value; throws the stored Error when there is none.
  T& value() & {
    if (!ok()) throw std::get<1>(state_);
    return std::get<0>(state_);
  }
  T&& value() && {
    if (!ok()) throw std::get<1>(state_);
    return std::get<0>(std::move(state_));
  }
  /// The error; precondition: !ok().
  const Error& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, Error> state_;
};

}  // namespace litelens
