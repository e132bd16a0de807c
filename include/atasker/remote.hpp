#pragma once
/// \file remote.hpp
/// Beyond one machine: the remote pool, whose tasks run in worker processes
/// on any host, carried by Redis Streams.
///
/// A client (any process) sets up the remote pool and puts at::MpTasks on it:
/// \code
/// at::task_supervisor.set_remote_pool({.url = "redis://10.0.0.5:6379", .ns = "myapp"});
/// auto t = at::background_task(square, {.type = at::TaskType::remote})(7);   // t.get() == 49
/// \endcode
/// A worker is the user's own binary, with the same MpTasks compiled in:
/// \code
/// int main() {
///     at::init();
///     return at::serve_remote({.url = "redis://10.0.0.5:6379", .ns = "myapp", .pool_size = 8});   // until SIGTERM
/// }
/// \endcode
///
/// The remote lane is built where hiredis is (the meson feature `remote`);
/// without it, set_remote_pool() and serve_remote() throw an at::Error that
/// says so.

#include <chrono>
#include <cstddef>
#include <string>

#include <atasker/export.hpp>

namespace atasker {

/// Where a client sends its remote tasks, and how many it keeps in flight
/// (TaskSupervisor::set_remote_pool()). The limits read as a PoolOptions':
/// a queued remote task of priority P is sent when fewer remote tasks are
/// in flight than its limit, `pool_size` for low, `+ reserve_normal` for
/// normal, `+ reserve_high` for high; critical ones go to the head of the
/// line. Workers fetch them most urgent first.
struct RemotePoolOptions {
    /// The Redis server: `redis://host:port` or `redis://host:port/db`.
    std::string url = "redis://127.0.0.1:6379";
    /// The namespace clients and workers share: every key is under `{ns}`.
    /// Letters, digits, '-', '_' and '.'.
    std::string ns = "atasker";
    std::size_t pool_size = 0;       ///< remote tasks in flight for low priority (0 = unlimited)
    std::size_t reserve_normal = 0;  ///< extra room for normal and more urgent tasks
    std::size_t reserve_high = 0;    ///< extra room for high and more urgent tasks
};

/// What at::serve_remote() serves.
struct ServeRemoteOptions {
    /// The Redis server: `redis://host:port` or `redis://host:port/db`.
    std::string url = "redis://127.0.0.1:6379";
    /// The namespace, as the clients' RemotePoolOptions::ns.
    std::string ns = "atasker";
    /// Worker processes on this host (its process pool), and so the tasks
    /// it holds at once; 0: one per CPU core.
    std::size_t pool_size = 0;
    /// Tasks this worker holds beyond its worker processes, fetched ahead so
    /// that a process that ends a task finds the next one here instead of
    /// waiting a round trip to Redis, and fetched and completed many to a
    /// round trip. Worth it for short tasks (a few ms or less): with a
    /// prefetch of a few dozen a worker host runs several times more of them
    /// per second. Not for long ones: a task held here waits for this
    /// worker's processes while another worker may be idle. Held tasks run
    /// most urgent first; their leases are renewed and their cancels obeyed
    /// like those of running ones. 0: fetch only what starts at once.
    std::size_t prefetch = 0;
    /// How long a task this worker holds stays its own without a word from
    /// it. The worker renews the lease of every task it holds each
    /// `lease / 4`, so a task runs once however long it takes; a worker that
    /// went silent for a whole lease (killed, frozen, cut off) loses its
    /// tasks to the next worker that looks, and the result it may still send
    /// is dropped. Give every worker of a namespace the same lease; at least
    /// 100 ms.
    std::chrono::milliseconds lease{30000};
    /// A task taken by this many workers that each went silent before it
    /// ended fails as poison at the next take, with an at::Error that says
    /// so, instead of taking down worker after worker. At least 1; give
    /// every worker of a namespace the same.
    unsigned max_deliveries = 3;
};

/// Runs remote tasks in this host's process pool until SIGTERM or SIGINT,
/// then finishes the tasks it holds and returns 0. Call it from main() after
/// at::init(), in a binary that registers the same MpTasks as the clients.
///
/// At start it compares this binary's MpTask names with those the first
/// worker of the namespace stored, and refuses to start when they differ.
/// Tasks are fetched most urgent first, as many as the pool has worker
/// processes (plus ServeRemoteOptions::prefetch); each runs in a worker process, so a task that crashes fails
/// alone, with the at::RemoteError it would have locally.
///
/// Delivery is at-least-once: a worker holds each task under a lease it
/// renews (ServeRemoteOptions::lease); the tasks of a worker that went
/// silent past its lease are taken over by the others, a task that took
/// down `max_deliveries` workers fails as poison, and exactly one outcome
/// is recorded for each task. While tasks are held anywhere in the
/// namespace, an idle worker looks for silent workers' tasks every
/// `lease / 4`; while none are, it waits without waking.
///
/// Uses (and starts, when it is not) the default task_supervisor, whose
/// process pool it sets up. Handles SIGTERM and SIGINT while it runs and
/// gives the previous handlers back when it returns.
/// When the connection to the server is lost while it serves, it connects
/// again (after 0.1 s, then twice as long each try, up to 5 s), joins the
/// namespace again (the server may have come back empty) and serves on;
/// outcomes it could not send go once it is back.
/// \throws Error for a bad url, a lease under 100 ms, `max_deliveries` 0,
/// a server that cannot be reached at start, a task registry that differs
/// from the namespace's, or a library built without the remote lane.
ATASKER_API int serve_remote(const ServeRemoteOptions& options);

}  // namespace atasker
