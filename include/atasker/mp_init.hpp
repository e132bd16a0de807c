#pragma once
/// \file mp_init.hpp
/// MpInit: a function each worker process of the process pool runs once,
/// before its first task (a database connection, an RNG seed), registered
/// under a stable name before at::init() like an MpTask.
///
/// \code
/// inline const at::MpInit init_db{"init_db", [] { db = connect(); }};
/// at::task_supervisor.set_mp_pool({.pool_size = 4, .initializer = init_db});
/// \endcode
///
/// A worker process is forked from the snapshot at::init() took: the
/// initializer must exist there, so it is registered at static
/// initialisation (namespace scope, or a static member), never captured
/// later. PoolOptions::initializer therefore takes an MpInit and nothing
/// else: a lambda or std::function there does not compile.

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include <atasker/detail/mp_registry.hpp>

namespace atasker {

namespace detail {
/// False for every type: a static_assert that fires only when instantiated.
template <class>
inline constexpr bool refused_initializer = false;
}  // namespace detail

/// A worker-process initializer: `fn` registered under `name`. Define it at
/// namespace scope so that it exists before at::init() forks the zygote.
/// Not copyable or movable: the pool refers to it by its registry index.
/// All members are thread-safe (the object is immutable after construction).
class MpInit {
public:
    /// The function an initializer runs: no arguments, no result. It may
    /// throw; the worker then takes no task (see PoolOptions::initializer).
    using function_type = void (*)();

    /// Registers `fn` (a captureless lambda or a function pointer) under
    /// `name`. Compile error for a function that carries state.
    template <class F>
    MpInit(std::string_view name, F fn) : name_(name), index_(register_checked(name_, fn)) {}

    MpInit(const MpInit&) = delete;
    MpInit& operator=(const MpInit&) = delete;
    ~MpInit() = default;

    /// The name the initializer was registered under.
    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    /// Its index in the registry of initializers (the same in every worker process).
    [[nodiscard]] std::uint32_t index() const noexcept { return index_; }

private:
    template <class F>
    static std::uint32_t register_checked(const std::string& name, F fn) noexcept {
        static_assert(std::is_convertible_v<F, function_type>,
                      "atasker::MpInit: the initializer must be a captureless lambda or a function pointer taking "
                      "no arguments: a worker process is forked from the snapshot at::init() took and cannot receive "
                      "state captured later; keep state in globals the initializer sets");
        if constexpr (std::is_convertible_v<F, function_type>) {
            return detail::register_mp_init(name, static_cast<function_type>(fn));
        } else {
            return 0;
        }
    }

    std::string name_;
    std::uint32_t index_;
};

/// Which MpInit a process pool's workers run (PoolOptions::initializer):
/// made from an MpInit only. Anything else, a lambda or a std::function,
/// fails to compile with a message saying to register an at::MpInit.
class WorkerInitializer {
public:
    /// No initializer.
    WorkerInitializer() noexcept = default;
    /// The workers run `init` (which lives as long as the program: define it
    /// at namespace scope).
    WorkerInitializer(const MpInit& init) noexcept  // NOLINT(google-explicit-constructor): `.initializer = init_db`
        : init_(&init) {}
    /// Refused at compile time: a worker process cannot run a function
    /// captured after at::init(); see MpInit.
    template <class F>
        requires(!std::is_same_v<std::remove_cvref_t<F>, MpInit> &&
                 !std::is_same_v<std::remove_cvref_t<F>, WorkerInitializer>)
    WorkerInitializer(F&&) {  // NOLINT(google-explicit-constructor)
        static_assert(detail::refused_initializer<F>,
                      "atasker::PoolOptions::initializer takes an at::MpInit, not a function: a worker process is "
                      "forked from the snapshot at::init() took, so its initializer must be registered before it; "
                      "define `inline const at::MpInit name{\"name\", [] { ... }};` at namespace scope and pass it");
    }

    /// The initializer, or nullptr for none.
    [[nodiscard]] const MpInit* get() const noexcept { return init_; }
    /// True when an initializer is set.
    explicit operator bool() const noexcept { return init_ != nullptr; }

private:
    const MpInit* init_ = nullptr;
};

}  // namespace atasker
