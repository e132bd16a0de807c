#include <doctest/doctest.h>

#include <atasker/codec.hpp>
#include <atasker/mp_task.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "process/mp_registry.hpp"

namespace at = atasker;
using at::detail::ByteReader;
using at::detail::ByteWriter;

namespace {

int twice(int x) { return 2 * x; }

struct Joiner {  // a stateless function object with a non-const call operator
    std::string operator()(const std::vector<std::string>& parts, char sep) {
        std::string out;
        for (const auto& p : parts) {
            if (!out.empty()) out += sep;
            out += p;
        }
        return out;
    }
};

int void_calls = 0;  // only touched from the test's own thread

}  // namespace

inline const at::MpTask square{"test.square", [](int x) { return x * x; }};
inline const at::MpTask describe{"test.describe", [](const std::string& name, std::vector<int> values, double scale) {
                                     double sum = 0;
                                     for (int v : values) sum += v * scale;
                                     return std::map<std::string, double>{{name, sum}};
                                 }};
inline const at::MpTask doubler{"test.twice", &twice};
inline const at::MpTask join{"test.join", Joiner{}};
inline const at::MpTask touch{"test.touch", [](int n) { void_calls += n; }};
inline const at::MpTask fail{"test.fail", [](int code) -> int {
                                 throw std::runtime_error("task failed with code " + std::to_string(code));
                             }};
inline const at::MpTask count_up{"test.count_up", [](at::Progress progress, int steps) {
                                     for (int i = 1; i <= steps; ++i) progress.report(static_cast<double>(i) / steps);
                                     return steps;
                                 }};
inline const at::MpTask count_up_ref{"test.count_up_ref", [](const at::Progress& progress) { progress(0.5); }};
inline const at::MpTask echo_big{"test.echo_big", [](std::size_t n) { return std::string(n, 'e'); }};

namespace {

/// Request and response buffers, as a worker's slot would hold them.
struct Slot {
    std::vector<std::byte> request = std::vector<std::byte>(4096);
    std::vector<std::byte> response = std::vector<std::byte>(4096);
    ByteWriter request_writer{request.data(), request.size()};
    ByteWriter response_writer{response.data(), response.size()};
};

/// What a worker does with a request: look the task up by index and invoke it.
void run_in_worker(std::uint32_t index, Slot& slot, const at::Progress& progress = {}) {
    const at::detail::MpRegistryEntry* entry = at::detail::find_mp_task(index);
    REQUIRE(entry != nullptr);
    ByteReader args(slot.request.data(), slot.request_writer.size());
    entry->invoke(entry->fn, args, slot.response_writer, progress);
}

/// The whole trip: encode arguments, invoke through the registry, decode the result.
template <class F, class... Args>
typename at::MpTask<F>::result_type call_through_registry(const at::MpTask<F>& task, Args&&... args) {
    Slot slot;
    at::MpTask<F>::encode_args(slot.request_writer, std::forward<Args>(args)...);
    run_in_worker(task.index(), slot);
    ByteReader result(slot.response.data(), slot.response_writer.size());
    return at::MpTask<F>::decode_result(result);
}

}  // namespace

TEST_CASE("mp_task: the type exposes its result, its caller's arguments and whether it takes progress") {
    using Square = std::remove_cvref_t<decltype(square)>;
    static_assert(std::is_same_v<Square::result_type, int>);
    static_assert(std::is_same_v<Square::args_tuple, std::tuple<int>>);
    static_assert(!Square::takes_progress);
    using Describe = std::remove_cvref_t<decltype(describe)>;
    static_assert(std::is_same_v<Describe::args_tuple, std::tuple<std::string, std::vector<int>, double>>);
    static_assert(std::is_same_v<Describe::result_type, std::map<std::string, double>>);
    using CountUp = std::remove_cvref_t<decltype(count_up)>;
    static_assert(CountUp::takes_progress);
    static_assert(std::is_same_v<CountUp::args_tuple, std::tuple<int>>);
    using CountUpRef = std::remove_cvref_t<decltype(count_up_ref)>;
    static_assert(CountUpRef::takes_progress);
    static_assert(std::is_same_v<CountUpRef::args_tuple, std::tuple<>>);
    static_assert(std::is_void_v<CountUpRef::result_type>);
    using Doubler = std::remove_cvref_t<decltype(doubler)>;
    static_assert(std::is_same_v<Doubler, at::MpTask<int (*)(int)>>);
    CHECK(square.name() == "test.square");
}

TEST_CASE("mp_task: a task is found by its index and by its name") {
    const at::detail::MpRegistryEntry* entry = at::detail::find_mp_task(square.index());
    REQUIRE(entry != nullptr);
    CHECK(entry->name == "test.square");
    CHECK(entry->fn == &square.function());
    CHECK(at::detail::find_mp_task("test.square") == square.index());
    CHECK(at::detail::find_mp_task("test.join") == join.index());
    CHECK(at::detail::find_mp_task("test.no_such_task") == std::nullopt);
    CHECK(at::detail::find_mp_task(static_cast<std::uint32_t>(at::detail::mp_task_count())) == nullptr);
}

TEST_CASE("mp_task: tasks get consecutive indexes in the order they were defined") {
    CHECK(at::detail::mp_task_count() >= 9);
    CHECK(describe.index() == square.index() + 1);
    CHECK(doubler.index() == square.index() + 2);
    CHECK(echo_big.index() == square.index() + 8);
}

TEST_CASE("mp_task: arguments go in as bytes and the result comes back as bytes") {
    CHECK(call_through_registry(square, 7) == 49);
    CHECK(call_through_registry(doubler, 21) == 42);
    CHECK(call_through_registry(describe, std::string("total"), std::vector<int>{1, 2, 3}, 0.5) ==
          std::map<std::string, double>{{"total", 3.0}});
    CHECK(call_through_registry(join, std::vector<std::string>{"a", "b", "c"}, '-') == "a-b-c");
}

TEST_CASE("mp_task: arguments are converted to the parameter types before they are encoded") {
    // A string literal becomes std::string, an int becomes double, a short becomes int.
    CHECK(call_through_registry(describe, "n", std::vector<int>{4}, 2) == std::map<std::string, double>{{"n", 8.0}});
    CHECK(call_through_registry(square, short{-3}) == 9);
}

TEST_CASE("mp_task: a void task runs and sends back an empty result") {
    void_calls = 0;
    call_through_registry(touch, 5);
    CHECK(void_calls == 5);
}

TEST_CASE("mp_task: the task's exception propagates out of the invoker unchanged") {
    Slot slot;
    std::remove_cvref_t<decltype(fail)>::encode_args(slot.request_writer, 3);
    CHECK_THROWS_WITH_AS(run_in_worker(fail.index(), slot), "task failed with code 3", std::runtime_error);
}

TEST_CASE("mp_task: a task taking at::Progress reports through the worker's reporter") {
    std::vector<double> seen;
    const at::Progress progress([](void* context, double value) noexcept {
        static_cast<std::vector<double>*>(context)->push_back(value);
    }, &seen);

    Slot slot;
    std::remove_cvref_t<decltype(count_up)>::encode_args(slot.request_writer, 4);
    run_in_worker(count_up.index(), slot, progress);
    CHECK(seen == std::vector<double>{0.25, 0.5, 0.75, 1.0});
    ByteReader result(slot.response.data(), slot.response_writer.size());
    CHECK(std::remove_cvref_t<decltype(count_up)>::decode_result(result) == 4);

    Slot by_ref;
    std::remove_cvref_t<decltype(count_up_ref)>::encode_args(by_ref.request_writer);
    run_in_worker(count_up_ref.index(), by_ref, progress);
    CHECK(seen.back() == 0.5);
}

TEST_CASE("mp_task: a result too large for the slot throws SlotOverflow out of the invoker") {
    Slot slot;
    std::remove_cvref_t<decltype(echo_big)>::encode_args(slot.request_writer, std::size_t{10'000});
    CHECK_THROWS_AS(run_in_worker(echo_big.index(), slot), at::detail::SlotOverflow);
}

TEST_CASE("mp_task: corrupt argument bytes throw at::Error out of the invoker") {
    Slot slot;
    at::encode(slot.request_writer, std::string("not an int"));
    CHECK_THROWS_AS(run_in_worker(square.index(), slot), at::Error);
}

TEST_CASE("mp_task: the registry check passes while every name is unique") {
    CHECK_NOTHROW(at::detail::check_mp_registry());
}

// Leaves duplicates in this executable's registry: keep it the last case.
TEST_CASE("mp_task: the registry check names every duplicated task name") {
    const auto* original = at::detail::find_mp_task(square.index());
    at::detail::register_mp_task("test.square", original->invoke, original->fn, original->signature);
    CHECK_THROWS_WITH_AS(at::detail::check_mp_registry(),
                         "mp task name \"test.square\" is registered twice; give each MpTask a unique name", at::Error);

    at::detail::register_mp_task("test.join", original->invoke, original->fn, original->signature);
    at::detail::register_mp_task("test.join", original->invoke, original->fn, original->signature);
    CHECK_THROWS_WITH_AS(at::detail::check_mp_registry(),
                         "mp task name \"test.square\" is registered twice; mp task name \"test.join\" is registered 3 "
                         "times; give each MpTask a unique name",
                         at::Error);
    // Lookup by name still finds the first registration.
    CHECK(at::detail::find_mp_task("test.square") == square.index());
}
