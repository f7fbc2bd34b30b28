// litelens/suggest.h: "did you mean" candidates for a name that matched nothing.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace litelens {

/// Up to `limit` of `candidates` close to `wanted` (edit distance, ignoring case, at most a third
/// of the longer name and at least 2), closest first; ties keep the candidates' order.
std::vector<std::string> closest_names(std::string_view wanted, std::span<const std::string> candidates,
                                       std::size_t limit = 3);

}  // namespace litelens
