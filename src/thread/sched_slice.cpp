#include "thread/sched_slice.hpp"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace atasker::detail {
namespace {

// The kernel's struct sched_attr (include/uapi/linux/sched/types.h, size
// SCHED_ATTR_SIZE_VER1); glibc before 2.41 declares neither it nor the calls.
struct SchedAttr {
    std::uint32_t size = sizeof(SchedAttr);
    std::uint32_t policy = 0;
    std::uint64_t flags = 0;
    std::int32_t nice = 0;
    std::uint32_t priority = 0;
    std::uint64_t runtime = 0;  // for SCHED_OTHER and SCHED_BATCH: the slice asked for (0: the default)
    std::uint64_t deadline = 0;
    std::uint64_t period = 0;
    std::uint32_t util_min = 0;
    std::uint32_t util_max = 0;
};
static_assert(sizeof(SchedAttr) == 56);

// Set once a call fails: a seccomp filter or a kernel without the calls
// refuses every thread alike, so the others do not try again.
std::atomic<bool> refused{false};

bool set_slice(int policy, int nice, std::uint64_t flags, std::uint64_t slice_ns) noexcept {
    SchedAttr attr;
    attr.policy = static_cast<std::uint32_t>(policy);
    attr.flags = flags;
    attr.nice = nice;  // unchanged: raising or lowering it is not ours to do
    attr.runtime = slice_ns;
    if (::syscall(SYS_sched_setattr, 0, &attr, 0) == 0) return true;
    refused.store(true, std::memory_order_relaxed);
    return false;
}

bool get_attr(SchedAttr& attr) noexcept {
    return ::syscall(SYS_sched_getattr, 0, &attr, sizeof(attr), 0) == 0;
}

}  // namespace

std::uint64_t calling_thread_slice() noexcept {
    SchedAttr attr;
    return get_attr(attr) ? attr.runtime : 0;
}

void SchedSlice::shorten() noexcept {
    if (short_ || refused.load(std::memory_order_relaxed)) return;
    if (!known_) {
        SchedAttr attr;
        if (!get_attr(attr)) {
            refused.store(true, std::memory_order_relaxed);
            return;
        }
        known_ = true;
        policy_ = static_cast<int>(attr.policy);
        nice_ = attr.nice;
        flags_ = attr.flags & reset_on_fork;
        saved_ = attr.runtime;
    }
    if (policy_ != SCHED_OTHER && policy_ != SCHED_BATCH) return;  // real-time, deadline or idle: no slice to ask for
    short_ = saved_ > short_ns && set_slice(policy_, nice_, flags_, short_ns);
}

void SchedSlice::restore() noexcept {
    if (!short_) return;
    short_ = false;
    set_slice(policy_, nice_, flags_, saved_);
}

}  // namespace atasker::detail
