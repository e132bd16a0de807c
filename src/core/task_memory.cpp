// Where tasks' memory comes from. A task is allocated by the thread that puts
// it and freed by the pool thread that settles it; glibc's malloc serves that
// pattern from its arenas, under a lock, with an 8-byte header on every
// chunk. oneTBB's scalable allocator keeps per-thread size-class slabs and
// takes frees from other threads without a lock or a header (atasker-bench,
// section 1 and 6b, measures both).
//
// Under AddressSanitizer or ThreadSanitizer tasks use the global allocator,
// so the sanitizers still see every task's lifetime.

#include <atasker/detail/task_base.hpp>

#include <new>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ATASKER_TASKS_ON_GLOBAL_HEAP 1
#else
#define ATASKER_TASKS_ON_GLOBAL_HEAP 0
#include <tbb/scalable_allocator.h>
#endif

namespace atasker::detail {

void* TaskBase::operator new(std::size_t size) {
#if ATASKER_TASKS_ON_GLOBAL_HEAP
    return ::operator new(size);
#else
    void* p = scalable_malloc(size);
    if (p == nullptr) throw std::bad_alloc();
    return p;
#endif
}

void TaskBase::operator delete(void* p) noexcept {
#if ATASKER_TASKS_ON_GLOBAL_HEAP
    ::operator delete(p);
#else
    scalable_free(p);
#endif
}

}  // namespace atasker::detail
