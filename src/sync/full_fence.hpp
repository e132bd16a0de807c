#pragma once
// full_fence: orders a store before the load that follows it, where two
// threads each store and then look at what the other stored (a push and a
// release of a mutex), so that they cannot both miss each other. On x86 the
// stores that need it (a mutex's atomic exchange, a compare-and-swap) are
// locked instructions, which already order everything, so only the compiler
// is held back.

#include <atomic>

namespace atasker::detail {

inline void full_fence() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    std::atomic_signal_fence(std::memory_order_seq_cst);
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

}  // namespace atasker::detail
