// The compiled part of {fmt}, built into litelens instead of linking libfmt.so.
//
// Why: the CLI is linked statically (its start-up is most of a small command's time, and a
// static binary skips the dynamic loader), and Debian ships {fmt} only as a shared library.
// Every other translation unit includes the ordinary headers, which declare the functions below
// without defining them; this one defines them: format-inl.h holds the out-of-line functions,
// and the explicit instantiations are every template that {fmt} 9's headers declare but leave
// to the library (dragonbox::to_decimal, locale_ref's constructor and get(), vformat_to, and the
// locale helpers for char and wchar_t).
#include <fmt/format-inl.h>

#if FMT_VERSION / 10000 != 9
#error "this file lists {fmt} 9's instantiations; CMakeLists.txt links libfmt for other versions"
#endif

FMT_BEGIN_NAMESPACE
namespace detail {

template auto dragonbox::to_decimal(float x) noexcept -> dragonbox::decimal_fp<float>;
template auto dragonbox::to_decimal(double x) noexcept -> dragonbox::decimal_fp<double>;
template auto thousands_sep_impl<char>(locale_ref) -> thousands_sep_result<char>;
template auto thousands_sep_impl<wchar_t>(locale_ref) -> thousands_sep_result<wchar_t>;
template auto decimal_point_impl<char>(locale_ref) -> char;
template auto decimal_point_impl<wchar_t>(locale_ref) -> wchar_t;
template void vformat_to<char>(buffer<char>&, string_view, basic_format_args<FMT_BUFFER_CONTEXT(char)>, locale_ref);
template locale_ref::locale_ref(const std::locale&);
template auto locale_ref::get<std::locale>() const -> std::locale;

}  // namespace detail
FMT_END_NAMESPACE
