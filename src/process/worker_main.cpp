#include "process/worker_main.hpp"

#include <cxxabi.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include <atasker/detail/bytes.hpp>
#include <atasker/error.hpp>
#include <atasker/progress.hpp>

#include "process/mp_registry.hpp"
#include "process/value_segment.hpp"

namespace atasker::detail {

namespace {

void wait_request(SlotControl& c) noexcept {
    while (::sem_wait(&c.request) != 0)
        if (errno != EINTR) ::_exit(125);
}

void report_progress(void* context, double value) noexcept {
    static_cast<SlotControl*>(context)->progress.store(value, std::memory_order_relaxed);
}

// Writes "type name, message" of the exception being handled into `out`,
// truncating the message if the buffer is short; `prefix` goes before the
// message.
std::size_t encode_current_exception(std::byte* out, std::size_t capacity, std::string_view prefix = {}) noexcept {
    std::string_view type = "unknown";
    char* demangled = nullptr;
    if (const std::type_info* t = abi::__cxa_current_exception_type(); t != nullptr) {
        int status = 0;
        demangled = abi::__cxa_demangle(t->name(), nullptr, nullptr, &status);
        type = status == 0 && demangled != nullptr ? std::string_view(demangled) : std::string_view(t->name());
    }
    std::string_view message = "an exception not derived from std::exception";
    try {
        throw;
    } catch (const std::exception& e) {
        message = e.what();
    } catch (...) {
    }
    std::string prefixed;
    if (!prefix.empty()) {
        try {
            prefixed.append(prefix).append(message);
            message = prefixed;
        } catch (...) {
        }
    }
    std::size_t used = 0;
    auto put = [&](std::string_view s) {
        const std::size_t room = capacity - used >= 4 ? capacity - used - 4 : 0;
        const auto n = static_cast<std::uint32_t>(s.size() < room ? s.size() : room);
        if (capacity - used < 4) return;
        std::memcpy(out + used, &n, 4);
        std::memcpy(out + used + 4, s.data(), n);
        used += 4 + n;
    };
    put(type);
    put(message);
    std::free(demangled);
    return used;
}

// The worker's resident set in bytes, from /proc/self/statm (one pread of
// an fd opened on first use); 0 when it cannot be read.
std::uint64_t resident_bytes(int& statm) noexcept {
    if (statm < 0) statm = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    char buf[128];
    const ssize_t n = statm < 0 ? -1 : ::pread(statm, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = '\0';
    const char* p = buf;
    while (*p != '\0' && *p != ' ') ++p;  // total size, then resident pages
    const std::uint64_t pages = std::strtoull(p, nullptr, 10);
    return pages * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// Runs the slot's initializer, if any. When it throws, its error is kept in
// `error` (encoded as a task's error) and in the slot for the parent to log,
// and the worker answers every task with it.
bool run_initializer(SlotControl& c, std::vector<std::byte>& error) noexcept {
    const std::uint32_t index = c.initializer.load(std::memory_order_relaxed);
    if (index == no_initializer) return true;
    const MpInitEntry* entry = find_mp_init(index);
    std::string prefix = "the worker process initializer ";
    try {
        prefix += entry != nullptr ? "\"" + entry->name + "\"" : std::string("#") + std::to_string(index);
        prefix += " failed, so this worker runs no task: ";
        if (entry == nullptr)
            throw Error("it is not registered in the worker process; define every at::MpInit at namespace scope so "
                        "that it exists before at::init()");
        entry->fn();
        return true;
    } catch (...) {
        try {
            error.resize(4096);
            error.resize(encode_current_exception(error.data(), error.size(), prefix));
        } catch (...) {
            error.clear();
        }
        // "type: message" for the parent's log line.
        ByteReader r(error.data(), error.size());
        std::string line;
        try {
            for (int part = 0; part < 2 && r.remaining() >= 4; ++part) {
                std::uint32_t len = 0;
                r.read(&len, 4);
                std::string piece(len, '\0');
                r.read(piece.data(), len);
                // The parent's line names the initializer itself: the message without the prefix.
                if (part == 1 && piece.starts_with(prefix)) piece.erase(0, prefix.size());
                line += part == 0 ? piece + ": " : piece;
            }
        } catch (...) {
        }
        const std::size_t len = std::min(line.size(), sizeof c.init_error - 1);
        std::memcpy(c.init_error, line.data(), len);
        c.init_error[len] = '\0';
        c.flags.fetch_or(life_init_failed, std::memory_order_release);
        return false;
    }
}

// The arguments' segment a record names, mapped; its name removed at once
// (the parent removes it too when the call ends, should this process die
// before getting here).
SegmentIn map_args(const std::byte* bytes, std::size_t size, pid_t owner) {
    SegmentRef ref{};
    if (size != sizeof ref) throw Error("corrupt shared-memory message: a segment reference of the wrong size");
    std::memcpy(&ref, bytes, sizeof ref);
    return SegmentIn(args_segment_name(owner, ref.number), ref.size, true);
}

std::size_t slot_index(const SlotView& slot, const SharedSlots& slots) noexcept {
    for (std::size_t k = 0; k < slots.count(); ++k)
        if (slots.slot(k).control == slot.control) return k;
    return 0;
}

}  // namespace

void run_worker(SlotView slot, const SharedSlots& slots) noexcept {
    SlotControl& c = *slot.control;
    const std::size_t cap = slot.capacity;
    // A result is built here first: if it does not fit behind the results
    // already in the response buffer, the buffer is handed to the parent and
    // the result goes to the start of the next chunk. The task has run; its
    // result must not be lost to an overflow that is only about batching.
    std::vector<std::byte> scratch(cap - sizeof(ResultHeader));
    // A result that does not fit the scratch goes to a segment of its own.
    ResultSpill spill(slots.owner(), slot_index(slot, slots), c.generation, c.segments_made);
    const Progress progress(&report_progress, &c);
    // The registry is fixed once the zygote forked this process: the entry
    // of the last task run is kept, sparing the registry's lock per task.
    std::uint32_t last_index = 0;
    const MpRegistryEntry* last_entry = nullptr;
    std::vector<std::byte> init_error;
    const bool initialized = run_initializer(c, init_error);
    std::uint64_t tasks = 0;  // run over this worker's life, for max_tasks
    int statm = -1;

    for (;;) {
        wait_request(c);
        auto& head = *reinterpret_cast<RequestHeader*>(slot.request);
        const std::uint32_t count = head.count;
        // Whoever waits on a doorbell instead of the semaphore is rung after
        // each post, unless a waiting thread claimed the answer.
        Doorbell* bell = head.bell < SharedSlots::doorbell_count ? &slots.doorbell(head.bell) : nullptr;
        const auto post_response = [&] {
            ::sem_post(&c.response);
            if (bell != nullptr && rings_after_post(head)) ring(*bell);
        };
        std::size_t in = sizeof(RequestHeader);
        std::size_t out = 0;
        std::uint32_t in_chunk = 0;
        std::uint32_t ran = 0;

        for (std::uint32_t i = 0; i < count; ++i) {
            auto* rec = reinterpret_cast<RecordHeader*>(slot.request + in);
            std::atomic_ref<std::uint32_t> state(rec->state);
            const std::byte* args = slot.request + in + sizeof(RecordHeader);
            in += sizeof(RecordHeader) + pad8(rec->args_size);

            ResultStatus status = result_canceled;
            std::size_t size = 0;
            std::uint32_t flags = 0;
            std::uint32_t expected = record_queued;
            if (state.compare_exchange_strong(expected, record_running, std::memory_order_acq_rel)) {
                c.progress_record.store(i, std::memory_order_relaxed);
                c.progress.store(0.0, std::memory_order_relaxed);
                ++ran;
                if (!initialized) [[unlikely]] {
                    status = result_error;
                    size = std::min(init_error.size(), scratch.size());
                    std::memcpy(scratch.data(), init_error.data(), size);
                } else {
                    try {
                        if (last_entry == nullptr || last_index != rec->task_index) {
                            last_entry = find_mp_task(rec->task_index);
                            last_index = rec->task_index;
                        }
                        const MpRegistryEntry* entry = last_entry;
                        if (entry == nullptr)
                            throw Error("the worker process has no process task with this index; register every "
                                        "at::MpTask at namespace scope so that it exists before at::init()");
                        ByteWriter writer(scratch.data(), scratch.size(), Overflow::measure, &spill);
                        if ((rec->flags & value_in_segment) != 0) {
                            const SegmentIn in = map_args(args, rec->args_size, slots.owner());
                            ByteReader reader = in.reader();
                            entry->invoke(entry->fn, reader, writer, progress);
                        } else {
                            ByteReader reader(args, rec->args_size);
                            entry->invoke(entry->fn, reader, writer, progress);
                        }
                        status = result_ok;
                        size = writer.size();
                        if (spill.used()) {
                            std::memcpy(scratch.data(), &spill.ref(), sizeof(SegmentRef));
                            size = sizeof(SegmentRef);
                            flags = value_in_segment;
                            spill.finish();
                        }
                    } catch (...) {
                        spill.discard();
                        status = result_error;
                        size = encode_current_exception(scratch.data(), scratch.size());
                    }
                }
                expected = record_running;
                if (!state.compare_exchange_strong(expected, record_done, std::memory_order_acq_rel)) {
                    // The parent is killing this process for this record:
                    // start nothing else before the signal lands.
                    for (;;) ::pause();
                }
            }

            const std::size_t need = sizeof(ResultHeader) + pad8(size);
            if (need > cap - out) {
                c.chunk_state.store(chunk_more, std::memory_order_release);
                post_response();
                wait_request(c);  // the parent has consumed the chunk
                out = 0;
                in_chunk = 0;
            }
            const ResultHeader rh{i, status, static_cast<std::uint32_t>(size), flags};
            std::memcpy(slot.response + out, &rh, sizeof rh);
            std::memcpy(slot.response + out + sizeof rh, scratch.data(), size);
            out += need;
            c.chunk_count.store(++in_chunk, std::memory_order_release);
        }
        if (initialized && ran != 0) {
            // Whether to retire, decided before the last answer is published:
            // the parent reads the flag with it and replaces this process
            // before its next call. Without limits: two loads and compares.
            tasks += ran;
            const std::uint64_t max_tasks = c.max_tasks.load(std::memory_order_relaxed);
            const std::uint64_t max_memory = c.max_memory.load(std::memory_order_relaxed);
            std::uint32_t retire = 0;
            if (max_tasks != 0 && tasks >= max_tasks) {
                retire = life_retire_tasks;
            } else if (max_memory != 0) {
                const std::uint64_t rss = resident_bytes(statm);
                if (rss > max_memory) {
                    retire = life_retire_memory;
                    c.rss.store(rss, std::memory_order_relaxed);
                }
            }
            if (retire != 0) {
                c.tasks_run.store(tasks, std::memory_order_relaxed);
                c.flags.fetch_or(retire, std::memory_order_relaxed);
            }
        }
        c.chunk_state.store(chunk_final, std::memory_order_release);
        post_response();
    }
}

}  // namespace atasker::detail
