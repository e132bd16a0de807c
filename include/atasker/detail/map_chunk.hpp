#pragma once
/// \file detail/map_chunk.hpp
/// The tasks at::map() puts: each runs a contiguous chunk of the inputs, on
/// a pool thread (MapThreadChunk) or in one request to a worker process
/// (MapProcessChunk), and leaves each item's result or exception in the
/// map's shared slots.

#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <atasker/detail/mp_call.hpp>
#include <atasker/detail/task_base.hpp>
#include <atasker/mp_task.hpp>

namespace atasker::detail {

/// Calls `fn` with `item`, or with the elements of a tuple `item` when `fn`
/// does not take the tuple itself (starmap).
template <class F, class T>
decltype(auto) map_call(F& fn, const T& item) {
    if constexpr (std::is_invocable_v<F&, const T&>) {
        return std::invoke(fn, item);
    } else {
        return std::apply(fn, item);
    }
}

template <class F, class T>
using map_result_t = std::remove_cvref_t<decltype(map_call(std::declval<F&>(), std::declval<const T&>()))>;

/// What one at::map() call's chunks fill: a result slot per item (none for
/// void), and the failures each chunk met, by item index. A chunk writes
/// only its own items' slots and its own failure list; the map reads them
/// once every chunk is done.
template <class R>
struct MapSlots {
    struct Values {
        explicit Values(std::size_t n) : slots(n) {}
        std::vector<std::optional<R>> slots;
    };
    struct NoValues {
        explicit NoValues(std::size_t) {}
    };
    std::conditional_t<std::is_void_v<R>, NoValues, Values> values;
    explicit MapSlots(std::size_t n) : values(n) {}
};

/// A chunk's failures: item index and exception, in item order.
struct MapFailures {
    std::vector<std::pair<std::size_t, std::exception_ptr>> items;

    /// Records item `i`'s failure; false when there is no memory to (the
    /// chunk then fails as a whole, which names its items the same way).
    bool add(std::size_t i, std::exception_ptr e) noexcept {
        try {
            items.emplace_back(i, std::move(e));
            return true;
        } catch (...) {
            return false;
        }
    }
};

/// The items [first, last) of a map on a thread callable.
template <class F, class Range, class R>
class MapThreadChunk final : public TaskBase {
public:
    MapThreadChunk(F& fn, const Range& inputs, MapSlots<R>& slots, std::size_t first, std::size_t last) noexcept
        : fn_(fn), inputs_(inputs), slots_(slots), first_(first), last_(last) {
        type = TaskType::thread;
    }

    void run(const RunContext& context) noexcept override {
        const auto n = static_cast<double>(last_ - first_);
        for (std::size_t i = first_; i < last_; ++i) {
            try {
                if constexpr (std::is_void_v<R>) {
                    map_call(fn_, inputs_[i]);
                } else {
                    slots_.values.slots[i].emplace(map_call(fn_, inputs_[i]));
                }
            } catch (...) {
                if (!failures.add(i, std::current_exception())) {
                    set_error(std::current_exception());
                    return;
                }
            }
            context.progress.report(static_cast<double>(i + 1 - first_) / n);
        }
    }

    [[nodiscard]] std::size_t first() const noexcept { return first_; }
    MapFailures failures;

private:
    F& fn_;
    const Range& inputs_;
    MapSlots<R>& slots_;
    std::size_t first_;
    std::size_t last_;
};

/// The items [first, last) of a map on an MpTask: one process task whose
/// call carries every item to one worker in one request (the process lane
/// sends what did not fit, or what came after an item whose worker died,
/// in further requests).
template <class F, class Range>
class MapProcessChunk final : public TaskBase {
    using R = typename MpTask<F>::result_type;

public:
    MapProcessChunk(const MpTask<F>& task, const Range& inputs, MapSlots<R>& slots, std::size_t first,
                    std::size_t last) noexcept
        : task_(task), inputs_(inputs), slots_(slots), first_(first), last_(last) {
        type = TaskType::mp;
    }

    void run(const RunContext& context) noexcept override {
        context.carrier->carry(MpCall{.task = this,
                                      .task_index = task_.index(),
                                      .context = this,
                                      .write_args = &write_args,
                                      .read_result = &read_result,
                                      .timeout = {},
                                      .items = last_ - first_,
                                      .fail_item = &fail_item});
    }

    [[nodiscard]] std::size_t first() const noexcept { return first_; }
    MapFailures failures;

private:
    static constexpr bool one_argument = std::tuple_size_v<typename MpTask<F>::args_tuple> == 1;

    static void write_args(void* self, std::size_t item, ByteWriter& out) {
        auto* me = static_cast<MapProcessChunk*>(self);
        const auto& input = me->inputs_[me->first_ + item];
        if constexpr (one_argument) {
            MpTask<F>::encode_args(out, input);
        } else {
            std::apply([&](const auto&... a) { MpTask<F>::encode_args(out, a...); }, input);
        }
    }
    static void read_result(void* self, std::size_t item, ByteReader& in) {
        auto* me = static_cast<MapProcessChunk*>(self);
        if constexpr (std::is_void_v<R>) {
            MpTask<F>::decode_result(in);
        } else {
            me->slots_.values.slots[me->first_ + item].emplace(MpTask<F>::decode_result(in));
        }
    }
    static void fail_item(void* self, std::size_t item, std::exception_ptr error) noexcept {
        auto* me = static_cast<MapProcessChunk*>(self);
        if (!me->failures.add(me->first_ + item, error)) me->set_error(std::move(error));
    }

    const MpTask<F>& task_;
    const Range& inputs_;
    MapSlots<R>& slots_;
    std::size_t first_;
    std::size_t last_;
};

}  // namespace atasker::detail
