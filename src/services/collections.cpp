#include <atasker/collections.hpp>

#include <algorithm>

#include <atasker/background_task.hpp>
#include <atasker/log.hpp>

namespace atasker {

namespace detail {

CollectionBase::CollectionBase(CollectionOptions options) : options_(std::move(options)) {}

std::string CollectionBase::add_entry(std::string name, Priority priority, std::function<std::any()> fn) {
    std::lock_guard lock(mutex_);
    const auto sequence = ++sequence_;
    if (name.empty()) name = fmt::format("function-{}", sequence);
    for (const auto& e : entries_)
        if (e.name == name)
            throw Error(fmt::format("a function named '{}' is already in the collection; remove it first or pick "
                                    "another name",
                                    name));
    entries_.push_back(Entry{name, priority, sequence, std::move(fn)});
    return name;
}

bool CollectionBase::remove(std::string_view name) {
    std::lock_guard lock(mutex_);
    return std::erase_if(entries_, [&](const Entry& e) { return e.name == name; }) != 0;
}

std::size_t CollectionBase::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

std::vector<CollectionBase::Entry> CollectionBase::ordered() const {
    std::vector<Entry> out;
    {
        std::lock_guard lock(mutex_);
        out = entries_;
    }
    std::stable_sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
        return priority_rank(a.priority) < priority_rank(b.priority);
    });
    return out;
}

void CollectionBase::settle(CollectionResult& result, const Entry& entry, std::any value,
                            std::exception_ptr error) const {
    if (error) {
        result.all_succeeded = false;
        bool handled = false;
        if (options_.on_error) {
            try {
                options_.on_error(error, entry.name);
                handled = true;
            } catch (...) {
                log(LogLevel::error, "collection: on_error threw for '{}': {}", entry.name,
                    describe(std::current_exception()));
            }
        }
        if (!handled) log(LogLevel::error, "collection: function '{}' failed: {}", entry.name, describe(error));
    }
    result.results.push_back(CollectionEntryResult{entry.name, entry.priority, std::move(value), std::move(error)});
}

}  // namespace detail

CollectionResult FunctionCollection::execute() {
    CollectionResult result;
    for (const auto& entry : ordered()) {
        std::any value;
        std::exception_ptr error;
        try {
            value = entry.fn();
        } catch (...) {
            error = std::current_exception();
        }
        settle(result, entry, std::move(value), std::move(error));
    }
    return result;
}

CollectionResult TaskCollection::execute() {
    const auto entries = ordered();
    std::vector<Task<std::any>> tasks;
    tasks.reserve(entries.size());
    std::exception_ptr put_failed;
    for (const auto& entry : entries) {
        TaskOptions o;
        o.name = entry.name;
        o.priority = entry.priority;
        o.supervisor = options_.supervisor;
        try {
            tasks.push_back(background_task(entry.fn, std::move(o))());
        } catch (...) {
            put_failed = std::current_exception();
            break;
        }
    }
    if (put_failed) {
        for (const auto& t : tasks) t.wait();
        std::rethrow_exception(put_failed);
    }
    CollectionResult result;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        std::any value;
        std::exception_ptr error;
        try {
            value = tasks[i].get();
        } catch (...) {
            error = std::current_exception();
        }
        settle(result, entries[i], std::move(value), std::move(error));
    }
    return result;
}

}  // namespace atasker
