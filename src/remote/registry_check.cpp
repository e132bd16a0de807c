#include "remote/registry_check.hpp"

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string_view>
#include <vector>

#include <cxxabi.h>
#include <fmt/format.h>

#include <atasker/error.hpp>

#include "process/mp_registry.hpp"
#include "remote/remote_scripts.hpp"

namespace atasker::detail {
namespace {

/// A signature for people: the demangled function type, e.g. "int (int)".
std::string readable(const std::string& mangled) {
    int status = 0;
    const std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status),
                                                      &std::free);
    return status == 0 && name ? std::string(name.get()) : mangled;
}

}  // namespace

void check_registry(RedisConnection& c, const RemoteKeys& keys, const std::string& where) {
    std::map<std::string, std::string> mine;  // name -> mangled signature
    for (std::uint32_t i = 0; i < mp_task_count(); ++i) {
        const MpRegistryEntry* task = find_mp_task(i);
        mine.emplace(task->name, task->signature);
    }
    if (mine.empty())
        throw Error("this program registers no at::MpTask, so it has nothing to serve; define the clients' MpTasks at "
                    "namespace scope in the worker's binary");
    const std::string key = keys.tasks();
    std::vector<std::string_view> args{"EVAL", remote_scripts::registry, "1", key};
    for (const auto& [name, signature] : mine) args.insert(args.end(), {name, signature});
    const RedisReply stored_reply = c.command(args);
    std::map<std::string, std::string> stored;
    for (std::size_t i = 0; i + 1 < stored_reply.size(); i += 2)
        stored.emplace(stored_reply[i].str(), stored_reply[i + 1].str());
    std::vector<std::string> missing;
    std::vector<std::string> extra;
    std::vector<std::string> changed;
    for (const auto& [name, signature] : stored)
        if (!mine.contains(name)) missing.push_back(name);
    for (const auto& [name, signature] : mine) {
        const auto it = stored.find(name);
        if (it == stored.end()) {
            extra.push_back(name);
        } else if (it->second != signature) {
            changed.push_back(fmt::format("{} is {} in this worker, {} in the namespace", name, readable(signature),
                                          readable(it->second)));
        }
    }
    std::vector<std::string> differences;
    if (!missing.empty()) differences.push_back(fmt::format("not in this worker: {}", fmt::join(missing, ", ")));
    if (!extra.empty()) differences.push_back(fmt::format("only in this worker: {}", fmt::join(extra, ", ")));
    if (!changed.empty()) differences.push_back(fmt::format("another signature: {}", fmt::join(changed, ", ")));
    if (differences.empty()) return;
    throw Error(fmt::format("this worker's MpTasks differ from those of namespace '{}' at {} ({}); build workers and "
                            "clients from the same MpTask definitions, or, with every worker of the namespace "
                            "stopped, delete the key {} to start it afresh",
                            keys.ns(), where, fmt::join(differences, "; "), key));
}

}  // namespace atasker::detail
