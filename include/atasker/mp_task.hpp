#pragma once
/// \file mp_task.hpp
/// MpTask: a function that runs in a worker process, registered under a
/// stable name before the process pool starts.
///
/// \code
/// inline const at::MpTask square{"square", [](int x) { return x * x; }};
/// inline const at::MpTask crunch{"crunch", [](at::Progress p, std::vector<double> v) {
///     double s = 0;
///     for (std::size_t i = 0; i < v.size(); ++i) { s += v[i]; p.report(double(i + 1) / v.size()); }
///     return s;
/// }};
/// \endcode
///
/// Define MpTasks at namespace scope (or as static members): they register
/// during static initialisation, so every worker process, forked from the
/// parent after that, knows every task under the same index. An MpTask made
/// after the process pool started does not exist in its workers.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include <atasker/codec.hpp>
#include <atasker/detail/bytes.hpp>
#include <atasker/detail/codec_traits.hpp>
#include <atasker/detail/mp_registry.hpp>
#include <atasker/detail/mp_signature.hpp>
#include <atasker/progress.hpp>

namespace atasker {

namespace detail {

/// Instantiated (and fails) when encode_args() gets an argument that does not
/// convert to the task function's parameter; names the position and types.
template <std::size_t Position, class Argument, class Parameter>
struct mp_task_argument_does_not_convert {
    static_assert(dependent_false<Argument>,
                  "atasker::MpTask: an argument does not convert to the task function's parameter type (position, "
                  "argument and parameter are named in 'mp_task_argument_does_not_convert<Position, Argument, "
                  "Parameter>' in the instantiation note next to this message); pass a value of the parameter's type");
};

/// True when R is void or codable; otherwise fails naming R.
template <class R>
consteval bool require_result_codable() {
    if constexpr (std::is_void_v<R>) {
        return true;
    } else {
        return require_codable<R, result_type_cannot_cross>();
    }
}

template <std::size_t I, class Parameter, class Argument>
consteval bool check_mp_argument() {
    if constexpr (!std::is_convertible_v<Argument, Parameter>) {
        using fire [[maybe_unused]] = decltype(sizeof(mp_task_argument_does_not_convert<I, Argument, Parameter>));
    }
    return std::is_convertible_v<Argument, Parameter>;
}

/// `a` as a Parameter: itself when it already is one, else converted.
/// The function type `R(A...)` of a result and a tuple of arguments.
template <class R, class Tuple>
struct function_type;
template <class R, class... A>
struct function_type<R, std::tuple<A...>> {
    using type = R(A...);
};

template <class Parameter, class Argument>
decltype(auto) as_parameter(Argument&& a) {
    if constexpr (std::is_same_v<std::remove_cvref_t<Argument>, Parameter>) {
        return static_cast<const Parameter&>(a);
    } else {
        return Parameter(std::forward<Argument>(a));
    }
}

}  // namespace detail

/// A process task: the function `F` registered under `name`, run in a worker
/// process with arguments and result carried by the codec (atasker/codec.hpp).
///
/// `F` is a captureless lambda, a function pointer or an empty function object
/// with one non-template call operator. Its parameters and result must be
/// codable (compile error naming the type otherwise). Its first parameter may
/// be an `at::Progress` (by value or const&): the worker passes a reporter
/// there and the caller supplies only the remaining arguments.
///
/// Not copyable or movable: the registry points at this object's function.
/// All members are thread-safe (the object is immutable after construction).
template <class F>
class MpTask {
    using signature = detail::mp_callable_signature<F>;
    static_assert(signature::known,
                  "atasker::MpTask: the function needs fixed parameter types: use a lambda without auto parameters, "
                  "a function pointer, or a function object with exactly one non-template operator()");
    static_assert(std::is_empty_v<F> || std::is_pointer_v<F>,
                  "atasker::MpTask: the function must not carry state (a lambda capture, a data member); use a "
                  "captureless lambda, a function pointer or an empty function object and pass state as arguments");

    using declared_params = typename signature::params;
    using caller_params = typename detail::mp_caller_params<declared_params>::type;

public:
    /// The function's result type, decayed (void when it returns nothing).
    using result_type = std::remove_cvref_t<typename signature::result>;
    /// The decayed types of the arguments the caller passes (a leading
    /// at::Progress parameter excluded).
    using args_tuple = typename detail::decay_tuple<caller_params>::type;
    /// Whether the function's first parameter is an at::Progress.
    static constexpr bool takes_progress = detail::mp_caller_params<declared_params>::takes_progress;

private:
    static_assert(!detail::has_progress_param<caller_params>::value,
                  "atasker::MpTask: at::Progress may only be the function's first parameter");

    template <class Tuple> struct args_check;
    template <class... A> struct args_check<std::tuple<A...>> {
        static constexpr bool ok = (detail::require_codable<A, detail::argument_type_cannot_cross>() && ...);
    };
    static constexpr bool args_ok = args_check<args_tuple>::ok;
    static constexpr bool result_ok = detail::require_result_codable<result_type>();

public:
    /// Registers `fn` under `name`.
    /// Duplicate names are reported by the process pool when it starts
    /// (detail::check_mp_registry()), not here: static initialisation cannot
    /// report errors.
    MpTask(std::string_view name, F fn)
        : name_(name),
          fn_(std::move(fn)),
          index_(detail::register_mp_task(name_, &invoke, &fn_,
                                          typeid(typename detail::function_type<result_type, args_tuple>::type).name())) {}

    MpTask(const MpTask&) = delete;
    MpTask& operator=(const MpTask&) = delete;
    ~MpTask() = default;

    /// The name the task was registered under.
    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    /// The task's index in the registry (the same in every worker process).
    [[nodiscard]] std::uint32_t index() const noexcept { return index_; }
    /// The stored function.
    [[nodiscard]] const F& function() const noexcept { return fn_; }

    /// Encodes a call's arguments into `out` as one message, converting each to
    /// its parameter type. Compile error when their number or types do not
    /// match the function (a leading at::Progress is not passed).
    /// \throws detail::SlotOverflow when they do not fit the slot.
    template <class... Args>
    static void encode_args(detail::ByteWriter& out, Args&&... args) {
        static_assert(sizeof...(Args) == std::tuple_size_v<args_tuple>,
                      "atasker::MpTask: the call passes a different number of arguments than the task function takes "
                      "(a leading at::Progress parameter is supplied by the worker, not by the caller)");
        if constexpr (sizeof...(Args) == std::tuple_size_v<args_tuple> && args_ok) {
            encode_converted(out, std::index_sequence_for<Args...>{}, std::forward<Args>(args)...);
        }
    }

    /// Decodes a result written by the worker.
    /// \returns the result (nothing for void).
    /// \throws at::Error when the bytes are truncated or corrupt.
    static result_type decode_result(detail::ByteReader& in) {
        if constexpr (result_ok) return decode<result_type>(in);
    }

private:
    template <std::size_t... I, class... Args>
    static void encode_converted(detail::ByteWriter& out, std::index_sequence<I...>, Args&&... args) {
        if constexpr ((detail::check_mp_argument<I, std::tuple_element_t<I, args_tuple>, Args&&>() && ...)) {
            encode(out, detail::as_parameter<std::tuple_element_t<I, args_tuple>>(std::forward<Args>(args))...);
        }
    }

    // The registry's MpInvoker for this task.
    static void invoke(const void* fn, detail::ByteReader& args, detail::ByteWriter& result,
                       const Progress& progress) {
        if constexpr (args_ok && result_ok) {
            // A copy, so a function object whose operator() is not const works too
            // (it is empty or a function pointer: copying costs nothing).
            F f = *static_cast<const F*>(fn);
            auto decoded = decode<args_tuple>(args);
            if constexpr (std::is_void_v<result_type>) {
                call(f, progress, decoded, std::make_index_sequence<std::tuple_size_v<args_tuple>>{});
                encode(result);
            } else {
                // Kept until encoded: one too large for the slot is encoded
                // again into the segment `result`'s spill makes.
                decltype(auto) value =
                    call(f, progress, decoded, std::make_index_sequence<std::tuple_size_v<args_tuple>>{});
                detail::encode_spilling(result, value);
            }
        }
    }

    template <std::size_t... I>
    static decltype(auto) call(F& f, const Progress& progress, args_tuple& a, std::index_sequence<I...>) {
        // Each argument is handed over the way its parameter is declared: moved
        // into a by-value or && parameter, as an lvalue into a & parameter.
        constexpr std::size_t first = takes_progress ? 1 : 0;
        if constexpr (takes_progress) {
            Progress p = progress;
            return f(std::forward<std::tuple_element_t<0, declared_params>>(p),
                     std::forward<std::tuple_element_t<I + first, declared_params>>(std::get<I>(a))...);
        } else {
            return f(std::forward<std::tuple_element_t<I + first, declared_params>>(std::get<I>(a))...);
        }
    }

    std::string name_;
    F fn_;
    std::uint32_t index_;
};

/// Deduces the function's type: `at::MpTask square{"square", [](int x) { return x * x; }};`.
template <class F>
MpTask(std::string_view, F) -> MpTask<F>;

namespace detail {
/// Whether T (without cv or reference) is an MpTask.
template <class T>
struct is_mp_task : std::false_type {};
template <class F>
struct is_mp_task<MpTask<F>> : std::true_type {};
}  // namespace detail

}  // namespace atasker
