// The supervisor's lanes, by TaskType: the core knows them only as Lanes.

#include "core/lane.hpp"
#include "process/process_lane.hpp"
#include "thread/thread_lane.hpp"

namespace atasker::detail {

std::vector<std::unique_ptr<Lane>> make_lanes(LaneHost& host) {
    std::vector<std::unique_ptr<Lane>> lanes;
    lanes.push_back(std::make_unique<ThreadLane>(host));   // TaskType::thread
    lanes.push_back(std::make_unique<ProcessLane>(host));  // TaskType::mp
    return lanes;
}

}  // namespace atasker::detail
