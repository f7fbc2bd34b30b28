#include "litelens/value.h"

namespace litelens {

const Value* Value::find(std::string_view key) const noexcept {
  if (!is_map()) return nullptr;
  for (const auto& [k, v] : std::get<Map>(v_))
    if (k == key) return &v;
  return nullptr;
}

}  // namespace litelens
