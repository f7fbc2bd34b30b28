// A program as a user writes it against the installed (or vendored) library: one include, the
// README's Conv2D question, and the parts litelens.h promises (diff, patch, version).
#include <litelens/litelens.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const litelens::Model model = litelens::Model::open(argv[1]);
  std::size_t params = 0;
  for (const litelens::Layer& layer : litelens::layers(model, {.ops = {"CONV_2D"}}))
    if (const litelens::Param* filter = layer.param("filter"))
      params += static_cast<std::size_t>(litelens::consumed_values(model, layer, *filter).size());
  const litelens::ModelDiff same = litelens::diff_models(model, model);
  std::printf("litelens %.*s: %zu filter values, %zu layers compared\n", static_cast<int>(litelens::version().size()),
              litelens::version().data(), params, same.layers.size());
  return params > 0 && !same.layers.empty() ? 0 : 1;
}
