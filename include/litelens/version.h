// litelens/version.h: which litelens this is.
#pragma once

#include <string_view>

namespace litelens {

/// The library's version, "MAJOR.MINOR.PATCH" (the repository's VERSION file).
std::string_view version() noexcept;

}  // namespace litelens
