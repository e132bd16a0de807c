#pragma once
// Values larger than a worker's slot cross through a POSIX shared-memory
// segment made for that one value (Boost.Interprocess shared_memory_object
// and mapped_region), named in /dev/shm after the process that called
// at::init(): "atasker-<pid>-a<n>" for a call's arguments (the parent's
// counter), "atasker-<pid>-r<slot>.<generation>.<n>" for a result (the
// worker's counter, SlotControl::segments_made). The slot carries only the
// value's SegmentRef.
//
// A named segment, not a memfd or an anonymous mapping: a worker is forked
// by the zygote, not by the caller, so nothing the caller opens after the
// fork reaches it; a name reaches every process of the tree both ways.
//
// Who removes a name: the parent, always. Its arguments' segment when the
// call ends, whatever the end (the worker also removes the name once it has
// the segment open, so its memory goes with the last mapping); a result's
// as soon as it opens it to read; and after a worker died, every result
// name that worker counted and the parent had not removed yet.

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

#include <boost/interprocess/mapped_region.hpp>

#include <atasker/detail/bytes.hpp>

namespace atasker::detail {

/// What a slot holds in place of a value that crossed through a segment.
struct SegmentRef {
    std::uint64_t size;    ///< bytes of the encoded value
    std::uint64_t number;  ///< the n of its name
};

/// A segment's name, in place (a value's path allocates nothing for it).
struct SegmentName {
    char text[96];
};
[[nodiscard]] SegmentName args_segment_name(pid_t owner, std::uint64_t number) noexcept;
[[nodiscard]] SegmentName result_segment_name(pid_t owner, std::size_t slot, std::uint64_t generation,
                                              std::uint64_t number) noexcept;
/// The next number of an arguments segment of this process.
[[nodiscard]] std::uint64_t next_args_segment() noexcept;

/// Removes the name (shm_unlink); nothing if it is gone already.
void remove_segment(const SegmentName& name) noexcept;

/// A segment made and mapped to write one value into.
class SegmentOut {
public:
    SegmentOut() = default;
    /// Creates `name` (it must not exist), reserves its `size` bytes (so a
    /// full /dev/shm fails here, not with SIGBUS on a later write) and maps
    /// them. \throws SystemError saying how to make room in /dev/shm; then
    /// the name is removed again.
    SegmentOut(const SegmentName& name, std::size_t size);
    /// A writer over the segment's bytes.
    [[nodiscard]] ByteWriter writer() noexcept {
        return {static_cast<std::byte*>(region_.get_address()), region_.get_size()};
    }
    /// Unmaps it (the name and the bytes stay for the reader).
    void unmap() noexcept { region_ = boost::interprocess::mapped_region(); }

private:
    boost::interprocess::mapped_region region_;
};

/// A segment mapped to read one value from.
class SegmentIn {
public:
    /// Opens `name`, removes the name at once when `remove` (the mapping
    /// keeps the bytes), and maps `size` bytes.
    /// \throws SystemError when it cannot be opened or mapped; Error when it
    ///         is smaller than `size`.
    SegmentIn(const SegmentName& name, std::size_t size, bool remove);
    /// A reader over the value's bytes.
    [[nodiscard]] ByteReader reader() const noexcept {
        return {static_cast<const std::byte*>(region_.get_address()), size_};
    }

private:
    boost::interprocess::mapped_region region_;
    std::size_t size_ = 0;
};

/// The parent's hold on the name of a call's arguments segment: removes it
/// when released or destroyed. Movable; holds nothing by default.
class SegmentOwner {
public:
    SegmentOwner() = default;
    SegmentOwner(pid_t owner, std::uint64_t number) noexcept : owner_(owner), number_(number) {}
    SegmentOwner(SegmentOwner&& o) noexcept : owner_(o.owner_), number_(std::exchange(o.number_, 0)) {}
    SegmentOwner& operator=(SegmentOwner&& o) noexcept {
        if (this != &o) {
            release();
            owner_ = o.owner_;
            number_ = std::exchange(o.number_, 0);
        }
        return *this;
    }
    SegmentOwner(const SegmentOwner&) = delete;
    SegmentOwner& operator=(const SegmentOwner&) = delete;
    ~SegmentOwner() { release(); }

    /// Removes the name now (nothing when none is held).
    void release() noexcept {
        if (number_ != 0) remove_segment(args_segment_name(owner_, std::exchange(number_, 0)));
    }

private:
    pid_t owner_ = 0;
    std::uint64_t number_ = 0;  // 0: none
};

/// The worker's spill for a result too large for the slot: makes the
/// segment for it, named after the slot's incarnation and counted in
/// SlotControl::segments_made before it exists.
class ResultSpill final : public ValueSpill {
public:
    ResultSpill(pid_t owner, std::size_t slot, std::uint64_t generation, std::atomic<std::uint64_t>& made) noexcept
        : owner_(owner), slot_(slot), generation_(generation), made_(made) {}

    ByteWriter writer(std::size_t size) override;
    /// Whether the last value went to a segment; its SegmentRef.
    [[nodiscard]] bool used() const noexcept { return ref_.number != 0; }
    [[nodiscard]] const SegmentRef& ref() const noexcept { return ref_; }
    /// The value is written: unmaps it, and forgets it for the next one.
    void finish() noexcept;
    /// The value was not completed: removes its segment too.
    void discard() noexcept;

private:
    pid_t owner_;
    std::size_t slot_;
    std::uint64_t generation_;
    std::atomic<std::uint64_t>& made_;
    SegmentOut out_;
    SegmentRef ref_{0, 0};
};

}  // namespace atasker::detail
