#include "litelens/version.h"

namespace litelens {

// LITELENS_VERSION_STRING comes from the VERSION file through CMake (this file only).
std::string_view version() noexcept { return LITELENS_VERSION_STRING; }

}  // namespace litelens
