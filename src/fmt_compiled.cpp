// The compiled part of {fmt}, built into litelens instead of linking libfmt.so.
//
// Why: the CLI is linked statically (its start-up is most of a small command's time, and a
// static binary skips the dynamic loader), and Debian ships {fmt} only as a shared library.
// Every other translation unit includes the ordinary headers, which declare these functions and
// templates extern; this one defines them: format-inl.h holds the out-of-line functions, and the
// templates below are the ones those headers declare as explicitly instantiated elsewhere.
#include <fmt/format-inl.h>

#if FMT_VERSION / 10000 != 9
#error "this file lists {fmt} 9's instantiations; CMakeLists.txt links libfmt for other versions"
#endif

FMT_BEGIN_NAMESPACE
namespace detail {

template auto thousands_sep_impl<char>(locale_ref) -> thousands_sep_result<char>;
template auto decimal_point_impl<char>(locale_ref) -> char;
template void vformat_to<char>(buffer<char>&, string_view, basic_format_args<FMT_BUFFER_CONTEXT(char)>, locale_ref);
template locale_ref::locale_ref(const std::locale&);
template auto locale_ref::get<std::locale>() const -> std::locale;

}  // namespace detail
FMT_END_NAMESPACE
