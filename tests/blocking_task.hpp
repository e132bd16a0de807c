#pragma once
// Pipes between a test and its worker processes, and a process task that
// blocks on them: blocker(label) tells the test it runs (started, with its
// label) and returns what the test sends it (release). `order` carries
// labels in the order tasks ran. Each test executable that includes this
// registers the task once, named "blocker"; call open_pipes() in main,
// before at::init(), so every worker inherits the pipes.

#include <atasker/mp_task.hpp>

#include "pipe_signal.hpp"

namespace test_support {

inline PipeSignal started;  // worker -> test: the task is running
inline PipeSignal release;  // test -> worker: go on
inline PipeSignal order;    // worker -> test: labels in the order tasks ran

inline void open_pipes() {
    started.open();
    release.open();
    order.open();
}

inline const atasker::MpTask blocker{"blocker", [](char label) {
                                         started.send(label);
                                         return release.receive();
                                     }};

}  // namespace test_support
