#include "litelens/suggest.h"

#include <algorithm>
#include <cctype>

#include "edit_distance.h"

namespace litelens {

std::vector<std::string> closest_names(std::string_view wanted, std::span<const std::string> candidates,
                                       std::size_t limit) {
  const auto lower = [](std::string_view s) {
    std::string out(s.substr(0, 200));
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  const std::string w = lower(wanted);
  std::vector<std::pair<std::size_t, std::size_t>> scored;  // (distance, index)
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const std::size_t d = detail::edit_distance(w, lower(candidates[i]));
    if (d <= std::max<std::size_t>(2, std::max(w.size(), candidates[i].size()) / 3)) scored.emplace_back(d, i);
  }
  std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (std::size_t k = 0; k < scored.size() && k < limit; ++k) out.push_back(candidates[scored[k].second]);
  return out;
}

}  // namespace litelens
