#pragma once
/// \file detail/codec_io.hpp
/// How each codable type is laid out in a slot. Arithmetic types and enums are
/// copied byte for byte; containers write a 64-bit element count and then
/// their elements (contiguous arithmetic elements in one copy); std::optional
/// writes a 0/1 byte; tuples and pairs write their elements one after another
/// with no header; user types go through cereal (detail/codec_archive.hpp).
/// Both sides are the same binary on the same machine (workers are forked from
/// the parent), so native byte order and sizes are used as they are.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <atasker/detail/bytes.hpp>
#include <atasker/detail/codec_archive.hpp>
#include <atasker/detail/codec_traits.hpp>
#include <atasker/error.hpp>

namespace atasker::detail {

/// Decoding state: the reader and where the current message ends.
struct CodecSource {
    ByteReader& in;
    std::size_t end_remaining;  ///< in.remaining() once the whole message is read

    /// Bytes left in the current message.
    [[nodiscard]] std::size_t available() const noexcept {
        return in.remaining() > end_remaining ? in.remaining() - end_remaining : 0;
    }
};

/// Throws the Error for a value that cannot have been written by encode().
[[noreturn]] inline void throw_corrupt(const char* what, std::uint64_t value, std::size_t available) {
    throw Error(fmt::format("corrupt shared-memory message: {} {} with {} bytes left; encode and decode the same type",
                            what, value, available));
}

/// Reads a container's element count and refuses one the remaining bytes
/// cannot hold: each element takes at least `min_element_size` bytes; when
/// that is 0 (elements that may encode to nothing), at most
/// max_unbacked_elements more elements than bytes are left.
inline std::size_t get_count(CodecSource& src, std::size_t min_element_size) {
    std::uint64_t n = 0;
    src.in.read(&n, sizeof(n));
    const std::size_t left = src.available();
    if (min_element_size != 0 ? n > left / min_element_size : n > left + max_unbacked_elements)
        throw_corrupt("element count", n, left);
    return static_cast<std::size_t>(n);
}

/// The encoder's side of max_unbacked_elements: refuses a container whose
/// `count` elements took only `bytes` bytes, which the decoder would refuse.
inline void check_unbacked(std::size_t count, std::size_t bytes) {
    if (count > bytes + max_unbacked_elements)
        throw Error(fmt::format("cannot send a container of {} elements that encode to {} bytes: at most {} elements "
                                "more than bytes can cross; send the count instead of empty elements",
                                count, bytes, max_unbacked_elements));
}

/// Writes a container's element count.
inline void put_count(ByteWriter& out, std::size_t n) {
    const auto n64 = static_cast<std::uint64_t>(n);
    out.write(&n64, sizeof(n64));
}

/// True for types copied byte for byte (the memcpy fast path).
template <class T>
inline constexpr bool is_bitwise_codable = (std::is_arithmetic_v<T> || std::is_enum_v<T>) && !std::is_same_v<T, bool>;

/// Primary template: user types with serialize(Archive&), through cereal.
template <class T>
struct Codec {
    static void put(ByteWriter& out, const T& value) {
        CodecOutputArchive ar(out);
        ar(value);
    }
    static void get(CodecSource& src, T& value) {
        CodecInputArchive ar(src.in, src.end_remaining);
        try {
            ar(value);
        } catch (const cereal::Exception& e) {
            throw Error(fmt::format("corrupt shared-memory message: {}; encode and decode the same type", e.what()));
        }
    }
};

template <class T>
    requires is_bitwise_codable<T>
struct Codec<T> {
    static void put(ByteWriter& out, const T& value) { out.write(&value, sizeof(T)); }
    static void get(CodecSource& src, T& value) { src.in.read(&value, sizeof(T)); }
};

template <>
struct Codec<bool> {
    static void put(ByteWriter& out, bool value) {
        const auto byte = static_cast<std::uint8_t>(value ? 1 : 0);
        out.write(&byte, 1);
    }
    static void get(CodecSource& src, bool& value) {
        std::uint8_t byte = 0;
        src.in.read(&byte, 1);
        // Any other byte would make `value` an invalid bool (undefined behaviour).
        if (byte > 1) throw_corrupt("bool byte", byte, src.available());
        value = byte == 1;
    }
};

template <class C, class Tr, class A>
struct Codec<std::basic_string<C, Tr, A>> {
    static void put(ByteWriter& out, const std::basic_string<C, Tr, A>& s) {
        put_count(out, s.size());
        out.write(s.data(), s.size() * sizeof(C));
    }
    static void get(CodecSource& src, std::basic_string<C, Tr, A>& s) {
        const std::size_t n = get_count(src, sizeof(C));
        s.resize(n);
        src.in.read(s.data(), n * sizeof(C));
    }
};

template <class T, class A>
struct Codec<std::vector<T, A>> {
    static void put(ByteWriter& out, const std::vector<T, A>& v) {
        put_count(out, v.size());
        if constexpr (is_bitwise_codable<T>) {
            out.write(v.data(), v.size() * sizeof(T));
        } else {
            const std::size_t before = out.size();
            for (const auto& e : v) Codec<T>::put(out, e);  // also right for vector<bool>'s proxies
            if constexpr (min_encoded_size<T>::value == 0) check_unbacked(v.size(), out.size() - before);
        }
    }
    static void get(CodecSource& src, std::vector<T, A>& v) {
        constexpr std::size_t min_size = min_encoded_size<T>::value;
        const std::size_t n = get_count(src, min_size);
        if constexpr (is_bitwise_codable<T>) {
            v.resize(n);
            src.in.read(v.data(), n * sizeof(T));
        } else if constexpr (std::is_same_v<T, bool>) {
            v.resize(n);
            for (std::size_t i = 0; i < n; ++i) {
                bool b = false;
                Codec<bool>::get(src, b);
                v[i] = b;
            }
        } else {
            v.clear();
            // Only reserve what the input has proved it can hold.
            if constexpr (min_size != 0) v.reserve(n);
            for (std::size_t i = 0; i < n; ++i) Codec<T>::get(src, v.emplace_back());
        }
    }
};

template <class T, std::size_t N>
struct Codec<std::array<T, N>> {
    static void put(ByteWriter& out, const std::array<T, N>& a) {
        if constexpr (is_bitwise_codable<T>) {
            out.write(a.data(), N * sizeof(T));
        } else {
            for (const auto& e : a) Codec<T>::put(out, e);
        }
    }
    static void get(CodecSource& src, std::array<T, N>& a) {
        if constexpr (is_bitwise_codable<T>) {
            src.in.read(a.data(), N * sizeof(T));
        } else {
            for (auto& e : a) Codec<T>::get(src, e);
        }
    }
};

template <class T, std::size_t N>
struct Codec<T[N]> {
    static void put(ByteWriter& out, const T (&a)[N]) {
        if constexpr (is_bitwise_codable<T>) {
            out.write(a, N * sizeof(T));
        } else {
            for (const auto& e : a) Codec<std::remove_cv_t<T>>::put(out, e);
        }
    }
    static void get(CodecSource& src, T (&a)[N]) {
        if constexpr (is_bitwise_codable<T>) {
            src.in.read(a, N * sizeof(T));
        } else {
            for (auto& e : a) Codec<T>::get(src, e);
        }
    }
};

template <class K, class V, class C, class A>
struct Codec<std::map<K, V, C, A>> {
    static void put(ByteWriter& out, const std::map<K, V, C, A>& m) {
        put_count(out, m.size());
        const std::size_t before = out.size();
        for (const auto& [k, v] : m) {
            Codec<K>::put(out, k);
            Codec<V>::put(out, v);
        }
        if constexpr (min_encoded_size<K>::value + min_encoded_size<V>::value == 0)
            check_unbacked(m.size(), out.size() - before);
    }
    static void get(CodecSource& src, std::map<K, V, C, A>& m) {
        const std::size_t n = get_count(src, min_encoded_size<K>::value + min_encoded_size<V>::value);
        m.clear();
        for (std::size_t i = 0; i < n; ++i) {
            K k{};
            V v{};
            Codec<K>::get(src, k);
            Codec<V>::get(src, v);
            const std::size_t before = m.size();
            // The encoder wrote the keys in order, so each goes at the end.
            m.emplace_hint(m.end(), std::move(k), std::move(v));
            if (m.size() == before) throw_corrupt("duplicate map key at element", i, src.available());
        }
    }
};

template <class T>
struct Codec<std::optional<T>> {
    static void put(ByteWriter& out, const std::optional<T>& o) {
        Codec<bool>::put(out, o.has_value());
        if (o) Codec<T>::put(out, *o);
    }
    static void get(CodecSource& src, std::optional<T>& o) {
        bool full = false;
        Codec<bool>::get(src, full);
        if (full) {
            Codec<T>::get(src, o.emplace());
        } else {
            o.reset();
        }
    }
};

/// Sum of sizeof over a pack when every element is bitwise codable, else 0.
template <class... T>
inline constexpr std::size_t packed_size = (is_bitwise_codable<T> && ...) ? (std::size_t{0} + ... + sizeof(T)) : 0;

template <class... T>
struct Codec<std::tuple<T...>> {
    static void put(ByteWriter& out, const std::tuple<T...>& t) {
        if constexpr (sizeof...(T) > 1 && packed_size<T...> != 0) {
            // One bounds check and one copy for a tuple of plain numbers.
            std::array<std::byte, packed_size<T...>> buf;
            std::size_t at = 0;
            std::apply([&](const auto&... e) { ((std::memcpy(buf.data() + at, &e, sizeof(e)), at += sizeof(e)), ...); },
                       t);
            out.write(buf.data(), buf.size());
        } else {
            std::apply([&](const auto&... e) { (Codec<T>::put(out, e), ...); }, t);
        }
    }
    static void get(CodecSource& src, std::tuple<T...>& t) {
        if constexpr (sizeof...(T) > 1 && packed_size<T...> != 0) {
            std::array<std::byte, packed_size<T...>> buf;
            src.in.read(buf.data(), buf.size());
            std::size_t at = 0;
            std::apply([&](auto&... e) { ((std::memcpy(&e, buf.data() + at, sizeof(e)), at += sizeof(e)), ...); }, t);
        } else {
            std::apply([&](auto&... e) { (Codec<T>::get(src, e), ...); }, t);
        }
    }
};

template <class A, class B>
struct Codec<std::pair<A, B>> {
    static void put(ByteWriter& out, const std::pair<A, B>& p) {
        Codec<A>::put(out, p.first);
        Codec<B>::put(out, p.second);
    }
    static void get(CodecSource& src, std::pair<A, B>& p) {
        Codec<A>::get(src, p.first);
        Codec<B>::get(src, p.second);
    }
};

/// A const value encodes like a mutable one.
template <class T> struct Codec<const T> : Codec<T> {};

/// Written in a message header while its value is being encoded; it stays
/// there if encoding throws, so a half-written value is never taken for one.
inline constexpr std::uint64_t incomplete_message = ~std::uint64_t{0};

/// Writes the header of a message, returns where it starts.
inline std::size_t begin_message(ByteWriter& out) {
    const std::size_t start = out.size();
    out.write(&incomplete_message, sizeof(incomplete_message));
    return start;
}

/// Fills in the header once the whole value is written.
inline void end_message(ByteWriter& out, std::size_t start) noexcept {
    if (out.measures()) return;  // nothing was kept to fill in
    const auto length = static_cast<std::uint64_t>(out.size() - start - sizeof(std::uint64_t));
    std::memcpy(out.data() + start, &length, sizeof(length));
}

/// Reads a message header; returns the state to decode its value with.
inline CodecSource begin_read(ByteReader& in) {
    std::uint64_t length = 0;
    in.read(&length, sizeof(length));
    if (length == incomplete_message)
        throw Error("corrupt shared-memory message: the value was never completely written (encoding it threw); "
                    "do not read a message whose encoding failed");
    if (length > in.remaining())
        throw Error(fmt::format("corrupt shared-memory message: a {}-byte value with {} bytes left; encode and decode "
                                "the same type",
                                length, in.remaining()));
    return CodecSource{in, in.remaining() - static_cast<std::size_t>(length)};
}

/// Checks the value used exactly the bytes its header announced.
inline void end_read(const CodecSource& src) {
    if (src.in.remaining() != src.end_remaining)
        throw Error("corrupt shared-memory message: the value does not end where its header says; encode and decode "
                    "the same type");
}

}  // namespace atasker::detail
