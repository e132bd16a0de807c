#pragma once
/// \file collections.hpp
/// atasker's FunctionCollection and TaskCollection: a pack of functions run
/// in priority order (critical first, FIFO within a priority), returning
/// every result and whether all succeeded.
///
///     at::FunctionCollection startup;
///     startup.add("config", [] { return load_config(); }, at::Priority::critical);
///     startup.add("cache", [] { warm_cache(); });
///     auto [results, all_succeeded] = startup.execute();   // here, in order
///
///     at::TaskCollection checks({.supervisor = &sup});
///     checks.add("db", [] { return ping_db(); });
///     checks.add("disk", [] { return disk_free(); });
///     auto r = checks.execute();   // as tasks, in parallel; waits for all
///     int free = r.value<int>("disk");

#include <any>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <atasker/error.hpp>
#include <atasker/export.hpp>
#include <atasker/priority.hpp>

namespace atasker {

class TaskSupervisor;

/// The outcome of one function of a collection.
struct CollectionEntryResult {
    std::string name{};                  ///< the function's name in the collection
    Priority priority = Priority::normal;  ///< the priority it was added with
    std::any value{};              ///< its result; empty for a void function or a failure
    std::exception_ptr error{};    ///< what it threw; empty when it succeeded
    /// True when the function returned (did not throw).
    [[nodiscard]] bool ok() const noexcept { return !error; }
};

/// What execute() returns (atasker's `(result, all_ok)`).
struct CollectionResult {
    std::vector<CollectionEntryResult> results{};  ///< one per function, in priority order
    bool all_succeeded = true;  ///< false when any function threw

    /// The outcome of the function named `name`; nullptr when there is none.
    [[nodiscard]] const CollectionEntryResult* find(std::string_view name) const noexcept {
        for (const auto& r : results)
            if (r.name == name) return &r;
        return nullptr;
    }
    /// The result of the function named `name`, as T.
    /// \throws Error when there is no such function; rethrows what it threw;
    /// std::bad_any_cast when it returned another type.
    template <class T>
    [[nodiscard]] T value(std::string_view name) const {
        const auto* r = find(name);
        if (r == nullptr) throw Error(fmt::format("no function named '{}' in the collection's results", name));
        if (r->error) std::rethrow_exception(r->error);
        return std::any_cast<T>(r->value);
    }
};

/// Options of both collections.
struct CollectionOptions {
    /// Called for each function that threw (with its name), on the thread
    /// that called execute(), in priority order. Empty: the error is logged.
    /// Exceptions it throws are logged.
    std::function<void(std::exception_ptr, std::string_view name)> on_error{};
    TaskSupervisor* supervisor = nullptr;  ///< TaskCollection only; nullptr: the default task_supervisor
};

namespace detail {

/// What both collections share: named, prioritised functions. Thread-safe.
class ATASKER_API CollectionBase {
public:
    struct Entry {
        std::string name;
        Priority priority;
        std::uint64_t sequence;
        std::function<std::any()> fn;
    };

    explicit CollectionBase(CollectionOptions options);

    /// Adds a function (any callable taking no argument) with a generated
    /// name. \returns the name, for remove() and CollectionResult::find().
    template <class F>
    std::string add(F fn, Priority priority = Priority::normal) {
        return add(std::string{}, std::move(fn), priority);
    }
    /// Adds `fn` under `name` (a generated "function-N" when empty).
    /// \returns the name. \throws Error when the name is taken.
    template <class F>
    std::string add(std::string name, F fn, Priority priority = Priority::normal) {
        using R = std::invoke_result_t<F&>;
        static_assert(std::is_void_v<R> || std::is_copy_constructible_v<std::decay_t<R>>,
                      "atasker collections: a function's result must be copyable (it is kept in a std::any)");
        auto shared = std::make_shared<F>(std::move(fn));
        return add_entry(std::move(name), priority, [shared]() -> std::any {
            if constexpr (std::is_void_v<R>) {
                (*shared)();
                return {};
            } else {
                return std::any((*shared)());
            }
        });
    }
    /// Removes the function named `name`; false when there is none.
    bool remove(std::string_view name);
    /// How many functions the collection holds.
    [[nodiscard]] std::size_t size() const;

protected:
    /// The functions, critical first, FIFO within a priority.
    [[nodiscard]] std::vector<Entry> ordered() const;
    /// Records the outcome and reports a failure to on_error (or the log).
    void settle(CollectionResult& result, const Entry& entry, std::any value, std::exception_ptr error) const;

    CollectionOptions options_;

private:
    std::string add_entry(std::string name, Priority priority, std::function<std::any()> fn);

    mutable std::mutex mutex_;
    std::vector<Entry> entries_;
    std::uint64_t sequence_ = 0;
};

}  // namespace detail

/// Runs its functions one after another on the calling thread, in priority
/// order. Every member function is thread-safe.
///
/// Functions come in through the members both collections share:
/// `add(name, fn, priority = Priority::normal)` adds any callable taking no
/// argument (an empty name gives a generated "function-N") and returns the
/// name, throwing Error when the name is taken; `add(fn, priority)` is the
/// same with a generated name; `remove(name)` drops one (false when there is
/// none); `size()` counts them. A function's result must be copyable (it is
/// kept in a std::any; read it with CollectionResult::value<T>(name)).
class ATASKER_API FunctionCollection : public detail::CollectionBase {
public:
    /// An empty collection; add functions with add().
    explicit FunctionCollection(CollectionOptions options = {}) : CollectionBase(std::move(options)) {}

    /// Runs every function here, critical first (FIFO within a priority). A
    /// function that throws goes to on_error and the rest still run.
    /// \returns every outcome and whether all succeeded.
    CollectionResult execute();
    /// atasker's run(): execute() without the success flag.
    std::vector<CollectionEntryResult> run() { return execute().results; }
};

/// Runs its functions as tasks on the supervisor, in parallel, each with its
/// own priority and name (so they show in get_task_info()), and waits for
/// them all. Every member function is thread-safe. Functions are added,
/// removed and counted as for FunctionCollection (add(), remove(), size()).
class ATASKER_API TaskCollection : public detail::CollectionBase {
public:
    /// An empty collection; add functions with add(). The tasks go to
    /// `options.supervisor` (nullptr: the default task_supervisor).
    explicit TaskCollection(CollectionOptions options = {}) : CollectionBase(std::move(options)) {}

    /// Puts every function as a task, critical first, and waits for all.
    /// \returns every outcome (in priority order) and whether all succeeded.
    /// \throws Error when the supervisor is not started (after waiting for
    /// the tasks already put).
    CollectionResult execute();
    /// atasker's run(): execute() without the success flag.
    std::vector<CollectionEntryResult> run() { return execute().results; }
};

}  // namespace atasker
