#include "process/value_segment.hpp"

#include <sys/mman.h>

#include <atomic>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <fmt/format.h>

#include <atasker/error.hpp>

#include "sync/system_error.hpp"

namespace atasker::detail {

namespace bip = boost::interprocess;

namespace {

std::atomic<std::uint64_t> args_segments{0};

template <class... A>
SegmentName name_of(fmt::format_string<A...> format, A&&... a) noexcept {
    SegmentName n{};
    // Cannot be cut short: the longest name is well under its 96 characters.
    const auto end = fmt::format_to_n(n.text, sizeof n.text - 1, format, std::forward<A>(a)...);
    *end.out = '\0';
    return n;
}

}  // namespace

SegmentName args_segment_name(pid_t owner, std::uint64_t number) noexcept {
    return name_of("atasker-{}-a{}", owner, number);
}

SegmentName result_segment_name(pid_t owner, std::size_t slot, std::uint64_t generation,
                                std::uint64_t number) noexcept {
    return name_of("atasker-{}-r{}.{}.{}", owner, slot, generation, number);
}

std::uint64_t next_args_segment() noexcept { return args_segments.fetch_add(1, std::memory_order_relaxed) + 1; }

void remove_segment(const SegmentName& name) noexcept { bip::shared_memory_object::remove(name.text); }

SegmentOut::SegmentOut(const SegmentName& name, std::size_t size) {
    try {
        bip::shared_memory_object shm(bip::create_only, name.text, bip::read_write, bip::permissions(0600));
        try {
            // posix_fallocate: the pages are reserved now, or ENOSPC says why not.
            shm.truncate(static_cast<bip::offset_t>(size == 0 ? 1 : size));
            region_ = bip::mapped_region(shm, bip::read_write, 0, size == 0 ? 1 : size, nullptr, MAP_POPULATE);
        } catch (...) {
            remove_segment(name);
            throw;
        }
    } catch (const bip::interprocess_exception& e) {
        throw_system_error(
            e.get_native_error(),
            fmt::format("cannot make a {}-byte shared-memory segment /dev/shm/{} for a value larger than the worker "
                        "slot; make room in /dev/shm or enlarge it (df -h /dev/shm; mount -o remount,size=... "
                        "/dev/shm; docker run --shm-size=...), check ulimit -f, or send smaller values",
                        size, name.text));
    }
}

SegmentIn::SegmentIn(const SegmentName& name, std::size_t size, bool remove) : size_(size) {
    try {
        bip::shared_memory_object shm(bip::open_only, name.text, bip::read_only);
        if (remove) remove_segment(name);
        region_ = bip::mapped_region(shm, bip::read_only, 0, 0, nullptr, MAP_POPULATE);
    } catch (const bip::interprocess_exception& e) {
        if (remove) remove_segment(name);
        throw_system_error(e.get_native_error(),
                           fmt::format("cannot map the shared-memory segment /dev/shm/{} of a value larger than the "
                                       "worker slot",
                                       name.text));
    }
    if (region_.get_size() < size)
        throw Error(fmt::format("corrupt shared-memory message: segment /dev/shm/{} holds {} bytes, not the {} its "
                                "value needs; encode and decode the same type",
                                name.text, region_.get_size(), size));
}

ByteWriter ResultSpill::writer(std::size_t size) {
    discard();  // an earlier one of the same value that was not completed
    const std::uint64_t n = made_.fetch_add(1, std::memory_order_acq_rel) + 1;
    out_ = SegmentOut(result_segment_name(owner_, slot_, generation_, n), size);
    ref_ = SegmentRef{size, n};
    return out_.writer();
}

void ResultSpill::finish() noexcept {
    out_.unmap();
    ref_ = SegmentRef{0, 0};
}

void ResultSpill::discard() noexcept {
    out_.unmap();
    if (ref_.number != 0) remove_segment(result_segment_name(owner_, slot_, generation_, ref_.number));
    ref_ = SegmentRef{0, 0};
}

}  // namespace atasker::detail
