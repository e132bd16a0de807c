#pragma once
// HeldTasks: what a worker host (serve_remote) holds: the entries it fetched
// and has not completed yet, which are its places, and the outcomes waiting
// to be completed. Its fetcher (serve_remote.cpp) adds entries; its
// completer (completer.hpp) completes them and frees their places; both
// under one mutex.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include <atasker/priority.hpp>

#include "remote/remote_run.hpp"

namespace atasker::detail {

/// An entry a worker holds: its priority rank and its id in that stream
/// (two streams may hold the same id).
using EntryKey = std::pair<int, std::string>;

/// What a worker knows of an entry it holds.
struct Held {
    std::string client;        // who put it
    std::string id;            // its id there
    long long deliveries = 1;  // workers it was given to, this one included
    TaskId local = 0;          // its task in the local pool; 0 until put (or when answered at once)
    float progress = 0.0F;     // as last reported to its client
    bool started = false;         // it runs in the local pool
    bool start_reported = false;  // its client was told where it runs
    bool lost = false;            // another worker took it over: no more renewals
    bool canceled = false;        // its client canceled it: stopped here
    bool completing = false;      // it ended: being completed, no more renewals or reports
};

struct HeldTasks {
    using Clock = std::chrono::steady_clock;

    std::mutex m;
    /// The completer waits on it: for an outcome queued, for the first entry
    /// while it is idle, to quit; and a thread waiting to reconnect, for the
    /// stop. Each wake-up costs a CPU the task's path may need: nothing else
    /// notifies it.
    std::condition_variable work;
    /// The fetcher waits on it for a place, serve() for none left: notified
    /// when a place is freed, and at the stop.
    std::condition_variable room;
    std::map<EntryKey, Held> entries;  // fetched and not yet completed: places taken
    std::deque<RemoteOutcome> done;    // ended, for the completer
    Clock::time_point renew_at;        // while entries is not empty: when the completer renews them
    Clock::time_point report_at;       // while entries is not empty: when it reports their progress
    bool stopping = false;             // nothing more is fetched; a reconnection gives up
    bool completer_quit = false;       // the completer ends once done is empty
    bool completer_idle = false;       // the completer waits for work with no entry to renew
};

}  // namespace atasker::detail
