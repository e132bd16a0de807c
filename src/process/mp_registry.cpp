#include "process/mp_registry.hpp"

#include <deque>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <atasker/error.hpp>

namespace atasker::detail {

namespace {

struct Registry {
    std::mutex mutex;
    // A deque, not a vector: find_mp_task() hands out pointers to entries, and
    // a task registered later (a library loaded with dlopen) must not move them.
    std::deque<MpRegistryEntry> entries;
    std::deque<MpInitEntry> inits;
};

// Function-local static: MpTasks in other translation units register during
// static initialisation, in whatever order the linker chose, possibly before
// a namespace-scope registry here would have been constructed.
Registry& registry() noexcept {
    static Registry r;
    return r;
}

}  // namespace

std::uint32_t register_mp_task(std::string name, MpInvoker invoke, const void* fn, const char* signature) noexcept {
    Registry& r = registry();
    const std::lock_guard lock(r.mutex);
    r.entries.push_back(MpRegistryEntry{std::move(name), invoke, fn, signature});
    return static_cast<std::uint32_t>(r.entries.size() - 1);
}

std::uint32_t register_mp_init(std::string name, void (*fn)()) noexcept {
    Registry& r = registry();
    const std::lock_guard lock(r.mutex);
    r.inits.push_back(MpInitEntry{std::move(name), fn});
    return static_cast<std::uint32_t>(r.inits.size() - 1);
}

const MpInitEntry* find_mp_init(std::uint32_t index) noexcept {
    Registry& r = registry();
    const std::lock_guard lock(r.mutex);
    return index < r.inits.size() ? &r.inits[index] : nullptr;
}

std::size_t mp_init_count() noexcept {
    Registry& r = registry();
    const std::lock_guard lock(r.mutex);
    return r.inits.size();
}

const MpRegistryEntry* find_mp_task(std::uint32_t index) noexcept {
    Registry& r = registry();
    const std::lock_guard lock(r.mutex);
    return index < r.entries.size() ? &r.entries[index] : nullptr;
}

std::optional<std::uint32_t> find_mp_task(std::string_view name) noexcept {
    Registry& r = registry();
    const std::lock_guard lock(r.mutex);
    for (std::size_t i = 0; i < r.entries.size(); ++i)
        if (r.entries[i].name == name) return static_cast<std::uint32_t>(i);
    return std::nullopt;
}

std::size_t mp_task_count() noexcept {
    Registry& r = registry();
    const std::lock_guard lock(r.mutex);
    return r.entries.size();
}

void check_mp_registry() {
    Registry& r = registry();
    std::vector<std::pair<std::string_view, std::size_t>> counts;  // in order of first registration
    {
        const std::lock_guard lock(r.mutex);
        for (const auto& e : r.entries) {
            bool seen = false;
            for (auto& [name, n] : counts)
                if (name == e.name) {
                    ++n;
                    seen = true;
                    break;
                }
            if (!seen) counts.emplace_back(e.name, 1);
        }
    }
    std::string message;
    for (const auto& [name, n] : counts) {
        if (n < 2) continue;
        if (n == 2) {
            message += fmt::format("mp task name \"{}\" is registered twice; ", name);
        } else {
            message += fmt::format("mp task name \"{}\" is registered {} times; ", name, n);
        }
    }
    if (!message.empty()) throw Error(message + "give each MpTask a unique name");
}

}  // namespace atasker::detail
