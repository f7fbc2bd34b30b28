// litelens.Error: the one exception type for bad model files, with the C++ Error's fields.
//
// nb::exception registers the type (and a plain translator); the translator added here runs
// first and sets the attributes kind, path, offset and message on the raised instance.
// std::out_of_range becomes IndexError and std::invalid_argument ValueError (nanobind's
// defaults); lookups by name raise KeyError from the binding code.
#include "litelens/error.h"

#include "common.h"

namespace litelens::py {

namespace {

PyObject* g_error_type = nullptr;

void translate(const std::exception_ptr& p, void*) {
  try {
    std::rethrow_exception(p);
  } catch (const Error& e) {
    nb::object instance = nb::handle(g_error_type)(py_str(e.what()));
    instance.attr("kind") = py_str(error_kind_name(e.kind()));
    instance.attr("path") = py_str(e.label());
    instance.attr("offset") = e.offset() ? nb::object(nb::int_(*e.offset())) : nb::none();
    instance.attr("message") = py_str(e.message());
    PyErr_SetObject(g_error_type, instance.ptr());
  }
}

}  // namespace

void init_errors(nb::module_& m) {
  nb::exception<Error> error(m, "Error");
  error.attr("__doc__") =
      "A model file that litelens cannot read, or an export that cannot be written.\n\n"
      "Attributes:\n"
      "    kind: stable lowercase name of the problem (\"truncated\", \"bad_identifier\",\n"
      "        \"size_mismatch\", \"buffer_out_of_file\", \"invalid_metadata\", \"output\", ...).\n"
      "    path: the file's path, or the label given to from_bytes() (\"<memory>\").\n"
      "    offset: byte offset in the file where the problem sits, or None.\n"
      "    message: the short message without path and offset.\n";
  // Class-level defaults, so the attributes exist even on instances raised from Python code.
  error.attr("kind") = "";
  error.attr("path") = "";
  error.attr("offset") = nb::none();
  error.attr("message") = "";
  g_error_type = error.ptr();
  Py_INCREF(g_error_type);  // lives as long as the interpreter (the module keeps it too)
  nb::register_exception_translator(translate);
}

}  // namespace litelens::py
