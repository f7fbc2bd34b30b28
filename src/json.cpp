#include "litelens/json.h"

#include "json_writer.h"

namespace litelens {

nlohmann::ordered_json to_json(const Value& value) {
  detail::JsonTreeBuilder tree;
  detail::emit(tree, value);
  return tree.take();
}

nlohmann::ordered_json to_json(const std::optional<Quantization>& quantization) {
  detail::JsonTreeBuilder tree;
  detail::emit(tree, quantization);
  return tree.take();
}

}  // namespace litelens
