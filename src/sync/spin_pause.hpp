#pragma once
// spin_pause: the pause a spin-wait makes between two looks at what it waits
// for (x86 `pause`, Arm `yield`), so the spinning core gives way to its
// hyperthread sibling and the loop does not flood the memory bus. Not named
// cpu_relax: Boost.Fiber's detail/cpu_relax.hpp defines that as a macro,
// which breaks any translation unit that includes it first.

namespace atasker::detail {

inline void spin_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

}  // namespace atasker::detail
