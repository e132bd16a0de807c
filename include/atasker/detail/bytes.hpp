#pragma once
/// \file detail/bytes.hpp
/// Bounded byte writer and reader over memory the caller owns (a shared-memory
/// slot). Writing past the end throws SlotOverflow instead of truncating.

#include <cstddef>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include <atasker/error.hpp>
#include <atasker/export.hpp>

namespace atasker::detail {

/// Thrown when a value does not fit the memory it is written into.
class ATASKER_API SlotOverflow : public Error {
public:
    SlotOverflow(std::size_t needed, std::size_t capacity)
        : Error(fmt::format("a value of at least {} bytes does not fit the {}-byte shared-memory slot; "
                            "raise InitOptions::slot_size in at::init()",
                            needed, capacity)),
          needed_(needed) {}
    ~SlotOverflow() override;
    [[nodiscard]] std::size_t needed() const noexcept { return needed_; }

private:
    std::size_t needed_;
};

/// Appends bytes into [data, data + capacity).
class ByteWriter {
public:
    ByteWriter(std::byte* data, std::size_t capacity) noexcept : data_(data), capacity_(capacity) {}

    void write(const void* src, std::size_t n) {
        if (n > capacity_ - size_) throw SlotOverflow(size_ + n, capacity_);
        if (n != 0) std::memcpy(data_ + size_, src, n);
        size_ += n;
    }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    [[nodiscard]] std::byte* data() const noexcept { return data_; }

private:
    std::byte* data_;
    std::size_t capacity_;
    std::size_t size_ = 0;
};

/// Reads bytes back from [data, data + size); reading past the end throws.
class ByteReader {
public:
    ByteReader(const std::byte* data, std::size_t size) noexcept : data_(data), size_(size) {}

    void read(void* dst, std::size_t n) {
        if (n > size_ - pos_)
            throw Error(fmt::format("corrupt shared-memory message: wanted {} bytes at offset {} of {}", n, pos_,
                                    size_));
        if (n != 0) std::memcpy(dst, data_ + pos_, n);
        pos_ += n;
    }
    [[nodiscard]] std::size_t remaining() const noexcept { return size_ - pos_; }

private:
    const std::byte* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

}  // namespace atasker::detail
