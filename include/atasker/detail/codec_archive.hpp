#pragma once
/// \file detail/codec_archive.hpp
/// cereal archives that write straight into a shared-memory slot through
/// ByteWriter and read back through ByteReader. They carry user types (those
/// with a serialize(Archive&) function) across the process boundary; the
/// codec's own types take a faster path (detail/codec_io.hpp).
///
/// A custom archive beats cereal's BinaryOutputArchive over a streambuf on the
/// slot: no std::ostream to construct per value and no virtual call per field.
/// Measured on a struct {double, double, int, std::string}: ~42 ns to encode
/// here, against ~120 ns with a reused std::ostream and ~250 ns with one per
/// message.

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <cereal/cereal.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/vector.hpp>
#include <fmt/format.h>

#include <atasker/detail/bytes.hpp>
#include <atasker/error.hpp>

namespace atasker::detail {

/// Elements that encode to no bytes at all (std::tuple<>, std::array<T, 0>,
/// a user type whose serialize writes nothing) cannot be counted against
/// the input: a container may hold at most this many more elements than it
/// has bytes left after its count. Without a bound, a corrupt count of 2^40
/// such elements would allocate until memory ran out.
inline constexpr std::size_t max_unbacked_elements = 65536;

/// cereal output archive over a ByteWriter. Throws SlotOverflow when the slot
/// is full. Not thread-safe; one per encoded value.
class CodecOutputArchive : public cereal::OutputArchive<CodecOutputArchive, cereal::AllowEmptyClassElision> {
public:
    explicit CodecOutputArchive(ByteWriter& out) : OutputArchive(this), out_(out) {}
    CodecOutputArchive(const CodecOutputArchive&) = delete;
    CodecOutputArchive& operator=(const CodecOutputArchive&) = delete;
    ~CodecOutputArchive() noexcept = default;

    /// Appends `size` raw bytes. \throws SlotOverflow when they do not fit.
    void saveBinary(const void* data, std::size_t size) { out_.write(data, size); }

private:
    ByteWriter& out_;
};

/// cereal input archive over a ByteReader, limited to the bytes of one
/// message (`end_remaining` is what the reader has left once the message has
/// been read). Throws Error on truncated or corrupt input. Not thread-safe.
class CodecInputArchive : public cereal::InputArchive<CodecInputArchive, cereal::AllowEmptyClassElision> {
public:
    CodecInputArchive(ByteReader& in, std::size_t end_remaining)
        : InputArchive(this), in_(in), end_remaining_(end_remaining) {}
    CodecInputArchive(const CodecInputArchive&) = delete;
    CodecInputArchive& operator=(const CodecInputArchive&) = delete;
    ~CodecInputArchive() noexcept = default;

    /// Reads `size` raw bytes. \throws Error when the input ends first.
    void loadBinary(void* data, std::size_t size) { in_.read(data, size); }

    /// Bytes left in the current message.
    [[nodiscard]] std::size_t available() const noexcept {
        return in_.remaining() > end_remaining_ ? in_.remaining() - end_remaining_ : 0;
    }

    /// Refuses a container size that cannot be real: past the elements that
    /// encode to nothing (max_unbacked_elements), every element takes at
    /// least one byte, so a size above that is corrupt input (and would
    /// otherwise make cereal allocate it before reading).
    void check_size(std::uint64_t size) const {
        if (size > available() + max_unbacked_elements)
            throw Error(fmt::format("corrupt shared-memory message: a container of {} elements in a {}-byte remainder; "
                                    "encode and decode the same type",
                                    size, available()));
    }

private:
    ByteReader& in_;
    std::size_t end_remaining_;
};

// cereal finds these through argument-dependent lookup on the archive type.

template <class T>
    requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)
void CEREAL_SAVE_FUNCTION_NAME(CodecOutputArchive& ar, const T& t) {
    ar.saveBinary(&t, sizeof(t));
}

template <class T>
    requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)
void CEREAL_LOAD_FUNCTION_NAME(CodecInputArchive& ar, T& t) {
    ar.loadBinary(&t, sizeof(t));
}

inline void CEREAL_SAVE_FUNCTION_NAME(CodecOutputArchive& ar, const bool& b) {
    const auto byte = static_cast<std::uint8_t>(b ? 1 : 0);
    ar.saveBinary(&byte, 1);
}

inline void CEREAL_LOAD_FUNCTION_NAME(CodecInputArchive& ar, bool& b) {
    std::uint8_t byte = 0;
    ar.loadBinary(&byte, 1);
    // Any other byte would make `b` an invalid bool (undefined behaviour).
    if (byte > 1)
        throw Error(fmt::format("corrupt shared-memory message: bool byte {}; encode and decode the same type", byte));
    b = byte == 1;
}

template <class Archive, class T>
    requires(std::is_same_v<Archive, CodecOutputArchive> || std::is_same_v<Archive, CodecInputArchive>)
void CEREAL_SERIALIZE_FUNCTION_NAME(Archive& ar, cereal::NameValuePair<T>& t) {
    ar(t.value);
}

template <class Archive, class T>
    requires(std::is_same_v<Archive, CodecOutputArchive> || std::is_same_v<Archive, CodecInputArchive>)
void CEREAL_SERIALIZE_FUNCTION_NAME(Archive& ar, cereal::SizeTag<T>& t) {
    ar(t.size);
    if constexpr (std::is_same_v<Archive, CodecInputArchive>) ar.check_size(static_cast<std::uint64_t>(t.size));
}

template <class T>
void CEREAL_SAVE_FUNCTION_NAME(CodecOutputArchive& ar, const cereal::BinaryData<T>& bd) {
    ar.saveBinary(bd.data, static_cast<std::size_t>(bd.size));
}

template <class T>
void CEREAL_LOAD_FUNCTION_NAME(CodecInputArchive& ar, cereal::BinaryData<T>& bd) {
    ar.loadBinary(bd.data, static_cast<std::size_t>(bd.size));
}

}  // namespace atasker::detail

CEREAL_SETUP_ARCHIVE_TRAITS(atasker::detail::CodecInputArchive, atasker::detail::CodecOutputArchive)
