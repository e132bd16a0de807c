#pragma once
/// \file codec.hpp
/// The codec that carries process tasks' arguments and results across the
/// process boundary, through a worker's shared-memory slot (or, for a value
/// larger than the slot, a shared-memory segment made for it).
///
/// Out of the box: every arithmetic type, enums, std::string, std::vector,
/// std::map, std::optional, std::tuple, std::pair, std::array and any nesting
/// of them (say std::vector<std::map<std::string, std::optional<std::pair<int,
/// double>>>>), and `void` results.
///
/// Your own types cross through one customization point, cereal's
/// serialize(Archive&), as a member or as a free function found by
/// argument-dependent lookup. List the members to carry; the codec's cereal
/// archive knows the standard types above, so members of those types just work:
///
/// \code
/// struct Point {
///     double x = 0, y = 0;
///     std::string label;
///     template <class Archive> void serialize(Archive& ar) { ar(x, y, label); }
/// };
///
/// namespace geo {  // a type you cannot change: a free function beside it
/// struct Box { Point lo, hi; };
/// template <class Archive> void serialize(Archive& ar, Box& b) { ar(b.lo, b.hi); }
/// }
/// \endcode
///
/// A private serialize member needs `friend class cereal::access;`. Decoded
/// types must be default-constructible (cereal loads into an existing value).
/// A type the codec cannot carry (a pointer, a reference to such a type,
/// std::function, a class without serialize, ...) fails to compile with
/// "atasker: ... cannot cross the process boundary", naming the type.
///
/// A corrupt message fails to decode with an Error, never a crash or an
/// unbounded allocation. So that a corrupt count can be told apart, a
/// container of elements that encode to nothing (std::tuple<>, an empty
/// type) crosses with at most 65,536 more elements than its bytes; encoding
/// more throws an Error.
///
/// Layout of one message: a 64-bit length, then the values one after another
/// (see detail/codec_io.hpp). encode(out, a, b) writes the same bytes as
/// encode(out, std::tuple{a, b}), so decode<std::tuple<A, B>>(in) reads a
/// pack of arguments back.

#include <cstddef>
#include <tuple>
#include <type_traits>

#include <atasker/detail/bytes.hpp>
#include <atasker/detail/codec_io.hpp>
#include <atasker/detail/codec_traits.hpp>
#include <atasker/error.hpp>

namespace atasker {

/// Whether a value of type T can cross the process boundary (see above).
template <class T>
inline constexpr bool is_codable_v = detail::is_codable_v<T>;

/// Appends one message holding `values` (none: a `void` result) to `out`.
///
/// \throws detail::SlotOverflow (an at::Error) when the message does not fit
///         the slot; its message says how to raise the limit. What was written
///         up to then stays marked incomplete: decoding it throws instead of
///         yielding a value. Nothing is ever truncated.
/// Thread-safety: reentrant; `out` must not be shared between threads.
template <class... T>
void encode(detail::ByteWriter& out, const T&... values) {
    if constexpr ((detail::require_codable<T, detail::value_type_cannot_cross>() && ...)) {
        const std::size_t start = detail::begin_message(out);
        (detail::Codec<std::remove_cv_t<T>>::put(out, values), ...);
        detail::end_message(out, start);
    }
}

namespace detail {

/// encode(), and, when `out` measures past its end (Overflow::measure) and
/// the message went past it, the message written again, whole, into the
/// memory `out`'s ValueSpill makes for it (its size is known: `out` counted
/// it). Values that fit take encode()'s path alone; nothing is thrown for
/// one that does not.
/// \throws SlotOverflow when it does not fit and `out` refuses overflows or
///         has no spill; what the spill throws (SystemError when its memory
///         cannot be made).
template <class... T>
void encode_spilling(ByteWriter& out, const T&... values) {
    const std::size_t start = out.size();
    encode(out, values...);
    if (!out.overflowed()) return;
    if (out.spill() == nullptr) throw SlotOverflow(out.size(), out.capacity());
    ByteWriter whole = out.spill()->writer(out.size() - start);
    encode(whole, values...);
}

}  // namespace detail

/// Reads one message written by encode() with a value of type T (void: an
/// empty message; std::tuple<A, B>: one written by encode(out, a, b)).
///
/// \returns the decoded value.
/// \throws at::Error when the input is truncated, corrupt, was never completely
///         written, or holds a different type; never reads past the reader's end.
/// Thread-safety: reentrant; `in` must not be shared between threads.
template <class T>
T decode(detail::ByteReader& in) {
    if constexpr (std::is_void_v<T>) {
        detail::end_read(detail::begin_read(in));
    } else if constexpr (detail::require_codable<T, detail::value_type_cannot_cross>()) {
        static_assert(!std::is_reference_v<T>, "atasker::decode: decode a value type, not a reference");
        static_assert(!std::is_array_v<T>, "atasker::decode: a raw array cannot be returned; decode a std::array");
        static_assert(std::is_default_constructible_v<T>,
                      "atasker::decode: the type must be default-constructible to be decoded; give it a default "
                      "constructor");
        using U = std::remove_cvref_t<T>;
        detail::CodecSource src = detail::begin_read(in);
        U value{};
        detail::Codec<U>::get(src, value);
        detail::end_read(src);
        return value;
    }
}

}  // namespace atasker
