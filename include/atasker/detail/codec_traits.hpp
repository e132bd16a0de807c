#pragma once
/// \file detail/codec_traits.hpp
/// Which types can cross the process boundary (is_codable), and the
/// diagnostics that name a type that cannot.

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <atasker/detail/codec_archive.hpp>

namespace atasker::detail {

/// True when cereal can write and read T with the codec's archives: the user
/// type has a serialize(Archive&) member or free function (or a save/load
/// pair cereal accepts).
template <class T>
inline constexpr bool has_codec_serialize =
    cereal::traits::is_output_serializable<T, CodecOutputArchive>::value &&
    cereal::traits::is_input_serializable<T, CodecInputArchive>::value;

/// Whether a value of type T can be encoded and decoded by the codec.
/// Arithmetic types, enums, std::basic_string of arithmetic characters,
/// std::vector, std::map, std::optional, std::tuple, std::pair, std::array,
/// raw arrays of codable elements, and class types with serialize(Archive&).
/// Refused: pointers, member pointers, std::nullptr_t, functions,
/// std::function and any class without serialize.
template <class T>
struct is_codable
    : std::bool_constant<std::is_arithmetic_v<T> || std::is_enum_v<T> ||
                         (std::is_class_v<T> && has_codec_serialize<T>)> {};

template <class T> inline constexpr bool is_codable_v = is_codable<T>::value;

template <class T> struct is_codable<const T> : is_codable<T> {};
template <class T> struct is_codable<volatile T> : std::false_type {};
template <class T> struct is_codable<const volatile T> : std::false_type {};
template <class T> struct is_codable<T&> : is_codable<T> {};
template <class T> struct is_codable<T&&> : is_codable<T> {};
template <class T> struct is_codable<T*> : std::false_type {};
template <class T, std::size_t N> struct is_codable<T[N]> : is_codable<T> {};
template <class T, std::size_t N> struct is_codable<const T[N]> : is_codable<T> {};
template <class T> struct is_codable<T[]> : std::false_type {};
template <class C, class Tr, class A>
struct is_codable<std::basic_string<C, Tr, A>> : std::bool_constant<std::is_arithmetic_v<C>> {};
template <class T, class A> struct is_codable<std::vector<T, A>> : is_codable<T> {};
template <class K, class V, class C, class A>
struct is_codable<std::map<K, V, C, A>> : std::bool_constant<is_codable_v<K> && is_codable_v<V>> {};
template <class T> struct is_codable<std::optional<T>> : is_codable<T> {};
template <class... T> struct is_codable<std::tuple<T...>> : std::bool_constant<(is_codable_v<T> && ...)> {};
template <class A, class B>
struct is_codable<std::pair<A, B>> : std::bool_constant<is_codable_v<A> && is_codable_v<B>> {};
template <class T, std::size_t N> struct is_codable<std::array<T, N>> : is_codable<T> {};

/// The innermost part of an uncodable T that is to blame (T itself for a
/// leaf): for std::vector<std::function<void()>> it is std::function<void()>.
template <class T> struct uncodable_part { using type = T; };
template <class T> using uncodable_part_t = typename uncodable_part<T>::type;

template <class... T> struct first_uncodable;
template <> struct first_uncodable<> { using type = void; };
template <class T, class... Rest> struct first_uncodable<T, Rest...> {
    using type = std::conditional_t<is_codable_v<T>, typename first_uncodable<Rest...>::type, uncodable_part_t<T>>;
};

template <class T> struct uncodable_part<const T> { using type = uncodable_part_t<T>; };
template <class T> struct uncodable_part<T&> { using type = uncodable_part_t<T>; };
template <class T> struct uncodable_part<T&&> { using type = uncodable_part_t<T>; };
template <class T, std::size_t N> struct uncodable_part<T[N]> { using type = uncodable_part_t<T>; };
template <class T, std::size_t N> struct uncodable_part<const T[N]> { using type = uncodable_part_t<T>; };
template <class T, class A> struct uncodable_part<std::vector<T, A>> { using type = uncodable_part_t<T>; };
template <class T, std::size_t N> struct uncodable_part<std::array<T, N>> { using type = uncodable_part_t<T>; };
template <class T> struct uncodable_part<std::optional<T>> { using type = uncodable_part_t<T>; };
template <class K, class V, class C, class A> struct uncodable_part<std::map<K, V, C, A>> {
    using type = typename first_uncodable<K, V>::type;
};
template <class... T> struct uncodable_part<std::tuple<T...>> { using type = typename first_uncodable<T...>::type; };
template <class A, class B> struct uncodable_part<std::pair<A, B>> {
    using type = typename first_uncodable<A, B>::type;
};

template <class...> inline constexpr bool dependent_false = false;

// The diagnostics below are class templates so that g++ and clang print the
// offending type in the "in instantiation of" line right above the message:
// Type is the whole type, Part the piece of it that cannot cross.

/// Instantiated (and fails) when a process task's argument type cannot cross.
template <class Type, class Part = uncodable_part_t<Type>>
struct argument_type_cannot_cross {
    static_assert(dependent_false<Type>,
                  "atasker: an argument type cannot cross the process boundary (the type, and the part of it to blame, "
                  "are the template arguments of argument_type_cannot_cross<Type, Part> in the instantiation note "
                  "next to this message); pass values (arithmetic, enum, std::string, std::vector, std::map, "
                  "std::optional, std::tuple, std::pair) or give the type a serialize(Archive&) member "
                  "(see atasker/codec.hpp)");
};

/// Instantiated (and fails) when a process task's result type cannot cross.
template <class Type, class Part = uncodable_part_t<Type>>
struct result_type_cannot_cross {
    static_assert(dependent_false<Type>,
                  "atasker: a result type cannot cross the process boundary (the type, and the part of it to blame, "
                  "are the template arguments of result_type_cannot_cross<Type, Part> in the instantiation note "
                  "next to this message); return values (arithmetic, enum, std::string, std::vector, std::map, "
                  "std::optional, std::tuple, std::pair) or give the type a serialize(Archive&) member "
                  "(see atasker/codec.hpp)");
};

/// Instantiated (and fails) when encode()/decode() is given a type that cannot cross.
template <class Type, class Part = uncodable_part_t<Type>>
struct value_type_cannot_cross {
    static_assert(dependent_false<Type>,
                  "atasker: a value type cannot cross the process boundary (the type, and the part of it to blame, "
                  "are the template arguments of value_type_cannot_cross<Type, Part> in the instantiation note "
                  "next to this message); use values (arithmetic, enum, std::string, std::vector, std::map, "
                  "std::optional, std::tuple, std::pair) or give the type a serialize(Archive&) member "
                  "(see atasker/codec.hpp)");
};

/// True when T is codable; otherwise instantiates Diagnostic<T, Part>, whose
/// static_assert names T, and yields false.
template <class T, template <class, class> class Diagnostic>
consteval bool require_codable() {
    // Instantiating the diagnostic in an unevaluated operand fires its
    // static_assert without making this function non-constant (clang would
    // otherwise add a cascade of "not a constant expression" errors).
    if constexpr (!is_codable_v<T>) {
        using fire [[maybe_unused]] = decltype(sizeof(Diagnostic<T, uncodable_part_t<T>>));
    }
    return is_codable_v<T>;
}

/// The fewest bytes a T can encode to; 0 when unknown (user types) or truly
/// zero. Lets the decoder refuse a container size that the remaining input
/// cannot hold before it allocates.
template <class T> struct min_encoded_size : std::integral_constant<std::size_t, 0> {};
template <class T>
    requires(std::is_arithmetic_v<T> || std::is_enum_v<T>)
struct min_encoded_size<T> : std::integral_constant<std::size_t, sizeof(T)> {};
template <> struct min_encoded_size<bool> : std::integral_constant<std::size_t, 1> {};
template <class C, class Tr, class A>
struct min_encoded_size<std::basic_string<C, Tr, A>> : std::integral_constant<std::size_t, sizeof(std::uint64_t)> {};
template <class T, class A>
struct min_encoded_size<std::vector<T, A>> : std::integral_constant<std::size_t, sizeof(std::uint64_t)> {};
template <class K, class V, class C, class A>
struct min_encoded_size<std::map<K, V, C, A>> : std::integral_constant<std::size_t, sizeof(std::uint64_t)> {};
template <class T> struct min_encoded_size<std::optional<T>> : std::integral_constant<std::size_t, 1> {};
template <class... T>
struct min_encoded_size<std::tuple<T...>>
    : std::integral_constant<std::size_t, (std::size_t{0} + ... + min_encoded_size<T>::value)> {};
template <class A, class B>
struct min_encoded_size<std::pair<A, B>>
    : std::integral_constant<std::size_t, min_encoded_size<A>::value + min_encoded_size<B>::value> {};
template <class T, std::size_t N>
struct min_encoded_size<std::array<T, N>> : std::integral_constant<std::size_t, N * min_encoded_size<T>::value> {};

}  // namespace atasker::detail
