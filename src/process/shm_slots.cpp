#include "process/shm_slots.hpp"

#include <unistd.h>

#include <new>

#include <boost/interprocess/anonymous_shared_memory.hpp>
#include <boost/interprocess/exceptions.hpp>

#include "sync/system_error.hpp"

namespace atasker::detail {

namespace {
constexpr std::size_t page = 4096;
constexpr std::size_t round_up(std::size_t n, std::size_t to) noexcept { return (n + to - 1) / to * to; }
}  // namespace

SharedSlots::SharedSlots(std::size_t count, std::size_t capacity)
    : count_(count), capacity_(round_up(capacity, 8)), owner_(::getpid()) {
    // Control block on a page of its own, then the two buffers page-aligned,
    // so a slot's hot control words never share a line with another slot.
    stride_ = round_up(sizeof(SlotControl), page) + 2 * round_up(capacity_, page);
    const std::size_t length = stride_ * count_ + round_up(sizeof(Doorbell) * doorbell_count, page);
    try {
        // Anonymous and shared: inherited by the zygote and every worker it
        // forks, named nowhere, gone with the last process that maps it.
        region_ = boost::interprocess::anonymous_shared_memory(length);
    } catch (const boost::interprocess::interprocess_exception& e) {
        throw_system_error(e.get_native_error(),
                           "cannot map the process pool's shared memory; lower max_workers or slot_size");
    }
    base_ = static_cast<std::byte*>(region_.get_address());
    for (std::uint32_t i = doorbell_count; i > 0; --i) {
        new (&doorbell(i - 1)) Doorbell{};
        free_doorbells_.push_back(i - 1);
    }
}

Doorbell& SharedSlots::doorbell(std::uint32_t i) const noexcept {
    return *std::launder(reinterpret_cast<Doorbell*>(base_ + stride_ * count_) + i);
}

std::uint32_t SharedSlots::claim_doorbell() {
    std::lock_guard lock(doorbells_mutex_);
    if (free_doorbells_.empty()) return no_bell;
    const std::uint32_t i = free_doorbells_.back();
    free_doorbells_.pop_back();
    return i;
}

void SharedSlots::release_doorbell(std::uint32_t i) {
    std::lock_guard lock(doorbells_mutex_);
    free_doorbells_.push_back(i);
}

SharedSlots::~SharedSlots() = default;

SlotView SharedSlots::slot(std::size_t k) const noexcept {
    std::byte* s = base_ + k * stride_;
    std::byte* req = s + round_up(sizeof(SlotControl), page);
    return SlotView{std::launder(reinterpret_cast<SlotControl*>(s)), req, req + round_up(capacity_, page), capacity_};
}

void SharedSlots::reset(std::size_t k, std::uint64_t generation) {
    std::byte* s = base_ + k * stride_;
    // The previous incarnation is gone: whatever it left in the block
    // (semaphore counts, waiter counts) is discarded wholesale.
    auto* c = new (s) SlotControl{};
    c->generation = generation;
    if (::sem_init(&c->request, 1, 0) != 0 || ::sem_init(&c->response, 1, 0) != 0)
        throw_system_error(errno, "cannot initialise a process-shared semaphore");
}

}  // namespace atasker::detail
