#pragma once
/// \file detail/bytes.hpp
/// Bounded byte writer and reader over memory the caller owns (a shared-memory
/// slot). Writing past the end throws SlotOverflow instead of truncating, or,
/// for a writer told to measure past its end, keeps nothing more and counts
/// on: size() then tells how large the value is, without an exception (the
/// process lane's calls run on fiber stacks, where sanitizers cannot follow
/// an unwind). A writer may name a ValueSpill that makes room elsewhere for
/// a value too large for it.

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

class ByteWriter;

/// Makes room elsewhere for a value that does not fit a ByteWriter's memory:
/// in a worker process, a shared-memory segment made for that one result
/// (detail::encode_spilling measures the value, then writes it there).
class ValueSpill {
public:
    /// A writer over `size` bytes made for one value; they stay valid until
    /// the spill's owner is done with the value.
    /// \throws SystemError when the memory cannot be made.
    virtual ByteWriter writer(std::size_t size) = 0;

protected:
    ValueSpill() = default;
    ValueSpill(const ValueSpill&) = default;
    ValueSpill& operator=(const ValueSpill&) = default;
    ~ValueSpill() = default;
};

/// What ByteWriter::write does with bytes past the end.
enum class Overflow {
    refuse,   ///< throws SlotOverflow
    measure,  ///< keeps nothing more and counts on; overflowed() says so
};

/// Appends bytes into [data, data + capacity).
class ByteWriter {
public:
    ByteWriter(std::byte* data, std::size_t capacity, Overflow overflow = Overflow::refuse,
               ValueSpill* spill = nullptr) noexcept
        : data_(data), capacity_(capacity), spill_(spill), measure_past_end_(overflow == Overflow::measure) {}

    /// A writer that keeps nothing: size() counts what was written, which is
    /// what a value needs (no copy, no bound).
    [[nodiscard]] static ByteWriter measuring() noexcept {
        ByteWriter w(nullptr, 0, Overflow::measure);
        w.measuring_ = true;
        return w;
    }

    void write(const void* src, std::size_t n) {
        if (n > capacity_ - size_) [[unlikely]] {
            overflow(n);
            return;
        }
        if (n != 0) std::memcpy(data_ + size_, src, n);
        size_ += n;
    }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    [[nodiscard]] std::byte* data() const noexcept { return data_; }
    /// True for a writer that keeps nothing: made by measuring(), or one
    /// that measures past its end and went past it.
    [[nodiscard]] bool measures() const noexcept { return measuring_; }
    /// True once a writer that measures past its end went past it: what it
    /// holds is not a value, and size() is the bytes the value needs.
    [[nodiscard]] bool overflowed() const noexcept { return measuring_ && data_ != nullptr; }
    /// Where a value that does not fit may go instead (null: nowhere).
    [[nodiscard]] ValueSpill* spill() const noexcept { return spill_; }

private:
    [[gnu::noinline]] void overflow(std::size_t n) {
        if (!measuring_ && !measure_past_end_) throw SlotOverflow(size_ + n, capacity_);
        measuring_ = true;
        // Kept equal to size_, so every later write comes here too.
        size_ += n;
        capacity_ = size_;
    }

    std::byte* data_;
    std::size_t capacity_;
    std::size_t size_ = 0;
    ValueSpill* spill_;
    bool measure_past_end_;
    bool measuring_ = false;
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
