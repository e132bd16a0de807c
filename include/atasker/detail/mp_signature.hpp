#pragma once
/// \file detail/mp_signature.hpp
/// What MpTask learns from its function's type: parameters, result, and
/// whether it takes a leading at::Progress.

#include <cstddef>
#include <tuple>
#include <type_traits>

#include <atasker/progress.hpp>

namespace atasker::detail {

template <class R, class... P>
struct mp_signature_of {
    using result = R;
    using params = std::tuple<P...>;  // as declared (references and all)
};

template <class F, class = void>
struct mp_callable_signature {
    static constexpr bool known = false;
    using result = void;
    using params = std::tuple<>;
};

template <class R, class... P> struct mp_callable_signature<R (*)(P...)> : mp_signature_of<R, P...> {
    static constexpr bool known = true;
};
template <class R, class... P> struct mp_callable_signature<R (*)(P...) noexcept> : mp_signature_of<R, P...> {
    static constexpr bool known = true;
};

template <class M> struct mp_member_signature {
    static constexpr bool known = false;
    using result = void;
    using params = std::tuple<>;
};
#define ATASKER_MP_MEMBER_SIGNATURE(QUALIFIERS)                                              \
    template <class R, class C, class... P>                                                  \
    struct mp_member_signature<R (C::*)(P...) QUALIFIERS> : mp_signature_of<R, P...> {       \
        static constexpr bool known = true;                                                  \
    };                                                                                       \
    template <class R, class C, class... P>                                                  \
    struct mp_member_signature<R (C::*)(P...) QUALIFIERS noexcept> : mp_signature_of<R, P...> { \
        static constexpr bool known = true;                                                  \
    };
ATASKER_MP_MEMBER_SIGNATURE()
ATASKER_MP_MEMBER_SIGNATURE(const)
ATASKER_MP_MEMBER_SIGNATURE(&)
ATASKER_MP_MEMBER_SIGNATURE(const&)
#undef ATASKER_MP_MEMBER_SIGNATURE

/// Function objects with exactly one, non-template operator().
template <class F>
struct mp_callable_signature<F, std::void_t<decltype(&F::operator())>>
    : mp_member_signature<decltype(&F::operator())> {};

/// Whether a parameter type is the progress reporter.
template <class P>
inline constexpr bool is_progress_param = std::is_same_v<std::remove_cvref_t<P>, Progress>;

/// The parameters the caller supplies: all, less a leading at::Progress.
template <class Params> struct mp_caller_params;
template <> struct mp_caller_params<std::tuple<>> {
    static constexpr bool takes_progress = false;
    using type = std::tuple<>;
};
template <class P0, class... P> struct mp_caller_params<std::tuple<P0, P...>> {
    static constexpr bool takes_progress = is_progress_param<P0>;
    using type = std::conditional_t<takes_progress, std::tuple<P...>, std::tuple<P0, P...>>;
};

template <class Tuple> struct decay_tuple;
template <class... P> struct decay_tuple<std::tuple<P...>> {
    using type = std::tuple<std::decay_t<P>...>;
};

/// True when any of the caller's parameters is an at::Progress (it may only
/// come first).
template <class Tuple> struct has_progress_param;
template <class... P>
struct has_progress_param<std::tuple<P...>> : std::bool_constant<(is_progress_param<P> || ...)> {};

}  // namespace atasker::detail
