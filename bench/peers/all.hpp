#pragma once
/// \file all.hpp
/// Every thread-pool peer that this build has, ours first, and a note for
/// each one that is missing.

#include <type_traits>

#include "../report.hpp"
#include "asio.hpp"
#include "atasker.hpp"
#include "cv_queue.hpp"
#include "rvaser.hpp"
#include "tbb.hpp"

namespace atasker_bench {

/// Calls fn(std::type_identity<Pool>{}, ours) for every pool built in.
template <class Fn>
void for_each_pool(Fn&& fn) {
#if ATASKER_BENCH_HAVE_CORE
    fn(std::type_identity<AtaskerPool>{}, true);
#endif
    fn(std::type_identity<AsioPool>{}, false);
#if ATASKER_BENCH_HAVE_THREAD_POOL
    fn(std::type_identity<RvaserPool>{}, false);
#endif
#if ATASKER_BENCH_HAVE_TBB
    fn(std::type_identity<TbbTaskGroupPool>{}, false);
    fn(std::type_identity<TbbArenaPool>{}, false);
#endif
    fn(std::type_identity<CvQueuePool>{}, false);
}

/// Notes (and a pending row for our side) for what this build left out.
inline void note_missing_pools(Section& s, const char* group = "") {
#if !ATASKER_BENCH_HAVE_CORE
    s.pending(group, "atasker-cpp background_task", "atasker-cpp: supervisor core not built yet");
#endif
#if !ATASKER_BENCH_HAVE_TBB
    s.note("oneTBB peers not built (libtbb-dev missing or -Dbench_tbb=disabled)");
#endif
#if !ATASKER_BENCH_HAVE_THREAD_POOL
    s.note("rvaser thread_pool peer not built (libthread-pool-dev missing or -Dbench_thread_pool=disabled)");
#endif
    (void)s;
    (void)group;
}

}  // namespace atasker_bench
