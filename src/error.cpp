#include "litelens/error.h"

#include <fmt/format.h>

namespace litelens {

std::string_view error_kind_name(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::io: return "io";
    case ErrorKind::truncated: return "truncated";
    case ErrorKind::bad_identifier: return "bad_identifier";
    case ErrorKind::bad_version: return "bad_version";
    case ErrorKind::invalid_flatbuffer: return "invalid_flatbuffer";
    case ErrorKind::index_out_of_range: return "index_out_of_range";
    case ErrorKind::buffer_out_of_file: return "buffer_out_of_file";
    case ErrorKind::size_mismatch: return "size_mismatch";
    case ErrorKind::invalid_shape: return "invalid_shape";
    case ErrorKind::invalid_quantization: return "invalid_quantization";
    case ErrorKind::invalid_sparsity: return "invalid_sparsity";
    case ErrorKind::invalid_string: return "invalid_string";
    case ErrorKind::invalid_tensor: return "invalid_tensor";
    case ErrorKind::invalid_metadata: return "invalid_metadata";
    case ErrorKind::output: return "output";
  }
  return "unknown";
}

namespace {
std::string describe(const std::string& label, const std::string& message,
                     std::optional<std::uint64_t> offset) {
  if (offset) return fmt::format("{}: {} (at byte {})", label, message, *offset);
  return fmt::format("{}: {}", label, message);
}
}  // namespace

Error::Error(ErrorKind kind, std::string label, std::string message,
             std::optional<std::uint64_t> offset)
    : std::runtime_error(describe(label, message, offset)),
      kind_(kind),
      label_(std::move(label)),
      message_(std::move(message)),
      offset_(offset) {}

}  // namespace litelens
