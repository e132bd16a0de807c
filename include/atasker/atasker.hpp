#pragma once
/// \file atasker.hpp
/// The umbrella header: includes every public header of atasker-cpp.

#include <atasker/codec.hpp>
#include <atasker/background_task.hpp>
#include <atasker/pool_options.hpp>
#include <atasker/supervisor.hpp>
#include <atasker/task.hpp>
#include <atasker/when_any.hpp>
#include <atasker/as_completed.hpp>
#include <atasker/coroutine.hpp>
#include <atasker/task_info.hpp>
#include <atasker/task_options.hpp>
#include <atasker/error.hpp>
#include <atasker/fiber.hpp>
#include <atasker/init.hpp>
#include <atasker/log.hpp>
#include <atasker/mp_task.hpp>
#include <atasker/mp_init.hpp>
#include <atasker/priority.hpp>
#include <atasker/progress.hpp>
#include <atasker/workers.hpp>
#include <atasker/aloop.hpp>
#include <atasker/collections.hpp>
#include <atasker/task_group.hpp>
#include <atasker/locker.hpp>
#include <atasker/map.hpp>
#include <atasker/remote.hpp>
