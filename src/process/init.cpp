#include <atasker/init.hpp>

#include <dirent.h>

#include <atomic>
#include <cstddef>
#include <mutex>

#include <atasker/error.hpp>
#include <atasker/log.hpp>

#include "process/mp_registry.hpp"
#include "process/shm_slots.hpp"
#include "process/zygote.hpp"

namespace atasker {

namespace detail {
namespace {

struct Runtime {
    SharedSlots slots;
    Zygote zygote;
    explicit Runtime(const InitOptions& o) : slots(o.max_workers, o.slot_size), zygote(slots) {}
};

std::mutex runtime_mutex;
Runtime* runtime = nullptr;  // deliberately never destroyed at exit; see process_runtime.hpp
std::atomic<bool> runtime_ready{false};
std::atomic<bool> runtime_claimed{false};
std::size_t inits_in_snapshot = 0;  // MpInits registered when the zygote forked

std::size_t count_threads() noexcept {
    DIR* d = ::opendir("/proc/self/task");
    if (d == nullptr) return 1;
    std::size_t n = 0;
    while (const dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n;
}

Runtime& the_runtime() {
    if (!runtime_ready.load(std::memory_order_acquire))
        throw Error("process tasks need at::init() called first thing in main, before any thread starts");
    return *runtime;
}

}  // namespace

SharedSlots& runtime_slots() { return the_runtime().slots; }
Zygote& runtime_zygote() { return the_runtime().zygote; }

std::size_t mp_inits_in_workers() { return (void)the_runtime(), inits_in_snapshot; }

bool claim_runtime() noexcept { return !runtime_claimed.exchange(true); }
void release_runtime() noexcept { runtime_claimed.store(false); }

void shutdown_process_runtime() {
    std::lock_guard lock(runtime_mutex);
    if (runtime == nullptr) return;
    if (runtime_claimed.load()) throw Error("a process pool still runs; stop it before shutting the process runtime down");
    runtime_ready.store(false);
    delete runtime;
    runtime = nullptr;
}

}  // namespace detail

void init(InitOptions options) {
    std::lock_guard lock(detail::runtime_mutex);
    if (detail::runtime != nullptr) return;
    if (options.max_workers == 0) throw Error("InitOptions.max_workers is 0; allow at least one worker process");
    if (options.slot_size < 4096) throw Error("InitOptions.slot_size is below 4096 bytes; give each slot at least 4 KiB");
    if (const std::size_t n = detail::count_threads(); n > 1)
        log(LogLevel::warning,
            "at::init() found {} threads already running; forking the process pool's zygote now may leave it "
            "holding locks of those threads: call at::init() first thing in main, before any thread starts",
            n);
    detail::inits_in_snapshot = detail::mp_init_count();
    detail::runtime = new detail::Runtime(options);
    detail::runtime_ready.store(true, std::memory_order_release);
}

bool initialized() noexcept { return detail::runtime_ready.load(std::memory_order_acquire); }

void shutdown() { detail::shutdown_process_runtime(); }

}  // namespace atasker
