// litelens._litelens: the native half of the litelens Python package. One init function per
// area; the Python package (python/litelens/__init__.py) re-exports these names and adds
// open(), conv2d_params(), extract(), patch() and diff().
#include "common.h"
#include "litelens/version.h"

NB_MODULE(_litelens, m) {
  using namespace litelens::py;
  m.doc() = "Native bindings of litelens (use the litelens package, not this module).";
  m.attr("__version__") = nb::str(litelens::version().data(), litelens::version().size());
  init_errors(m);
  ModelClass model = init_model(m);
  init_layers(m, model);
  init_export(m, model);
  init_metadata(m, model);
  init_patch(m, model);
}
